"""The staff pages besides charge runs, in a real Chromium at desktop and phone width, as an
ISP admin walks them in Splynx: Modules list → Edit (the settings, field errors, Test
gateway, the "Partner: Default ▾" selector and a partner's own terminal); Add-ons ▾ → IPpay
transactions (filters in staff words, a transaction, a partial refund confirmed by keyboard
on the phone); an invoice's IPpay action in Finance → Invoices (the modal: which pay link to
send and its Copy button, paying with the customer's saved card once confirmed), then that
payment voided after a confirmation; the card tries the card-testing limits refused."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import admin_login, assert_labelled, login
from tests.browser.staff_world import (  # noqa: F401  (staff_stack: the stack fixture)
    api_client, confirm, confirm_step, emulator_state, fits_and_is_wide, invoice_of,
    issue_invoices, open_addons_menu, open_charge_page, preview, save_cards_in_portal, shot,
    sim, staff_stack)

pytestmark = pytest.mark.browser

#: Per viewport: the period of Alice's invoice the refund test charges, its amount, and
#: what is left to refund after 10.00.
REFUNDS = {"desktop": ("2024-10-01", "2024-10-31", "75.00", "65.00"),
           "phone": ("2024-11-01", "2024-11-30", "76.00", "66.00")}
#: Per viewport: Alice's invoice staff pay from the invoice modal, then void.
MODAL = {"desktop": "33.00", "phone": "34.00"}
INVOICES = [(1, "75.00", "2024-10-05"), (1, "76.00", "2024-11-05"),
            (1, "33.00", "2025-01-05"), (1, "34.00", "2025-01-06")]
MODULE = "add-on/splynx_ippay_addon"


@pytest.fixture(scope="module")
def staff_data(stack, browser):
    save_cards_in_portal(stack, browser)
    issue_invoices(stack, INVOICES)
    return stack


@pytest.fixture(scope="module")
def blocked_tries(staff_data, browser):
    """Carol types one card after another with a security code her bank refuses, until
    the card-testing limits stop her (as a card tester would)."""
    stack = staff_data
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        page = context.new_page()
        login(page, stack, "carol")
        answers = []
        for n in range(8):
            form = context.request.get(f"{stack.front}/ippay/cards").text()
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
            answer = context.request.post(f"{stack.front}/ippay/cards", form={
                "csrf_token": token, "holder_name": "Carol Clark",
                "number": "4111111111111111", "expiry": f"{1 + n % 12:02d}/31", "cvv": "000"})
            answers.append(answer.status)
        assert 429 in answers or any(s >= 400 for s in answers), answers
    finally:
        context.close()
    return stack


def open_settings(page):
    page.locator(".navbar").get_by_role("link", name="Modules list").click()
    row = page.locator("#modules tbody tr", has_text="splynx_ippay_addon")
    row.get_by_role("link", name="Edit").click()
    frame = page.frame_locator("#addon-settings")
    expect(frame.locator("h1")).to_have_text("IPpay add-on settings")
    return frame


# --- Modules list → Edit: the settings page -------------------------------------------------

def test_settings_page_from_modules_list(page, staff_data, viewport):
    stack = staff_data
    admin_login(page, stack)
    frame = open_settings(page)
    expect(frame.locator("#splynx-status")).to_have_class("ok")
    expect(frame.locator("#gateway-status")).to_contain_text("answers PING")
    expect(frame.get_by_label("Partner", exact=True)).to_have_value("")
    assert_labelled(frame)
    fits_and_is_wide(frame, viewport, "settings")
    shot(page, "settings", frame="#addon-settings")

    stored = emulator_state(stack)["config"][MODULE]
    for field, bad, words in (("charge_concurrency", "0", "from 1 to 64"),
                              ("terminal_id", "TEST TERMINAL", "letters or digits")):
        good = frame.locator(f"#{field}").input_value()
        frame.locator(f"#{field}").fill(bad)
        frame.get_by_role("button", name="Save").click()
        expect(frame.locator(f"#{field}-error")).to_contain_text(words)
        expect(frame.locator(".alert-danger")).to_contain_text("Nothing was saved")
        expect(frame.locator(f"#{field}")).to_have_value(bad)
        expect(frame.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
        assert emulator_state(stack)["config"][MODULE] == stored
        shot(page, f"error-{field}", frame="#addon-settings")
        frame.locator(f"#{field}").fill(good)

    frame.get_by_role("button", name="Test gateway").click()
    expect(frame.locator("#test-result")).to_contain_text(
        "The gateway answers PING for terminal TESTTERMINAL")
    expect(frame.locator("#test-result")).to_have_class("ok")
    shot(page, "test-gateway", frame="#addon-settings")


def test_settings_of_a_partner(page, staff_data, viewport):
    """Partner: Default ▾ → Second Partner: its own terminal (which the gateway knows),
    marked as differing from the Default, saved for that partner only."""
    stack = staff_data
    sim(stack, "config", {"terminals": ["TESTTERMINAL", "PARTNER2TERM"]})
    admin_login(page, stack)
    frame = open_settings(page)
    default_before = emulator_state(stack)["config"][MODULE]
    # (the phone's turn finds the values the desktop's saved: "Second Partner (#2) *")
    frame.get_by_label("Partner", exact=True).select_option("2")
    expect(frame.locator("h2").first).to_have_text("Partner Second Partner")
    expect(frame.get_by_label("Partner", exact=True)).to_have_value("2")
    # Only what a partner may set apart from the Default.
    for field in ("Terminal ID", "Gateway", "Payment method for card payments"):
        expect(frame.get_by_label(re.compile(rf"^{field}( \*)?$"))).to_be_visible()
    expect(frame.locator("#charge_concurrency")).to_have_count(0)
    assert_labelled(frame)
    fits_and_is_wide(frame, viewport, "partner settings")
    shot(page, "partner", frame="#addon-settings")

    frame.get_by_label(re.compile(r"^Terminal ID")).fill("PARTNER2TERM")
    frame.get_by_role("button", name="Save").click()
    expect(frame.locator(".alert-success")).to_contain_text(
        "Settings saved for Second Partner")
    expect(frame.locator("label[for=terminal_id] .mark")).to_have_text("*")
    expect(frame.locator("#terminal_id-hint")).to_contain_text("Differs from the Default")
    expect(frame.locator("label[for=gateway_mode] .mark")).to_have_count(0)
    expect(frame.locator("#gateway-status")).to_contain_text(
        "answers PING for terminal PARTNER2TERM")
    expect(frame.get_by_label("Partner", exact=True).locator("option:checked")).to_have_text(
        "Second Partner (#2) *")
    frame.get_by_role("button", name="Test gateway").click()
    expect(frame.locator("#test-result")).to_contain_text("terminal PARTNER2TERM")
    shot(page, "partner-saved", frame="#addon-settings")
    state = emulator_state(stack)["config"]
    assert state[f"{MODULE}/2"]["terminal_id"] == "PARTNER2TERM"
    assert state[MODULE] == default_before, "the Default is untouched"
    assert api_client(stack).get_module_config("splynx_ippay_addon", partner_id=1)[
        "terminal_id"] != "PARTNER2TERM"

    frame.get_by_label("Partner", exact=True).select_option(label="Default")
    expect(frame.locator("h2").first).to_have_text("Card-testing limits")
    expect(frame.locator("#gateway-status")).to_contain_text("terminal TESTTERMINAL")


# --- Add-ons ▾ → IPpay transactions: a partial refund, confirmed ----------------------------

def test_transactions_filters_and_partial_refund(page, staff_data, viewport):
    stack = staff_data
    date_from, date_to, amount, left = REFUNDS[viewport]
    admin_login(page, stack)
    frame = open_charge_page(page)
    preview(frame, date_from, date_to)
    confirm(frame)
    expect(frame.locator("#p-state")).to_have_text("done", timeout=20000)
    expect(frame.locator("#p-charged")).to_have_text("1")

    log = open_addons_menu(page, "IPpay transactions")
    expect(log.locator("h1")).to_have_text("Card transactions")
    assert_labelled(log)
    # The filters are in staff words; the journal's states are not offered.
    outcomes = log.get_by_label("Outcome").locator("option").all_inner_texts()
    assert not [o for o in outcomes if re.search(r"posted|pending|queued|claimed|unknown", o)]
    log.get_by_label("Customer ID").fill("1")
    log.get_by_label("Outcome").select_option(label="paid")
    log.get_by_label("Channel").select_option(label="charge run")
    log.get_by_role("button", name="Filter").click()
    row = log.locator("#attempts tbody tr", has_text=amount).first
    expect(row).to_contain_text("charge run")
    expect(row).to_contain_text("RECURRING")
    expect(row).to_contain_text("Alice Anderson")
    expect(row).to_have_attribute("data-channel", "charge_run")
    tid = row.locator("a.tid").inner_text()
    # The TransactionID (the way into void and refund) is reachable at any width: the
    # table scrolls inside its own box, the page does not.
    fits_and_is_wide(log, viewport, "transactions")
    if viewport == "phone":
        box = log.locator(".table-wrap").first
        assert box.evaluate("b => b.scrollWidth > b.clientWidth"), "the table box scrolls"
    shot(page, "transactions")
    row.get_by_role("link", name=tid).click()
    expect(log.locator("h1")).to_have_text(f"Transaction {tid}")
    expect(log.locator("#outcome")).to_have_text("paid")
    expect(log.locator("#outcome")).to_have_attribute("data-status", "posted")
    expect(log.locator("#money-state")).to_contain_text(f"{amount} was taken; nothing refunded.")
    expect(log.locator("#facts").get_by_role("link", name="Alice Anderson")).to_have_attribute(
        "href", "/admin/customers/view?id=1")
    expect(log.locator("#history")).to_contain_text("Sent to the gateway")
    expect(log.locator("#history")).to_contain_text("Recorded in Splynx as a payment")
    assert_labelled(log)
    fits_and_is_wide(log, viewport, "transaction")
    shot(page, "transaction")

    log.get_by_label(re.compile("Refund amount")).fill("10.00")
    log.locator("#refund-form").get_by_label("Reason").fill("Service outage credit")
    log.get_by_role("button", name="Refund…").click()
    expect(log.locator("h1")).to_have_text(f"Refund transaction {tid}")
    for text in ("Alice Anderson", "10.00", "Service outage credit", "Visa •••• 1111"):
        expect(log.locator("#confirm-step")).to_contain_text(text)
    assert [t for t in sim(stack, "ledger")["transactions"]
            if t["type"] == "CREDIT" and t["transaction_id"] == tid] == [], "asked, not sent"
    assert_labelled(log)
    fits_and_is_wide(log, viewport, "refund confirmation")
    shot(page, "refund-confirm")
    confirm_step(log, "Yes, refund 10.00", by_keyboard=viewport == "phone")
    expect(log.locator(".alert-success")).to_contain_text(
        "Refund of 10.00 done and recorded in Splynx")
    refund = log.locator("#refunds tbody tr").first
    for text in ("Refund", "10.00", "done", "Service outage credit", "Sandbox Administrator"):
        expect(refund).to_contain_text(text)
    expect(refund).to_have_attribute("data-status", "posted")
    expect(log.get_by_label(re.compile("Refund amount"))).to_have_value(left)
    expect(log.locator("#money-state")).to_contain_text(f"Refunded 10.00 of {amount}.")
    expect(log.locator("#history")).to_contain_text("Refund of 10.00: recorded in Splynx")
    shot(page, "refunded")
    # The list shows the refunded amount; the gateway and Splynx have it once each.
    log.get_by_role("link", name="Transactions", exact=True).click()
    log.get_by_label("Customer ID").fill("1")
    log.get_by_label("Outcome").select_option(label="refunded, all or part")
    log.get_by_role("button", name="Filter").click()
    listed = log.locator("#attempts tbody tr").filter(has=log.get_by_role("link", name=tid))
    expect(listed.locator("td.refunded")).to_have_text("10.00")
    credits = [t for t in sim(stack, "ledger")["transactions"]
               if t["type"] == "CREDIT" and t["transaction_id"] == tid]
    assert [t["amount"] for t in credits] == [1000], credits
    state = emulator_state(stack)
    booked = [t for t in state["transactions"]
              if f"IPPAY-REFUND-{tid}" in str(t.get("comment", ""))]
    assert len(booked) == 1 and float(booked[0]["total"]) == 10.0, booked
    assert len([p for p in state["payments"] if p.get("field_1") == tid]) == 1


# --- an invoice's IPpay action: the modal, then a void --------------------------------------

def test_invoice_modal_pay_links_pay_then_void(page, staff_data, viewport):
    stack = staff_data
    amount = MODAL[viewport]
    invoice = invoice_of(stack, 1, amount)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.front)
    admin_login(page, stack)
    page.locator(".navbar").get_by_role("link", name="Invoices", exact=True).click()
    row = page.locator(f'#invoices tr[data-invoice-id="{invoice["id"]}"]')
    row.get_by_role("link", name="IPpay").click()
    modal = page.frame_locator("#addon-modal iframe")
    expect(modal.locator("h1")).to_have_text(f"Invoice #{invoice['number']}")
    expect(modal.get_by_role("link", name="Alice Anderson")).to_have_attribute(
        "href", "/admin/customers/view?id=1")
    # Which link to send: by number (the customer knows it), by id (templates); signed.
    by_number = modal.get_by_label("Link by invoice number (send this one)")
    by_id = modal.get_by_label("Link by Splynx invoice ID")
    expect(by_number).to_have_value(re.compile(
        rf"/ippay/direct-pay-invoice\?item_id={invoice['number']}&sig=\w+$"))
    expect(by_id).to_have_value(re.compile(
        rf"/ippay/direct-pay-invoice-by-id\?item_id={invoice['id']}&sig=\w+$"))
    expect(modal.locator("#pay-links")).to_contain_text("Both are signed")
    expect(modal.locator("#link-number-hint")).to_contain_text(f"#{invoice['number']}")
    copy = modal.locator('[data-copy="link-number"]')
    if viewport == "phone":
        copy.focus()
        copy.press("Enter")
    else:
        copy.click()
    expect(modal.locator("#link-number-copied")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == by_number.input_value()
    assert_labelled(modal)
    assert modal.locator("body").evaluate(
        "b => (e => e.scrollWidth <= e.clientWidth)(b.ownerDocument.documentElement)")
    shot(page, "modal", frame="#addon-modal iframe")

    sales_before = len([t for t in sim(stack, "ledger")["transactions"] if t["type"] == "SALE"])
    modal.get_by_role("button", name=f"Pay {amount} by the customer's saved card…").click()
    expect(modal.locator("#confirm-step")).to_contain_text(
        f"Charge {amount} to Alice Anderson's saved card Visa •••• 1111")
    assert len([t for t in sim(stack, "ledger")["transactions"]
                if t["type"] == "SALE"]) == sales_before, "asked, not charged"
    shot(page, "pay-confirm", frame="#addon-modal iframe")
    confirm_step(modal, f"Yes, charge {amount}", by_keyboard=viewport == "phone")
    result = modal.locator(".result")
    expect(result).to_contain_text("Success!")
    expect(modal.get_by_text("This invoice is paid.")).to_be_visible()
    tid = re.search(r"transaction (\w+)", result.inner_text()).group(1)
    shot(page, "paid", frame="#addon-modal iframe")
    page.locator("#addon-modal .modal-close").click()

    # The customer says it was a mistake: void it the same day, after a confirmation.
    log = open_addons_menu(page, "IPpay transactions")
    log.get_by_label("Customer ID").fill("1")
    log.get_by_label("Channel").select_option(label="staff, from the invoice")
    log.get_by_role("button", name="Filter").click()
    log.locator("#attempts").get_by_role("link", name=tid).click()
    expect(log.locator("h1")).to_have_text(f"Transaction {tid}")
    expect(log.locator("#money-state")).to_contain_text("It can still be voided today")
    log.locator("#void-form").get_by_label("Reason").fill("Charged by mistake")
    log.get_by_role("button", name=f"Void {amount}…").click()
    expect(log.locator("h1")).to_have_text(f"Void transaction {tid}")
    expect(log.locator("#confirm-question")).to_contain_text(
        f"Void this payment of {amount}? The void cancels the sale at the gateway")
    assert_labelled(log)
    fits_and_is_wide(log, viewport, "void confirmation")
    shot(page, "void-confirm")
    # Cancel changes nothing; then the void, confirmed.
    log.locator("#confirm-cancel").click()
    expect(log.locator("#outcome")).to_have_text("paid")
    log.locator("#void-form").get_by_label("Reason").fill("Charged by mistake")
    log.get_by_role("button", name=f"Void {amount}…").click()
    confirm_step(log, f"Yes, void {amount}", by_keyboard=viewport == "phone")
    expect(log.locator(".alert-success")).to_contain_text("Void done and recorded in Splynx.")
    expect(log.locator("#outcome")).to_have_text("voided")
    expect(log.locator("#splynx-payment")).to_have_text("none: the void deleted it")
    expect(log.locator("#money-state")).to_contain_text("Voided on")
    expect(log.locator("#history")).to_contain_text("Void: recorded in Splynx")
    expect(log.locator("#history")).to_contain_text(
        "Voided: the sale was cancelled and the Splynx payment deleted")
    expect(log.locator("#void-form")).to_have_count(0)
    expect(log.locator("#refund-form")).to_have_count(0)
    fits_and_is_wide(log, viewport, "voided transaction")
    shot(page, "voided")
    ledger = [t["type"] for t in sim(stack, "ledger")["transactions"] if t["transaction_id"] == tid]
    assert ledger == ["SALE", "VOID"], ledger
    state = emulator_state(stack)
    assert [p for p in state["payments"] if p.get("field_1") == tid] == []
    assert next(i for i in state["invoices"] if i["id"] == invoice["id"])["status"] == "not_paid"


# --- the card tries the limits refused -----------------------------------------------------

def test_blocked_card_tries(page, blocked_tries, viewport):
    stack = blocked_tries
    admin_login(page, stack)
    log = open_addons_menu(page, "IPpay transactions")
    log.get_by_role("link", name="Blocked tries").click()
    expect(log.locator("h1")).to_have_text("Card tries refused by the card-testing limits")
    rows = log.locator("#blocked tbody tr")
    expect(rows.first).to_contain_text("Carol Clark")
    expect(rows.first.get_by_role("link", name="Carol Clark")).to_have_attribute(
        "href", "/admin/customers/view?id=3")
    expect(rows.first).to_contain_text("save a card")
    assert rows.count() >= 1
    fits_and_is_wide(log, viewport, "blocked tries")
    shot(page, "blocked")
