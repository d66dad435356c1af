"""Modules, add-on config, entry points and payment accounts in the emulator (splynx §1.5,
§2.1, §3.4), and the portal and admin pages that host the add-on (§3.4, §4)."""

import html
import re

import requests

from tests.sandbox.splynx.emulator_helpers import (MODULE, api, assert_error, pay, portal_login,
                                                   register_addon)


# ------------------------------------------------------ modules / config
def test_modules_config_and_entry_points_crud(splynx_emu):
    assert api(splynx_emu, "GET", "admin/config/modules").json() == []
    ids = register_addon(splynx_emu)
    assert_error(api(splynx_emu, "POST", "admin/config/modules", json={"name": MODULE, "title": "x"}),
                 400, "INVALID_INPUT_DATA")
    assert_error(api(splynx_emu, "POST", "admin/config/modules", json={"name": "Bad Name", "title": "x"}),
                 400, "INVALID_INPUT_DATA")
    module = api(splynx_emu, "GET", f"admin/config/modules/{MODULE}").json()
    assert module["title"] == "Splynx Ippay Billing Add-On" and module["entry_points_status"] == "enabled"
    assert api(splynx_emu, "PUT", f"admin/config/modules/{MODULE}", json={"title": "IPpay"}).status_code == 202
    assert api(splynx_emu, "GET", f"admin/config/modules/{MODULE}").json()["title"] == "IPpay"

    cfg = f"admin/config/config?module=add-on&path={MODULE}"
    assert api(splynx_emu, "GET", cfg).json() == {}
    assert api(splynx_emu, "PUT", cfg, json={"terminal_id": "TESTTERMINAL", "payment_method": "3"}).status_code == 202
    assert api(splynx_emu, "GET", cfg).json() == {"terminal_id": "TESTTERMINAL", "payment_method": "3"}
    assert api(splynx_emu, "PUT", cfg + "&partner_id=2", json={"terminal_id": "P2"}).status_code == 202
    assert api(splynx_emu, "GET", cfg + "&partner_id=2").json()["terminal_id"] == "P2"
    assert api(splynx_emu, "GET", cfg + "&key=terminal_id").json() == {"terminal_id": "TESTTERMINAL"}
    assert_error(api(splynx_emu, "GET", "admin/config/config?module=add-on&path=unknown_addon"), 404, "NOT_FOUND")

    points = api(splynx_emu, "GET", f"admin/config/entry-points?main_attributes[module]={MODULE}").json()
    assert {p["name"] for p in points} == set(ids)
    one = api(splynx_emu, "GET", f"admin/config/entry-points/{ids['ippay_pay_invoice']}").json()
    assert (one["type"], one["model"], one["enabled"], one["place"]) == ("action_link", "Invoices", True, "portal")
    assert api(splynx_emu, "PUT", f"admin/config/entry-points/{ids['ippay_pay_invoice']}",
               json={"enabled": False}).status_code == 202
    assert api(splynx_emu, "GET", f"admin/config/entry-points/{ids['ippay_pay_invoice']}").json()["enabled"] is False
    dup = api(splynx_emu, "POST", "admin/config/entry-points",
              json={"module": MODULE, "name": "ippay_credit_card", "place": "portal", "type": "menu_link", "url": "/x"})
    assert_error(dup, 400, "INVALID_INPUT_DATA")
    orphan = api(splynx_emu, "POST", "admin/config/entry-points",
                 json={"module": "ghost", "name": "g", "place": "portal", "type": "menu_link", "url": "/x"})
    assert_error(orphan, 400, "INVALID_INPUT_DATA")
    assert api(splynx_emu, "DELETE", f"admin/config/entry-points/{ids['ippay_widget']}").status_code == 204
    assert api(splynx_emu, "DELETE", f"admin/config/modules/{MODULE}").status_code == 204
    assert api(splynx_emu, "GET", "admin/config/entry-points").json() == []


def test_payment_accounts_upsert_and_delete(splynx_emu):
    url = "admin/customers/customer-payment-accounts"
    assert api(splynx_emu, "GET", f"{url}?id=1").json() == []
    assert api(splynx_emu, "PUT", f"{url}?id=1--7", json={"field_1": "TOKEN123", "field_2": "1111"}).status_code == 202
    assert api(splynx_emu, "PUT", f"{url}?id=1--7", json={"field_3": "12-2030"}).status_code == 202
    row = api(splynx_emu, "GET", f"{url}?id=1--7").json()
    assert (row["account_id"], row["customer_id"], row["field_1"], row["field_3"]) == ("7", "1", "TOKEN123", "12-2030")
    assert len(api(splynx_emu, "GET", f"{url}?id=1").json()) == 1
    assert api(splynx_emu, "DELETE", f"{url}?id=1--7").status_code == 204
    assert_error(api(splynx_emu, "GET", f"{url}?id=1--7"), 404, "NOT_FOUND")
    assert_error(api(splynx_emu, "GET", f"{url}?id=99"), 404, "NOT_FOUND")


# ----------------------------------------------------------------- pages
def test_portal_login_redirects_back_and_invoices_show_action_links(splynx_emu):
    register_addon(splynx_emu)
    r = requests.get(f"{splynx_emu.url}/portal/finance/invoices", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/portal/login?return=%2Fportal%2Ffinance%2Finvoices")

    s = requests.Session()
    r = s.post(f"{splynx_emu.url}/portal/login",
               data={"login": "alice", "password": "alice-pass", "return": "/portal/finance/invoices"},
               allow_redirects=False, timeout=5)
    assert r.status_code == 302 and r.headers["Location"].endswith("/portal/finance/invoices")
    cookie = r.headers["Set-Cookie"]
    assert "PHPSESSID=" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
    # an off-site return is ignored
    r = requests.post(f"{splynx_emu.url}/portal/login",
                      data={"login": "alice", "password": "alice-pass", "return": "https://evil.example/"},
                      allow_redirects=False, timeout=5)
    assert r.headers["Location"].endswith("/portal/")
    r = requests.post(f"{splynx_emu.url}/portal/login", data={"login": "alice", "password": "no"},
                      allow_redirects=False, timeout=5)
    assert r.status_code == 200 and "Invalid login or password" in r.text

    page = html.unescape(s.get(f"{splynx_emu.url}/portal/finance/invoices", timeout=5).text)
    assert "<iframe" in page
    for number in ("202403000005", "202404000008", "202405000010", "202402000003"):
        assert f"/ippay/pay-invoice?module={MODULE}&model=Invoices&item_id={number}" in page
    assert "item_id=202401000001" not in page  # paid: no pay button
    assert "Partially paid" in page and "Unpaid" in page and "Paid" in page
    assert "Credit card" in page  # Finance menu entry point

    requests_page = html.unescape(s.get(f"{splynx_emu.url}/portal/finance/requests", timeout=5).text)
    assert f"/ippay/pay-proforma?module={MODULE}&model=Requests&item_id=2024050001" in requests_page


def test_portal_dashboard_menu_link_frame_and_logout(lenient_emu):
    splynx_emu = lenient_emu  # entry_points_status is not in "Module Base"
    ids = register_addon(splynx_emu)
    s = portal_login(splynx_emu)
    dash = s.get(f"{splynx_emu.url}/portal/", timeout=5).text
    assert "Alice Anderson" in dash and "-274.65" in dash
    assert "<div id='widget'>Hi Alice Anderson: [202402000003 100.10][202403000005 75.00]" in dash
    frame = s.get(f"{splynx_emu.url}/portal/add-on?module={MODULE}&point={ids['ippay_credit_card']}", timeout=5)
    assert frame.status_code == 200
    assert 'src="/ippay/cards"' in frame.text and "Reload" in frame.text and "Open in new window" in frame.text
    assert s.get(f"{splynx_emu.url}/portal/add-on?module={MODULE}&point=999", timeout=5).status_code == 404
    r = s.get(f"{splynx_emu.url}/portal/add-on--action-link-modal"
              f"?module={MODULE}&name=ippay_pay_invoice&id=202403000005",
              allow_redirects=False, timeout=5)
    assert r.headers["Location"].endswith(f"/ippay/pay-invoice?module={MODULE}&model=Invoices&item_id=202403000005")
    # portal entry points hidden when the module's portal status is disabled
    api(splynx_emu, "PUT", f"admin/config/modules/{MODULE}", json={"entry_points_status": "disabled"})
    assert "pay-invoice" not in s.get(f"{splynx_emu.url}/portal/finance/invoices", timeout=5).text
    s.get(f"{splynx_emu.url}/portal/logout", timeout=5)
    assert s.get(f"{splynx_emu.url}/portal/", allow_redirects=False, timeout=5).status_code == 302


def test_admin_pages_show_paid_after_payment(splynx_emu):
    register_addon(splynx_emu)
    r = requests.get(f"{splynx_emu.url}/admin/finance/invoices", allow_redirects=False, timeout=5)
    assert r.status_code == 302 and "/admin/login?return=" in r.headers["Location"]
    s = portal_login(splynx_emu, "admin", "admin-pass", area="admin")
    row = lambda page, iid: re.search(rf'data-invoice-id="{iid}">(.*?)</tr>', page, re.S).group(1)  # noqa: E731
    page = s.get(f"{splynx_emu.url}/admin/finance/invoices", timeout=5).text
    assert "Unpaid" in row(page, 5)
    pay(splynx_emu, customer_id=1, invoice_id=5, amount="75.00", date="2024-06-03")
    page = s.get(f"{splynx_emu.url}/admin/finance/invoices", timeout=5).text
    assert "Paid" in row(page, 5) and "2024-06-03" in row(page, 5) and "Alice Anderson" in row(page, 5)
    customer = s.get(f"{splynx_emu.url}/admin/customers/view?id=1", timeout=5).text
    assert "-199.65" in customer and "T-1" in customer
    assert "T-1" in s.get(f"{splynx_emu.url}/admin/finance/payments", timeout=5).text
    modules = s.get(f"{splynx_emu.url}/admin/config/integrations/modules", timeout=5).text
    assert MODULE in modules and f"/admin/config/integrations/modules/edit?name={MODULE}" in modules
    api(splynx_emu, "PUT", f"admin/config/config?module=add-on&path={MODULE}", json={"terminal_id": "T1"})
    edit = s.get(f"{splynx_emu.url}/admin/config/integrations/modules/edit?name={MODULE}", timeout=5)
    assert "terminal_id" in edit.text and "ippay_pay_invoice" in edit.text
    # a customer session does not open admin pages
    alice = portal_login(splynx_emu)
    assert alice.get(f"{splynx_emu.url}/admin/", allow_redirects=False, timeout=5).status_code == 302


def test_customer_data_is_html_escaped(splynx_emu):
    evil = "<script>alert(1)</script>"
    assert api(splynx_emu, "PUT", "admin/customers/customer/1", json={"name": evil}).status_code == 202
    admin = portal_login(splynx_emu, "admin", "admin-pass", area="admin")
    alice = portal_login(splynx_emu)
    for session, path in [(alice, "/portal/"), (alice, "/portal/finance/invoices"),
                          (admin, "/admin/finance/invoices"), (admin, "/admin/customers/view?id=1"),
                          (admin, "/admin/finance/payments")]:
        text = session.get(splynx_emu.url + path, timeout=5).text
        assert evil not in text, path
        assert "&lt;script&gt;" in text, path

