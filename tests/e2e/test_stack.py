"""The demo's stack as a Splynx host runs it: nginx in front of the Splynx emulator and the
add-on (gunicorn), the IPpay simulator beside them. A customer logs into the portal, opens
Finance → Credit card, saves a card, pays an invoice, and both portal and admin show Paid."""

import re
import shutil

import pytest
import requests

from sandbox.stack import Stack

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("stack")) as stack:
        yield stack


def csrf(html):
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def test_portal_flow_through_nginx(stack):
    browser = requests.Session()
    login = browser.get(f"{stack.front}/portal/", timeout=10)
    assert "/portal/login" in login.url
    browser.post(f"{stack.front}/portal/login", data={"login": "alice", "password": "alice-pass"},
                 timeout=10)

    # Finance → Credit card is a registered menu entry point that frames /ippay/cards.
    dashboard = browser.get(f"{stack.front}/portal/", timeout=10).text
    frame_page = re.search(r'href="(/portal/add-on\?module=splynx_ippay_addon&(?:amp;)?point=\d+)"',
                           dashboard)
    assert frame_page, "the Credit card menu entry is shown"
    framed = browser.get(stack.front + frame_page.group(1).replace("&amp;", "&"), timeout=10).text
    assert 'src="/ippay/cards' in framed

    cards = browser.get(f"{stack.front}/ippay/cards", timeout=10).text
    saved = browser.post(f"{stack.front}/ippay/cards", data={
        "csrf_token": csrf(cards), "holder_name": "Alice Example", "number": "4111111111111111",
        "expiry": "12/30", "cvv": "123"}, timeout=10)
    assert "Visa •••• 1111" in saved.text

    invoices = browser.get(f"{stack.front}/portal/finance/invoices", timeout=10).text
    link = re.search(r'(/ippay/pay-invoice\?module=splynx_ippay_addon&(?:amp;)?model=Invoices&'
                     r'(?:amp;)?item_id=(\d+))', invoices)
    assert link, "every unpaid invoice has the Pay action"
    state = requests.get(f"{stack.front}/_sandbox/state", timeout=10).json()
    approving = [i for i in state["invoices"] if i["customer_id"] in ("1", 1)
                 and i["status"] == "not_paid" and round(float(i["due"]) * 100) % 100 == 0]
    number = approving[0]["number"]
    modal = browser.get(f"{stack.front}/ippay/pay-invoice", params={
        "module": "splynx_ippay_addon", "model": "Invoices", "item_id": number}, timeout=10).text
    card_id = re.search(r'name="card_id"[^>]*value="(\d+)"', modal).group(1)
    key = re.search(r'name="request_key"[^>]*value="([^"]+)"', modal).group(1)
    result = browser.post(f"{stack.front}/ippay/pay-invoice", params={"item_id": number}, data={
        "csrf_token": csrf(modal), "card_id": card_id, "request_key": key}, timeout=30)
    assert "Success!" in result.text

    portal = browser.get(f"{stack.front}/portal/finance/invoices", timeout=10).text
    assert re.search(rf"{number}.*?Paid", portal, re.S)
    admin = requests.Session()
    admin.post(f"{stack.front}/admin/login", data={"login": "admin", "password": "admin-pass"},
               timeout=10)
    listing = admin.get(f"{stack.front}/admin/finance/invoices", timeout=10).text
    assert re.search(rf"{number}.*?Paid", listing, re.S)
