"""The payment journal: the only place that orders the steps of moving money.

    open (commit) → sent (commit) → SALE → approved | declined | unknown
    unknown → ENQ with the same TransactionID → approved | declined | failed
    approved → find or create the Splynx payment → posted | post_pending

Invariants (design.md §3), each relied on below:

1. The attempt and its TransactionID are committed before the request leaves.
2. An unknown outcome is settled by ENQ with the same TransactionID, never by a second SALE.
3. A document has at most one attempt that is not final: the ``lock_key`` unique index.
4. An approval becomes exactly one Splynx payment: the payment carries the TransactionID in
   ``field_1``, and before creating one the journal looks for it.
5. No card number or CVV reaches this module: attempts charge a saved token.
"""

import contextlib
import datetime as dt
import functools
import logging
import time

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from ..db import session_scope
from ..ippay import GatewayError, GatewayNotSentError, GatewayRequestError, new_transaction_id
from ..models import AttemptKind, AttemptStatus, AttemptStatus as S, PaymentAttempt, utcnow
from ..splynx import SplynxError
from ..money import format_cents
from . import statements

log = logging.getLogger(__name__)

#: Pauses between ENQ tries while a customer waits for an unknown outcome.
ENQ_BACKOFF = (0.5, 1.5)


class AttemptMoved(Exception):
    """Another process moved the attempt on first (compare-and-set lost); ``attempt`` is the
    attempt as it stands now."""

    def __init__(self, attempt):
        super().__init__(f"attempt {attempt.transaction_id} is already {attempt.status}")
        self.attempt = attempt


class AttemptInProgress(Exception):
    """Another attempt on the same document is not final yet."""

    def __init__(self, attempt):
        super().__init__(f"attempt {attempt.transaction_id} is {attempt.status}")
        self.attempt = attempt


def lock_key(kind, customer_id, document_id=None):
    """The key that allows one open attempt per document (one per balance for refills)."""
    if kind == AttemptKind.REFILL:
        return f"refill:{customer_id}"
    return f"{kind.value}:{document_id}"


def open_attempt(addon, *, kind, customer_id, amount_cents, card, channel, document_id=None,
                 document_number=None, request_key=None, origin="INTERNET", admin_id=None):
    """Write and commit a new attempt, holding the document's lock.

    Returns the attempt. If ``request_key`` was used before, returns that earlier attempt
    instead (a resubmitted form). Raises :class:`AttemptInProgress` when another attempt on
    the document is not final.
    """
    if not isinstance(amount_cents, int) or amount_cents <= 0:
        raise ValueError(f"amount must be positive integer cents, got {amount_cents!r}")
    kind = AttemptKind(kind)
    attempt = PaymentAttempt(
        transaction_id=new_transaction_id(), kind=kind.value, status=S.CREATED.value,
        lock_key=lock_key(kind, customer_id, document_id), request_key=request_key,
        channel=channel, customer_id=customer_id, amount_cents=amount_cents, origin=origin,
        invoice_id=document_id if kind == AttemptKind.INVOICE else None,
        proforma_id=document_id if kind == AttemptKind.PROFORMA else None,
        document_number=document_number, card_id=card.id, token=card.token,
        card_brand=card.brand, card_last4=card.last4, admin_id=admin_id,
    )
    session = addon.sessions()
    try:
        session.add(attempt)
        session.flush()
        attempt.events  # noqa: B018 - load the empty list so move_to can append after commit
        session.commit()
        log.info("attempt %s opened: %s %s for customer %s, %s", attempt.transaction_id,
                 kind.value, document_number or "", customer_id, format_cents(amount_cents))
        return attempt
    except IntegrityError:
        session.rollback()
        conditions = [PaymentAttempt.lock_key == attempt.lock_key]
        if request_key:
            conditions.append(PaymentAttempt.request_key == request_key)
        existing = session.execute(select(PaymentAttempt).where(or_(*conditions))
                                   .order_by(PaymentAttempt.id)).scalars().all()
        by_request = [a for a in existing if request_key and a.request_key == request_key]
        if by_request:
            # Opened by an earlier submission of the same form, which may be charging it
            # right now: the caller must not charge it as its own.
            by_request[0].reused = True
            return by_request[0]
        if existing:
            raise AttemptInProgress(existing[0]) from None
        raise
    finally:
        session.close()


def find_by_request_key(addon, customer_id, request_key):
    """The customer's attempt started by the form with this one-time key, or None."""
    if not request_key:
        return None
    with session_scope(addon.sessions) as session:
        return session.execute(
            select(PaymentAttempt).where(PaymentAttempt.request_key == request_key,
                                         PaymentAttempt.customer_id == customer_id)
        ).scalar_one_or_none()


def _load(addon, attempt_id):
    with session_scope(addon.sessions) as session:
        return session.get(PaymentAttempt, attempt_id)


def _save(addon, attempt, status=None, note=None, **fields):
    """Apply a status move and fields to the attempt and commit them.

    A status move is a compare-and-set: it happens only while the attempt still has the
    status the caller read (``attempt.status``). The conditional UPDATE comes first, so it
    also locks the row (the whole file on SQLite) until the commit. When another process
    (a second submit, a stalled worker, reconcile) moved the attempt meanwhile, nothing is
    written and :class:`AttemptMoved` carries the attempt as it is now.
    """
    with session_scope(addon.sessions) as session:
        if status is not None and session.execute(
                update(PaymentAttempt)
                .where(PaymentAttempt.id == attempt.id, PaymentAttempt.status == attempt.status)
                .values(updated_at=utcnow())
                .execution_options(synchronize_session=False)).rowcount != 1:
            row = None
        else:
            row = session.get(PaymentAttempt, attempt.id)
            for name, value in fields.items():
                setattr(row, name, value)
            if status is not None:
                row.move_to(status, note)
            session.flush()
            session.refresh(row)
    if row is None:
        current = _load(addon, attempt.id)
        log.warning("attempt %s: not moved %s → %s, another process has it at %s",
                    attempt.transaction_id, attempt.status, AttemptStatus(status).value,
                    current.status)
        raise AttemptMoved(current)
    return row


def abandon(addon, attempt, reason):
    """Close an attempt that was never sent (for example, the invoice was paid meanwhile).

    Only an attempt still ``created``: if another process has sent it meanwhile, it is
    left alone and returned as it is (never failed while its SALE may be approved).
    """
    if attempt.state != S.CREATED:
        return _load(addon, attempt.id)
    try:
        return _save(addon, attempt, S.FAILED, reason, message=reason)
    except AttemptMoved as exc:
        return exc.attempt


def _yield_when_moved(step):
    """Run a journal step; when another process moved the attempt first, stop and return
    the attempt as that process left it (it finishes the job: no second SALE, no second post)."""
    @functools.wraps(step)
    def wrapper(addon, attempt, *args, **kwargs):
        try:
            return step(addon, attempt, *args, **kwargs)
        except AttemptMoved as exc:
            return exc.attempt

    return wrapper


def _gateway_turn(addon):
    """The moment to send: a charge worker's gateway slot (services/charging.py), taken
    before the attempt is marked sent, so that ``sent`` always means "on its way" and never
    "waiting its turn" (a worker killed while waiting leaves nothing to ask ENQ about).
    Elsewhere the gateway is used as it is."""
    if hasattr(type(addon.gateway), "turn"):
        return addon.gateway.turn()
    return contextlib.nullcontext(addon.gateway)


@_yield_when_moved
def charge(addon, attempt):
    """Charge an opened attempt's token once, settle the outcome, and post an approval.

    Returns the attempt as it ends: posted, post_pending, declined, failed, or unknown when
    neither the SALE nor ENQ could tell what happened (reconcile settles it later).
    """
    with _gateway_turn(addon) as gateway:
        # Whoever moves it from created to sent sends it; anyone else must not (AttemptMoved).
        attempt = _save(addon, attempt, S.SENT)
        try:
            result = gateway.sale(attempt.transaction_id, attempt.amount_cents,
                                  token=attempt.token, origin=attempt.origin,
                                  order_number=attempt.document_number)
        except GatewayError as exc:
            result = exc
    # Outside the turn: settling by ENQ takes a turn of its own.
    if isinstance(result, GatewayError):
        return _send_failed(addon, attempt, result)
    return _record_result(addon, attempt, result)


def _send_failed(addon, attempt, error):
    """The SALE raised: nothing was sent (failed), or the outcome is unknown (ENQ)."""
    if isinstance(error, GatewayRequestError):
        log.error("attempt %s refused before sending: %s", attempt.transaction_id, error)
        return _save(addon, attempt, S.FAILED, "invalid request", last_error=str(error)[:2000],
                     message="The payment could not be sent. Nothing was charged.")
    if isinstance(error, GatewayNotSentError):
        log.warning("attempt %s not sent: %s", attempt.transaction_id, error)
        return _save(addon, attempt, S.FAILED, "gateway unreachable", last_error=str(error)[:2000],
                     message="The payment gateway could not be reached. Nothing was charged.")
    log.warning("attempt %s outcome unknown: %s", attempt.transaction_id, error)
    attempt = _save(addon, attempt, S.UNKNOWN, "no clear answer", last_error=str(error)[:2000])
    return settle(addon, attempt, backoff=ENQ_BACKOFF)


def _record_result(addon, attempt, result, note=None):
    """Move the attempt to approved (then post) or declined from a gateway result."""
    fields = dict(action_code=result.action_code, response_text=(result.response_text or "")[:120],
                  message=result.message[:255])
    if result.approved:
        attempt = _save(addon, attempt, S.APPROVED, note, approval=result.approval, **fields)
        log.info("attempt %s approved (%s)", attempt.transaction_id, result.approval)
        return post(addon, attempt)
    log.info("attempt %s declined: %s %s", attempt.transaction_id, result.action_code,
             result.response_text)
    return _save(addon, attempt, S.DECLINED, note, **fields)


@_yield_when_moved
def settle(addon, attempt, backoff=()):
    """Ask the gateway (ENQ, same TransactionID) what became of an attempt that was sent.

    Tries once, then once more after each pause in ``backoff``. An attempt the gateway
    has no record of (025) was never processed, so it fails with nothing charged.
    """
    for pause in (0, *backoff):
        time.sleep(pause)
        try:
            result = addon.gateway.enquire(attempt.transaction_id)
        except GatewayError as exc:
            log.warning("ENQ for %s failed: %s", attempt.transaction_id, exc)
            attempt = _save(addon, attempt, last_error=f"ENQ: {exc}"[:2000])
            continue
        if attempt.state == S.SENT:
            attempt = _save(addon, attempt, S.UNKNOWN, "settling by ENQ")
        if result.not_found:
            return _save(addon, attempt, S.FAILED, "ENQ: not found",
                         message="The payment did not reach the card network. Nothing was charged.")
        return _record_result(addon, attempt, result, note="settled by ENQ")
    return attempt


@_yield_when_moved
def post(addon, attempt):
    """Record an approved attempt as exactly one Splynx payment.

    Looks for a payment carrying the TransactionID first, so that a retry after a lost
    answer or a crash never records the money twice. Only after the move to posted is the
    payment logged in a payment statement (statements.py): bookkeeping that can neither
    block nor repeat the payment, completed by reconcile when it fails here.
    """
    splynx = addon.splynx
    try:
        # Pinned to the customer as well: the same answer (the payment is the customer's),
        # and Splynx searches one customer's payments instead of all of them.
        found = splynx.find_payments(customer_id=attempt.customer_id,
                                     field_1=attempt.transaction_id)
        # Checked here too: a search that ignored the filter must not pass another
        # payment off as this one (the approval would never be recorded).
        found = [p for p in found if p.field_1 == attempt.transaction_id]
        if found:
            payment_id, payment_date = found[0].id, found[0].date or addon.today()
        else:
            settings = addon.module_settings.get()
            payment_date = addon.today()
            payment_id = splynx.create_payment(
                customer_id=attempt.customer_id,
                amount_cents=attempt.amount_cents,
                payment_type=settings["payment_method_id"],
                date=payment_date,
                receipt_number=f"IPPAY-{attempt.transaction_id}",
                invoice_id=attempt.invoice_id,
                request_id=attempt.proforma_id,
                comment=f"IPpay transaction {attempt.transaction_id}, approval {attempt.approval}",
                note=f"Paid by card {attempt.masked_card}",
                field_1=attempt.transaction_id,
                field_2=attempt.masked_card,
            )
    except SplynxError as exc:
        log.warning("attempt %s approved but not recorded in Splynx: %s",
                    attempt.transaction_id, exc)
        status = S.POST_PENDING if attempt.state == S.APPROVED else None
        return _save(addon, attempt, status, "Splynx refused or did not answer",
                     post_tries=attempt.post_tries + 1, last_error=str(exc)[:2000])
    log.info("attempt %s recorded as Splynx payment %s", attempt.transaction_id, payment_id)
    attempt = _save(addon, attempt, S.POSTED, f"Splynx payment {payment_id}",
                    splynx_payment_id=payment_id, post_tries=attempt.post_tries + 1)
    # Reached only by the process whose move to posted won (AttemptMoved otherwise), so
    # the payment is logged once; a failure here leaves it posted (see statements.py).
    return statements.log_payment(addon, attempt, payment_date, new_payment=not found)


#: Attempts of charge runs belong to the worker that claimed them: it finishes them itself,
#: and takes over those of a worker that died (services/charging.py). A worker may hold an
#: attempt as sent while it waits for a free gateway slot, longer than any age limit here.
CHARGE_RUN_CHANNEL = "charge_run"


def reconcile(addon, min_age_seconds=None, limit=500):
    """Finish every attempt left half-way: settle sent/unknown by ENQ, post approvals.

    Attempts younger than ``min_age_seconds`` (default: the gateway read timeout plus a
    margin) are left alone: a web request may still be waiting on them. Charge-run attempts
    are the worker's (:data:`CHARGE_RUN_CHANNEL`). Returns a count per resulting status.
    """
    if min_age_seconds is None:
        min_age_seconds = addon.settings["IPPAY_READ_TIMEOUT"] + 15
    cutoff = utcnow() - dt.timedelta(seconds=min_age_seconds)
    with session_scope(addon.sessions) as session:
        rows = session.execute(
            select(PaymentAttempt)
            .where(PaymentAttempt.status.in_([s.value for s in
                                              (S.CREATED, S.SENT, S.UNKNOWN, S.APPROVED, S.POST_PENDING)]))
            .where(PaymentAttempt.updated_at <= cutoff)
            .where(PaymentAttempt.channel != CHARGE_RUN_CHANNEL)
            .order_by(PaymentAttempt.id).limit(limit)
        ).scalars().all()
    counts = {}
    for attempt in rows:
        if attempt.state == S.CREATED:
            # Committed as created but never marked sent: the request never left.
            attempt = abandon(addon, attempt, "never sent")
        elif attempt.state in (S.SENT, S.UNKNOWN):
            attempt = settle(addon, attempt)
        else:
            attempt = post(addon, attempt)
        counts[attempt.status] = counts.get(attempt.status, 0) + 1
    return counts
