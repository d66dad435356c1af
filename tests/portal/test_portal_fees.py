"""Service fees on the customer pages, with the real simulator and emulator (docs/fees.md):
shown before paying, charged with the amount in one SALE, booked in Splynx once as the
payment and a fee debit, given back in proportion by refunds; off by default."""

import requests
from sqlalchemy import update

from splynx_ippay.models import AttemptStatus, PaymentAttempt, Refund, RefundStatus
from splynx_ippay.services import journal, refunds
from tests.portal.helpers import (
    add_card, csrf, deposit, document, fee_terms, form_value, ledger, new_card_fields,
    pay_page, refill_page, state, submit_pay, submit_refill, text_of,
)

# Invoice 202402000003 of alice (customer 1) has 60.10 due. At 2.95 % the fee is 1.77
# (177.295 cents, half-up), the 20 % VAT on the rounded fee 0.35 (35.4 cents): 62.22 in all.
FEES = {"fee_card_percent": "2.95", "fee_vat_percent": "20", "fee_text": "Card fee"}


def _attempts(world):
    with world.ctx.sessions() as session:
        return session.query(PaymentAttempt).order_by(PaymentAttempt.id).all()


def _fee_transactions(world, key_prefix="IPPAY-FEE"):
    return [t for t in state(world)["transactions"]
            if str(t.get("comment", "")).startswith(key_prefix)]


def _correction_id(world):
    return world.ctx.splynx.find_transaction_category("Correction").id


def test_fees_are_off_by_default_and_change_nothing(world):
    alice = world.login("alice")
    add_card(world, alice)
    page = pay_page(world, alice, "invoice", "202402000003")
    words = text_of(page.text)
    assert "fee" not in words.lower() and "Pay $60.10" in words
    assert form_value(page.text, "fee_terms") == "0/0"
    assert "Success!" in submit_pay(world, alice, "invoice", "202402000003", page).text
    [sale] = ledger(world, "SALE")
    assert int(sale["amount"]) == 6010
    [attempt] = _attempts(world)
    assert (attempt.fee_cents, attempt.fee_tax_cents, attempt.charged_cents) == (0, 0, 6010)
    [payment] = [p for p in state(world)["payments"] if p["field_1"] == attempt.transaction_id]
    assert float(payment["amount"]) == 60.10
    assert _fee_transactions(world) == []


def test_the_fee_is_shown_charged_with_the_amount_and_booked_once(world):
    world.set_module_settings(FEES)
    alice = world.login("alice")
    add_card(world, alice)
    before = deposit(world, 1)
    page = pay_page(world, alice, "invoice", "202402000003")
    words = text_of(page.text)
    assert "Amount due $60.10" in words
    assert "Card fee (2.95 %) $1.77" in words and "VAT on the fee (20 %) $0.35" in words
    assert "Total to pay $62.22" in words and "Pay $62.22" in words
    assert form_value(page.text, "fee_terms") == "295/2000"

    result = submit_pay(world, alice, "invoice", "202402000003", page)
    assert "Success!" in result.text and "$62.22" in result.text
    assert "includes a service fee of $2.12" in text_of(result.text)
    [sale] = ledger(world, "SALE")
    assert int(sale["amount"]) == 6222, "one SALE for the amount and the fee with its VAT"
    [attempt] = _attempts(world)
    assert (attempt.amount_cents, attempt.fee_cents, attempt.fee_tax_cents) == (6010, 177, 35)
    assert attempt.status == AttemptStatus.POSTED and attempt.fee_transaction_id

    invoice = document(world, "invoice", "202402000003")
    assert invoice["status"] == "paid" and float(invoice["due"]) == 0
    [payment] = [p for p in state(world)["payments"] if p["field_1"] == attempt.transaction_id]
    assert float(payment["amount"]) == 62.22 and int(payment["invoice_id"]) == 3
    [fee] = _fee_transactions(world)
    assert fee["type"] == "debit" and int(fee["category"]) == _correction_id(world)
    assert float(fee["price"]) == 1.77 and float(fee["tax_percent"]) == 20
    assert float(fee["total"]) == 2.12 and "Card fee" in fee["description"]
    # The balance moves as if the invoice alone was paid: the fee was paid with it.
    assert round(deposit(world, 1) - before, 2) == 60.10

    # A retry after a crash that lost both answers books nothing twice.
    with world.ctx.sessions() as session:
        session.execute(update(PaymentAttempt).where(PaymentAttempt.id == attempt.id).values(
            status=AttemptStatus.APPROVED, splynx_payment_id=None, fee_transaction_id=None))
        session.commit()
    again = journal.post(world.ctx, journal.load(world.ctx, attempt.id))
    assert again.status == AttemptStatus.POSTED and again.fee_transaction_id == int(fee["id"])
    assert len(_fee_transactions(world)) == 1
    assert len([p for p in state(world)["payments"]
                if p["field_1"] == attempt.transaction_id]) == 1
    assert round(deposit(world, 1) - before, 2) == 60.10


def test_refunds_give_back_the_fee_in_proportion(world):
    world.set_module_settings(FEES)
    alice = world.login("alice")
    add_card(world, alice)
    assert "Success!" in submit_pay(world, alice, "invoice", "202402000003").text
    [attempt] = _attempts(world)
    before = deposit(world, 1)

    half = refunds.refund(world.ctx, attempt.id, 3005, admin_id=1, reason="half")
    # Half the fee (177 → 88.5 → 89) and half its VAT (35 → 17.5 → 18), half-up.
    assert (half.status.value, half.fee_cents, half.fee_tax_cents) == ("posted", 89, 18)
    credits = ledger(world, "CREDIT")
    assert [int(c["amount"]) for c in credits] == [3005 + 89 + 18]
    [back] = _fee_transactions(world, "IPPAY-FEE-REFUND")
    assert back["type"] == "credit" and int(back["category"]) == _correction_id(world)
    assert float(back["total"]) == 1.07 and float(back["tax_percent"]) == 20
    refund_debits = [t for t in state(world)["transactions"]
                     if t.get("comment") == f"IPPAY-REFUND-{attempt.transaction_id}-{half.id}"]
    assert [float(t["total"]) for t in refund_debits] == [31.12]
    # The customer's balance goes down by the amount refunded only: the fee went back too.
    assert round(before - deposit(world, 1), 2) == 30.05

    rest = refunds.refund(world.ctx, attempt.id, 3005, admin_id=1, reason="the rest")
    # What is left of the fee: 88 and 17, so that every cent of it went back.
    assert (rest.status.value, rest.fee_cents, rest.fee_tax_cents) == ("posted", 88, 17)
    assert sum(int(c["amount"]) for c in ledger(world, "CREDIT")) == 6222
    assert round(sum(float(t["total"]) for t in _fee_transactions(world, "IPPAY-FEE-REFUND")),
                 2) == 2.12
    assert round(before - deposit(world, 1), 2) == 60.10
    # Posting a refund again (a retry after a lost answer) books nothing twice.
    with world.ctx.sessions() as session:
        session.execute(update(Refund).where(Refund.id == rest.id).values(
            status=RefundStatus.APPROVED))
        session.commit()
        row = session.get(Refund, rest.id)
    assert refunds.post(world.ctx, row).status == RefundStatus.POSTED
    assert len(_fee_transactions(world, "IPPAY-FEE-REFUND")) == 2
    assert round(before - deposit(world, 1), 2) == 60.10


def test_a_void_takes_back_the_whole_fee(world):
    world.set_module_settings(FEES)
    alice = world.login("alice")
    add_card(world, alice)
    before = deposit(world, 1)
    assert "Success!" in submit_pay(world, alice, "invoice", "202402000003").text
    [attempt] = _attempts(world)
    void = refunds.void(world.ctx, attempt.id, admin_id=1)
    assert void.status.value == "posted" and (void.fee_cents, void.fee_tax_cents) == (177, 35)
    [gateway_void] = ledger(world, "VOID")
    assert int(gateway_void["amount"]) == 6222
    assert document(world, "invoice", "202402000003")["status"] == "not_paid"
    [back] = _fee_transactions(world, "IPPAY-FEE-VOID")
    assert back["type"] == "credit" and float(back["total"]) == 2.12
    assert round(deposit(world, 1) - before, 2) == 0


def test_a_fee_changed_after_the_page_was_shown_charges_nothing(world):
    world.set_module_settings(FEES)
    alice = world.login("alice")
    add_card(world, alice)
    page = pay_page(world, alice, "invoice", "202402000003")
    world.set_module_settings({**FEES, "fee_card_percent": "3.5"})
    result = submit_pay(world, alice, "invoice", "202402000003", page)
    assert result.status_code == 422
    words = text_of(result.text)
    assert "The service fee has just changed" in words and "Nothing was charged" in words
    assert "Card fee (3.5 %) $2.10" in words, "the page shows the fee as it is now"
    assert ledger(world, "SALE") == [] and _attempts(world) == []


def test_the_direct_link_shows_the_fee_and_charges_it(world):
    from splynx_ippay.services.payments import link_signature

    world.set_module_settings(FEES)
    visitor = requests.Session()
    url = (f"{world.url}/ippay/direct-pay-invoice-by-id?item_id=3"
           f"&sig={link_signature(world.ctx, 'invoice', 3)}")
    page = visitor.get(url, timeout=10)
    words = text_of(page.text)
    assert "Card fee (2.95 %) $1.77" in words and "Total to pay $62.22" in words
    result = visitor.post(url, data={"csrf_token": csrf(page.text),
                                     "request_key": form_value(page.text, "request_key"),
                                     **fee_terms(page.text), "card_id": "new",
                                     **new_card_fields(holder="A Friend")}, timeout=30)
    assert "Success!" in result.text
    assert [int(s["amount"]) for s in ledger(world, "SALE")] == [6222]


def test_refill_says_the_fee_and_adds_only_the_amount_to_the_balance(world):
    world.set_module_settings({"fee_card_percent": "3", "fee_text": "Card fee"})
    alice = world.login("alice")
    add_card(world, alice)
    page = refill_page(world, alice)
    words = text_of(page.text)
    assert "A service fee of 3 % for paying by card is added to the amount." in words
    before = deposit(world, 1)
    result = submit_refill(world, alice, "50.00", page)
    assert "$50.00 was added to your balance" in text_of(result.text)
    assert [int(s["amount"]) for s in ledger(world, "SALE")] == [5150]
    assert round(deposit(world, 1) - before, 2) == 50.00
    [fee] = _fee_transactions(world)
    assert float(fee["total"]) == 1.50 and float(fee["tax_percent"]) == 0
