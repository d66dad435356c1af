"""Benchmark of an autopay day (issue 11): not a test, prints figures.

20,000 unpaid invoices issued today, 2,000 customers with a card for automatic payments and
one schedule "on the day of issue". Prints the time of the selection (the day's invoices
read from Splynx page by page, as the run reads them) and of the whole day: the worker
started as the service runs it (``splynx-ippay worker``, automatic, here with
``--exit-when-idle``) fires the schedule, selects and charges; then its CPU and peak memory.
Simulator latency 0 ms: the figures are the add-on's own cost. ``--quick`` for 2,000 invoices.
"""

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.charge_run import _Servers  # noqa: E402  (after the path is set)


def run_day(n_invoices, concurrency=8):
    from sqlalchemy import func, select

    from splynx_ippay import db
    from splynx_ippay.config import validate
    from splynx_ippay.context import build_context
    from splynx_ippay.db import session_scope
    from splynx_ippay.ippay import Card as GatewayCard
    from splynx_ippay.models import Card, ChargeItem, ChargeRun
    from splynx_ippay.services.autopay import parse_schedule
    from splynx_ippay.services.charge_runs import runs as charge_runs
    from splynx_ippay.services.charge_runs.selection import invoice_pages
    from splynx_ippay.services.registration import register
    from tests.support import default_gateway

    today = dt.date.today()
    servers = _Servers(n_invoices, {"extra_invoice_date": today.isoformat()})
    urls = servers.urls
    workdir = tempfile.mkdtemp(prefix="ippay-bench-")
    database_url = f"sqlite:///{workdir}/bench.db"
    try:
        db.upgrade(database_url)
        settings = validate({"SPLYNX_URL": urls["emu"], "SPLYNX_API_KEY": "sandbox-key",
                             "SPLYNX_API_SECRET": "sandbox-secret",
                             "IPPAY_URL": urls["sim"] + "/ippay", "DATABASE_URL": database_url,
                             "IPPAY_READ_TIMEOUT": 30.0})
        ctx = build_context(settings)
        register(ctx.splynx)
        schedule = {"id": "issue", "name": "On the day of issue", "trigger": "issue_day",
                    "at": "00:00", "mode": "due", "statuses": ["active"]}
        ctx.splynx.put_module_config("splynx_ippay_addon", {
            "autopay_schedules": json.dumps([schedule]), "charge_concurrency": concurrency})
        token = default_gateway(ctx).tokenize(
            GatewayCard("4111111111111111", 12, 2031, holder="B")).token
        with session_scope(ctx.sessions) as session:
            for cid in range(4, 4 + max(1, n_invoices // 10)):
                session.add(Card(customer_id=cid, token=token, brand="Visa", last4="1111",
                                 exp_month=12, exp_year=2031, holder_name="B", is_default=True,
                                 autopay=True))
        env = {**os.environ, "PYTHONPATH": ROOT, "SPLYNX_IPPAY_CONFIG": "/nonexistent/config.ini",
               "SPLYNX_IPPAY_SPLYNX_URL": urls["emu"], "SPLYNX_IPPAY_SPLYNX_API_KEY": "sandbox-key",
               "SPLYNX_IPPAY_SPLYNX_API_SECRET": "sandbox-secret",
               "SPLYNX_IPPAY_IPPAY_URL": urls["sim"] + "/ippay",
               "SPLYNX_IPPAY_IPPAY_READ_TIMEOUT": "30", "SPLYNX_IPPAY_DATABASE_URL": database_url,
               "SPLYNX_IPPAY_WEB_LOG_LEVEL": "WARNING"}
        # The selection alone, as the run reads it: the day's invoices, page by page.
        started = time.monotonic()
        selected = sum(len(page) for _, page in invoice_pages(
            ctx, today, today, parse_schedule(schedule).filters()))
        selection_seconds = time.monotonic() - started
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        worker = subprocess.run([sys.executable, "-m", "splynx_ippay.cli", "worker",
                                 "--exit-when-idle", "--poll", "0.05"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if worker.returncode:
            raise RuntimeError(worker.stderr[-2000:])
        with session_scope(ctx.sessions) as session:
            run = session.execute(select(ChargeRun)).scalar_one()
            items = session.execute(select(func.count()).select_from(ChargeItem)
                                    .where(ChargeItem.run_id == run.id)).scalar()
        progress = charge_runs.progress(ctx, run.id)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return {"invoices": n_invoices, "seconds": elapsed, "charged": progress["charged"],
                "state": progress["state"], "schedule_key": run.schedule_key,
                "items": items, "selected": selected, "selection_seconds": selection_seconds,
                "cpu_seconds": cpu, "peak_rss_mb": after.ru_maxrss / 1024}
    finally:
        servers.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 invoices (a smoke test)")
    args = parser.parse_args(argv)
    figures = run_day(2000 if args.quick else 20000)
    print(f"autopay day: {figures['invoices']} invoices issued today, run "
          f"{figures['schedule_key']} with {figures['items']} charges: "
          f"{figures['charged']} charged ({figures['state']})")
    print(f"selection ({figures['selected']} invoices read page by page): "
          f"{figures['selection_seconds']:.1f} s;"
          f" the whole day (worker start to exit): {figures['seconds']:.1f} s, "
          f"{figures['invoices'] / figures['seconds']:.0f} invoices/s")
    print(f"worker CPU {figures['cpu_seconds']:.0f} s ({figures['cpu_seconds'] / max(figures['charged'], 1) * 1000:.1f}"
          f" s per 1,000 charges); worker peak memory {figures['peak_rss_mb']:.0f} MB")
    return 0 if figures["charged"] == figures["invoices"] else 1


if __name__ == "__main__":
    sys.exit(main())
