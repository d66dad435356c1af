"""``splynx-ippay``: the add-on's command line, one parser for every command (database,
registration, the worker, charge runs, reconcile, doctor). Commands call services only."""

import argparse
import logging
import signal
import sys
import time
import warnings

from ..config import ConfigError, ConfigWarning, load_config

#: Exit status of ``register`` when Splynx could not be reached: registration is pending
#: and the package's timer tries again (sysexits.h EX_TEMPFAIL).
EXIT_PENDING = 75

log = logging.getLogger("splynx_ippay.cli")


def _context(settings, pool_size=8):
    from ..context import build_context

    return build_context(settings, pool_size=pool_size)


def cmd_db_upgrade(settings, _args):
    """Create or migrate the add-on's database."""
    from .. import db

    db.upgrade(settings["DATABASE_URL"])
    print(f"database at revision {db.current_revision(settings['DATABASE_URL'])}")
    return 0


def _addon_cli(settings):
    from ..splynx.addon_cli import AddonCli

    cli = AddonCli(settings["SPLYNX_ADDON_CLI"])
    return cli if cli.available() else None


def _credentials(settings, args):
    """Settings with the add-on's API key: given on the command line, or created through
    Splynx's local add-on CLI where Splynx runs on this host (stored in secrets.ini
    either way). Returns ``(settings, problem)``."""
    from ..config import load_config, store_secrets
    from ..services import registration
    from ..splynx.addon_cli import AddonCliError

    if args.api_key or args.api_secret:
        if not (args.api_key and args.api_secret):
            return settings, "give both --api-key and --api-secret"
        values = {"api_key": args.api_key, "api_secret": args.api_secret}
        if args.splynx_url:
            values["url"] = args.splynx_url
    elif settings["SPLYNX_API_KEY"] and settings["SPLYNX_API_SECRET"]:
        return settings, None
    else:
        cli = _addon_cli(settings)
        if cli is None:
            return settings, (f"no API key is configured and Splynx's add-on command "
                              f"{settings['SPLYNX_ADDON_CLI']} is not on this host: run "
                              "`splynx-ippay register --api-key KEY --api-secret SECRET` "
                              "(Administration → API keys in Splynx), or "
                              "`dpkg-reconfigure splynx-ippay`")
        try:
            _domain, key, secret = registration.obtain_api_key(cli)
        except AddonCliError as exc:
            return settings, f"Splynx's add-on command could not create the API key: {exc}"
        values = {"api_key": key, "api_secret": secret}
    try:
        path = store_secrets(settings["CONFIG_PATH"], "splynx", values)
    except OSError as exc:
        return settings, f"the API key could not be stored in secrets.ini: {exc} (run as root)"
    print(f"API key stored in {path}")
    return load_config(settings["CONFIG_PATH"]), None


def cmd_register(settings, args):
    """Register the add-on with Splynx (idempotent): its API key where Splynx runs on this
    host, then module, settings, payment method and account, entry points. A Splynx that
    cannot be reached leaves it pending (exit 75, tried again by the package's timer)."""
    from .. import __version__
    from ..services import registration
    from ..splynx import SplynxError, SplynxUnavailableError

    settings, problem = _credentials(settings, args)
    if problem:
        print(f"splynx-ippay: {problem}", file=sys.stderr)
        return 1
    url = settings["SPLYNX_URL"]
    if args.if_needed and registration.is_current(registration.read_state(args.state_dir),
                                                  __version__, url):
        print(f"already registered with Splynx at {url}; nothing to do")
        return 0
    ctx = _context(settings)
    try:
        done = registration.register(ctx.splynx, _addon_cli(settings))
    except SplynxError as exc:
        recorded = registration.write_state(args.state_dir, "pending", version=__version__,
                                            splynx_url=url, error=str(exc)[:500])
        print(f"splynx-ippay: registration with Splynx at {url} failed: {exc}", file=sys.stderr)
        if recorded:
            print("splynx-ippay: registration is pending; it is tried again automatically, "
                  "or run `splynx-ippay register`", file=sys.stderr)
        # Unreachable: worth trying again later; refused (a wrong key): an admin must act.
        return EXIT_PENDING if isinstance(exc, SplynxUnavailableError) else 1
    ctx.module_settings.bump()
    registration.write_state(args.state_dir, "registered", version=__version__, splynx_url=url,
                             manual_steps=done.instructions)
    print("\n".join(done.changes) if done.changes else "already registered; nothing changed")
    for line in done.instructions:
        print(line)
    return 0


def cmd_unregister(settings, args):
    """Remove the add-on's registration from Splynx (idempotent)."""
    from ..services import registration
    from ..splynx import SplynxError

    try:
        done = registration.unregister(_context(settings).splynx, _addon_cli(settings))
    except SplynxError as exc:
        print(f"splynx-ippay: removing the registration from Splynx at {settings['SPLYNX_URL']} "
              f"failed: {exc}", file=sys.stderr)
        return 1
    registration.clear_state(args.state_dir)
    print("\n".join(done.changes) if done.changes else "not registered; nothing changed")
    for line in done.instructions:
        print(line)
    return 0


def cmd_reconcile(settings, args):
    """Settle unknown outcomes by ENQ, record approved payments and refunds in Splynx, write
    the payment statement records that are missing, and compare the journal with Splynx's
    payments (the daily reconciliation the worker does): exit 1 when something is listed for
    staff."""
    from ..services import reconciliation, refunds, statements

    ctx = _context(settings)
    min_age = args.min_age
    if min_age is None:
        min_age = settings["IPPAY_READ_TIMEOUT"] + 15
    report = reconciliation.run(ctx, min_age_seconds=min_age)
    results = (("payments", report.repaired),
               ("refunds", refunds.reconcile(ctx, min_age_seconds=min_age)),
               ("statement records", statements.complete(ctx, min_age_seconds=min_age)))
    if not any(counts for _, counts in results):
        print("nothing to reconcile")
    for what, counts in results:
        for status, count in sorted(counts.items()):
            print(f"{what} {status}: {count}")
    print(f"compared {report.compared_attempts} payments of the journal with "
          f"{report.compared_payments} in Splynx: {len(report.findings)} to check"
          + (f", {report.resolved} resolved" if report.resolved else ""))
    for finding in report.findings:
        print(f"  {reconciliation.KINDS[finding.kind]}: {finding.detail}")
    return 1 if report.findings else 0


def cmd_worker(settings, args):
    """Run the charge worker: claim charge-run items from the database and charge them."""
    from ..services.charge_runs.worker import Worker

    worker = Worker(_context(settings, pool_size=70), concurrency=args.concurrency,
                    settle_after=args.settle_after, retry_after=args.retry_after, poll=args.poll,
                    lease=settings["WORKER_LEASE"])

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


def _confirmed(question):
    """Ask on the terminal; no terminal, no yes."""
    if not sys.stdin.isatty():
        print(f"{question} Not confirmed (no terminal): run with --yes to start it.",
              file=sys.stderr)
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def cmd_charge(settings, args):
    """Charge a period's unpaid invoices to saved cards (asks first unless --yes;
    --dry-run: only the preview)."""
    from ..money import format_cents, parse_amount, AmountError
    from ..services.charge_runs import filters as run_filters, runs, selection
    from ..services.charge_runs.worker import Worker
    from ..splynx import SplynxError

    ctx = _context(settings, pool_size=70)
    try:
        period_from = run_filters.parse_date(args.date_from, "first")
        period_to = run_filters.parse_date(args.date_to, "last")
        run_filters.check_period(period_from, period_to)
        totals = [parse_amount(v) if v else None for v in (args.min_total, args.max_total)]
        filters = run_filters.RunFilters(
            customer_ids=run_filters.parse_customer_ids(args.customers or ""),
            partner_id=args.partner, min_total_cents=totals[0], max_total_cents=totals[1])
        summary = selection.preview(ctx, period_from, period_to, filters)
    except (run_filters.PeriodError, AmountError) as exc:
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
    if not args.yes and not _confirmed(
            f"Charge {summary['chargeable']} invoices, "
            f"{format_cents(summary['chargeable_cents'])}, to the customers' saved cards?"):
        print("Nothing charged.")
        return 1
    try:
        run = runs.create_run(ctx, admin_id=None, period_from=period_from, period_to=period_to,
                              filters=filters, source="cli", summary=summary)
    except runs.RunRefused as exc:
        print(f"splynx-ippay: {exc}", file=sys.stderr)
        return 1
    print(f"Run #{run.id} started.")
    worker = Worker(ctx, concurrency=args.concurrency, run_ids=[run.id],
                    settle_after=args.settle_after, retry_after=args.retry_after,
                    lease=settings["WORKER_LEASE"])
    signal.signal(signal.SIGINT, lambda *_: worker.stop_event.set())
    tty = sys.stdout.isatty() or args.progress
    last = [0.0]

    def tick():
        if time.monotonic() - last[0] < (0.2 if tty else 5.0):
            return
        last[0] = time.monotonic()
        line = _bar(runs.progress(ctx, run.id))
        print(line if tty else line.strip(), end="" if tty else "\n", flush=True)

    worker.run(exit_when_idle=True, on_tick=tick)
    final = runs.progress(ctx, run.id)
    print(_bar(final) if tty else "")
    print(f"Run #{run.id} {final['state']}: charged {final['charged']} "
          f"({final['charged_amount']}), declined {final['declined']}, errors {final['errors']}, "
          f"skipped {final['skipped']}, still open {final['remaining']}")
    return 0 if final["state"] == "done" else 3


def cmd_autopay(settings, args):
    """Queue the automatic runs that are due (autopay schedules and the day's retries); the
    worker charges them. Safe to run any number of times: each schedule runs once a day."""
    import datetime

    from ..services import autopay

    ctx = _context(settings)
    now = None
    if args.now:
        try:
            now = datetime.datetime.fromisoformat(args.now)
        except ValueError:
            print("splynx-ippay: --now must be a date and time such as 2026-12-01T23:59",
                  file=sys.stderr)
            return 2
    created = autopay.fire(ctx, now)
    for run in created:
        print(f"run #{run.id} queued: {run.note}")
    if not created:
        print("no automatic run is due (or it was already queued)")
    return 0


def cmd_doctor(_settings, args):
    """Check config, database, Splynx API key and permissions, gateway; say what is wrong."""
    from ..context import build_context
    from ..services.doctor import run_checks

    checks = run_checks(args.config, context_factory=lambda s: build_context(s, pool_size=2))
    for check in checks:
        mark = "ok  " if check.ok else ("warn" if check.warning else "FAIL")
        print(f"[{mark}] {check.name}: {check.detail}")
    failed = [c for c in checks if not c.ok and not c.warning]
    print("everything looks right" if not failed else f"{len(failed)} problem(s) found")
    return 0 if not failed else 1


def _timing(parser):
    parser.add_argument("--settle-after", type=float, default=None, metavar="SECONDS",
                        help="ENQ an in-flight charge left by a stopped worker once it is this "
                             "old (default: the gateway read timeout + 5 s)")
    parser.add_argument("--retry-after", type=float, default=None, metavar="SECONDS",
                        help="retry unsettled or unposted items after this long (default 10)")


def build_parser():
    """The argument parser of every sub-command."""
    from ..services.registration import STATE_DIR

    parser = argparse.ArgumentParser(
        prog="splynx-ippay",
        description="The splynx-ippay add-on: database, registration with Splynx, charge runs "
                    "and checks.")
    parser.add_argument("--config", help="config.ini to read (default: $SPLYNX_IPPAY_CONFIG "
                                         "or /etc/splynx-ippay/config.ini)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help=cmd_db_upgrade.__doc__).set_defaults(run=cmd_db_upgrade)

    register = commands.add_parser("register", help=cmd_register.__doc__)
    register.add_argument("--if-needed", action="store_true",
                          help="do nothing when this version already registered with this "
                               "Splynx address")
    register.add_argument("--state-dir", default=STATE_DIR, metavar="DIR",
                          help="where registration.json records the outcome "
                               "(default: %(default)s; nothing is recorded if it does not exist)")
    register.add_argument("--api-key", help="the add-on's Splynx API key (when Splynx runs "
                                            "on another host; stored in secrets.ini)")
    register.add_argument("--api-secret", help="its secret")
    register.add_argument("--splynx-url", help="where Splynx is, with --api-key")
    register.set_defaults(run=cmd_register)
    unregister = commands.add_parser("unregister", help=cmd_unregister.__doc__)
    unregister.add_argument("--state-dir", default=STATE_DIR, metavar="DIR",
                            help="where registration.json is kept (default: %(default)s)")
    unregister.set_defaults(run=cmd_unregister)

    reconcile = commands.add_parser("reconcile", help=cmd_reconcile.__doc__)
    reconcile.add_argument("--min-age", type=float, default=None, metavar="SECONDS",
                           help="leave attempts younger than this alone "
                                "(default: the gateway read timeout + 15 s)")
    reconcile.set_defaults(run=cmd_reconcile)

    worker = commands.add_parser("worker", help=cmd_worker.__doc__)
    worker.add_argument("--concurrency", type=int, default=None,
                        help="charges in flight (default: the module setting)")
    worker.add_argument("--exit-when-idle", action="store_true",
                        help="stop when no run is queued or running")
    _timing(worker)
    worker.add_argument("--poll", type=float, default=0.5, help=argparse.SUPPRESS)
    worker.set_defaults(run=cmd_worker)

    charge = commands.add_parser("charge", help=cmd_charge.__doc__)
    charge.add_argument("--from", dest="date_from", required=True, metavar="DATE",
                        help="first invoice date (YYYY-MM-DD)")
    charge.add_argument("--to", dest="date_to", required=True, metavar="DATE",
                        help="last invoice date (YYYY-MM-DD)")
    charge.add_argument("--dry-run", action="store_true", help="only show what would be charged")
    charge.add_argument("--yes", action="store_true", help="charge without asking")
    charge.add_argument("--customers", help="only these customer ids (comma-separated)")
    charge.add_argument("--partner", type=int, help="only this partner's customers")
    charge.add_argument("--min-total", help="only invoices of at least this total")
    charge.add_argument("--max-total", help="only invoices of at most this total")
    charge.add_argument("--concurrency", type=int, default=None,
                        help="charges in flight (default: the module setting)")
    charge.add_argument("--progress", action="store_true", help="progress lines even without a tty")
    _timing(charge)
    charge.set_defaults(run=cmd_charge)

    autopay = commands.add_parser("autopay", help=cmd_autopay.__doc__)
    autopay.add_argument("--now", help="as if it were this local date and time "
                                       "(YYYY-MM-DDTHH:MM; default: now)")
    autopay.set_defaults(run=cmd_autopay)

    doctor = commands.add_parser("doctor", help=cmd_doctor.__doc__)
    doctor.set_defaults(run=cmd_doctor)
    return parser


def main(argv=None):
    """Entry point of the ``splynx-ippay`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A setting nobody knows is said once, in words, not as a Python warning.
    warnings.simplefilter("once", ConfigWarning)
    logging.captureWarnings(True)
    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        print(f"splynx-ippay: configuration error: {exc}", file=sys.stderr)
        return 2
    return args.run(settings, args)
