"""The Splynx client's resource methods against the emulator: invoices, proformas,
payments, billing, payment methods, payment accounts, modules, config, entry points."""

import datetime

import pytest

from sandbox.serve import BackgroundServer
from splynx_ippay.splynx import (SplynxClient, SplynxNotFoundError, SplynxServerError,
                                 SplynxValidationError)
from tests.integration.splynx.splynx_helpers import (KEY, SECRET, allow_undocumented, api_log,
                                                     sandbox_call)


def test_invoices(splynx):
    invoice = splynx.get_invoice(3)
    assert (invoice.customer_id, invoice.status, invoice.total_cents, invoice.due_cents) == (
        1, "not_paid", 10010, 6010)
    assert invoice.date_created == datetime.date(2024, 2, 5) and invoice.date_payment is None
    assert invoice.items[0].price_cents == 10010 and invoice.number == "202402000003"
    paid = splynx.get_invoice(1)
    assert (paid.status, paid.due_cents, paid.date_payment) == (
        "paid", 0, datetime.date(2024, 1, 10))
    assert paid.payment_id is not None
    assert splynx.find_invoice_by_number("202402000003") == invoice
    assert splynx.find_invoice_by_number("209912999999") is None
    with pytest.raises(SplynxNotFoundError):
        splynx.get_invoice(9999)


def test_invoice_listing_filters(splynx):
    unpaid = splynx.list_invoices(customer_id=1, status="not_paid")
    assert [i.id for i in unpaid] == [3, 5, 8, 10]
    assert all(i.customer_id == 1 and i.due_cents > 0 for i in unpaid)
    march_april = splynx.list_invoices(date_from=datetime.date(2024, 3, 1),
                                       date_to=datetime.date(2024, 4, 30))
    assert [i.id for i in march_april] == [5, 6, 7, 8, 9]
    assert [i.id for i in splynx.list_invoices(date_from=datetime.date(2024, 5, 1),
                                               customer_id=2)] == [11]
    assert [i.id for i in splynx.list_invoices(date_to=datetime.date(2024, 1, 31))] == [1, 2]
    assert [i.id for i in splynx.list_invoices(status=["paid"], customer_id=2)] == [2]
    big = splynx.search("admin/finance/invoices", main_attributes={"total": (">=", "99.99")},
                        order={"total": "DESC"})
    assert [row["id"] for row in big] == ["8", "3", "7"]


def test_iter_search_pages_through_everything():
    from sandbox.splynx import create_app

    with BackgroundServer(create_app({"extra_invoices": 30})) as emu:
        client = SplynxClient(emu.url, KEY, SECRET)
        total = client.count("admin/finance/invoices")
        pages = client.iter_search("admin/finance/invoices", page_size=7)
        first = next(pages)
        assert first["id"] == "1"
        assert len(api_log(emu, "finance/invoices", "GET")) == 1  # streaming: one page so far
        ids = [int(first["id"])] + [int(row["id"]) for row in pages]
        assert ids == sorted(set(ids)) and len(ids) == total > 40
        queries = [e["query"] for e in api_log(emu, "finance/invoices", "GET")]
        assert len(queries) == total // 7 + 1
        assert all("limit=7" in q for q in queries) and "offset=35" in queries[5]


def test_count(splynx):
    assert splynx.count("admin/finance/invoices", main_attributes={"customer_id": 1}) == 5
    assert splynx.count("admin/finance/invoices",
                        main_attributes={"status": "not_paid", "customer_id": ("IN", [1, 3])}) == 6
    assert splynx.count("admin/finance/payments", main_attributes={"field_1": "none"}) == 0


def test_payment_pays_the_invoice(splynx):
    before = splynx.get_customer_billing(1).deposit_cents
    payment_id = splynx.create_payment(
        customer_id=1, amount_cents=7500, payment_type=3, date=datetime.date(2024, 3, 20),
        receipt_number="IPPAY-TEST1", invoice_id=5, comment="IPpay transaction TXN1",
        field_1="TXN1ABCDEFGHIJKLMN", field_2="card ****1111")
    invoice = splynx.get_invoice(5)
    assert (invoice.status, invoice.due_cents, invoice.payment_id) == ("paid", 0, payment_id)
    assert invoice.date_payment == datetime.date(2024, 3, 20)
    assert splynx.get_customer_billing(1).deposit_cents == before + 7500
    found, = splynx.find_payments(field_1="TXN1ABCDEFGHIJKLMN")
    assert found == splynx.get_payment(payment_id)
    assert (found.id, found.customer_id, found.amount_cents, found.payment_type, found.invoice_id,
            found.request_id, found.receipt_number, found.field_2, found.comment) == (
        payment_id, 1, 7500, 3, 5, None, "IPPAY-TEST1", "card ****1111", "IPpay transaction TXN1")


def test_bad_payment_is_a_validation_error(splynx):
    with pytest.raises(SplynxValidationError, match="payment_type"):
        splynx.create_payment(customer_id=1, amount_cents=100, payment_type=99,
                              date=datetime.date(2024, 3, 20), receipt_number="R")


def test_proformas(splynx):
    unpaid = splynx.list_proformas(status="not_paid")
    assert [(p.id, p.customer_id, p.total_cents, p.due_cents) for p in unpaid] == [
        (1, 1, 4500, 4500), (2, 2, 2010, 2010)]
    paid = splynx.get_proforma(3)
    assert (paid.status, paid.due_cents, paid.total_cents) == ("paid", 0, 1200)
    assert splynx.find_proforma_by_number(unpaid[0].number) == unpaid[0]
    assert splynx.list_proformas(customer_id=3, date_from=datetime.date(2024, 5, 10),
                                 date_to=datetime.date(2024, 5, 10)) == [paid]
    splynx.create_payment(customer_id=2, amount_cents=2010, payment_type=3,
                          date=datetime.date(2024, 5, 20), receipt_number="P2", request_id=2)
    assert splynx.get_proforma(2).due_cents == 0


def test_customer_billing_and_payment_methods(splynx):
    customer = splynx.get_customer(1)
    assert (customer.id, customer.login, customer.name, customer.email) == (
        1, "alice", "Alice Anderson", "alice@example.com")
    billing = splynx.get_customer_billing(1)
    assert billing.customer_id == 1 and billing.deposit_cents == -(6010 + 7500 + 12050 + 1905)
    methods = splynx.list_payment_methods()
    assert [(m.id, m.name) for m in methods][:3] == [(1, "Cash"), (2, "Bank transfer"),
                                                     (3, "Credit card")]
    assert all(m.is_active for m in methods)


def test_payment_accounts(splynx):
    assert splynx.get_payment_accounts(1) == []
    assert splynx.get_payment_account(1, 4) is None
    splynx.put_payment_account(1, 4, {"field_1": "TOKEN123", "field_2": "Alice A",
                                      "field_3": "1111"})
    splynx.put_payment_account(1, 4, {"field_4": "12/2031"})
    account = splynx.get_payment_account(1, 4)
    assert (account.customer_id, account.account_id) == (1, 4)
    assert account.fields["field_1"] == "TOKEN123" and account.fields["field_4"] == "12/2031"
    assert splynx.get_payment_accounts(1) == [account] and splynx.get_payment_accounts(2) == []
    splynx.delete_payment_account(1, 4)
    assert splynx.get_payment_account(1, 4) is None
    with pytest.raises(SplynxNotFoundError):
        splynx.delete_payment_account(1, 4)


def test_modules_config_and_entry_points(splynx_emu, splynx):
    allow_undocumented(splynx_emu)  # entry point writes are not in the API blueprint
    module = "splynx_ippay_addon"
    splynx.create_module({"name": module, "title": "Splynx Ippay Billing Add-On",
                          "root": "/var/www/splynx/addons/splynx-ippay", "type": "simple"})
    assert splynx.get_module(module)["title"] == "Splynx Ippay Billing Add-On"
    assert module in [m["name"] for m in splynx.list_modules()]
    splynx.update_module(module, {"title": "IPpay"})
    assert splynx.get_module(module)["title"] == "IPpay"

    splynx.put_module_config(module, {"terminal_id": "TESTTERMINAL", "fee_percent": "0"})
    splynx.put_module_config(module, {"terminal_id": "PARTNER2"}, partner_id=2)
    assert splynx.get_module_config(module) == {"terminal_id": "TESTTERMINAL", "fee_percent": "0"}
    assert splynx.get_module_config(module, partner_id=2)["terminal_id"] == "PARTNER2"

    point = {"module": module, "name": "ippay_pay_invoice", "place": "portal",
             "type": "action_link", "model": "Invoices", "size": "large", "title": "Pay by Ippay",
             "icon": "fa-credit-card", "url": "/ippay/pay-invoice", "enabled": True}
    point_id = splynx.create_entry_point(point)
    assert splynx.get_entry_point(point_id)["url"] == "/ippay/pay-invoice"
    splynx.update_entry_point(point_id, {"enabled": False})
    listed, = splynx.list_entry_points(module=module)
    assert listed["id"] == str(point_id) and listed["enabled"] is False
    with pytest.raises(SplynxValidationError, match="already exists"):
        splynx.create_entry_point(point)
    splynx.delete_entry_point(point_id)
    assert splynx.list_entry_points(module=module) == []

    splynx.delete_module(module)
    with pytest.raises(SplynxNotFoundError):
        splynx.get_module(module)
    with pytest.raises(SplynxNotFoundError):
        splynx.get_module_config(module)


def test_server_fault_is_a_server_error(splynx_emu, splynx):
    sandbox_call(splynx_emu, "/_sandbox/faults", {"status": 500, "path_regex": "finance/payments",
                                              "method": "POST", "count": 1})
    pay = dict(customer_id=1, amount_cents=1905, payment_type=3, date=datetime.date(2024, 5, 6),
               receipt_number="R10", invoice_id=10)
    with pytest.raises(SplynxServerError) as caught:
        splynx.create_payment(**pay)
    assert caught.value.status == 500 and caught.value.internal_code == "SERVER_ERROR"
    assert splynx.create_payment(**pay) > 0

