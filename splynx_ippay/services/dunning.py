"""The decline policy of automatic payments: what happens to an invoice after an automatic
charge was declined (ippay.codes classifies every ActionCode hard or soft).

* **Soft** (do not honour, insufficient funds, issuer unavailable …): tried again on the
  schedule ``retry_days`` after the first try (default +1, +3, +7 days), at most
  ``retry_max_tries`` tries in all (default 4). Each retry is an item of the day's retry run,
  so every journal invariant holds for it.
* **Hard** (lost, stolen, expired, invalid account, not permitted …): never tried again on
  that card. Another card the customer allowed for automatic payments is tried at the next
  retry; without one, collection stops. A card declined hard ``autopay_hard_declines`` times
  in a row (default 2) stops being used for automatic payments, and the customer is told.
* An error (nothing charged: the gateway unreachable) is tried again the next day, as a
  soft decline, and counts as a try.

The state of each invoice's collection is a :class:`~splynx_ippay.models.CollectionCase`.
"""

import datetime as dt
import logging

from sqlalchemy import select, update

from ..db import session_scope
from ..ippay.codes import decline_category
from ..models import (AttemptStatus as S, Card, CaseState, CollectionCase, ItemStatus as I,
                      utcnow)
from . import notices

log = logging.getLogger(__name__)


def due_invoices(ctx, day):
    """Invoice ids whose next retry is due by ``day``."""
    with session_scope(ctx.sessions) as session:
        return session.execute(select(CollectionCase.invoice_id).where(
            CollectionCase.state == CaseState.OPEN, CollectionCase.next_try_on <= day)
            .order_by(CollectionCase.invoice_id)).scalars().all()


def close_settled(ctx, invoice_ids):
    """Close the cases of invoices that no longer owe anything (paid by other means, or
    deleted in Splynx) before their retry: a retry run only sees unpaid invoices, so
    without this their cases would wait for a try that never comes. Returns the invoice
    ids still owing."""
    owing = set()
    ids = list(invoice_ids)
    for start in range(0, len(ids), 100):
        chunk = ids[start:start + 100]
        owing.update(inv.id for inv in ctx.splynx.invoice_page(
            limit=len(chunk), status="not_paid", main_attributes={"id": ("IN", chunk)})
            if inv.due_cents > 0)
    settled = [i for i in ids if i not in owing]
    if settled:
        with session_scope(ctx.sessions) as session:
            session.execute(update(CollectionCase).where(
                CollectionCase.invoice_id.in_(settled), CollectionCase.state == CaseState.OPEN)
                .values(state=CaseState.PAID, next_try_on=None, updated_at=utcnow(),
                        reason="Nothing owed any more before the next try (paid otherwise)."))
        log.info("collections: %s invoices settled before their retry", len(settled))
    return [i for i in ids if i in owing]


def _case(session, item, run, today):
    case = session.execute(select(CollectionCase).where(
        CollectionCase.invoice_id == item.invoice_id).with_for_update()).scalar_one_or_none()
    if case is None:
        case = CollectionCase(invoice_id=item.invoice_id, customer_id=item.customer_id,
                              schedule_id=(run.schedule_key or "").split(":")[0] or None,
                              state=CaseState.OPEN, tries=0, first_try_on=today,
                              excluded_cards="", amount_cents=item.amount_cents,
                              recovered_cents=0)
        session.add(case)
    return case


def _next_try(case, config, today):
    """The day of the next try after ``case.tries`` tries, or None when they are used up."""
    if case.tries >= config.retry_max_tries:
        return None
    offsets = config.retry_days
    offset = offsets[min(case.tries, len(offsets)) - 1] if case.tries <= len(offsets) \
        else offsets[-1]
    day = case.first_try_on + dt.timedelta(days=offset)
    return max(day, today + dt.timedelta(days=1))


def after_item(ctx, run, item, attempt):
    """Apply the decline policy to an automatic item that has its final outcome.

    ``attempt`` is the item's journal attempt (None when it ended without one, e.g. no card).
    Idempotent per item: a case records its tries by day and attempt, and a second call for
    the same attempt changes nothing.
    """
    if item.invoice_id is None or run.source not in ("auto", "retry"):
        return None
    config = ctx.module_settings.current()
    today = ctx.today()
    status = item.status
    with session_scope(ctx.sessions) as session:
        case = session.execute(select(CollectionCase).where(
            CollectionCase.invoice_id == item.invoice_id)).scalar_one_or_none()
        if status == I.SKIPPED and case is None:
            return None
        case = case or _case(session, item, run, today)
        if case.state != CaseState.OPEN:
            return case
        if attempt is not None and case.reason == f"attempt {attempt.transaction_id}":
            return case  # already applied (a worker resumed this item)
        if status == I.CHARGED:
            case.state, case.next_try_on = CaseState.PAID, None
            if case.tries >= 1:
                case.recovered_cents += attempt.amount_cents
            case.tries += 1
            case.last_try_on, case.reason = today, f"attempt {attempt.transaction_id}"
            session.execute(update(Card).where(Card.id == attempt.card_id)
                            .values(hard_declines=0))
            return case
        if status == I.SKIPPED:
            if "aid meanwhile" in (item.message or ""):
                case.state, case.next_try_on, case.reason = CaseState.PAID, None, item.message
            else:
                case.state, case.next_try_on = CaseState.STOPPED, None
                case.reason = (item.message or "not charged")[:255]
            return case
        case.tries += 1
        case.last_try_on = today
        code = attempt.action_code if attempt is not None else None
        category = decline_category(code) if status == I.DECLINED and code else "soft"
        case.last_code, case.last_category = code, category
        case.reason = f"attempt {attempt.transaction_id}" if attempt is not None else None
        card = session.get(Card, attempt.card_id) if attempt is not None and attempt.card_id \
            else None
        stopped_card = False
        if category == "hard" and card is not None:
            case.excluded_cards = ",".join(str(c) for c in sorted(case.excluded | {card.id}))
            card.hard_declines += 1
            if card.autopay and card.hard_declines >= config.autopay_hard_declines:
                card.autopay = False
                stopped_card = True
            others = session.execute(select(Card.id).where(
                Card.customer_id == case.customer_id, Card.autopay.is_(True),
                Card.id.notin_(case.excluded | {card.id}))).scalars().first()
            if others is None:
                case.state, case.next_try_on = CaseState.STOPPED, None
            else:
                case.next_try_on = None if case.tries >= config.retry_max_tries \
                    else today + dt.timedelta(days=1)
        else:
            case.next_try_on = _next_try(case, config, today)
        if case.state == CaseState.OPEN and case.next_try_on is None:
            case.state = CaseState.STOPPED
            case.reason = f"{case.tries} tries, the last declined {code or 'with an error'}"
        elif case.state == CaseState.STOPPED and not case.reason:
            case.reason = "declined hard; no other card for automatic payments"
        case.updated_at = utcnow()
        facts = dict(case_state=case.state.value, next_try_on=case.next_try_on,
                     category=category, stopped_card=stopped_card,
                     card_id=card.id if card is not None else None)
    if attempt is not None and attempt.status == S.DECLINED:
        notices.decline(ctx, attempt, retry_on=facts["next_try_on"])
    if facts["stopped_card"]:
        with session_scope(ctx.sessions) as session:
            card = session.get(Card, facts["card_id"])
        if card is not None:
            notices.autopay_stopped(ctx, card, declines=card.hard_declines,
                                    reason=attempt.message)
    return facts
