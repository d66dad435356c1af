"""``splynx-ippay``: the add-on's command line (database, registration, charge runs, checks)."""

import argparse
import logging
import sys
import warnings

from .config import ConfigError, ConfigWarning, load_config


def _addon(settings):
    from .services import build_addon

    return build_addon(settings, pool_size=8)


def cmd_db_upgrade(settings, _args):
    """Create or migrate the add-on's database."""
    from . import db

    db.upgrade(settings["DATABASE_URL"])
    print(f"database at revision {db.current_revision(settings['DATABASE_URL'])}")
    return 0


def cmd_register(settings, args):
    """Register the add-on with Splynx (idempotent); a failure is recorded as pending."""
    from . import __version__
    from .services import registration
    from .splynx import SplynxError

    url = settings["SPLYNX_URL"]
    if args.if_needed and registration.is_current(registration.read_state(args.state_dir),
                                                  __version__, url):
        print(f"already registered with Splynx at {url}; nothing to do")
        return 0
    try:
        changes = registration.register(_addon(settings).splynx)
    except SplynxError as exc:
        recorded = registration.write_state(args.state_dir, "pending", version=__version__,
                                            splynx_url=url, error=str(exc)[:500])
        print(f"splynx-ippay: registration with Splynx at {url} failed: {exc}", file=sys.stderr)
        if recorded:
            print("splynx-ippay: registration is pending; it completes when the web service "
                  "starts or with `splynx-ippay register`", file=sys.stderr)
        return 1
    registration.write_state(args.state_dir, "registered", version=__version__, splynx_url=url)
    print("\n".join(changes) if changes else "already registered; nothing changed")
    return 0


def cmd_unregister(settings, args):
    """Remove the add-on's registration from Splynx (idempotent)."""
    from .services import registration
    from .splynx import SplynxError

    try:
        changes = registration.unregister(_addon(settings).splynx)
    except SplynxError as exc:
        print(f"splynx-ippay: removing the registration from Splynx at {settings['SPLYNX_URL']} "
              f"failed: {exc}", file=sys.stderr)
        return 1
    registration.clear_state(args.state_dir)
    print("\n".join(changes) if changes else "not registered; nothing changed")
    return 0


def cmd_reconcile(settings, args):
    """Settle unknown outcomes by ENQ, record approved payments and refunds in Splynx, and
    write the payment statement records that are missing."""
    from .services import journal, refunds, statements

    addon = _addon(settings)
    min_age = args.min_age
    if min_age is None:
        min_age = settings["IPPAY_READ_TIMEOUT"] + 15
    results = (("payments", journal.reconcile(addon, min_age_seconds=min_age)),
               ("refunds", refunds.reconcile(addon, min_age_seconds=min_age)),
               ("statement records", statements.complete(addon, min_age_seconds=min_age)))
    if not any(counts for _, counts in results):
        print("nothing to reconcile")
    for what, counts in results:
        for status, count in sorted(counts.items()):
            print(f"{what} {status}: {count}")
    return 0


def build_parser():
    """The argument parser of every sub-command."""
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

    from .services.registration import STATE_DIR

    register = commands.add_parser("register", help=cmd_register.__doc__)
    register.add_argument("--if-needed", action="store_true",
                          help="do nothing when this version already registered with this "
                               "Splynx address (used when the web service starts)")
    register.add_argument("--state-dir", default=STATE_DIR, metavar="DIR",
                          help="where registration.json records the outcome "
                               "(default: %(default)s; nothing is recorded if it does not exist)")
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
    from .cli_staff import add_commands

    add_commands(commands)  # worker, charge, doctor (staff side, docs/staff.md)
    return parser


def main(argv=None):
    """Entry point of the ``splynx-ippay`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    warnings.simplefilter("always", ConfigWarning)
    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        print(f"splynx-ippay: configuration error: {exc}", file=sys.stderr)
        return 2
    return args.run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
