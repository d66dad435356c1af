"""Per-partner settings (Splynx's ``per_partner_options``): the settings page's partner
selector, a partner's own terminal, gateway and payment method, and every charge on the
customer's partner's terminal — a card only on the terminal that made it."""

import re

from sqlalchemy import select

from splynx_ippay.db import session_scope
from splynx_ippay.models import Card, ChargeItem, StaffAction

from .conftest import run_worker_until_done, start_run
from .test_charge_run import PERIOD

MODULE = "splynx_ippay_addon"
PARTNER2 = {"terminal_id": "PARTNER2TERM", "gateway_mode": "test", "payment_method_id": "3",
            "bank_payment_method_id": "2"}


def settings_url(world, partner=None):
    return f"{world.url}/ippay/admin/settings" + (f"?partner={partner}" if partner else "")


def gateway_knows(world, *terminals):
    """The simulator accepts only the terminals it is told of (sandbox/ippay config)."""
    world.sim_call("config", {"terminals": ["TESTTERMINAL", *terminals]})


def add_card(world, session, holder):
    """A customer saves a card in the portal (the staff world posts without form tokens)."""
    return session.post(f"{world.url}/ippay/cards", data={
        "holder_name": holder, "number": "4111111111111111", "expiry": "12/30", "cvv": "737"})


def save_partner(world, admin, values=PARTNER2, partner=2):
    return admin.post(settings_url(world, partner), data=values, allow_redirects=False)


def terminals_of(world, kind, customer_id=None):
    """``{terminal}`` of the simulator's requests of ``kind`` (SALE, AUTHONLY…)."""
    found = set()
    for entry in world.sim_call("requests")["requests"]:
        body = entry["body"] or ""
        if re.search(rf"<TransactionType>\s*{kind}\s*</TransactionType>", body):
            found.add(re.search(r"<TerminalID>\s*([^<\s]+)", body).group(1))
    return found


def test_the_partner_selector_shows_and_saves_a_partners_own_values(staff_world):
    admin = staff_world.login_admin()
    page = admin.get(settings_url(staff_world)).text
    selector = page.split('id="partner"', 1)[1].split("</select>", 1)[0]
    assert '<option value="">Default</option>' in selector
    assert "Second Partner (#2)" in selector and "Default (#1)" in selector
    default_before = staff_world.ctx.splynx.get_module_config(MODULE)

    partner = admin.get(settings_url(staff_world, 2))
    assert partner.ok and "Partner Second Partner" in partner.text
    # Only what a partner may set apart; nothing marked while it equals the Default.
    assert 'id="terminal_id"' in partner.text and 'id="charge_concurrency"' not in partner.text
    assert 'class="mark"' not in partner.text
    assert 'action="/ippay/admin/settings?partner=2"' in partner.text

    gateway_knows(staff_world, "PARTNER2TERM")
    bad = save_partner(staff_world, admin, {**PARTNER2, "terminal_id": "BAD ID!"})
    assert bad.status_code == 400 and "Nothing was saved" in bad.text
    saved = save_partner(staff_world, admin)
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/settings?partner=2")
    stored = staff_world.ctx.splynx.get_module_config(MODULE, partner_id=2)
    assert stored["terminal_id"] == "PARTNER2TERM"
    assert staff_world.ctx.splynx.get_module_config(MODULE) == default_before
    config = staff_world.ctx.module_settings.current()
    assert config.for_partner(2).terminal_id == "PARTNER2TERM"
    assert config.for_partner(1) == config.default

    page = admin.get(settings_url(staff_world, 2)).text
    terminal_field = page.split('for="terminal_id"', 1)[1].split("</div>", 1)[0]
    assert 'class="mark"' in terminal_field and "Differs from the Default" in page
    mode_field = page.split('for="gateway_mode"', 1)[1].split("</div>", 1)[0]
    assert 'class="mark"' not in mode_field
    # The status is of the partner's own terminal.
    assert "answers PING for terminal PARTNER2TERM" in page
    assert "Second Partner (#2) *" in page
    with session_scope(staff_world.ctx.sessions) as session:
        action = session.execute(select(StaffAction)).scalars().one()
    assert (action.action, action.target) == ("settings_saved", "module config, partner 2")
    answer = admin.post(f"{staff_world.url}/ippay/admin/settings/test-gateway?partner=2").json()
    assert answer["ok"] and "PARTNER2TERM" in answer["message"]


def test_a_partner_that_does_not_exist_and_a_role_that_may_not(staff_world):
    admin = staff_world.login_admin()
    assert admin.get(settings_url(staff_world, 99)).status_code == 404
    assert admin.get(f"{staff_world.url}/ippay/admin/settings?partner=-1").status_code in (
        200, 404)  # "-1" is not a number the selector offers: the Default or not found
    office = staff_world.login("office", place="admin")
    refused = save_partner(staff_world, office)
    assert refused.status_code == 403
    assert staff_world.ctx.splynx.get_module_config(MODULE, partner_id=2).get(
        "terminal_id") != "PARTNER2TERM"


def test_a_customer_of_partner_2_is_charged_on_partner_2s_terminal(staff_world):
    world = staff_world
    gateway_knows(world, "PARTNER2TERM")
    admin = world.login_admin()
    assert save_partner(world, admin).status_code == 302
    # Alice (partner 1, the Default's terminal) and Carol (partner 2) save a card each.
    for who, customer_id, terminal in (("alice", 1, "TESTTERMINAL"),
                                       ("carol", 3, "PARTNER2TERM")):
        assert "Your card was saved." in add_card(world, world.login(who), holder=who).text
        with session_scope(world.ctx.sessions) as session:
            card = session.execute(select(Card).where(Card.customer_id == customer_id)
                                   ).scalar_one()
        assert card.terminal_id == terminal
    assert start_run(admin, world, {**PERIOD, "customer_ids": "1,3"}).status_code == 302
    run_worker_until_done(world.ctx)
    sales = [t for t in world.sim_call("ledger")["transactions"] if t["type"] == "SALE"]
    by_terminal = {}
    for sale in sales:
        by_terminal.setdefault(sale["terminal_id"], set()).add(sale["transaction_id"])
    with session_scope(world.ctx.sessions) as session:
        items = session.execute(select(ChargeItem)).scalars().all()
    carol = {i.transaction_id for i in items if i.customer_id == 3 and i.transaction_id}
    alice = {i.transaction_id for i in items if i.customer_id == 1 and i.transaction_id}
    assert carol and alice
    assert carol <= by_terminal["PARTNER2TERM"] and not carol & by_terminal.get("TESTTERMINAL", set())
    assert alice <= by_terminal["TESTTERMINAL"]
    assert {i.status for i in items if i.customer_id == 3} == {"charged"}


def test_a_card_saved_on_the_default_terminal_is_not_charged_on_partner_2s(staff_world):
    world = staff_world
    carol = world.login("carol")
    # Saved while partner 2 has no terminal of its own: on the Default's.
    assert "Your card was saved." in add_card(world, carol, holder="Carol Clark").text
    gateway_knows(world, "PARTNER2TERM")
    admin = world.login_admin()
    assert save_partner(world, admin).status_code == 302
    seq = max((t["seq"] for t in world.sim_call("ledger")["transactions"]), default=0)

    assert start_run(admin, world, {**PERIOD, "customer_ids": "3"}).status_code == 302
    run_worker_until_done(world.ctx)
    with session_scope(world.ctx.sessions) as session:
        items = session.execute(select(ChargeItem)).scalars().all()
    assert items and {i.status for i in items} == {"skipped"}
    assert all("belongs to terminal TESTTERMINAL, not PARTNER2TERM" in i.message for i in items)
    assert not [t for t in world.sim_call("ledger")["transactions"]
                if t["seq"] > seq and t["type"] == "SALE"]
    assert "SALE" not in {t["type"] for t in world.sim_call("ledger")["transactions"]}

    # Staff on the invoice see why there is no Pay button, and are offered the links.
    invoice = next(i for i in world.emu_call("state")["invoices"]
                   if int(i["customer_id"]) == 3 and i["status"] == "not_paid")
    page = admin.get(f"{world.url}/ippay/admin/invoice", params={"item_id": invoice["number"]})
    assert 'id="pay-form"' not in page.text
    assert "was saved on IPpay terminal TESTTERMINAL" in page.text
    assert "terminal PARTNER2TERM" in page.text and 'id="link-number"' in page.text
    assert terminals_of(world, "SALE") == set()
