"""Database engine, sessions and migrations (SQLite, MariaDB or PostgreSQL by URL)."""

import os
import queue
import random
import sqlite3
import threading
import time
from contextlib import contextmanager

from sqlalchemy import create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


#: A host lost in the middle of a transaction leaves its session open on the database
#: server, holding its row locks, until the server notices the client is gone: by default
#: hours (TCP keepalives start after 2 h). The other hosts' workers wait on those locks and
#: stop charging (the scale-out test, docs/scale-out.md). Each session the add-on opens
#: therefore asks the server to notice within about 25 s and to end a transaction left idle
#: for 30 s; the add-on's own transactions last milliseconds and never wait on the gateway
#: or Splynx. Every one of these is a per-session setting any user may make.
LOST_CLIENT_SECONDS = 30
_POSTGRESQL_OPTIONS = (f"-c idle_in_transaction_session_timeout={LOST_CLIENT_SECONDS * 1000} "
                       "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 "
                       "-c tcp_keepalives_count=3 -c tcp_user_timeout=20000")
_MARIADB_INIT = f"SET SESSION idle_write_transaction_timeout = {LOST_CLIENT_SECONDS}"


#: How the statements that write begin (their first six letters).
_SQLITE_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")


class _WriteTurn:
    """One writer at a time among this process's connections to one SQLite file, and those
    that asked with :func:`first_in_line` before the others."""

    def __init__(self):
        self._lock = threading.Lock()
        self._urgent = threading.Condition(self._lock)
        self._others = threading.Condition(self._lock)
        self._held = False
        self._urgent_waiting = 0

    def acquire(self, urgent, timeout):
        deadline = time.monotonic() + timeout
        with self._lock:
            if urgent:
                self._urgent_waiting += 1
            try:
                while self._held or (not urgent and self._urgent_waiting):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    (self._urgent if urgent else self._others).wait(left)
                self._held = True
                return True
            finally:
                if urgent:
                    self._urgent_waiting -= 1

    def release(self):
        with self._lock:
            self._held = False
            # Wake one: an urgent writer if any waits, else another.
            (self._urgent if self._urgent_waiting else self._others).notify()


_first_in_line = threading.local()


@contextmanager
def first_in_line():
    """The SQLite writes of this thread inside the block take the file before this
    process's other writers waiting for it: the charge worker's move to ``sent``, made with
    a gateway slot held, would otherwise queue behind every other thread's bookkeeping
    (docs/performance.md). Other databases have row locks, and ignore it."""
    _first_in_line.active = True
    try:
        yield
    finally:
        _first_in_line.active = False


class _WriterTurnCursor(sqlite3.Cursor):
    def execute(self, sql, *args):
        self.connection.before_statement(sql)
        return super().execute(sql, *args)

    def executemany(self, sql, *args):
        self.connection.before_statement(sql)
        return super().executemany(sql, *args)


class _WriterTurnConnection(sqlite3.Connection):
    """A SQLite connection that, in this process, waits its turn to write (:class:`_WriteTurn`).

    SQLite lets one connection write at a time. One that finds the file locked retries
    in sleeps that grow to 100 ms (``busy_timeout``), so with the charge worker's threads
    writing at once, most of their time went to sleeping while the file was free
    (docs/performance.md). Here a thread takes the process's turn for the file before its
    transaction's first write and gives it back when the transaction ends, and the next
    one starts at once. Another process (a web worker) still meets SQLite's own lock and
    busy timeout, as before; no one waits for the turn longer than the timeout allows.
    """

    _turns = {}
    _turns_lock = threading.Lock()

    def __init__(self, database, *args, timeout=5.0, **kwargs):
        super().__init__(database, *args, timeout=timeout, **kwargs)
        with self._turns_lock:
            self._turn = self._turns.setdefault(os.path.realpath(database), _WriteTurn())
        self._timeout = timeout
        self._holding = False

    def cursor(self, factory=_WriterTurnCursor):
        return super().cursor(factory)

    def before_statement(self, sql):
        if not self._holding and sql.lstrip()[:6].upper() in _SQLITE_WRITES:
            # Past the timeout the statement goes on, and SQLite decides as it would have.
            self._holding = self._turn.acquire(getattr(_first_in_line, "active", False),
                                               self._timeout)

    def _end_turn(self):
        if self._holding:
            self._holding = False
            self._turn.release()

    def commit(self):
        try:
            super().commit()
        finally:
            self._end_turn()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self._end_turn()

    def close(self):
        try:
            super().close()
        finally:
            self._end_turn()


def make_engine(url):
    """An engine for ``url`` with the per-database settings the journal relies on."""
    options = {"future": True, "pool_pre_ping": True}
    if url.startswith("postgresql"):
        options["connect_args"] = {"options": _POSTGRESQL_OPTIONS}
    elif url.startswith(("mysql", "mariadb")):
        options["connect_args"] = {"init_command": _MARIADB_INIT}
    if url.startswith("sqlite"):
        # Web workers, the worker and the CLI share one file: wait for locks rather
        # than fail, and let readers run beside the writer. Connections are pooled (as
        # SQLAlchemy 2 does by default; 1.4 opens one per session), so a page does not pay
        # for opening the file and setting it up on every request.
        # A file cannot vanish like a server connection: no ping before each use.
        options["connect_args"] = {"check_same_thread": False, "timeout": 30,
                                   "factory": _WriterTurnConnection}
        options.update(poolclass=QueuePool, pool_size=8, max_overflow=16, pool_pre_ping=False)
    engine = create_engine(url, **options)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    return engine


def read_row(engine, sql, *params):
    """The first row of a small read (``?`` placeholders), or None; errors as SQLAlchemy's.

    Sent as it is, without a SQLAlchemy Connection or Result: the reads every web request
    makes (the settings stamp, a customer's payment activity) cost a third of what they do
    through ``exec_driver_sql``. On SQLite they keep a few connections of their own,
    outside the pool, which takes another two thirds off (docs/performance.md)."""
    if engine.dialect.name == "sqlite":
        return _sqlite_read_row(engine, sql, params)
    if engine.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    connection = engine.raw_connection()
    try:
        return _fetch_one(engine, connection, sql, params)
    finally:
        connection.close()


def _fetch_one(engine, connection, sql, params):
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchone()
        finally:
            cursor.close()
    except engine.dialect.dbapi.Error as exc:
        raise DBAPIError.instance(sql, params, exc, engine.dialect.dbapi.Error) from exc


def _sqlite_read_row(engine, sql, params):
    # A pooled connection's checkout and return cost twice the read itself. A file cannot
    # drop a connection, and a SELECT in autocommit mode holds no snapshot once its cursor
    # is closed, so these reads keep a few connections of their own, outside the pool: as
    # many as have read at once (not one a thread: the worker runs some forty), closed when
    # the engine goes.
    readers = engine.__dict__.get("_ippay_readers")
    if readers is None:
        readers = engine.__dict__.setdefault("_ippay_readers", queue.SimpleQueue())
    try:
        connection = readers.get_nowait()
    except queue.Empty:
        pooled = engine.raw_connection()
        pooled.detach()  # from now on it belongs to the readers, not to the pool
        connection = pooled.dbapi_connection
    try:
        row = _fetch_one(engine, connection, sql, params)
    except DBAPIError:
        if connection.in_transaction:  # never keep a snapshot: start afresh
            connection.close()
        else:
            readers.put(connection)
        raise
    readers.put(connection)
    return row


#: What a database says when it ended a transaction to break a deadlock (MariaDB 1213,
#: PostgreSQL 40P01) or could not serialise it (40001): nothing of it was written, and the
#: same transaction may simply run again.
_DEADLOCK_ERRNOS = {1213}
_DEADLOCK_PGCODES = {"40P01", "40001"}


def is_deadlock(exc):
    """True when ``exc`` (a SQLAlchemy DBAPIError) is a transaction the database rolled back
    to break a deadlock."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "pgcode", None) in _DEADLOCK_PGCODES:
        return True
    args = getattr(orig, "args", ())
    return bool(args) and args[0] in _DEADLOCK_ERRNOS


def run_transaction(factory, work, tries=3):
    """``work(session)`` in one transaction (:func:`session_scope`), run again, up to
    ``tries`` times in all, when the database ends it to break a deadlock; returns what
    ``work`` returns. ``work`` must decide everything inside the transaction (a
    compare-and-set does), since a rolled-back run of it wrote nothing."""
    for attempt in range(1, tries + 1):
        try:
            with session_scope(factory) as session:
                return work(session)
        except DBAPIError as exc:
            if attempt == tries or not is_deadlock(exc):
                raise
            time.sleep(random.uniform(0.005, 0.05) * attempt)


def make_session_factory(engine):
    """Sessions that keep loaded rows usable after commit (views render them after)."""
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)


@contextmanager
def session_scope(factory):
    """A session that commits on success, rolls back on error, and always closes."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url):
    """Alembic configuration for the add-on's migrations, without an alembic.ini."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url, revision="head"):
    """Bring the database at ``url`` up to ``revision`` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current_revision(url):
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision():
    """The newest revision the add-on's migrations know (what the code needs)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
