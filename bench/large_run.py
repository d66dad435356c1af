"""Benchmark of a very large charge run (issue 13): not a test, prints figures.

100,000 invoices against 20,000, at gateway latency 0 and concurrency 8: the staff preview
(time, and the peak of the memory it allocates: selection reads Splynx one page at a time)
and the run (time, the worker's peak memory), and the ratio of the two run times (goal: at
most 5.5 for 5 times the invoices). ``--quick``: 10,000 against 2,000. A run at latency 0 is
bound by the CPU, so the full benchmark takes about as long as 120,000 charges do here.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.charge_run import _one_run  # noqa: E402  (after the path is set)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    args = parser.parse_args(argv)
    small, large = (2000, 10000) if args.quick else (20000, 100000)
    runs = [_one_run(n, 0, 8, preview=True) for n in (small, large)]
    for run in runs:
        print(f"{run['invoices']:,} invoices: preview {run['preview_seconds']:.1f} s "
              f"({run['preview_invoices']:,} invoices, peak {run['preview_peak_mb']:.1f} MB "
              f"allocated); run {run['seconds']:.0f} s, charged {run['charged']:,} "
              f"({run['state']}), worker peak memory {run['peak_rss_mb']:.0f} MB")
    ratio = runs[1]["seconds"] / runs[0]["seconds"]
    preview_ratio = runs[1]["preview_seconds"] / runs[0]["preview_seconds"]
    print(f"{large:,} against {small:,} invoices: run time ratio {ratio:.2f} (goal <= 5.5), "
          f"preview time ratio {preview_ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
