"""The client's transport with a scripted ``requests`` session (no server): error mapping,
timeouts, redirects, token retry, paging, bad arguments."""

import json
from urllib.parse import parse_qsl

import pytest
import requests

from splynx_ippay.splynx import (SplynxAuthError, SplynxClient, SplynxError,
                                 SplynxForbiddenError, SplynxNotFoundError, SplynxServerError,
                                 SplynxUnavailableError, SplynxValidationError)
from splynx_ippay.splynx.auth import compute_signature

KEY, SECRET = "sandbox-key", "sandbox-secret"


# --------------------------------------------------------------------------
# transport and error mapping with a scripted requests session

def _response(status, body=None, *, raw=None, headers=None):
    response = requests.Response()
    response.status_code = status
    response._content = raw if raw is not None else (b"" if body is None else
                                                     json.dumps(body).encode())
    response.headers.update(headers or {})
    return response


class ScriptedSession:
    """A ``requests.Session`` stand-in returning scripted answers in order."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _error(status, message, code):
    return _response(status, {"error": {"message": message, "code": status,
                                        "internal_code": code}})


@pytest.mark.parametrize("status, cls", [
    (400, SplynxValidationError), (422, SplynxValidationError), (403, SplynxForbiddenError),
    (404, SplynxNotFoundError), (405, SplynxError), (500, SplynxServerError),
    (503, SplynxServerError), (401, SplynxAuthError)])
def test_error_statuses_map_to_classes(status, cls):
    # A GET that gets 502/503/504 is tried again (splynx/retry.py): one answer per attempt.
    attempts = 3 if status in (502, 503, 504) else 1
    session = ScriptedSession(*[_error(status, "Nope!", "SOME_CODE")] * attempts)
    client = SplynxClient("http://splynx.test/", KEY, SECRET, auth="signature",
                          session=session, sleep=lambda s: None)
    with pytest.raises(cls) as caught:
        client.request("GET", "admin/finance/invoices/1")
    assert type(caught.value) is cls
    assert (caught.value.message.endswith("Nope!"), caught.value.status,
            caught.value.internal_code) == (True, status, "SOME_CODE")
    assert len(session.calls) == attempts


def test_signature_mode_sends_signed_requests_with_timeouts():
    session = ScriptedSession(_response(200, {"status": "ok"}))
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature", session=session,
                          connect_timeout=1.5, read_timeout=7)
    assert client.check_api() == {"status": "ok"}
    method, url, kwargs = session.calls[0]
    assert (method, url) == ("GET", "http://splynx.test/api/2.0/admin/api/check")
    assert kwargs["timeout"] == (1.5, 7) and kwargs["allow_redirects"] is False
    fields = dict(parse_qsl(kwargs["headers"]["Authorization"][len("Splynx-EA ("):-1]))
    assert fields["signature"] == compute_signature(KEY, SECRET, int(fields["nonce"]))


def test_signature_mode_401_says_the_key_was_refused():
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature",
                          session=ScriptedSession(_error(401, "Wrong signature", "UNAUTHORIZED")))
    with pytest.raises(SplynxAuthError, match="Splynx refused the API key 'sandbox-key': Wrong"):
        client.check_api()


@pytest.mark.parametrize("answer, words", [
    (requests.ConnectTimeout("slow"), "did not answer"),
    (requests.ReadTimeout("slow"), "did not answer"),
    (requests.ConnectionError("refused"), "cannot reach"),
    (_response(200, raw=b"<html>login</html>"), "not JSON"),
    (_response(502, raw=b"<html>Bad gateway</html>"), "HTTP 502"),
    (_response(302, headers={"Location": "https://splynx.test/"}), "redirected"),
])
def test_no_usable_answer_is_unavailable(answer, words):
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature",
                          session=ScriptedSession(answer))
    with pytest.raises(SplynxUnavailableError, match=words):
        client.request("POST", "admin/finance/payments", json={})


def test_expired_token_is_retried_once():
    token = {"access_token": "A1", "access_token_expiration": 4102444800,
             "refresh_token": "R1", "refresh_token_expiration": 4102444800}
    session = ScriptedSession(
        _response(201, token), _error(401, "Expired", "EXPIRED_ACCESS_TOKEN"),
        _response(200, dict(token, access_token="A2")), _response(201, {"id": "9"}),
        _error(401, "Expired", "EXPIRED_ACCESS_TOKEN"),
        _response(200, dict(token, access_token="A3")),
        _error(401, "Expired", "EXPIRED_ACCESS_TOKEN"))
    client = SplynxClient("http://splynx.test", KEY, SECRET, session=session)
    assert client.request("POST", "admin/finance/payments", json={"a": 1}) == (201, {"id": "9"})
    auths = [c[2]["headers"].get("Authorization") for c in session.calls]
    assert auths == [None, "Splynx-EA (access_token=A1)", "Splynx-EA (access_token=A1)",
                     "Splynx-EA (access_token=A2)"]
    with pytest.raises(SplynxAuthError, match="Expired"):
        client.request("GET", "admin/finance/payments")
    assert len(session.calls) == 7


def test_iter_search_stops_when_the_server_ignores_limit():
    session = ScriptedSession(_response(200, [{"id": str(i)} for i in range(5)]))
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature", session=session)
    assert len(list(client.iter_search("admin/x", page_size=2))) == 5
    assert len(session.calls) == 1


def test_unreadable_record_is_a_splynx_error():
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature",
                          session=ScriptedSession(_response(200, {"id": "1", "total": "x"})))
    with pytest.raises(SplynxError, match="Invoice record"):
        client.get_invoice(1)


def test_bad_arguments_never_reach_the_network():
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature",
                          session=ScriptedSession())
    with pytest.raises(ValueError):
        client.get_invoice("1/../../customers")
    with pytest.raises(ValueError):
        client.find_payments()
    with pytest.raises(SplynxAuthError):
        client.session_identity("")
    with pytest.raises(ValueError):
        SplynxClient("http://splynx.test", KEY, SECRET, auth="basic")

