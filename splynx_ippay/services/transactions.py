"""The staff transaction log: every attempt of every channel, filtered, with what was given
back of each; one attempt's whole story (its events and its refunds' and voids' events);
and the words staff read for all of it (never the journal's internal states)."""

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import func, select

from ..db import session_scope
from ..ippay import codes
from ..models import (AttemptKind as K, AttemptStatus as S, Channel as C, PaymentAttempt, Refund,
                      RefundKind, RefundStatus as R)
from ..money import format_cents

_GAVE_BACK = (R.APPROVED, R.POST_PENDING, R.POSTED)

#: How an attempt's status reads to staff.
OUTCOME_WORDS = {
    S.CREATED: "waiting for the gateway's answer",
    S.SENT: "waiting for the gateway's answer",
    S.UNKNOWN: "waiting for the gateway's answer (being checked)",
    S.APPROVED: "approved, being recorded in Splynx",
    S.POST_PENDING: "approved, Splynx did not take it yet (retried)",
    S.POSTED: "paid",
    S.DECLINED: "declined",
    S.FAILED: "not charged (error)",
    S.SKIPPED: "not charged: nothing was due any more",
    S.VOIDED: "voided",
    S.RETURNED: "returned by the bank",
}
#: The log's Outcome filter: key → (words, the statuses it means). Refunded is apart.
OUTCOME_FILTERS = {
    "paid": ("paid", (S.POSTED,)),
    "recording": ("approved, not yet in Splynx", (S.APPROVED, S.POST_PENDING)),
    "checking": ("waiting for the gateway's answer", (S.CREATED, S.SENT, S.UNKNOWN)),
    "declined": ("declined", (S.DECLINED,)),
    "failed": ("not charged (error)", (S.FAILED,)),
    "skipped": ("not charged: nothing was due", (S.SKIPPED,)),
    "voided": ("voided", (S.VOIDED,)),
    "refunded": ("refunded, all or part", ()),
}
#: Where a payment was started, as staff say it.
CHANNEL_WORDS = {
    C.PORTAL: "customer portal",
    C.DIRECT: "direct pay link",
    C.ADMIN: "staff, from the invoice",
    C.CHARGE_RUN: "charge run",
}
KIND_WORDS = {K.INVOICE: "Invoice", K.PROFORMA: "Proforma invoice", K.REFILL: "Balance top-up"}
REFUND_WORDS = {
    R.CREATED: "waiting for the gateway's answer",
    R.SENT: "waiting for the gateway's answer",
    R.UNKNOWN: "waiting for the gateway's answer (being checked)",
    R.APPROVED: "approved, being recorded in Splynx",
    R.POST_PENDING: "approved, Splynx did not take it yet (retried)",
    R.POSTED: "done",
    R.DECLINED: "refused by the gateway",
    R.FAILED: "not done (error)",
}
#: What each move of an attempt means, for its history.
_ATTEMPT_MOVES = {
    S.CREATED: "Written in the journal before anything was sent",
    S.SENT: "Sent to the gateway",
    S.UNKNOWN: "No clear answer from the gateway: asked again (ENQ), never charged twice",
    S.APPROVED: "Approved by the gateway",
    S.POST_PENDING: "Splynx did not take the payment; recording it is retried",
    S.POSTED: "Recorded in Splynx as a payment",
    S.DECLINED: "Declined by the gateway",
    S.FAILED: "Not charged",
    S.SKIPPED: "Not sent: read again from Splynx, nothing was due",
    S.VOIDED: "Voided: the sale was cancelled and the Splynx payment deleted",
}
_REFUND_MOVES = {
    R.CREATED: "asked for",
    R.SENT: "sent to the gateway",
    R.UNKNOWN: "no clear answer from the gateway: asked again (ENQ), never sent twice",
    R.APPROVED: "approved by the gateway",
    R.POST_PENDING: "Splynx did not take it; retried",
    R.POSTED: "recorded in Splynx",
    R.DECLINED: "refused by the gateway",
    R.FAILED: "not done",
}


def gateway_words(action_code, response_text=None):
    """The gateway's answer as staff read it: ``"005 Do not honor: The bank declined without
    giving a reason."`` (the code table's plain meaning, not the customer's message)."""
    if not action_code:
        return response_text or ""
    row = codes.lookup(action_code)
    words = f"{action_code} {row.name}"
    if action_code != codes.APPROVED:
        words += f": {row.plain}"
        if row.category == codes.HARD:
            words += " Do not try this card again."
    return words


def search(ctx, *, customer_id=None, date_from=None, date_to=None, outcome=None,
           channel=None, offset=0, limit=100):
    """``(attempts, more, refunded)``: attempts newest first filtered by customer, creation
    date, outcome (a key of :data:`OUTCOME_FILTERS`) and channel; ``more`` when another
    page follows; ``refunded`` the cents given back per attempt id."""
    query = select(PaymentAttempt)
    if customer_id:
        query = query.where(PaymentAttempt.customer_id == customer_id)
    if date_from:
        query = query.where(PaymentAttempt.created_at >= dt.datetime.combine(date_from, dt.time()))
    if date_to:
        query = query.where(PaymentAttempt.created_at <
                            dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time()))
    if outcome == "refunded":
        query = query.where(PaymentAttempt.id.in_(select(Refund.attempt_id).where(
            Refund.kind == RefundKind.REFUND, Refund.status.in_(_GAVE_BACK))))
    elif outcome:
        query = query.where(PaymentAttempt.status.in_(list(OUTCOME_FILTERS[outcome][1])))
    if channel:
        query = query.where(PaymentAttempt.channel == channel)
    with session_scope(ctx.sessions) as session:
        rows = session.execute(query.order_by(PaymentAttempt.id.desc()).offset(offset)
                               .limit(limit + 1)).scalars().all()
        ids = [r.id for r in rows]
        refunded = dict(session.execute(
            select(Refund.attempt_id, func.sum(Refund.amount_cents))
            .where(Refund.attempt_id.in_(ids), Refund.status.in_(_GAVE_BACK))
            .group_by(Refund.attempt_id)).all()) if ids else {}
    return rows[:limit], len(rows) > limit, {k: int(v) for k, v in refunded.items()}


@dataclass(frozen=True)
class Event:
    """One line of an attempt's history: when, what (in staff words), the journal's note,
    and the administrator who asked for it (refunds and voids)."""

    at: dt.datetime
    what: str
    note: Optional[str] = None
    admin_id: Optional[int] = None


def history(attempt, refund_rows):
    """The attempt's events and those of its refunds and voids, oldest first."""
    events = []
    for e in attempt.events:
        what = _ATTEMPT_MOVES.get(S(e.to_status), e.to_status)
        if e.to_status == S.APPROVED.value and attempt.approval:
            what += f" (approval code {attempt.approval})"
        events.append((e.at, 0, e.id, Event(e.at, what, e.note)))
    for refund in refund_rows:
        label = ("Void" if refund.kind == RefundKind.VOID
                 else f"Refund of {format_cents(refund.amount_cents)}")
        for e in refund.events:
            what = f"{label}: {_REFUND_MOVES.get(R(e.to_status), e.to_status)}"
            if e.to_status == R.DECLINED.value and refund.action_code:
                what += f" ({gateway_words(refund.action_code, refund.response_text)})"
            asked = e.to_status == R.CREATED.value
            # The first event names who asked (its note says so by id: shown as a name).
            events.append((e.at, 1, e.id, Event(e.at, what, None if asked else e.note,
                                                refund.admin_id if asked else None)))
    return [event for *_, event in sorted(events, key=lambda row: row[:3])]


def money_state(attempt, refund_rows, refundable_cents, can_void):
    """One or two sentences on what happened to the money and what staff may still do."""
    given = sum(r.amount_cents for r in refund_rows
                if r.kind == RefundKind.REFUND and r.status in _GAVE_BACK)
    open_rows = [r for r in refund_rows if not r.status.final]
    parts = []
    if attempt.status == S.RETURNED:
        parts.append(f"Returned by the customer's bank ({attempt.return_code}) on "
                     f"{attempt.returned_on}: the Splynx payment was deleted (the invoice is "
                     "unpaid again).")
    elif attempt.status == S.VOIDED:
        void = next((r for r in refund_rows if r.kind == RefundKind.VOID
                     and r.status == R.POSTED), None)
        when = f" on {void.updated_at:%Y-%m-%d %H:%M} UTC" if void else ""
        parts.append(f"Voided{when}: no money moved, and the Splynx payment was deleted "
                     "(the invoice is unpaid again).")
    elif not attempt.status.took_money:
        parts.append("No money was taken.")
    elif given:
        parts.append(f"Refunded {format_cents(given)} of {format_cents(attempt.amount_cents)}.")
    else:
        parts.append(f"{format_cents(attempt.amount_cents)} was taken; nothing refunded.")
    for row in open_rows:
        what = "A void" if row.kind == RefundKind.VOID else \
            f"A refund of {format_cents(row.amount_cents)}"
        parts.append(f"{what} is in progress ({REFUND_WORDS[row.status]}).")
    if can_void:
        parts.append("It can still be voided today (until the gateway's batch settles at "
                     "the end of the day, UTC), or refunded.")
    elif refundable_cents:
        parts.append(f"Up to {format_cents(refundable_cents)} can be refunded.")
    return " ".join(parts)
