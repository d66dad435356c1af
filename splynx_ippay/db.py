"""Database engine, sessions and migrations (SQLite, MariaDB or PostgreSQL by URL)."""

import os
from contextlib import contextmanager

from sqlalchemy import create_engine, event
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
        options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        options.update(poolclass=QueuePool, pool_size=8, max_overflow=16)
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
