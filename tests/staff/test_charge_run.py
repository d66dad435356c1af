"""Charge runs from the staff pages: period checks, preview, one run per period, the
worker's outcomes, progress, CSV, rerun; and staff identity on every page."""

import csv
import io
import re
import threading

import requests
from sqlalchemy import select

from splynx_ippay.db import session_scope
from splynx_ippay.models import ChargeItem, PaymentAttempt, StaffAction
from splynx_ippay.services.charge_runs.filters import RunFilters

from .conftest import confirm_data, run_worker_until_done, runs, save_cards, start_run

PERIOD = {"date_from": "2024-01-01", "date_to": "2024-12-31"}


def post(session, world, path, data):
    return session.post(f"{world.url}/ippay/admin/{path}", data=data, timeout=30,
                        allow_redirects=False)


def test_staff_pages_need_an_administrator(staff_world):
    anonymous = requests.Session()
    for path in ("settings", "charge", "runs", "transactions", "runs/1/progress"):
        response = anonymous.get(f"{staff_world.url}/ippay/admin/{path}", allow_redirects=False)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/admin/login/?return=%2Fippay%2Fadmin%2F")
    customer = staff_world.login("alice")
    for path in ("settings", "charge", "runs", "transactions"):
        response = customer.get(f"{staff_world.url}/ippay/admin/{path}", allow_redirects=False)
        assert response.status_code == 403
    response = post(customer, staff_world, "charge/confirm", PERIOD)
    assert response.status_code == 403 and runs(staff_world.ctx) == []


def test_period_errors_say_what_is_wrong_and_start_nothing(staff_world):
    admin = staff_world.login_admin()
    cases = [
        ({"date_from": "2024-05-01", "date_to": "2024-04-01"}, "starts after it ends"),
        ({"date_from": "2024-13-01", "date_to": "2024-12-31"}, "must be a date"),
        ({"date_from": "yesterday", "date_to": "2024-12-31"}, "must be a date"),
        ({"date_from": "", "date_to": "2024-12-31"}, "Enter the period"),
        ({"date_from": "2020-01-01", "date_to": "2020-01-31"}, "no unpaid invoices"),
        ({**PERIOD, "customer_ids": "1,x"}, "Customer IDs"),
    ]
    for data, message in cases:
        for path in ("charge/preview", "charge/confirm"):
            response = post(admin, staff_world, path, data)
            assert message in response.text, (data, response.text[:2000])
    assert runs(staff_world.ctx) == []


def test_preview_lists_customers_without_a_card_apart(staff_world):
    save_cards(staff_world.ctx, [1, 2])
    admin = staff_world.login_admin()
    response = post(admin, staff_world, "charge/preview", PERIOD)
    assert response.status_code == 200
    text = response.text
    # Unpaid in the seed: alice 3,5,8,10; bob 6,9,11; carol 4,7.
    assert 'id="pv-invoices">9<' in text and 'id="pv-customers">3<' in text
    # Carol (3) by name, linked to her page in Splynx.
    without = text.split('id="without-card"', 1)[1].split("</table>", 1)[0]
    assert 'href="/admin/customers/view?id=3"' in without and "Carol Clark" in without
    assert "Alice" not in without and "Bob" not in without
    assert "Confirm: charge 7 invoices" in text
    # The Confirm button carries what was previewed; nothing starts without it.
    assert 'name="expect_invoices" value="7"' in text
    unconfirmed = post(admin, staff_world, "charge/confirm", PERIOD)
    assert unconfirmed.status_code == 409 and "confirm" in unconfirmed.text
    assert runs(staff_world.ctx) == []


def test_a_run_starts_only_if_the_invoices_are_still_those_previewed(staff_world):
    save_cards(staff_world.ctx, [1, 2])
    admin = staff_world.login_admin()
    data = confirm_data(admin, staff_world, PERIOD)
    # An invoice issued after the preview changes the count and the total.
    staff_world.store().add_invoice(1, [{"description": "Late one", "quantity": 1,
                                         "price": "5.00"}], date_created="2024-07-07")
    changed = admin.post(f"{staff_world.url}/ippay/admin/charge/confirm", data=data,
                         allow_redirects=False)
    assert changed.status_code == 409 and "changed since the preview" in changed.text
    assert "Confirm: charge 8 invoices" in changed.text and runs(staff_world.ctx) == []
    assert start_run(admin, staff_world, PERIOD).status_code == 302
    assert len(runs(staff_world.ctx)) == 1


def test_a_double_click_or_two_staff_start_one_run(staff_world):
    save_cards(staff_world.ctx, [1, 2, 3])
    first, second = staff_world.login_admin(), staff_world.login_admin()
    confirmed = confirm_data(first, staff_world, PERIOD)
    answers = []
    barrier = threading.Barrier(4)

    def confirm(session):
        barrier.wait()
        answers.append(post(session, staff_world, "charge/confirm", confirmed))

    threads = [threading.Thread(target=confirm, args=(s,)) for s in (first, first, second, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(a.status_code for a in answers)
    assert codes == [302, 409, 409, 409], codes
    refused = [a for a in answers if a.status_code == 409]
    assert all("already queued or running" in a.text for a in refused)
    assert len(runs(staff_world.ctx)) == 1


def test_a_run_charges_posts_declines_and_reports(staff_world):
    addon = staff_world.ctx
    save_cards(addon, [1, 2])  # carol (3) has no card
    admin = staff_world.login_admin()
    response = start_run(admin, staff_world, PERIOD)
    assert response.status_code == 302
    run_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    page = admin.get(f"{staff_world.url}/ippay/admin/runs/{run_id}")
    assert page.ok and 'id="progress"' in page.text
    assert admin.get(f"{staff_world.url}/ippay/admin/runs/{run_id}/progress").json()["state"] == "queued"

    run_worker_until_done(addon)

    progress = admin.get(f"{staff_world.url}/ippay/admin/runs/{run_id}/progress").json()
    assert progress["state"] == "done" and progress["remaining"] == 0
    # alice 3 (60.10), 5 (75.00), 8 (120.50) approve, 10 (19.05) declines;
    # bob 6 (30.00), 9 (55.25) approve, 11 (12.34) declines; carol's two: no card.
    assert (progress["charged"], progress["declined"], progress["errors"],
            progress["skipped"]) == (5, 2, 0, 2)
    state = staff_world.emu_call("state")
    paid = {int(i["id"]): i for i in state["invoices"]}
    for invoice_id in (3, 5, 6, 8, 9):
        assert paid[invoice_id]["status"] == "paid"
    for invoice_id in (10, 11, 4, 7):
        assert paid[invoice_id]["status"] != "paid"
    with session_scope(addon.sessions) as session:
        attempts = session.execute(select(PaymentAttempt)).scalars().all()
        items = {i.invoice_id: i for i in session.execute(select(ChargeItem)).scalars()}
    assert {a.origin for a in attempts} == {"RECURRING"} and {a.channel for a in attempts} == {"charge_run"}
    assert all(a.admin_id == 1 for a in attempts)
    assert items[10].status == "declined" and items[10].action_code == "005"
    assert items[10].response_text and items[10].masked_card == "Visa •••• 1111"
    assert items[7].status == "skipped" and "No saved card" in items[7].message

    download = admin.get(f"{staff_world.url}/ippay/admin/runs/{run_id}/csv")
    # UTF-8 with a byte-order mark, so that a spreadsheet shows "Visa •••• 1111" as it is.
    assert download.content.startswith(b"\xef\xbb\xbf")
    assert download.headers["Content-Type"] == "text/csv; charset=utf-8"
    csv_text = download.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(rows) == 9
    row = next(r for r in rows if r["invoice_id"] == "5")
    assert row["outcome"] == "charged" and row["amount"] == "75.00" and len(row["transaction_id"]) == 18
    assert "4111111111111111" not in csv_text
    assert list(rows[0])[:10] == ["invoice_id", "invoice_number", "customer_id", "amount",
                                  "outcome", "gateway_code", "gateway_text", "message", "card",
                                  "transaction_id"], "old columns first, in their order"
    assert row["customer_name"] == "Alice Anderson" and row["card"] == "Visa •••• 1111"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["charge_started_utc"])
    assert row["outcome_at_utc"] >= row["charge_started_utc"]
    skipped = next(r for r in rows if r["invoice_id"] == "7")
    assert (skipped["customer_name"], skipped["charge_started_utc"]) == ("Carol Clark", "")

    history = admin.get(f"{staff_world.url}/ippay/admin/runs").text
    assert f"#{run_id}" in history and "Sandbox Administrator" in history

    # Rerun: only the declined invoices go into the new run, once confirmed.
    asked = post(admin, staff_world, f"runs/{run_id}/rerun", {})
    assert asked.status_code == 200 and "Yes, charge 2 invoices again" in asked.text
    assert len(runs(addon)) == 1
    response = post(admin, staff_world, f"runs/{run_id}/rerun", {"confirm": "yes"})
    assert response.status_code == 302
    rerun_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    assert rerun_id != run_id
    assert post(admin, staff_world, f"runs/{run_id}/rerun",
                {"confirm": "yes"}).status_code == 302  # refused, flashed
    assert len(runs(addon)) == 2
    run_worker_until_done(addon)
    with session_scope(addon.sessions) as session:
        again = session.execute(select(ChargeItem).where(ChargeItem.run_id == rerun_id)).scalars().all()
        actions = [a.action for a in session.execute(select(StaffAction)).scalars()]
    assert sorted(i.invoice_id for i in again) == [10, 11]
    assert {i.status for i in again} == {"declined"}
    assert {"run_started", "run_rerun", "run_downloaded"} <= set(actions)
    # Every approval at the simulator is exactly one Splynx payment.
    sales = [t for t in staff_world.sim_call("ledger")["transactions"] if t["type"] == "SALE"
             and t["action_code"] == "000"]
    payments = [p for p in staff_world.emu_call("state")["payments"] if p.get("field_1")]
    assert sorted(t["transaction_id"] for t in sales) == sorted(p["field_1"] for p in payments)


def test_emulator_charge_button_and_modules_edit_open_the_addon(staff_world):
    admin = staff_world.login_admin()
    invoices = admin.get(f"{staff_world.url}/admin/finance/invoices").text
    assert 'id="charge-ippay_admin_charge"' in invoices
    modules = admin.get(f"{staff_world.url}/admin/config/integrations/modules/edit",
                        params={"name": "splynx_ippay_addon"}).text
    assert 'src="/ippay/admin/settings"' in modules
    framed = admin.get(f"{staff_world.url}/admin/add-on", params={
        "module": "splynx_ippay_addon",
        "point": next(p["id"] for p in staff_world.emu_call("state")["entry_points"]
                      if p["name"] == "ippay_admin_charge")}).text
    assert 'src="/ippay/admin/charge"' in framed
    assert admin.get(f"{staff_world.url}/ippay/admin/charge").ok


def test_a_stalled_worker_taken_for_dead_changes_nothing_and_comes_back(staff_world):
    """Worker A claims an item and stalls past the lease; B takes it over and charges it.
    A's late work must not charge again nor overwrite the item, and A registers again
    instead of having every later claim taken from under it."""
    import datetime as dt

    from splynx_ippay.models import ChargeWorker
    from splynx_ippay.services.charge_runs import items as run_items, runs as charge_runs
    from splynx_ippay.services.charge_runs.worker import Worker

    addon = staff_world.ctx
    save_cards(addon, [1])
    run = charge_runs.create_run(addon, admin_id=1, period_from=dt.date(2024, 1, 1),
                              period_to=dt.date(2024, 12, 31), filters=RunFilters(customer_ids=(1,)))
    stalled = Worker(addon, concurrency=1, run_ids=[run.id], settle_after=0,
                              retry_after=0, lease=5, poll=0)
    stalled._register()
    while stalled.expand_step():
        pass
    [item_id] = stalled.claim(1)
    with session_scope(addon.sessions) as session:
        session.execute(ChargeWorker.__table__.update().where(ChargeWorker.token == stalled.token)
                        .values(heartbeat_at=dt.datetime(2000, 1, 1)))
    rescuer = Worker(addon, concurrency=1, run_ids=[run.id], settle_after=0,
                              retry_after=0, lease=5, poll=0)
    rescuer._register()
    assert rescuer.recover() == 1
    assert rescuer.claim(10)[:1] == [item_id]
    run_items.process_item(addon, item_id, rescuer)
    before = [i for i in charge_runs.items(addon, run.id) if i.id == item_id][0]
    assert before.status == "charged"
    # A wakes up and carries on with the item it claimed.
    run_items.process_item(addon, item_id, stalled)
    after = [i for i in charge_runs.items(addon, run.id) if i.id == item_id][0]
    assert (after.status, after.transaction_id, after.message) == \
        (before.status, before.transaction_id, before.message)
    sales = [t for t in staff_world.sim_call("ledger")["transactions"]
             if t["type"] == "SALE" and t["transaction_id"] == before.transaction_id]
    assert len(sales) == 1
    stalled._last_beat = 0.0
    stalled._heartbeat()
    with session_scope(addon.sessions) as session:
        assert session.get(ChargeWorker, stalled.token) is not None
