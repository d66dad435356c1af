"""The add-on's page on an invoice in Splynx's admin lists: staff pay it with the customer's
saved card (splynx-platform §5.4 A2) and copy the direct pay links."""

import re

import requests
from sqlalchemy import select

from splynx_ippay.db import session_scope
from splynx_ippay.models import PaymentAttempt

from tests.flow.test_first_flow import add_card, approving_invoice, form_value, invoices_of, sales


def admin_page(world, admin, number):
    return admin.get(f"{world.url}/ippay/admin/invoice", params={
        "module": "splynx_ippay_addon", "model": "Invoices", "item_id": number}, timeout=10)


def charge(world, admin, number, page, confirm="yes"):
    return admin.post(f"{world.url}/ippay/admin/invoice", params={"item_id": number}, data={
        "csrf_token": form_value(page.text, "csrf_token"), "confirm": confirm,
        "request_key": form_value(page.text, "request_key")}, timeout=30)


def test_staff_pay_an_invoice_with_the_customers_saved_card(world):
    add_card(world, world.login("alice"))
    invoice = approving_invoice(world, 1)
    admin = world.login_admin()
    listing = admin.get(f"{world.url}/admin/finance/invoices", timeout=10).text
    assert re.search(r"/ippay/admin/invoice\?module=splynx_ippay_addon&(amp;)?model=Invoices&(amp;)?"
                     rf"item_id={invoice['number']}", listing), "Splynx shows the action link"
    page = admin_page(world, admin, invoice["number"])
    assert page.status_code == 200
    assert "Visa •••• 1111" in page.text and "by the customer's saved card" in page.text
    assert 'href="/admin/customers/view?id=1"' in page.text and "Alice Anderson" in page.text
    # The first press asks (the same request key goes on); nothing is charged yet.
    asked = charge(world, admin, invoice["number"], page, confirm="")
    assert 'id="confirm-yes"' in asked.text and "Alice Anderson's saved card" in asked.text
    assert form_value(asked.text, "request_key") == form_value(page.text, "request_key")
    assert sales(world) == []
    result = charge(world, admin, invoice["number"], asked)
    assert "Success!" in result.text and "This invoice is paid." in result.text
    # The same form sent again shows the first outcome and charges nothing more.
    assert "Success!" in charge(world, admin, invoice["number"], page).text
    assert len(sales(world)) == 1
    state = world.emu_call("state")
    paid = next(i for i in state["invoices"] if i["id"] == invoice["id"])
    assert paid["status"] == "paid"
    with session_scope(world.ctx.sessions) as session:
        attempt = session.execute(select(PaymentAttempt)).scalar_one()
    assert attempt.admin_id == 1 and attempt.channel == "admin"


def test_pay_links_shown_to_staff_work_for_that_invoice_only(world):
    invoice = invoices_of(world, 2)[0]
    admin = world.login_admin()
    page = admin_page(world, admin, invoice["number"])
    assert "no saved card" in page.text
    links = re.findall(r'id="link-(?:number|id)" readonly value="https?://[^/]+'
                       r'(/ippay/direct-pay-invoice[^"]+)"', page.text)
    assert len(links) == 2
    # Which to send: by number (the customer knows it), by id (templates); both signed.
    assert "send this one" in page.text and "Both are signed" in page.text
    assert page.text.count('data-copy="link-') == 2
    for link in links:
        direct = requests.get(world.url + link.replace("&amp;", "&"), timeout=10)
        assert direct.status_code == 200 and invoice["number"] in direct.text
    forged = re.sub(r"sig=\w+", "sig=" + "0" * 24, links[0].replace("&amp;", "&"))
    assert requests.get(world.url + forged, timeout=10).status_code == 404


def test_staff_page_is_for_staff_only_and_says_when_there_is_no_invoice(world):
    number = invoices_of(world, 1)[0]["number"]
    customer = world.login("alice")
    assert admin_page(world, customer, number).status_code == 403
    anonymous = requests.get(f"{world.url}/ippay/admin/invoice", params={"item_id": number},
                             allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous.headers["Location"]
    missing = admin_page(world, world.login_admin(), "999999999999")
    assert missing.status_code == 404 and "Invoice not found" in missing.text
