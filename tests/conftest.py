"""Fixtures shared by every suite: the sandbox servers on loopback, and a guard
that fails any test which tries to reach beyond this machine."""

import functools
import ipaddress
import os
import socket

import pytest

from sandbox.serve import BackgroundServer
from sandbox.world import build_world

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
    """Create an empty database on the MariaDB or PostgreSQL server the run was given
    (``IPPAY_TEST_MARIADB_URL`` / ``IPPAY_TEST_POSTGRESQL_URL``, admin URLs that
    .ci/test-databases.py sets; default: the loopback servers); return (url, drop)."""
    import os
    import uuid

    from sqlalchemy.engine import make_url

    name = f"ippay_test_{uuid.uuid4().hex[:10]}"
    if kind == "mariadb":
        import pymysql

        admin_url = make_url(os.environ.get("IPPAY_TEST_MARIADB_URL")
                             or "mysql+pymysql://root@127.0.0.1:3306")
        admin = pymysql.connect(host=admin_url.host, port=admin_url.port or 3306,
                                user=admin_url.username or "root",
                                password=admin_url.password or "", autocommit=True)
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")

        def drop():
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.close()

        return admin_url.set(database=name, query={"charset": "utf8mb4"}).render_as_string(
            hide_password=False), drop
    import psycopg2

    admin_url = make_url(os.environ.get("IPPAY_TEST_POSTGRESQL_URL")
                         or "postgresql+psycopg2://postgres@127.0.0.1:5432")
    admin = psycopg2.connect(host=admin_url.host, port=admin_url.port or 5432,
                             user=admin_url.username or "postgres",
                             password=admin_url.password or "", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")

    def drop():
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()

    return admin_url.set(database=name).render_as_string(hide_password=False), drop


@functools.lru_cache(maxsize=None)
def _migrated_sqlite_file():
    """A SQLite file migrated to the newest revision, once per run (migrating takes most of
    a second; every SQLite test starts from a copy of it)."""
    import atexit
    import shutil
    import sqlite3
    import tempfile

    from splynx_ippay import db

    directory = tempfile.mkdtemp(prefix="ippay-migrated-")
    atexit.register(shutil.rmtree, directory, True)
    path = os.path.join(directory, "ippay.db")
    db.upgrade(f"sqlite:///{path}")
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the file itself
    connection.close()
    return path


def make_database(kind, tmp_path):
    """An empty database of ``kind``, migrated to the newest revision; (url, cleanup)."""
    from splynx_ippay import db

    if kind == "sqlite":
        import shutil

        shutil.copyfile(_migrated_sqlite_file(), tmp_path / "ippay.db")
        return f"sqlite:///{tmp_path}/ippay.db", (lambda: None)
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

@pytest.fixture
def world(database_url):
    """Simulator, emulator and add-on on loopback, registered, with a fresh SQLite journal."""
    world = build_world(database_url)
    yield world
    world.stop()
