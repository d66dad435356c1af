"""Voids and refunds of approved payments: a second journal with the same rules as the first.

A void (IPpay VOID) cancels a sale the same day, before the batch settles: no money moved,
so the Splynx payment is deleted, the invoice is unpaid again, and the attempt ends
``voided``. A refund (a linked IPpay CREDIT on the sale's TransactionID, full or partial)
gives money back after settlement: the Splynx payment stays (the money was received) and a
debit transaction in the "Refund" category records the money going back, lowering the
customer's balance — how Splynx books refunds (splynx-platform §2.6).

Journal rules, as for payments: a refund row is committed before the gateway hears of it;
one refund or void per payment is open at a time (``lock_key``); the amounts approved never
exceed what the payment took; every status move is a compare-and-set along
``models.REFUND_TRANSITIONS`` with its event; an unknown outcome is settled by ENQ, never by
a second CREDIT; the Splynx record carries the refund's key in its comment and is looked for
before it is written, so it is written once. The worker reconciles refunds left half-way.

Service fees (services/fees.py, docs/fees.md): staff refund an amount of the payment (not
counting the fee); the same fraction of the fee and of its VAT goes back with it
(``fees.refund_share``, fixed inside the refund lock and kept on the row), so the gateway
gives back the amount and that share, and Splynx gets the refund debit of both and a credit
in the fee category that takes back the fee's share. A void gives back the whole fee.
"""

import datetime as dt
import logging

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from ..db import session_scope
from ..ippay import GatewayError, GatewayNotSentError, GatewayRequestError
from ..messages import UserError
from ..models import (AttemptStatus as S, PaymentAttempt, Refund, RefundKind, RefundStatus as R,
                      save, utcnow)
from ..money import format_cents
from ..splynx import SplynxError
from . import fees, journal

log = logging.getLogger(__name__)

#: The transaction category refunds are booked in, found by name (created at registration).
REFUND_CATEGORY_NAME = "Refund"
_GAVE_BACK = (R.APPROVED, R.POST_PENDING, R.POSTED)


class RefundError(UserError):
    """A refund or void cannot be done (a sentence for staff); nothing was sent."""


class RefundMoved(Exception):
    """Another process moved the refund first; ``refund`` is the row as it is now."""

    def __init__(self, refund):
        super().__init__(f"refund {refund.id} is already {refund.status.value}")
        self.refund = refund


def refunds_of(ctx, attempt_id):
    """The refunds and voids of one attempt, oldest first, with their history."""
    with session_scope(ctx.sessions) as session:
        rows = session.execute(select(Refund).where(Refund.attempt_id == attempt_id)
                               .order_by(Refund.id)).scalars().all()
        for row in rows:
            row.events  # noqa: B018 - loaded for the transaction page
        return rows


def refundable_cents(ctx, attempt):
    """What is left to give back of an approved attempt."""
    if not attempt.status.took_money:
        return 0
    done = sum(r.amount_cents for r in refunds_of(ctx, attempt.id) if r.status in _GAVE_BACK)
    return max(0, attempt.amount_cents - done)


def fee_share_of(ctx, attempt, amount_cents):
    """The fee's share a refund of ``amount_cents`` would give back now (for the
    confirmation page; the refund fixes its own inside the lock)."""
    return _fee_share(attempt, attempt.amount_cents - refundable_cents(ctx, attempt),
                      amount_cents)


def _fee_share(attempt, done_cents, amount_cents):
    """The fee's share of a refund of ``amount_cents`` after ``done_cents`` were refunded."""
    if not attempt.fee_total_cents or not 0 < amount_cents <= attempt.amount_cents - done_cents:
        return fees.NO_FEE
    return fees.refund_share(fees.Fee(attempt.fee_cents, attempt.fee_tax_cents),
                             attempt.amount_cents, done_cents, amount_cents)


def can_void(ctx, attempt, today=None):
    """Whether ``attempt`` may still be voided: posted today, nothing refunded yet."""
    today = today or utcnow().date()
    # Only once posted: a void deletes the Splynx payment, and one not yet recorded
    # would be recorded after the void by the journal's retry (money booked, none taken).
    # A bank debit has no void: IPpay retired VOIDACH (ippay §3); it is refunded by REVERSAL.
    return (attempt.status == S.POSTED and attempt.approval and not attempt.is_bank
            and attempt.created_at.date() == today
            and refundable_cents(ctx, attempt) == attempt.amount_cents)


def _load(ctx, refund_id):
    with session_scope(ctx.sessions) as session:
        return session.get(Refund, refund_id)


def _save(ctx, refund, status=None, note=None, **fields):
    """Compare-and-set ``refund`` to ``status`` (or only write ``fields``); commit."""
    with session_scope(ctx.sessions) as session:
        current, moved = save(session, refund, status, note, **fields)
    if not moved:
        raise RefundMoved(current)
    return current


def _open(ctx, attempt_id, kind, amount_cents, admin_id, reason):
    """Commit a refund row holding the payment's refund lock, checking the amount inside it."""
    if not isinstance(amount_cents, int) or amount_cents <= 0:
        raise RefundError("The amount must be more than zero.")
    session = ctx.sessions()
    try:
        attempt = session.get(PaymentAttempt, attempt_id)
        if attempt is None:
            raise RefundError("There is no such payment.")
        refund = Refund(attempt_id=attempt_id, kind=kind, status=R.CREATED,
                        lock_key=f"refund:{attempt_id}", amount_cents=amount_cents,
                        admin_id=admin_id, reason=(reason or "")[:255] or None)
        session.add(refund)
        session.flush()
        # Inside the lock no other refund of this payment can be approved, so the sum
        # read here is the one that counts.
        done = session.execute(select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
            Refund.attempt_id == attempt_id, Refund.status.in_(_GAVE_BACK))).scalar()
        left = attempt.amount_cents - int(done)
        share = _fee_share(attempt, int(done), amount_cents)
        refund.fee_cents, refund.fee_tax_cents = share
        session.add(Refund.Event(owner_id=refund.id, to_status=R.CREATED.value,
                                 note=f"{kind.value} of {format_cents(amount_cents)}"
                                      + (f" and fee {format_cents(share.total_cents)}"
                                         if share.total_cents else "")
                                      + f" by admin {admin_id}"))
        if attempt.status == S.VOIDED:
            raise RefundError("At most 0.00 can be refunded (of {total}): the payment was voided.",
                              total=format_cents(attempt.amount_cents))
        if not attempt.status.took_money:
            raise RefundError("Only an approved payment can be refunded or voided.")
        if amount_cents > left:
            raise RefundError("At most {left} can be refunded (of {total}).",
                              left=format_cents(left), total=format_cents(attempt.amount_cents))
        if kind == RefundKind.VOID and (left != attempt.amount_cents or amount_cents != left):
            raise RefundError("A payment that was partly refunded can no longer be voided.")
        if kind == RefundKind.VOID and attempt.status != S.POSTED:
            raise RefundError("This payment is not yet recorded in Splynx, so it cannot be "
                              "voided yet; try again once it is recorded, or refund it.")
        session.commit()
        return refund, attempt
    except IntegrityError:
        session.rollback()
        raise RefundError("Another refund or void of this payment is in progress; "
                          "wait for it to finish.") from None
    except RefundError:
        session.rollback()
        raise
    finally:
        session.close()


def void(ctx, attempt_id, admin_id, reason=None):
    """Void an approval of today (IPpay VOID, full amount) and delete its Splynx payment."""
    attempt = journal.load(ctx, attempt_id)
    if attempt is None:
        raise RefundError("There is no such payment.")
    if not can_void(ctx, attempt):
        raise RefundError("Only an approval of today that has not been refunded can be voided; "
                          "refund it instead.")
    refund, attempt = _open(ctx, attempt_id, RefundKind.VOID, attempt.amount_cents, admin_id,
                            reason)
    gateway = journal.gateway_of(ctx, attempt)
    return _send(ctx, refund, attempt, "voided", lambda: gateway.void(
        attempt.transaction_id, attempt.approval, attempt.charged_cents, token=attempt.token))


def refund(ctx, attempt_id, amount_cents, admin_id, reason=None):
    """Refund all or part of an approval (linked IPpay CREDIT) and book it in Splynx.

    ``amount_cents`` is the part of the payment's amount given back; the fee's share goes
    back with it in the same CREDIT (module docstring)."""
    refund_row, attempt = _open(ctx, attempt_id, RefundKind.REFUND, amount_cents, admin_id,
                                reason)
    gateway = journal.gateway_of(ctx, attempt)
    if attempt.is_bank:
        # A bank debit goes back by REVERSAL, with the CHECK's SEC code and account type.
        return _send(ctx, refund_row, attempt, "refunded", lambda: gateway.ach_reversal(
            attempt.transaction_id, amount_cents, attempt.holder_name, token=attempt.token,
            account_type=attempt.account_type, sec=attempt.sec_code))
    return _send(ctx, refund_row, attempt, "refunded", lambda: gateway.credit(
        refund_row.given_cents, transaction_id=attempt.transaction_id, token=attempt.token))


def _finished(step):
    """Stop when another process moved the refund first (it finishes the job)."""
    def wrapper(*args, **kwargs):
        try:
            return step(*args, **kwargs)
        except RefundMoved as exc:
            return exc.refund
    wrapper.__name__, wrapper.__doc__ = step.__name__, step.__doc__
    return wrapper


@_finished
def _send(ctx, refund_row, attempt, done_word, call):
    """Mark the committed refund row sent, make the gateway ``call`` once, and settle it: not
    sent → failed; unknown → ENQ, never a second VOID or CREDIT."""
    refund_row = _save(ctx, refund_row, R.SENT)
    try:
        result = call()
    except (GatewayRequestError, GatewayNotSentError) as exc:
        return _save(ctx, refund_row, R.FAILED, "not sent", last_error=str(exc)[:2000],
                     message=f"The gateway could not be reached. Nothing was {done_word}.")
    except GatewayError as exc:
        refund_row = _save(ctx, refund_row, R.UNKNOWN, "no clear answer",
                           last_error=str(exc)[:2000])
        return settle(ctx, refund_row)
    return _record(ctx, refund_row, attempt, result)


def _record(ctx, refund_row, attempt, result, note=None):
    fields = dict(action_code=result.action_code, response_text=(result.response_text or "")[:120],
                  message=result.message[:255], approval=result.approval)
    if not result.approved:
        return _save(ctx, refund_row, R.DECLINED, note, **fields)
    refund_row = _save(ctx, refund_row, R.APPROVED, note, **fields)
    log.info("%s %s of attempt %s approved (%s)", refund_row.kind.value,
             format_cents(refund_row.amount_cents), attempt.transaction_id, result.approval)
    return post(ctx, refund_row)


@_finished
def settle(ctx, refund_row):
    """Settle an unknown VOID/CREDIT by ENQ on the sale's TransactionID.

    ENQ replays the latest approved message under the ID: a VOID's reply after a void,
    a CREDIT's after a refund. A credit approval not recorded on an earlier refund is
    this one; anything else means it did not happen.
    """
    attempt = journal.load(ctx, refund_row.attempt_id)
    try:
        result = journal.gateway_of(ctx, attempt).enquire(attempt.transaction_id)
    except GatewayError as exc:
        return _save(ctx, refund_row, last_error=f"ENQ: {exc}"[:2000])
    if refund_row.status == R.SENT:
        refund_row = _save(ctx, refund_row, R.UNKNOWN, "settling by ENQ")
    if attempt.is_bank:
        # ENQ answers CHECK ACCEPTED for the debit and for a REVERSAL of it alike, so it
        # cannot tell: left unknown for staff to check in IPpay's reports (docs/ach.md).
        return _save(ctx, refund_row, last_error="ENQ cannot tell a REVERSAL from its CHECK")
    text = (result.response_text or "").upper()
    known = {r.approval for r in refunds_of(ctx, attempt.id)
             if r.id != refund_row.id and r.approval}
    happened = result.approved and (
        ("VOID" in text) if refund_row.kind == RefundKind.VOID
        else ("RETURN" in text and result.approval not in known))
    if happened:
        return _record(ctx, refund_row, attempt, result, note="settled by ENQ")
    return _save(ctx, refund_row, R.FAILED, "ENQ: no record",
                 message="ENQ: the gateway has no record of it. Nothing was given back.")


@_finished
def post(ctx, refund_row):
    """Reflect an approved void/refund in Splynx once; post_pending when Splynx fails."""
    attempt = journal.load(ctx, refund_row.attempt_id)
    splynx = ctx.splynx
    key = f"IPPAY-REFUND-{attempt.transaction_id}-{refund_row.id}"
    try:
        if refund_row.kind == RefundKind.VOID:
            ref = str(journal.delete_splynx_payment(ctx, attempt) or "")
            _take_back_fee(ctx, attempt, refund_row, f"IPPAY-FEE-VOID-{attempt.transaction_id}")
        else:
            found = [t for t in splynx.find_transactions(customer_id=attempt.customer_id,
                                                         comment=key) if t.comment == key]
            if found:
                ref = str(found[0].id)
            else:
                ref = str(splynx.create_refund_debit(
                    customer_id=attempt.customer_id, amount_cents=refund_row.given_cents,
                    date=ctx.today(),
                    category_id=splynx.ensure_transaction_category(REFUND_CATEGORY_NAME),
                    description=f"Card refund {format_cents(refund_row.given_cents)} "
                                f"(IPpay {attempt.transaction_id}, {attempt.masked_card})",
                    comment=key))
            _take_back_fee(ctx, attempt, refund_row, f"IPPAY-FEE-REFUND-{attempt.transaction_id}"
                                                     f"-{refund_row.id}")
    except SplynxError as exc:
        log.warning("%s %s approved but not reflected in Splynx: %s", refund_row.kind.value,
                    refund_row.id, exc)
        status = R.POST_PENDING if refund_row.status == R.APPROVED else None
        return _save(ctx, refund_row, status, "Splynx refused or did not answer",
                     last_error=str(exc)[:2000])
    refund_row = _save(ctx, refund_row, R.POSTED, f"Splynx record {ref or '-'}",
                       splynx_ref=ref[:40])
    if refund_row.kind == RefundKind.VOID:
        journal.mark_voided(ctx, attempt, f"voided; Splynx payment {ref or '-'} deleted")
    return refund_row


def _take_back_fee(ctx, attempt, refund_row, key):
    """The Splynx credit taking back the fee's share of ``refund_row`` (none without a fee),
    found by ``key`` or created in the fee category.

    The share's VAT is kept apart (``tax_percent``) when Splynx, adding VAT to the fee's
    share as the fee itself was (half-up), comes to the same cents; otherwise — the running
    share of several partial refunds can be a cent off that — the credit carries the share
    with its VAT as its price, so that Splynx books exactly what went back to the card.
    """
    if not refund_row.fee_total_cents:
        return None
    splynx = ctx.splynx
    found = [t for t in splynx.find_transactions(customer_id=attempt.customer_id, comment=key)
             if t.comment == key]
    if found:
        return found[0].id
    rate = attempt.fee_vat_rate or 0
    apart = fees.half_up(refund_row.fee_cents * rate, fees.RATE_SCALE) == refund_row.fee_tax_cents
    text = attempt.fee_text or "Service fee"
    return splynx.create_transaction(
        customer_id=attempt.customer_id, kind="credit",
        price_cents=refund_row.fee_cents if apart else refund_row.fee_total_cents,
        tax_percent=fees.rate_decimal(rate) if apart else 0, date=ctx.today(),
        category_id=journal.fee_category(ctx),
        description=f"{text} given back {format_cents(refund_row.fee_total_cents)} "
                    f"(IPpay {attempt.transaction_id})" + ("" if apart else ", VAT included"),
        comment=key)


def reconcile(ctx, min_age_seconds=0):
    """Finish refunds left half-way: settle unknown ones, reflect approved ones in Splynx.
    Returns a count per resulting status."""
    cutoff = utcnow() - dt.timedelta(seconds=min_age_seconds)
    with session_scope(ctx.sessions) as session:
        rows = session.execute(select(Refund).where(
            or_(Refund.status.in_([R.SENT, R.UNKNOWN, R.APPROVED, R.POST_PENDING, R.CREATED])),
            Refund.updated_at <= cutoff)).scalars().all()
    counts = {}
    for row in rows:
        if row.status == R.CREATED:
            try:
                row = _save(ctx, row, R.FAILED, "never sent", message="never sent")
            except RefundMoved as exc:
                row = exc.refund
        elif row.status in (R.SENT, R.UNKNOWN):
            row = settle(ctx, row)
        else:
            row = post(ctx, row)
        counts[row.status.value] = counts.get(row.status.value, 0) + 1
    return counts
