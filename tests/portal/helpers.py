"""Small helpers for the portal suites: forms as a browser fills them, and the world's state."""

import re
from html import unescape

TEST_CARD = "4111111111111111"
MASTERCARD = "5111111111111118"


def form_value(html, name):
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html)
    assert match, f"no {name} in page"
    return unescape(match.group(1))


def csrf(html):
    return form_value(html, "csrf_token")


def add_card(world, session, number=TEST_CARD, expiry="12/30", holder="Alice Example", cvv="737",
             **extra):
    page = session.get(f"{world.url}/ippay/cards", timeout=10)
    assert page.status_code == 200, page.text[:300]
    return session.post(f"{world.url}/ippay/cards", data={
        "csrf_token": csrf(page.text), "holder_name": holder, "number": number,
        "expiry": expiry, "cvv": cvv, **extra}, timeout=10)


def state(world):
    return world.emu_call("state")


def document(world, kind, number):
    rows = state(world)["invoices" if kind == "invoice" else "proformas"]
    return next(r for r in rows if r["number"] == number)


def deposit(world, customer_id):
    customer = next(c for c in state(world)["customers"] if int(c["id"]) == customer_id)
    return float(customer["deposit"])


def ledger(world, kind=None):
    rows = world.sim_call("ledger")["transactions"]
    return [r for r in rows if kind is None or r["type"] == kind]


def pay_page(world, session, kind, number):
    return session.get(f"{world.url}/ippay/pay-{kind}", params={
        "module": "splynx_ippay_addon", "model": "Invoices" if kind == "invoice" else "Requests",
        "item_id": number}, timeout=10)


def submit_pay(world, session, kind, doc_number, page=None, card_id=None, **card):
    """Pay a document from its modal: a saved card (the first offered) or ``card`` fields."""
    page = page or pay_page(world, session, kind, doc_number)
    assert page.status_code == 200, page.text[:300]
    if card:
        card_id = "new"
    elif card_id is None:
        card_id = re.search(r'name="card_id"[^>]*value="(\d+)"', page.text).group(1)
    return session.post(f"{world.url}/ippay/pay-{kind}", params={"item_id": doc_number}, data={
        "csrf_token": csrf(page.text), "request_key": form_value(page.text, "request_key"),
        **fee_terms(page.text), "card_id": card_id, **card}, timeout=30)


def fee_terms(html):
    """The service fee terms the page showed, sent back as the browser does."""
    return {"fee_terms": form_value(html, "fee_terms")} if 'name="fee_terms"' in html else {}


def new_card_fields(number=TEST_CARD, holder="Alice Example", expiry="12/30", cvv="737", **more):
    return {"holder_name": holder, "number": number, "expiry": expiry, "cvv": cvv, **more}


def refill_page(world, session):
    return session.get(f"{world.url}/ippay/", timeout=10)


def submit_refill(world, session, amount, page=None, card_id=None, **card):
    page = page or refill_page(world, session)
    assert page.status_code == 200, page.text[:300]
    if card:
        card_id = "new"
    elif card_id is None:
        match = re.search(r'name="card_id"[^>]*value="(\d+)"', page.text)
        card_id = match.group(1) if match else "new"
    return session.post(f"{world.url}/ippay/", data={
        "csrf_token": csrf(page.text), "request_key": form_value(page.text, "request_key"),
        **fee_terms(page.text), "amount": amount, "card_id": card_id, **card}, timeout=30)


def text_of(html):
    """The page as a person reads it (tags dropped, entities decoded, spaces squeezed)."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()
