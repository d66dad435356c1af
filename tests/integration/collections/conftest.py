"""The world of the collections suites: customers with saved cards whose outcomes the
simulator scripts by their last four digits, invoices due on chosen days, a movable clock."""

import datetime as dt
import json
from decimal import Decimal

import pytest

from sandbox.world import build_world
from splynx_ippay.db import session_scope
from splynx_ippay.ippay import Card as GatewayCard
from splynx_ippay.models import Card
from splynx_ippay.services.cards import luhn_valid
from tests.support import default_gateway

DAY = dt.date(2026, 3, 2)


def card_number(n):
    """A valid Visa number unique to ``n`` (its last four digits name it to the simulator)."""
    body = f"400000000{n:06d}"
    return next(body + str(d) for d in range(10) if luhn_valid(body + str(d)))


class Collections:
    """Helpers over a world for the collections suites."""

    def __init__(self, world):
        self.world = world
        self.ctx = world.ctx
        self._next = 1

    def customer(self, cards=1, statuses="active", autopay=True):
        """A new Splynx customer with ``cards`` saved cards (the first the default, used for
        automatic payments when ``autopay``); returns ``(customer_id, [(card_id, last4)])``."""
        store = self.world.store()
        with store.lock:
            n = self._next = self._next + 1
            customer_id = int(store.add_customer(f"auto{n}", f"auto{n}-pass",
                                                 f"Auto Customer {n}", f"auto{n}@example.com",
                                                 status=statuses))
        made = []
        for index in range(cards):
            number = card_number(customer_id * 10 + index)
            token = default_gateway(self.ctx).tokenize(
                GatewayCard(number, 12, 2030, holder=f"Auto {n}")).token
            with session_scope(self.ctx.sessions) as session:
                card = Card(customer_id=customer_id, token=token, brand="Visa",
                            last4=number[-4:], exp_month=12, exp_year=2030,
                            holder_name=f"Auto {n}", is_default=index == 0,
                            autopay=autopay and index == 0)
                session.add(card)
                session.flush()
                made.append((card.id, number[-4:]))
        return customer_id, made

    def invoice(self, customer_id, total="40.00", created=DAY, due=None):
        store = self.world.store()
        with store.lock:
            row = store.create_invoice({
                "customer_id": customer_id, "date_created": created.isoformat(),
                "date_till": (due or created + dt.timedelta(days=14)).isoformat(),
                "items": [{"description": "Internet", "quantity": 1, "price": str(Decimal(total))}]})
        return int(row["id"])

    def script(self, rules):
        """``{last4: [codes]}``: the next SALEs of these cards (the simulator's card rules)."""
        self.world.sim_call("card-rules", {"rules": [{"last4": k, "codes": v}
                                                     for k, v in rules.items()]})

    def schedules(self, *schedules, **settings):
        self.world.set_module_settings({"autopay_schedules": json.dumps(list(schedules)),
                                        **settings})

    def status(self, invoice_id):
        row = next(i for i in self.world.emu_call("state")["invoices"] if int(i["id"]) == invoice_id)
        return row["status"]

    def sales(self, approved=None):
        rows = [t for t in self.world.sim_call("ledger")["transactions"] if t["type"] == "SALE"]
        if approved is not None:
            rows = [t for t in rows if (t["action_code"] == "000") == approved]
        return rows


@pytest.fixture
def collections(database_url):
    world = build_world(database_url)
    yield Collections(world)
    world.stop()
