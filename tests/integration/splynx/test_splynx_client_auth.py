"""The Splynx client's authentication against the emulator: tokens, renewal, signature
mode, refused keys, permissions, session identity; timeouts and threads."""

import datetime
import socket
import threading
from urllib.parse import parse_qsl

import pytest
import requests

from splynx_ippay.splynx import (SplynxAuthError, SplynxClient, SplynxForbiddenError,
                                 SplynxUnavailableError)
from tests.integration.splynx.splynx_helpers import KEY, SECRET, api_log, sandbox_call


def test_token_auth_fetches_once_then_uses_the_token(splynx_emu, splynx):
    assert splynx.check_api()["status"] == "ok"
    assert splynx.get_invoice(1).id == 1
    assert len(api_log(splynx_emu, "/auth/tokens")) == 1
    used = [e["headers"]["Authorization"] for e in api_log(splynx_emu, "admin/(api|finance)")]
    assert len(used) == 2 and used[0] == used[1] and used[0].startswith("Splynx-EA (access_token=")


def test_token_is_renewed_near_expiry(splynx_emu, splynx):
    sandbox_call(splynx_emu, "/_sandbox/settings", {"access_token_ttl": 3})
    splynx.check_api()
    splynx.check_api()  # the token has under 5 s left: renewed first
    log = api_log(splynx_emu, "/auth/tokens")
    assert [e["method"] for e in log] == ["POST", "GET"] and log[1]["status"] == 200
    checks = api_log(splynx_emu, "admin/api/check")
    assert checks[0]["headers"]["Authorization"] != checks[1]["headers"]["Authorization"]


def test_expired_token_answer_is_retried_with_a_fresh_token(splynx_emu, splynx):
    splynx.check_api()
    sandbox_call(splynx_emu, "/_sandbox/faults", {
        "status": 401, "internal_code": "EXPIRED_ACCESS_TOKEN", "path_regex": "finance/invoices",
        "count": 1})
    assert splynx.get_invoice(2).id == 2
    assert [e["status"] for e in api_log(splynx_emu, "finance/invoices")] == [401, 200]
    assert [e["method"] for e in api_log(splynx_emu, "/auth/tokens")] == ["POST", "GET"]


def test_a_forgotten_token_is_replaced(splynx_emu, splynx):
    splynx.check_api()
    sandbox_call(splynx_emu, "/_sandbox/reset")  # Splynx forgets every token
    assert splynx.get_invoice(2).id == 2
    assert [e["status"] for e in api_log(splynx_emu, "finance/invoices")] == [401, 200]
    assert [(e["method"], e["status"]) for e in api_log(splynx_emu, "/auth/tokens")] == [
        ("GET", 401), ("POST", 201)]


def test_signature_mode(splynx_emu):
    client = SplynxClient(splynx_emu.url, KEY, SECRET, auth="signature")
    assert client.check_api()["status"] == "ok"
    assert [i.id for i in client.list_invoices(customer_id=2)] == [2, 6, 9, 11]
    log = api_log(splynx_emu, "/api/2.0/")
    assert not api_log(splynx_emu, "/auth/tokens")
    nonces = [int(dict(parse_qsl(e["headers"]["Authorization"][11:-1]))["nonce"]) for e in log]
    assert len(nonces) == 2 and nonces[0] < nonces[1]


@pytest.mark.parametrize("auth", ["token", "signature"])
@pytest.mark.parametrize("key, secret", [(KEY, "wrong-secret"), ("no-such-key", SECRET)])
def test_wrong_credentials_are_reported_plainly(splynx_emu, auth, key, secret):
    client = SplynxClient(splynx_emu.url, key, secret, auth=auth)
    with pytest.raises(SplynxAuthError) as caught:
        client.check_api()
    assert str(caught.value).startswith(f"Splynx refused the API key {key!r}: ")
    assert caught.value.status == 401


def test_missing_permission_is_forbidden(splynx_emu):
    sandbox_call(splynx_emu, "/_sandbox/api-keys", {
        "key": "narrow", "secret": "narrow-secret",
        "permissions": {"api\\admin\\finance\\Invoices": ["index", "view"]}})
    client = SplynxClient(splynx_emu.url, "narrow", "narrow-secret")
    assert client.get_invoice(1).id == 1
    with pytest.raises(SplynxForbiddenError, match="no permission"):
        client.get_customer(1)


def test_session_identity(splynx_emu, splynx):
    customer = sandbox_call(splynx_emu, "/_sandbox/login-session", {"kind": "customer", "id": 1})
    admin = sandbox_call(splynx_emu, "/_sandbox/login-session", {"kind": "admin", "id": 1})
    identity = splynx.session_identity(customer["session_id"])
    assert (identity.kind, identity.id) == ("customer", 1)
    assert identity.expires_at > datetime.datetime.now(datetime.timezone.utc)
    assert splynx.session_identity(admin["session_id"]).kind == "admin"
    sent = api_log(splynx_emu, "/auth/tokens", "POST")
    assert all("Authorization" not in e["headers"] for e in sent)
    with pytest.raises(SplynxAuthError, match="Splynx did not accept the session"):
        splynx.session_identity("no-such-session")


def test_session_identity_from_the_portal_login(splynx_emu, splynx):
    browser = requests.Session()
    browser.post(splynx_emu.url + "/portal/login", data={"login": "bob", "password": "bob-pass"},
                 allow_redirects=False, timeout=5)
    identity = splynx.session_identity(browser.cookies["PHPSESSID"])
    assert (identity.kind, identity.id) == ("customer", 2)


def test_slow_answer_is_unavailable(splynx_emu):
    client = SplynxClient(splynx_emu.url, KEY, SECRET, read_timeout=0.3)
    client.check_api()
    sandbox_call(splynx_emu, "/_sandbox/faults", {"delay_s": 1, "path_regex": "finance/invoices",
                                              "count": 1})
    with pytest.raises(SplynxUnavailableError, match="did not answer"):
        client.get_invoice(1)
    assert client.get_invoice(1).id == 1


def test_nothing_listening_is_unavailable():
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SplynxClient(f"http://127.0.0.1:{port}", KEY, SECRET, connect_timeout=1)
    with pytest.raises(SplynxUnavailableError, match="cannot reach"):
        client.check_api()


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_many_threads_share_one_client(splynx_emu, auth):
    client = SplynxClient(splynx_emu.url, KEY, SECRET, auth=auth)
    results, errors = [], []

    def work():
        try:
            results.extend(client.get_invoice(n).id for n in range(1, 6))
        except Exception as exc:  # noqa: BLE001 - collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(results) == sorted(list(range(1, 6)) * 8)
    assert len(api_log(splynx_emu, "/auth/tokens")) == (1 if auth == "token" else 0)
