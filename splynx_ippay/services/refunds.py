"""Voids and refunds of approved payments, and the staff transaction log.

A void (IPpay VOID) cancels a sale the same day, before the batch settles: no money
moved, so the Splynx payment is deleted and the invoice is unpaid again. A refund (a
linked IPpay CREDIT on the sale's TransactionID, full or partial) gives money back
after settlement: the Splynx payment stays (the money was received) and a debit
transaction in the "Refund" category records the money going back, lowering the
customer's balance — how Splynx books refunds (splynx-platform §2.6).

Journal rules, as for payments: a refund row is committed before the gateway hears of
it; one refund or void per payment is open at a time (``lock_key``); the amounts
approved never exceed what the payment took; an unknown outcome is settled by ENQ, never
by a second CREDIT; the Splynx record carries the refund's key in its comment and is
looked for before it is written, so it is written once.
"""

import datetime as dt
import logging

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from ..db import session_scope
from ..ippay import GatewayError, GatewayNotSentError, GatewayRequestError
from ..models import AttemptStatus as S, PaymentAttempt, Refund, RefundStatus as R, utcnow
from ..money import format_cents
from ..splynx import SplynxError, SplynxNotFoundError, cents_to_money

log = logging.getLogger(__name__)

_TRANSACTIONS = "admin/finance/transactions"
_PAYMENTS = "admin/finance/payments"
#: Splynx's seeded transaction category for refunds (splynx-platform §2.6).
REFUND_CATEGORY_NAME = "Refund"
_APPROVED = (R.APPROVED.value, R.POST_PENDING.value, R.POSTED.value)


class RefundError(Exception):
    """A refund or void cannot be done; ``str()`` is a sentence for staff."""


# --- the transaction log ----------------------------------------------------------------

def search_attempts(addon, *, customer_id=None, date_from=None, date_to=None, outcome=None,
                    channel=None, offset=0, limit=100):
    """Attempts, newest first, filtered by customer, creation date and outcome (status)."""
    query = select(PaymentAttempt)
    if customer_id:
        query = query.where(PaymentAttempt.customer_id == customer_id)
    if date_from:
        query = query.where(PaymentAttempt.created_at >= dt.datetime.combine(date_from, dt.time()))
    if date_to:
        query = query.where(PaymentAttempt.created_at <
                            dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time()))
    if outcome:
        query = query.where(PaymentAttempt.status == outcome)
    if channel:
        query = query.where(PaymentAttempt.channel == channel)
    with session_scope(addon.sessions) as session:
        rows = session.execute(query.order_by(PaymentAttempt.id.desc()).offset(offset)
                               .limit(limit + 1)).scalars().all()
        ids = [r.id for r in rows]
        refunded = dict(session.execute(
            select(Refund.attempt_id, func.sum(Refund.amount_cents))
            .where(Refund.attempt_id.in_(ids), Refund.status.in_(_APPROVED))
            .group_by(Refund.attempt_id)).all()) if ids else {}
    return rows[:limit], len(rows) > limit, {k: int(v) for k, v in refunded.items()}


def get_attempt(addon, attempt_id):
    with session_scope(addon.sessions) as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        if attempt is not None:
            attempt.events  # noqa: B018 - load for the page
        return attempt


def refunds_of(addon, attempt_id):
    with session_scope(addon.sessions) as session:
        return session.execute(select(Refund).where(Refund.attempt_id == attempt_id)
                               .order_by(Refund.id)).scalars().all()


def refundable_cents(addon, attempt):
    """What is left to give back of an approved attempt."""
    if attempt.status not in (S.APPROVED.value, S.POST_PENDING.value, S.POSTED.value):
        return 0
    done = sum(r.amount_cents for r in refunds_of(addon, attempt.id)
               if r.status in _APPROVED)
    return max(0, attempt.amount_cents - done)


def can_void(addon, attempt, today=None):
    """Whether ``attempt`` may still be voided: approved today, nothing refunded yet."""
    today = today or utcnow().date()
    # Only once posted: a void deletes the Splynx payment, and one not yet recorded
    # would be recorded after the void by the journal's retry (money booked, none taken).
    return (attempt.status == S.POSTED.value
            and attempt.approval and attempt.created_at.date() == today
            and refundable_cents(addon, attempt) == attempt.amount_cents)


# --- the journal of refunds -------------------------------------------------------------

def _save(addon, refund, status=None, **fields):
    with session_scope(addon.sessions) as session:
        row = session.get(Refund, refund.id)
        for name, value in fields.items():
            setattr(row, name, value)
        if status is not None:
            row.status = status
            if R(status).final:
                row.lock_key = None
        return row


def _open(addon, attempt_id, kind, amount_cents, admin_id, reason):
    """Commit a refund row holding the payment's refund lock, checking the amount inside it."""
    if not isinstance(amount_cents, int) or amount_cents <= 0:
        raise RefundError("The amount must be more than zero.")
    session = addon.sessions()
    try:
        attempt = session.get(PaymentAttempt, attempt_id)
        if attempt is None:
            raise RefundError("There is no such payment.")
        refund = Refund(attempt_id=attempt_id, kind=kind, status=R.CREATED.value,
                        lock_key=f"refund:{attempt_id}", amount_cents=amount_cents,
                        admin_id=admin_id, reason=(reason or "")[:255] or None)
        session.add(refund)
        session.flush()
        # Inside the lock no other refund of this payment can be approved, so the sum
        # read here is the one that counts.
        done = session.execute(select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
            Refund.attempt_id == attempt_id, Refund.status.in_(_APPROVED))).scalar()
        left = attempt.amount_cents - int(done)
        if attempt.status not in (S.APPROVED.value, S.POST_PENDING.value, S.POSTED.value):
            raise RefundError("Only an approved payment can be refunded or voided.")
        if amount_cents > left:
            raise RefundError(f"At most {format_cents(left)} can be refunded "
                              f"(of {format_cents(attempt.amount_cents)}).")
        if kind == "void" and (left != attempt.amount_cents or amount_cents != left):
            raise RefundError("A payment that was partly refunded can no longer be voided.")
        if kind == "void" and attempt.status != S.POSTED.value:
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


def void(addon, attempt_id, admin_id, reason=None):
    """Void an approval of today (IPpay VOID, full amount) and delete its Splynx payment."""
    attempt = get_attempt(addon, attempt_id)
    if attempt is None:
        raise RefundError("There is no such payment.")
    if not can_void(addon, attempt):
        raise RefundError("Only an approval of today that has not been refunded can be voided; "
                          "refund it instead.")
    refund, attempt = _open(addon, attempt_id, "void", attempt.amount_cents, admin_id, reason)
    return _send(addon, refund, attempt, "voided", lambda: addon.gateway.void(
        attempt.transaction_id, attempt.approval, attempt.amount_cents, token=attempt.token))


def refund(addon, attempt_id, amount_cents, admin_id, reason=None):
    """Refund all or part of an approval (linked IPpay CREDIT) and book it in Splynx."""
    refund_row, attempt = _open(addon, attempt_id, "refund", amount_cents, admin_id, reason)
    return _send(addon, refund_row, attempt, "refunded", lambda: addon.gateway.credit(
        amount_cents, transaction_id=attempt.transaction_id, token=attempt.token))


def _send(addon, refund_row, attempt, done_word, call):
    """Mark the committed refund row sent, make the gateway ``call`` once, and settle it: not
    sent → failed; unknown → ENQ, never a second VOID or CREDIT."""
    refund_row = _save(addon, refund_row, R.SENT.value)
    try:
        result = call()
    except (GatewayRequestError, GatewayNotSentError) as exc:
        return _save(addon, refund_row, R.FAILED.value, last_error=str(exc)[:2000],
                     message=f"The gateway could not be reached. Nothing was {done_word}.")
    except GatewayError as exc:
        refund_row = _save(addon, refund_row, R.UNKNOWN.value, last_error=str(exc)[:2000])
        return settle(addon, refund_row)
    return _record(addon, refund_row, attempt, result)


def _record(addon, refund_row, attempt, result):
    fields = dict(action_code=result.action_code, response_text=(result.response_text or "")[:120],
                  message=result.message[:255], approval=result.approval)
    if not result.approved:
        return _save(addon, refund_row, R.DECLINED.value, **fields)
    refund_row = _save(addon, refund_row, R.APPROVED.value, **fields)
    log.info("%s %s of attempt %s approved (%s)", refund_row.kind, format_cents(refund_row.amount_cents),
             attempt.transaction_id, result.approval)
    return post(addon, refund_row)


def settle(addon, refund_row):
    """Settle an unknown VOID/CREDIT by ENQ on the sale's TransactionID.

    ENQ replays the latest approved message under the ID: a VOID's reply after a void,
    a CREDIT's after a refund. A credit approval not recorded on an earlier refund is
    this one; anything else means it did not happen.
    """
    attempt = get_attempt(addon, refund_row.attempt_id)
    try:
        result = addon.gateway.enquire(attempt.transaction_id)
    except GatewayError as exc:
        return _save(addon, refund_row, last_error=f"ENQ: {exc}"[:2000])
    text = (result.response_text or "").upper()
    known = {r.approval for r in refunds_of(addon, attempt.id)
             if r.id != refund_row.id and r.approval}
    happened = result.approved and (
        ("VOID" in text) if refund_row.kind == "void"
        else ("RETURN" in text and result.approval not in known))
    if happened:
        return _record(addon, refund_row, attempt, result)
    return _save(addon, refund_row, R.FAILED.value, message="ENQ: the gateway has no record "
                 "of it. Nothing was given back.")


def _refund_category(splynx):
    try:
        for row in splynx.search("admin/finance/transaction-categories"):
            if str(row.get("name", "")).strip().lower() == REFUND_CATEGORY_NAME.lower():
                return int(row["id"])
    except (SplynxError, ValueError, KeyError):
        pass
    return 4


def post(addon, refund_row):
    """Reflect an approved void/refund in Splynx once; post_pending when Splynx fails."""
    attempt = get_attempt(addon, refund_row.attempt_id)
    splynx = addon.splynx
    key = f"IPPAY-REFUND-{attempt.transaction_id}-{refund_row.id}"
    try:
        if refund_row.kind == "void":
            payment_id = attempt.splynx_payment_id
            if payment_id is None:
                found = [p for p in splynx.find_payments(customer_id=attempt.customer_id,
                                                         field_1=attempt.transaction_id)
                         if p.field_1 == attempt.transaction_id]
                payment_id = found[0].id if found else None
            if payment_id is not None:
                try:
                    splynx.request("DELETE", f"{_PAYMENTS}/{payment_id}")
                except SplynxNotFoundError:
                    pass  # deleted already (a retry after a lost answer)
            ref = str(payment_id or "")
        else:
            found = splynx.search(_TRANSACTIONS, main_attributes={
                "customer_id": attempt.customer_id, "comment": key})
            if found:
                ref = str(found[0]["id"])
            else:
                status, body = splynx.request("POST", _TRANSACTIONS, json={
                    "type": "debit", "customer_id": attempt.customer_id,
                    "price": cents_to_money(refund_row.amount_cents),
                    "total": cents_to_money(refund_row.amount_cents), "quantity": 1,
                    "date": addon.today().isoformat(), "category": _refund_category(splynx),
                    "description": f"Card refund {format_cents(refund_row.amount_cents)} "
                                   f"(IPpay {attempt.transaction_id}, {attempt.masked_card})",
                    "comment": key})
                ref = str((body or {}).get("id", ""))
    except SplynxError as exc:
        log.warning("%s %s approved but not reflected in Splynx: %s", refund_row.kind,
                    refund_row.id, exc)
        return _save(addon, refund_row, R.POST_PENDING.value, last_error=str(exc)[:2000])
    return _save(addon, refund_row, R.POSTED.value, splynx_ref=ref[:40])


def reconcile(addon, min_age_seconds=0):
    """Finish refunds left half-way: settle unknown ones, reflect approved ones in Splynx."""
    cutoff = utcnow() - dt.timedelta(seconds=min_age_seconds)
    with session_scope(addon.sessions) as session:
        rows = session.execute(select(Refund).where(
            or_(Refund.status.in_([R.SENT.value, R.UNKNOWN.value, R.APPROVED.value,
                                   R.POST_PENDING.value, R.CREATED.value])),
            Refund.updated_at <= cutoff)).scalars().all()
    counts = {}
    for row in rows:
        if row.status == R.CREATED.value:
            row = _save(addon, row, R.FAILED.value, message="never sent")
        elif row.status in (R.SENT.value, R.UNKNOWN.value):
            row = settle(addon, row)
        else:
            row = post(addon, row)
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts
