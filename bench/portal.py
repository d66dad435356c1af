"""Portal pages under load: the dashboard widget and the pay modal, beside a "hello" app.

Everything runs as the package runs it: nginx with the package's snippet in front, gunicorn
with the package's ``etc/splynx-ippay/gunicorn.conf.py`` on a unix socket, the Splynx
emulator and the IPpay simulator on loopback. A minimal Flask app ("hello") runs behind the
same nginx under the same gunicorn settings, so the ratio says what the add-on's own work
costs. Clients are keep-alive HTTP/1.1 connections driven by asyncio, each logged in as one
of the seeded customers.

    python -m bench.portal [--seconds 5] [--clients 16,64]
"""

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time

import requests

from sandbox.stack import NGINX_SNIPPET, ROOT, Stack

GUNICORN_CONF = ROOT / "etc" / "splynx-ippay" / "gunicorn.conf.py"


def _make_hello():
    from flask import Flask

    app = Flask("hello")

    @app.route("/hello/")
    def hello():
        return "Hello, world!"

    return app


hello_app = _make_hello()  # gunicorn serves bench.portal:hello_app


class BenchStack(Stack):
    """The demo stack, with both apps under gunicorn as the package configures it."""

    def _gunicorn(self, name, target, socket):
        # Command-line settings win over the config file: only the socket's place differs.
        return self._spawn(name, [self.gunicorn(), "--config", str(GUNICORN_CONF),
                                  "--bind", f"unix:{socket}", target])

    def start(self):
        self.start_sandboxes()
        self._gunicorn("addon", "splynx_ippay.wsgi:app", self.state / "web.sock")
        self._gunicorn("hello", "bench.portal:hello_app", self.state / "hello.sock")
        self._write_nginx_conf()
        # The package's snippet, pointed at this run's socket, and the same for "hello".
        snippet = NGINX_SNIPPET.read_text().replace("unix:/run/splynx-ippay/web.sock",
                                                    f"unix:{self.state}/web.sock")
        hello = snippet.split("location = /ippay")[0].replace("location /ippay/", "location /hello/")
        hello = hello.replace(f"unix:{self.state}/web.sock", f"unix:{self.state}/hello.sock")
        (self.state / "splynx-ippay.conf").write_text(snippet + "\n" + hello)
        self.start_nginx()
        for path in ("/ippay/static/ippay.css", "/hello/"):
            _wait_ok(self.front + path, self.processes)
        return self


def _wait_ok(url, processes, timeout=30.0):
    """Poll ``url`` until it answers 200 (gunicorn behind nginx has booted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [name for name, process in processes if process.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited; see the logs in the state folder")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")


# --- the load ------------------------------------------------------------------------------

async def _read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = head.lower()
    if b"transfer-encoding: chunked" in headers:
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        length = 0
        for line in headers.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
    return status, b"connection: close" in headers


async def _client(port, request, deadline, latencies, errors):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status, close = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def _load(port, path, cookies, clients, seconds):
    latencies, errors = [], []
    deadline = time.perf_counter() + seconds
    requests_ = [(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bench\r\n"
                  f"Cookie: {cookies[i % len(cookies)]}\r\n\r\n").encode()
                 for i in range(clients)]
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, requests_[i], deadline, latencies, errors)
                           for i in range(clients)))
    elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


def measure(port, path, cookies, clients, seconds, warmup=1.0):
    """(requests per second, p50 ms, p99 ms, errors) of ``path`` with ``clients`` at once,
    client ``i`` sending the ``Cookie`` header ``cookies[i % len(cookies)]``."""
    asyncio.run(_load(port, path, cookies, clients, warmup))
    latencies, errors, elapsed = asyncio.run(_load(port, path, cookies, clients, seconds))
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, p99 * 1000, len(errors)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", default="16,64")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.clients.split(",")]
    if shutil.which("nginx") is None:
        print("nginx is not installed (make deps installs it)")
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-portal-") as state, BenchStack(state) as stack:
        # Logged-in customers (alice, bob, carol), each with an unpaid invoice to open.
        cookies = [requests.post(f"{stack.front}/_sandbox/login-session",
                                 json={"kind": "customer", "id": cid}, timeout=10)
                   .json()["session_id"] for cid in (1, 2, 3)]
        targets = [("hello", "/hello/", cookies),
                   ("widget", "/ippay/widget", cookies),
                   ("pay modal", "/ippay/pay-invoice?module=splynx_ippay_addon&model=Invoices"
                                 "&item_id=202403000005", cookies[:1])]
        # Each client sends what a browser would after its first visit: the Splynx session
        # and the add-on's own cookie (the form keys of the pay modal live in it).
        pages = []
        for name, path, jar in targets:
            headers = []
            for session_id in jar:
                browser = requests.Session()
                browser.cookies.set("PHPSESSID", session_id)
                check = browser.get(stack.front + path, timeout=10)
                assert check.status_code == 200, (path, check.status_code, check.text[:200])
                headers.append("; ".join(f"{c.name}={c.value}" for c in browser.cookies))
            pages.append((name, path, headers))
        print(f"nginx + gunicorn ({GUNICORN_CONF.relative_to(ROOT)}: unix socket), "
              f"{args.seconds:g} s per run, Python {sys.version.split()[0]}")
        print(f"{'page':<10} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'errors':>6} {'vs hello':>8}")
        results = {}
        for clients in levels:
            for name, path, jar in pages:
                rps, p50, p99, errors = measure(stack.port, path, jar, clients, args.seconds)
                results[(name, clients)] = rps
                ratio = rps / results[("hello", clients)]
                print(f"{name:<10} {clients:>7} {rps:>9.0f} {p50:>8.1f} {p99:>8.1f} "
                      f"{errors:>6} {ratio:>8.2f}", flush=True)
        for clients in levels:
            print(f"at {clients} clients: widget/hello = "
                  f"{results[('widget', clients)] / results[('hello', clients)]:.2f}, "
                  f"pay modal/hello = "
                  f"{results[('pay modal', clients)] / results[('hello', clients)]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
