"""How the IPpay transport classifies failures, without a server (ippay §9.2): certainly not
sent, outcome unknown, or refused locally; what may be sent again (``may_resend``); and the
url guard's refusals. The same, over real loopback sockets: tests/integration/ippay."""

import socket
import ssl
from http.client import RemoteDisconnected

import pytest
import requests
import urllib3.exceptions

from splynx_ippay.ippay import (
    GatewayAddressRefused, GatewayError, GatewayNotSentError, GatewayRequestError, GatewayUnknownOutcomeError,
    may_resend,
)
from tests.unit.ippay.fakes import TID, FakeResponse, FakeSession, card, make_client

# --------------------------------------------------------------------------- transport classification


def refused_error():
    conn_err = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/ippay", conn_err))


def dns_error():
    inner = urllib3.exceptions.NewConnectionError(None, "Name or service not known")
    inner.__cause__ = socket.gaierror(-2, "Name or service not known")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/ippay", inner))


@pytest.mark.parametrize("exc,cls,reason", [
    (refused_error(), GatewayNotSentError, "connect_failed"),
    (dns_error(), GatewayNotSentError, "connect_failed"),
    (requests.exceptions.ConnectTimeout("connect timed out"), GatewayNotSentError, "connect_timeout"),
    (requests.exceptions.ReadTimeout("read timed out"), GatewayUnknownOutcomeError, "read_timeout"),
    (requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", RemoteDisconnected("Remote end closed connection without response"))),
     GatewayUnknownOutcomeError, "connection_lost"),
    (requests.exceptions.SSLError("EOF occurred in violation of protocol"), GatewayUnknownOutcomeError,
     "connection_lost"),
    (ConnectionResetError(104, "Connection reset by peer"), GatewayUnknownOutcomeError, "connection_lost"),
])
def test_transport_errors_are_classified(exc, cls, reason):
    with pytest.raises(cls) as info:
        make_client(FakeSession(exc)).sale(TID, 1000, card=card())
    assert type(info.value) is cls and info.value.reason == reason
    assert info.value.transaction_id == TID and info.value.transaction_type == "SALE"
    assert info.value.__suppress_context__  # the requests exception (which holds the body) is not chained


def test_tls_error_raised_by_the_handshake_is_not_sent_whatever_its_reason():
    # OpenSSL renames its reasons between versions; the raising frame is what counts.
    def do_handshake():
        raise ssl.SSLError(1, "[SSL] record layer failure")

    try:
        do_handshake()
    except ssl.SSLError as exc:
        during_handshake = exc
    wrapped = requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(
        None, "/ippay", urllib3.exceptions.SSLError(during_handshake)))
    with pytest.raises(GatewayNotSentError) as info:
        make_client(FakeSession(wrapped)).ping()
    assert info.value.reason == "tls_handshake"
    later = requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(
        None, "/ippay", urllib3.exceptions.SSLError(ssl.SSLError(1, "[SSL] record layer failure"))))
    with pytest.raises(GatewayUnknownOutcomeError):
        make_client(FakeSession(later)).ping()


def test_an_error_while_reading_the_body_is_an_unknown_outcome():
    # Even an SSL error: once the status line has arrived the request was certainly sent.
    for exc in (requests.exceptions.ChunkedEncodingError("cut"), requests.exceptions.SSLError("bad record mac"),
                requests.exceptions.ConnectionError(urllib3.exceptions.ReadTimeoutError(None, "/", "timed out"))):
        with pytest.raises(GatewayUnknownOutcomeError):
            make_client(FakeSession(FakeResponse(exc=exc))).ping()


def test_invalid_url_at_send_time_is_a_request_error():
    with pytest.raises(GatewayRequestError):
        make_client(FakeSession(requests.exceptions.InvalidURL("bad"))).ping()



# --------------------------------------------------------------------------- what may be sent again


@pytest.mark.parametrize("ttype,error,allowed", [
    ("SALE", GatewayNotSentError("refused", reason="connect_failed"), True),
    ("CHECK", GatewayNotSentError("refused", reason="connect_timeout"), True),
    ("SALE", GatewayUnknownOutcomeError("timeout", reason="read_timeout"), False),
    ("CREDIT", GatewayUnknownOutcomeError("cut", reason="connection_lost"), False),
    ("VOID", GatewayUnknownOutcomeError("500", reason="http_status"), False),
    ("ENQ", GatewayUnknownOutcomeError("timeout", reason="read_timeout"), True),
    ("PING", GatewayUnknownOutcomeError("empty", reason="empty_body"), True),
    ("SALE", GatewayRequestError("bad amount"), False),
    ("ENQ", GatewayAddressRefused("not allowed"), False),
])
def test_may_resend_is_the_one_retry_rule(ttype, error, allowed):
    assert may_resend(ttype, error) is allowed


# --------------------------------------------------------------------------- the url guard


def test_the_url_guard_sees_the_url_before_every_request():
    seen = []
    session = FakeSession()
    client = make_client(session, url_guard=seen.append)
    client.ping()
    client.sale(TID, 100, card=card())
    assert seen == ["https://testgtwy.example/ippay"] * 2 and len(session.calls) == 2


def test_a_guard_refusal_sends_nothing_and_is_a_request_error():
    def refuse(url):
        raise GatewayAddressRefused("this gateway address is not allowed any more", url=url)

    session = FakeSession()
    with pytest.raises(GatewayAddressRefused) as info:
        make_client(session, url_guard=refuse).sale(TID, 100, card=card(cvv="123"))
    assert session.calls == []
    assert isinstance(info.value, GatewayRequestError) and isinstance(info.value, GatewayError)
    assert (info.value.transaction_type, info.value.transaction_id) == ("SALE", TID)
    assert info.value.reason == "address_refused" and info.value.url == "https://testgtwy.example/ippay"
    assert not may_resend("SALE", info.value)


def test_any_exception_from_the_guard_is_a_refusal():
    def broken(url):
        raise RuntimeError("resolver said 10.0.0.8, not an IPpay address")

    session = FakeSession()
    with pytest.raises(GatewayAddressRefused) as info:
        make_client(session, url_guard=broken).enquire(TID)
    assert session.calls == [] and "10.0.0.8" in str(info.value)
    assert info.value.__suppress_context__
