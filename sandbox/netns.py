"""Hosts in network namespaces on one private LAN: several add-on hosts sharing one database
server, with the Splynx emulator and the IPpay simulator on a host of their own
(docs/scale-out.md). Used by the scale-out test (tests/scale) and its benchmark
(bench/scale_out.py); root only, on a kernel that makes network namespaces.

The LAN is a bridge inside a namespace of its own (so the machine's firewall never sees its
traffic), with a veth pair to each host and one to this machine, which reaches every host
on its address. Each host has its own network namespace and, for the processes started on
it, its own host name (a UTS namespace), as separate machines have::

    this machine 10.213.N.1 ─┐
    db    10.213.N.5  ───────┤ bridge (namespace <id>-lan)
    ext   10.213.N.20 ───────┤   Splynx emulator :8081, IPpay simulator https :8443
    app1  10.213.N.11 ───────┤   gunicorn :8000 + splynx-ippay worker
    app2  10.213.N.12 ───────┘   gunicorn :8000 + splynx-ippay worker

:meth:`Host.die` is a host lost at once: its link is deleted first (nothing it sends, not
even the kernel's resets of its connections, reaches anyone), then every process in its
namespace is killed with SIGKILL.
"""

import contextlib
import fcntl
import importlib.util
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

from sandbox.serve import control_call
from sandbox.stack import wait_for

ROOT = Path(__file__).resolve().parent.parent
#: Every LAN is a /24 of this range (the scale-out test lets its process reach it).
SUPERNET = ipaddress.ip_network("10.213.0.0/16")
_LOCK = "/run/lock/splynx-ippay-netns.lock"
DB_PORTS = {"postgresql": 5432, "mariadb": 3306}
#: What the database server needs so that a host lost in the middle of a transaction does not
#: keep its row locks: without it the server waits for the lost client for hours (the
#: kernel's keepalives start after 2 h, and unacknowledged data is retried ~15 min), and
#: every other worker that needs one of those rows waits as long (docs/scale-out.md).
#: PostgreSQL drops a client that does not answer keepalives (5 + 3 × 2 s) or does not take
#: what was sent to it (10 s); MariaDB has keepalives but no such timeout for data sent, so
#: it also ends a write transaction left idle for 15 s.
DB_LOST_CLIENTS = {
    "postgresql": ("tcp_keepalives_idle=5", "tcp_keepalives_interval=2",
                   "tcp_keepalives_count=3", "tcp_user_timeout=10000"),
    "mariadb": ("--tcp-keepalive-time=5", "--tcp-keepalive-interval=2",
                "--tcp-keepalive-probes=3", "--idle-write-transaction-timeout=15"),
}
SPLYNX_PORT, IPPAY_PORT, WEB_PORT = 8081, 8443, 8000
API_KEY, API_SECRET = "sandbox-key", "sandbox-secret"


def unavailable():
    """Why this machine cannot make the LAN (not root, no ``ip``, no namespaces), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare", "openssl"):
        if shutil.which(tool) is None:
            return f"the {tool} command is missing"
    probe = f"ipx-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args, netns=None):
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout


def _used_subnets():
    """The /24s of SUPERNET that addresses or routes of this machine already use."""
    used = set()
    for line in (_ip("-4", "-o", "addr") + _ip("-4", "route")).split():
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_interface(line)
            if address.ip in SUPERNET:
                used.add(ipaddress.ip_network(f"{address.ip}/24", strict=False))
    return used


def namespace_pids(netns):
    """The processes in network namespace ``netns``."""
    result = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split()] if result.returncode == 0 else []


def kill_namespace(netns, timeout=10.0):
    """SIGKILL every process in ``netns`` (each by its id) until none is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = namespace_pids(netns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    raise RuntimeError(f"processes {namespace_pids(netns)} of {netns} survived SIGKILL")


class Host:
    """One machine on the LAN: a network namespace, an address, the processes started on it
    (each with the host name ``name``) and their logs in ``logs``."""

    def __init__(self, lan, name, address, netns, link):
        self.lan, self.name, self.address, self.netns, self.link = lan, name, address, netns, link
        self.logs = lan.state / "logs"
        self.processes = {}
        self.dead = False

    def argv(self, argv):
        """``argv`` as run on this host: in its namespace, with its host name."""
        return ["ip", "netns", "exec", self.netns, "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', self.name, *map(str, argv)]

    def spawn(self, name, argv, env=None):
        """Start ``argv`` on this host, its output in ``logs/<host>-<name>.log``."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "ab") as log:
            process = subprocess.Popen(self.argv(argv), cwd=ROOT, env=env, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        self.processes[name] = process
        return process

    def run(self, argv, env=None, timeout=120):
        """Run ``argv`` on this host to its end; raises with its output when it fails."""
        result = subprocess.run(self.argv(argv), cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(map(str, argv))} exited "
                               f"{result.returncode}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        return result.stdout

    def log_path(self, name):
        return self.logs / f"{self.name}-{name}.log"

    def log_tail(self, name, size=4000):
        path = self.log_path(name)
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    def die(self):
        """The host is lost: its link deleted, then every process on it SIGKILLed."""
        self.dead = True
        with contextlib.suppress(RuntimeError):
            _ip("link", "del", self.link, netns=self.lan.netns)
        kill_namespace(self.netns)
        for process in self.processes.values():
            process.wait(timeout=10)

    def stop(self, timeout=10.0):
        """Stop the processes: SIGTERM to each, SIGKILL to what is left after ``timeout``."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        kill_namespace(self.netns)
        for process in self.processes.values():
            process.wait(timeout=10)


class Lan:
    """The bridge, this machine's link to it, and the hosts on it; :meth:`close` removes
    them all (processes, namespaces, links, the state directory)."""

    def __init__(self, state=None):
        self.id = f"ipx{uuid.uuid4().hex[:5]}"
        self.netns = f"{self.id}-lan"
        self.state = Path(state or tempfile.mkdtemp(prefix="splynx-ippay-lan-"))
        self.hosts = {}
        self._namespaces = []
        self._links = []
        self.network = None

    def start(self):
        os.makedirs(os.path.dirname(_LOCK), exist_ok=True)
        # Two runs at once (two worktrees) must not draw the same subnet.
        with open(_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            used = _used_subnets()
            self.network = next(n for n in SUPERNET.subnets(new_prefix=24)
                                if n.network_address.packed[2] >= 10 and n not in used)
            self._add_namespace(self.netns)
            _ip("link", "add", "br0", "type", "bridge", netns=self.netns)
            _ip("link", "set", "br0", "up", netns=self.netns)
            _ip("link", "set", "lo", "up", netns=self.netns)
            # This machine's own link (the address .1): it reaches every host directly.
            link = f"{self.id}h"
            _ip("link", "add", link, "type", "veth", "peer", "name", f"{link}p")
            self._links.append(link)
            self._plug(f"{link}p")
            _ip("addr", "add", f"{self.address(1)}/24", "dev", link)
            _ip("link", "set", link, "up")
        return self

    def address(self, number):
        return str(self.network.network_address + number)

    def _add_namespace(self, name):
        _ip("netns", "add", name)
        self._namespaces.append(name)

    def _plug(self, link):
        _ip("link", "set", link, "netns", self.netns)
        _ip("link", "set", link, "master", "br0", netns=self.netns)
        _ip("link", "set", link, "up", netns=self.netns)

    def add_host(self, name, number):
        """A new host ``name`` at address ``.number`` of the LAN."""
        netns = f"{self.id}-{name}"
        self._add_namespace(netns)
        inside, outside = f"{self.id}{number}i", f"{self.id}{number}o"
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", netns)
        self._plug(outside)
        _ip("link", "set", "lo", "up", netns=netns)
        _ip("addr", "add", f"{self.address(number)}/24", "dev", inside, netns=netns)
        _ip("link", "set", inside, "up", netns=netns)
        host = Host(self, name, self.address(number), netns, outside)
        self.hosts[name] = host
        return host

    def close(self, keep_state=False):
        """Remove everything, whatever state it is in (also after a failed start)."""
        for host in self.hosts.values():
            with contextlib.suppress(Exception):
                host.stop(timeout=5)
        for name in reversed(self._namespaces):
            with contextlib.suppress(Exception):
                kill_namespace(name)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        for link in self._links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        if not keep_state:
            shutil.rmtree(self.state, ignore_errors=True)


def _test_databases():
    """.ci/test-databases.py as a module: the one way the project starts private servers."""
    spec = importlib.util.spec_from_file_location("test_databases", ROOT / ".ci" / "test-databases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class DatabaseServer:
    """A private PostgreSQL or MariaDB on ``host`` (its data in a directory of its own,
    deleted by :meth:`stop`), with one empty database for the add-on (:attr:`url`)."""

    def __init__(self, kind, host, options=()):
        self.kind, self.host, self.options = kind, host, options
        self.url = self.admin_url = self._process = self._removable = None
        self._tools = _test_databases()

    def start(self):
        start = {"postgresql": self._tools.start_postgresql,
                 "mariadb": self._tools.start_mariadb}[self.kind]
        clients = (str(self.host.lan.network) if self.kind == "postgresql"
                   else self.host.lan.address(0).rsplit(".", 1)[0] + ".%")
        try:
            self.admin_url, self._process, self._removable = start(
                host=self.host.address, port=DB_PORTS[self.kind], netns=self.host.netns,
                clients=clients, options=self.options, keep_until_exit=False)
        except SystemExit as exc:  # the script's way of saying it
            raise RuntimeError(str(exc)) from None
        self.url = self._create("splynx_ippay")
        return self

    def _create(self, name):
        from sqlalchemy import create_engine, text

        engine = create_engine(self.admin_url if self.kind == "mariadb"
                               else self.admin_url + "/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            charset = " CHARACTER SET utf8mb4" if self.kind == "mariadb" else ""
            connection.execute(text(f"CREATE DATABASE {name}{charset}"))
        engine.dispose()
        query = "?charset=utf8mb4" if self.kind == "mariadb" else ""
        return f"{self.admin_url}/{name}{query}"

    def sessions(self):
        """The server's sessions on the add-on's database, one line each (what a stalled
        test shows: who waits for whom)."""
        from sqlalchemy import create_engine, text

        query = {
            "postgresql": "SELECT pid, client_addr, state, wait_event_type, wait_event, "
                          "now() - xact_start AS in_transaction, left(query, 100) FROM "
                          "pg_stat_activity WHERE datname = 'splynx_ippay' ORDER BY xact_start",
            "mariadb": "SELECT p.id, p.host, p.command, p.time, p.state, t.trx_started, "
                       "t.trx_rows_locked, left(p.info, 100) FROM information_schema.processlist p "
                       "LEFT JOIN information_schema.innodb_trx t ON t.trx_mysql_thread_id = p.id "
                       "WHERE p.db = 'splynx_ippay' ORDER BY t.trx_started"}[self.kind]
        engine = create_engine(self.url)
        try:
            with engine.connect() as connection:
                return [" | ".join(map(str, row)) for row in connection.execute(text(query))]
        finally:
            engine.dispose()

    def stop(self):
        if self._process is not None:
            self._tools.stop(self._process)
        if self._removable is not None:
            shutil.rmtree(self._removable, ignore_errors=True)


def tls_certificate(directory, address):
    """A self-signed certificate for ``address`` (its own CA): ``(cert, key)`` paths."""
    cert, key = Path(directory) / "ippay.crt", Path(directory) / "ippay.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=ippay-simulator.test", "-addext", f"subjectAltName=IP:{address}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class ScaleOut:
    """The scale-out world: a database host, the Splynx emulator and the IPpay simulator
    (https, as the add-on speaks plain http to loopback only) on host ``ext``, and
    ``app_hosts`` add-on hosts, each running gunicorn and ``splynx-ippay worker`` as the
    package's units do, all on one database.

    ``invoices`` unpaid invoices are generated in the emulator (one customer per 10);
    ``latency_ms`` delays every gateway call; ``lease`` is config.ini's ``[worker] lease``;
    ``db_options`` are the database server's settings (default: :data:`DB_LOST_CLIENTS`).
    """

    def __init__(self, engine, *, invoices, app_hosts=2, latency_ms=30, lease=10.0,
                 read_timeout=5.0, retry_after=2.0, python=sys.executable, db_options=None):
        self.engine, self.invoices, self.latency_ms = engine, invoices, latency_ms
        self.lease, self.read_timeout, self.retry_after = lease, read_timeout, retry_after
        self.python = python
        self.db_options = DB_LOST_CLIENTS[engine] if db_options is None else db_options
        self.lan = Lan()
        self.app_names = [f"app{n}" for n in range(1, app_hosts + 1)]
        self.database = None
        self._context = None

    # -- addresses --

    @property
    def ext(self):
        return self.lan.hosts["ext"]

    @property
    def splynx_url(self):
        return f"http://{self.ext.address}:{SPLYNX_PORT}"

    @property
    def ippay_url(self):
        return f"https://{self.ext.address}:{IPPAY_PORT}"

    def web_url(self, name):
        return f"http://{self.lan.hosts[name].address}:{WEB_PORT}"

    def app(self, name):
        return self.lan.hosts[name]

    # -- start and stop --

    def start(self):
        """Make the LAN and its hosts, start the servers, migrate and register; the add-on
        hosts' processes start with :meth:`start_app` (all of them: :meth:`start_apps`)."""
        try:
            self.lan.start()
            db = self.lan.add_host("db", 5)
            ext = self.lan.add_host("ext", 20)
            for number, name in enumerate(self.app_names, start=11):
                self.lan.add_host(name, number)
            self.database = DatabaseServer(self.engine, db, self.db_options).start()
            self.cert, key = tls_certificate(self.lan.state, ext.address)
            env = {**os.environ, "PYTHONPATH": str(ROOT),
                   "IPPAY_SIM_LATENCY_MS": str(self.latency_ms)}
            splynx = ext.spawn("splynx", [self.python, "-m", "sandbox.splynx", "--host",
                                          ext.address, "--port", SPLYNX_PORT, "--quiet",
                                          "--extra-invoices", self.invoices], env=env)
            ippay = ext.spawn("ippay", [self.python, "-m", "sandbox.ippay", "--host", ext.address,
                                        "--port", IPPAY_PORT, "--quiet", "--tls-cert", self.cert,
                                        "--tls-key", key], env=env)
            wait_for(f"{self.splynx_url}/api/2.0/admin/api/check", process=splynx)
            wait_for(f"{self.ippay_url}/_sim/health", process=ippay, verify=str(self.cert))
            # What the package's postinst does on the first host.
            first = self.app(self.app_names[0])
            first.run([self.python, "-m", "splynx_ippay.cli", "db", "upgrade"],
                      env=self.addon_env(first.name))
            first.run([self.python, "-m", "splynx_ippay.cli", "register"],
                      env=self.addon_env(first.name))
        except BaseException:
            self.stop()
            raise
        return self

    def addon_env(self, name):
        """The add-on's settings on host ``name`` (config.ini by environment variables)."""
        nonces = self.lan.state / f"{name}-run"
        nonces.mkdir(exist_ok=True)
        return {**os.environ, "PYTHONPATH": str(ROOT),
                "SPLYNX_IPPAY_CONFIG": str(self.lan.state / "no-config.ini"),
                "SPLYNX_IPPAY_SPLYNX_URL": self.splynx_url,
                "SPLYNX_IPPAY_SPLYNX_API_KEY": API_KEY,
                "SPLYNX_IPPAY_SPLYNX_API_SECRET": API_SECRET,
                "SPLYNX_IPPAY_SPLYNX_NONCE_DIR": str(nonces),
                "SPLYNX_IPPAY_SPLYNX_ADDON_CLI": str(self.lan.state / "no-addon-cli"),
                "SPLYNX_IPPAY_IPPAY_URL": f"{self.ippay_url}/ippay",
                "SPLYNX_IPPAY_IPPAY_READ_TIMEOUT": str(self.read_timeout),
                "SPLYNX_IPPAY_IPPAY_CONNECT_TIMEOUT": "3",
                "SPLYNX_IPPAY_DATABASE_URL": self.database.url,
                "SPLYNX_IPPAY_WEB_SECRET_KEY": "scale-out-secret",
                "SPLYNX_IPPAY_WEB_LOG_LEVEL": "WARNING",
                "SPLYNX_IPPAY_WORKER_LEASE": str(self.lease),
                # The simulator's certificate is its own CA.
                "REQUESTS_CA_BUNDLE": str(self.cert)}

    def start_app(self, name, worker=True):
        """gunicorn (as splynx-ippay.service) and, unless told not, the charge worker (as
        splynx-ippay-worker.service) on host ``name``."""
        host = self.app(name)
        env = self.addon_env(name)
        gunicorn = shutil.which("gunicorn", path=str(Path(self.python).parent)) or "gunicorn"
        web = host.spawn("web", [gunicorn, "--workers", "1", "--threads", "4", "--timeout", "120",
                                 "--bind", f"{host.address}:{WEB_PORT}", "splynx_ippay.wsgi:app"],
                         env=env)
        if worker:
            host.spawn("worker", [self.python, "-m", "splynx_ippay.cli", "worker",
                                  "--retry-after", self.retry_after], env=env)
        wait_for(f"{self.web_url(name)}/ippay/static/ippay.css", process=web)
        return host

    def start_apps(self):
        for name in self.app_names:
            self.start_app(name)

    def stop(self):
        """Stop every process and server, remove the hosts and the LAN (always safe)."""
        if self._context is not None:
            self._context.engine.dispose()
            self._context = None
        with contextlib.suppress(Exception):
            for host in self.lan.hosts.values():
                if host.name != "db":
                    host.stop(timeout=5)
        if self.database is not None:
            self.database.stop()
        self.lan.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- from this machine --

    def context(self):
        """A Context of the add-on in this process, on the shared database (seeding and
        checking; its gateway trusts the simulator's certificate)."""
        if self._context is None:
            from splynx_ippay.config import validate
            from splynx_ippay.context import build_context

            settings = validate({
                "SPLYNX_URL": self.splynx_url, "SPLYNX_API_KEY": API_KEY,
                "SPLYNX_API_SECRET": API_SECRET, "SPLYNX_NONCE_DIR": str(self.lan.state),
                "IPPAY_URL": f"{self.ippay_url}/ippay", "DATABASE_URL": self.database.url,
                "IPPAY_READ_TIMEOUT": self.read_timeout, "WEB_SECRET_KEY": "scale-out-secret"})
            self._context = build_context(settings, pool_size=4)
        return self._context

    def sim(self, path, payload=None):
        """A call of the simulator's control plane (``/_sim/<path>``), as JSON."""
        return control_call(f"{self.ippay_url}/_sim/{path}", payload, timeout=60,
                            verify=str(self.cert))

    def emulator(self, path, payload=None):
        """A call of the emulator's control plane (``/_sandbox/<path>``), as JSON."""
        return control_call(f"{self.splynx_url}/_sandbox/{path}", payload, timeout=60)

    def tokenize(self, pan, holder="Scale Out"):
        """A gateway token for card ``pan`` (12/2031) on the default terminal."""
        from splynx_ippay.context import http_session
        from splynx_ippay.ippay import Card as GatewayCard, IPpayClient

        session = http_session(2)
        # Not REQUESTS_CA_BUNDLE from the environment: the simulator's own certificate.
        session.trust_env, session.verify = False, str(self.cert)
        client = IPpayClient(f"{self.ippay_url}/ippay", "TESTTERMINAL", session=session,
                             connect_timeout=3, read_timeout=30)
        result = client.tokenize(GatewayCard(pan, 12, 2031, holder=holder))
        assert result.approved, result
        return result.token

    def save_cards(self, cards):
        """Saved default cards: ``{customer_id: (pan, token)}``."""
        from splynx_ippay.db import session_scope
        from splynx_ippay.models import Card

        brands = {"4": "Visa", "5": "Mastercard", "3": "American Express"}
        with session_scope(self.context().sessions) as session:
            for customer_id, (pan, token) in sorted(cards.items()):
                session.add(Card(customer_id=customer_id, token=token, brand=brands[pan[0]],
                                 last4=pan[-4:], exp_month=12, exp_year=2031,
                                 holder_name="Scale Out", is_default=True))

    def set_module_settings(self, values):
        """Module settings in Splynx's module config, seen by every host at once."""
        ctx = self.context()
        ctx.splynx.put_module_config("splynx_ippay_addon", values)
        ctx.module_settings.bump()

    def staff_session(self, name):
        """A ``requests`` session of Splynx's administrator, logged in on Splynx's admin
        login page, that talks to host ``name``'s add-on with that Splynx session cookie
        (what the shared origin behind nginx sends it)."""
        login = requests.Session()
        answer = login.post(f"{self.splynx_url}/admin/login",
                            data={"login": "admin", "password": "admin-pass"}, timeout=30)
        assert answer.ok and "PHPSESSID" in login.cookies, answer.text[:500]
        session = requests.Session()
        session.cookies.set("PHPSESSID", login.cookies["PHPSESSID"],
                            domain=self.app(name).address)
        return session
