"""Ninety days of collections on a controlled clock: 200 customers whose cards approve,
decline softly and recover, decline softly for good, decline hard, expire (and some are
renewed), customers who opt out or pay by other means between tries, and who ask for
reminders. Every day the worker runs as the service does (the schedules fire, retries run,
mail is sent through a real SMTP server on loopback, the daily notices and reconciliation
happen). Then, per invoice: paid exactly once, or not charged for a reason the policy
names; each try on its day; each message sent once; nothing charged to an opted-out
customer. On SQLite and PostgreSQL."""

import collections as counting
import datetime as dt
import random

import pytest
from sqlalchemy import select

from sandbox.world import build_world
from splynx_ippay.db import session_scope
from splynx_ippay.models import (AttemptStatus, CaseState, ChargeItem, CollectionCase,
                                 MessageStatus, OutboxMessage, PaymentAttempt)
from splynx_ippay.services import autopay, cards, notices, overview, reconciliation
from splynx_ippay.services.charge_runs.worker import Worker
from tests.conftest import make_database
from tests.integration.collections.conftest import Collections
from tests.integration.collections.test_autopay import DUE_DAY
from tests.integration.mail.mail_helpers import SmtpServer

START = dt.date(2026, 1, 5)
DAYS = 90
CUSTOMERS = 200
RETRY_DAYS = (1, 3, 7)
MAX_TRIES = 4
#: How the customers behave, with their share of the 200.
KINDS = (("good", 70), ("soft_then_ok", 30), ("soft_always", 15), ("hard", 15),
         ("hard_then_second_card", 15), ("expiring_renewed", 15), ("expiring_left", 10),
         ("opted_out", 15), ("pays_by_cash", 15))


@pytest.fixture(params=["sqlite", "postgresql"])
def scenario_world(request, tmp_path):
    url, drop = make_database(request.param, tmp_path)
    world = build_world(url, csrf=False)
    smtp = SmtpServer().start()
    world.ctx.settings.update(smtp.settings())
    yield world, smtp
    smtp.stop()
    world.stop()
    drop()


class Town:
    """The customers, their cards and what each does."""

    def __init__(self, world, seed=11):
        self.world = world
        self.ctx = world.ctx
        self.helper = Collections(world)
        self.rng = random.Random(seed)
        self.people = {}    # customer id -> kind
        self.cards = {}     # customer id -> [(card id, last4)]
        self.billing_day = {}
        kinds = [kind for kind, share in KINDS for _ in range(share)]
        assert len(kinds) == CUSTOMERS
        self.rng.shuffle(kinds)
        for n, kind in enumerate(kinds):
            cid, made = self.helper.customer(cards=2 if kind == "hard_then_second_card" else 1)
            self.people[cid], self.cards[cid] = kind, made
            self.billing_day[cid] = n % 28
        self.invoices = {}  # invoice id -> customer id
        self.reminded = set()

    def setup(self):
        ctx = self.ctx
        rules = {}
        for cid, kind in self.people.items():
            (card_id, last4), *others = self.cards[cid]
            if kind == "soft_then_ok":
                rules[last4] = ["051", "000"] * 4
            elif kind == "soft_always":
                rules[last4] = ["051"] * 40
            elif kind in ("hard", "hard_then_second_card"):
                rules[last4] = ["041"] * 10
            elif kind == "pays_by_cash":
                rules[last4] = ["051"] * 40
            elif kind.startswith("expiring"):
                self._expire(card_id, START + dt.timedelta(days=40))
            if kind == "hard_then_second_card":
                autopay.set_card_autopay(ctx, cid, others[0][0], True)
            if kind == "opted_out":
                autopay.set_preferences(ctx, cid, autopay=False)
            if self.rng.random() < 0.3:
                autopay.set_preferences(ctx, cid, reminders=True)
                self.reminded.add(cid)
        self.helper.script(rules)
        self.helper.schedules(DUE_DAY, retry_days=",".join(map(str, RETRY_DAYS)),
                              retry_max_tries=MAX_TRIES, reminder_days=3,
                              staff_emails="billing@isp.example",
                              public_url="https://billing.isp.example")

    def _expire(self, card_id, day):
        from splynx_ippay.models import Card

        with session_scope(self.ctx.sessions) as session:
            card = session.get(Card, card_id)
            card.exp_month, card.exp_year = day.month, day.year

    def morning(self, day):
        """What customers do before the worker's pass: invoices are issued on billing days,
        renewals typed in after the expiring notice, invoices paid in cash."""
        for cid, kind in self.people.items():
            if (day - START).days % 30 == self.billing_day[cid] % 30:
                total = self.rng.choice(["29.99", "45.00", "60.00", "17.50"])
                self.invoices[self.helper.invoice(cid, total=total, created=day,
                                                  due=day + dt.timedelta(days=10))] = cid
            if kind == "expiring_renewed" and self._told_expiring(cid) and day.day == 20:
                card_id, _ = self.cards[cid][0]
                cards.update_expiry(self.ctx, cid, card_id, 12, 2031)
        if (day - START).days % 5 == 2:
            for invoice_id, cid in self.invoices.items():
                if self.people[cid] == "pays_by_cash" and self._declined_once(invoice_id) \
                        and self.helper.status(invoice_id) == "not_paid":
                    self._pay_cash(invoice_id, day)

    def _told_expiring(self, cid):
        card_id, _ = self.cards[cid][0]
        with session_scope(self.ctx.sessions) as session:
            return session.execute(select(OutboxMessage.id).where(
                OutboxMessage.purpose == "expiring",
                OutboxMessage.object_key.like(f"card:{card_id}:%"))).first() is not None

    def _declined_once(self, invoice_id):
        with session_scope(self.ctx.sessions) as session:
            case = session.execute(select(CollectionCase).where(
                CollectionCase.invoice_id == invoice_id)).scalar_one_or_none()
        return case is not None and case.tries >= 1

    def _pay_cash(self, invoice_id, day):
        store = self.world.store()
        with store.lock:
            invoice = store.invoices.get(invoice_id)
            store.add_payment({"customer_id": invoice["customer_id"], "amount": str(invoice["due"]),
                               "payment_type": 1, "date": day.isoformat(),
                               "receipt_number": f"cash-{invoice_id}", "invoice_id": invoice_id})


def run_day(world, day):
    world.today.set(day, dt.time(7, 0))
    world.sim_call("clock", {"today": day.isoformat()})
    worker = Worker(world.ctx, poll=0.02, settle_after=0.5, retry_after=0.2)
    timer_stop = dt.datetime.now() + dt.timedelta(seconds=120)

    def tick():
        if dt.datetime.now() > timer_stop:
            worker.stop_event.set()

    worker.run(exit_when_idle=True, on_tick=tick)


@pytest.mark.long
@pytest.mark.timeout(900)
def test_ninety_days_of_collections(scenario_world):
    world, smtp = scenario_world
    ctx = world.ctx
    town = Town(world)
    town.setup()
    for n in range(DAYS):
        day = START + dt.timedelta(days=n)
        town.morning(day)
        run_day(world, day)
    end = START + dt.timedelta(days=DAYS - 1)
    notices.send_due(ctx)  # the last day's messages (the next pass would send them)

    ledger = world.sim_call("ledger")["transactions"]
    sales = [t for t in ledger if t["type"] == "SALE"]
    with session_scope(ctx.sessions) as session:
        attempts = {a.transaction_id: a for a in session.execute(select(PaymentAttempt)).scalars()}
        cases = {c.invoice_id: c for c in session.execute(select(CollectionCase)).scalars()}
        items = session.execute(select(ChargeItem)).scalars().all()
        outbox = session.execute(select(OutboxMessage)).scalars().all()
    tries = counting.defaultdict(list)  # invoice id -> [(day, action code)]
    for sale in sales:
        attempt = attempts[sale["transaction_id"]]
        tries[attempt.invoice_id].append((dt.date.fromisoformat(sale["date"]), sale["action_code"]))
    state = {int(i["id"]): i for i in world.emu_call("state")["invoices"]}
    payments = counting.Counter(
        int(p["invoice_id"]) for p in world.emu_call("state")["payments"] if p["field_1"])

    outcome = counting.Counter()
    for invoice_id, cid in town.invoices.items():
        kind, invoice = town.people[cid], state[invoice_id]
        due = dt.date.fromisoformat(invoice["date_till"])
        approved = [d for d, code in tries[invoice_id] if code == "000"]
        # Never two approvals, never two payments of the add-on for one invoice.
        assert len(approved) <= 1 and payments[invoice_id] == len(approved), (invoice_id, kind)
        if kind == "opted_out":
            assert tries[invoice_id] == [], invoice_id
        if due > end:
            assert tries[invoice_id] == []  # not due yet: not charged early
            continue
        case = cases.get(invoice_id)
        days = [d for d, _ in tries[invoice_id]]
        if days:
            # The first try on the due date, each retry on its day.
            schedule = [due] + [due + dt.timedelta(days=o) for o in RETRY_DAYS]
            assert days == schedule[:len(days)], (invoice_id, kind, days)
            assert len(days) <= MAX_TRIES
        if approved:
            assert invoice["status"] == "paid"
            outcome["paid by card"] += 1
        elif invoice["status"] == "paid":
            # Paid in cash between two tries: the next try found it paid (or is still to come).
            assert kind == "pays_by_cash", (invoice_id, kind)
            assert case.state == CaseState.PAID or case.next_try_on > end, case.state
            outcome["paid otherwise"] += 1
        elif case is not None and case.state == CaseState.STOPPED:
            assert kind in ("soft_always", "hard"), (invoice_id, kind, case.reason)
            outcome["stopped by the policy"] += 1
        elif case is not None and case.state == CaseState.OPEN:
            assert case.next_try_on > end, (invoice_id, kind)
            outcome["retry still to come"] += 1
        else:
            assert kind in ("opted_out", "expiring_left", "hard"), (invoice_id, kind)
            mine = [(i.run_id, i.status.value, i.message) for i in items
                    if i.invoice_id == invoice_id]
            assert len(mine) == 1 and mine[0][1] == "skipped" and mine[0][2], (kind, mine)
            outcome["not charged: " + kind] += 1
        waiting = case is not None and case.state == CaseState.OPEN and case.next_try_on > end
        if kind in ("good", "soft_then_ok", "hard_then_second_card", "expiring_renewed"):
            assert approved or waiting, (invoice_id, kind, tries[invoice_id])
        if kind == "soft_always":
            assert not approved and (len(days) == MAX_TRIES or case.next_try_on > end)
    assert outcome["paid by card"] > 300 and outcome["stopped by the policy"] > 20

    # Hard declines: the card stops after two in a row; the second card is used.
    for cid, kind in town.people.items():
        if kind in ("hard", "hard_then_second_card"):
            hard_tries = [t for t in sales if t["last4"] == town.cards[cid][0][1]]
            assert all(t["action_code"] == "041" for t in hard_tries)
            assert len(hard_tries) <= 2  # never tried again on that card after the stop

    # Each message once, at the SMTP server; never a card number.
    assert all(row.status == MessageStatus.SENT for row in outbox)
    ids = [m["Message-ID"] for m in smtp.received]
    assert len(ids) == len(set(ids)) == len(outbox)
    by_purpose = counting.Counter(row.purpose for row in outbox)
    automatic_declines = [a for a in attempts.values() if a.status == AttemptStatus.DECLINED]
    assert by_purpose["decline"] == len(automatic_declines) == \
        sum(1 for s in sales if s["action_code"] != "000")
    assert by_purpose["expiring"] == sum(1 for k in town.people.values() if k.startswith("expiring"))
    assert by_purpose["autopay_stopped"] == sum(1 for k in town.people.values()
                                               if k in ("hard", "hard_then_second_card"))
    customer_at = {ctx.splynx.get_customer(cid).email: cid for cid in town.people}
    reminded = {customer_at[row.recipient] for row in outbox if row.purpose == "reminder"}
    assert reminded and reminded <= town.reminded
    assert by_purpose["run_summary"] > DAYS / 2
    assert not any(town.people.get(customer_at.get(row.recipient)) == "opted_out"
                   and row.purpose in ("decline", "reminder") for row in outbox)

    # The overview and the reconciliation agree with the gateway.
    figures = overview.build(ctx)
    assert figures.totals["collected_cents"] == sum(s["amount"] for s in sales
                                                    if s["action_code"] == "000")
    assert figures.totals["declined"] == len(automatic_declines)
    assert reconciliation.run(ctx, end).findings == []
    print("\n", dict(outcome), dict(by_purpose))
