"""Every session the add-on opens on MariaDB or PostgreSQL asks the server to end what a
lost host left behind (db.py ``LOST_CLIENT_SECONDS``; the scale-out test shows why); on
SQLite, the file is in WAL mode."""

import pytest
from sqlalchemy import text

from splynx_ippay.db import LOST_CLIENT_SECONDS, make_engine


@pytest.mark.databases
def test_sessions_end_what_a_lost_host_left(any_database_url):
    engine = make_engine(any_database_url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                assert connection.execute(text(
                    "SELECT setting FROM pg_settings "
                    "WHERE name = 'idle_in_transaction_session_timeout'")).scalar() == \
                    str(LOST_CLIENT_SECONDS * 1000)
                assert connection.execute(text("SHOW tcp_keepalives_idle")).scalar() == "10"
            elif engine.dialect.name == "mysql":
                assert connection.execute(text(
                    "SELECT @@SESSION.idle_write_transaction_timeout")).scalar() == \
                    LOST_CLIENT_SECONDS
            else:
                # SQLite has no server: readers beside the writer, locks waited for.
                assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        engine.dispose()
