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


@pytest.mark.databases
def test_read_row_answers_as_the_engine_would(any_database_url):
    """db.read_row (the reads every web request makes) gives the row SQLAlchemy would, None
    when there is none, SQLAlchemy's own errors, and gives its connection back."""
    from sqlalchemy.exc import SQLAlchemyError

    from splynx_ippay.db import read_row

    engine = make_engine(any_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE settings_stamp SET version = 7 WHERE id = 1"))
        assert tuple(read_row(engine, "SELECT version FROM settings_stamp WHERE id = ?", 1)) \
            == (7,)
        assert read_row(engine, "SELECT version FROM settings_stamp WHERE id = ?", 2) is None
        count, latest = read_row(engine, "SELECT count(*), max(updated_at) FROM "
                                         "payment_attempts WHERE customer_id = ?", 5)
        assert (count, latest) == (0, None)
        with pytest.raises(SQLAlchemyError):
            read_row(engine, "SELECT version FROM no_such_table WHERE id = ?", 1)
        assert engine.pool.checkedout() == 0
        # The pooled connection is still good after the error.
        assert tuple(read_row(engine, "SELECT version FROM settings_stamp WHERE id = ?", 1)) \
            == (7,)
    finally:
        engine.dispose()


def test_sqlite_read_row_keeps_its_own_connections_and_no_snapshot(database_url):
    """On SQLite the reads keep connections of their own, outside the pool, as many as read
    at once: a reader sees what another process committed a moment before, and holds no
    read snapshot that would keep the write-ahead log from being checkpointed."""
    import threading

    from splynx_ippay.db import read_row

    stamp = "SELECT version FROM settings_stamp WHERE id = ?"
    engine, other = make_engine(database_url), make_engine(database_url)
    try:
        assert engine.dialect.name == "sqlite"
        for version in (11, 12):
            with other.begin() as connection:  # another process, its own connections
                connection.execute(text("UPDATE settings_stamp SET version = :v WHERE id = 1"),
                                   {"v": version})
            assert tuple(read_row(engine, stamp, 1)) == (version,)
        with other.connect() as connection:
            busy, _, _ = connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
        assert busy == 0
        # Forty threads reading one after the other share one connection, not forty.
        threads = [threading.Thread(target=read_row, args=(engine, stamp, 1)) for _ in range(40)]
        for thread in threads:
            thread.start()
            thread.join()
        kept = engine._ippay_readers
        assert kept.qsize() == 1 and not kept.get().in_transaction
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()
        other.dispose()


@pytest.mark.databases
def test_a_transaction_the_database_ends_to_break_a_deadlock_is_run_again(any_database_url):
    """MariaDB and PostgreSQL end one of two transactions that wait for each other. The
    journal's status moves run through db.run_transaction, which runs the ended one again
    (a customer once got a 500 where MariaDB broke such a deadlock under many payers)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from splynx_ippay.db import make_session_factory, run_transaction

    engine = make_engine(any_database_url)
    if engine.dialect.name == "sqlite":
        engine.dispose()
        pytest.skip("SQLite lets one writer in at a time: the others wait, none deadlocks")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE deadlock_probe "
                                    "(id INTEGER PRIMARY KEY, v INTEGER NOT NULL)"))
            connection.execute(text("INSERT INTO deadlock_probe (id, v) VALUES (1, 0), (2, 0)"))
        sessions = make_session_factory(engine)
        holding = {1: threading.Event(), 2: threading.Event()}
        runs = []
        bump = text("UPDATE deadlock_probe SET v = v + 1 WHERE id = :id")

        def crossing(first, then):
            # Each takes its own row, then asks for the other's: one of them must be ended.
            def work(session):
                runs.append(first)
                session.execute(bump, {"id": first})
                holding[first].set()
                holding[then].wait(10)
                session.execute(bump, {"id": then})
            return lambda: run_transaction(sessions, work)

        with ThreadPoolExecutor(2) as pool:
            done = [pool.submit(crossing(1, 2)), pool.submit(crossing(2, 1))]
            for future in done:
                future.result(timeout=30)  # neither raised: the ended one ran again
        with engine.connect() as connection:
            values = dict(connection.execute(text("SELECT id, v FROM deadlock_probe")).all())
        # Three runs (one of them ended by the database, which wrote nothing); each
        # transaction's two moves made exactly once.
        assert len(runs) == 3 and sorted(set(runs)) == [1, 2]
        assert values == {1: 2, 2: 2}
    finally:
        engine.dispose()
