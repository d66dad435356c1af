"""Scale-out: two add-on hosts on one database, one of them lost in the middle of a charge run.

The hosts are network namespaces on a private LAN (sandbox/netns.py, docs/scale-out.md):
``db`` (a private PostgreSQL, then a private MariaDB), ``ext`` (the Splynx emulator with
:data:`INVOICES` generated unpaid invoices, and the IPpay simulator over https with
:data:`LATENCY_MS` on every call), ``app1`` and ``app2`` (each gunicorn and
``splynx-ippay worker``, as the package's two units run them, with their own host name).

Staff preview and confirm a charge run on app1's pages. Once :data:`KILL_AT` of its charges
are made, app1 is lost: its link is deleted, then every process on it is SIGKILLed, with
items claimed and charges in flight. app2's worker takes the items over once app1's lease
(config.ini ``[worker] lease``, :data:`LEASE` s here) has run out, settles what app1 had
sent by ENQ and posts what it had not posted, and finishes the run. Then:

- at the simulator, no invoice has more than one approved SALE (no double charge), and the
  approved SALEs are exactly the charged items;
- every approved SALE is exactly one payment in Splynx (no approval left unposted), and no
  payment is without an approved SALE;
- every item is accounted for: charged, declined (the customers whose card declines) or
  skipped with its reason (the customers without a card), none left open; the run is done.
  The one other outcome allowed is for a charge app1 had marked sent whose SALE never left
  it (the link was cut first): ENQ finds nothing (025), so the attempt fails with nothing
  charged and the item is an error that says so (never a second SALE, design.md §3), its
  invoice left unpaid for staff's Rerun;
- app1 did hold items when it was lost, and app2 finished them.

The peak of gateway calls in flight on the terminal (the simulator's ``/_sim/stats``) is
recorded (printed, and in tests/artifacts/scale-out-<engine>.json) beside the run's times.

``SHARED_BUDGET``: the terminal's concurrency budget (module setting ``charge_concurrency``,
:data:`CONCURRENCY`) is shared by every worker on every host through leases in the database
(services/charge_runs/leases.py): with the flag True the test requires the peak of calls in
flight at the simulator to stay within the budget, both hosts running and after the loss.
False would only require each worker to keep to its own (twice the budget for two hosts).
"""

import json
import re
import shutil
import time
import types
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from sandbox.netns import ScaleOut
from splynx_ippay.db import session_scope
from splynx_ippay.models import (AttemptStatus, ChargeItem, ChargeRun, ItemStatus, PaymentAttempt)
from splynx_ippay.services.charge_runs import runs
from splynx_ippay.services.charge_runs.items import item_key
from tests.staff.conftest import start_run

#: Generated unpaid invoices (one customer per 10), all in the run's period.
INVOICES = 5000
#: Every gateway call waits this long at the simulator, so that the run lasts long enough
#: to lose a host in the middle of it.
LATENCY_MS = 30
#: The terminal's concurrency budget (module setting ``charge_concurrency``).
CONCURRENCY = 8
#: Whether the budget is shared by all workers (see the module's docstring).
SHARED_BUDGET = True
#: The share of the charges made when app1 is lost.
KILL_AT = 0.3
#: config.ini ``[worker] lease``: how long app2 waits for app1's heartbeat.
LEASE = 10.0
#: The gateway read timeout; a charge app1 had sent is settled by ENQ once it is older.
READ_TIMEOUT = 5.0
#: Seconds the whole run may take.
RUN_TIMEOUT = 420
#: Seconds without any item finished that count as a stalled run (well past the lease and
#: the settling of app1's charges).
STALL_SECONDS = 60
PERIOD = {"date_from": "2024-01-01", "date_to": "2024-12-31"}
VISA, DECLINING = "4111111111111111", "5111111111111118"
NOT_SENT = "The payment did not reach the card network. Nothing was charged."
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(params=["postgresql", "mariadb"])
def scale_out(request, can_make_hosts):
    world = ScaleOut(request.param, invoices=INVOICES, latency_ms=LATENCY_MS, lease=LEASE,
                     read_timeout=READ_TIMEOUT)
    world.start()
    try:
        yield world
    finally:
        logs = ARTIFACTS / f"scale-out-{request.param}-logs"
        try:
            ARTIFACTS.mkdir(exist_ok=True)
            for path in (world.lan.state / "logs").glob("*.log"):
                logs.mkdir(exist_ok=True)
                shutil.copyfile(path, logs / path.name)
        finally:
            world.stop()


def seed(world):
    """Cards for the generated customers: every 50th has none (its invoices are skipped),
    every 50th from the 25th has a card whose SALEs decline 051, the rest a Visa that
    approves. Returns the expected outcome of each invoice number in the period."""
    state = world.emulator("state")
    generated = sorted(int(c["id"]) for c in state["customers"]
                       if c["login"].startswith("customer"))
    assert len(generated) == INVOICES // 10
    kind = {cid: ("none" if n % 50 == 0 else "declining" if n % 50 == 25 else "visa")
            for n, cid in enumerate(generated)}
    tokens = {"visa": world.tokenize(VISA), "declining": world.tokenize(DECLINING)}
    world.save_cards({cid: (VISA if k == "visa" else DECLINING, tokens[k])
                      for cid, k in kind.items() if k != "none"})
    unpaid = [i for i in state["invoices"] if i["status"] == "not_paid"
              and PERIOD["date_from"] <= i["date_created"] <= PERIOD["date_to"]]
    outcome = {"visa": "charged", "declining": "declined", "none": "skipped"}
    expected = {i["number"]: outcome[kind.get(int(i["customer_id"]), "none")] for i in unpaid}
    declining = sum(1 for v in expected.values() if v == "declined")
    world.sim("card-rules", {"rules": [{"last4": DECLINING[-4:], "codes": ["051"] * declining}]})
    world.set_module_settings({"charge_concurrency": str(CONCURRENCY)})
    return expected


def items_of(world, run_id):
    with session_scope(world.context().sessions) as session:
        return session.execute(select(ChargeItem).where(ChargeItem.run_id == run_id)).scalars().all()


def progress_on(world, staff, host, run_id):
    answer = staff.get(f"{world.web_url(host)}/ippay/admin/runs/{run_id}/progress", timeout=30)
    assert answer.status_code == 200, answer.text[:500]
    return answer.json()


class Timeline:
    """Progress lines every few seconds (shown when the test fails, or with ``-s``)."""

    def __init__(self, started, every=10.0):
        self.started, self.every, self.last = started, every, 0.0

    def note(self, progress, what=""):
        now = time.monotonic()
        if now - self.last >= self.every or what:
            self.last = now
            print(f"{now - self.started:6.1f} s {progress['state']}: made {progress['made']}/"
                  f"{progress['to_make']}, charged {progress['charged']}, declined "
                  f"{progress['declined']}, errors {progress['errors']}, skipped "
                  f"{progress['skipped']}, pending {progress['pending']} {what}", flush=True)


def gateway_sales(world):
    """``{TransactionID: OrderNumber}`` of every SALE the simulator received, and its
    approved SALEs (ledger entries)."""
    order = {}
    for record in world.sim("requests")["requests"]:
        body = record["body"]
        if "<TransactionType>SALE</TransactionType>" in body:
            tid = re.search(r"<TransactionID>([^<]*)</TransactionID>", body).group(1)
            number = re.search(r"<OrderNumber>([^<]*)</OrderNumber>", body)
            order[tid] = number.group(1) if number else None
    approved = [e for e in world.sim("ledger")["transactions"]
                if e["type"] == "SALE" and e["action_code"] == "000"]
    return order, approved


@pytest.mark.timeout(RUN_TIMEOUT + 180)
def test_a_host_lost_mid_run_charges_no_one_twice_and_the_other_finishes_the_run(scale_out):
    world = scale_out
    expected = seed(world)
    world.start_apps()
    staff = world.staff_session("app1")
    started = time.monotonic()
    # As in a browser: the charge page, its form (with its CSRF token), preview, confirm.
    page = staff.get(f"{world.web_url('app1')}/ippay/admin/charge", timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    confirmed = start_run(staff, types.SimpleNamespace(url=world.web_url("app1")),
                          {**PERIOD, "csrf_token": token})
    assert confirmed.status_code == 302, confirmed.text[:2000]
    with session_scope(world.context().sessions) as session:
        run_id = session.execute(select(ChargeRun.id)).scalar_one()

    timeline = Timeline(started)
    # -- app1 is lost once KILL_AT of the charges are made --
    while True:
        now = runs.progress(world.context(), run_id)
        timeline.note(now)
        assert now["state"] != "done", "the run ended before a host could be lost"
        assert time.monotonic() - started < RUN_TIMEOUT, now
        if now["to_make"] and now["made"] >= KILL_AT * now["to_make"]:
            break
        time.sleep(0.2)
    world.app("app1").die()
    lost_at = time.monotonic()
    timeline.note(now, "app1 lost")
    held = [i for i in items_of(world, run_id)
            if i.status == ItemStatus.CLAIMED and (i.claim_token or "").startswith("app1:")]
    with session_scope(world.context().sessions) as session:
        in_flight = Counter(a.status.value for a in session.execute(select(PaymentAttempt).where(
            PaymentAttempt.request_key.in_([item_key(i.id) for i in held]))).scalars())
    assert held, "app1 held no item when it was lost: nothing was taken over"

    # -- app2 finishes the run (its pages say so) --
    staff2 = world.staff_session("app2")
    taken_over = None
    moved = (time.monotonic(), None)
    while True:
        now = progress_on(world, staff2, "app2", run_id)
        timeline.note(now)
        if now["done"]:
            break
        if (now["made"], now["skipped"]) != moved[1]:
            moved = (time.monotonic(), (now["made"], now["skipped"]))
        assert time.monotonic() - moved[0] < STALL_SECONDS, (
            f"no item finished for {STALL_SECONDS} s: {now}\ndatabase sessions:\n"
            + "\n".join(world.database.sessions())
            + f"\napp2's worker:\n{world.app('app2').log_tail('worker')}")
        if taken_over is None and not any(
                (i.claim_token or "").startswith("app1:") for i in items_of(world, run_id)):
            taken_over = time.monotonic() - lost_at
            timeline.note(now, "app1's items taken over")
        assert time.monotonic() - started < RUN_TIMEOUT, (
            f"the run did not finish: {now}\n{world.app('app2').log_tail('worker')}")
        time.sleep(1.0)
    finished = time.monotonic()
    assert world.app("app2").processes["worker"].poll() is None, world.app("app2").log_tail("worker")

    # -- every item accounted for --
    items = items_of(world, run_id)
    assert now["state"] == "done" and now["remaining"] == 0, now
    order, approved = gateway_sales(world)
    # A charge app1 had marked sent whose SALE never left it: ENQ finds nothing (025), so it
    # ends "error", nothing charged (design.md §3: never a second SALE), for staff to rerun.
    never_sent = [i for i in items if i.status == ItemStatus.ERROR]
    for item in never_sent:
        assert item.id in {h.id for h in held}, (item.invoice_number, item.message)
        assert item.message == NOT_SENT and item.transaction_id not in order, item.message
    wrong = [(i.invoice_number, i.status.value, i.message) for i in items
             if i.status.value != expected[i.invoice_number] and i not in never_sent]
    assert not wrong, (f"{len(wrong)} items not as expected (invoice, status, message): "
                       f"{wrong[:20]}")
    assert all(i.message for i in items if i.status in (ItemStatus.SKIPPED, ItemStatus.DECLINED))
    assert {i.message for i in items if i.status == ItemStatus.SKIPPED} == {"No saved card."}
    assert all(i.action_code == "051" for i in items if i.status == ItemStatus.DECLINED)
    held_now = {i.id: i for i in items if i.id in {h.id for h in held}}
    assert all(i.status in (ItemStatus.CHARGED, ItemStatus.DECLINED, ItemStatus.ERROR)
               and i.tries >= 2 for i in held_now.values()), "app1's items were not finished by app2"

    # -- at the gateway: one approved SALE per invoice at most, exactly the charged ones --
    per_invoice = Counter(order[e["transaction_id"]] for e in approved)
    twice = {number: n for number, n in per_invoice.items() if n > 1}
    assert not twice, f"invoices charged more than once: {twice}"
    charged = {i.transaction_id: i for i in items if i.status == ItemStatus.CHARGED}
    assert {e["transaction_id"] for e in approved} == set(charged)
    assert all(order[tid] == item.invoice_number for tid, item in charged.items())

    # -- in Splynx: each approval exactly one payment, on its invoice; nothing else --
    state = world.emulator("state")
    payments = defaultdict(list)
    for payment in state["payments"]:
        if payment.get("field_1"):
            payments[payment["field_1"]].append(payment)
    unposted = [tid for tid in charged if len(payments.get(tid, ())) != 1]
    assert not unposted, f"approvals not posted exactly once to Splynx: {unposted[:20]}"
    assert set(payments) == set(charged), "a payment in Splynx without an approved SALE"
    invoices = {str(i["id"]): i for i in state["invoices"]}
    for tid, item in charged.items():
        assert str(payments[tid][0]["invoice_id"]) == str(item.invoice_id)
        assert invoices[str(item.invoice_id)]["status"] == "paid"
    for item in never_sent:
        assert invoices[str(item.invoice_id)]["status"] == "not_paid"
    with session_scope(world.context().sessions) as session:
        unfinished = session.execute(select(PaymentAttempt).where(
            PaymentAttempt.status.notin_([AttemptStatus.POSTED, AttemptStatus.DECLINED]))
        ).scalars().all()
    assert sorted((a.transaction_id, a.status.value) for a in unfinished) == sorted(
        (i.transaction_id, "failed") for i in never_sent)

    # -- the terminal's budget --
    stats = world.sim("stats")["terminals"]["TESTTERMINAL"]
    figures = {"engine": world.engine, "invoices": INVOICES, "items": len(items),
               "latency_ms": LATENCY_MS, "concurrency": CONCURRENCY, "lease_s": LEASE,
               "seconds_to_loss": round(lost_at - started, 1),
               "seconds_after_loss": round(finished - lost_at, 1),
               "seconds_total": round(finished - started, 1),
               "seconds_until_taken_over": round(taken_over, 1) if taken_over else None,
               "items_held_by_the_lost_host": len(held),
               "their_attempts_when_lost": dict(in_flight),
               "charged": len(charged), "never_sent_by_the_lost_host": len(never_sent),
               "gateway_calls": stats["calls"],
               "peak_in_flight": stats["peak_in_flight"], "shared_budget": SHARED_BUDGET}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"scale-out-{world.engine}.json").write_text(json.dumps(figures, indent=2))
    print(f"\nscale-out {world.engine}: {json.dumps(figures)}")
    assert stats["calls"] >= len(approved) + now["declined"]
    if SHARED_BUDGET:
        assert stats["peak_in_flight"] <= CONCURRENCY, stats
    else:
        # Each worker keeps to its own budget.
        assert stats["peak_in_flight"] <= CONCURRENCY * len(world.app_names), stats
