"""Access tokens without a server: JWT payloads, session identity and the token life
cycle against a scripted transport (splynx-platform §1.3b, §4)."""

import base64
import datetime
import json
import threading

import pytest

from splynx_ippay.splynx import SplynxAuthError, SplynxError
from splynx_ippay.splynx.auth import (TokenAuth, compute_signature, decode_jwt_payload,
                                      identity_from_session_answer)

KEY, SECRET = "sandbox-key", "sandbox-secret"


# --------------------------------------------------------------------------
# JWT payload and session identity (splynx §1.3b, §4)

def _jwt(payload):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2ln"


def test_jwt_payload_is_decoded_without_padding():
    payload = {"sub": "customer", "id": "1", "exp": 1700001800, "x": "??>"}
    assert decode_jwt_payload(_jwt(payload)) == payload
    for bad in ("nodots", "a.!!!.c", "a." + base64.urlsafe_b64encode(b"[1]").decode() + ".c"):
        with pytest.raises(SplynxError):
            decode_jwt_payload(bad)


def test_identity_from_session_answer():
    identity = identity_from_session_answer({
        "access_token": _jwt({"sub": "admin", "id": "3", "exp": 1700001800}),
        "access_token_expiration": 1700001800})
    assert identity.kind == "admin" and identity.id == 3
    assert identity.expires_at == datetime.datetime(2023, 11, 14, 22, 43, 20,
                                                    tzinfo=datetime.timezone.utc)
    with pytest.raises(SplynxAuthError):
        identity_from_session_answer({"access_token": _jwt({"sub": "api_key", "id": "6",
                                                            "exp": 1})})


# --------------------------------------------------------------------------
# token life cycle with a scripted transport

class ScriptedSplynx:
    """Stands in for the client's transport: answers token calls from a script."""

    def __init__(self):
        self.calls = []
        self.serial = 0
        self.refuse_refresh = False
        self.refuse_key = False

    def tokens(self, now):
        self.serial += 1
        return {"access_token": f"A{self.serial}", "access_token_expiration": now + 1800,
                "refresh_token": f"R{self.serial}", "refresh_token_expiration": now + 604800}

    def __call__(self, method, path, *, json=None, authorization=None):
        self.calls.append((method, path, authorization))
        if method == "POST":
            if self.refuse_key:
                return 401, {}, {"error": {"message": "Invalid API key", "code": 401,
                                           "internal_code": "UNAUTHORIZED"}}
            assert json["signature"] == compute_signature(KEY, SECRET, json["nonce"])
            return 201, {}, self.tokens(CLOCK[0])
        if self.refuse_refresh:
            return 401, {}, {"error": {"message": "Refresh token expired", "code": 401,
                                       "internal_code": "EXPIRED_REFRESH_TOKEN"}}
        return 200, {}, self.tokens(CLOCK[0])


CLOCK = [1_700_000_000.0]


@pytest.fixture
def scripted():
    CLOCK[0] = 1_700_000_000.0
    splynx = ScriptedSplynx()
    return splynx, TokenAuth(KEY, SECRET, splynx, clock=lambda: CLOCK[0])


def test_token_is_fetched_once_and_reused(scripted):
    splynx, auth = scripted
    assert auth.header() == "Splynx-EA (access_token=A1)"
    CLOCK[0] += 1794
    assert auth.header() == "Splynx-EA (access_token=A1)"
    assert [c[:2] for c in splynx.calls] == [("POST", "admin/auth/tokens")]


def test_token_is_renewed_five_seconds_before_expiry(scripted):
    splynx, auth = scripted
    auth.header()
    CLOCK[0] += 1796
    assert auth.header() == "Splynx-EA (access_token=A2)"
    assert splynx.calls[-1] == ("GET", "admin/auth/tokens/R1", "Splynx-EA (access_token=A1)")


def test_new_token_when_refresh_token_expired_or_refused(scripted):
    splynx, auth = scripted
    auth.header()
    CLOCK[0] += 604800
    assert auth.header() == "Splynx-EA (access_token=A2)"
    assert splynx.calls[-1][0] == "POST"
    splynx.refuse_refresh = True
    CLOCK[0] += 1800
    assert auth.header() == "Splynx-EA (access_token=A3)"
    assert [c[0] for c in splynx.calls] == ["POST", "POST", "GET", "POST"]


def test_expired_token_is_renewed_only_if_still_current(scripted):
    splynx, auth = scripted
    first = auth.header()
    auth.expired("Splynx-EA (access_token=stale)")
    assert auth.header() == first
    auth.expired(first)
    assert auth.header() == "Splynx-EA (access_token=A2)"
    assert splynx.calls[-1][:2] == ("GET", "admin/auth/tokens/R1")


def test_many_threads_share_one_token(scripted):
    splynx, auth = scripted
    headers = []
    threads = [threading.Thread(target=lambda: headers.append(auth.header())) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(headers) == {"Splynx-EA (access_token=A1)"} and len(splynx.calls) == 1


def test_refused_key_says_so(scripted):
    splynx, auth = scripted
    splynx.refuse_key = True
    with pytest.raises(SplynxAuthError) as caught:
        auth.header()
    assert str(caught.value).startswith("Splynx refused the API key 'sandbox-key': Invalid API key")



def test_token_request_refused_for_its_nonce_is_retried_with_a_fresh_one(monkeypatch):
    from splynx_ippay.splynx import auth
    from splynx_ippay.splynx.auth import NonceSource

    monkeypatch.setattr(auth.time, "sleep", lambda s: None)
    CLOCK[0] = 1_700_000_000.0
    nonces = []
    refusals = [True, True]

    def send(method, path, *, json=None, authorization=None):
        nonces.append(json["nonce"])
        assert json["signature"] == compute_signature(KEY, SECRET, json["nonce"])
        if refusals:
            refusals.pop()
            return 401, {}, {"error": {"message": "Nonce must be greater than the last one used",
                                       "code": 401, "internal_code": "UNAUTHORIZED"}}
        return 201, {}, ScriptedSplynx().tokens(CLOCK[0])

    auth_ = TokenAuth(KEY, SECRET, send, clock=lambda: CLOCK[0],
                      nonces=NonceSource(clock=lambda: CLOCK[0]))
    assert auth_.header() == "Splynx-EA (access_token=A1)"
    assert nonces == [170000000000, 170000000001, 170000000002]
