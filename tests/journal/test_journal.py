"""The payment journal's invariants (design.md §3), on SQLite, MariaDB and PostgreSQL,
against the real simulator and emulator, including a process killed mid-payment."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from splynx_ippay.config import validate
from splynx_ippay.db import session_scope
from splynx_ippay.ippay import Card as GatewayCard
from splynx_ippay.context import build_context
from splynx_ippay.models import (AttemptKind, AttemptStatus as S, Card, Channel, InvalidTransition,
                                 PaymentAttempt, compare_and_set)
from splynx_ippay.services import journal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def settings_for(database_url, splynx_emu, ippay_sim, read_timeout=5.0):
    return validate({
        "SPLYNX_URL": splynx_emu.url, "SPLYNX_API_KEY": "sandbox-key",
        "SPLYNX_API_SECRET": "sandbox-secret", "IPPAY_URL": ippay_sim.url + "/ippay",
        "IPPAY_READ_TIMEOUT": read_timeout, "DATABASE_URL": database_url,
    })


@pytest.fixture
def addon(any_database_url, splynx_emu, ippay_sim):
    ctx = build_context(settings_for(any_database_url, splynx_emu, ippay_sim))
    yield ctx
    ctx.engine.dispose()


def terminal_of(ctx):
    config = ctx.module_settings.current()
    return ctx.gateways.terminal_for(config.default, config.read_ok)


def saved_card(addon, customer_id=1):
    gateway = addon.gateways.client(terminal_of(addon))
    result = gateway.tokenize(GatewayCard("4111111111111111", 12, 2030, holder="Alice"))
    assert result.approved
    with session_scope(addon.sessions) as session:
        card = Card(customer_id=customer_id, token=result.token, brand="Visa", last4="1111",
                    exp_month=12, exp_year=2030, holder_name="Alice", is_default=True)
        session.add(card)
    return card


def unpaid_invoice(addon, customer_id=1):
    for invoice in addon.splynx.list_invoices(customer_id=customer_id, status="not_paid"):
        if invoice.due_cents % 100 == 0:
            return invoice
    raise AssertionError("no approving unpaid invoice in the seed")


def declining_invoice(addon, customer_id=1):
    """The seed's invoice of 19.05: the simulator declines 05 cents (do not honour)."""
    for invoice in addon.splynx.list_invoices(customer_id=customer_id, status="not_paid"):
        if invoice.due_cents == 1905:
            return invoice
    raise AssertionError("no declining unpaid invoice in the seed")


def source_of(card):
    return journal.PaymentSource(brand=card.brand, last4=card.last4, card=card)


def open_for(addon, card, invoice, **extra):
    return journal.open_attempt(addon, kind=AttemptKind.INVOICE, customer_id=invoice.customer_id,
                                amount_cents=invoice.due_cents, source=source_of(card),
                                channel=Channel.PORTAL, terminal=terminal_of(addon),
                                document_id=invoice.id, document_number=invoice.number,
                                **extra).attempt


def sim(ippay_sim, path, payload=None):
    method = requests.post if payload is not None else requests.get
    return method(f"{ippay_sim.url}/_sim/{path}", json=payload, timeout=10).json()


def splynx_payments(splynx_emu, invoice_id):
    state = requests.get(f"{splynx_emu.url}/_sandbox/state", timeout=10).json()
    return [p for p in state["payments"] if str(p.get("invoice_id")) == str(invoice_id)]


def load(addon, attempt_id):
    with session_scope(addon.sessions) as session:
        return session.get(PaymentAttempt, attempt_id)


def test_attempt_is_committed_before_the_request_leaves(addon, ippay_sim, splynx_emu):
    card, invoice = saved_card(addon), unpaid_invoice(addon)
    attempt = open_for(addon, card, invoice)
    sim(ippay_sim, "faults", {"faults": [{"kind": "timeout_commit", "delay_s": 1.5,
                                          "types": ["SALE"], "count": 1}]})
    done = threading.Thread(target=journal.charge, args=(addon, attempt))
    done.start()
    seen = None
    for _ in range(100):
        sale_ids = [r["body"] for r in sim(ippay_sim, "requests")["requests"]
                    if "<TransactionType>SALE" in r["body"]]
        if sale_ids:
            # The gateway has the request and is still holding it: the journal, read from
            # another connection, already has the attempt and its TransactionID as sent.
            seen = load(addon, attempt.id)
            assert attempt.transaction_id in sale_ids[0]
            break
        time.sleep(0.02)
    done.join()
    assert seen is not None and seen.status == S.SENT.value
    assert load(addon, attempt.id).status == S.POSTED.value


def test_one_open_attempt_per_document_under_concurrency(addon):
    card, invoice = saved_card(addon), unpaid_invoice(addon)
    outcomes = []
    barrier = threading.Barrier(6)

    def try_open():
        barrier.wait()
        try:
            outcomes.append(open_for(addon, card, invoice))
        except journal.AttemptInProgress as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=try_open) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    opened = [o for o in outcomes if isinstance(o, PaymentAttempt)]
    assert len(opened) == 1 and len(outcomes) == 6
    # Once final, the lock is released and a new attempt may start.
    journal.abandon(addon, opened[0], "test")
    assert open_for(addon, card, invoice).status == S.CREATED


def test_a_resubmitted_request_key_finds_its_attempt(addon):
    card, invoice = saved_card(addon), unpaid_invoice(addon)
    first = open_for(addon, card, invoice, request_key="form:1")
    again = open_for(addon, card, invoice, request_key="form:1")
    assert again.id == first.id


def test_transaction_ids_are_unique_and_well_formed(addon):
    card, invoice = saved_card(addon), unpaid_invoice(addon)
    ids = set()
    for _ in range(20):
        attempt = open_for(addon, card, invoice)
        ids.add(attempt.transaction_id)
        journal.abandon(addon, attempt, "test")
    assert len(ids) == 20 and all(len(i) == 18 and i.isalnum() and i.upper() == i for i in ids)


def test_statuses_move_only_forward(addon, ippay_sim):
    card, invoice = saved_card(addon), unpaid_invoice(addon)
    attempt = journal.charge(addon, open_for(addon, card, invoice))
    assert attempt.status == S.POSTED.value and attempt.lock_key is None
    with session_scope(addon.sessions) as session:
        row = session.get(PaymentAttempt, attempt.id)
        for status in (S.APPROVED, S.POSTED, S.SENT, S.DECLINED):
            with pytest.raises(InvalidTransition):
                compare_and_set(session, row, status)
    events = [(e.from_status, e.to_status) for e in load_events(addon, attempt.id)]
    assert events == [(None, "created"), ("created", "sent"), ("sent", "approved"),
                      ("approved", "posted")]


def load_events(addon, attempt_id):
    with session_scope(addon.sessions) as session:
        return list(session.get(PaymentAttempt, attempt_id).events)


def test_decline_keeps_code_and_reason_and_releases_the_invoice(addon, splynx_emu):
    card, invoice = saved_card(addon), declining_invoice(addon)
    attempt = journal.charge(addon, open_for(addon, card, invoice))
    assert attempt.status == S.DECLINED.value and attempt.action_code == "005"
    assert attempt.message and attempt.lock_key is None
    assert splynx_payments(splynx_emu, invoice.id) == []


CHARGE_SCRIPT = """
import sys
from splynx_ippay.config import validate
from splynx_ippay.context import build_context
from splynx_ippay.services import journal
from splynx_ippay.models import PaymentAttempt
from splynx_ippay.db import session_scope
settings = validate(dict(SPLYNX_URL=sys.argv[1], SPLYNX_API_KEY="sandbox-key",
                         SPLYNX_API_SECRET="sandbox-secret", IPPAY_URL=sys.argv[2],
                         IPPAY_READ_TIMEOUT="30", DATABASE_URL=sys.argv[3]))
addon = build_context(settings)
with session_scope(addon.sessions) as session:
    attempt = session.get(PaymentAttempt, int(sys.argv[4]))
print("charging", flush=True)
journal.charge(addon, attempt)
print("finished", flush=True)
"""


def test_a_process_killed_mid_payment_is_settled_by_enq_and_posted_once(
        addon, any_database_url, ippay_sim, splynx_emu):
    card, invoice = saved_card(addon), unpaid_invoice(addon)
    attempt = open_for(addon, card, invoice)
    sim(ippay_sim, "faults", {"faults": [{"kind": "timeout_commit", "delay_s": 3.0,
                                          "types": ["SALE"], "count": 1}]})
    child = subprocess.Popen(
        [sys.executable, "-c", CHARGE_SCRIPT, splynx_emu.url, ippay_sim.url + "/ippay",
         any_database_url, str(attempt.id)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": ROOT})
    assert child.stdout.readline().strip() == "charging"
    for _ in range(200):
        if any("<TransactionType>SALE" in r["body"] for r in sim(ippay_sim, "requests")["requests"]):
            break
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert load(addon, attempt.id).status == S.SENT.value
    # Not yet old enough: a live request might still be waiting on it.
    assert journal.reconcile(addon, min_age_seconds=3600) == {}
    time.sleep(3.2)  # let the simulator finish committing the charge
    assert journal.reconcile(addon, min_age_seconds=0) == {S.POSTED.value: 1}
    assert journal.reconcile(addon, min_age_seconds=0) == {}
    ledger = sim(ippay_sim, "ledger")["transactions"]
    assert [t["type"] for t in ledger].count("SALE") == 1
    assert len(splynx_payments(splynx_emu, invoice.id)) == 1


# --- compare-and-set: one process moves an attempt, a stale one never overwrites it --------

def sales_of(ippay_sim, transaction_id):
    return [t for t in sim(ippay_sim, "ledger")["transactions"]
            if t["type"] == "SALE" and t["transaction_id"] == transaction_id]


def test_a_stale_abandon_never_fails_a_sale_in_flight(addon, ippay_sim, splynx_emu):
    """A request that read the attempt as created (then found Splynx silent, or the invoice
    changed) must not mark it failed while another process has its SALE at the gateway:
    the approval would be dropped and the invoice unlocked for a second charge."""
    card, invoice = saved_card(addon), unpaid_invoice(addon)
    attempt = open_for(addon, card, invoice, request_key="form:stale")
    stale = load(addon, attempt.id)
    sim(ippay_sim, "faults", {"faults": [{"kind": "timeout_commit", "delay_s": 1.0,
                                          "types": ["SALE"], "count": 1}]})
    outcome = {}
    charging = threading.Thread(target=lambda: outcome.update(
        attempt=journal.charge(addon, attempt)))
    charging.start()
    for _ in range(200):
        if sales_of(ippay_sim, attempt.transaction_id):
            break
        time.sleep(0.02)
    left = journal.abandon(addon, stale, "Splynx did not answer before charging")
    charging.join()
    assert left.status == S.SENT.value
    assert outcome["attempt"].status == S.POSTED.value
    assert load(addon, attempt.id).status == S.POSTED.value
    assert len(sales_of(ippay_sim, attempt.transaction_id)) == 1
    assert len(splynx_payments(splynx_emu, invoice.id)) == 1


def test_the_same_form_sent_twice_is_charged_by_one_request_only(addon, ippay_sim, splynx_emu):
    """The second submit of a form finds the first one's attempt still created (the first
    request is re-reading the invoice): it shows that attempt and charges nothing."""
    from splynx_ippay.services import payments

    card, invoice = saved_card(addon), unpaid_invoice(addon)
    first = open_for(addon, card, invoice, request_key="form:twice")
    second = payments.pay_document(addon, payments.INVOICE, invoice, card_id=card.id,
                                   request_key="form:twice", channel=Channel.PORTAL)
    assert second.replay and second.attempt.id == first.id
    assert sales_of(ippay_sim, first.transaction_id) == []
    assert journal.charge(addon, first).status == S.POSTED.value
    # A stale copy charged again (a worker resuming late) sends nothing either.
    assert journal.charge(addon, first).status == S.POSTED.value
    assert len(sales_of(ippay_sim, first.transaction_id)) == 1
    assert len(splynx_payments(splynx_emu, invoice.id)) == 1


def test_simultaneous_charges_of_one_attempt_send_one_sale(addon, ippay_sim, splynx_emu):
    card, invoice = saved_card(addon), unpaid_invoice(addon)
    attempt = open_for(addon, card, invoice)
    barrier = threading.Barrier(4)
    outcomes = []

    def go():
        barrier.wait()
        try:
            outcomes.append(journal.charge(addon, attempt))
        except Exception as exc:  # noqa: BLE001 - any exception is a failure of the test
            outcomes.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(o, PaymentAttempt) for o in outcomes), outcomes
    assert load(addon, attempt.id).status == S.POSTED.value
    assert len(sales_of(ippay_sim, attempt.transaction_id)) == 1
    assert len(splynx_payments(splynx_emu, invoice.id)) == 1
