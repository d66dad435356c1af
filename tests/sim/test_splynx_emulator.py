"""The Splynx emulator held to splynx-platform.md: auth schemes, search syntax,
wire types, finance rules, add-on hosting pages, control plane.

Raw ``requests`` only: the emulator must work for clients written elsewhere.
"""

import base64
import hashlib
import hmac
import html
import itertools
import json
import os
import re
import time

import pytest
import requests

from sandbox.serve import BackgroundServer

KEY = os.environ.get("SPLYNX_SANDBOX_API_KEY", "sandbox-key")
SECRET = os.environ.get("SPLYNX_SANDBOX_API_SECRET", "sandbox-secret")
_nonces = itertools.count(int(time.time() * 100))
MODULE = "splynx_ippay_addon"


@pytest.fixture(scope="module")
def seeded_emu():
    """One emulator shared by read-only tests (each server costs ~0.5 s to stop)."""
    from sandbox.splynx import create_app

    with BackgroundServer(create_app()) as server:
        yield server


def sign(nonce, key=KEY, secret=SECRET):
    return hmac.new(secret.encode(), f"{nonce}{key}".encode(), hashlib.sha256).hexdigest().upper()


def ea(key=KEY, secret=SECRET, nonce=None):
    nonce = next(_nonces) if nonce is None else nonce
    return {"Authorization": f"Splynx-EA (key={key}&nonce={nonce}&signature={sign(nonce, key, secret)})"}


def api(emu, method, path, headers=None, **kwargs):
    """One signed API call."""
    return requests.request(method, f"{emu.url}/api/2.0/{path}", headers=headers or ea(),
                            timeout=10, **kwargs)


def token_for(emu, **body):
    r = requests.post(f"{emu.url}/api/2.0/admin/auth/tokens", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def bearer(token):
    return {"Authorization": f"Splynx-EA (access_token={token})"}


def jwt_payload(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def assert_error(response, status, internal_code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "code", "internal_code"}
    assert body["error"]["code"] == status
    assert body["error"]["internal_code"] == internal_code


def state(emu):
    return requests.get(f"{emu.url}/_sandbox/state", timeout=10).json()


def invoice(emu, invoice_id):
    r = api(emu, "GET", f"admin/finance/invoices/{invoice_id}")
    assert r.status_code == 200
    return r.json()


def deposit(emu, customer_id):
    return api(emu, "GET", f"admin/customers/customer-billing/{customer_id}").json()["deposit"]


def pay(emu, **body):
    body = {"payment_type": 3, "receipt_number": "T-1", "date": "2024-06-01", **body}
    r = api(emu, "POST", "admin/finance/payments", json=body)
    assert r.status_code == 201, r.text
    assert isinstance(r.json()["id"], int)
    return r.json()["id"]


def register_addon(emu):
    """Register a module and the interfaces.md entry points over the API."""
    r = api(emu, "POST", "admin/config/modules",
            json={"name": MODULE, "title": "Splynx Ippay Billing Add-On", "root": "/ippay"})
    assert r.status_code == 201, r.text
    points = [
        {"name": "ippay_pay_invoice", "place": "portal", "type": "action_link", "model": "Invoices",
         "title": "Pay by Ippay", "icon": "fa-credit-card", "url": "/ippay/pay-invoice", "size": "large"},
        {"name": "ippay_pay_proforma", "place": "portal", "type": "action_link", "model": "Requests",
         "title": "Pay by Ippay", "url": "/ippay/pay-proforma"},
        {"name": "ippay_credit_card", "place": "portal", "type": "menu_link", "title": "Credit card",
         "url": "/ippay/cards", "root": "controllers\\portal\\FinanceController"},
        {"name": "ippay_widget", "place": "portal", "type": "code", "location": "after_content",
         "code": "<div id='widget'>Hi {{ customer.name }}: {% for i in loader.getInvoices() "
                 "if i.status == 'not_paid' %}[{{ i.number }} {{ App.financeFormat(i.total) }}]{% endfor %}</div>"},
    ]
    ids = {}
    for point in points:
        r = api(emu, "POST", "admin/config/entry-points", json={"module": MODULE, **point})
        assert r.status_code == 201, r.text
        ids[point["name"]] = r.json()["id"]
    return ids


def portal_login(emu, login="alice", password="alice-pass", area="portal"):
    s = requests.Session()
    r = s.post(f"{emu.url}/{area}/login", data={"login": login, "password": password},
               allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    return s


# ------------------------------------------------------------------ auth
def test_signature_auth_good_bad_and_replayed_nonce(splynx_emu):
    r = api(splynx_emu, "GET", "admin/api/check")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "message": "API is valid", "same_server": False}

    bad = {"Authorization": f"Splynx-EA (key={KEY}&nonce={next(_nonces)}&signature={'0' * 64})"}
    assert_error(api(splynx_emu, "GET", "admin/api/check", headers=bad), 401, "UNAUTHORIZED")

    nonce = next(_nonces)
    assert api(splynx_emu, "GET", "admin/api/check", headers=ea(nonce=nonce)).status_code == 200
    assert_error(api(splynx_emu, "GET", "admin/api/check", headers=ea(nonce=nonce)), 401, "UNAUTHORIZED")
    assert_error(api(splynx_emu, "GET", "admin/api/check", headers=ea(nonce=nonce - 5)), 401, "UNAUTHORIZED")

    # strictness is switchable
    requests.post(f"{splynx_emu.url}/_sandbox/settings", json={"nonce_mode": "off"}, timeout=5)
    assert api(splynx_emu, "GET", "admin/api/check", headers=ea(nonce=nonce)).status_code == 200

    assert_error(requests.get(f"{splynx_emu.url}/api/2.0/admin/api/check", timeout=5),
                 401, "MISSED_AUTHORIZATION_HEADER")
    assert_error(api(splynx_emu, "GET", "admin/api/check", headers=ea(key="nope")), 401, "UNAUTHORIZED")


def test_basic_auth_only_with_unsecure_access(splynx_emu):
    basic = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()}
    assert_error(api(splynx_emu, "GET", "admin/api/check", headers=basic), 401, "UNAUTHORIZED")
    r = requests.post(f"{splynx_emu.url}/_sandbox/api-keys",
                      json={"key": "open", "secret": "s3", "unsecure_access": True}, timeout=5)
    assert r.status_code == 201
    basic = {"Authorization": "Basic " + base64.b64encode(b"open:s3").decode()}
    assert api(splynx_emu, "GET", "admin/api/check", headers=basic).status_code == 200
    wrong = {"Authorization": "Basic " + base64.b64encode(b"open:bad").decode()}
    assert_error(api(splynx_emu, "GET", "admin/api/check", headers=wrong), 401, "UNAUTHORIZED")


def test_token_create_use_renew_logout(splynx_emu):
    before = int(time.time())
    tokens = token_for(splynx_emu, auth_type="admin", login="admin", password="admin-pass")
    assert re.fullmatch(r"[0-9a-f]{32}", tokens["refresh_token"])
    assert before + 1800 <= tokens["access_token_expiration"] <= int(time.time()) + 1800
    assert tokens["refresh_token_expiration"] == tokens["access_token_expiration"] + 603000
    payload = jwt_payload(tokens["access_token"])
    assert payload["sub"] == "admin" and payload["id"] == "1"
    assert payload["exp"] == tokens["access_token_expiration"]
    assert payload["model"] == "models\\admin\\administration\\Administrators" and payload["jti"]

    r = api(splynx_emu, "GET", "admin/customers/customer/2", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200 and r.json()["login"] == "bob"

    renewed = requests.get(f"{splynx_emu.url}/api/2.0/admin/auth/tokens/{tokens['refresh_token']}", timeout=5)
    assert renewed.status_code == 200
    new = renewed.json()
    assert set(new) == {"access_token", "access_token_expiration", "refresh_token", "refresh_token_expiration"}
    assert api(splynx_emu, "GET", "admin/api/check", headers=bearer(new["access_token"])).status_code == 200

    r = requests.delete(f"{splynx_emu.url}/api/2.0/admin/auth/tokens/{new['refresh_token']}", timeout=5)
    assert r.status_code == 204
    assert_error(api(splynx_emu, "GET", "admin/api/check", headers=bearer(new["access_token"])), 401, "TOKEN_BANNED")
    assert_error(api(splynx_emu, "GET", "admin/api/check", headers=bearer("a.b.c")), 401, "UNAUTHORIZED")
    assert_error(api(splynx_emu, "GET", "admin/api/check", headers=bearer("")), 401, "EMPTY_ACCESS_TOKEN")

    bad = requests.post(f"{splynx_emu.url}/api/2.0/admin/auth/tokens",
                        json={"auth_type": "admin", "login": "admin", "password": "x"}, timeout=5)
    assert_error(bad, 401, "UNAUTHORIZED")
    bad = requests.post(f"{splynx_emu.url}/api/2.0/admin/auth/tokens", json={"auth_type": "magic"}, timeout=5)
    assert_error(bad, 400, "INVALID_AUTH_TYPE")


def test_token_from_form_body_and_api_key(splynx_emu):
    r = requests.post(f"{splynx_emu.url}/api/2.0/admin/auth/tokens",
                      data={"auth_type": "customer", "login": "bob", "password": "bob-pass"}, timeout=5)
    assert r.status_code == 201
    payload = jwt_payload(r.json()["access_token"])
    assert payload["sub"] == "customer" and payload["id"] == "2"
    assert payload["model"] == "models\\common\\customers\\Customer"

    nonce = next(_nonces)
    tokens = token_for(splynx_emu, auth_type="api_key", key=KEY, nonce=nonce, signature=sign(nonce))
    assert jwt_payload(tokens["access_token"])["sub"] == "api_key"
    assert tokens["permissions"]["admin\\finance\\Payments"]["add"] == "allow"


def test_token_expiry(splynx_emu):
    requests.post(f"{splynx_emu.url}/_sandbox/settings", json={"access_token_ttl": 0}, timeout=5)
    tokens = token_for(splynx_emu, auth_type="admin", login="admin", password="admin-pass")
    assert_error(api(splynx_emu, "GET", "admin/api/check", headers=bearer(tokens["access_token"])),
                 401, "EXPIRED_ACCESS_TOKEN")
    requests.post(f"{splynx_emu.url}/_sandbox/settings", json={"access_token_ttl": 1800}, timeout=5)
    new = requests.get(f"{splynx_emu.url}/api/2.0/admin/auth/tokens/{tokens['refresh_token']}", timeout=5).json()
    assert api(splynx_emu, "GET", "admin/api/check", headers=bearer(new["access_token"])).status_code == 200
    requests.post(f"{splynx_emu.url}/_sandbox/settings", json={"refresh_token_extra": -1800}, timeout=5)
    stale = token_for(splynx_emu, auth_type="admin", login="admin", password="admin-pass")
    r = requests.get(f"{splynx_emu.url}/api/2.0/admin/auth/tokens/{stale['refresh_token']}", timeout=5)
    assert_error(r, 401, "EXPIRED_REFRESH_TOKEN")


def test_session_exchange_for_customer_and_admin(splynx_emu):
    portal = portal_login(splynx_emu)
    tokens = token_for(splynx_emu, auth_type="session", session_id=portal.cookies["PHPSESSID"])
    payload = jwt_payload(tokens["access_token"])
    assert (payload["sub"], payload["id"]) == ("customer", "1")

    admin = portal_login(splynx_emu, "admin", "admin-pass", area="admin")
    payload = jwt_payload(token_for(splynx_emu, auth_type="session",
                                    session_id=admin.cookies["PHPSESSID"])["access_token"])
    assert (payload["sub"], payload["id"]) == ("admin", "1")

    sid = requests.post(f"{splynx_emu.url}/_sandbox/login-session", json={"kind": "customer", "id": 3},
                        timeout=5).json()["session_id"]
    assert jwt_payload(token_for(splynx_emu, auth_type="session", session_id=sid)["access_token"])["id"] == "3"

    r = requests.post(f"{splynx_emu.url}/api/2.0/admin/auth/tokens",
                      json={"auth_type": "session", "session_id": "nope"}, timeout=5)
    assert_error(r, 401, "UNAUTHORIZED")
    old_sid = portal.cookies["PHPSESSID"]
    portal.get(f"{splynx_emu.url}/portal/logout", timeout=5)
    r = requests.post(f"{splynx_emu.url}/api/2.0/admin/auth/tokens",
                      json={"auth_type": "session", "session_id": old_sid}, timeout=5)
    assert_error(r, 401, "UNAUTHORIZED")


def test_customer_token_sees_only_own_records(splynx_emu):
    headers = bearer(token_for(splynx_emu, auth_type="customer", login="alice", password="alice-pass")["access_token"])
    r = api(splynx_emu, "GET", "admin/customers/customer/1", headers=headers)
    assert r.status_code == 200 and r.json()["name"] == "Alice Anderson"
    assert_error(api(splynx_emu, "GET", "admin/customers/customer/2", headers=headers),
                 403, "NOT_ALLOWED_BY_USER_RESTRICTION")
    assert_error(api(splynx_emu, "GET", "admin/finance/invoices/2", headers=headers),
                 403, "NOT_ALLOWED_BY_USER_RESTRICTION")
    assert_error(api(splynx_emu, "GET", "admin/customers/customer-billing/2", headers=headers),
                 403, "NOT_ALLOWED_BY_USER_RESTRICTION")
    own = api(splynx_emu, "GET", "admin/finance/invoices", headers=headers).json()
    assert {i["customer_id"] for i in own} == {"1"} and len(own) == 5
    assert api(splynx_emu, "GET", "admin/finance/invoices?main_attributes[customer_id]=2",
               headers=headers).json() == []
    r = api(splynx_emu, "POST", "admin/finance/payments", headers=headers,
            json={"customer_id": 1, "amount": "1", "payment_type": 1, "receipt_number": "x", "date": "2024-06-01"})
    assert_error(r, 403, "FORBIDDEN")
    assert_error(api(splynx_emu, "GET", "admin/config/modules", headers=headers), 403, "FORBIDDEN")


def test_api_key_permissions(splynx_emu):
    requests.post(f"{splynx_emu.url}/_sandbox/api-keys", json={
        "key": "narrow", "secret": "n-secret",
        "permissions": {"api\\admin\\finance\\Invoices": ["index", "view"]}}, timeout=5)
    headers = lambda: ea("narrow", "n-secret")  # noqa: E731
    assert api(splynx_emu, "GET", "admin/finance/invoices", headers=headers()).status_code == 200
    assert api(splynx_emu, "GET", "admin/finance/invoices/1", headers=headers()).status_code == 200
    assert_error(api(splynx_emu, "PUT", "admin/finance/invoices/1", headers=headers(), json={"note": "x"}),
                 403, "FORBIDDEN")
    assert_error(api(splynx_emu, "GET", "admin/finance/payments", headers=headers()), 403, "FORBIDDEN")


# ---------------------------------------------------------------- search
@pytest.mark.parametrize("query, expected", [
    ("main_attributes[customer_id]=1", [1, 3, 5, 8, 10]),
    ("main_attributes[customer_id][0]==&main_attributes[customer_id][1]=2", [2, 6, 9, 11]),
    ("main_attributes[status][0]=!=&main_attributes[status][1]=not_paid", [1, 2, 12]),
    ("main_attributes[status][0]=<>&main_attributes[status][1]=not_paid", [1, 2, 12]),
    ("main_attributes[total][0]=>&main_attributes[total][1]=99.99", [3, 8]),
    ("main_attributes[total][0]=>=&main_attributes[total][1]=99.99", [3, 7, 8]),
    ("main_attributes[total][0]=<&main_attributes[total][1]=15.45", [11, 12]),
    ("main_attributes[total][0]=<=&main_attributes[total][1]=15.45", [4, 11, 12]),
    ("main_attributes[total][0]=BETWEEN&main_attributes[total][1][0]=25&main_attributes[total][1][1]=60",
     [1, 2, 6, 9]),
    ("main_attributes[id][0]=IN&main_attributes[id][1][0]=2&main_attributes[id][1][1]=5"
     "&main_attributes[id][1][2]=7", [2, 5, 7]),
    ("main_attributes[number][0]=LIKE&main_attributes[number][1]=202403", [5, 6, 7]),
    ("main_attributes[number][0]=REGEXP&main_attributes[number][1]=^20240[45]", [8, 9, 10, 11, 12]),
    ("main_attributes[customer_id]=1&main_attributes[status]=not_paid", [3, 5, 8, 10]),
    ("main_attributes[date_payment][0]=IS&main_attributes[date_payment][1]=NULL", []),
])
def test_search_operators_on_invoices(seeded_emu, query, expected):
    r = api(seeded_emu, "GET", f"admin/finance/invoices?{query}")
    assert r.status_code == 200, r.text
    assert [int(i["id"]) for i in r.json()] == expected


def test_search_is_find_in_set_and_additional_attributes(splynx_emu):
    assert api(splynx_emu, "PUT", "admin/customers/customer/2", json={
        "customer_labels": ["vip", "fibre"], "additional_attributes": {"region": "north"}}).status_code == 202
    ids = lambda q: [int(c["id"]) for c in api(splynx_emu, "GET", f"admin/customers/customer?{q}").json()]  # noqa: E731
    assert ids("main_attributes[gps][0]=IS&main_attributes[gps][1]=NULL") == [1, 2, 3]
    assert ids("main_attributes[gps][0]=IS&main_attributes[gps][1]=NOT NULL") == []
    assert ids("main_attributes[customer_labels][0]=FIND_IN_SET&main_attributes[customer_labels][1]=vip") == [2]
    assert ids("additional_attributes[region]=north") == [2]
    assert ids("additional_attributes[region][0]=LIKE&additional_attributes[region][1]=NOR") == [2]
    assert ids("main_attributes[name][0]=LIKE&main_attributes[name][1]=ar") == [3]
    r = api(splynx_emu, "GET", "admin/customers/customer?main_attributes[nosuch]=1")
    assert_error(r, 400, "INVALID_INPUT_DATA")
    assert "nosuch" in r.json()["error"]["message"]
    assert_error(api(splynx_emu, "GET", "admin/customers/customer?main_attributes[id][0]=NEAR&main_attributes[id][1]=1"),
                 400, "INVALID_INPUT_DATA")


def test_order_paging_and_head_count(seeded_emu):
    r = api(seeded_emu, "GET", "admin/finance/invoices?order[total]=DESC&limit=3")
    assert [i["id"] for i in r.json()] == ["8", "3", "7"]
    r = api(seeded_emu, "GET", "admin/finance/invoices?order[customer_id]=ASC&order[id]=DESC&limit=2&offset=1")
    assert [i["id"] for i in r.json()] == ["8", "5"]
    r = api(seeded_emu, "HEAD", "admin/finance/invoices?main_attributes[status]=not_paid")
    assert r.status_code == 204
    assert r.headers["X-total-count"] == "9"
    assert "X-total-count" in r.headers["Access-Control-Expose-Headers"]
    # the count ignores limit/offset
    r = api(seeded_emu, "HEAD", "admin/finance/invoices?limit=2")
    assert r.headers["X-total-count"] == "12"


def test_value_types_are_loose_like_splynx(seeded_emu):
    inv = invoice(seeded_emu, 3)
    assert inv["id"] == "3" and inv["customer_id"] == "1"
    assert inv["total"] == 100.1 and inv["due"] == 60.1
    assert inv["number"] == "202402000003" and inv["date_payment"] == "0000-00-00"
    assert inv["items"][0]["price"] == "100.1000"
    assert inv["payment_id"] == "0" and inv["payd_from_deposit"] == "0"
    customer = api(seeded_emu, "GET", "admin/customers/customer/1").json()
    assert customer["partner_id"] == "1" and customer["gps"] is None and "password" not in customer
    assert deposit(seeded_emu, 1) == "-274.6500"
    info = api(seeded_emu, "GET", "admin/customers/billing-info/1?format_values=true").json()
    assert info["deposit"] == "-274.65"
    methods = api(seeded_emu, "GET", "admin/finance/payment-methods").json()
    assert [m["name"] for m in methods] == ["Cash", "Bank transfer", "Credit card", "PayPal", "Other", "Refill card"]
    assert methods[0]["id"] == "1"
    payment = api(seeded_emu, "GET", "admin/finance/payments/1").json()
    assert payment["amount"] == "60.0000" and payment["invoice_id"] == "1"
    options = requests.options(f"{seeded_emu.url}/api/2.0/admin/finance/payments", headers=ea(), timeout=5)
    assert options.status_code == 200
    attrs = {a["name"]: a for a in options.json()}
    assert attrs["customer_id"]["required"] is True and attrs["amount"]["type"] == "decimal"
    assert_error(api(seeded_emu, "GET", "admin/finance/invoices/999"), 404, "NOT_FOUND")
    assert_error(api(seeded_emu, "GET", "admin/no/such"), 404, "NOT_FOUND")
    assert_error(api(seeded_emu, "PUT", "admin/finance/transactions/1", json={}), 405, "METHOD_NOT_ALLOWED")


# --------------------------------------------------------------- finance
def test_linked_payment_pays_invoice_in_full_and_tolerates_status_put(splynx_emu):
    pid = pay(splynx_emu, customer_id=1, invoice_id=5, amount="75.00")
    inv = invoice(splynx_emu, 5)
    assert (inv["status"], inv["due"], inv["date_payment"], inv["payment_id"]) == ("paid", 0, "2024-06-01", str(pid))
    assert deposit(splynx_emu, 1) == "-199.6500"
    txns = api(splynx_emu, "GET", f"admin/finance/transactions?main_attributes[payment_id]={pid}").json()
    assert [(t["type"], t["total"]) for t in txns] == [("credit", "75.0000")]
    rel = api(splynx_emu, "GET", "admin/finance/invoice-relations?invoice_id=5").json()
    assert [(r["type"], r["amount"], r["payment_id"]) for r in rel] == [("payment", "75.0000", str(pid))]
    # a PayPal-style add-on PUTs the status afterwards: accepted, no money moves
    r = api(splynx_emu, "PUT", "admin/finance/invoices/5",
            json={"status": "paid", "date_payment": "2024-06-01", "payment_id": pid})
    assert r.status_code == 202 and r.content == b""
    assert invoice(splynx_emu, 5)["due"] == 0 and deposit(splynx_emu, 1) == "-199.6500"
    # other invoices untouched
    assert invoice(splynx_emu, 3)["due"] == 60.1


def test_linked_partial_payment(splynx_emu):
    pay(splynx_emu, customer_id=1, invoice_id=8, amount=20)
    inv = invoice(splynx_emu, 8)
    assert (inv["status"], inv["due"], inv["date_payment"]) == ("not_paid", 100.5, "0000-00-00")
    assert invoice(splynx_emu, 3)["due"] == 60.1  # linked money does not spill to older invoices


def test_proforma_payment(splynx_emu):
    pid = pay(splynx_emu, customer_id=1, request_id=1, amount="45.00")
    pf = api(splynx_emu, "GET", "admin/finance/proforma-invoices/1").json()
    assert (pf["status"], pf["payment_id"], pf["date_payment"]) == ("paid", str(pid), "2024-06-01")
    generated = invoice(splynx_emu, pf["invoice_id"])
    assert (generated["status"], generated["total"], generated["customer_id"]) == ("paid", 45, "1")
    assert deposit(splynx_emu, 1) == "-274.6500"  # +45 credit, -45 invoice
    api(splynx_emu, "DELETE", f"admin/finance/payments/{pid}")
    pf = api(splynx_emu, "GET", "admin/finance/proforma-invoices/1").json()
    assert (pf["status"], pf["invoice_id"]) == ("not_paid", "0")
    assert api(splynx_emu, "GET", f"admin/finance/invoices/{generated['id']}").status_code == 404


def test_unlinked_payment_covers_oldest_invoices_first(splynx_emu):
    pay(splynx_emu, customer_id=1, amount="100.00")
    assert invoice(splynx_emu, 3)["status"] == "paid"
    assert invoice(splynx_emu, 5)["due"] == 35.1
    assert invoice(splynx_emu, 5)["status"] == "not_paid"
    assert invoice(splynx_emu, 8)["due"] == 120.5
    assert deposit(splynx_emu, 1) == "-174.6500"


def test_excess_stays_on_balance_and_delete_reverses(splynx_emu):
    pid = pay(splynx_emu, customer_id=2, amount="300.00")
    assert all(invoice(splynx_emu, i)["status"] == "paid" for i in (6, 9, 11))
    assert deposit(splynx_emu, 2) == "202.4100"
    # a new invoice is paid from the balance
    r = api(splynx_emu, "POST", "admin/finance/invoices",
            json={"customer_id": 2, "date_created": "2024-07-01",
                  "items": [{"description": "Extra", "quantity": 2, "price": "10.00"}]})
    assert r.status_code == 201
    new = invoice(splynx_emu, r.json()["id"])
    assert (new["status"], new["total"], new["payd_from_deposit"]) == ("paid", 20, "1")
    assert deposit(splynx_emu, 2) == "182.4100"
    assert api(splynx_emu, "DELETE", f"admin/finance/payments/{pid}").status_code == 204
    assert [invoice(splynx_emu, i)["due"] for i in (6, 9, 11)] == [30, 55.25, 12.34]
    assert invoice(splynx_emu, 6)["status"] == "not_paid"
    assert deposit(splynx_emu, 2) == "-117.5900"
    assert api(splynx_emu, "GET", f"admin/finance/payments/{pid}").status_code == 404


def test_payment_validation_and_invoice_delete_rules(splynx_emu):
    base = {"customer_id": 1, "payment_type": 3, "receipt_number": "R", "date": "2024-06-01", "amount": "1"}
    for field, value in [("amount", "abc"), ("amount", "-5"), ("date", "06/01/2024"), ("customer_id", 99),
                         ("payment_type", 42), ("invoice_id", 2)]:
        r = api(splynx_emu, "POST", "admin/finance/payments", json={**base, field: value})
        assert_error(r, 400, "INVALID_INPUT_DATA")
        assert r.json()["error"]["message"].startswith(field)
    r = api(splynx_emu, "POST", "admin/finance/payments", json={k: v for k, v in base.items() if k != "receipt_number"})
    assert_error(r, 400, "INVALID_INPUT_DATA")
    assert_error(api(splynx_emu, "DELETE", "admin/finance/invoices/3"), 400, "ENTITY_CANNOT_BE_DELETED")
    assert api(splynx_emu, "DELETE", "admin/finance/invoices/10").status_code == 204
    assert deposit(splynx_emu, 1) == "-255.6000"
    r = api(splynx_emu, "POST", "admin/finance/payments", data="{bad", headers={**ea(), "Content-Type": "application/json"})
    assert_error(r, 400, "BAD_REQUEST")


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


def test_portal_dashboard_menu_link_frame_and_logout(splynx_emu):
    ids = register_addon(splynx_emu)
    s = portal_login(splynx_emu)
    dash = s.get(f"{splynx_emu.url}/portal/", timeout=5).text
    assert "Alice Anderson" in dash and "-274.65" in dash
    assert "<div id='widget'>Hi Alice Anderson: [202402000003 100.10][202403000005 75.00]" in dash
    frame = s.get(f"{splynx_emu.url}/portal/add-on?module={MODULE}&point={ids['ippay_credit_card']}", timeout=5)
    assert frame.status_code == 200
    assert 'src="/ippay/cards"' in frame.text and "Reload" in frame.text and "Open in new window" in frame.text
    assert s.get(f"{splynx_emu.url}/portal/add-on?module={MODULE}&point=999", timeout=5).status_code == 404
    r = s.get(f"{splynx_emu.url}/portal/add-on--action-link-modal?module={MODULE}&name=ippay_pay_invoice&id=202403000005",
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


# --------------------------------------------------------- control plane
def test_fault_status_count_and_method(splynx_emu):
    r = requests.post(f"{splynx_emu.url}/_sandbox/faults", json={
        "status": 500, "path_regex": "finance/payments", "method": "POST", "count": 1}, timeout=5)
    assert r.status_code == 201
    assert api(splynx_emu, "GET", "admin/finance/payments").status_code == 200  # method does not match
    body = {"customer_id": 1, "amount": "1", "payment_type": 1, "receipt_number": "x", "date": "2024-06-01"}
    assert_error(api(splynx_emu, "POST", "admin/finance/payments", json=body), 500, "SERVER_ERROR")
    assert len(state(splynx_emu)["payments"]) == 5  # not processed
    assert api(splynx_emu, "POST", "admin/finance/payments", json=body).status_code == 201
    for status, code in [(401, "UNAUTHORIZED"), (403, "FORBIDDEN")]:
        requests.post(f"{splynx_emu.url}/_sandbox/faults", json={"status": status, "path_regex": "api/check"}, timeout=5)
        assert_error(api(splynx_emu, "GET", "admin/api/check"), status, code)
        requests.delete(f"{splynx_emu.url}/_sandbox/faults", timeout=5)
    requests.post(f"{splynx_emu.url}/_sandbox/faults", json={
        "status": 401, "internal_code": "EXPIRED_ACCESS_TOKEN", "path_regex": "api/check", "count": 1}, timeout=5)
    assert_error(api(splynx_emu, "GET", "admin/api/check"), 401, "EXPIRED_ACCESS_TOKEN")
    assert api(splynx_emu, "GET", "admin/api/check").status_code == 200
    assert requests.post(f"{splynx_emu.url}/_sandbox/faults", json={"path_regex": "x"}, timeout=5).status_code == 400


def test_fault_delay_and_rate(splynx_emu):
    requests.post(f"{splynx_emu.url}/_sandbox/faults", json={"delay_s": 0.4, "path_regex": "api/check", "count": 1}, timeout=5)
    started = time.monotonic()
    assert api(splynx_emu, "GET", "admin/api/check").status_code == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    api(splynx_emu, "GET", "admin/api/check")
    assert time.monotonic() - started < 0.4

    requests.post(f"{splynx_emu.url}/_sandbox/faults",
                  json={"rate": 0.5, "status": 500, "seed": 7, "path_regex": "^/portal/login"}, timeout=5)
    codes = [requests.get(f"{splynx_emu.url}/portal/login", timeout=5).status_code for _ in range(40)]
    assert 5 < codes.count(500) < 35 and codes.count(200) == 40 - codes.count(500)


def test_request_log_and_reset(splynx_emu):
    body = {"customer_id": 1, "amount": "1", "payment_type": 3, "receipt_number": "x",
            "date": "2024-06-01", "comment": "card 4111111111111111"}
    api(splynx_emu, "POST", "admin/finance/payments?trace=1", json=body)
    log = requests.get(f"{splynx_emu.url}/_sandbox/requests", timeout=5).json()
    entry = next(e for e in log if e["path"] == "/api/2.0/admin/finance/payments")
    assert entry["method"] == "POST" and entry["query"] == "trace=1" and entry["status"] == 201
    assert "4111111111111111" in entry["body"] and entry["headers"]["Authorization"].startswith("Splynx-EA")
    filtered = requests.get(f"{splynx_emu.url}/_sandbox/requests", params={"path_regex": "payments"}, timeout=5).json()
    assert len(filtered) == 1
    assert len(state(splynx_emu)["payments"]) == 6
    assert requests.post(f"{splynx_emu.url}/_sandbox/reset", timeout=5).status_code == 200
    snapshot = state(splynx_emu)
    assert len(snapshot["payments"]) == 5 and snapshot["customers"][0]["deposit"] == "-274.6500"
    assert requests.get(f"{splynx_emu.url}/_sandbox/requests", timeout=5).json() == []


def test_extra_invoices_for_benchmarks():
    from sandbox.splynx import create_app

    started = time.monotonic()
    app = create_app({"extra_invoices": 20000})
    assert time.monotonic() - started < 5
    with BackgroundServer(app) as emu:
        r = api(emu, "HEAD", "admin/finance/invoices?main_attributes[status]=not_paid")
        assert int(r.headers["X-total-count"]) == 9 + 20000
        customers = int(api(emu, "HEAD", "admin/customers/customer").headers["X-total-count"])
        assert customers == 3 + 2000
        mine = api(emu, "GET", "admin/finance/invoices?main_attributes[customer_id]=4").json()
        assert len(mine) == 10 and all(i["customer_id"] == "4" for i in mine)
        assert deposit(emu, 4) == "-" + f"{sum(i['total'] for i in mine):.4f}"
