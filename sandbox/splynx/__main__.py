"""``python -m sandbox.splynx --port N [--host H] [--latency-ms MS] [--lenient]
[--undocumented allow|refuse] [--refund-category] [--extra-invoices N [--extra-customers N]]``:
serve the emulator (README "Switches")."""

import argparse
import sys

from sandbox.serve import run_foreground
from sandbox.splynx import create_app


def parse_switches(argv):
    """The emulator's switches from the command line; the rest is left for --host/--port."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--latency-ms", type=float, default=None,
                        help="delay every API call by this many milliseconds (e.g. 80)")
    parser.add_argument("--lenient", action="store_true",
                        help="strict mode off: bodies are not held to the API blueprint")
    parser.add_argument("--undocumented", choices=("allow", "refuse"), default=None,
                        help="offer or refuse (405) the methods the blueprint does not document")
    parser.add_argument("--refund-category", action="store_true",
                        help="seed Splynx's default 'Refund' transaction category")
    parser.add_argument("--extra-invoices", type=int, default=None, metavar="N",
                        help="seed N more unpaid invoices (benchmarks, the scale-out test)")
    parser.add_argument("--extra-customers", type=int, default=None, metavar="N",
                        help="spread over N generated customers (default: one per 10)")
    args, rest = parser.parse_known_args(argv)
    if args.latency_ms is not None and args.latency_ms < 0:
        parser.error("--latency-ms must be 0 or more")
    config = {}
    if args.latency_ms is not None:
        config["latency_ms"] = args.latency_ms
    if args.lenient:
        config["strict"] = False
    if args.undocumented:
        config["undocumented_methods"] = args.undocumented
    if args.refund_category:
        config["refund_category"] = True
    for name in ("extra_invoices", "extra_customers"):
        if getattr(args, name) is not None:
            config[name] = getattr(args, name)
    return config, rest


def main():
    config, sys.argv[1:] = parse_switches(sys.argv[1:])
    run_foreground(create_app(config), "Splynx emulator", 8081)


if __name__ == "__main__":
    main()
