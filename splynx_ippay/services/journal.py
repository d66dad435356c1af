"""The payment journal: the only place that orders the steps of moving money, and the one
guarded path to a SALE (a card) or a CHECK (a bank account, ACH) for every channel (portal,
direct link, staff, charge run, a resumed worker).

    open (commit, lock held) → re-read the document → sent (commit) → SALE | CHECK
        → approved | declined | unknown
    unknown → ENQ with the same TransactionID → approved | declined | failed
    approved → find or create the Splynx payment → posted | post_pending
    posted (a CHECK) → the bank returns it days later → returned (services/ach_returns.py)

Invariants (design.md §3), each relied on below:

1. The attempt and its TransactionID are committed before the request leaves.
2. An unknown outcome is settled by ENQ with the same TransactionID, never by a second SALE
   (or CHECK).
3. A document has at most one attempt holding it: the ``lock_key`` unique index. Once the
   lock is held, :func:`charge` reads the document again from Splynx and consults the
   journal before the SALE: a document paid (in Splynx, or by an approval Splynx has not
   taken yet), cancelled or with nothing due ends the attempt as ``skipped``, unsent; the
   amount charged is what is due then.
4. An approval becomes exactly one Splynx payment: the payment carries the TransactionID in
   ``field_1``, and before creating one the journal looks for it. A service fee
   (services/fees.py) is committed on the attempt with the amount, charged in the same
   SALE, and becomes exactly one Splynx fee debit, found by its key likewise.
5. No card number or CVV is stored: a card typed in for one payment reaches the gateway
   only inside :func:`charge`'s SALE (with its CVV2) and is dropped after.
6. Request keys come from the server (request_keys.py): no form value can name another
   channel's attempt.

Every status move is a compare-and-set (models.compare_and_set): of two processes moving the
same attempt, one wins and the other stops with :class:`AttemptMoved`, leaving the job to
the winner (no second SALE, no second post).
"""

import contextlib
import datetime as dt
import functools
import logging
import time
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from ..db import first_in_line, run_transaction, session_scope
from ..ippay import (GatewayError, GatewayNotSentError, GatewayRequestError,
                     new_transaction_id)
from ..messages import N_
from ..models import (AttemptKind, AttemptStatus as S, Channel, GatewayMode, Method,
                      PaymentAttempt, save, utcnow)
from ..money import format_cents
from ..splynx import SplynxError, SplynxNotFoundError
from . import documents, fees, notices, statements
from .settings import FEE_CATEGORY_NAME, Terminal

log = logging.getLogger(__name__)

#: Pauses between ENQ tries while a customer waits for an unknown outcome.
ENQ_BACKOFF = (0.5, 1.5)
#: Channels where a person confirmed an amount: if what is due changed meanwhile, nothing
#: is charged and they are asked to look again. Charge runs charge what is due then.
CONFIRMED_AMOUNT_CHANNELS = (Channel.PORTAL, Channel.DIRECT, Channel.ADMIN)


class AttemptMoved(Exception):
    """Another process moved the attempt on first (compare-and-set lost); ``attempt`` is the
    attempt as it stands now."""

    def __init__(self, attempt):
        super().__init__(f"attempt {attempt.transaction_id} is already {attempt.status.value}")
        self.attempt = attempt


class AttemptInProgress(Exception):
    """Another attempt on the same document holds it."""

    def __init__(self, attempt):
        super().__init__(f"attempt {attempt.transaction_id} is {attempt.status.value}")
        self.attempt = attempt


class Opened(NamedTuple):
    """What :func:`open_attempt` did: ``attempt``, and ``replay`` True when the request key
    had been used before (the attempt is that earlier request's: never charge it again)."""

    attempt: PaymentAttempt
    replay: bool


class PaymentSource(NamedTuple):
    """What an attempt is charged to: a saved card (``card`` row with its token), or a card
    typed in for this payment (``typed``: an ``ippay.Card`` with its CVV2, never stored),
    with the brand and last four digits that may be kept. A bank account (saved: ``card``
    is its row; typed in: ``bank.account``) carries ``bank``, a
    ``bank_accounts.BankDebit`` (SEC code, account type, holder, authorisation)."""

    brand: str
    last4: str
    card: object = None
    typed: object = None
    bank: object = None


def lock_key(kind, customer_id, document_id=None):
    """The key that allows one open attempt per document (one per balance for refills)."""
    kind = AttemptKind(kind)
    if kind in (AttemptKind.REFILL, AttemptKind.BALANCE):
        return f"{kind.value}:{customer_id}"
    return f"{kind.value}:{document_id}"


def open_attempt(ctx, *, kind, customer_id, amount_cents, source, channel, terminal,
                 partner_id=None, document_id=None, document_number=None, request_key=None,
                 origin="INTERNET", admin_id=None, fee_rate=None):
    """Write and commit a new attempt holding the document's lock.

    ``source`` is a :class:`PaymentSource`, ``terminal`` the ``context.Terminal`` it is
    sent on, ``fee_rate`` the ``fees.FeeRate`` of the service fee added to the amount (None:
    no fee); the fee is committed with the attempt, in cents. Returns :class:`Opened`: if
    ``request_key`` was used before, the earlier attempt with ``replay`` True. Raises
    :class:`AttemptInProgress` when another attempt holds the document.
    """
    if not isinstance(amount_cents, int) or amount_cents <= 0:
        raise ValueError(f"amount must be positive integer cents, got {amount_cents!r}")
    kind = AttemptKind(kind)
    saved, bank = source.card, source.bank
    fee = fees.compute(amount_cents, fee_rate)
    fee_fields = dict(fee_cents=fee.fee_cents, fee_tax_cents=fee.tax_cents,
                      fee_rate=fee_rate.rate if fee_rate else 0,
                      fee_vat_rate=fee_rate.vat_rate if fee_rate else 0,
                      fee_text=fee_rate.text[:64] if fee_rate else None)

    def new_attempt():
        return PaymentAttempt(
            transaction_id=new_transaction_id(), kind=kind, status=S.CREATED,
            lock_key=lock_key(kind, customer_id, document_id), request_key=request_key,
            channel=Channel(channel), customer_id=customer_id, partner_id=partner_id,
            amount_cents=amount_cents, origin=origin,
            invoice_id=document_id if kind == AttemptKind.INVOICE else None,
            proforma_id=document_id if kind == AttemptKind.PROFORMA else None,
            document_number=document_number, terminal_id=terminal.terminal_id,
            gateway_mode=terminal.mode, card_id=saved.id if saved is not None else None,
            token=saved.token if saved is not None else None, card_brand=source.brand,
            card_last4=source.last4, admin_id=admin_id, **fee_fields,
            method=Method.BANK if bank is not None else Method.CARD,
            sec_code=bank.sec if bank is not None else None,
            account_type=bank.account_type if bank is not None else None,
            holder_name=bank.holder[:100] if bank is not None else None,
            authorization_id=bank.authorization_id if bank is not None else None,
        )

    for _ in range(3):
        attempt = new_attempt()
        opened = _insert(ctx, attempt, request_key)
        if opened is not None:
            return opened
        # The lock's holder finished between our insert and our look: try once more.
    raise AttemptInProgress(attempt)


def _insert(ctx, attempt, request_key):
    """Commit ``attempt``: :class:`Opened`, or None when the lock was taken and released
    meanwhile. Raises :class:`AttemptInProgress` while another attempt holds it."""
    session = ctx.sessions()
    try:
        session.add(attempt)
        session.flush()
        session.add(PaymentAttempt.Event(owner_id=attempt.id, to_status=S.CREATED.value,
                                         note=f"opened by {attempt.channel.value}"))
        session.commit()
        log.info("attempt %s opened: %s %s for customer %s, %s%s", attempt.transaction_id,
                 attempt.kind.value, attempt.document_number or "", attempt.customer_id,
                 format_cents(attempt.amount_cents),
                 f" + fee {format_cents(attempt.fee_total_cents)}" if attempt.fee_total_cents
                 else "")
        return Opened(attempt, False)
    except IntegrityError:
        session.rollback()
        if request_key:
            earlier = session.execute(select(PaymentAttempt).where(
                PaymentAttempt.request_key == request_key)).scalar_one_or_none()
            if earlier is not None:
                # Opened by an earlier submission of the same request, which may be
                # charging it right now: the caller shows it and must not charge it.
                return Opened(earlier, True)
        holder = session.execute(select(PaymentAttempt).where(
            PaymentAttempt.lock_key == attempt.lock_key)).scalar_one_or_none()
        if holder is not None:
            raise AttemptInProgress(holder) from None
        return None
    finally:
        session.close()


def find_by_request_key(ctx, request_key):
    """The attempt started by the request with this (server-made) key, or None."""
    if not request_key:
        return None
    with session_scope(ctx.sessions) as session:
        return session.execute(select(PaymentAttempt).where(
            PaymentAttempt.request_key == request_key)).scalar_one_or_none()


def load(ctx, attempt_id):
    """The attempt with its events, as it is now."""
    with session_scope(ctx.sessions) as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        if attempt is not None:
            attempt.events  # noqa: B018 - loaded for pages that show the history
        return attempt


def _save(ctx, attempt, status=None, note=None, **fields):
    """Move the attempt to ``status`` (compare-and-set on the status it was read with) and
    write ``fields``, or only write ``fields``; commit; return the attempt as it is now.

    The conditional UPDATE also locks the row (the whole file on SQLite) until the commit.
    When another process moved the attempt meanwhile, nothing is written and
    :class:`AttemptMoved` carries the attempt as it is now.
    """
    # A deadlock the database broke (MariaDB and PostgreSQL, under many payers at once)
    # rolled the move back: the compare-and-set is simply made again.
    current, moved = run_transaction(
        ctx.sessions, lambda session: save(session, attempt, status, note, **fields))
    if not moved:
        log.warning("attempt %s: not moved %s → %s, another process has it at %s",
                    attempt.transaction_id, attempt.status.value, S(status).value,
                    current.status.value)
        raise AttemptMoved(current)
    return current


def abandon(ctx, attempt, reason, status=S.FAILED, message=None):
    """Close an attempt that was never sent (``failed``, or ``skipped`` on purpose).

    Only an attempt still ``created``: if another process has sent it meanwhile, it is
    left alone and returned as it is (never failed while its SALE may be approved).
    """
    if attempt.status != S.CREATED:
        return load(ctx, attempt.id)
    try:
        return _save(ctx, attempt, status, reason, message=(message or reason)[:255])
    except AttemptMoved as exc:
        return exc.attempt


def _yield_when_moved(step):
    """Run a journal step; when another process moved the attempt first, stop and return
    the attempt as that process left it (it finishes the job: no second SALE, no second post)."""
    @functools.wraps(step)
    def wrapper(ctx, attempt, *args, **kwargs):
        try:
            return step(ctx, attempt, *args, **kwargs)
        except AttemptMoved as exc:
            return exc.attempt

    return wrapper


def terminal_of(ctx, attempt):
    """The terminal the attempt is on. Attempts opened before terminals were recorded
    (migration 0004) are on the default."""
    return Terminal(attempt.gateway_mode or GatewayMode.TEST,
                    attempt.terminal_id or ctx.settings["IPPAY_TERMINAL_ID"])


def gateway_of(ctx, attempt):
    """The IPpay client of the terminal the attempt is on (ENQ must ask the same one)."""
    return ctx.gateways.client(terminal_of(ctx, attempt))


def _turn(ctx, slots, attempt):
    """A charge worker's gateway slot on the attempt's terminal (services/charge_runs/
    slots.py), taken before the attempt is marked sent so that ``sent`` always means "on
    its way", never "waiting its turn"; elsewhere nothing to wait for."""
    return slots.turn(terminal_of(ctx, attempt)) if slots is not None \
        else contextlib.nullcontext()


# --- the guard ------------------------------------------------------------------------------

class _Skip(NamedTuple):
    reason: str
    message: str


def _approvals_of(column):
    attempts = PaymentAttempt.__table__
    return select(attempts.c.id, attempts.c.transaction_id).where(
        attempts.c.kind == bindparam("kind"), attempts.c[column] == bindparam("document_id"),
        attempts.c.id != bindparam("attempt_id"),
        attempts.c.status.in_([S.APPROVED, S.POST_PENDING])).limit(1)


#: Built once (models._conditional_update says why), per document column.
_APPROVALS = {AttemptKind.INVOICE: _approvals_of("invoice_id"),
              AttemptKind.PROFORMA: _approvals_of("proforma_id")}


def _approval_not_in_splynx(ctx, attempt):
    """Another attempt on the same document that the gateway approved and Splynx has not
    recorded yet (its id and transaction_id): the document is paid, whatever Splynx says."""
    with session_scope(ctx.sessions) as session:
        return session.execute(_APPROVALS[attempt.kind], {
            "kind": attempt.kind, "document_id": attempt.document_id,
            "attempt_id": attempt.id}).first()


def _recheck(ctx, attempt):
    """Read the attempt's document again, now that the attempt holds its lock.

    Returns ``(skip, amount_cents)``: a :class:`_Skip` when nothing may be charged, else
    None and the amount to charge. Raises SplynxError when Splynx does not answer.
    """
    if attempt.kind == AttemptKind.REFILL:
        return None, attempt.amount_cents
    if attempt.kind == AttemptKind.BALANCE:
        return _recheck_balance(ctx, attempt)
    other = _approval_not_in_splynx(ctx, attempt)
    if other is not None:
        return _Skip(f"paid meanwhile by {other.transaction_id}, not yet in Splynx",
                     N_("Paid meanwhile: another payment of it was approved.")), None
    document = documents.read(ctx.splynx, attempt.document_kind, attempt.document_id)
    if document.customer_id != attempt.customer_id:
        return _Skip("the document belongs to another customer",
                     N_("Not charged: the document is not this customer's.")), None
    if document.status == "paid" or (document.status != "deleted" and document.due_cents <= 0):
        return _Skip("paid meanwhile", N_("Paid meanwhile: nothing is due any more.")), None
    if document.status == "deleted" or (attempt.channel == Channel.CHARGE_RUN
                                        and document.status != "not_paid"):
        return _Skip(f"the document is {document.status}",
                     f"Not charged: the {attempt.document_kind} is {document.status}."), None
    if document.due_cents != attempt.amount_cents and \
            attempt.channel in CONFIRMED_AMOUNT_CHANNELS:
        return _Skip(f"amount due changed from {format_cents(attempt.amount_cents)} to "
                     f"{format_cents(document.due_cents)}",
                     N_("The amount due has just changed. Please check it and pay again.")), None
    return None, document.due_cents


def _recheck_balance(ctx, attempt):
    """A balance charge: what the customer owes now. Any other payment of theirs still in
    flight, or approved and not yet in Splynx, may settle it: nothing is charged then."""
    with session_scope(ctx.sessions) as session:
        other = session.execute(select(PaymentAttempt).where(
            PaymentAttempt.customer_id == attempt.customer_id, PaymentAttempt.id != attempt.id,
            PaymentAttempt.status.in_([S.CREATED, S.SENT, S.UNKNOWN, S.APPROVED,
                                       S.POST_PENDING]))).scalars().first()
    if other is not None:
        return _Skip(f"another payment of the customer is open ({other.transaction_id})",
                     "Not charged: another payment of this customer is in progress."), None
    owed = -ctx.splynx.get_customer_billing(attempt.customer_id).deposit_cents
    if owed <= 0:
        return _Skip("nothing owed any more", "Paid meanwhile: nothing is owed any more."), None
    return None, owed


@_yield_when_moved
def charge(ctx, attempt, source=None, slots=None):
    """Charge an opened attempt once — the only way to a SALE or a CHECK — and settle and
    post it.

    Under the attempt's lock the document is read again (:func:`_recheck`); then the
    worker's gateway slot is taken (``slots``), the attempt marked sent, and the SALE made:
    to the attempt's saved token, or to ``source.typed`` (a card typed in, sent with its
    CVV2 and ``Tokenize="true"`` so that the approval carries the token to keep). A bank
    attempt is a CHECK instead, with the SEC code, account type and holder fixed when it
    was opened, to its token or to the account typed in (``source.bank.account``,
    tokenized likewise). Returns the attempt as it ends: skipped, posted, post_pending,
    declined, failed, or unknown when neither the gateway nor ENQ could tell what happened
    (reconcile settles it later).
    """
    typed = source.typed if source is not None else None
    if attempt.is_bank:
        typed = source.bank.account if source is not None and source.bank is not None else None
    if typed is None and not attempt.token:
        return abandon(ctx, attempt, "nothing to charge: the card typed in is gone",
                       message=N_("The payment was interrupted before it was sent. "
                                  "Nothing was charged."))
    try:
        skip, amount = _recheck(ctx, attempt)
    except SplynxError as exc:
        log.warning("attempt %s: document not read again, not charged: %s",
                    attempt.transaction_id, exc)
        return abandon(ctx, attempt, "Splynx did not answer before charging",
                       message=N_("The billing system did not answer. Nothing was charged."))
    if skip is not None:
        log.info("attempt %s skipped: %s", attempt.transaction_id, skip.reason)
        return abandon(ctx, attempt, skip.reason, status=S.SKIPPED, message=skip.message)
    if amount != attempt.amount_cents:
        # What is due now, and the fee on it at the rate the attempt was opened with.
        fee = fees.compute(amount, _fee_rate_of(attempt))
        attempt = _save(ctx, attempt, note=None, amount_cents=amount, fee_cents=fee.fee_cents,
                        fee_tax_cents=fee.tax_cents)
        log.info("attempt %s: amount due is now %s", attempt.transaction_id, format_cents(amount))
    gateway = gateway_of(ctx, attempt)
    with _turn(ctx, slots, attempt):
        # Whoever moves it from created to sent sends it; anyone else must not (AttemptMoved).
        verb = f"CHECK {attempt.sec_code}" if attempt.is_bank else "SALE"
        with first_in_line():  # the slot is held: this write goes before the bookkeeping
            attempt = _save(ctx, attempt, S.SENT,
                            f"{verb} {format_cents(attempt.charged_cents)}"
                            + (f" (fee {format_cents(attempt.fee_total_cents)})"
                               if attempt.fee_total_cents else ""))
        # The amount and the fee with its VAT, as committed: one SALE (or CHECK) for both.
        charged = attempt.charged_cents
        try:
            if attempt.is_bank:
                result = gateway.check(
                    attempt.transaction_id, charged, attempt.holder_name,
                    account=typed, token=None if typed is not None else attempt.token,
                    account_type=attempt.account_type, sec=attempt.sec_code,
                    tokenize=typed is not None)
            elif typed is not None:
                result = gateway.sale(attempt.transaction_id, charged, card=typed,
                                      tokenize=True, origin=attempt.origin,
                                      order_number=attempt.document_number)
            else:
                result = gateway.sale(attempt.transaction_id, charged,
                                      token=attempt.token, origin=attempt.origin,
                                      order_number=attempt.document_number)
        except GatewayError as exc:
            result = exc
    # Outside the turn: settling by ENQ takes a turn of its own.
    if isinstance(result, GatewayError):
        return _send_failed(ctx, attempt, result, slots)
    return _record_result(ctx, attempt, result)


def _fee_rate_of(attempt):
    """The fee rate the attempt was opened with (None: no fee)."""
    if not attempt.fee_rate:
        return None
    return fees.FeeRate(attempt.fee_rate, attempt.fee_vat_rate or 0,
                        attempt.fee_text or "Service fee")


def fee_key(attempt):
    """The key the Splynx fee transaction of ``attempt`` carries in its comment."""
    return f"IPPAY-FEE-{attempt.transaction_id}"


def fee_category(ctx):
    """The Splynx transaction category fees are booked in (module setting, else the one
    named settings.FEE_CATEGORY_NAME, created when missing). Raises SplynxError."""
    chosen = ctx.module_settings.current().fees.category_id
    return chosen or ctx.splynx.ensure_transaction_category(FEE_CATEGORY_NAME)


def _book_fee(ctx, attempt):
    """The Splynx debit of the attempt's fee, found by its key or created; returns its id.

    Booked before the payment: the payment (the amount with the fee) then pays the
    document and what is left of it settles this debit, as Splynx spreads money
    (splynx-platform §2.4), so the customer's balance ends where the document alone
    would have left it.
    """
    key = fee_key(attempt)
    found = [t for t in ctx.splynx.find_transactions(customer_id=attempt.customer_id,
                                                     comment=key) if t.comment == key]
    if found:
        return found[0].id
    text = attempt.fee_text or "Service fee"
    return ctx.splynx.create_transaction(
        customer_id=attempt.customer_id, kind="debit", price_cents=attempt.fee_cents,
        tax_percent=fees.rate_decimal(attempt.fee_vat_rate), date=ctx.today(),
        category_id=fee_category(ctx),
        description=f"{text} ({fees.format_rate(attempt.fee_rate)} %, IPpay "
                    f"{attempt.transaction_id})",
        comment=key)


def _send_failed(ctx, attempt, error, slots):
    """The SALE raised: nothing was sent (failed), or the outcome is unknown (ENQ)."""
    if isinstance(error, GatewayRequestError):
        log.error("attempt %s refused before sending: %s", attempt.transaction_id, error)
        return _save(ctx, attempt, S.FAILED, "invalid request", last_error=str(error)[:2000],
                     message=N_("The payment could not be sent. Nothing was charged."))
    if isinstance(error, GatewayNotSentError):
        log.warning("attempt %s not sent: %s", attempt.transaction_id, error)
        return _save(ctx, attempt, S.FAILED, "gateway unreachable", last_error=str(error)[:2000],
                     message=N_("The payment gateway could not be reached. Nothing was charged."))
    log.warning("attempt %s outcome unknown: %s", attempt.transaction_id, error)
    attempt = _save(ctx, attempt, S.UNKNOWN, "no clear answer", last_error=str(error)[:2000])
    return settle(ctx, attempt, backoff=ENQ_BACKOFF, slots=slots)


def _record_result(ctx, attempt, result, note=None):
    """Move the attempt to approved (then post) or declined from a gateway result."""
    fields = dict(action_code=result.action_code, response_text=(result.response_text or "")[:120],
                  message=result.message[:255])
    if result.approved:
        if result.token and not attempt.token:
            fields["token"] = result.token  # a card typed in: the token the SALE made
        attempt = _save(ctx, attempt, S.APPROVED, note, approval=result.approval, **fields)
        log.info("attempt %s approved (%s)", attempt.transaction_id, result.approval)
        # This process's move to approved won: nobody can have posted the attempt yet.
        return post(ctx, attempt, first=True)
    log.info("attempt %s declined: %s %s", attempt.transaction_id, result.action_code,
             result.response_text)
    return _save(ctx, attempt, S.DECLINED, note, **fields)


@_yield_when_moved
def settle(ctx, attempt, backoff=(), slots=None):
    """Ask the gateway (ENQ, same TransactionID) what became of an attempt that was sent.

    Tries once, then once more after each pause in ``backoff``. An attempt the gateway
    has no record of (025) was never processed, so it fails with nothing charged.
    """
    gateway = gateway_of(ctx, attempt)
    for pause in (0, *backoff):
        time.sleep(pause)
        try:
            with _turn(ctx, slots, attempt):
                result = gateway.enquire(attempt.transaction_id)
        except GatewayError as exc:
            log.warning("ENQ for %s failed: %s", attempt.transaction_id, exc)
            attempt = _save(ctx, attempt, last_error=f"ENQ: {exc}"[:2000])
            continue
        if attempt.status == S.SENT:
            attempt = _save(ctx, attempt, S.UNKNOWN, "settling by ENQ")
        if result.not_found:
            return _save(ctx, attempt, S.FAILED, "ENQ: not found",
                         message=N_("The payment did not reach the card network. Nothing was charged."))
        return _record_result(ctx, attempt, result, note="settled by ENQ")
    return attempt


@_yield_when_moved
def post(ctx, attempt, first=False):
    """Record an approved attempt as exactly one Splynx payment (of the amount with the fee)
    and, when it has a fee, exactly one fee debit before it (:func:`_book_fee`).

    Looks for a payment carrying the TransactionID first (and for the fee debit carrying
    :func:`fee_key`), so that a retry after a lost answer or a crash never records the
    money twice. ``first`` is for the process that has just moved the attempt to approved:
    only :func:`post` makes a payment with its TransactionID, so there is none yet to look
    for (one Splynx call fewer per charge). Only after the move to posted is the payment
    logged in a payment statement (statements.py): bookkeeping that can neither block nor
    repeat the payment, completed by reconcile when it fails here.
    """
    if attempt.return_code:
        # Returned by the bank before Splynx took it: never recorded (ach_returns finishes it).
        return attempt
    splynx = ctx.splynx
    try:
        if attempt.fee_total_cents and attempt.fee_transaction_id is None:
            attempt = _save(ctx, attempt, fee_transaction_id=_book_fee(ctx, attempt))
        # Pinned to the customer as well: the same answer (the payment is the customer's),
        # and Splynx searches one customer's payments instead of all of them.
        found = [] if first else splynx.find_payments(customer_id=attempt.customer_id,
                                                      field_1=attempt.transaction_id)
        # Checked here too: a search that ignored the filter must not pass another
        # payment off as this one (the approval would never be recorded).
        found = [p for p in found if p.field_1 == attempt.transaction_id]
        if found:
            payment_id, payment_date = found[0].id, found[0].date or ctx.today()
        else:
            method = statements.payment_method_of(ctx, attempt)
            if method is None:
                raise SplynxError("no payment method is set in the module settings")
            payment_date = ctx.today()
            payment_id = splynx.create_payment(
                customer_id=attempt.customer_id,
                amount_cents=attempt.charged_cents,
                payment_type=method,
                date=payment_date,
                receipt_number=f"IPPAY-{attempt.transaction_id}",
                invoice_id=attempt.invoice_id,
                request_id=attempt.proforma_id,
                comment=f"IPpay transaction {attempt.transaction_id}, approval {attempt.approval}"
                        + (f", ACH {attempt.sec_code}" if attempt.is_bank else "")
                        + _fee_words(attempt),
                note=("Paid by bank account " if attempt.is_bank else "Paid by card ")
                     + attempt.masked_card + _fee_words(attempt),
                field_1=attempt.transaction_id,
                field_2=attempt.masked_card,
            )
    except SplynxError as exc:
        log.warning("attempt %s approved but not recorded in Splynx: %s",
                    attempt.transaction_id, exc)
        status = S.POST_PENDING if attempt.status == S.APPROVED else None
        return _save(ctx, attempt, status, "Splynx refused or did not answer",
                     post_tries=attempt.post_tries + 1, last_error=str(exc)[:2000])
    log.info("attempt %s recorded as Splynx payment %s", attempt.transaction_id, payment_id)
    attempt = _save(ctx, attempt, S.POSTED, f"Splynx payment {payment_id}",
                    splynx_payment_id=payment_id, post_tries=attempt.post_tries + 1)
    # Reached only by the process whose move to posted won (AttemptMoved otherwise), so
    # the payment is logged once; a failure here leaves it posted (see statements.py). The
    # receipt (when the module setting asks for them) is queued once per attempt likewise.
    attempt = statements.log_payment(ctx, attempt, payment_date, new_payment=not found)
    notices.receipt(ctx, attempt)
    return attempt


def _fee_words(attempt):
    if not attempt.fee_total_cents:
        return ""
    return (f"; {format_cents(attempt.amount_cents)} and "
            f"{attempt.fee_text or 'Service fee'} {format_cents(attempt.fee_total_cents)}")


def splynx_payment_of(ctx, attempt):
    """The id of the attempt's Splynx payment (recorded, else found by its TransactionID in
    ``field_1``), or None; raises SplynxError."""
    if attempt.splynx_payment_id is not None:
        return attempt.splynx_payment_id
    found = [p for p in ctx.splynx.find_payments(customer_id=attempt.customer_id,
                                                 field_1=attempt.transaction_id)
             if p.field_1 == attempt.transaction_id]
    return found[0].id if found else None


def delete_splynx_payment(ctx, attempt):
    """Delete the attempt's Splynx payment (a void, an ACH return): the invoice it paid is
    due again. Returns its id, or None when there is none; a payment deleted already (a
    retry after a lost answer) is not an error. Raises SplynxError."""
    payment_id = splynx_payment_of(ctx, attempt)
    if payment_id is not None:
        try:
            ctx.splynx.delete_payment(payment_id)
        except SplynxNotFoundError:
            pass  # deleted already (a retry after a lost answer)
    return payment_id


def note_return(ctx, attempt, code, returned_on, note=None):
    """Write a bank debit's return (code, day) on the attempt, before anything is reversed:
    from then on it is never posted, and an interrupted reversal is finished later
    (services/ach_returns.py)."""
    attempt = _save(ctx, attempt, return_code=code[:4], returned_on=returned_on)
    log.info("attempt %s returned by the bank: %s%s", attempt.transaction_id, code,
             f" ({note})" if note else "")
    return attempt


def write_note(ctx, attempt, **fields):
    """Write bookkeeping fields of an attempt (no status move); the attempt as it is now."""
    return _save(ctx, attempt, **fields)


def mark_returned(ctx, attempt, note):
    """A bank debit whose return was reversed in Splynx ends ``returned`` (its payment
    deleted). Returns ``(attempt, won)``: ``won`` True for the one process that made the
    move (it alone notifies the customer, books a fee …)."""
    try:
        return _save(ctx, attempt, S.RETURNED, note, splynx_payment_id=None), True
    except AttemptMoved as exc:
        return exc.attempt, False


@_yield_when_moved
def mark_voided(ctx, attempt, note):
    """A posted attempt whose void went through (refunds.py) ends ``voided``: its Splynx
    payment is deleted, so the attempt no longer names it (the event keeps the history)."""
    return _save(ctx, attempt, S.VOIDED, note, splynx_payment_id=None)


def reconcile(ctx, min_age_seconds=None, limit=500):
    """Finish every attempt left half-way: settle sent/unknown by ENQ, post approvals.

    Attempts younger than ``min_age_seconds`` (default: the gateway read timeout plus a
    margin) are left alone: a web request may still be waiting on them. Charge-run attempts
    belong to the worker that claimed them (services/charge_runs): it finishes them itself,
    and takes over those of a worker that died. Returns a count per resulting status.
    """
    if min_age_seconds is None:
        min_age_seconds = ctx.settings["IPPAY_READ_TIMEOUT"] + 15
    cutoff = utcnow() - dt.timedelta(seconds=min_age_seconds)
    with session_scope(ctx.sessions) as session:
        rows = session.execute(
            select(PaymentAttempt)
            .where(PaymentAttempt.status.in_([S.CREATED, S.SENT, S.UNKNOWN, S.APPROVED,
                                              S.POST_PENDING]))
            .where(PaymentAttempt.updated_at <= cutoff)
            .where(PaymentAttempt.channel != Channel.CHARGE_RUN)
            .order_by(PaymentAttempt.id).limit(limit)
        ).scalars().all()
    counts = {}
    for attempt in rows:
        if attempt.status == S.CREATED:
            # Committed as created but never marked sent: the request never left.
            attempt = abandon(ctx, attempt, "never sent")
        elif attempt.status in (S.SENT, S.UNKNOWN):
            attempt = settle(ctx, attempt)
        else:
            attempt = post(ctx, attempt)
        counts[attempt.status.value] = counts.get(attempt.status.value, 0) + 1
    from . import ach_returns  # here: ach_returns builds on this module

    returned = ach_returns.finish_pending(ctx)
    if returned:
        counts["returned"] = counts.get("returned", 0) + returned
    return counts
