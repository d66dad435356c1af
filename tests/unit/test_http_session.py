"""The add-on's HTTP session (context._Session) keeps each origin's environment settings: it
must answer exactly what requests itself would, proxies, no_proxy and CA bundle included.
Its own requests go straight to the adapter: on the wire, in their answers and in their
exceptions they are what requests' own way makes them."""

import http.server
import json
import socket
import socketserver
import threading
import time

import pytest
import requests

from splynx_ippay.context import http_session

URLS = ("https://gateway.example:8443/ippay", "http://127.0.0.1:5/api", "https://splynx.isp/api")


@pytest.mark.parametrize("environment", [
    {},
    {"HTTPS_PROXY": "http://proxy.isp:3128", "NO_PROXY": "127.0.0.1,splynx.isp"},
    {"HTTP_PROXY": "http://proxy.isp:3128", "REQUESTS_CA_BUNDLE": "/etc/ssl/isp.pem"},
    {"CURL_CA_BUNDLE": "/etc/ssl/curl.pem", "ALL_PROXY": "socks5://proxy.isp:1080"},
])
@pytest.mark.parametrize("trust_env", [True, False])
@pytest.mark.parametrize("verify", [True, None, False, "/etc/ssl/own.pem"])
def test_the_kept_environment_is_what_requests_reads(monkeypatch, environment, trust_env, verify):
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE",
                 "CURL_CA_BUNDLE", "https_proxy", "http_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    ours, theirs = http_session(2), requests.Session()
    for session in (ours, theirs):
        session.trust_env = trust_env
        session.verify = "/etc/ssl/session.pem"
    for url in URLS:
        for _ in range(2):  # the second answer comes from what was kept
            assert ours.merge_environment_settings(url, {}, True, verify, None) == \
                theirs.merge_environment_settings(url, {}, True, verify, None)
        extra = {"https": "http://other:3128"}
        assert ours.merge_environment_settings(url, dict(extra), False, verify, None) == \
            theirs.merge_environment_settings(url, dict(extra), False, verify, None)


# --- the add-on's own requests: straight to the adapter (context._Session.request) -------------

class _Recorder(socketserver.ThreadingTCPServer):
    """A loopback HTTP/1.1 server that keeps every request as it arrived, and the number of
    connections it was sent on."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, delay=0.0):
        self.seen, self.connections, self.delay = [], 0, delay

        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                recorder.connections += 1

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.seen.append((self.command, self.path, dict(self.headers.items()), body))
                time.sleep(recorder.delay)
                answer = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def recorder():
    server = _Recorder()
    yield server
    server.shutdown()
    server.server_close()


CALLS = [
    ("GET", "/api/2.0/admin/finance/invoices/5", dict(params={"main_attributes[status]": "paid"})),
    ("POST", "/api/2.0/admin/finance/payments", dict(json={"customer_id": 4, "amount": "1.00"})),
    ("POST", "/ippay", dict(data=b"<ippay><TransactionType>SALE</TransactionType></ippay>",
                            headers={"Content-Type": "text/xml"}, stream=True)),
    ("DELETE", "/api/2.0/admin/finance/payments/9", dict(headers={"Authorization": "Splynx-EA x"})),
]


@pytest.mark.parametrize("method,path,extra", CALLS)
def test_the_add_ons_requests_are_sent_as_requests_sends_them(recorder, method, path, extra):
    ours, theirs = http_session(2), requests.Session()
    theirs.headers["User-Agent"] = ours.headers["User-Agent"]
    for session in (ours, theirs):
        response = session.request(method, recorder.url + path, timeout=(5, 5),
                                   allow_redirects=False, **extra)
        assert response.status_code == 200
        body = b"".join(response.iter_content(1024)) if extra.get("stream") else response.content
        assert json.loads(body) == {"ok": True}
    (our_method, our_path, our_headers, our_body), theirs_seen = recorder.seen
    assert (our_method, our_path, our_body) == (theirs_seen[0], theirs_seen[1], theirs_seen[3])
    assert our_headers == theirs_seen[2]


def test_answers_are_read_so_the_connection_is_used_again(recorder):
    session = http_session(2)
    for _ in range(3):
        assert session.request("GET", recorder.url + "/a", timeout=(5, 5),
                               allow_redirects=False).json() == {"ok": True}
    assert recorder.connections == 1


def test_failures_are_requests_own_exceptions():
    session = http_session(2)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(requests.ConnectionError):
        session.request("GET", f"http://127.0.0.1:{port}/", timeout=(2, 2), allow_redirects=False)
    slow = _Recorder(delay=1.0)
    try:
        with pytest.raises(requests.ReadTimeout):
            session.request("GET", slow.url + "/", timeout=(2, 0.2), allow_redirects=False)
    finally:
        slow.shutdown()
        slow.server_close()


def test_anything_else_takes_requests_own_way(recorder):
    session = http_session(2)
    # Redirects followed, cookies: requests itself (the add-on's clients never ask for them).
    response = session.request("GET", recorder.url + "/r", timeout=(5, 5), cookies={"a": "b"})
    assert response.status_code == 200 and response.elapsed is not None
    assert recorder.seen[-1][2].get("Cookie") == "a=b"
