"""Benchmark of a charge run on one and on two add-on hosts (docs/scale-out.md): not a test,
prints figures.

The hosts of the scale-out test (sandbox/netns.py: network namespaces on a private LAN, a
private PostgreSQL, the emulator and the simulator on a host of their own, each add-on host
running gunicorn and ``splynx-ippay worker``), at a gateway-bound setting: 2,000 invoices,
200 ms a gateway call, module setting ``charge_concurrency`` 8. One host can take no less
than 2,000 × 0.2 s / 8 = 50 s. Two hosts with a budget each can take half that; with the
terminal's budget shared by all workers (design.md §6) they cannot beat the one host, and
the peak of calls in flight at the simulator stays at 8.

Root only (network namespaces); elsewhere it says why and prints nothing else. Run it as
``python -m bench.scale_out`` (``--quick`` for 400 invoices) or through ``make bench``.
"""

import argparse
import datetime as dt
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CONCURRENCY = 8
VISA = "4111111111111111"


def _one_run(n_invoices, latency_ms, hosts, engine):
    """Time a charge run of ``n_invoices`` on ``hosts`` add-on hosts; a dict of figures."""
    from sandbox.netns import ScaleOut
    from splynx_ippay.services.charge_runs import runs
    from splynx_ippay.services.charge_runs.filters import RunFilters

    with ScaleOut(engine, invoices=n_invoices, app_hosts=hosts, latency_ms=latency_ms,
                  read_timeout=30) as world:
        customers = [int(c["id"]) for c in world.emulator("state")["customers"]
                     if c["login"].startswith("customer")]
        token = world.tokenize(VISA)
        world.save_cards({cid: (VISA, token) for cid in customers})
        world.set_module_settings({"charge_concurrency": str(CONCURRENCY)})
        world.start_apps()
        world.sim("stats", {"reset": True})
        ctx = world.context()
        run = runs.create_run(ctx, admin_id=None, period_from=dt.date(2024, 1, 1),
                              period_to=dt.date(2025, 12, 31), filters=RunFilters(),
                              source="bench")
        started = time.monotonic()
        while runs.progress(ctx, run.id)["state"] != "done":
            if time.monotonic() - started > 1800:
                raise RuntimeError("the run did not finish in 30 minutes")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        progress = runs.progress(ctx, run.id)
        stats = world.sim("stats")["terminals"]["TESTTERMINAL"]
        return {"hosts": hosts, "seconds": elapsed, "charged": progress["charged"],
                "errors": progress["errors"], "peak_in_flight": stats["peak_in_flight"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="400 invoices (a smoke run)")
    parser.add_argument("--engine", choices=("postgresql", "mariadb"), default="postgresql")
    args = parser.parse_args(argv)
    from sandbox.netns import unavailable

    why = unavailable()
    if why:
        print(f"scale-out benchmark not run: it makes hosts in network namespaces, and {why}")
        return 0
    n_invoices, latency = (400, 200) if args.quick else (2000, 200)
    bound = n_invoices * latency / 1000 / CONCURRENCY
    results = [_one_run(n_invoices, latency, hosts, args.engine) for hosts in (1, 2)]
    for result in results:
        print(f"scale-out ({args.engine}): {n_invoices} invoices, latency {latency} ms, "
              f"concurrency {CONCURRENCY}, {result['hosts']} host(s): {result['seconds']:.1f} s "
              f"(one host's bound {bound:.0f} s), charged {result['charged']}, errors "
              f"{result['errors']}, peak in flight at the gateway {result['peak_in_flight']}")
    one, two = results
    print(f"two hosts against one: {one['seconds'] / two['seconds']:.2f}x as fast "
          f"(a budget per worker allows up to 2x; a shared budget about 1x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
