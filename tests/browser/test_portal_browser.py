"""Every customer flow in a real Chromium, as a new user would go through it, at desktop and
phone width: save a card, pay an invoice from Finance → Invoices, pay a proforma, pay from
the dashboard widget, add money, pay by a direct link; labels and keyboard use."""

import re
from types import SimpleNamespace

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.helpers import assert_labelled, fill_card, login, open_finance_entry

pytestmark = pytest.mark.browser

#: Each viewport plays a different customer so that both runs find unpaid documents.
PEOPLE = {
    "desktop": {"login": "alice", "invoice": "202403000005", "proforma": "2024050001",
                "widget": "202404000008", "direct_id": 3, "direct_number": "202402000003"},
    "phone": {"login": "bob", "invoice": "202403000006", "proforma": "2024050002",
              "widget": "202404000009", "direct_id": 7, "direct_number": "202403000007"},
}


def ensure_card(page, stack, viewport):
    """The customer has a saved card (added through the page if not)."""
    frame = open_finance_entry(page, "Credit card")
    if frame.locator(".saved-card").count() == 0:
        fill_card(frame)
        frame.get_by_role("button", name="Add card").click()
        expect(frame.locator(".alert-success")).to_contain_text("Your card was saved.")


def test_save_card_from_finance_credit_card(page, stack, viewport):
    person = PEOPLE[viewport]
    login(page, stack, person["login"])
    frame = open_finance_entry(page, "Credit card")
    expect(frame.locator("h1")).to_have_text("Credit card")
    expect(frame.locator(".saved-cards")).to_have_count(0)
    assert_labelled(frame)
    # A mistake first: the field says what is wrong, and the number is not kept.
    fill_card(frame, number="4111111111111112")
    frame.get_by_role("button", name="Add card").click()
    expect(frame.locator("#number-error")).to_contain_text("not valid")
    expect(frame.get_by_label("Card number")).to_have_value("")
    page.shot("error")
    fill_card(frame, holder="Pat <script>x</script>")
    frame.get_by_label("Billing ZIP code (optional)").fill("30301")
    frame.get_by_role("button", name="Add card").click()
    expect(frame.locator(".alert-success")).to_contain_text("Your card was saved.")
    expect(frame.locator(".saved-card")).to_contain_text("Visa •••• 1111")
    expect(frame.locator(".card-meta")).to_contain_text("Pat <script>x</script>")
    # A second card, made default, then removed after confirming.
    fill_card(frame, number="5111111111111118")
    frame.get_by_label("Use as my default card").check()
    frame.get_by_role("button", name="Add card").click()
    expect(frame.locator(".saved-card").first).to_contain_text("Mastercard •••• 1118")
    expect(frame.locator(".saved-card").first).to_contain_text("Default")
    page.shot("two-cards")
    frame.locator(".saved-card").nth(1).get_by_text("Make default").click()
    expect(frame.locator(".alert-success")).to_contain_text("is now your default card")
    mastercard = frame.locator(".saved-card", has_text="Mastercard")
    mastercard.locator("summary", has_text="Remove").click()
    expect(mastercard.locator(".confirm-box")).to_contain_text("Remove Mastercard •••• 1118?")
    page.shot("confirm-remove")
    mastercard.get_by_role("button", name="Yes, remove").click()
    expect(frame.locator(".alert-success")).to_contain_text("was removed")
    expect(frame.locator(".saved-card")).to_have_count(1)


def test_pay_invoice_from_finance_invoices_modal(page, stack, viewport):
    person = PEOPLE[viewport]
    login(page, stack, person["login"])
    ensure_card(page, stack, viewport)
    requests.post(f"{stack.ippay_url}/_sim/config", json={"latency_ms": 1200}, timeout=5)
    try:
        page.goto(f"{stack.front}/portal/finance/invoices")
        row = page.locator(f'tr[data-number="{person["invoice"]}"]')
        row.get_by_title("Pay by IPpay").click()
        modal = page.frame_locator("#addon-modal iframe")
        expect(modal.locator("h1")).to_have_text(f"Invoice #{person['invoice']}")
        expect(modal.locator(".summary")).to_contain_text("Amount due")
        assert_labelled(modal)
        page.shot("modal")
        pay = modal.locator("button.btn-pay")
        pay.click()
        # While the gateway thinks, the button cannot be pressed again.
        expect(pay).to_be_disabled()
        expect(pay).to_contain_text("Paying…")
        expect(modal.locator(".spinner")).to_be_visible()
        page.shot("busy")
        expect(modal.locator(".result")).to_contain_text("Success!", timeout=20000)
    finally:
        requests.post(f"{stack.ippay_url}/_sim/config", json={"latency_ms": 0}, timeout=5)
    page.shot("success")
    modal.get_by_role("link", name="Done").click()
    expect(page.locator(f'tr[data-number="{person["invoice"]}"]')).to_contain_text("Paid")
    sales = [t for t in requests.get(f"{stack.ippay_url}/_sim/ledger", timeout=5).json()
             ["transactions"] if t["type"] == "SALE" and t.get("order_number") in (None, person["invoice"])]
    assert sales


def test_pay_proforma_with_a_new_card(page, stack, viewport):
    person = PEOPLE[viewport]
    login(page, stack, person["login"])
    page.goto(f"{stack.front}/portal/finance/requests")
    page.locator(f'tr[data-number="{person["proforma"]}"]').get_by_title("Pay by IPpay").click()
    modal = page.frame_locator("#addon-modal iframe")
    expect(modal.locator("h1")).to_have_text(f"Proforma invoice #{person['proforma']}")
    new_card = modal.locator("#new-card")
    if modal.locator("#card-new").count():
        expect(new_card).to_be_hidden()
        modal.get_by_label("A new card").check()
    expect(new_card).to_be_visible()
    assert_labelled(modal)
    fill_card(modal, number="378282246310005", cvv="1234")
    page.shot("new-card")
    modal.locator("button.btn-pay").click()
    expect(modal.locator(".result")).to_contain_text("Success!")
    modal.get_by_role("link", name="Done").click()
    expect(page.locator(f'tr[data-number="{person["proforma"]}"]')).to_contain_text("Paid")


def test_pay_from_the_dashboard_widget(page, stack, viewport):
    person = PEOPLE[viewport]
    login(page, stack, person["login"])
    ensure_card(page, stack, viewport)
    page.goto(f"{stack.front}/portal/")
    widget = page.frame_locator("iframe.ippay-widget")
    row = widget.locator(f'tr[data-number="{person["widget"]}"]')
    expect(row).to_be_visible()
    expect(widget.locator("tfoot")).to_contain_text("Total owed")
    height = page.locator("iframe.ippay-widget").evaluate("f => f.getBoundingClientRect().height")
    assert height > 150, "the frame grew to its content"
    page.shot("widget")
    row.get_by_role("link", name=re.compile("Pay invoice")).click()
    modal = page.frame_locator("#addon-modal iframe")
    expect(modal.locator("h1")).to_have_text(f"Invoice #{person['widget']}")
    modal.locator("button.btn-pay").click()
    expect(modal.locator(".result")).to_contain_text("Success!")
    modal.get_by_role("link", name="Done").click()
    widget = page.frame_locator("iframe.ippay-widget")
    expect(widget.locator("table, .all-paid").first).to_be_visible()
    expect(widget.locator(f'tr[data-number="{person["widget"]}"]')).to_have_count(0)


def test_refill_from_add_money(page, stack, viewport):
    person = PEOPLE[viewport]
    login(page, stack, person["login"])
    ensure_card(page, stack, viewport)
    frame = open_finance_entry(page, "Add money")
    expect(frame.locator("h1")).to_have_text("Add money to your balance")
    expect(frame.get_by_label("Amount (USD)")).to_be_visible()
    assert_labelled(frame)
    for bad, words in (("12,50", "Use a point"), ("2", "smallest amount"), ("abc", "as a number")):
        frame.get_by_label("Amount (USD)").fill(bad)
        frame.get_by_role("button", name="Add").click()
        expect(frame.locator("#amount-error")).to_contain_text(words)
    page.shot("error")
    frame.get_by_label("Amount (USD)").fill("20.00")
    frame.get_by_role("button", name="Add").click()
    expect(frame.locator(".result")).to_contain_text("$20.00 was added to your balance")
    expect(frame.locator(".balance")).to_contain_text("Your balance is now")
    page.shot("success")
    frame.get_by_role("link", name="Back to portal").click()
    expect(page.locator("#account-balance")).to_be_visible()


def test_direct_pay_link_without_login(page, stack, viewport):
    from splynx_ippay.services.payments import link_signature

    person = PEOPLE[viewport]
    addon = SimpleNamespace(secret=stack.addon_env()["SPLYNX_IPPAY_WEB_SECRET_KEY"].encode())
    sig = link_signature(addon, "invoice", person["direct_id"])
    page.goto(f"{stack.front}/ippay/direct-pay-invoice-by-id?item_id={person['direct_id']}&sig={sig}")
    expect(page.locator("h1")).to_have_text(f"Invoice #{person['direct_number']}")
    expect(page.locator(".summary")).to_contain_text("Amount due")
    expect(page.locator(".summary")).not_to_contain_text("Total")
    assert_labelled(page)
    page.shot("form")
    fill_card(page)
    page.locator("button.btn-pay").click()
    expect(page.locator(".result")).to_contain_text("Success!")
    page.shot("success")
    # The same link, once paid, and a link without its key, read the same.
    page.goto(f"{stack.front}/ippay/direct-pay-invoice-by-id?item_id={person['direct_id']}&sig={sig}")
    expect(page.locator("h1")).to_have_text("This payment link cannot be used")
    page.goto(f"{stack.front}/ippay/direct-pay-invoice-by-id?item_id=9")
    expect(page.locator("h1")).to_have_text("This payment link cannot be used")


def test_forms_work_by_keyboard(page, stack, viewport):
    """Tab from field to field and Enter to send: the card form and the refill form."""
    login(page, stack, "carol")
    page.goto(f"{stack.front}/ippay/cards")
    page.get_by_label("Name on card").focus()
    page.keyboard.type("Carol Clark")
    for text in ("4111 1111 1111 1111", "12/30", "123", ""):
        page.keyboard.press("Tab")
        page.keyboard.type(text)
    focused = page.evaluate("document.activeElement.id")
    assert focused == "postal_code"
    page.keyboard.press("Enter")
    expect(page.locator(".alert-success")).to_contain_text("Your card was saved.")
    page.goto(f"{stack.front}/ippay/")
    page.get_by_label("Amount (USD)").focus()
    page.keyboard.type("15")
    page.keyboard.press("Enter")
    expect(page.locator(".result")).to_contain_text("Success!")
    # The saved card's actions are reachable by Tab too.
    page.goto(f"{stack.front}/ippay/cards")
    page.locator("summary", has_text="Remove").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".confirm-box")).to_be_visible()
