"""The emulator's authentication (splynx-platform §1.3): signatures and nonces, Basic for
unsecure keys, tokens and their life cycle, session exchange, customer scoping, key
permissions."""

import base64
import re
import time

import requests

from tests.sandbox.splynx.emulator_helpers import (KEY, SECRET, api, assert_error, bearer, ea,
                                                   jwt_payload, next_nonce, portal_login, sign,
                                                   token_for)


# ------------------------------------------------------------------ auth
def test_signature_auth_good_bad_and_replayed_nonce(splynx_emu):
    r = api(splynx_emu, "GET", "admin/api/check")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "message": "API is valid", "same_server": False}

    bad = {"Authorization": f"Splynx-EA (key={KEY}&nonce={next_nonce()}&signature={'0' * 64})"}
    assert_error(api(splynx_emu, "GET", "admin/api/check", headers=bad), 401, "UNAUTHORIZED")

    nonce = next_nonce()
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

    nonce = next_nonce()
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

