"""500-invoice charge runs under faults: the worker killed three times, the gateway timing
out on 10 % of calls (half after committing), Splynx failing 10 % of payment posts.

After each: every invoice charged at most once at the simulator, every approval posted to
Splynx exactly once, and the run's counts equal the simulator's and the emulator's ledgers.
"""

import datetime as dt
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import select

from splynx_ippay.db import session_scope
from splynx_ippay.models import ChargeItem, PaymentAttempt
from splynx_ippay.services.charge_runs import runs as charge_runs
from splynx_ippay.services.charge_runs.filters import RunFilters

from .conftest import ROOT, build_staff_world, run_worker_until_done, save_cards

N_INVOICES = 500
N_CUSTOMERS = 50


@pytest.fixture
def big_world(database_url):
    world = build_staff_world(database_url, {"extra_invoices": N_INVOICES,
                                             "extra_customers": N_CUSTOMERS})
    save_cards(world.ctx, range(4, 4 + N_CUSTOMERS))
    yield world
    world.stop()


def start_run(world):
    run = charge_runs.create_run(world.ctx, admin_id=1, period_from=dt.date(2024, 6, 1),
                              period_to=dt.date(2024, 12, 31), filters=RunFilters())
    return run.id


def check_ledgers(world, run_id):
    addon = world.ctx
    progress = charge_runs.progress(addon, run_id)
    assert progress["state"] == "done" and progress["remaining"] == 0, progress
    with session_scope(addon.sessions) as session:
        attempts = {a.transaction_id: a for a in session.execute(select(PaymentAttempt)).scalars()}
        items = session.execute(select(ChargeItem).where(ChargeItem.run_id == run_id)).scalars().all()
    assert len(items) == N_INVOICES
    ledger = world.sim_call("ledger")["transactions"]
    sales = [t for t in ledger if t["type"] == "SALE"]
    # Every SALE the gateway saw is one of our attempts, and no invoice was charged twice.
    assert all(t["transaction_id"] in attempts for t in sales)
    assert len({t["transaction_id"] for t in sales}) == len(sales)
    approved = [t for t in sales if t["action_code"] == "000"]
    per_invoice = Counter(attempts[t["transaction_id"]].invoice_id for t in approved)
    assert per_invoice and max(per_invoice.values()) == 1
    # Every approval is exactly one Splynx payment.
    payments = [p for p in world.emu_call("state")["payments"] if p.get("field_1")]
    by_tid = Counter(p["field_1"] for p in payments)
    assert sorted(by_tid) == sorted(t["transaction_id"] for t in approved)
    assert set(by_tid.values()) == {1}
    # The run's counts equal both ledgers.
    assert progress["charged"] == len(approved) == len(payments)
    assert progress["charged_cents"] == sum(int(t["amount"]) for t in approved)
    statuses = Counter(i.status for i in items)
    assert statuses["charged"] + statuses["declined"] + statuses["error"] + statuses["skipped"] \
        == N_INVOICES
    for item in items:
        if item.status == "charged":
            assert attempts[item.transaction_id].status == "posted"
    return progress, statuses


def test_worker_killed_three_times_resumes_without_charging_twice(big_world):
    world = big_world
    world.sim_call("config", {"latency_ms": 20})
    run_id = start_run(world)
    rng = random.Random(4)
    env = world.env()
    command = [sys.executable, "-m", "splynx_ippay.cli", "worker", "--concurrency", "8",
               "--settle-after", "1.5", "--retry-after", "0.3", "--poll", "0.05"]
    kills = 0
    while kills < 3:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, 2.5))
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
    progress = charge_runs.progress(world.ctx, run_id)
    assert 0 < progress["remaining"] < N_INVOICES, progress  # killed mid-run
    child = subprocess.run(command + ["--exit-when-idle"], cwd=ROOT, env=env, timeout=120,
                           capture_output=True, text=True)
    assert child.returncode == 0, child.stderr[-3000:]
    progress, statuses = check_ledgers(world, run_id)
    # The seeded amounts all approve. A worker killed after marking an attempt sent but
    # before the request left leaves an attempt that ENQ finds never reached the gateway:
    # "Nothing was charged", an error a rerun picks up. Nothing else may be left.
    odd = [(i.invoice_id, i.status, i.message) for i in charge_runs.items(
        world.ctx, run_id, limit=N_INVOICES) if i.status != "charged"]
    assert all(status == "error" and "Nothing was charged" in message
               for _, status, message in odd), odd
    assert statuses["charged"] + statuses["error"] == N_INVOICES
    assert statuses["charged"] >= N_INVOICES - 3 * 8


def test_gateway_timeouts_half_after_commit(big_world):
    world = big_world
    run_id = start_run(world)
    world.sim_call("faults", {"rate": 0.1, "kind": "timeout_commit", "delay_s": 1.3,
                              "types": ["SALE"], "seed": 1})
    stop = threading.Event()

    def switch_half_way():
        # Half the run's timeouts commit the charge, the other half do not.
        while not stop.wait(0.05):
            if charge_runs.progress(world.ctx, run_id)["remaining"] <= N_INVOICES // 2:
                world.sim_call("faults", {"rate": 0.1, "kind": "timeout_no_commit",
                                          "delay_s": 1.3, "types": ["SALE"]})
                return

    switcher = threading.Thread(target=switch_half_way)
    switcher.start()
    try:
        run_worker_until_done(world.ctx, concurrency=8, settle_after=1.5)
    finally:
        stop.set()
        switcher.join()
    progress, statuses = check_ledgers(world, run_id)
    # The no-commit timeouts were found by ENQ to have charged nothing: errors, not charges.
    assert statuses["error"] > 0 and statuses["charged"] + statuses["error"] == N_INVOICES
    enqs = [r for r in world.sim_call("requests")["requests"] if "<TransactionType>ENQ" in r["body"]]
    assert len(enqs) >= statuses["error"]


def test_splynx_failing_payment_posts_are_retried_once_each(big_world):
    world = big_world
    run_id = start_run(world)
    world.emu_call("faults", {"rate": 0.1, "seed": 7, "status": 500,
                              "path_regex": "finance/payments", "method": "POST"})
    run_worker_until_done(world.ctx, concurrency=8)
    progress, statuses = check_ledgers(world, run_id)
    assert statuses["charged"] == N_INVOICES
    with session_scope(world.ctx.sessions) as session:
        retried = session.execute(select(PaymentAttempt).where(PaymentAttempt.post_tries > 1)
                                  ).scalars().all()
    assert retried  # some posts failed and were retried
