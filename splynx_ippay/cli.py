"""``splynx-ippay``: the add-on's command line (database, registration, reconcile)."""

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


def cmd_register(settings, _args):
    """Register the add-on with Splynx (idempotent)."""
    from .services.registration import register
    from .splynx import SplynxError

    try:
        changes = register(_addon(settings).splynx)
    except SplynxError as exc:
        print(f"splynx-ippay: registration with Splynx at {settings['SPLYNX_URL']} failed: {exc}",
              file=sys.stderr)
        return 1
    print("\n".join(changes) if changes else "already registered; nothing changed")
    return 0


def cmd_reconcile(settings, args):
    """Settle unknown outcomes by ENQ and record approved payments in Splynx."""
    from .services.journal import reconcile

    counts = reconcile(_addon(settings), min_age_seconds=args.min_age)
    if not counts:
        print("nothing to reconcile")
    for status, count in sorted(counts.items()):
        print(f"{status}: {count}")
    return 0


def build_parser():
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="splynx-ippay", description=__doc__)
    parser.add_argument("--config", help="config.ini to read (default: $SPLYNX_IPPAY_CONFIG "
                                         "or /etc/splynx-ippay/config.ini)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help=cmd_db_upgrade.__doc__).set_defaults(run=cmd_db_upgrade)

    commands.add_parser("register", help=cmd_register.__doc__).set_defaults(run=cmd_register)

    reconcile = commands.add_parser("reconcile", help=cmd_reconcile.__doc__)
    reconcile.add_argument("--min-age", type=float, default=None, metavar="SECONDS",
                           help="leave attempts younger than this alone "
                                "(default: the gateway read timeout + 15 s)")
    reconcile.set_defaults(run=cmd_reconcile)
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
