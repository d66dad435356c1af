"""Benchmark of a charge run (issue 4): not a test, prints figures.

1. 2,000 invoices, simulator latency 200 ms a call, concurrency 8 (the terminal's budget,
   the module setting ``charge_concurrency``). The run can take no less than
   2,000 × 0.2 s / 8 = 50 s; prints the time and its ratio to that bound (goal: at least
   0.95 of the bound's rate), once with the emulator answering at once and once with 80 ms
   per Splynx API call (a real Splynx answers in tens to hundreds of milliseconds, and each
   charge makes three calls); the worker's CPU seconds per 1,000 charges (goal: 9 s or
   less) and its peak memory (goal: under 100 MB).
2. 10,000 invoices against 2,000 at latency 0: the time ratio (goal: at most 5.5).

The simulator and the emulator run in their own process, the worker in its own
(``splynx-ippay worker``), so the worker's CPU and memory are its own. The worker runs as its
service does: started (and its start timed apart) before the run is made; a run's time is
from its creation to its end, and the worker's CPU and memory include its start. Run it as
``python bench/charge_run.py`` (``--quick`` for smaller numbers) or call :func:`main`.
"""

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

_SERVERS = r"""
import json, sys, threading
sys.path.insert(0, sys.argv[2])
from sandbox.serve import BackgroundServer
from sandbox.ippay import create_app as create_sim
from sandbox.splynx import create_app as create_splynx
n = int(sys.argv[1])
if sys.argv[3] == "sim":
    server = BackgroundServer(create_sim()).start()
else:
    server = BackgroundServer(create_splynx({"extra_invoices": n,
                                             "extra_customers": max(1, n // 10),
                                             **json.loads(sys.argv[4])})).start()
print(json.dumps(server.url), flush=True)
sys.stdin.read()
"""


class _Servers:
    """The simulator and the emulator, each in its own process (its own GIL)."""

    def __init__(self, n_invoices, emulator_config=None):
        self.processes, urls = [], {}
        for kind in ("sim", "emu"):
            process = subprocess.Popen([sys.executable, "-c", _SERVERS, str(n_invoices), ROOT,
                                        kind, json.dumps(emulator_config or {})],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True, stderr=subprocess.DEVNULL)
            self.processes.append(process)
            urls[kind] = json.loads(process.stdout.readline())
        self.urls = urls

    def stop(self):
        for process in self.processes:
            process.stdin.close()
            process.wait(timeout=30)


def _wait_until(worker, errors, ready):
    """``time.monotonic()`` once ``ready()`` is true (asked every 20 ms); raises with the
    worker's last words if it exits first."""
    while worker.poll() is None:
        if ready():
            return time.monotonic()
        time.sleep(0.02)
    errors.seek(0)
    raise RuntimeError(f"the worker exited with {worker.returncode}: {errors.read()[-2000:]}")


def _one_run(n_invoices, latency_ms, concurrency, splynx_latency_ms=0, preview=False):
    """Time one run of ``n_invoices`` (and, with ``preview``, the staff preview of it first);
    returns a dict of figures."""
    import requests
    from sqlalchemy import func, select

    from splynx_ippay import db
    from splynx_ippay.config import validate
    from splynx_ippay.db import session_scope
    from splynx_ippay.ippay import Card as GatewayCard
    from splynx_ippay.models import Card, ChargeRun, ChargeWorker, RunState
    from splynx_ippay.context import build_context
    from splynx_ippay.services.charge_runs import runs as charge_runs
    from splynx_ippay.services.charge_runs import selection
    from splynx_ippay.services.charge_runs.filters import RunFilters
    from splynx_ippay.services.registration import register
    from splynx_ippay.services.settings import MODULE_NAME
    from tests.support import default_gateway

    servers = _Servers(n_invoices)
    urls = servers.urls
    workdir = tempfile.mkdtemp(prefix="ippay-bench-")
    database_url = f"sqlite:///{workdir}/bench.db"
    try:
        db.upgrade(database_url)
        settings = validate({"SPLYNX_URL": urls["emu"], "SPLYNX_API_KEY": "sandbox-key",
                             "SPLYNX_API_SECRET": "sandbox-secret",
                             "IPPAY_URL": urls["sim"] + "/ippay", "DATABASE_URL": database_url,
                             "IPPAY_READ_TIMEOUT": 30.0})
        addon = build_context(settings)
        register(addon.splynx)
        # The terminal's budget, shared by every worker (a worker's --concurrency only caps
        # its own share).
        addon.splynx.put_module_config(MODULE_NAME, {"charge_concurrency": str(concurrency)})
        token = default_gateway(addon).tokenize(
            GatewayCard("4111111111111111", 12, 2031, holder="B")).token
        n_customers = max(1, n_invoices // 10)
        with session_scope(addon.sessions) as session:
            for cid in range(4, 4 + n_customers):
                session.add(Card(customer_id=cid, token=token, brand="Visa", last4="1111",
                                 exp_month=12, exp_year=2031, holder_name="B", is_default=True))
        requests.post(urls["sim"] + "/_sim/config", json={"latency_ms": latency_ms}, timeout=10)
        # After the seeding, so that only the run meets Splynx's latency.
        requests.post(urls["emu"] + "/_sandbox/settings", json={"latency_ms": splynx_latency_ms},
                      timeout=10)
        period = dict(period_from=dt.date(2024, 1, 1), period_to=dt.date(2025, 12, 31))
        figures = {}
        if preview:
            tracemalloc.start()
            started = time.monotonic()
            shown = selection.preview(addon, filters=RunFilters(), **period)
            figures.update(preview_seconds=time.monotonic() - started,
                           preview_invoices=shown["invoices"],
                           preview_peak_mb=tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
        env = {**os.environ, "PYTHONPATH": ROOT, "SPLYNX_IPPAY_CONFIG": "/nonexistent/config.ini",
               "SPLYNX_IPPAY_SPLYNX_URL": urls["emu"], "SPLYNX_IPPAY_SPLYNX_API_KEY": "sandbox-key",
               "SPLYNX_IPPAY_SPLYNX_API_SECRET": "sandbox-secret",
               "SPLYNX_IPPAY_IPPAY_URL": urls["sim"] + "/ippay",
               "SPLYNX_IPPAY_IPPAY_READ_TIMEOUT": "30", "SPLYNX_IPPAY_DATABASE_URL": database_url,
               "SPLYNX_IPPAY_WEB_LOG_LEVEL": "WARNING"}
        def registered():
            with session_scope(addon.sessions) as session:
                return session.execute(select(func.count()).select_from(ChargeWorker)).scalar()

        def done():
            with session_scope(addon.sessions) as session:
                return session.get(ChargeRun, run.id).state == RunState.DONE

        with tempfile.TemporaryFile("w+") as errors:
            # The worker runs as its service does: started before the run is made, and the
            # run's time is from its creation to its end. How long the worker takes to start
            # is printed apart.
            launched = time.monotonic()
            worker = subprocess.Popen([sys.executable, "-m", "splynx_ippay.cli", "worker",
                                       "--concurrency", str(concurrency), "--poll", "0.05"],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors)
            try:
                figures["worker_start_seconds"] = _wait_until(worker, errors, registered) - launched
                # Its first housekeeping pass (settings, reconciliation, autopay) done.
                time.sleep(2)
                started = time.monotonic()
                run = charge_runs.create_run(addon, admin_id=None, filters=RunFilters(),
                                             source="bench", **period)
                elapsed = _wait_until(worker, errors, done) - started
                worker.send_signal(signal.SIGTERM)
                # The worker's own usage, its start included (RUSAGE_CHILDREN would add the
                # servers of earlier runs).
                _, status, usage = os.wait4(worker.pid, 0)
                worker.returncode = os.waitstatus_to_exitcode(status)
            finally:
                if worker.poll() is None:  # the benchmark failed: leave no worker behind
                    worker.kill()
                    worker.wait()
            if worker.returncode:
                errors.seek(0)
                raise RuntimeError(errors.read()[-2000:])
        progress = charge_runs.progress(addon, run.id)
        return {**figures, "invoices": n_invoices, "latency_ms": latency_ms,
                "concurrency": concurrency, "seconds": elapsed, "charged": progress["charged"],
                "state": progress["state"], "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "peak_rss_mb": usage.ru_maxrss / 1024}
    finally:
        servers.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    args = parser.parse_args(argv)
    small, large, latency = (400, 2000, 200) if args.quick else (2000, 10000, 200)
    concurrency = 8

    bound = small * latency / 1000 / concurrency
    for splynx_latency in (0, 80):
        run = _one_run(small, latency, concurrency, splynx_latency)
        print(f"charge run: {run['invoices']} invoices, gateway latency {latency} ms, Splynx "
              f"latency {splynx_latency} ms, concurrency {concurrency}: {run['seconds']:.1f} s "
              f"(bound {bound:.0f} s), rate ratio {bound / run['seconds']:.2f} (goal >= 0.95); "
              f"charged {run['charged']} ({run['state']}); the worker started in "
              f"{run['worker_start_seconds']:.2f} s before")
        print(f"  worker CPU: {run['cpu_seconds'] / run['charged'] * 1000:.1f} s per 1,000 "
              f"charges (goal <= 9); worker peak memory: {run['peak_rss_mb']:.0f} MB "
              f"(goal < 100 MB)")

    base = _one_run(small, 0, concurrency)
    big = _one_run(large, 0, concurrency)
    ratio = big["seconds"] / base["seconds"]
    print(f"latency 0: {small} invoices {base['seconds']:.1f} s, {large} invoices "
          f"{big['seconds']:.1f} s: time ratio {ratio:.2f} for {large // small}x the invoices "
          f"(goal <= 5.5); worker peak memory {big['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
