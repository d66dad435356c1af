"""Bank accounts (ACH) in the portal, against the real simulator and emulator: save, list,
default, remove; every bad input; the debit authorisation; paying an invoice by CHECK; a
return days later; revoking stops autopay; an unknown CHECK outcome settled by ENQ."""

import re

import pytest
from sqlalchemy import select

from sandbox.world import build_world

from splynx_ippay.models import AchAuthorization, AttemptStatus as S, Card, PaymentAttempt
from splynx_ippay.services import ach_returns, journal
from tests.portal.helpers import csrf, document, form_value, ledger, pay_page, state, text_of

ROUTING = "111000025"   # IPpay's test ABA (BOP); passes the checksum
ACCOUNT = "000123456789"


@pytest.fixture
def any_world(any_database_url):
    """The world of tests/conftest.py on SQLite, MariaDB and PostgreSQL in turn: the key
    bank account flows (save and pay, a return, an unknown CHECK) on every engine."""
    world = build_world(any_database_url)
    yield world
    world.stop()


def add_account(world, session, **fields):
    page = session.get(f"{world.url}/ippay/cards", timeout=10)
    assert page.status_code == 200, page.text[:300]
    data = {"csrf_token": csrf(page.text), "bank-first_name": "Alice", "bank-last_name": "Example",
            "bank-routing_number": ROUTING, "bank-account_number": ACCOUNT,
            "bank-account_type": "CHECKING", "bank-accept_debit": "y"}
    data.update({f"bank-{k}": v for k, v in fields.items()})
    data = {k: v for k, v in data.items() if v is not None}
    return session.post(f"{world.url}/ippay/bank-accounts", data=data, timeout=20)


def _rows(world, model, **where):
    with world.ctx.sessions() as session:
        query = select(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return list(session.execute(query).scalars())


def _accounts(world, customer_id=1):
    return [c for c in _rows(world, Card, customer_id=customer_id) if c.is_bank]


def pay_by_bank(world, session, number, bank_id=None, accept="y", **fields):
    page = pay_page(world, session, "invoice", number)
    assert page.status_code == 200, page.text[:300]
    if bank_id is None:
        match = re.search(r'name="bank_id"[^>]*value="(\d+)"', page.text)
        bank_id = match.group(1) if match else "new"
    data = {"csrf_token": csrf(page.text), "request_key": form_value(page.text, "request_key"),
            "pay_method": "bank", "bank_id": bank_id, "card_id": "new", **fields}
    if accept:
        data["accept_debit"] = accept
    return session.post(f"{world.url}/ippay/pay-invoice", params={"item_id": number}, data=data,
                        timeout=30)


def _unpaid_invoice(world, customer_id=1):
    rows = [i for i in state(world)["invoices"]
            if int(i["customer_id"]) == customer_id and i["status"] == "not_paid"]
    return rows[0]


def test_save_list_default_remove_bank_accounts_beside_cards(world):
    alice = world.login("alice")
    page = alice.get(f"{world.url}/ippay/cards", timeout=10)
    words = text_of(page.text)
    assert "Add a bank account" in words and "I authorise" in words
    saved = add_account(world, alice)
    assert "Your bank account Checking •••• 6789 was saved." in text_of(saved.text)
    assert "routing •••••0025" in text_of(saved.text)
    assert ACCOUNT not in saved.text, "the account number is never shown again"
    [row] = _accounts(world)
    assert row.token and row.token != ACCOUNT and row.last4 == "6789"
    assert row.routing_number == ROUTING and row.account_type == "CHECKING"
    assert row.is_default and row.authorization_id
    [auth] = _rows(world, AchAuthorization, customer_id=1)
    assert auth.scope == "recurring" and auth.sec_code == "WEB" and auth.client_address
    assert len(auth.text_hash) == 64 and auth.text_version
    tokenize = [r for r in world.sim_call("requests")["requests"] if "TOKENIZE" in r["body"]
                and "<ABA>" in r["body"]]
    assert tokenize, "the account was tokenized at IPpay"

    second = add_account(world, alice, account_number="99887766", account_type="SAVINGS",
                         make_default="y")
    assert "Savings •••• 7766" in text_of(second.text)
    rows = {c.last4: c for c in _accounts(world)}
    assert rows["7766"].is_default and not rows["6789"].is_default
    made = alice.post(f"{world.url}/ippay/cards/{rows['6789'].id}/default",
                      data={"csrf_token": csrf(second.text)}, timeout=10)
    assert "Checking •••• 6789 is now your default card." in text_of(made.text) or made.ok
    removed = alice.post(f"{world.url}/ippay/bank-accounts/{rows['7766'].id}/remove",
                         data={"csrf_token": csrf(second.text)}, timeout=10)
    assert "The bank account Savings •••• 7766 was removed." in text_of(removed.text)
    assert [c.last4 for c in _accounts(world)] == ["6789"]
    kept = _rows(world, AchAuthorization, customer_id=1)
    assert len(kept) == 2 and any(a.revoked_by == "removed" for a in kept), \
        "the authorisation record of a removed account is kept"
    # Alice is told of each account added and of the one removed, like cards.
    from splynx_ippay.models import OutboxMessage
    added = _rows(world, OutboxMessage, purpose="bank_account_added")
    assert sorted(m.object_key for m in added) == sorted(f"bank:{r.id}" for r in rows.values())
    assert {m.subject for m in added} == {"A bank account was added to your account"}
    assert any("Checking •••• 6789 (routing •••••0025)" in m.body_text for m in added)
    [removed_mail] = _rows(world, OutboxMessage, purpose="bank_account_removed")
    assert removed_mail.object_key == f"bank:{rows['7766'].id}"
    assert "Savings •••• 7766" in removed_mail.body_text and "99887766" not in removed_mail.body_text
    assert not _rows(world, OutboxMessage, purpose="card_removed"), "not called a card"


def test_every_bad_input_has_a_clear_message_and_keeps_what_was_typed(world):
    alice = world.login("alice")
    cases = [
        (dict(routing_number="111000026"), "The routing number is not valid"),
        (dict(routing_number="11100002"), "The routing number must be 9 digits."),
        (dict(account_number="12AB5678"), "The account number must be 4 to 17 digits."),
        (dict(account_number="1" * 18), "The account number must be 4 to 17 digits."),
        (dict(accept_debit=None), "Please read the debit authorisation"),
        (dict(last_name=""), "Enter the last name of the account holder."),
    ]
    for fields, message in cases:
        page = add_account(world, alice, **fields)
        assert page.status_code == 422, fields
        assert message in text_of(page.text), (fields, text_of(page.text)[:400])
        assert 'value="Alice"' in page.text, "the name typed is kept"
        typed = fields.get("routing_number", ROUTING)
        assert f'value="{typed}"' in page.text, "the routing number typed is kept"
        assert re.search(r'name="bank-account_number"[^>]*value=""', page.text) or \
            'name="bank-account_number" value=""' in page.text or ACCOUNT not in page.text
        assert ACCOUNT not in page.text and "12AB5678" not in page.text
    assert _accounts(world) == []


def test_pay_an_invoice_by_bank_account_and_a_return_three_days_later(any_world):
    world = any_world
    alice = world.login("alice")
    add_account(world, alice)
    invoice = _unpaid_invoice(world)
    page = pay_page(world, alice, "invoice", invoice["number"])
    words = text_of(page.text)
    assert "Account type" in words and "Bank account" in words and "PAY BY YOUR SAVED BANK ACCOUNT" \
        in words.upper()
    refused = pay_by_bank(world, alice, invoice["number"], accept=None)
    assert refused.status_code == 422 and "Please read the debit authorisation" in text_of(refused.text)
    assert not ledger(world, "CHECK")

    result = pay_by_bank(world, alice, invoice["number"])
    assert "Success!" in result.text, text_of(result.text)[:500]
    assert document(world, "invoice", invoice["number"])["status"] == "paid"
    [check] = ledger(world, "CHECK")
    [attempt] = _rows(world, PaymentAttempt, transaction_id=check["transaction_id"])
    assert attempt.is_bank and attempt.sec_code == "WEB" and attempt.status == S.POSTED
    body = next(r["body"] for r in world.sim_call("requests")["requests"]
                if check["transaction_id"] in r["body"] and "CHECK" in r["body"])
    assert 'SEC="WEB"' in body and 'Type="CHECKING"' in body and "<Token>" in body
    assert ACCOUNT not in body
    payment = next(p for p in state(world)["payments"] if str(p["id"]) == str(attempt.splynx_payment_id))
    methods = {m.id: m.name for m in world.ctx.splynx.list_payment_methods()}
    assert methods[int(payment["payment_type"])] == "IPpay bank account"
    single = [a for a in _rows(world, AchAuthorization, customer_id=1) if a.scope == "single"]
    assert single and single[0].transaction_id == attempt.transaction_id

    # The bank returns it (R03) three simulated days later: the report shows it, the
    # import reverses it in Splynx, reopens the invoice, tells alice, stops autopay.
    world.sim_call("ach/returns", {"returns": [{"transaction_id": attempt.transaction_id,
                                                 "code": "R03", "after_days": 3}]})
    world.sim_call("clock", {"advance_days": 2})
    assert "R03" not in _report(world)
    world.sim_call("clock", {"advance_days": 1})
    report = _report(world)
    assert attempt.transaction_id in report
    result = ach_returns.import_csv(world.ctx, report)
    assert result.recorded == [attempt.transaction_id], result
    [attempt] = _rows(world, PaymentAttempt, id=attempt.id)
    assert attempt.status == S.RETURNED and attempt.return_code == "R03"
    assert attempt.splynx_payment_id is None
    assert document(world, "invoice", invoice["number"])["status"] == "not_paid"
    assert not [p for p in state(world)["payments"] if p.get("field_1") == attempt.transaction_id]
    [account] = _accounts(world)
    assert account.authorization_id is None and not account.autopay, "R03 stops debits"
    again = ach_returns.import_csv(world.ctx, report)
    assert again.already == [attempt.transaction_id] and not again.recorded
    from splynx_ippay.models import OutboxMessage
    [mail] = _rows(world, OutboxMessage, purpose="ach_returned")
    assert "returned" in mail.subject and "R03" in mail.body_text and ACCOUNT not in mail.body_text


def _report(world):
    import requests
    return requests.get(f"{world.sim.url}/_sim/ach/returns.csv", timeout=10).text


def test_revoking_the_authorisation_stops_automatic_debits(world):
    from splynx_ippay.services import autopay, cards
    alice = world.login("alice")
    page = add_account(world, alice)
    [row] = _accounts(world)
    with world.ctx.sessions() as session:
        assert autopay.card_for(session, 1)[0].id == row.id
        assert cards.default_cards(session, [1])[1].id == row.id
    revoked = alice.post(f"{world.url}/ippay/bank-accounts/{row.id}/revoke",
                         data={"csrf_token": csrf(page.text)}, timeout=10)
    assert "was revoked" in text_of(revoked.text) and "Authorisation revoked" in text_of(revoked.text)
    with world.ctx.sessions() as session:
        card, why = autopay.card_for(session, 1)
        assert card is None and why
        assert 1 not in cards.default_cards(session, [1]), "staff runs skip it too"
    [auth] = _rows(world, AchAuthorization, customer_id=1)
    assert auth.revoked_at is not None and auth.revoked_by == "customer"


def test_an_unknown_check_outcome_is_settled_by_enq_never_a_second_check(any_world):
    world = any_world
    alice = world.login("alice")
    add_account(world, alice)
    invoice = _unpaid_invoice(world)
    world.sim_call("faults", {"faults": [{"kind": "timeout_commit", "delay_s": 3,
                                          "types": ["CHECK"], "count": 1}]})
    # The world's gateway read timeout is 1 s: the CHECK's answer comes too late.
    result = pay_by_bank(world, alice, invoice["number"])
    assert result.status_code == 200
    checks = [r for r in world.sim_call("requests")["requests"] if "<TransactionType>CHECK<" in r["body"]]
    assert len(checks) == 1, "never a second CHECK"
    [attempt] = [a for a in _rows(world, PaymentAttempt) if a.is_bank]
    if attempt.status != S.POSTED:
        attempt = journal.settle(world.ctx, attempt)
    assert attempt.status == S.POSTED
    events = journal.load(world.ctx, attempt.id).events
    assert [e.to_status for e in events][:4] == ["created", "sent", "unknown", "approved"]
    assert any("settled by ENQ" in (e.note or "") for e in events)
    assert document(world, "invoice", invoice["number"])["status"] == "paid"


def test_payment_type_card_only_hides_bank_accounts(world):
    world.set_module_settings({"payment_type": "card"})
    alice = world.login("alice")
    page = alice.get(f"{world.url}/ippay/cards", timeout=10)
    assert "Add a bank account" not in page.text and "Add a card" in text_of(page.text)
    assert add_account(world, alice).status_code == 404
    world.set_module_settings({"payment_type": "bank"})
    page = alice.get(f"{world.url}/ippay/cards", timeout=10)
    assert "Add a bank account" in text_of(page.text) and "Add a card" not in text_of(page.text)


def test_a_listed_test_account_is_returned_three_days_later_and_the_customer_is_told(world):
    """The simulator returns every debit of a listed test account after N of its days
    (switch ach_returns): pay by bank, three days later the report lists the return once,
    the import reopens the invoice and mails the customer."""
    from splynx_ippay.models import OutboxMessage

    world.sim_call("config", {"ach_returns": {ACCOUNT[-4:]: {"code": "R01", "after_days": 3}}})
    alice = world.login("alice")
    add_account(world, alice)
    invoice = _unpaid_invoice(world)
    assert "Success!" in pay_by_bank(world, alice, invoice["number"]).text
    assert document(world, "invoice", invoice["number"])["status"] == "paid"
    [attempt] = [a for a in _rows(world, PaymentAttempt) if a.is_bank]
    for _ in range(2):
        world.sim_call("clock", {"advance_days": 1})
        assert attempt.transaction_id not in _report(world), "not due yet"
        assert not ach_returns.import_csv(world.ctx, _report(world)).recorded
    world.sim_call("clock", {"advance_days": 1})
    report = _report(world)
    assert report.count(attempt.transaction_id) == 1 and ",R01," in report
    assert ach_returns.import_csv(world.ctx, report).recorded == [attempt.transaction_id]
    [attempt] = _rows(world, PaymentAttempt, id=attempt.id)
    assert attempt.status == S.RETURNED and attempt.return_code == "R01"
    assert document(world, "invoice", invoice["number"])["status"] == "not_paid"
    [account] = _accounts(world)
    assert account.authorization_id, "R01 (insufficient funds) does not stop debits"
    [mail] = _rows(world, OutboxMessage, purpose="ach_returned")
    assert "alice" in mail.recipient.lower() and "R01" in mail.body_text and "Checking •••• 6789" in mail.body_text
    assert ACCOUNT not in mail.body_text and "The invoice is due again." in mail.body_text
    world.sim_call("clock", {"advance_days": 5})
    assert _report(world).count(attempt.transaction_id) == 1, "listed once"
    assert ach_returns.import_csv(world.ctx, _report(world)).already == [attempt.transaction_id]
    assert len(_rows(world, OutboxMessage, purpose="ach_returned")) == 1
