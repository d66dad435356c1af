"""Bank accounts (ACH) in a real Chromium at desktop and phone width, as a customer goes
through them: save a bank account on Finance → Credit card (a mistake first: the message
says what is wrong, what was typed is kept but the account number), then pay an invoice
from Finance → Invoices with it and see it Paid."""

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.helpers import assert_labelled, login, open_finance_entry

pytestmark = pytest.mark.browser

ROUTING, ACCOUNT = "111000025", "000123456789"

#: Each viewport plays a different customer (the stack is shared by the module).
PEOPLE = {"desktop": {"login": "alice", "first": "Alice", "invoice": "202403000005"},
          "phone": {"login": "bob", "first": "Bob", "invoice": "202403000006"}}


def fill_bank(frame, person, routing=ROUTING, account=ACCOUNT):
    frame.get_by_label("Account holder's first name").fill(person["first"])
    frame.get_by_label("Account holder's last name").fill("Example")
    frame.get_by_label("Routing number (9 digits)").fill(routing)
    frame.get_by_label("Account number", exact=True).fill(account)
    frame.locator("#bank-account_type").select_option("CHECKING")


def test_save_a_bank_account_then_pay_an_invoice_with_it(page, stack, viewport):
    person = PEOPLE[viewport]
    login(page, stack, person["login"])
    frame = open_finance_entry(page, "Credit card")
    expect(frame.locator("#add-bank-title")).to_have_text("Add a bank account")
    assert_labelled(frame)
    form = frame.locator("form.bank-form")
    expect(form.locator(".authorisation-text")).to_contain_text("I authorise")

    # A mistake first: a routing number whose checksum fails.
    fill_bank(frame, person, routing="111000026")
    frame.locator("#bank-accept_debit").check()
    form.get_by_role("button", name="Add bank account").click()
    expect(frame.locator("#bank-routing_number-error")).to_contain_text(
        "The routing number is not valid")
    expect(frame.get_by_label("Account holder's first name")).to_have_value(person["first"])
    expect(frame.get_by_label("Account holder's last name")).to_have_value("Example")
    expect(frame.get_by_label("Routing number (9 digits)")).to_have_value("111000026")
    expect(frame.get_by_label("Account number", exact=True)).to_have_value("")
    assert ACCOUNT not in frame.locator("body").inner_html()
    page.shot("bank-error")

    # Corrected: saved, listed beside the cards, the number never shown again.
    frame.get_by_label("Routing number (9 digits)").fill(ROUTING)
    frame.get_by_label("Account number", exact=True).fill(ACCOUNT)
    frame.locator("#bank-accept_debit").check()
    frame.locator("form.bank-form").get_by_role("button", name="Add bank account").click()
    expect(frame.locator(".alert-success")).to_contain_text(
        "Your bank account Checking •••• 6789 was saved.")
    saved = frame.locator("[data-account-id]")
    expect(saved).to_have_count(1)
    expect(saved).to_contain_text("Checking •••• 6789")
    expect(saved).to_contain_text(f"{person['first']} Example")
    assert ACCOUNT not in frame.locator("body").inner_html()
    page.shot("bank-saved")

    # Pay an invoice from Finance → Invoices with it.
    page.goto(f"{stack.front}/portal/finance/invoices")
    row = page.locator(f'tr[data-number="{person["invoice"]}"]')
    row.get_by_title("Pay by IPpay").click()
    modal = page.frame_locator("#addon-modal iframe")
    expect(modal.locator("h1")).to_have_text(f"Invoice #{person['invoice']}")
    modal.get_by_label("Account type", exact=True).select_option("bank")
    expect(modal.locator('[data-method="bank"]')).to_be_visible()
    expect(modal.locator('[data-method="card"]')).to_be_hidden()
    modal.get_by_label("Checking •••• 6789").check()
    expect(modal.locator("#new-account")).to_be_hidden()
    pay = modal.locator("button.btn-pay")
    expect(pay).to_have_text("Pay by your saved bank account")
    assert_labelled(modal)
    # Without the one-time authorisation nothing is sent.
    pay.click()
    expect(modal.locator("#accept_debit-error")).to_contain_text("Please read the debit authorisation")
    modal.get_by_label("Account type", exact=True).select_option("bank")
    modal.get_by_label("Checking •••• 6789").check()
    modal.locator("#accept_debit").check()
    page.shot("bank-pay")
    modal.locator("button.btn-pay").click()
    expect(modal.locator(".result")).to_contain_text("Success!", timeout=20000)
    page.shot("bank-paid")
    modal.get_by_role("link", name="Done").click()
    expect(page.locator(f'tr[data-number="{person["invoice"]}"]')).to_contain_text("Paid")
    checks = [t for t in requests.get(f"{stack.ippay_url}/_sim/ledger", timeout=5).json()
              ["transactions"] if t["type"] == "CHECK" and t["last4"] == "6789"
              and t["status"] == "accepted"]
    assert checks, "the invoice was paid by a CHECK of the saved account"
