"""``splynx-ippay charge`` and ``doctor``; two workers sharing MariaDB/PostgreSQL; the
models and migration 0002 agree on every database."""

import datetime as dt
import subprocess
import sys
import threading
from collections import Counter

import pytest
from sqlalchemy import select

from splynx_ippay.db import make_engine, session_scope
from splynx_ippay.models import Base, PaymentAttempt
from splynx_ippay.services.charge_runs import runs as charge_runs
from splynx_ippay.services.charge_runs.filters import RunFilters

from .conftest import ROOT, build_staff_world, run_worker_until_done, save_cards


def cli(world, *args, env=None):
    return subprocess.run([sys.executable, "-m", "splynx_ippay.cli", *args], cwd=ROOT,
                          env=env or world.env(), capture_output=True, text=True, timeout=120)


def test_charge_command_dry_run_then_charge(staff_world):
    save_cards(staff_world.ctx, [1, 2])
    dry = cli(staff_world, "charge", "--from", "2024-01-01", "--to", "2024-12-31", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "9 unpaid, 3 customers" in dry.stdout and "Dry run: nothing charged." in dry.stdout
    assert "without a saved card (not charged): 1: 3" in dry.stdout
    assert staff_world.sim_call("ledger")["transactions"] == [] or all(
        t["type"] == "TOKENIZE" for t in staff_world.sim_call("ledger")["transactions"])
    bad = cli(staff_world, "charge", "--from", "2024-12-31", "--to", "2024-01-01")
    assert bad.returncode == 2 and "starts after it ends" in bad.stderr
    run = cli(staff_world, "charge", "--from", "2024-01-01", "--to", "2024-12-31", "--yes", "--progress",
              "--settle-after", "1", "--retry-after", "0.2")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "charged 5" in run.stdout and "declined 2" in run.stdout and "skipped 2" in run.stdout
    assert "done" in run.stdout


def test_doctor_says_what_is_wrong(staff_world):
    ok = cli(staff_world, "doctor")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "everything looks right" in ok.stdout
    wrong_key = cli(staff_world, "doctor", env={**staff_world.env(),
                                                "SPLYNX_IPPAY_SPLYNX_API_SECRET": "nope"})
    assert wrong_key.returncode == 1 and "wrong API key" in wrong_key.stdout
    wrong_terminal = cli(staff_world, "doctor", env={**staff_world.env(),
                                                     "SPLYNX_IPPAY_IPPAY_TERMINAL_ID": "WRONG"})
    assert wrong_terminal.returncode == 1 and "wrong Terminal ID" in wrong_terminal.stdout
    down = cli(staff_world, "doctor", env={**staff_world.env(),
                                           "SPLYNX_IPPAY_SPLYNX_URL": "http://127.0.0.1:9"})
    assert down.returncode == 1 and "Splynx is down or unreachable" in down.stdout


def test_models_match_the_migrations(any_database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(any_database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


@pytest.mark.parametrize("kind", ["mariadb", "postgresql"])
def test_two_workers_share_a_server_database(kind, tmp_path):
    from tests.conftest import make_database

    url, drop = make_database(kind, tmp_path)
    world = build_staff_world(url, {"extra_invoices": 120, "extra_customers": 12})
    try:
        save_cards(world.ctx, range(4, 16))
        run = charge_runs.create_run(world.ctx, admin_id=1, period_from=dt.date(2024, 6, 1),
                                  period_to=dt.date(2024, 12, 31), filters=RunFilters())
        workers = [threading.Thread(target=run_worker_until_done, args=(world.ctx,),
                                    kwargs={"concurrency": 4}) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        progress = charge_runs.progress(world.ctx, run.id)
        assert progress["state"] == "done" and progress["charged"] == 120
        sales = [t for t in world.sim_call("ledger")["transactions"] if t["type"] == "SALE"]
        with session_scope(world.ctx.sessions) as session:
            attempts = {a.transaction_id: a.invoice_id
                        for a in session.execute(select(PaymentAttempt)).scalars()}
        assert len(sales) == 120 and max(Counter(attempts[t["transaction_id"]]
                                                 for t in sales).values()) == 1
        payments = [p for p in world.emu_call("state")["payments"] if p.get("field_1")]
        assert len(payments) == 120
    finally:
        world.ctx.sessions.kw["bind"].dispose()
        world.stop()
        drop()
