"""The daily three-way reconciliation (services/reconciliation.py), each link broken by hand
in the Splynx emulator as staff would in Splynx: a payment deleted, its amount or customer
edited, a payment made up with a TransactionID, a payment entered twice; and an approval
that never reached Splynx, which is repaired once."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import select, update

from splynx_ippay.db import session_scope
from splynx_ippay.models import AttemptStatus, Card, PaymentAttempt, ReconcileFinding
from splynx_ippay.services import journal, reconciliation
from tests.integration.collections.conftest import DAY
from tests.integration.collections.test_autopay import DUE_DAY, charge_due
from tests.support import open_attempt_for


def attempts(ctx):
    with session_scope(ctx.sessions) as session:
        return {a.customer_id: a for a in session.execute(select(PaymentAttempt)).scalars()}


def findings(report):
    return sorted((f.kind, f.attempt_id, f.splynx_payment_id) for f in report.findings)


def payments_of(world, transaction_id):
    store = world.store()
    with store.lock:
        return [p for p in store.payments.rows.values() if p["field_1"] == transaction_id]


def edit_payment(world, payment_id, **data):
    store = world.store()
    with store.lock:
        store.update_payment(store.payments.get(payment_id), data)


def test_each_broken_link_is_found_listed_and_resolved(collections):
    world, ctx = collections.world, collections.ctx
    people = [collections.customer()[0] for _ in range(6)]
    for who in people:
        collections.invoice(who, total="30.00", due=DAY)
    collections.schedules(DUE_DAY)
    charge_due(collections, DAY)
    paid = attempts(ctx)
    assert {a.status for a in paid.values()} == {AttemptStatus.POSTED}
    clean = reconciliation.run(ctx, DAY)
    assert clean.findings == [] and clean.compared_attempts == 6 == clean.compared_payments

    deleted, edited, moved, doubled, _, _ = (paid[who] for who in people)
    store = world.store()
    with store.lock:
        store.delete_payment(store.payments.get(deleted.splynx_payment_id))
        method = store.payments.get(doubled.splynx_payment_id)["payment_type"]
        copy = store.add_payment({"customer_id": doubled.customer_id, "amount": "30.00",
                                  "payment_type": method, "date": DAY.isoformat(),
                                  "receipt_number": "typed twice",
                                  "field_1": doubled.transaction_id})
        made_up = store.add_payment({"customer_id": people[5], "amount": "12.00",
                                     "payment_type": method, "date": DAY.isoformat(),
                                     "receipt_number": "made up",
                                     "field_1": "ZZZZZZZZZZZZZZZZZZ"})
    edit_payment(world, edited.splynx_payment_id, amount="3.00")
    edit_payment(world, moved.splynx_payment_id, customer_id=people[5], invoice_id=0)

    report = reconciliation.run(ctx, DAY + dt.timedelta(days=1))
    assert findings(report) == sorted([
        ("missing_payment", deleted.id, deleted.splynx_payment_id),
        ("amount_mismatch", edited.id, edited.splynx_payment_id),
        ("customer_mismatch", moved.id, moved.splynx_payment_id),
        ("duplicate_payment", None, copy["id"]),
        ("orphan_payment", None, made_up["id"]),
    ])
    texts = {f.kind: f.detail for f in report.findings}
    assert "$3.00" in texts["amount_mismatch"] and "$30.00" in texts["amount_mismatch"]
    assert deleted.transaction_id in texts["missing_payment"]
    # Nothing was "repaired" behind staff's back: the deleted payment stays deleted.
    assert payments_of(world, deleted.transaction_id) == []

    # Seen again the next day: the same rows, not new ones.
    again = reconciliation.run(ctx, DAY + dt.timedelta(days=2))
    assert [f.id for f in again.findings] == [f.id for f in report.findings]
    assert {f.found_on for f in again.findings} == {DAY + dt.timedelta(days=1)}
    # Staff fix two in Splynx: they are resolved at the next pass.
    edit_payment(world, edited.splynx_payment_id, amount="30.00")
    with store.lock:
        store.delete_payment(store.payments.get(copy["id"]))
    fixed = reconciliation.run(ctx, DAY + dt.timedelta(days=3))
    assert fixed.resolved == 2
    assert {f.kind for f in fixed.findings} == {"missing_payment", "customer_mismatch",
                                               "orphan_payment"}
    assert [f.kind for f in reconciliation.open_findings(ctx)] != []


def test_an_approval_that_never_reached_splynx_is_posted_once(collections):
    world, ctx = collections.world, collections.ctx
    who, [(card_id, _)] = collections.customer()
    invoice_id = collections.invoice(who, total="44.00", due=DAY)
    invoice = ctx.splynx.get_invoice(invoice_id)
    with session_scope(ctx.sessions) as session:
        card = session.get(Card, card_id)
    # Splynx refuses the payment: the approval waits in the journal.
    world.emu_call("faults", {"status": 503, "method": "POST",
                              "path_regex": "admin/finance/payments$", "count": 50})
    attempt = journal.charge(ctx, open_attempt_for(ctx, card, invoice))
    assert attempt.status == AttemptStatus.POST_PENDING
    assert payments_of(world, attempt.transaction_id) == []
    _clear_faults(world)
    # A day later (the reconciliation leaves a web request's fresh attempt alone).
    day_ago = attempt.updated_at - dt.timedelta(days=1)
    with session_scope(ctx.sessions) as session:
        session.execute(update(PaymentAttempt).where(PaymentAttempt.id == attempt.id)
                        .values(created_at=day_ago, updated_at=day_ago))

    report = reconciliation.run(ctx, DAY + dt.timedelta(days=1))
    assert report.repaired.get("posted") == 1 and report.findings == []
    [payment] = payments_of(world, attempt.transaction_id)
    assert Decimal(str(payment["amount"])) == Decimal("44.00")
    assert collections.status(invoice_id) == "paid"
    with session_scope(ctx.sessions) as session:
        [history] = session.execute(select(ReconcileFinding)).scalars().all()
    assert history.kind == "posted_late" and history.repaired and history.resolved_at
    # Once: the next passes find the payment and post nothing more.
    reconciliation.run(ctx, DAY + dt.timedelta(days=2))
    assert len(payments_of(world, attempt.transaction_id)) == 1


def _clear_faults(world):
    import requests

    requests.delete(f"{world.url}/_sandbox/faults", timeout=10).raise_for_status()
