"""The staff side's charge runs in a real Chromium, as an administrator goes through them in
the demo: Finance → Invoices → Charge → preview (the confirmation step) → Confirm → the run
with live progress → CSV, at desktop and phone width; a run no worker takes (the worker
stopped, the warning on its page); the charge worker killed with SIGKILL mid-run, restarted,
and the declined charged again after a confirmation; a customer session refused; the staff
forms by keyboard. The other staff pages are in test_staff_pages_browser.py."""

import os
import re
import signal
import time

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import admin_login, assert_labelled, login
from tests.browser.staff_world import (  # noqa: F401  (staff_stack: the stack fixture)
    ALARM_AFTER, check_ledgers, confirm, confirm_step, counts_on_page, download_csv,
    emulator_state, fits_and_is_wide, issue_invoices, last_seq, open_charge_page, preview,
    save_cards_in_portal, shot, sim, staff_stack)

pytestmark = pytest.mark.browser

#: Each viewport charges its own period, so that both find unpaid invoices. The desktop
#: one is the emulator's seed (March–May 2024); the phone one is made by ``staff_data``.
#: Cents decide the simulator's answer: .05 and .34 decline, the others approve.
PERIODS = {
    "desktop": {"from": "2024-03-01", "to": "2024-05-31", "invoices": 7, "customers": 3,
                "total": "412.13", "chargeable": "6 invoices, 312.14", "charged": 4,
                "declined": 2, "declined_amounts": {"19.05", "12.34"},
                "without_card": {"3": ("1", "99.99")}},
    "phone": {"from": "2024-06-01", "to": "2024-06-30", "invoices": 4, "customers": 3,
              "total": "148.05", "chargeable": "3 invoices, 123.05", "charged": 2,
              "declined": 1, "declined_amounts": {"19.05"},
              "without_card": {"3": ("1", "25.00")}},
}
PHONE_INVOICES = [(1, "44.00", "2024-06-05"), (2, "19.05", "2024-06-05"),
                  (3, "25.00", "2024-06-05"), (2, "60.00", "2024-06-20")]
#: The run the worker is killed in: 30 invoices of alice and bob, two of them declining.
KILL_INVOICES = [(1 + n % 2, "19.05" if n in (7, 21) else f"{10 + n}.00",
                  f"2024-08-{1 + n % 28:02d}") for n in range(30)]
#: The runs started while no worker runs, one period per viewport.
DEAD_PERIODS = {"desktop": ("2024-09-01", "2024-09-30"), "phone": ("2025-02-01", "2025-02-28")}
DEAD_INVOICES = [(1, "21.00", "2024-09-03"), (2, "22.00", "2024-09-04"),
                 (1, "23.00", "2025-02-03"), (2, "24.00", "2025-02-04")]
NAMES = {"1": "Alice Anderson", "2": "Bob Brown", "3": "Carol Clark"}

STAFF_PAGES = ["charge", "runs", "runs/1", "runs/1/csv", "runs/1/progress", "transactions",
               "transactions/1", "settings", "settings?partner=2", "blocked"]


@pytest.fixture(scope="module")
def staff_data(stack, browser):
    """Alice and Bob save a card through the portal (Carol has none); the invoices the
    phone run, the killed run and the runs without a worker charge are issued through
    Splynx's API."""
    save_cards_in_portal(stack, browser)
    issue_invoices(stack, PHONE_INVOICES + KILL_INVOICES + DEAD_INVOICES)
    return stack


@pytest.fixture
def latency(stack):
    """Set the simulator's latency for one test (back to 0 after)."""
    def set_latency(ms):
        sim(stack, "config", {"latency_ms": ms})
    yield set_latency
    set_latency(0)


WATCH_PROGRESS = """box => {
  const bar = box.querySelector('[role=progressbar]');
  window.__progress = [];
  new MutationObserver(() => window.__progress.push(
      [+bar.getAttribute('aria-valuenow'), document.getElementById('p-state').textContent]))
    .observe(bar, {attributes: true});
}"""
#: The run's state while no worker has started charging it, in staff words.
NOT_STARTED = re.compile("waiting for a worker|reading the invoices")


# --- 1. a charge run as staff do it -----------------------------------------------------

def test_charge_run_preview_confirm_progress_csv(page, staff_data, viewport, latency):
    stack, period = staff_data, PERIODS[viewport]
    admin_login(page, stack)
    frame = open_charge_page(page)
    assert_labelled(frame)
    fits_and_is_wide(frame, viewport, "charge")
    shot(page, "charge")
    preview(frame, period["from"], period["to"])
    expect(frame.locator("#pv-invoices")).to_have_text(str(period["invoices"]))
    expect(frame.locator("#pv-customers")).to_have_text(str(period["customers"]))
    expect(frame.locator("#pv-total")).to_have_text(period["total"])
    expect(frame.locator("#pv-chargeable")).to_have_text(period["chargeable"])
    apart = frame.locator("#without-card tbody tr")
    expect(apart).to_have_count(len(period["without_card"]))
    for customer, (invoices, due) in period["without_card"].items():
        expect(apart.filter(has_text=due)).to_contain_text(customer)
        expect(apart.filter(has_text=due)).to_contain_text(invoices)
        # By name, linked to the customer's page in Splynx (opened in the whole window).
        link = apart.filter(has_text=due).get_by_role("link", name=NAMES[customer])
        expect(link).to_have_attribute("href", f"/admin/customers/view?id={customer}")
        expect(link).to_have_attribute("target", "_top")
    count = period["chargeable"].split()[0]
    expect(frame.locator("#confirm")).to_contain_text(f"Confirm: charge {count} invoices")
    # The preview is the confirmation: it says what starts when Confirm is pressed.
    expect(frame.locator("#confirm-question")).to_contain_text(
        f"Charging starts as soon as you confirm: {count} invoices")
    assert frame.locator("body").evaluate(
        "b => b.ownerDocument.querySelector('#confirm').getAttribute('aria-describedby')") \
        == "confirm-question"
    fits_and_is_wide(frame, viewport, "preview")
    shot(page, "preview")

    # Slow enough that the bar is seen moving (one charge takes 1.5 s, four at a time).
    latency(1500)
    seq = last_seq(stack)
    run_id = confirm(frame)
    frame.locator("#progress").evaluate(WATCH_PROGRESS)
    expect(frame.locator("#p-state")).not_to_have_text(NOT_STARTED, timeout=15000)
    expect(frame.locator("#p-state")).to_have_text("charging")
    shot(page, "progress")
    expect(frame.locator("#p-state")).to_have_text("done", timeout=30000)
    seen = frame.locator("#progress").evaluate("() => window.__progress")
    assert seen, "the page was reloaded, or the bar never moved"
    percents = [p for p, _ in seen]
    assert percents == sorted(percents) and percents[-1] == 100, seen
    assert seen[-1][1] == "done" and len({tuple(s) for s in seen}) > 1, seen
    # The bar counts charges made (charged, declined, errors) of those to make: never the
    # invoice skipped for want of a card.
    charges = int(count)
    assert set(percents) <= {100 * k // charges for k in range(charges + 1)}, seen
    expect(frame.locator("#bar")).to_have_attribute("style", re.compile(r"width: ?100%"))
    shown = counts_on_page(frame)
    assert shown == {"state": "done", "charged": str(period["charged"]),
                     "declined": str(period["declined"]), "errors": "0", "skipped": "1",
                     "remaining": "0"}
    expect(frame.locator("#p-made")).to_have_text(count)
    expect(frame.locator("#p-to-make")).to_have_text(count)
    expect(frame.locator("#p-skipped-beside")).to_have_text("1")
    expect(frame.locator("#worker-warning")).to_be_hidden()
    # The item list and the rerun button come with the final state, still without a reload.
    expect(frame.locator("#items tbody tr")).to_have_count(period["invoices"])
    expect(frame.get_by_role("button", name="Charge the declined and failed again")).to_be_visible()
    assert frame.locator("#progress").evaluate("() => Array.isArray(window.__progress)")
    # Outcomes in staff words; the skipped one says why, by the customer's name.
    outcomes = frame.locator("#items tbody td.outcome").all_inner_texts()
    assert sorted(set(outcomes)) == ["charged", "declined", "skipped"], outcomes
    skipped_row = frame.locator('#items tbody tr[data-status="skipped"]')
    expect(skipped_row).to_contain_text("Carol Clark")
    expect(skipped_row).to_contain_text("No saved card.")
    expect(frame.locator('#items tbody tr[data-status="declined"]').first).to_contain_text(
        "Do not honor: The bank declined without giving a reason.")
    assert_labelled(frame)
    # At any width the page fits its frame: wide tables scroll inside themselves.
    fits_and_is_wide(frame, viewport, "run")
    expect(frame.locator("#p-amount")).to_have_text(re.compile(r"^\d[\d,]*\.\d\d$"))
    expect(frame.locator("#run-admin")).to_have_text("Sandbox Administrator")
    shot(page, "done")

    rows = download_csv(page, frame, f"staff-charge-run-{viewport}.csv")
    assert len(rows) == period["invoices"]
    by_outcome = {}
    for row in rows:
        by_outcome.setdefault(row["outcome"], []).append(row)
    assert {k: len(v) for k, v in by_outcome.items()} == {
        "charged": period["charged"], "declined": period["declined"], "skipped": 1}
    assert {r["amount"] for r in by_outcome["declined"]} == period["declined_amounts"]
    assert all(r["gateway_code"] and r["gateway_text"] for r in by_outcome["declined"])
    skipped = by_outcome["skipped"][0]
    assert (skipped["customer_id"], skipped["message"]) == ("3", "No saved card.")
    for row in by_outcome["charged"] + by_outcome["declined"]:
        assert row["transaction_id"] and row["card"].endswith("1111"), row
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["charge_started_utc"]), row
        assert row["outcome_at_utc"] >= row["charge_started_utc"], row
    # Masked card only: never more than the last four digits; "••••" as it is (the BOM).
    assert all(len(re.sub(r"\D", "", r["card"])) <= 4 for r in rows), rows
    assert all("••••" in r["card"] for r in rows if r["card"]), rows
    assert all(r["customer_name"] == NAMES[r["customer_id"]] for r in rows), rows
    approved = check_ledgers(stack, rows, seq)
    assert len(approved) == period["charged"]
    # The run is listed in the history with the same counts, and who started it.
    frame.get_by_role("link", name="Charge runs").click()
    history = frame.locator("#runs tbody tr").filter(
        has=frame.get_by_role("link", name=f"#{run_id}", exact=True))
    expect(history).to_contain_text("done")
    expect(history).to_contain_text("Sandbox Administrator")
    fits_and_is_wide(frame, viewport, "runs")
    shot(page, "runs")


# --- 2. a run that no worker takes --------------------------------------------------------

def test_run_no_worker_takes_warns_staff(page, staff_data, viewport):
    """splynx-ippay-worker is not running: the run's page says so once no worker has taken
    the run for the threshold, live, and the warning goes when a worker runs again."""
    stack = staff_data
    admin_login(page, stack)
    frame = open_charge_page(page)
    preview(frame, *DEAD_PERIODS[viewport])
    expect(frame.locator("#pv-chargeable")).to_have_text(re.compile(r"^2 invoices"))
    worker = stack.worker
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    try:
        confirm(frame)
        expect(frame.locator("#p-state")).to_have_text("waiting for a worker")
        warning = frame.locator("#worker-warning")
        expect(warning).to_be_hidden()
        shot(page, "waiting")
        started = time.monotonic()
        expect(warning).to_be_visible(timeout=(ALARM_AFTER + 15) * 1000)
        assert time.monotonic() - started >= ALARM_AFTER - 2, "warned before the threshold"
        expect(warning).to_have_attribute("role", "alert")
        expect(warning).to_contain_text(re.compile(
            r"No worker has taken this run for \d+ s: is splynx-ippay-worker running\?"))
        expect(warning).to_contain_text("The last worker seen was on")
        expect(frame.locator("#p-remaining")).to_have_text("2")
        fits_and_is_wide(frame, viewport, "dead worker")
        shot(page, "dead-worker")
    finally:
        stack.start_worker()
    expect(frame.locator("#p-state")).to_have_text("done", timeout=30000)
    expect(frame.locator("#worker-warning")).to_be_hidden()
    expect(frame.locator("#p-charged")).to_have_text("2")
    shot(page, "resumed")


# --- 3. the worker killed mid-run, then restarted ----------------------------------------

@pytest.mark.parametrize("viewport", ["desktop"])
def test_worker_killed_mid_run_and_restarted(page, staff_data, viewport, latency):
    stack = staff_data
    admin_login(page, stack)
    frame = open_charge_page(page)
    preview(frame, "2024-08-01", "2024-08-31")
    expect(frame.locator("#pv-invoices")).to_have_text(str(len(KILL_INVOICES)))
    latency(300)
    seq = last_seq(stack)
    run_id = confirm(frame)
    progress_url = f"{stack.front}/ippay/admin/runs/{run_id}/progress"

    def progress():
        response = page.request.get(progress_url)
        assert response.ok, response.status
        return response.json()

    deadline = time.monotonic() + 30
    while True:
        now = progress()
        if now["charged"] + now["declined"] >= 3:
            break
        assert time.monotonic() < deadline, now
        time.sleep(0.05)
    worker = stack.worker
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)  # reaped: the restarted worker sees the process is gone
    at_kill = progress()
    assert at_kill["remaining"] > 0 and not at_kill["done"], at_kill
    time.sleep(2)
    stalled = progress()
    assert stalled["remaining"] > 0 and stalled["state"] != "done", stalled
    shot(page, "killed")

    # Restarted as the demo's worker.sh does. A shorter gateway read timeout makes the
    # worker settle the charges the dead one left in flight (ENQ after the read timeout
    # + 5 s) within the test's time instead of after the default 50 s.
    stack.extra_env["SPLYNX_IPPAY_IPPAY_READ_TIMEOUT"] = "3"
    try:
        restarted = stack.start_worker()
    finally:
        stack.extra_env.pop("SPLYNX_IPPAY_IPPAY_READ_TIMEOUT")
    assert restarted.pid != worker.pid
    expect(frame.locator("#p-state")).to_have_text("done", timeout=45000)
    expect(frame.locator("#p-remaining")).to_have_text("0")
    shot(page, "resumed")
    final = progress()
    rows = download_csv(page, frame, "staff-killed-run.csv")
    assert len(rows) == len(KILL_INVOICES)
    approved = check_ledgers(stack, rows, seq)
    outcomes = [r["outcome"] for r in rows]
    assert (final["charged"], final["declined"], final["errors"], final["skipped"]) == (
        outcomes.count("charged"), outcomes.count("declined"), outcomes.count("error"), 0)
    # The run resumed whole: what the dead worker had sent was settled by ENQ, what it had
    # not yet sent (attempts are marked sent only once their gateway turn comes) was charged.
    assert (final["charged"], final["declined"], final["errors"]) == (28, 2, 0), final
    assert len(approved) == 28

    # Charge the declined and failed again, once confirmed: every invoice that can be paid
    # ends paid once.
    latency(0)
    seq = last_seq(stack)
    frame.get_by_role("button", name="Charge the declined and failed again").click()
    expect(frame.locator("h1")).to_have_text(f"Charge again: run #{run_id}")
    expect(frame.locator("#confirm-step")).to_contain_text("2 declined or failed")
    assert_labelled(frame)
    shot(page, "rerun-confirm")
    confirm_step(frame, "Yes, charge 2 invoices again")
    expect(frame.locator("h1")).to_have_text(re.compile(r"Charge run #\d+"))
    expect(frame.locator("h1")).not_to_have_text(f"Charge run #{run_id}")
    expect(frame.locator("#p-state")).to_have_text("done", timeout=30000)
    expect(frame.locator("#p-charged")).to_have_text(str(28 - final["charged"]))
    expect(frame.locator("#p-declined")).to_have_text("2")
    expect(frame.locator("#p-errors")).to_have_text("0")
    expect(frame.locator("#run-about")).to_contain_text(
        f"the 2 declined and failed invoices of run #{run_id}")
    shot(page, "rerun")
    rerun = download_csv(page, frame, "staff-killed-run-rerun.csv")
    assert {r["invoice_id"] for r in rerun} == {
        r["invoice_id"] for r in rows if r["outcome"] != "charged"}
    check_ledgers(stack, rerun, seq)
    state = emulator_state(stack)
    invoices = {str(i["id"]): i for i in state["invoices"]}
    paid = [r for r in rows if invoices[r["invoice_id"]]["status"] == "paid"]
    assert len(paid) == 28
    tids = {r["transaction_id"] for r in rows + rerun if r["transaction_id"]}
    payments = [p for p in state["payments"] if p.get("field_1") in tids]
    assert len(payments) == 28 and len({p["invoice_id"] for p in payments}) == 28


# --- 4. identity, labels, keyboard -------------------------------------------------------

@pytest.mark.parametrize("viewport", ["desktop"])
def test_customer_session_gets_403_on_staff_pages(page, staff_data, viewport):
    stack = staff_data
    login(page, stack, "carol")
    for path in STAFF_PAGES:
        response = page.goto(f"{stack.front}/ippay/admin/{path}")
        assert response.status == 403, (path, response.status)
        assert "4111" not in page.content()
    page.shot("forbidden")
    # Without any session the staff pages send to Splynx's admin login.
    page.context.clear_cookies()
    page.goto(f"{stack.front}/ippay/admin/charge")
    expect(page).to_have_url(re.compile(r"/admin/login/?\?return=%2Fippay%2Fadmin%2Fcharge"))
    expect(page.get_by_label("Login")).to_be_visible()


def tab_to(page, element_id, limit=6):
    """Press Tab until the element with ``element_id`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} not reached by Tab")


def test_staff_forms_by_keyboard(page, staff_data, viewport):
    """Tab from field to field and Enter to send: the charge form (a period that is wrong,
    then one with no invoices), the settings form's Test gateway and its partner selector,
    the transaction filter."""
    stack = staff_data
    admin_login(page, stack)
    page.goto(f"{stack.front}/ippay/admin/charge")
    page.get_by_label("Invoice date from").focus()
    page.keyboard.type("05312024")
    tab_to(page, "date_to")  # past the date picker's button
    page.keyboard.type("05012024")
    page.keyboard.press("Enter")
    expect(page.locator("#charge-error")).to_contain_text("The period starts after it ends")
    expect(page.locator("#preview")).to_have_count(0)
    page.shot("period-error")
    page.get_by_label("Invoice date from").focus()
    page.keyboard.type("01012030")
    tab_to(page, "date_to")
    page.keyboard.type("01312030")
    tab_to(page, "max_total")  # customers, partner, minimum, maximum
    page.keyboard.type("500")
    tab_to(page, "with_fees")  # the service fee's checkbox comes next, then Preview
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Preview"
    page.keyboard.press("Enter")
    expect(page.locator("#charge-error")).to_contain_text("no run was started")
    expect(page.locator("#confirm")).to_have_count(0)

    page.goto(f"{stack.front}/ippay/admin/settings")
    page.get_by_label(re.compile("Charge concurrency")).focus()
    # language, roles, the limits, the service fees, Save, Test gateway
    tab_to(page, "test-gateway", limit=40)
    page.keyboard.press("Enter")
    expect(page.locator("#test-result")).to_contain_text("answers PING")
    # The partner selector: a choice made with the arrow keys shows that partner at once.
    page.get_by_label("Partner", exact=True).focus()
    page.keyboard.press("End")
    page.wait_for_url(re.compile(r"settings\?partner=2"))
    expect(page.locator("h2").first).to_have_text("Partner Second Partner")

    page.goto(f"{stack.front}/ippay/admin/transactions")
    page.get_by_label("Customer ID").focus()
    page.keyboard.type("2")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"customer_id=2"))
    expect(page.locator("#attempts tbody tr").first).to_be_visible()
