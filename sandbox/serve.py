"""Run a WSGI application on loopback, in a thread (tests) or in the foreground
(``python -m sandbox.splynx``)."""

import argparse
import logging
import threading

import requests
from werkzeug.serving import make_server


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
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    server = make_server(args.host, args.port, app, threaded=True, ssl_context=tls)
    scheme = "https" if tls else "http"
    print(f"{description} listening on {scheme}://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
