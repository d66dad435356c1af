"""Bank accounts (ACH) on the staff pages and in charge runs, against the real simulator and
emulator: a written authorisation (PPD, CCD for a business account), a return recorded on a
transaction's page, the returns report imported (good, bad, twice), and a charge run that
debits bank accounts by CHECK with the SEC code of the authorisation in force."""

import csv
import io

from sqlalchemy import select

from splynx_ippay.db import session_scope
from splynx_ippay.models import (AchAuthorization, AttemptStatus as S, ChargeItem, OutboxMessage,
                                 PaymentAttempt, StaffAction)
from splynx_ippay.services import bank_accounts
from tests.support import TEST_ACCOUNT, save_bank_account

from .conftest import run_worker_until_done, save_cards, start_run
from .test_charge_run import PERIOD, post


def _rows(world, model, **where):
    with session_scope(world.ctx.sessions) as session:
        query = select(model).order_by(model.id)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return list(session.execute(query).scalars())


def _state(world):
    return world.emu_call("state")


def _invoice(world, invoice_id):
    return next(i for i in _state(world)["invoices"] if int(i["id"]) == int(invoice_id))


def _check_body(world, transaction_id):
    [body] = [r["body"] for r in world.sim_call("requests")["requests"]
              if transaction_id in r["body"] and "<TransactionType>CHECK<" in r["body"]]
    return body


def _charge(world, admin, customer_ids):
    """A staff charge run for ``customer_ids`` (all their unpaid invoices of PERIOD), run to
    the end; the run's items by customer."""
    response = start_run(admin, world, {**PERIOD, "customer_ids": ",".join(map(str, customer_ids))})
    assert response.status_code == 302, response.text[:2000]
    run_worker_until_done(world.ctx)
    items = {}
    for item in _rows(world, ChargeItem):
        items.setdefault(item.customer_id, []).append(item)
    return items


def _bank_attempts(world):
    return [a for a in _rows(world, PaymentAttempt) if a.is_bank]


def test_a_charge_run_debits_bank_accounts_by_check_and_skips_a_revoked_authorisation(staff_world):
    world = staff_world
    admin = world.login_admin()
    debited = save_bank_account(world.ctx, 1)
    revoked = save_bank_account(world.ctx, 2, account="55512345", holder="Bob Example")
    # Bob revokes his authorisation after the run was confirmed, before the worker reaches him.
    response = start_run(admin, world, {**PERIOD, "customer_ids": "1,2"})
    assert response.status_code == 302, response.text[:2000]
    assert bank_accounts.revoke(world.ctx, 2, revoked.id)
    run_worker_until_done(world.ctx)
    items = {}
    for item in _rows(world, ChargeItem):
        items.setdefault(item.customer_id, []).append(item)

    # Each of Alice's invoices is one CHECK (the simulator declines some by their cents).
    attempts = {a.id: a for a in _bank_attempts(world)}
    assert len(attempts) == len(items[1]) and {a.customer_id for a in attempts.values()} == {1}
    for item in items[1]:
        attempt = attempts[item.attempt_id]
        assert (item.status.value, attempt.status) in (("charged", S.POSTED),
                                                       ("declined", S.DECLINED))
        assert attempt.sec_code == "WEB" and attempt.account_type == "CHECKING"
        assert attempt.card_id == debited.id and attempt.origin == "RECURRING"
        body = _check_body(world, attempt.transaction_id)
        assert 'SEC="WEB"' in body and 'Type="CHECKING"' in body
        assert f"<Token>{debited.token}</Token>" in body and TEST_ACCOUNT not in body
        assert _invoice(world, attempt.document_id)["status"] == (
            "paid" if attempt.status == S.POSTED else "not_paid")
    assert "charged" in {i.status.value for i in items[1]}
    # Bob's items are skipped and say why, and nothing was sent for him.
    assert items[2] and {i.status.value for i in items[2]} == {"skipped"}
    for item in items[2]:
        assert "debit authorisation of the bank account Checking •••• 2345 was revoked" \
            in item.message and "by the customer" in item.message
    assert not [t for t in world.sim_call("ledger")["transactions"] if t["last4"] == "2345"
                and t["type"] == "CHECK"]
    page = admin.get(f"{world.url}/ippay/admin/runs/{items[2][0].run_id}").text
    assert "was revoked" in page


def test_a_written_authorisation_is_recorded_and_debits_use_ppd_or_ccd(staff_world):
    world = staff_world
    admin = world.login_admin()
    alice = save_bank_account(world.ctx, 1)
    bob = save_bank_account(world.ctx, 2, account="55512345", holder="Bob's Shop LLC")
    url = f"{world.url}/ippay/admin/customers/1/bank-accounts"
    page = admin.get(url)
    assert page.status_code == 200
    assert "Checking •••• 6789" in page.text and "online" in page.text and "WEB" in page.text
    assert TEST_ACCOUNT not in page.text

    # No reference: a clear message and nothing recorded.
    refused = post(admin, world, "customers/1/bank-accounts/written",
                   {"account_id": alice.id, "reference": " "})
    assert refused.status_code == 302
    assert "Enter the signed form" in admin.get(url).text
    assert len(_rows(world, AchAuthorization, customer_id=1)) == 1
    # Another customer's account: not found, nothing recorded.
    assert post(admin, world, "customers/1/bank-accounts/written",
                {"account_id": bob.id, "reference": "form 7"}).status_code == 404
    assert post(admin, world, "customers/1/bank-accounts/written",
                {"account_id": "x", "reference": "form 7"}).status_code == 404

    recorded = post(admin, world, "customers/1/bank-accounts/written",
                    {"account_id": alice.id, "reference": "signed form 2026-11-30"})
    assert recorded.status_code == 302
    page = admin.get(url).text
    assert "Written authorisation recorded (SEC PPD)." in page and "signed form 2026-11-30" in page
    business = post(admin, world, "customers/2/bank-accounts/written",
                    {"account_id": bob.id, "reference": "contract 41", "business": "1"})
    assert business.status_code == 302
    assert "Written authorisation recorded (SEC CCD)." in admin.get(
        f"{world.url}/ippay/admin/customers/2/bank-accounts").text

    auths = {a.customer_id: a for a in _rows(world, AchAuthorization, given="written")}
    assert (auths[1].sec_code, auths[1].reference, auths[1].scope) == ("PPD", "signed form 2026-11-30",
                                                                       "recurring")
    assert auths[2].sec_code == "CCD" and auths[1].admin_id and auths[2].admin_id
    online = [a for a in _rows(world, AchAuthorization, given="online")]
    assert all(a.revoked_at is not None and a.revoked_by == "replaced" for a in online), \
        "the written one is now the one in force"
    assert {a.action for a in _rows(world, StaffAction)} >= {"ach_written_authorisation"}

    _charge(world, admin, [1, 2])
    secs = {a.customer_id: a.sec_code for a in _bank_attempts(world)}
    assert secs == {1: "PPD", 2: "CCD"}
    for attempt in _bank_attempts(world):
        assert f'SEC="{attempt.sec_code}"' in _check_body(world, attempt.transaction_id)
    assert {a.customer_id for a in _bank_attempts(world) if a.status == S.POSTED} == {1, 2}


def test_staff_record_a_return_on_the_transaction_page(staff_world):
    world = staff_world
    admin = world.login_admin()
    account = save_bank_account(world.ctx, 1)
    save_cards(world.ctx, [3])
    _charge(world, admin, [1, 3])
    attempt = next(a for a in _bank_attempts(world) if a.status == S.POSTED)
    url = f"{world.url}/ippay/admin/transactions/{attempt.id}"
    page = admin.get(url).text
    assert 'id="return-form"' in page and "The bank returned this debit" in page
    assert "customers/1/bank-accounts" in page

    # A code that is not one: a clear message, nothing changed.
    bad = post(admin, world, f"transactions/{attempt.id}/return", {"code": "R99"})
    assert bad.status_code == 302 and "R99 is not an ACH return code" in admin.get(url).text
    assert _rows(world, PaymentAttempt, id=attempt.id)[0].status == S.POSTED

    done = post(admin, world, f"transactions/{attempt.id}/return",
                {"code": "R02", "returned_on": "2026-12-04"})
    assert done.status_code == 302
    page = admin.get(url).text
    assert "Return R02 recorded: the Splynx payment was deleted" in page
    assert "R02 on 2026-12-04" in page and "deleted when the bank returned the debit" in page
    [attempt] = _rows(world, PaymentAttempt, id=attempt.id)
    assert attempt.status == S.RETURNED and attempt.return_code == "R02"
    assert _invoice(world, attempt.document_id)["status"] == "not_paid"
    assert not [p for p in _state(world)["payments"] if p.get("field_1") == attempt.transaction_id]
    [row] = [c for c in bank_accounts.list_accounts(world.ctx, 1) if c.id == account.id]
    assert row.authorization_id is None, "R02 (account closed) stops debits"
    [mail] = _rows(world, OutboxMessage, purpose="ach_returned")
    assert "R02" in mail.body_text and TEST_ACCOUNT not in mail.body_text
    # Recorded again: nothing more happens.
    post(admin, world, f"transactions/{attempt.id}/return", {"code": "R02"})
    assert len(_rows(world, OutboxMessage, purpose="ach_returned")) == 1
    assert [a.action for a in _rows(world, StaffAction)].count("ach_return") == 2

    # A card payment has no return.
    [card, *_] = [a for a in _rows(world, PaymentAttempt) if not a.is_bank]
    post(admin, world, f"transactions/{card.id}/return", {"code": "R01"})
    card_page = admin.get(f"{world.url}/ippay/admin/transactions/{card.id}").text
    assert "Only a bank account payment can be returned." in card_page
    assert 'id="return-form"' not in card_page
    assert _rows(world, PaymentAttempt, id=card.id)[0].status == S.POSTED


def _upload(admin, world, text, columns="", name="returns.csv"):
    body = text.encode("utf-8") if isinstance(text, str) else text
    return admin.post(f"{world.url}/ippay/admin/ach-returns", data={"columns": columns},
                      files={"report": (name, body, "text/csv")}, timeout=30)


def test_importing_the_returns_report_good_bad_and_twice(staff_world):
    world = staff_world
    world.set_module_settings({"ach_return_fee_cents": 1500})
    admin = world.login_admin()
    save_bank_account(world.ctx, 1)
    _charge(world, admin, [1])
    first = next(a for a in _bank_attempts(world) if a.status == S.POSTED)
    world.sim_call("ach/returns", {"returns": [{"transaction_id": first.transaction_id, "code": "R01",
                                                 "after_days": 1}]})
    world.sim_call("clock", {"advance_days": 1})
    import requests
    report = requests.get(f"{world.sim.url}/_sim/ach/returns.csv", timeout=10).text
    assert first.transaction_id in report

    assert admin.get(f"{world.url}/ippay/admin/ach-returns").status_code == 200
    # Bad files: a clear message, a 400 or the rows listed, never a 500, nothing recorded.
    cases = [
        (b"\xff\xfe\x00garbage", "", "could not be read"),
        ("", "", "Choose the returns report"),
        ("date,id\n2026-12-01,X\n", "", "The report has no column transaction_id"),
        (report, "amount", "column mapping"),
        ("transaction_id,return_code,return_date,amount_cents\nNOSUCH,R01,2026-12-01,100\n", "",
         "NOSUCH is not a bank payment of this add-on"),
        (report.replace(f",{first.amount_cents},", f",{first.amount_cents + 1},"), "",
         f"the report says {first.amount_cents + 1}; nothing done"),
        ("transaction_id,return_code,return_date\n" + first.transaction_id + ",R77,2026-12-01\n", "",
         "R77 is not an ACH return code"),
        ("transaction_id,return_code,return_date\n\x00,R01,\n", "", "is not a bank payment of this add-on"),
        ("transaction_id,return_code,return_date\n" + "x" * 200_000 + ",R01,2026-12-01\n", "",
         "the report is not readable as CSV"),
    ]
    for body, columns, message in cases:
        response = _upload(admin, world, body, columns)
        assert response.status_code in (200, 400), (body, response.status_code)
        assert message in response.text, (body, response.text[:1500])
        assert _rows(world, PaymentAttempt, id=first.id)[0].status == S.POSTED, body

    good = _upload(admin, world, report)
    assert good.status_code == 200
    assert "1 returned debit(s) recorded; 0 recorded before" in good.text
    assert first.transaction_id in good.text
    [first] = _rows(world, PaymentAttempt, id=first.id)
    assert first.status == S.RETURNED and first.return_code == "R01" and first.return_fee_ref
    assert _invoice(world, first.document_id)["status"] == "not_paid"

    def booked():
        state = _state(world)
        fees = [t for t in state["transactions"]
                if t.get("comment") == f"IPPAY-RETURN-FEE-{first.transaction_id}"]
        payments = [p for p in state["payments"] if p.get("field_1") == first.transaction_id]
        return len(fees), len(payments), len(_rows(world, OutboxMessage, purpose="ach_returned"))

    assert booked() == (1, 0, 1)
    # The same report again (and in dollars with a mapping): recorded before, nothing twice.
    again = _upload(admin, world, report)
    assert "0 returned debit(s) recorded; 1 recorded before" in again.text
    world.sim_call("config", {"ach_returns_amount": "dollars"})
    dollars = requests.get(f"{world.sim.url}/_sim/ach/returns.csv", timeout=10).text
    renamed = dollars.replace("transaction_id", "TransID", 1)
    mapped = _upload(admin, world, renamed, "transaction_id=TransID,amount=amount")
    assert "0 returned debit(s) recorded; 1 recorded before" in mapped.text, mapped.text[:2000]
    assert booked() == (1, 0, 1)
    rows = list(csv.DictReader(io.StringIO(report)))
    assert [r["transaction_id"] for r in rows] == [first.transaction_id]
