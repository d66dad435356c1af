"""The transaction log, voids and refunds: journal rows, Splynx records, never twice."""

import threading

from sqlalchemy import select

from splynx_ippay.db import session_scope
from splynx_ippay.models import PaymentAttempt, Refund, StaffAction
from splynx_ippay.services import journal, refunds

from .conftest import run_worker_until_done, save_cards, start_run
from .test_charge_run import PERIOD, post


def charged(world):
    save_cards(world.ctx, [1, 2, 3])
    admin = world.login_admin()
    assert start_run(admin, world, {**PERIOD, "customer_ids": "1"}).status_code == 302
    run_worker_until_done(world.ctx)
    with session_scope(world.ctx.sessions) as session:
        attempts = session.execute(select(PaymentAttempt).where(
            PaymentAttempt.status == "posted").order_by(PaymentAttempt.id)).scalars().all()
    return admin, attempts


def invoice(world, invoice_id):
    return next(i for i in world.emu_call("state")["invoices"] if int(i["id"]) == invoice_id)


def test_log_filters_and_masks(staff_world):
    admin, attempts = charged(staff_world)
    url = f"{staff_world.url}/ippay/admin/transactions"
    page = admin.get(url).text
    assert all(a.transaction_id in page for a in attempts) and "Visa •••• 1111" in page
    assert "4111111111111111" not in page and attempts[0].token not in page
    assert "charge_run" in page and "RECURRING" in page
    assert admin.get(url, params={"customer_id": "2"}).text.count('data-status="') == 0
    declined = admin.get(url, params={"outcome": "declined"}).text
    assert declined.count('data-status="declined"') == 1
    assert admin.get(url, params={"date_from": "2999-01-01"}).text.count('data-status="') == 0
    assert "must be a date" in admin.get(url, params={"date_from": "nope"}).text
    detail = admin.get(f"{url}/{attempts[0].id}").text
    assert 'id="void-form"' in detail and 'id="refund-form"' in detail


def test_void_cancels_the_sale_and_deletes_the_splynx_payment(staff_world):
    admin, attempts = charged(staff_world)
    attempt = attempts[0]
    # The first POST asks: nothing is sent until staff confirm.
    asked = post(admin, staff_world, f"transactions/{attempt.id}/void", {"reason": "asked"})
    assert asked.status_code == 200 and 'id="confirm-yes"' in asked.text
    assert f"Void this payment of {attempt.amount_cents / 100:.2f}" in asked.text
    assert not [t for t in staff_world.sim_call("ledger")["transactions"] if t["type"] == "VOID"]
    response = post(admin, staff_world, f"transactions/{attempt.id}/void",
                    {"reason": "asked", "confirm": "yes"})
    assert response.status_code == 302
    ledger = staff_world.sim_call("ledger")["transactions"]
    assert [t["type"] for t in ledger if t["transaction_id"] == attempt.transaction_id].count("VOID") == 1
    payments = [p for p in staff_world.emu_call("state")["payments"]
                if p.get("field_1") == attempt.transaction_id]
    assert payments == [] and invoice(staff_world, attempt.invoice_id)["status"] == "not_paid"
    rows = refunds.refunds_of(staff_world.ctx, attempt.id)
    assert [(r.kind, r.status, r.admin_id) for r in rows] == [("void", "posted", 1)]
    # The page says voided, and no longer names the deleted Splynx payment.
    detail = admin.get(f"{staff_world.url}/ippay/admin/transactions/{attempt.id}").text
    assert 'id="outcome" data-status="voided">voided<' in detail
    assert "none: the void deleted it" in detail and 'id="void-form"' not in detail
    assert "Voided on" in detail and "Sandbox Administrator" in detail
    assert "Void: recorded in Splynx" in detail and "Recorded in Splynx as a payment" in detail
    # Nothing is left to void or refund.
    again = post(admin, staff_world, f"transactions/{attempt.id}/void", {"confirm": "yes"})
    assert again.status_code == 302
    assert len(refunds.refunds_of(staff_world.ctx, attempt.id)) == 1
    try:
        refunds.refund(staff_world.ctx, attempt.id, 100, 1)
        raise AssertionError("refund after a void must be refused")
    except refunds.RefundError as exc:
        assert "At most 0.00" in str(exc)


def test_partial_refunds_never_exceed_the_payment(staff_world):
    admin, attempts = charged(staff_world)
    attempt = attempts[0]
    deposit_before = next(c for c in staff_world.emu_call("state")["customers"]
                          if int(c["id"]) == 1)["deposit"]
    asked = post(admin, staff_world, f"transactions/{attempt.id}/refund", {"amount": "10.00"})
    assert asked.status_code == 200 and "Yes, refund 10.00" in asked.text
    assert 'name="amount" value="10.00"' in asked.text
    assert refunds.refunds_of(staff_world.ctx, attempt.id) == []
    assert post(admin, staff_world, f"transactions/{attempt.id}/refund",
                {"amount": "10.00", "confirm": "yes"}).status_code == 302
    left = attempt.amount_cents - 1000
    # More than is left is refused at once: no confirmation for what cannot be done.
    too_much = post(admin, staff_world, f"transactions/{attempt.id}/refund",
                    {"amount": f"{left // 100 + 1}.00"})
    assert too_much.status_code == 302
    page = admin.get(f"{staff_world.url}/ippay/admin/transactions/{attempt.id}").text
    assert "At most" in page
    assert post(admin, staff_world, f"transactions/{attempt.id}/refund",
                {"amount": f"{left // 100}.{left % 100:02d}", "confirm": "yes"}).status_code == 302
    rows = refunds.refunds_of(staff_world.ctx, attempt.id)
    assert [(r.kind, r.status, r.amount_cents) for r in rows] == [
        ("refund", "posted", 1000), ("refund", "posted", left)]
    assert refunds.refundable_cents(staff_world.ctx, journal.load(
        staff_world.ctx, attempt.id)) == 0
    credits = [t for t in staff_world.sim_call("ledger")["transactions"]
               if t["type"] == "CREDIT" and t["transaction_id"] == attempt.transaction_id]
    assert sorted(int(t["amount"]) for t in credits) == sorted([1000, left])
    state = staff_world.emu_call("state")
    booked = [t for t in state["transactions"] if str(t.get("comment", "")).startswith(
        f"IPPAY-REFUND-{attempt.transaction_id}")]
    assert len(booked) == 2 and {t["type"] for t in booked} == {"debit"}
    deposit_after = next(c for c in state["customers"] if int(c["id"]) == 1)["deposit"]
    assert round(float(deposit_before) - float(deposit_after), 2) == attempt.amount_cents / 100
    # The payment stays: the money was received, then given back.
    assert [p for p in state["payments"] if p.get("field_1") == attempt.transaction_id]
    with session_scope(staff_world.ctx.sessions) as session:
        actions = [a.action for a in session.execute(select(StaffAction)).scalars()]
    assert actions.count("refund") == 2


def test_simultaneous_refunds_give_money_back_once(staff_world):
    _, attempts = charged(staff_world)
    attempt = attempts[0]
    outcomes = []
    barrier = threading.Barrier(5)

    def go():
        barrier.wait()
        try:
            outcomes.append(refunds.refund(staff_world.ctx, attempt.id, attempt.amount_cents, 1))
        except refunds.RefundError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=go) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [o for o in outcomes if isinstance(o, Refund) and o.status == "posted"]
    assert len(done) == 1
    credits = [t for t in staff_world.sim_call("ledger")["transactions"] if t["type"] == "CREDIT"]
    assert len(credits) == 1


def test_an_unknown_refund_is_settled_by_enq_not_resent(staff_world):
    _, attempts = charged(staff_world)
    attempt = attempts[0]
    staff_world.sim_call("faults", {"faults": [{"kind": "timeout_commit", "delay_s": 1.5,
                                                "types": ["CREDIT"], "count": 1}]})
    row = refunds.refund(staff_world.ctx, attempt.id, 500, 1)
    assert row.status == "posted"
    credits = [t for t in staff_world.sim_call("ledger")["transactions"] if t["type"] == "CREDIT"]
    assert len(credits) == 1
    staff_world.sim_call("faults", {"faults": [{"kind": "timeout_no_commit", "delay_s": 1.5,
                                                "types": ["CREDIT"], "count": 1}]})
    row = refunds.refund(staff_world.ctx, attempt.id, 500, 1)
    assert row.status == "failed"
    credits = [t for t in staff_world.sim_call("ledger")["transactions"] if t["type"] == "CREDIT"]
    assert len(credits) == 1


def test_a_payment_not_yet_in_splynx_is_not_voided(staff_world):
    """A void deletes the Splynx payment; an approval still waiting to be posted would be
    posted after the void (money booked that was never taken), so it is refused."""
    import pytest

    from splynx_ippay.services import journal
    from tests.support import open_attempt_for

    save_cards(staff_world.ctx, [1])
    addon = staff_world.ctx
    with session_scope(addon.sessions) as session:
        from splynx_ippay.models import Card
        card = session.execute(select(Card).where(Card.customer_id == 1)).scalars().first()
    bill = next(i for i in addon.splynx.list_invoices(customer_id=1, status="not_paid")
                if i.due_cents % 100 == 0)
    staff_world.emu_call("faults", {"status": 500, "path_regex": "finance/payments$",
                                    "method": "POST", "count": 1})
    attempt = journal.charge(addon, open_attempt_for(addon, card, bill))
    assert attempt.status == "post_pending"
    assert not refunds.can_void(addon, attempt)
    with pytest.raises(refunds.RefundError):
        refunds.void(addon, attempt.id, 1)
    assert journal.reconcile(addon, min_age_seconds=0) == {"posted": 1}
    # Posted now: the void goes through and takes the payment away again.
    assert refunds.void(addon, attempt.id, 1).status == "posted"
    ledger = staff_world.sim_call("ledger")["transactions"]
    assert [t["type"] for t in ledger if t["transaction_id"] == attempt.transaction_id] \
        == ["SALE", "VOID"]
    assert [p for p in staff_world.emu_call("state")["payments"]
            if p.get("field_1") == attempt.transaction_id] == []
