"""The staff commands of ``splynx-ippay``: ``worker``, ``charge`` and ``doctor``."""

import logging
import signal
import sys
import time

log = logging.getLogger(__name__)


def _addon(settings, pool_size=70):
    from .services import build_addon

    return build_addon(settings, pool_size=pool_size)


def cmd_worker(settings, args):
    """Run the charge worker: claim charge-run items from the database and charge them."""
    from .services.charging import Worker

    addon = _addon(settings)
    worker = Worker(addon, concurrency=args.concurrency, settle_after=args.settle_after,
                    retry_after=args.retry_after, poll=args.poll)

    def stop(signum, _frame):
        log.info("signal %s: finishing the charges in flight, then stopping", signum)
        worker.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run(exit_when_idle=args.exit_when_idle)
    return 0


def _bar(progress, width=30):
    total = max(progress["total"], 1)
    done = total - progress["remaining"]
    filled = int(width * done / total)
    return (f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{progress['total']}  "
            f"charged {progress['charged']}  declined {progress['declined']}  "
            f"errors {progress['errors']}  skipped {progress['skipped']}  "
            f"remaining {progress['remaining']}")


def cmd_charge(settings, args):
    """Charge a period's unpaid invoices to saved cards (--dry-run: only the preview)."""
    from .money import format_cents
    from .services import charging
    from .splynx import SplynxError

    addon = _addon(settings)
    try:
        period_from, period_to, filters = charging.parse_request({
            "date_from": args.date_from, "date_to": args.date_to,
            "customer_ids": args.customers or "", "partner_id": args.partner or "",
            "min_total": args.min_total or "", "max_total": args.max_total or ""})
        summary = charging.preview(addon, period_from, period_to, filters)
    except charging.PeriodError as exc:
        print(f"splynx-ippay: {exc}", file=sys.stderr)
        return 2
    except SplynxError as exc:
        print(f"splynx-ippay: Splynx did not answer: {exc}", file=sys.stderr)
        return 1
    print(f"Invoices {period_from} to {period_to}: {summary['invoices']} unpaid, "
          f"{summary['customers']} customers, {format_cents(summary['total_cents'])} due")
    print(f"To charge (saved card): {summary['chargeable']} invoices, "
          f"{format_cents(summary['chargeable_cents'])}")
    if summary["without_card_count"]:
        ids = ", ".join(str(r["customer_id"]) for r in summary["without_card"][:20])
        more = " …" if summary["without_card_count"] > 20 else ""
        print(f"Customers without a saved card (not charged): {summary['without_card_count']}: "
              f"{ids}{more}")
    if args.dry_run:
        print("Dry run: nothing charged.")
        return 0
    if not summary["chargeable"]:
        print("Nothing to charge: no run started.")
        return 1
    try:
        run = charging.create_run(addon, admin_id=None, period_from=period_from,
                                  period_to=period_to, filters=filters, source="cli",
                                  summary=summary)
    except charging.RunRefused as exc:
        print(f"splynx-ippay: {exc}", file=sys.stderr)
        return 1
    print(f"Run #{run.id} started.")
    worker = charging.Worker(addon, concurrency=args.concurrency, run_ids=[run.id],
                             settle_after=args.settle_after, retry_after=args.retry_after)
    signal.signal(signal.SIGINT, lambda *_: worker.stop_event.set())
    tty = sys.stdout.isatty() or args.progress
    last = [0.0]

    def tick():
        if time.monotonic() - last[0] < (0.2 if tty else 5.0):
            return
        last[0] = time.monotonic()
        line = _bar(charging.progress(addon, run.id))
        print(line if tty else line.strip(), end="" if tty else "\n", flush=True)

    worker.run(exit_when_idle=True, on_tick=tick)
    final = charging.progress(addon, run.id)
    print(_bar(final) if tty else "")
    print(f"Run #{run.id} {final['state']}: charged {final['charged']} "
          f"({final['charged_amount']}), declined {final['declined']}, errors {final['errors']}, "
          f"skipped {final['skipped']}, still open {final['remaining']}")
    return 0 if final["state"] == "done" else 3


def cmd_doctor(settings_unused, args):
    """Check config, database, Splynx API key and permissions, gateway; say what is wrong."""
    from .services.doctor import run_checks

    checks = run_checks(args.config)
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        print(f"[{mark}] {check.name}: {check.detail}")
    failed = [c for c in checks if not c.ok]
    print("everything looks right" if not failed else f"{len(failed)} problem(s) found")
    return 0 if not failed else 1


def add_commands(commands):
    """Add ``worker``, ``charge`` and ``doctor`` to the ``splynx-ippay`` sub-commands."""
    worker = commands.add_parser("worker", help=cmd_worker.__doc__)
    worker.add_argument("--concurrency", type=int, default=None,
                        help="charges in flight (default: the module setting)")
    worker.add_argument("--exit-when-idle", action="store_true",
                        help="stop when no run is queued or running")
    _timing(worker)
    worker.add_argument("--poll", type=float, default=0.5, help=argparse_suppress())
    worker.set_defaults(run=cmd_worker)

    charge = commands.add_parser("charge", help=cmd_charge.__doc__)
    charge.add_argument("--from", dest="date_from", required=True, metavar="DATE",
                        help="first invoice date (YYYY-MM-DD)")
    charge.add_argument("--to", dest="date_to", required=True, metavar="DATE",
                        help="last invoice date (YYYY-MM-DD)")
    charge.add_argument("--dry-run", action="store_true", help="only show what would be charged")
    charge.add_argument("--customers", help="only these customer ids (comma-separated)")
    charge.add_argument("--partner", help="only this partner's customers")
    charge.add_argument("--min-total", help="only invoices of at least this total")
    charge.add_argument("--max-total", help="only invoices of at most this total")
    charge.add_argument("--concurrency", type=int, default=None,
                        help="charges in flight (default: the module setting)")
    charge.add_argument("--progress", action="store_true", help="progress lines even without a tty")
    _timing(charge)
    charge.set_defaults(run=cmd_charge)

    doctor = commands.add_parser("doctor", help=cmd_doctor.__doc__)
    doctor.set_defaults(run=cmd_doctor)


def _timing(parser):
    parser.add_argument("--settle-after", type=float, default=None, metavar="SECONDS",
                        help="ENQ an in-flight charge left by a stopped worker once it is this "
                             "old (default: the gateway read timeout + 5 s)")
    parser.add_argument("--retry-after", type=float, default=None, metavar="SECONDS",
                        help="retry unsettled or unposted items after this long (default 10)")


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS
