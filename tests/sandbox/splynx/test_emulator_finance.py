"""The emulator's finance rules (splynx-platform §2.4): linked, partial, proforma and
unlinked payments, allocation oldest first, reversal, validation."""

from tests.sandbox.splynx.emulator_helpers import (api, assert_error, deposit, ea, invoice, pay,
                                                   payment_body)


# --------------------------------------------------------------- finance
def test_linked_payment_pays_invoice_in_full_and_tolerates_status_put(splynx_emu):
    pid = pay(splynx_emu, customer_id=1, invoice_id=5, amount="75.00")
    inv = invoice(splynx_emu, 5)
    assert (inv["status"], inv["due"], inv["date_payment"], inv["payment_id"]) == ("paid", 0, "2024-06-01", str(pid))
    assert deposit(splynx_emu, 1) == "-199.6500"
    txns = api(splynx_emu, "GET", f"admin/finance/transactions?main_attributes[payment_id]={pid}").json()
    assert [(t["type"], t["total"]) for t in txns] == [("credit", "75.0000")]
    rel = api(splynx_emu, "GET", "admin/finance/invoice-relations?invoice_id=5").json()
    assert [(r["type"], r["amount"], r["payment_id"]) for r in rel] == [("payment", "75.0000", str(pid))]
    # a PayPal-style add-on PUTs the status afterwards: accepted, no money moves
    r = api(splynx_emu, "PUT", "admin/finance/invoices/5",
            json={"status": "paid", "date_payment": "2024-06-01", "payment_id": pid})
    assert r.status_code == 202 and r.content == b""
    assert invoice(splynx_emu, 5)["due"] == 0 and deposit(splynx_emu, 1) == "-199.6500"
    # other invoices untouched
    assert invoice(splynx_emu, 3)["due"] == 60.1


def test_linked_partial_payment(splynx_emu):
    pay(splynx_emu, customer_id=1, invoice_id=8, amount=20)
    inv = invoice(splynx_emu, 8)
    assert (inv["status"], inv["due"], inv["date_payment"]) == ("not_paid", 100.5, "0000-00-00")
    assert invoice(splynx_emu, 3)["due"] == 60.1  # linked money does not spill to older invoices


def test_proforma_payment(splynx_emu):
    pid = pay(splynx_emu, customer_id=1, request_id=1, amount="45.00")
    pf = api(splynx_emu, "GET", "admin/finance/proforma-invoices/1").json()
    assert (pf["status"], pf["payment_id"], pf["date_payment"]) == ("paid", str(pid), "2024-06-01")
    generated = invoice(splynx_emu, pf["invoice_id"])
    assert (generated["status"], generated["total"], generated["customer_id"]) == ("paid", 45, "1")
    assert deposit(splynx_emu, 1) == "-274.6500"  # +45 credit, -45 invoice
    api(splynx_emu, "DELETE", f"admin/finance/payments/{pid}")
    pf = api(splynx_emu, "GET", "admin/finance/proforma-invoices/1").json()
    assert (pf["status"], pf["invoice_id"]) == ("not_paid", "0")
    assert api(splynx_emu, "GET", f"admin/finance/invoices/{generated['id']}").status_code == 404


def test_unlinked_payment_covers_oldest_invoices_first(splynx_emu):
    pay(splynx_emu, customer_id=1, amount="100.00")
    assert invoice(splynx_emu, 3)["status"] == "paid"
    assert invoice(splynx_emu, 5)["due"] == 35.1
    assert invoice(splynx_emu, 5)["status"] == "not_paid"
    assert invoice(splynx_emu, 8)["due"] == 120.5
    assert deposit(splynx_emu, 1) == "-174.6500"


def test_excess_stays_on_balance_and_delete_reverses(lenient_emu):
    splynx_emu = lenient_emu  # an invoice posted without number and status
    pid = pay(splynx_emu, customer_id=2, amount="300.00")
    assert all(invoice(splynx_emu, i)["status"] == "paid" for i in (6, 9, 11))
    assert deposit(splynx_emu, 2) == "202.4100"
    # a new invoice is paid from the balance
    r = api(splynx_emu, "POST", "admin/finance/invoices",
            json={"customer_id": 2, "date_created": "2024-07-01",
                  "items": [{"description": "Extra", "quantity": 2, "price": "10.00"}]})
    assert r.status_code == 201
    new = invoice(splynx_emu, r.json()["id"])
    assert (new["status"], new["total"], new["payd_from_deposit"]) == ("paid", 20, "1")
    assert deposit(splynx_emu, 2) == "182.4100"
    assert api(splynx_emu, "DELETE", f"admin/finance/payments/{pid}").status_code == 204
    assert [invoice(splynx_emu, i)["due"] for i in (6, 9, 11)] == [30, 55.25, 12.34]
    assert invoice(splynx_emu, 6)["status"] == "not_paid"
    assert deposit(splynx_emu, 2) == "-117.5900"
    assert api(splynx_emu, "GET", f"admin/finance/payments/{pid}").status_code == 404


def test_payment_validation_and_invoice_delete_rules(splynx_emu):
    base = payment_body(customer_id=1, receipt_number="R", amount="1")
    for field, value in [("amount", "abc"), ("amount", "-5"), ("date", "06/01/2024"), ("customer_id", 99),
                         ("payment_type", 42), ("invoice_id", 2)]:
        r = api(splynx_emu, "POST", "admin/finance/payments", json={**base, field: value})
        assert_error(r, 400, "INVALID_INPUT_DATA")
        assert r.json()["error"]["message"].startswith(field)
    r = api(splynx_emu, "POST", "admin/finance/payments", json={k: v for k, v in base.items() if k != "receipt_number"})
    assert_error(r, 400, "INVALID_INPUT_DATA")
    assert_error(api(splynx_emu, "DELETE", "admin/finance/invoices/3"), 400, "ENTITY_CANNOT_BE_DELETED")
    assert api(splynx_emu, "DELETE", "admin/finance/invoices/10").status_code == 204
    assert deposit(splynx_emu, 1) == "-255.6000"
    r = api(splynx_emu, "POST", "admin/finance/payments", data="{bad",
            headers={**ea(), "Content-Type": "application/json"})
    assert_error(r, 400, "BAD_REQUEST")



def test_a_transaction_with_tax_adds_it_half_up_to_the_cent(splynx_emu):
    before = float(deposit(splynx_emu, 1))
    r = api(splynx_emu, "POST", "admin/finance/transactions", json={
        "type": "debit", "customer_id": 1, "quantity": 1, "price": 1.77, "tax_percent": 20,
        "date": "2024-06-01", "category": "5", "comment": "fee"})
    assert r.status_code == 201, r.text
    row = api(splynx_emu, "GET", f"admin/finance/transactions/{r.json()['id']}").json()
    # 20 % of 1.77 is 0.354 → 0.35: the total is 2.12, and the balance goes down by it.
    assert (row["total"], row["tax_percent"]) == ("2.1200", "20.0000")
    assert round(before - float(deposit(splynx_emu, 1)), 2) == 2.12
    refused = api(splynx_emu, "POST", "admin/finance/transactions", json={
        "type": "debit", "customer_id": 1, "quantity": 1, "price": 1, "tax_percent": 150,
        "date": "2024-06-01", "category": "5"})
    assert refused.status_code == 400 and "tax_percent" in refused.text
