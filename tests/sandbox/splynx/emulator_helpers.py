"""Helpers of the emulator's contract tests: raw signed requests (the emulator must work for
clients written elsewhere), error-body checks, state snapshots, a registered add-on."""

import base64
import hashlib
import hmac
import itertools
import json
import os
import time

import requests

KEY = os.environ.get("SPLYNX_SANDBOX_API_KEY", "sandbox-key")
SECRET = os.environ.get("SPLYNX_SANDBOX_API_SECRET", "sandbox-secret")
_nonces = itertools.count(int(time.time() * 100))
MODULE = "splynx_ippay_addon"


def next_nonce():
    """A nonce larger than any this test run signed before."""
    return next(_nonces)


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


def payment_body(**body):
    """A "Payment Base" body as the API blueprint types it: payment_type and amount are
    strings, field_1..field_5 are required."""
    body = {"payment_type": "3", "receipt_number": "T-1", "date": "2024-06-01",
            **{f"field_{n}": "" for n in range(1, 6)}, **body}
    if "amount" in body:
        body["amount"] = str(body["amount"])
    return body


def pay(emu, **body):
    r = api(emu, "POST", "admin/finance/payments", json=payment_body(**body))
    assert r.status_code == 201, r.text
    assert isinstance(r.json()["id"], int)
    return r.json()["id"]


def register_addon(emu):
    """Register a module and the interfaces.md entry points over the API (whose entry point
    writes the emulator offers only when told to: they are not in the API blueprint)."""
    allow_undocumented(emu)
    r = api(emu, "POST", "admin/config/modules",
            json={"name": MODULE, "title": "Splynx Ippay Billing Add-On", "root": "/ippay",
                  "type": "simple"})
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


def allow_undocumented(emu, allowed=True):
    """Offer (or refuse again) the methods the API blueprint does not document."""
    r = requests.post(f"{emu.url}/_sandbox/settings",
                      json={"undocumented_methods": "allow" if allowed else "refuse"}, timeout=5)
    assert r.status_code == 200, r.text
