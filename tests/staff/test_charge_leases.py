"""One concurrency budget per terminal, shared by every worker (services/charge_runs/
leases.py): on each database the leases never add up to more than the budget, a dead
worker's share comes back when its leases expire, and two workers charging one run never
have more gateway calls in flight together than the module setting allows."""

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import func, select

from splynx_ippay.config import validate
from splynx_ippay.context import build_context
from splynx_ippay.db import session_scope
from splynx_ippay.models import ChargeWorker, GatewayLease, ItemStatus as I
from splynx_ippay.services.charge_runs import leases, runs as charge_runs
from splynx_ippay.services.charge_runs.filters import RunFilters
from splynx_ippay.services.charge_runs.worker import Worker
from splynx_ippay.services.settings import MODULE_NAME

from .conftest import build_staff_world, save_cards

KEY = "test:TESTTERMINAL"


@pytest.fixture
def ctx(any_database_url):
    """A context on each database; these tests never call Splynx or the gateway."""
    context = build_context(validate({
        "SPLYNX_URL": "http://127.0.0.1:9", "SPLYNX_API_KEY": "k", "SPLYNX_API_SECRET": "s",
        "IPPAY_URL": "http://127.0.0.1:9/ippay", "DATABASE_URL": any_database_url}))
    yield context
    context.engine.dispose()


def held_by(ctx, key=KEY):
    now = dt.datetime.utcnow()
    with session_scope(ctx.sessions) as session:
        return dict(session.execute(
            select(GatewayLease.holder, func.count()).where(
                GatewayLease.terminal_key == key, GatewayLease.holder.is_not(None),
                GatewayLease.expires_at > now)
            .group_by(GatewayLease.holder)).all())


def test_workers_racing_for_leases_never_hold_more_than_the_budget(ctx):
    budget, tokens, errors = 5, [f"worker-{n}" for n in range(4)], []
    barrier = threading.Barrier(len(tokens))

    def take(token, share):
        try:
            barrier.wait()
            for _ in range(15):
                leases.hold(ctx, token, KEY, budget=budget, share=share, busy=0, ttl_seconds=30)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(token, 3)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    held = held_by(ctx)
    assert sum(held.values()) == budget, held
    assert max(held.values()) <= 3


def test_a_dead_workers_leases_come_back_when_they_expire(ctx):
    assert leases.hold(ctx, "dead", KEY, budget=4, share=4, busy=0, ttl_seconds=1) == 4
    assert leases.hold(ctx, "alive", KEY, budget=4, share=2, busy=0, ttl_seconds=30) == 0
    time.sleep(1.5)
    assert leases.hold(ctx, "alive", KEY, budget=4, share=2, busy=0, ttl_seconds=30) == 2
    assert held_by(ctx) == {"alive": 2}


def test_a_worker_gives_back_what_is_above_its_share_once_its_calls_end(ctx):
    assert leases.hold(ctx, "a", KEY, budget=4, share=4, busy=0, ttl_seconds=30) == 4
    # A second worker came: the share is now 2, but three calls still run on the leases.
    assert leases.hold(ctx, "a", KEY, budget=4, share=2, busy=3, ttl_seconds=30) == 3
    assert leases.hold(ctx, "a", KEY, budget=4, share=2, busy=1, ttl_seconds=30) == 2
    assert leases.hold(ctx, "b", KEY, budget=4, share=2, busy=0, ttl_seconds=30) == 2
    # The budget lowered to 2: leases above it go back first.
    assert leases.hold(ctx, "b", KEY, budget=2, share=1, busy=0, ttl_seconds=30) == 0
    assert leases.hold(ctx, "a", KEY, budget=2, share=2, busy=0, ttl_seconds=30) == 2
    with session_scope(ctx.sessions) as session:
        slots = session.execute(select(GatewayLease.slot).where(
            GatewayLease.holder == "a")).scalars().all()
    assert sorted(slots) == [0, 1]
    leases.release(ctx, "a")
    assert held_by(ctx) == {}


def test_the_fair_share_counts_live_workers_only(ctx):
    with session_scope(ctx.sessions) as session:
        session.add(ChargeWorker(token="one", host="h", pid=1))
        session.add(ChargeWorker(token="two", host="h", pid=2))
        session.add(ChargeWorker(token="gone", host="h", pid=3,
                                 heartbeat_at=dt.datetime(2000, 1, 1)))
    assert leases.fair_share(ctx, 5, lease_seconds=60) == 3
    assert leases.fair_share(ctx, 5, lease_seconds=60, cap=2) == 2


@pytest.fixture
def busy_world(database_url):
    """The staff world with 60 more invoices of 12 more customers."""
    world = build_staff_world(database_url, {"extra_invoices": 60, "extra_customers": 12})
    yield world
    world.stop()


def test_two_workers_on_one_run_stay_within_the_terminals_budget(busy_world):
    """Both workers may run 8 at a time (``--concurrency 8``), the terminal's budget is 3:
    together they never have more than 3 SALEs in flight, and the run completes."""
    addon = busy_world.ctx
    addon.splynx.put_module_config(MODULE_NAME, {"charge_concurrency": "3"})
    addon.module_settings.bump()
    save_cards(addon, range(1, 16))
    busy_world.sim_call("config", {"latency_ms": 100})
    run = charge_runs.create_run(addon, admin_id=1, period_from=dt.date(2024, 1, 1),
                                 period_to=dt.date(2024, 12, 31), filters=RunFilters())
    workers = [Worker(addon, concurrency=8, run_ids=[run.id], poll=0.02, settle_after=0.5,
                      retry_after=0.2) for _ in range(2)]
    peak, done = [0], threading.Event()

    def watch():
        while not done.is_set():
            in_flight = sum(w.slots.busy(t) for w in workers for t in w.slots.terminals())
            peak[0] = max(peak[0], in_flight)
            time.sleep(0.002)

    threads = [threading.Thread(target=w.run, kwargs={"exit_when_idle": True}) for w in workers]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    done.set()
    watcher.join()
    items = charge_runs.items(addon, run.id)
    charged = [i for i in items if i.status == I.CHARGED]
    assert len(charged) >= 60 and all(i.status in (I.CHARGED, I.SKIPPED, I.DECLINED)
                                      for i in items)
    assert all(w.slots.peak <= 3 for w in workers)
    assert 2 <= peak[0] <= 3, peak
    assert held_by(addon, leases.terminal_key(workers[0].slots.terminals()[0])) == {}


def test_a_vanished_local_workers_leases_come_back_at_once(ctx):
    """A worker SIGKILLed on this host is certainly not sending anything: a worker started
    after it takes its share at once, not when the leases expire (a restart resumes)."""
    import socket
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with session_scope(ctx.sessions) as session:
        session.add(ChargeWorker(token="killed", host=socket.gethostname()[:100], pid=gone.pid))
    assert leases.hold(ctx, "killed", KEY, budget=4, share=4, busy=0, ttl_seconds=300) == 4
    restarted = Worker(ctx, concurrency=4)
    restarted._register()
    restarted.recover()
    assert held_by(ctx) == {}
    assert leases.hold(ctx, restarted.token, KEY, budget=4, share=4, busy=0,
                       ttl_seconds=30) == 4
    restarted._unregister()
