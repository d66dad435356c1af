"""The staff side in a real Chromium, as an administrator goes through it in the demo: Finance →
Invoices → Charge (preview, confirm, live progress, CSV) at desktop and phone width; the
charge worker killed with SIGKILL mid-run and restarted; Modules list → Edit (the settings
page: field errors, Test gateway); a partial refund from the transaction log; a customer
session refused; labels and keyboard use."""

import csv
import os
import re
import signal
import time

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.helpers import admin_login, assert_labelled, fill_card, login

pytestmark = pytest.mark.browser

CSV_HEADER = ["invoice_id", "invoice_number", "customer_id", "amount", "outcome", "gateway_code",
              "gateway_text", "message", "card", "transaction_id"]

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
REFUND_INVOICES = [(1, "75.00", "2024-10-05")]

STAFF_PAGES = ["charge", "runs", "runs/1", "runs/1/csv", "runs/1/progress", "transactions",
               "transactions/1", "settings"]


# --- the world -------------------------------------------------------------------------

def sim(stack, path, payload=None):
    url = f"{stack.ippay_url}/_sim/{path}"
    response = (requests.post(url, json=payload, timeout=10) if payload is not None
                else requests.get(url, timeout=10))
    response.raise_for_status()
    return response.json()


def emulator_state(stack):
    response = requests.get(f"{stack.front}/_sandbox/state", timeout=10)
    response.raise_for_status()
    return response.json()


def last_seq(stack):
    return max((t["seq"] for t in sim(stack, "ledger")["transactions"]), default=0)


def sales_since(stack, seq):
    """SALE entries of the simulator's ledger after ``seq``: {transaction_id: entry}."""
    sales = [t for t in sim(stack, "ledger")["transactions"]
             if t["seq"] > seq and t["type"] == "SALE"]
    ids = [t["transaction_id"] for t in sales]
    assert len(ids) == len(set(ids)), f"a TransactionID twice in the ledger: {ids}"
    return {t["transaction_id"]: t for t in sales}


def sale_requests(stack):
    """How many SALE requests the simulator received, by TransactionID."""
    counts = {}
    for req in sim(stack, "requests")["requests"]:
        body = req["body"] or ""
        if re.search(r"<TransactionType>\s*SALE\s*</TransactionType>", body):
            tid = re.search(r"<TransactionID>\s*([^<\s]+)\s*</TransactionID>", body).group(1)
            counts[tid] = counts.get(tid, 0) + 1
    return counts


@pytest.fixture(scope="module")
def staff_data(stack, browser):
    """Alice and Bob save a card through the portal (Carol has none); the invoices the
    phone run, the killed run and the refund charge are issued through Splynx's API."""
    from splynx_ippay.splynx import SplynxClient

    for who in ("alice", "bob"):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
        context.set_default_timeout(15000)
        page = context.new_page()
        try:
            login(page, stack, who)
            page.goto(f"{stack.front}/ippay/cards")
            if page.locator(".saved-card").count() == 0:
                fill_card(page, holder=f"{who.title()} Card")
                page.get_by_role("button", name="Add card").click()
                expect(page.locator(".alert-success")).to_contain_text("Your card was saved.")
        finally:
            context.close()
    env = stack.addon_env()
    client = SplynxClient(stack.splynx_url, env["SPLYNX_IPPAY_SPLYNX_API_KEY"],
                          env["SPLYNX_IPPAY_SPLYNX_API_SECRET"])
    for customer, price, day in PHONE_INVOICES + KILL_INVOICES + REFUND_INVOICES:
        client.request("POST", "admin/finance/invoices", json={
            "customer_id": customer, "date_created": day,
            "items": [{"description": "Internet service", "quantity": 1, "price": price}]})
    return stack


@pytest.fixture
def latency(stack):
    """Set the simulator's latency for one test (back to 0 after)."""
    def set_latency(ms):
        sim(stack, "config", {"latency_ms": ms})
    yield set_latency
    set_latency(0)


# --- the pages -------------------------------------------------------------------------

def open_charge_page(page):
    """Finance → Invoices → the add-on's Charge button, framed by the emulator."""
    page.locator(".navbar").get_by_role("link", name="Invoices", exact=True).click()
    page.wait_for_url("**/admin/finance/invoices")
    page.locator(".card-header").get_by_role("link", name="Charge", exact=True).click()
    page.wait_for_url("**/admin/add-on?*")
    frame = page.frame_locator("#addon-frame")
    expect(frame.locator("h1")).to_have_text("Charge invoices to saved cards")
    return frame


def preview(frame, date_from, date_to):
    frame.get_by_label("Invoice date from").fill(date_from)
    frame.get_by_label("Invoice date to").fill(date_to)
    frame.get_by_role("button", name="Preview").click()
    expect(frame.locator("#preview")).to_be_visible()


def confirm(frame):
    """Confirm the previewed run; returns the run's id (its page is shown)."""
    frame.locator("#confirm").click()
    expect(frame.locator("h1")).to_have_text(re.compile(r"Charge run #\d+"))
    return int(re.search(r"\d+", frame.locator("h1").inner_text()).group())


WATCH_PROGRESS = """box => {
  const bar = box.querySelector('[role=progressbar]');
  window.__progress = [];
  new MutationObserver(() => window.__progress.push(
      [+bar.getAttribute('aria-valuenow'), document.getElementById('p-state').textContent]))
    .observe(bar, {attributes: true});
}"""


#: The frame's page is no wider than the frame (nothing to scroll sideways).
FITS = "b => (e => e.scrollWidth <= e.clientWidth)(b.ownerDocument.documentElement)"


def counts_on_page(frame):
    return {name: frame.locator(f"#p-{name}").inner_text()
            for name in ("state", "charged", "declined", "errors", "skipped", "remaining")}


def download_csv(page, frame, name):
    with page.expect_download() as info:
        frame.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert re.fullmatch(r"ippay-charge-run-\d+\.csv", download.suggested_filename)
    target = os.path.join(os.path.dirname(os.path.dirname(__file__)), "artifacts", name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    download.save_as(target)
    with open(target, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == CSV_HEADER
    return [dict(zip(CSV_HEADER, row)) for row in rows[1:]]


def check_ledgers(stack, rows, seq):
    """The CSV, the simulator's ledger and Splynx's payments tell the same story: every
    invoice charged at most once (one SALE request), every approval posted exactly once."""
    sales = sales_since(stack, seq)
    sent = {r["transaction_id"]: r for r in rows if r["outcome"] in ("charged", "declined")}
    assert set(sales) == set(sent), "the ledger's SALEs are the run's attempts"
    per_invoice = {}
    for row in rows:
        per_invoice.setdefault(row["invoice_id"], []).append(row)
    assert all(len(v) == 1 for v in per_invoice.values()), "one item per invoice"
    requested = sale_requests(stack)
    assert all(requested.get(tid) == 1 for tid in sent), \
        {tid: requested.get(tid) for tid in sent if requested.get(tid) != 1}
    approved = {tid for tid, t in sales.items() if t["status"] != "declined"}
    assert approved == {tid for tid, r in sent.items() if r["outcome"] == "charged"}
    for tid in approved:
        assert sales[tid]["amount"] == round(float(sent[tid]["amount"]) * 100)
    state = emulator_state(stack)
    payments = [p for p in state["payments"] if p.get("field_1") in sent]
    assert sorted(p["field_1"] for p in payments) == sorted(approved), \
        "each approval is one Splynx payment"
    invoices = {str(i["id"]): i for i in state["invoices"]}
    for tid in approved:
        assert invoices[sent[tid]["invoice_id"]]["status"] == "paid"
    return approved


# --- 1. a charge run as staff do it -----------------------------------------------------

def test_charge_run_preview_confirm_progress_csv(page, staff_data, viewport, latency):
    stack, period = staff_data, PERIODS[viewport]
    admin_login(page, stack)
    frame = open_charge_page(page)
    assert_labelled(frame)
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
    count = period["chargeable"].split()[0]
    expect(frame.locator("#confirm")).to_contain_text(f"Confirm: charge {count} invoices")
    assert frame.locator("body").evaluate(FITS), "the charge page scrolls sideways"
    page.shot("preview")

    # Slow enough that the bar is seen moving (one charge takes 1.5 s, four at a time).
    latency(1500)
    seq = last_seq(stack)
    run_id = confirm(frame)
    frame.locator("#progress").evaluate(WATCH_PROGRESS)
    expect(frame.locator("#p-state")).not_to_have_text(re.compile("queued|expanding"),
                                                       timeout=15000)
    page.shot("progress")
    expect(frame.locator("#p-state")).to_have_text("done", timeout=30000)
    seen = frame.locator("#progress").evaluate("() => window.__progress")
    assert seen, "the page was reloaded, or the bar never moved"
    percents = [p for p, _ in seen]
    assert percents == sorted(percents) and percents[-1] == 100, seen
    assert seen[-1][1] == "done" and len({tuple(s) for s in seen}) > 1, seen
    expect(frame.locator("#bar")).to_have_attribute("style", re.compile(r"width: ?100%"))
    shown = counts_on_page(frame)
    assert shown == {"state": "done", "charged": str(period["charged"]),
                     "declined": str(period["declined"]), "errors": "0", "skipped": "1",
                     "remaining": "0"}
    # The item list and the rerun button come with the final state, still without a reload.
    expect(frame.locator("#items tbody tr")).to_have_count(period["invoices"])
    expect(frame.get_by_role("button", name="Charge the declined and failed again")).to_be_visible()
    assert frame.locator("#progress").evaluate("() => Array.isArray(window.__progress)")
    assert_labelled(frame)
    # At any width the page fits its frame: wide tables scroll inside themselves.
    assert frame.locator("body").evaluate(FITS), "the run page scrolls sideways"
    expect(frame.locator("#p-amount")).to_have_text(re.compile(r"^\d[\d,]*\.\d\d$"))
    page.shot("done")

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
    # Masked card only: never more than the last four digits.
    assert all(len(re.sub(r"\D", "", r["card"])) <= 4 for r in rows), rows
    approved = check_ledgers(stack, rows, seq)
    assert len(approved) == period["charged"]
    # The run is listed in the history with the same counts.
    frame.get_by_role("link", name="Charge runs").click()
    history = frame.locator("#runs tbody tr").filter(
        has=frame.get_by_role("link", name=f"#{run_id}", exact=True))
    expect(history).to_contain_text("done")
    expect(history).to_contain_text("admin 1")


# --- 2. the worker killed mid-run, then restarted ----------------------------------------

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
    page.shot("killed")

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
    page.shot("resumed")
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

    # Charge the declined and failed again: every invoice that can be paid ends paid once.
    latency(0)
    seq = last_seq(stack)
    frame.get_by_role("button", name="Charge the declined and failed again").click()
    expect(frame.locator("h1")).not_to_have_text(f"Charge run #{run_id}")
    expect(frame.locator("#p-state")).to_have_text("done", timeout=30000)
    expect(frame.locator("#p-charged")).to_have_text(str(28 - final["charged"]))
    expect(frame.locator("#p-declined")).to_have_text("2")
    expect(frame.locator("#p-errors")).to_have_text("0")
    page.shot("rerun")
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


# --- 3. Modules list → Edit: the settings page -------------------------------------------

@pytest.mark.parametrize("viewport", ["desktop"])
def test_settings_page_from_modules_list(page, staff_data, viewport):
    stack = staff_data
    admin_login(page, stack)
    page.locator(".navbar").get_by_role("link", name="Modules list").click()
    row = page.locator("#modules tbody tr", has_text="splynx_ippay_addon")
    row.get_by_role("link", name="Edit").click()
    frame = page.frame_locator("#addon-settings")
    expect(frame.locator("h1")).to_have_text("IPpay add-on settings")
    expect(frame.locator("#splynx-status")).to_have_class("ok")
    expect(frame.locator("#gateway-status")).to_contain_text("answers PING")
    assert_labelled(frame)
    page.shot("settings")

    stored = emulator_state(stack)["config"]["add-on/splynx_ippay_addon"]
    for field, bad, words in (("charge_concurrency", "0", "from 1 to 64"),
                              ("terminal_id", "TEST TERMINAL", "letters, digits")):
        good = frame.locator(f"#{field}").input_value()
        frame.locator(f"#{field}").fill(bad)
        frame.get_by_role("button", name="Save").click()
        expect(frame.locator(f"#{field}-error")).to_contain_text(words)
        expect(frame.locator(".alert-danger")).to_contain_text("Nothing was saved")
        expect(frame.locator(f"#{field}")).to_have_value(bad)
        assert emulator_state(stack)["config"]["add-on/splynx_ippay_addon"] == stored
        page.shot(f"error-{field}")
        frame.locator(f"#{field}").fill(good)

    frame.get_by_role("button", name="Test gateway").click()
    expect(frame.locator("#test-result")).to_contain_text(
        "The gateway answers PING for terminal TESTTERMINAL")
    expect(frame.locator("#test-result")).to_have_class("ok")
    # A wrong terminal is reported as the gateway's refusal, still before saving.
    frame.get_by_label("Terminal ID").fill("NOSUCHTERMINAL")
    frame.get_by_role("button", name="Test gateway").click()
    expect(frame.locator("#test-result")).to_have_class("bad")
    page.shot("test-gateway")


# --- 4. the transaction log: a partial refund ------------------------------------------

@pytest.mark.parametrize("viewport", ["desktop"])
def test_partial_refund_from_transactions(page, staff_data, viewport):
    stack = staff_data
    admin_login(page, stack)
    frame = open_charge_page(page)
    preview(frame, "2024-10-01", "2024-10-31")
    confirm(frame)
    expect(frame.locator("#p-state")).to_have_text("done", timeout=20000)
    expect(frame.locator("#p-charged")).to_have_text("1")

    # Add-ons ▾ → IPpay transactions (focus opens the menu: works on a phone too).
    page.locator(".navbar .dropdown", has_text="Add-ons").focus()
    page.locator(".dropdown-menu a", has_text="IPpay transactions").click()
    page.wait_for_url("**/admin/add-on?*")
    log = page.frame_locator("#addon-frame")
    expect(log.locator("h1")).to_have_text("Card transactions")
    assert_labelled(log)
    log.get_by_label("Customer ID").fill("1")
    log.get_by_label("Outcome").select_option("posted")
    log.get_by_label("Channel").fill("charge_run")
    log.get_by_role("button", name="Filter").click()
    row = log.locator("#attempts tbody tr", has_text="75.00").first
    expect(row).to_contain_text("charge_run")
    expect(row).to_contain_text("RECURRING")
    tid = row.locator("a").inner_text()
    page.shot("transactions")
    row.get_by_role("link", name=tid).click()
    expect(log.locator("h1")).to_have_text(f"Transaction {tid}")
    expect(log.locator("#outcome")).to_have_text("posted")
    assert_labelled(log)
    log.get_by_label(re.compile("Refund amount")).fill("10.00")
    log.locator("#refund-form").get_by_label("Reason").fill("Service outage credit")
    log.get_by_role("button", name="Refund", exact=True).click()
    expect(log.locator(".alert-success")).to_contain_text(
        "Refund of 10.00 done and recorded in Splynx")
    refund = log.locator("#refunds tbody tr").first
    for text in ("refund", "10.00", "posted", "Service outage credit"):
        expect(refund).to_contain_text(text)
    expect(log.get_by_label(re.compile("Refund amount"))).to_have_value("65.00")
    page.shot("refunded")
    # The list shows the refunded amount; the gateway and Splynx have it once each.
    log.get_by_role("link", name="Transactions", exact=True).click()
    log.get_by_label("Customer ID").fill("1")
    log.get_by_role("button", name="Filter").click()
    listed = log.locator("#attempts tbody tr").filter(has=log.get_by_role("link", name=tid))
    expect(listed.locator("td").nth(11)).to_have_text("10.00")
    credits = [t for t in sim(stack, "ledger")["transactions"]
               if t["type"] == "CREDIT" and t["transaction_id"] == tid]
    assert [t["amount"] for t in credits] == [1000], credits
    state = emulator_state(stack)
    booked = [t for t in state["transactions"]
              if f"IPPAY-REFUND-{tid}" in str(t.get("comment", ""))]
    assert len(booked) == 1 and float(booked[0]["total"]) == 10.0, booked
    assert len([p for p in state["payments"] if p.get("field_1") == tid]) == 1


# --- 5. identity, labels, keyboard -------------------------------------------------------

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
    then one with no invoices), the settings form's Test gateway, the transaction filter."""
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
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Preview"
    page.keyboard.press("Enter")
    expect(page.locator("#charge-error")).to_contain_text("no run was started")
    expect(page.locator("#confirm")).to_have_count(0)

    page.goto(f"{stack.front}/ippay/admin/settings")
    page.get_by_label(re.compile("Charge concurrency")).focus()
    tab_to(page, "test-gateway")  # language, Save, Test gateway
    page.keyboard.press("Enter")
    expect(page.locator("#test-result")).to_contain_text("answers PING")

    page.goto(f"{stack.front}/ippay/admin/transactions")
    page.get_by_label("Customer ID").focus()
    page.keyboard.type("2")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"customer_id=2"))
    expect(page.locator("#attempts tbody tr").first).to_be_visible()
