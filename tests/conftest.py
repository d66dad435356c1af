"""Fixtures shared by every suite: the sandbox servers on loopback, and a guard
that fails any test which tries to reach beyond this machine."""

import ipaddress
import socket

import pytest

from sandbox.serve import BackgroundServer

_real_connect = socket.socket.connect
_real_create_connection = socket.create_connection


def _is_local(address):
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str):
        return True
    if host in ("localhost", "") or host.startswith("/"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
        raise AssertionError(f"test tried to reach the network: {address!r}")
    return _real_connect(sock, address)


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Any connection to a host other than loopback fails the test."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture
def ippay_sim():
    """A fresh IPpay gateway simulator on loopback; ``.url`` is its base URL,
    the gateway endpoint is ``.url + '/ippay'``."""
    from sandbox.ippay import create_app

    with BackgroundServer(create_app()) as server:
        yield server


@pytest.fixture
def splynx_emu():
    """A fresh, seeded Splynx emulator on loopback; ``.url`` is its base URL."""
    from sandbox.splynx import create_app

    with BackgroundServer(create_app()) as server:
        yield server


# --- databases ---------------------------------------------------------------------------

def _server_database(kind):
    """Create an empty database on the loopback MariaDB or PostgreSQL; return (url, drop)."""
    import uuid

    name = f"ippay_test_{uuid.uuid4().hex[:10]}"
    if kind == "mariadb":
        import pymysql

        admin = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")

        def drop():
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.close()

        return f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4", drop
    import psycopg2

    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")

    def drop():
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()

    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}", drop


def make_database(kind, tmp_path):
    """An empty database of ``kind``, migrated to the newest revision; (url, cleanup)."""
    from splynx_ippay import db

    if kind == "sqlite":
        url, drop = f"sqlite:///{tmp_path}/ippay.db", (lambda: None)
    else:
        url, drop = _server_database(kind)
    db.upgrade(url)
    return url, drop


@pytest.fixture
def database_url(tmp_path):
    """A migrated SQLite database (the default engine)."""
    url, drop = make_database("sqlite", tmp_path)
    yield url
    drop()


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def any_database_url(request, tmp_path):
    """A migrated database on each engine the add-on supports, in turn."""
    url, drop = make_database(request.param, tmp_path)
    yield url
    drop()


# --- the whole world in one process -------------------------------------------------------

class World:
    """The emulator and the add-on on one origin (``url``), the simulator beside it."""

    def __init__(self, front_server, sim_server, splynx_app, addon, config):
        self.front = front_server
        self.url = front_server.url
        self.sim = sim_server
        self.splynx_app = splynx_app
        self.addon = addon
        self.config = config

    def sim_call(self, path, payload=None):
        import requests

        method = requests.post if payload is not None else requests.get
        response = method(f"{self.sim.url}/_sim/{path}", json=payload, timeout=10)
        response.raise_for_status()
        return response.json()

    def emu_call(self, path, payload=None):
        import requests

        method = requests.post if payload is not None else requests.get
        response = method(f"{self.url}/_sandbox/{path}", json=payload, timeout=10)
        response.raise_for_status()
        return response.json()

    def login(self, login, password=None, place="portal"):
        """A browser-like session logged into the emulator's portal (or admin pages)."""
        import requests

        session = requests.Session()
        response = session.post(f"{self.url}/{place}/login",
                                data={"login": login, "password": password or f"{login}-pass"},
                                timeout=10)
        assert response.ok and "PHPSESSID" in session.cookies, response.text[:500]
        return session

    def login_admin(self):
        return self.login("admin", place="admin")

    def store(self):
        """The emulator's data, for tests that set up many invoices directly."""
        return self.splynx_app.extensions["splynx_store"]

    def env(self):
        """Environment for a worker or CLI subprocess talking to this world."""
        import os

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        return {**os.environ, "PYTHONPATH": root, "SPLYNX_IPPAY_CONFIG": "/nonexistent/config.ini",
                "SPLYNX_IPPAY_SPLYNX_URL": self.url, "SPLYNX_IPPAY_SPLYNX_API_KEY": "sandbox-key",
                "SPLYNX_IPPAY_SPLYNX_API_SECRET": "sandbox-secret",
                "SPLYNX_IPPAY_IPPAY_URL": self.sim.url + "/ippay",
                "SPLYNX_IPPAY_IPPAY_READ_TIMEOUT": str(self.config["IPPAY_READ_TIMEOUT"]),
                "SPLYNX_IPPAY_IPPAY_CONNECT_TIMEOUT": "2",
                "SPLYNX_IPPAY_DATABASE_URL": self.config["DATABASE_URL"],
                "SPLYNX_IPPAY_WEB_LOG_LEVEL": "WARNING"}

    def stop(self):
        self.front.stop()
        self.sim.stop()


def build_world(database_url, splynx_config=None, csrf=True, **settings):
    """Start simulator, emulator (``splynx_config``: e.g. extra invoices) and add-on;
    the caller calls ``world.stop()``. ``csrf=False`` spares API-like tests the form tokens."""
    from sandbox.front import Front
    from sandbox.ippay import create_app as create_sim
    from sandbox.splynx import create_app as create_splynx
    from splynx_ippay import create_app
    from splynx_ippay.services import build_addon
    from splynx_ippay.config import validate

    sim = BackgroundServer(create_sim()).start()
    splynx_app = create_splynx(splynx_config or {})
    front = BackgroundServer(Front(splynx_app)).start()
    config = validate({
        "SPLYNX_URL": front.url, "SPLYNX_API_KEY": "sandbox-key",
        "SPLYNX_API_SECRET": "sandbox-secret", "IPPAY_URL": sim.url + "/ippay",
        "IPPAY_READ_TIMEOUT": 1.0, "IPPAY_CONNECT_TIMEOUT": 1.0, "SPLYNX_TIMEOUT": 5.0,
        "DATABASE_URL": database_url, "WEB_SECRET_KEY": "test-secret", **settings,
    })
    addon = build_addon(config)
    front.app.addon_app = create_app({**config, "ADDON": addon, "WTF_CSRF_ENABLED": csrf})
    from splynx_ippay.services.registration import register

    register(addon.splynx)
    return World(front, sim, splynx_app, addon, config)


@pytest.fixture
def world(database_url):
    """Simulator, emulator and add-on on loopback, registered, with a fresh SQLite journal."""
    world = build_world(database_url)
    yield world
    world.stop()
