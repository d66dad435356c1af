"""The IPpay client over real loopback sockets (no simulator): read timeouts, cut and dropped
connections, redirects, a TLS handshake against a plain port, a refused port (ippay §9.2), and
the url guard, whose refusal must leave a listening server without a single connection."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from splynx_ippay.ippay import (
    GatewayAddressRefused, GatewayNotSentError, GatewayUnknownOutcomeError, IPpayClient,
)
from tests.unit.ippay.fakes import CVV, PAN, TID, TOKEN, card, ok_reply

# --------------------------------------------------------------------------- raw HTTP stub on loopback


class _StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.server.posts += 1
        try:
            self._answer()
        except OSError:  # the client gave up first (read-timeout tests)
            self.close_connection = True

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        action = self.server.actions.pop(0) if self.server.actions else ("reply", 200, ok_reply())
        kind = action[0]
        if kind == "sleep":
            time.sleep(action[1])
            action = ("reply", 200, ok_reply())
            kind = "reply"
        if kind == "reply":
            _, status, body = action
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif kind == "cut":
            self.send_response(200)
            self.send_header("Content-Length", "500")
            self.end_headers()
            self.wfile.write(b"<ippayResponse><ActionCo")
            self.wfile.flush()
            self.close_connection = True
        elif kind == "drop":
            self.close_connection = True  # close without a status line

    def log_message(self, *args):
        pass


class _CountingServer(ThreadingHTTPServer):
    """Counts every TCP connection it accepts (before any byte is read) and every POST."""

    connections = 0
    posts = 0

    def verify_request(self, request, client_address):
        self.connections += 1
        return True


@pytest.fixture
def stub():
    server = _CountingServer(("127.0.0.1", 0), _StubHandler)
    server.daemon_threads = True
    server.block_on_close = False
    server.actions = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}/ippay"
    yield server
    server.shutdown()
    server.server_close()


def test_stub_read_timeout_is_an_unknown_outcome(stub):
    stub.actions.append(("sleep", 1.0))
    client = IPpayClient(stub.url, "TESTTERMINAL", read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        client.sale(TID, 1000, token=TOKEN)
    assert info.value.reason == "read_timeout"
    assert time.monotonic() - started < 0.9


def test_stub_connection_cut_mid_reply_is_an_unknown_outcome(stub):
    stub.actions.append(("cut",))
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        IPpayClient(stub.url, "TESTTERMINAL").ping()
    # urllib3 1.26 does not enforce Content-Length, so the short body may also
    # reach the parser; either way the outcome is unknown.
    assert info.value.reason in ("connection_lost", "malformed")


def test_stub_connection_closed_without_reply_is_an_unknown_outcome(stub):
    stub.actions.append(("drop",))
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        IPpayClient(stub.url, "TESTTERMINAL").ping()
    assert info.value.reason == "connection_lost"


def test_stub_redirect_is_not_followed(stub):
    stub.actions.append(("reply", 302, b""))
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        IPpayClient(stub.url, "TESTTERMINAL").ping()
    assert info.value.status_code == 302


def test_tls_handshake_failure_is_not_sent(stub):
    # https:// to a plain-HTTP port: the handshake fails before any request byte is written.
    url = stub.url.replace("http://", "https://")
    with pytest.raises(GatewayNotSentError) as info:
        IPpayClient(url, "TESTTERMINAL", connect_timeout=2, read_timeout=2).ping()
    assert info.value.reason == "tls_handshake"


def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_refused_connection_is_not_sent():
    client = IPpayClient(f"http://127.0.0.1:{closed_port()}/ippay", "TESTTERMINAL", connect_timeout=2)
    with pytest.raises(GatewayNotSentError) as info:
        client.sale(TID, 1000, card=card(cvv=CVV))
    assert info.value.reason == "connect_failed" and info.value.transaction_id == TID
    assert PAN not in str(info.value)



# --------------------------------------------------------------------------- the url guard (issue 8 item 5)


def test_a_refused_address_gets_not_one_connection(stub):
    checked = []

    def guard(url):
        checked.append(url)
        raise GatewayAddressRefused("the gateway address is no longer allowed", url=url)

    client = IPpayClient(stub.url, "TESTTERMINAL", url_guard=guard)
    for call in (lambda: client.sale(TID, 1000, card=card(cvv=CVV), tokenize=True), client.ping,
                 lambda: client.enquire(TID), lambda: client.check(TID, 100, "Pat", token=TOKEN)):
        with pytest.raises(GatewayAddressRefused) as info:
            call()
        assert PAN not in str(info.value)
    time.sleep(0.2)  # give a stray connection the time to arrive
    assert stub.connections == 0 and stub.posts == 0 and checked == [stub.url] * 4


def test_an_allowed_address_is_checked_every_time_and_then_used(stub):
    checked = []
    client = IPpayClient(stub.url, "TESTTERMINAL", url_guard=checked.append)
    assert client.ping().approved and client.enquire(TID).approved
    assert checked == [stub.url, stub.url] and stub.connections >= 1


def test_a_guard_that_changes_its_mind_stops_the_next_request(stub):
    allowed = {"yes": True}

    def guard(url):
        if not allowed["yes"]:
            raise GatewayAddressRefused("refused now", url=url)

    client = IPpayClient(stub.url, "TESTTERMINAL", url_guard=guard)
    assert client.ping().approved and stub.posts == 1
    allowed["yes"] = False
    with pytest.raises(GatewayAddressRefused):
        client.ping()
    time.sleep(0.2)
    assert stub.posts == 1  # not even the pooled keep-alive connection was written to
