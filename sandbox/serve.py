"""Run a WSGI application on loopback, in a thread (tests) or in the foreground
(``python -m sandbox.splynx``)."""

import argparse
import logging
import threading

import requests
from werkzeug.serving import ThreadedWSGIServer, load_ssl_context, make_server

#: How long a connection may stay silent before its thread gives it up (a client lost
#: mid-request, an idle keep-alive connection).
TLS_IDLE_SECONDS = 300


def control_call(url, payload=None, timeout=10, verify=True):
    """One call of a sandbox server's control plane: GET ``url``, or POST ``payload`` as
    JSON; the answer's JSON (an HTTP error raises)."""
    method = requests.post if payload is not None else requests.get
    response = method(url, json=payload, timeout=timeout, verify=verify)
    response.raise_for_status()
    return response.json()


class BackgroundServer:
    """A threaded WSGI server on 127.0.0.1 running in a daemon thread.

    ``port=0`` picks a free port; ``url`` tells where it listens.
    """

    def __init__(self, app, host="127.0.0.1", port=0):
        self.app = app
        self._server = make_server(host, port, app, threaded=True)
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        # A short poll interval makes stop() quick: suites start many servers.
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class TLSServer(ThreadedWSGIServer):
    """Werkzeug's threaded server over TLS, each handshake in its connection's own thread.

    Werkzeug wraps the listening socket, so the thread that accepts does every handshake: one
    client that stops half-way through (a host lost, as in the scale-out test) would stop
    the whole server. Here the accepted socket is wrapped without a handshake, which then
    happens on the connection's first read, in its thread.
    """

    def __init__(self, host, port, app, cert, key):
        super().__init__(host, port, app)
        self.tls = load_ssl_context(cert, key)
        self.ssl_context = self.tls  # the requests' wsgi.url_scheme is https

    def get_request(self):
        sock, address = self.socket.accept()
        sock.settimeout(TLS_IDLE_SECONDS)
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


def run_foreground(app, description, default_port):
    """Parse ``--host/--port`` (and ``--tls-cert/--tls-key`` to serve https, as the real
    gateway does: the add-on speaks plain http only to loopback) and serve ``app`` until
    interrupted."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--tls-cert", help="serve https with this certificate (PEM)")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    parser.add_argument("--quiet", action="store_true", help="no line per request")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.tls_cert:
        server = TLSServer(args.host, args.port, app, args.tls_cert, args.tls_key)
    else:
        server = make_server(args.host, args.port, app, threaded=True)
    scheme = "https" if args.tls_cert else "http"
    print(f"{description} listening on {scheme}://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
