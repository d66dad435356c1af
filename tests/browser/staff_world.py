"""What the staff browser suites share: their stack (the demo's, with the run page's worker
warning after a few seconds instead of a minute), the data an ISP has when staff sit down
(saved cards, invoices for each run), and the steps staff take through Splynx's admin pages.

Imported by ``test_staff_*browser.py``; each module gets its own stack (module scope)."""

import csv
import re
import shutil

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.helpers import fill_card, login

#: The run page warns when no worker has worked on a run for this long (config.ini
#: ``[worker] alarm_after``, 60 s by default): short, so that a test can wait past it.
ALARM_AFTER = 6

CSV_HEADER = ["invoice_id", "invoice_number", "customer_id", "amount", "outcome", "gateway_code",
              "gateway_text", "message", "card", "transaction_id"]
#: Added at the end of the CSV (the columns before keep their order).
CSV_ADDED = ["customer_name", "charge_started_utc", "outcome_at_utc"]

#: The frame's page is no wider than the frame (nothing to scroll sideways).
FITS = "b => (e => e.scrollWidth <= e.clientWidth)(b.ownerDocument.documentElement)"
#: How wide the staff page's content is (it must use the frame's whole width).
MAIN_WIDTH = "b => b.ownerDocument.querySelector('main').getBoundingClientRect().width"
FRAME_WIDTH = "b => b.ownerDocument.documentElement.clientWidth"


@pytest.fixture(scope="module", name="stack")
def staff_stack(tmp_path_factory):
    """The stack of a staff browser module (imported by it as ``staff_stack``; tests ask
    for ``stack``)."""
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed")
    from sandbox.stack import Stack

    env = {"SPLYNX_IPPAY_WORKER_ALARM_AFTER": str(ALARM_AFTER)}
    with Stack(tmp_path_factory.mktemp("staff-stack"), extra_env=env) as stack:
        yield stack


def api_client(stack):
    from splynx_ippay.splynx import SplynxClient

    env = stack.addon_env()
    return SplynxClient(stack.splynx_url, env["SPLYNX_IPPAY_SPLYNX_API_KEY"],
                        env["SPLYNX_IPPAY_SPLYNX_API_SECRET"])


def issue_invoices(stack, invoices):
    """Issue ``(customer, price, day)`` invoices through Splynx's API, as its billing does."""
    client = api_client(stack)
    for n, (customer, price, day) in enumerate(invoices):
        client.request("POST", "admin/finance/invoices", json={
            "customer_id": customer, "date_created": day, "status": "not_paid",
            "number": f"T{day}{n}", "items": [{"description": "Internet service", "quantity": 1,
                                               "unit": 1, "price": float(price)}]})


def save_cards_in_portal(stack, browser, who=("alice", "bob")):
    """Customers save a card through the portal, as they do (Carol has none)."""
    for name in who:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
        context.set_default_timeout(15000)
        page = context.new_page()
        try:
            login(page, stack, name)
            page.goto(f"{stack.front}/ippay/cards")
            if page.locator(".saved-card").count() == 0:
                fill_card(page, holder=f"{name.title()} Card")
                page.get_by_role("button", name="Add card").click()
                expect(page.locator(".alert-success")).to_contain_text("Your card was saved.")
        finally:
            context.close()


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


def invoice_of(stack, customer_id, total):
    """The unpaid invoice of ``customer_id`` for ``total`` (a string such as "33.00")."""
    return next(i for i in emulator_state(stack)["invoices"]
                if int(i["customer_id"]) == customer_id and i["status"] == "not_paid"
                and abs(float(i["total"]) - float(total)) < 0.001)


# --- the staff's steps ---------------------------------------------------------------------

def open_charge_page(page):
    """Finance → Invoices → the add-on's Charge button, framed by the emulator."""
    page.locator(".navbar").get_by_role("link", name="Invoices", exact=True).click()
    page.wait_for_url("**/admin/finance/invoices")
    page.locator(".card-header").get_by_role("link", name="Charge", exact=True).click()
    page.wait_for_url("**/admin/add-on?*")
    frame = page.frame_locator("#addon-frame")
    expect(frame.locator("h1")).to_have_text("Charge invoices to saved cards")
    return frame


def open_addons_menu(page, title):
    """Add-ons ▾ → one of the add-on's admin pages (focus opens the menu: a phone has no
    hover)."""
    page.locator(".navbar .dropdown", has_text="Add-ons").focus()
    page.locator(".dropdown-menu a", has_text=title).click()
    page.wait_for_url("**/admin/add-on?*")
    return page.frame_locator("#addon-frame")


def preview(frame, date_from, date_to, **filters):
    frame.get_by_label("Invoice date from").fill(date_from)
    frame.get_by_label("Invoice date to").fill(date_to)
    if "customers" in filters:
        frame.get_by_label("Customer IDs (optional)").fill(filters["customers"])
    frame.get_by_role("button", name="Preview").click()
    expect(frame.locator("#preview")).to_be_visible()


def confirm(frame):
    """Confirm the previewed run (the preview is the confirmation step); returns the run's
    id (its page is shown)."""
    frame.locator("#confirm").click()
    expect(frame.locator("h1")).to_have_text(re.compile(r"Charge run #\d+"))
    return int(re.search(r"\d+", frame.locator("h1").inner_text()).group())


def confirm_step(frame, yes, by_keyboard=False):
    """The confirmation page of a money action: what it says, then its "Yes" button (by
    Tab and Enter when ``by_keyboard``)."""
    step = frame.locator("#confirm-step")
    expect(step).to_be_visible()
    button = frame.locator("#confirm-yes")
    expect(button).to_have_text(yes)
    expect(frame.locator("#confirm-cancel")).to_be_visible()
    if by_keyboard:
        frame.locator("#confirm-question").click()  # the focus starts in the question
        for _ in range(8):
            frame.locator("body").press("Tab")
            if button.evaluate("b => b === document.activeElement"):
                break
        else:
            raise AssertionError("the Yes button is not reached by Tab")
        button.press("Enter")
    else:
        button.click()


def fits_and_is_wide(frame, viewport, what):
    """The staff page fits its frame (wide tables scroll inside their own box) and, on a
    desktop, uses the frame's whole width (not the portal's 720 px column)."""
    body = frame.locator("body")
    assert body.evaluate(FITS), f"the {what} page scrolls sideways"
    if viewport == "desktop":
        width, frame_width = body.evaluate(MAIN_WIDTH), body.evaluate(FRAME_WIDTH)
        assert width >= frame_width - 2 and frame_width > 1000, (what, width, frame_width)


def counts_on_page(frame):
    return {name: frame.locator(f"#p-{name}").inner_text()
            for name in ("state", "charged", "declined", "errors", "skipped", "remaining")}


def download_csv(page, frame, name):
    """Download CSV; checks the byte-order mark and the columns; the rows as dicts."""
    with page.expect_download() as info:
        frame.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert re.fullmatch(r"ippay-charge-run-\d+\.csv", download.suggested_filename)
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / name
    download.save_as(str(target))
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "a UTF-8 byte-order mark, for spreadsheets"
    with open(target, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == CSV_HEADER + CSV_ADDED
    return [dict(zip(rows[0], row)) for row in rows[1:]]


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


GROW = """(f, grow) => {
  const modal = f.closest('.modal-backdrop');
  if (grow) {
    f.dataset.oldHeight = f.style.height;
    f.style.height = (f.contentDocument.documentElement.scrollHeight + 4) + 'px';
    if (modal) { modal.style.position = 'absolute'; modal.style.minHeight = '100%'; }
  } else {
    f.style.height = f.dataset.oldHeight || '';
    if (modal) { modal.style.position = ''; modal.style.minHeight = ''; }
  }
}"""


def shot(page, step, frame="#addon-frame"):
    """The screenshot of a step with the whole framed add-on page in it: Splynx's frame is
    grown to the page's height for the picture, then set back."""
    element = page.locator(frame)
    element.evaluate(GROW, True)
    try:
        page.shot(step)
    finally:
        element.evaluate(GROW, False)
