"""Every channel at once on the same invoices: a charge run whose worker is killed and
restarted, staff paying from Splynx's admin pages, customers paying in the portal and
strangers paying through signed direct links — 50 invoices, several seeds, on SQLite,
MariaDB and PostgreSQL.

Whatever the interleaving: at the simulator every invoice has at most one approved SALE, in
Splynx at most one payment, every approval is exactly one payment, and the run says which
invoices it skipped because they were paid meanwhile (design.md §3, invariants 3 and 4).
"""

import datetime as dt
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from sandbox.world import ROOT, build_world
from splynx_ippay.db import session_scope
from splynx_ippay.ippay import Card as GatewayCard
from splynx_ippay.models import Card, ChargeItem, PaymentAttempt
from splynx_ippay.services import journal
from splynx_ippay.services.charge_runs import runs as charge_runs
from splynx_ippay.services.charge_runs.filters import RunFilters
from splynx_ippay.services.payments import link_signature
from tests.conftest import make_database
from tests.portal.helpers import csrf, form_value, new_card_fields
from tests.support import default_gateway

N_INVOICES = 50
N_CUSTOMERS = 10
FIRST_CUSTOMER = 4  # the seed's alice, bob and carol come first


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def race_world(request, tmp_path):
    url, drop = make_database(request.param, tmp_path)
    world = build_world(url, {"extra_invoices": N_INVOICES, "extra_customers": N_CUSTOMERS},
                        IPPAY_READ_TIMEOUT=5.0)
    # Strangers paying by link type many cards: the card-testing limits are not the subject.
    world.set_module_settings({"limit_new_cards_per_customer_day": 1000,
                               "limit_tries_per_address_hour": 10000,
                               "limit_declines_per_customer_day": 1000})
    world.sim_call("config", {"latency_ms": 30})
    token = default_gateway(world.ctx).tokenize(
        GatewayCard("4111111111111111", 12, 2031, holder="Race Holder")).token
    with session_scope(world.ctx.sessions) as session:
        for cid in range(FIRST_CUSTOMER, FIRST_CUSTOMER + N_CUSTOMERS):
            session.add(Card(customer_id=cid, token=token, brand="Visa", last4="1111",
                             exp_month=12, exp_year=2031, holder_name="Race Holder",
                             is_default=True))
    yield world
    world.stop()
    world.ctx.engine.dispose()
    drop()


def the_invoices(world):
    rows = [i for i in world.emu_call("state")["invoices"]
            if int(i["customer_id"]) >= FIRST_CUSTOMER]
    assert len(rows) == N_INVOICES
    return rows


# --- the channels, as a browser uses them ---------------------------------------------------

def settled(page):
    """A page with nothing to submit must say the invoice is paid, nothing else."""
    words = page.text
    assert page.status_code in (200, 404) and (
        "already paid" in words or "is paid" in words or "cannot be used" in words), \
        (page.status_code, words[:3000])
    return "paid"


def portal_pay(world, invoice):
    session = world.login(f"customer{invoice['customer_id']}")
    page = session.get(f"{world.url}/ippay/pay-invoice", params={"item_id": invoice["number"]},
                       timeout=30)
    if 'name="request_key"' not in page.text:
        return settled(page)
    card_id = re.search(r'name="card_id"[^>]*value="(\d+)"', page.text).group(1)
    session.post(f"{world.url}/ippay/pay-invoice", params={"item_id": invoice["number"]},
                 data={"csrf_token": csrf(page.text), "card_id": card_id,
                       "request_key": form_value(page.text, "request_key")}, timeout=60)
    return "portal"


def staff_pay(world, invoice):
    session = world.login_admin()
    page = session.get(f"{world.url}/ippay/admin/invoice", params={"item_id": invoice["number"]},
                       timeout=30)
    if 'name="request_key"' not in page.text:
        return settled(page)
    session.post(f"{world.url}/ippay/admin/invoice", params={"item_id": invoice["number"]},
                 data={"csrf_token": csrf(page.text), "confirm": "yes",
                       "request_key": form_value(page.text, "request_key")}, timeout=60)
    return "staff"


def link_pay(world, invoice):
    import requests

    sig = link_signature(world.ctx, "invoice", int(invoice["id"]))
    url = f"{world.url}/ippay/direct-pay-invoice-by-id?item_id={invoice['id']}&sig={sig}"
    session = requests.Session()
    page = session.get(url, timeout=30)
    if 'name="request_key"' not in page.text:
        return settled(page)
    session.post(url, data={"csrf_token": csrf(page.text), "card_id": "new",
                            "request_key": form_value(page.text, "request_key"),
                            **new_card_fields(number="5111111111111118", cvv="123")}, timeout=60)
    return "link"


CHANNELS = (portal_pay, staff_pay, link_pay)


def worker_command():
    return [sys.executable, "-m", "splynx_ippay.cli", "worker", "--concurrency", "4",
            "--settle-after", "6", "--retry-after", "0.3", "--poll", "0.05"]


def wait_until_listed(world, run_id, timeout=60):
    """Until the worker has read the run's invoices into items (it may start charging)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(v["count"] for v in charge_runs.counts(world.ctx, run_id).values()) >= N_INVOICES:
            return
        time.sleep(0.01)
    raise AssertionError("the worker did not read the run's invoices")


@pytest.mark.parametrize("seed", [11, 23])
def test_every_channel_at_once_charges_each_invoice_at_most_once(race_world, seed):
    world = race_world
    rng = random.Random(seed)
    invoices = the_invoices(world)
    customers = tuple(range(FIRST_CUSTOMER, FIRST_CUSTOMER + N_CUSTOMERS))
    run = charge_runs.create_run(world.ctx, admin_id=1, period_from=dt.date(2024, 1, 1),
                                 period_to=dt.date(2024, 12, 31),
                                 filters=RunFilters(customer_ids=customers),
                                 summary={"chargeable": N_INVOICES})
    # Each invoice gets one to three payers besides the run, in a shuffled order.
    tasks = [(rng.choice(CHANNELS), invoice) for invoice in invoices
             for _ in range(rng.randint(1, 3))]
    rng.shuffle(tasks)
    env = world.env()
    # The gateway is slow enough that the run is still charging while the others pay.
    world.sim_call("config", {"latency_ms": 150})
    first = subprocess.Popen(worker_command(), cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_listed(world, run.id)
    # The run has listed every invoice; its worker dies there, a first wave of payers goes,
    # and the run meets invoices paid since it listed them (whatever the machine's speed).
    first.send_signal(signal.SIGKILL)
    first.wait()
    head, tail = tasks[:len(tasks) // 3], tasks[len(tasks) // 3:]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda task: task[0](world, task[1]), head))
        middle = subprocess.Popen(worker_command(), cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        paying = pool.map(lambda task: task[0](world, task[1]), tail)
        # Killed mid-run; its successor takes over what it held, while the others pay.
        time.sleep(rng.uniform(0.3, 1.0))
        middle.send_signal(signal.SIGKILL)
        middle.wait()
        second = subprocess.Popen(worker_command() + ["--exit-when-idle"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        outcomes += list(paying)
    _, errors = second.communicate(timeout=180)
    assert second.returncode == 0, errors[-3000:]
    # What a web request may have left half-way is finished as the worker's pass does.
    journal.reconcile(world.ctx, min_age_seconds=0)

    with session_scope(world.ctx.sessions) as session:
        attempts = {a.transaction_id: a for a in session.execute(select(PaymentAttempt)).scalars()}
        items = session.execute(select(ChargeItem).where(ChargeItem.run_id == run.id)).scalars().all()
    assert len(items) == N_INVOICES
    sales = [t for t in world.sim_call("ledger")["transactions"] if t["type"] == "SALE"]
    assert all(t["transaction_id"] in attempts for t in sales), "a SALE the journal never saw"
    approved = [t for t in sales if t["action_code"] == "000"]
    per_invoice = Counter(attempts[t["transaction_id"]].invoice_id for t in approved)
    assert max(per_invoice.values()) == 1, [k for k, v in per_invoice.items() if v > 1]
    payments = [p for p in world.emu_call("state")["payments"]
                if p.get("invoice_id") and int(p["customer_id"]) >= FIRST_CUSTOMER]
    per_paid_invoice = Counter(int(p["invoice_id"]) for p in payments)
    assert max(per_paid_invoice.values()) == 1
    # Every approval is exactly one Splynx payment.
    assert sorted(p["field_1"] for p in payments) == sorted(t["transaction_id"] for t in approved)
    # The run accounts for every invoice: charged by it, skipped because another channel
    # paid it first (and one did), or — its worker killed between marking the charge sent
    # and the request leaving — failed with nothing charged (ENQ found nothing).
    by_invoice = {attempts[t["transaction_id"]].invoice_id: attempts[t["transaction_id"]]
                  for t in approved}
    counted = Counter(item.status.value for item in items)
    for item in items:
        message = item.message or ""
        if item.status.value == "charged":
            assert by_invoice[item.invoice_id].transaction_id == item.transaction_id
        elif item.status.value == "skipped":
            assert "aid meanwhile" in message or "in progress" in message, message
            assert by_invoice[item.invoice_id].channel.value != "charge_run"
        else:
            assert item.status.value == "error" and "Nothing was charged" in message, \
                (item.status, message)
    assert set(counted) <= {"charged", "skipped", "error"}
    by_channel = Counter((a.channel.value, a.status.value) for a in attempts.values())
    assert counted["skipped"], ("the other channels paid some invoices the run had listed",
                                by_channel, counted, Counter(outcomes))
    assert counted["error"] <= 4  # at most the killed worker's charges in flight
    unpaid = {int(i["id"]) for i in invoices} - set(per_paid_invoice)
    assert unpaid <= {i.invoice_id for i in items if i.status.value == "error"}
    assert {"portal", "staff", "link"} & set(outcomes)
