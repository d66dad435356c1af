"""SQLite writers of one process take turns on a lock (db.py ``_WriteTurn``), not on
SQLite's sleeping busy handler; a write made ``first_in_line`` (the charge worker's move to
sent, with its gateway slot held) goes before the others waiting."""

import contextlib
import threading
import time

import pytest
from sqlalchemy import text

from splynx_ippay.db import _WriteTurn, first_in_line, make_engine


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/turns.db")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE log (who TEXT, at REAL)"))
    yield engine
    engine.dispose()


def _writer(engine, who, started, urgent=False):
    def write():
        started.set()
        with (first_in_line() if urgent else contextlib.nullcontext()), engine.begin() as connection:
            connection.execute(text("INSERT INTO log VALUES (:who, :at)"),
                               {"who": who, "at": time.monotonic()})

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def _hold_the_file(engine):
    """A connection inside a write transaction (it holds the turn until ``release``)."""
    connection = engine.connect()
    transaction = connection.begin()
    connection.execute(text("INSERT INTO log VALUES ('holder', 0)"))
    return connection, transaction


def test_an_urgent_write_goes_before_those_already_waiting(engine):
    connection, transaction = _hold_the_file(engine)
    waiting = []
    for name in ("first", "second"):
        started = threading.Event()
        waiting.append(_writer(engine, name, started))
        started.wait()
        time.sleep(0.05)  # it is waiting for the turn now
    started = threading.Event()
    waiting.append(_writer(engine, "urgent", started, urgent=True))
    started.wait()
    time.sleep(0.05)
    # Nobody wrote while the holder had the turn.
    with engine.connect() as reader:
        assert reader.execute(text("SELECT count(*) FROM log")).scalar() == 0
    transaction.commit()
    connection.close()
    for thread in waiting:
        thread.join(timeout=10)
    with engine.connect() as reader:
        order = [row.who for row in reader.execute(text("SELECT who FROM log ORDER BY rowid"))]
    assert order[0] == "holder"
    assert order[1] == "urgent"
    assert set(order[2:]) == {"first", "second"}


def test_a_rolled_back_or_closed_transaction_gives_the_turn_back(engine):
    connection, transaction = _hold_the_file(engine)
    transaction.rollback()
    connection.close()
    connection, _transaction = _hold_the_file(engine)
    connection.close()  # closed inside its transaction
    with engine.begin() as writer:
        writer.execute(text("INSERT INTO log VALUES ('after', 1)"))
    with engine.connect() as reader:
        assert [r.who for r in reader.execute(text("SELECT who FROM log"))] == ["after"]


def test_readers_never_wait_for_the_turn(engine):
    connection, transaction = _hold_the_file(engine)
    try:
        started = time.monotonic()
        with engine.connect() as reader:
            assert reader.execute(text("SELECT count(*) FROM log")).scalar() == 0
        assert time.monotonic() - started < 1.0
    finally:
        transaction.rollback()
        connection.close()


def test_no_one_waits_for_the_turn_past_the_timeout():
    turn = _WriteTurn()
    assert turn.acquire(False, 1.0)
    started = time.monotonic()
    assert not turn.acquire(False, 0.1)
    assert not turn.acquire(True, 0.1)
    assert time.monotonic() - started < 1.0
    turn.release()
    assert turn.acquire(False, 0.1)
