"""One invoice of a charge run through the journal: open its attempt, charge it (the
journal's guarded path reads the invoice again under the lock), or carry on an attempt a
stopped worker left, and record the outcome on the item."""

import logging

from sqlalchemy import bindparam, select

from ...db import session_scope
from ...models import (AttemptKind, AttemptStatus as S, Channel, ChargeItem, ChargeRun,
                       ItemStatus as I, PaymentAttempt, utcnow)
from ...splynx import SplynxError
from .. import autopay, bank_accounts, dunning, journal
from ..cards import customer_terminal, default_cards, on_terminal

log = logging.getLogger(__name__)

_ITEMS = ChargeItem.__table__
#: An item's outcome, written only while the worker still holds it (built once: the SET
#: clause comes from each execution's parameters, see models._conditional_update).
_FINISH = _ITEMS.update().where(_ITEMS.c.id == bindparam("item_id"),
                                _ITEMS.c.claim_token == bindparam("holder"))

#: One statement for both, built once.
_ITEM_AND_RUN = select(ChargeItem, ChargeRun).join(ChargeRun, ChargeRun.id == ChargeItem.run_id) \
    .where(ChargeItem.id == bindparam("item_id"))

_ITEM_BY_ATTEMPT = {
    S.POSTED: I.CHARGED,
    S.DECLINED: I.DECLINED,
    S.FAILED: I.ERROR,
    S.SKIPPED: I.SKIPPED,
}


def item_key(item_id):
    """The internal request key of an item's attempt (no form value can be one)."""
    return f"charge-item:{item_id}"


def target_key(run, invoice):
    """What an item of ``run`` charges for ``invoice``: the invoice, or (a balance run)
    its customer's outstanding balance, once per run."""
    if run.mode == "balance":
        return f"balance:{invoice.customer_id}"
    return f"invoice:{invoice.id}"


def finish(ctx, item_id, worker, status, message=None, attempt=None, **fields):
    """Write the item's outcome, if the worker still holds it (its claim token)."""
    values = dict(fields, status=status, claim_token=None, updated_at=utcnow())
    if message is not None:
        values["message"] = message[:255]
    if attempt is not None:
        values.update(attempt_id=attempt.id, transaction_id=attempt.transaction_id,
                      masked_card=attempt.masked_card, action_code=attempt.action_code,
                      response_text=attempt.response_text, amount_cents=attempt.amount_cents)
        if message is None:
            values["message"] = (attempt.message or "")[:255] or None
    with session_scope(ctx.sessions) as session:
        session.execute(_FINISH, dict(values, item_id=item_id, holder=worker.token))


def _attempt_of(ctx, item_id):
    with session_scope(ctx.sessions) as session:
        return session.execute(select(PaymentAttempt).where(
            PaymentAttempt.request_key == item_key(item_id))).scalar_one_or_none()


def process_item(ctx, item_id, worker):
    """Charge one claimed item, or carry its earlier attempt on; never raises."""
    try:
        _process(ctx, item_id, worker)
    except Exception as exc:  # noqa: BLE001 - one item's failure must not stop the run
        log.exception("charge item %s failed", item_id)
        attempt = _attempt_of(ctx, item_id)
        if attempt is not None and attempt.status.final:
            record(ctx, item_id, worker, attempt)
        elif attempt is not None:
            # Money may have moved: keep the item open so it is settled, not forgotten.
            finish(ctx, item_id, worker, I.PENDING, f"Will be retried: {exc}"[:255],
                   attempt=attempt)
        else:
            finish(ctx, item_id, worker, I.ERROR, f"Not charged: {type(exc).__name__}: {exc}")


def _process(ctx, item_id, worker):
    with session_scope(ctx.sessions) as session:
        item, run = session.execute(_ITEM_AND_RUN, {"item_id": item_id}).one()
    # On its first claim an item has no attempt yet: only _start opens one, under the
    # item's internal request key. Later claims (a retry, a stopped worker's item) look.
    attempt = _attempt_of(ctx, item_id) if item.tries > 1 else None
    if attempt is None:
        attempt, _ = _start(ctx, item, run, worker)
    if attempt is not None:
        attempt = carry_on(ctx, attempt, worker)
        record(ctx, item_id, worker, attempt)
    if run.source in ("auto", "retry"):
        _apply_policy(ctx, run, item_id, attempt)


def _apply_policy(ctx, run, item_id, attempt):
    """The decline policy (dunning.py) once the item's outcome is final."""
    with session_scope(ctx.sessions) as session:
        item = session.get(ChargeItem, item_id)
    if item.status in (I.CHARGED, I.DECLINED, I.ERROR, I.SKIPPED):
        dunning.after_item(ctx, run, item, attempt)


def record(ctx, item_id, worker, attempt):
    """The item's outcome from its attempt: final, or pending while it is not settled."""
    status = _ITEM_BY_ATTEMPT.get(attempt.status)
    if status is not None:
        finish(ctx, item_id, worker, status, attempt=attempt)
        return
    note = ("Approved; recording the payment in Splynx will be retried."
            if attempt.status in (S.APPROVED, S.POST_PENDING)
            else "The gateway's answer is not known yet; it will be asked (ENQ).")
    finish(ctx, item_id, worker, I.PENDING, note, attempt=attempt)


def no_card_reason(session, customer_id):
    """Why a customer of a run has nothing to charge, in staff words: a bank account whose
    debit authorisation ended says so (bank_accounts.revoked_reason), else no card."""
    return bank_accounts.revoked_reason(session, customer_id) or \
        "No saved card."


def _card(ctx, item, run):
    """``(card, why not)``: an automatic run uses the card the customer allowed for automatic
    payments (autopay.card_for); a staff run the customer's default card or authorised bank
    account."""
    methods = bank_accounts.allowed_methods(ctx.module_settings.current())
    with session_scope(ctx.sessions) as session:
        if run.source in ("auto", "retry"):
            card, why = autopay.card_for(session, item.customer_id, item.invoice_id,
                                         ctx.today(), methods=methods)
        else:
            card = default_cards(session, [item.customer_id], methods).get(item.customer_id)
            why = None if card is not None else no_card_reason(session, item.customer_id)
        if card is None and "bank" in methods:
            # A bank account whose authorisation ended is not debitable: say so, not "none".
            why = bank_accounts.revoked_reason(session, item.customer_id) or why
    return card, why


def _fee_rate(ctx, run, card):
    """The service fee of the card's method (card or bank account) a run's charges add: only
    when the run was made with fees."""
    if not run.with_fees:
        return None
    return ctx.module_settings.current().fees.rate_for("bank" if card.is_bank else "card")


def _start(ctx, item, run, worker):
    """Open the item's attempt on the right card; ``(attempt, True)``, or ``(None, False)``
    when the item was finished without one."""
    card, why_not = _card(ctx, item, run)
    if card is None:
        finish(ctx, item.id, worker, I.SKIPPED, why_not)
        return None, False
    if card.is_expired(ctx.today()):
        finish(ctx, item.id, worker, I.SKIPPED,
               f"The saved card {card.masked} expired {card.expiry}.", masked_card=card.masked)
        return None, False
    try:
        partner_id, terminal = customer_terminal(ctx, item.customer_id)
    except SplynxError as exc:
        finish(ctx, item.id, worker, I.ERROR, f"Not charged: Splynx did not answer ({exc}).")
        return None, False
    if not on_terminal(card, terminal):
        finish(ctx, item.id, worker, I.SKIPPED,
               f"The saved card {card.masked} belongs to terminal {card.terminal_id}, not "
               f"{terminal.terminal_id}: the customer must add it again.",
               masked_card=card.masked)
        return None, False
    try:
        # A bank account: a CHECK under its authorisation in force (revoked: skipped).
        debit = bank_accounts.saved_debit(ctx, card) if card.is_bank else None
    except bank_accounts.BankAccountError as exc:
        finish(ctx, item.id, worker, I.SKIPPED, str(exc), masked_card=card.masked)
        return None, False
    balance = item.invoice_id is None
    try:
        opened = journal.open_attempt(
            ctx, kind=AttemptKind.BALANCE if balance else AttemptKind.INVOICE,
            customer_id=item.customer_id, amount_cents=item.amount_cents,
            source=journal.PaymentSource(brand=card.brand, last4=card.last4, card=card,
                                         bank=debit),
            channel=Channel.CHARGE_RUN, terminal=terminal, partner_id=partner_id,
            document_id=item.invoice_id, document_number=item.invoice_number,
            request_key=item_key(item.id), origin="RECURRING", admin_id=run.admin_id,
            fee_rate=_fee_rate(ctx, run, card))
    except journal.AttemptInProgress as exc:
        finish(ctx, item.id, worker, I.SKIPPED,
               f"Another payment of this {'balance' if balance else 'invoice'} is in progress "
               f"({exc.attempt.channel.value}, {exc.attempt.transaction_id}); not charged twice.")
        return None, False
    # A replay is the attempt made for this item before (by this worker, or by one taken
    # for dead that may still be sending it): carried on, never charged as new.
    return opened.attempt, not opened.replay


def carry_on(ctx, attempt, worker):
    """Take the item's attempt as far as it can go now; returns it as it stands.

    A ``created`` attempt is charged through the journal (which reads the invoice again
    under the lock, so one paid meanwhile is skipped) — whether this worker just opened it
    or a stopped worker never sent it: the compare-and-set to ``sent`` lets only one send.
    A ``sent``/``unknown`` one is settled by ENQ once its gateway read timeout has passed
    (before, the gateway may still be working on it); an approval is posted.
    """
    status = attempt.status
    if status == S.CREATED:
        return journal.charge(ctx, attempt, slots=worker.slots)
    age = (utcnow() - attempt.updated_at).total_seconds()
    if status in (S.SENT, S.UNKNOWN):
        return journal.settle(ctx, attempt, slots=worker.slots) \
            if age >= worker.settle_after else attempt
    if status in (S.APPROVED, S.POST_PENDING):
        return journal.post(ctx, attempt)
    return attempt
