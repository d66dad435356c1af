"""Autopay schedules and the decline policy (services/autopay.py, services/dunning.py): a
schedule runs once a day whoever fires it, missed days are caught up within the limit, soft
declines are retried on their days and hard ones never on the same card, opted-out
customers are never charged automatically."""

import datetime as dt
import subprocess
import sys
import threading

from sqlalchemy import select

from sandbox.world import ROOT
from splynx_ippay.context import build_context
from splynx_ippay.db import session_scope
from splynx_ippay.models import Card, ChargeRun, CollectionCase
from splynx_ippay.services import autopay
from tests.staff.conftest import run_worker_until_done

from tests.integration.collections.conftest import DAY

DUE_DAY = {"id": "due", "name": "On the due date", "trigger": "due_day", "at": "06:00"}


def runs(ctx):
    with session_scope(ctx.sessions) as session:
        return session.execute(select(ChargeRun).order_by(ChargeRun.id)).scalars().all()


def case_of(ctx, invoice_id):
    with session_scope(ctx.sessions) as session:
        return session.execute(select(CollectionCase).where(
            CollectionCase.invoice_id == invoice_id)).scalar_one_or_none()


def day_at(collections, day, at=dt.time(7, 0)):
    collections.world.today.set(day, at)
    collections.world.sim_call("clock", {"today": day.isoformat()})


def charge_due(collections, day):
    """What the worker does on ``day`` after the schedules' hour: fire, then charge."""
    day_at(collections, day)
    for run in autopay.fire(collections.ctx):
        run_worker_until_done(collections.ctx, run.id)


def test_a_schedule_runs_once_a_day_however_many_fire_it(collections):
    ctx = collections.ctx
    customers = [collections.customer() for _ in range(3)]
    invoices = [collections.invoice(cid, due=DAY) for cid, _ in customers]
    collections.invoice(customers[0][0], due=DAY + dt.timedelta(days=1))  # not today's
    collections.schedules(DUE_DAY)
    day_at(collections, DAY, dt.time(5, 59))
    assert autopay.fire(ctx) == []  # before its hour
    day_at(collections, DAY)
    # Two workers on two hosts (contexts of their own) and the command, at once.
    other = build_context(collections.world.config, today=collections.world.today,
                          now=collections.world.today.now)
    made = []
    threads = [threading.Thread(target=lambda c=c: made.extend(autopay.fire(c)))
               for c in (ctx, other, ctx, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    command = subprocess.run([sys.executable, "-m", "splynx_ippay.cli", "autopay", "--now",
                              f"{DAY.isoformat()}T07:00"], cwd=ROOT,
                             env=collections.world.env(), capture_output=True, text=True)
    assert command.returncode == 0 and "already queued" in command.stdout, command.stderr
    assert len(made) == 1 and [r.schedule_key for r in runs(ctx)] == [f"due:{DAY.isoformat()}"]
    run_worker_until_done(ctx, made[0].id)
    assert [collections.status(i) for i in invoices] == ["paid"] * 3
    assert len(collections.sales(approved=True)) == 3
    # The same day again: nothing more.
    assert autopay.fire(ctx) == [] and len(collections.sales()) == 3


def test_missed_days_are_caught_up_within_the_limit(collections):
    ctx = collections.ctx
    cid, _ = collections.customer()
    invoices = {n: collections.invoice(cid, due=DAY + dt.timedelta(days=n)) for n in range(-2, 6)}
    collections.schedules(DUE_DAY, autopay_catch_up_days=2)
    # Added on DAY: the days before it are not caught up.
    charge_due(collections, DAY)
    assert [r.schedule_key for r in runs(ctx)] == [f"due:{DAY.isoformat()}"]
    # The worker was down the next four days.
    day_at(collections, DAY + dt.timedelta(days=5))
    made = autopay.fire(ctx)
    assert sorted(r.schedule_key for r in made) == [
        f"due:{(DAY + dt.timedelta(days=n)).isoformat()}" for n in (3, 4, 5)]
    for run in made:
        run_worker_until_done(ctx, run.id)
    assert {n: collections.status(i) for n, i in invoices.items()} == {
        -2: "not_paid", -1: "not_paid", 0: "paid", 1: "not_paid", 2: "not_paid", 3: "paid",
        4: "paid", 5: "paid"}


def test_soft_declines_are_retried_on_their_days_and_hard_ones_never(collections):
    ctx = collections.ctx
    recovers, [(_, recovers_card)] = collections.customer()
    gives_up, [(_, gives_up_card)] = collections.customer()
    lost, [(lost_card_id, lost_card)] = collections.customer()
    other_card, [(_, first), (second_id, second)] = collections.customer(cards=2)
    opted_out, _ = collections.customer()
    autopay.set_preferences(ctx, opted_out, autopay=False)
    autopay.set_card_autopay(ctx, other_card, second_id, True)
    collections.script({recovers_card: ["051", "051", "000"],
                        gives_up_card: ["051"] * 6, lost_card: ["041"], first: ["043"]})
    invoice = {who: collections.invoice(who, due=DAY)
               for who in (recovers, gives_up, lost, other_card, opted_out)}
    collections.schedules(DUE_DAY)

    charge_due(collections, DAY)
    assert case_of(ctx, invoice[recovers]).next_try_on == DAY + dt.timedelta(days=1)
    assert case_of(ctx, invoice[lost]).state.value == "stopped"  # hard, no other card
    assert case_of(ctx, invoice[other_card]).next_try_on == DAY + dt.timedelta(days=1)
    assert collections.status(invoice[opted_out]) == "not_paid"

    charge_due(collections, DAY + dt.timedelta(days=1))
    assert collections.status(invoice[other_card]) == "paid"  # on the card allowed besides
    assert case_of(ctx, invoice[recovers]).next_try_on == DAY + dt.timedelta(days=3)
    charge_due(collections, DAY + dt.timedelta(days=2))  # nobody's day
    charge_due(collections, DAY + dt.timedelta(days=3))
    recovered = case_of(ctx, invoice[recovers])
    assert recovered.state.value == "paid" and recovered.tries == 3
    assert recovered.recovered_cents == 4000 and collections.status(invoice[recovers]) == "paid"
    charge_due(collections, DAY + dt.timedelta(days=7))
    stopped = case_of(ctx, invoice[gives_up])
    assert stopped.state.value == "stopped" and stopped.tries == 4
    charge_due(collections, DAY + dt.timedelta(days=8))

    # Who was charged, how often: the hard-declined card once, the opted-out customer never.
    by_card = {}
    for sale in collections.sales():
        by_card.setdefault(sale["last4"], []).append(sale["action_code"])
    assert by_card[recovers_card] == ["051", "051", "000"]
    assert by_card[gives_up_card] == ["051"] * 4
    assert by_card[lost_card] == ["041"] and by_card[first] == ["043"]
    assert by_card[second] == ["000"]
    opted_out_cards = {c.last4 for c in _cards(ctx, opted_out)}
    assert not opted_out_cards & set(by_card)
    # Two hard declines in a row stop a card's automatic use: one is not enough.
    assert _card(ctx, lost_card_id).autopay and _card(ctx, lost_card_id).hard_declines == 1


def test_a_retry_charges_only_the_invoices_it_retries(collections):
    """A retry run names its invoices; other unpaid invoices of the period (issued the same
    day, due later) are not charged early, however the run's pages are read."""
    ctx = collections.ctx
    soft, [(_, card)] = collections.customer()
    other, _ = collections.customer()
    collections.script({card: ["051"]})
    retried = collections.invoice(soft, due=DAY)
    later = [collections.invoice(cid, due=DAY + dt.timedelta(days=5)) for cid in (soft, other)]
    collections.schedules(DUE_DAY)
    charge_due(collections, DAY)
    charge_due(collections, DAY + dt.timedelta(days=1))
    assert collections.status(retried) == "paid"
    assert [collections.status(i) for i in later] == ["not_paid", "not_paid"]
    assert len(collections.sales()) == 2 and len(ctx.splynx.find_payments(customer_id=other)) == 0


def test_a_card_declined_hard_twice_in_a_row_stops_paying_automatically(collections):
    ctx = collections.ctx
    cid, [(card_id, last4)] = collections.customer()
    collections.script({last4: ["054", "054"]})
    first = collections.invoice(cid, due=DAY)
    second = collections.invoice(cid, due=DAY + dt.timedelta(days=1))
    collections.schedules(DUE_DAY)
    charge_due(collections, DAY)
    charge_due(collections, DAY + dt.timedelta(days=1))
    card = _card(ctx, card_id)
    assert card.hard_declines == 2 and not card.autopay
    assert {case_of(ctx, i).state.value for i in (first, second)} == {"stopped"}
    collections.invoice(cid, due=DAY + dt.timedelta(days=2))
    charge_due(collections, DAY + dt.timedelta(days=2))
    assert len(collections.sales()) == 2  # no card for automatic payments any more


def test_balance_mode_charges_what_the_customer_owes_once(collections):
    ctx = collections.ctx
    cid, _ = collections.customer()
    for total in ("10.00", "15.00"):
        collections.invoice(cid, total=total, due=DAY)
    collections.schedules({**DUE_DAY, "id": "owed", "mode": "balance"})
    charge_due(collections, DAY)
    [sale] = collections.sales()
    assert int(sale["amount"]) == 2500  # both invoices, one charge
    assert ctx.splynx.get_customer_billing(cid).deposit_cents == 0
    charge_due(collections, DAY)
    assert len(collections.sales()) == 1


def _cards(ctx, customer_id):
    with session_scope(ctx.sessions) as session:
        return session.execute(select(Card).where(Card.customer_id == customer_id)).scalars().all()


def _card(ctx, card_id):
    with session_scope(ctx.sessions) as session:
        return session.get(Card, card_id)


def test_autopay_debits_a_bank_account_by_check_and_skips_a_revoked_one(collections):
    from splynx_ippay.models import ChargeItem, PaymentAttempt
    from splynx_ippay.services import bank_accounts
    from tests.support import save_bank_account

    ctx = collections.ctx
    payer, _ = collections.customer(cards=0)
    revoked, _ = collections.customer(cards=0)
    account = save_bank_account(ctx, payer)
    other = save_bank_account(ctx, revoked, account="55512345", holder="Rev Oked")
    bank_accounts.revoke(ctx, revoked, other.id)
    paid, skipped = collections.invoice(payer, due=DAY), collections.invoice(revoked, due=DAY)
    collections.schedules(DUE_DAY)
    charge_due(collections, DAY)

    assert collections.status(paid) == "paid" and collections.status(skipped) == "not_paid"
    with session_scope(ctx.sessions) as session:
        [attempt] = session.execute(select(PaymentAttempt)).scalars().all()
        items = {i.customer_id: i for i in session.execute(select(ChargeItem)).scalars()}
    assert attempt.is_bank and attempt.card_id == account.id and attempt.sec_code == "WEB"
    assert attempt.origin == "RECURRING" and attempt.status.value == "posted"
    [check] = [t for t in collections.world.sim_call("ledger")["transactions"] if t["type"] == "CHECK"]
    assert check["transaction_id"] == attempt.transaction_id and check["last4"] == "6789"
    assert not collections.sales(), "no SALE: the bank account is debited by CHECK"
    assert items[payer].status.value == "charged"
    assert items[revoked].status.value == "skipped"
    assert "debit authorisation of the bank account Checking •••• 2345 was revoked" in \
        items[revoked].message
