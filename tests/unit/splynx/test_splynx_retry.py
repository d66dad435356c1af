"""What the Splynx client retries, decided in one place (splynx/retry.py): reads only, on a
failed connection or a 502/503/504, with a short backoff; never a write."""

import json

import pytest
import requests

from splynx_ippay.splynx import (NO_RETRY, RetryPolicy, SplynxClient, SplynxConnectionError,
                                 SplynxServerError, SplynxUnavailableError)

KEY, SECRET = "sandbox-key", "sandbox-secret"


@pytest.mark.parametrize("method, attempt, status, connection_failed, retried", [
    ("GET", 0, 503, False, True), ("GET", 1, 502, False, True), ("GET", 0, 504, False, True),
    ("HEAD", 0, 503, False, True), ("get", 0, None, True, True),
    ("GET", 2, 503, False, False),                      # out of retries
    ("GET", 0, 500, False, False), ("GET", 0, 404, False, False), ("GET", 0, 401, False, False),
    ("GET", 0, None, False, False),                     # e.g. a read timeout
    ("POST", 0, 503, False, False), ("POST", 0, None, True, False),
    ("PUT", 0, 502, False, False), ("DELETE", 0, None, True, False),
    ("OPTIONS", 0, 503, False, False),
])
def test_policy_retries_reads_on_transient_failures_only(method, attempt, status,
                                                         connection_failed, retried):
    assert RetryPolicy().should_retry(method, attempt, status=status,
                                      connection_failed=connection_failed) is retried


def test_policy_backoff_and_limits():
    policy = RetryPolicy(retries=4, backoff=(0.1, 0.3))
    assert [policy.delay(n) for n in range(4)] == [0.1, 0.3, 0.3, 0.3]
    assert not NO_RETRY.should_retry("GET", 0, status=503)
    with pytest.raises(ValueError):
        RetryPolicy(retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(retries=1, backoff=())


def _response(status, body=None, raw=None):
    response = requests.Response()
    response.status_code = status
    response._content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return response


class ScriptedSession:
    def __init__(self, *answers):
        self.answers, self.calls = list(answers), []

    def request(self, method, url, **kwargs):
        self.calls.append(method)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _client(*answers, **kwargs):
    session = ScriptedSession(*answers)
    pauses = []
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature", session=session,
                          sleep=pauses.append, **kwargs)
    return client, session, pauses


UNAVAILABLE = {"error": {"message": "Service unavailable", "code": 503,
                         "internal_code": "SERVER_ERROR"}}


def test_a_read_is_retried_after_a_503_and_a_refused_connection():
    client, session, pauses = _client(_response(503, UNAVAILABLE),
                                      requests.ConnectionError("refused"),
                                      _response(200, {"status": "ok"}))
    assert client.check_api() == {"status": "ok"}
    assert session.calls == ["GET", "GET", "GET"] and pauses == [0.1, 0.3]


def test_a_read_gives_up_after_its_retries():
    client, session, pauses = _client(*[_response(502, raw=b"<html>Bad gateway</html>")] * 3)
    with pytest.raises(SplynxUnavailableError, match="HTTP 502"):
        client.check_api()
    assert len(session.calls) == 3 and pauses == [0.1, 0.3]


def test_a_count_is_a_read_too():
    ok = _response(204)
    ok.headers["X-total-count"] = "4"
    client, session, _ = _client(_response(503, UNAVAILABLE), ok)
    assert client.count("admin/finance/invoices") == 4
    assert session.calls == ["HEAD", "HEAD"]


@pytest.mark.parametrize("answer, error", [
    (_response(503, UNAVAILABLE), SplynxServerError),
    (requests.ConnectionError("reset"), SplynxConnectionError),
    (requests.ConnectTimeout("slow"), SplynxConnectionError),
])
def test_a_write_is_never_retried(answer, error):
    client, session, pauses = _client(answer)
    with pytest.raises(error):
        client.request("POST", "admin/finance/payments", json={"amount": "1.00"})
    assert session.calls == ["POST"] and pauses == []


def test_a_read_timeout_is_not_retried():
    client, session, pauses = _client(requests.ReadTimeout("slow"))
    with pytest.raises(SplynxUnavailableError, match="did not answer"):
        client.check_api()
    assert session.calls == ["GET"] and pauses == []


def test_retrying_can_be_turned_off():
    client, session, _ = _client(_response(503, UNAVAILABLE), retry=NO_RETRY)
    with pytest.raises(SplynxServerError):
        client.check_api()
    assert session.calls == ["GET"]


def test_the_token_of_a_read_is_fetched_again_when_no_connection_came():
    token = {"access_token": "A1", "access_token_expiration": 4102444800,
             "refresh_token": "R1", "refresh_token_expiration": 4102444800}
    session = ScriptedSession(requests.ConnectionError("refused"), _response(201, token),
                              _response(200, {"status": "ok"}))
    client = SplynxClient("http://splynx.test", KEY, SECRET, session=session,
                          sleep=lambda s: None)
    assert client.check_api() == {"status": "ok"}
    assert session.calls == ["POST", "POST", "GET"]
