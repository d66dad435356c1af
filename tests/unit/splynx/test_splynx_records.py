"""Conversions at the edge: Splynx's loose JSON into typed records, ids to int, money to
int cents (docs/interfaces.md "Money and identifiers")."""

import datetime
from decimal import Decimal

import pytest

from splynx_ippay.splynx import (Administrator, CompanyInfo, EntryPoint, Invoice, Partner,
                                 PaymentAccountDefinition, Proforma, Transaction,
                                 TransactionCategory, cents_to_money, cents_to_number,
                                 money_to_cents)
from splynx_ippay.splynx.models import (Customer, CustomerBilling, Payment, PaymentMethod,
                                        parse_bool, parse_date, parse_id, parse_optional_id)


# --------------------------------------------------------------------------
# conversions at the edge (docs/interfaces.md "Money and identifiers")

@pytest.mark.parametrize("value, cents", [
    ("75.0000", 7500), (75, 7500), (16.47, 1647), ("16.47", 1647), (Decimal("0.1"), 10),
    ("-210.00", -21000), ("0", 0), (" 12.3 ", 1230), ("0.005", 1), ("0.0049", 0),
    ("-0.005", -1), ("1.995", 200), (0.1 + 0.2, 30), ("1e2", 10000), (1.005, 101),
])
def test_money_to_cents(value, cents):
    assert money_to_cents(value) == cents


@pytest.mark.parametrize("value", [None, "", "abc", True, "NaN", "inf", [1], "1,000.00"])
def test_money_to_cents_refuses_non_amounts(value):
    with pytest.raises(ValueError):
        money_to_cents(value)


@pytest.mark.parametrize("cents, text", [(7500, "75.00"), (1, "0.01"), (0, "0.00"),
                                         (-5, "-0.05"), (123456789, "1234567.89")])
def test_cents_to_money(cents, text):
    assert cents_to_money(cents) == text
    assert money_to_cents(text) == cents


@pytest.mark.parametrize("value", [75.0, "7500", True, Decimal("1")])
def test_cents_to_money_wants_int(value):
    with pytest.raises(TypeError):
        cents_to_money(value)


@pytest.mark.parametrize("value, expected", [
    ("2023-10-05", datetime.date(2023, 10, 5)),
    ("2023-10-05 13:01:02", datetime.date(2023, 10, 5)),
    ("0000-00-00", None), ("0000-00-00 00:00:00", None), ("", None), (None, None),
])
def test_parse_date(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", ["2023-13-01", "yesterday", 20231005])
def test_parse_date_refuses_garbage(value):
    with pytest.raises(ValueError):
        parse_date(value)


def test_ids():
    assert parse_id("7") == 7 and parse_id(7) == 7 and parse_id(" 12 ") == 12
    for bad in (None, True, "7.0", "-1", "", "x", 7.0):
        with pytest.raises(ValueError):
            parse_id(bad)
    assert parse_optional_id("0") is None and parse_optional_id(0) is None
    assert parse_optional_id("") is None and parse_optional_id(None) is None
    assert parse_optional_id("231") == 231


def test_flags():
    assert [parse_bool(v) for v in ("1", "0", 1, 0, True, "true", "false", "")] == [
        True, False, True, False, True, True, False, False]


SPEC_INVOICE = {  # splynx §2.2, composed example, types as Splynx sends them
    "id": "231", "customer_id": "7", "number": "202310000231", "date_created": "2023-10-01",
    "date_till": "2023-10-15", "date_payment": "0000-00-00", "total": 75, "due": 75,
    "status": "not_paid", "payment_id": "0", "payd_from_deposit": "0", "added_by": "system",
    "note": None, "additional_attributes": {},
    "items": [{"id": "901", "description": "Internet 50M", "quantity": 1, "unit": "",
               "price": "75.0000", "tax": "0.0000", "period_from": "2023-10-01",
               "period_to": "2023-10-31"}]}


def test_invoice_from_api():
    invoice = Invoice.from_api(SPEC_INVOICE)
    assert (invoice.id, invoice.customer_id, invoice.number, invoice.status) == (
        231, 7, "202310000231", "not_paid")
    assert (invoice.total_cents, invoice.due_cents) == (7500, 7500)
    assert invoice.date_created == datetime.date(2023, 10, 1)
    assert invoice.date_till == datetime.date(2023, 10, 15)
    assert invoice.date_payment is None and invoice.payment_id is None and invoice.note == ""
    item, = invoice.items
    assert (item.id, item.description, item.quantity, item.price_cents, item.tax_percent) == (
        901, "Internet 50M", 1, 7500, 0)
    assert item.period_to == datetime.date(2023, 10, 31)
    assert invoice.raw is SPEC_INVOICE
    assert hash(invoice) == hash(Invoice.from_api(dict(SPEC_INVOICE)))


def test_proforma_due_is_total_until_paid():
    data = dict(SPEC_INVOICE, total="16.47")
    del data["due"]
    assert Proforma.from_api(data).due_cents == 1647
    assert Proforma.from_api(dict(data, status="paid", date_payment="2023-10-05")).due_cents == 0


def test_other_records_from_api():
    customer = Customer.from_api({"id": "7", "login": "alice", "name": "Alice", "email": None,
                                  "status": "active", "partner_id": "1",
                                  "billing_type": "recurring"})
    assert (customer.id, customer.email, customer.partner_id) == (7, "", 1)
    # Charge runs keep thousands of customers: none of them holds the API's whole record.
    assert not hasattr(customer, "raw")
    billing = CustomerBilling.from_api({"customer_id": "7", "deposit": "-210.0000",
                                        "payment_method": "3", "enabled": "1"})
    assert (billing.deposit_cents, billing.payment_method_id, billing.enabled) == (-21000, 3, True)
    payment = Payment.from_api({"id": "5", "customer_id": "7", "amount": "75.0000",
                                "payment_type": "3", "date": "2023-10-05", "invoice_id": "231",
                                "request_id": "0", "receipt_number": "IPPAY-1",
                                "field_1": "5F2A91"})
    assert (payment.amount_cents, payment.invoice_id, payment.request_id, payment.field_1,
            payment.field_2) == (7500, 231, None, "5F2A91", "")
    method = PaymentMethod.from_api({"id": "3", "name": "Credit card", "is_active": "0"})
    assert (method.id, method.name, method.is_active) == (3, "Credit card", False)



# --------------------------------------------------------------------------
# amounts the blueprint types as numbers (a transaction's price)

@pytest.mark.parametrize("cents", [0, 1, 5, 99, 1005, 1995, 12345, -1, -1005, 123456789,
                                   10 ** 15 - 1, -(10 ** 15 - 1), 999999999999901])
def test_cents_to_number_keeps_every_cent(cents):
    number = cents_to_number(cents)
    assert isinstance(number, float)
    assert Decimal(repr(number)) == Decimal(cents) / 100
    assert money_to_cents(number) == cents


def test_cents_to_number_over_the_whole_cent_range_of_a_bill():
    assert all(money_to_cents(cents_to_number(c)) == c for c in range(0, 200001, 7))


@pytest.mark.parametrize("value", [1.5, "100", True, Decimal("1")])
def test_cents_to_number_wants_int(value):
    with pytest.raises(TypeError):
        cents_to_number(value)


def test_cents_to_number_refuses_what_a_float_cannot_hold():
    with pytest.raises(ValueError):
        cents_to_number(10 ** 15)


# --------------------------------------------------------------------------
# the records of the resources added for registration, refunds and staff pages

def test_transaction_and_category_records():
    txn = Transaction.from_api({"id": "41", "type": "debit", "customer_id": "7", "quantity": "1",
                                "price": "12.3400", "tax_percent": "0.0000", "total": "12.3400",
                                "date": "2024-06-01", "category": "6", "description": "Refund",
                                "comment": "IPPAY-REFUND-X-1", "payment_id": "0",
                                "invoice_id": "0"})
    assert (txn.id, txn.type, txn.customer_id, txn.price_cents, txn.total_cents,
            txn.category_id, txn.payment_id, txn.invoice_id) == (41, "debit", 7, 1234, 1234, 6,
                                                                 None, None)
    assert txn.date == datetime.date(2024, 6, 1) and txn.comment == "IPPAY-REFUND-X-1"
    category = TransactionCategory.from_api({"id": "5", "name": "Correction", "is_base": "1"})
    assert (category.id, category.name, category.is_base) == (5, "Correction", True)


def test_administrator_partner_and_company_records():
    admin = Administrator.from_api({"id": "3", "login": "manager", "name": "Manny",
                                    "email": "m@x", "role_name": "manager", "partner_id": "1"})
    assert (admin.id, admin.role_name, admin.partner_id) == (3, "manager", 1)
    everyone = Administrator.from_api({"id": "1", "login": "admin", "name": "A", "email": "",
                                       "role_name": "super-administrator", "partner_id": "0"})
    assert everyone.partner_id is None
    assert Partner.from_api({"id": "2", "name": "Second"}) == Partner(2, "Second")
    company = CompanyInfo.from_api({"id": "2", "company_name": "ISP", "email": "b@isp",
                                    "phone": "+1", "street_1": "1 Road", "street_2": "",
                                    "zip": "123", "city": "Town", "country": "Land",
                                    "iso_country_code": "LA", "splynx_url": None,
                                    "vat_percent": "0.0000"})
    assert (company.partner_id, company.company_name, company.splynx_url) == (2, "ISP", "")
    assert company.address_lines == ("1 Road", "123 Town", "Land")


def test_payment_account_definition_entry_point_and_payment_method_records():
    definition = PaymentAccountDefinition.from_api({"id": "4", "title": "IPpay",
                                                    "field_1": "Token", "field_2": ""})
    assert (definition.id, definition.title, definition.labels["field_1"]) == (4, "IPpay", "Token")
    point = EntryPoint.from_api({"id": "9", "module": "m", "name": "n", "place": "portal",
                                 "type": "menu_link", "title": "T", "url": "/x", "enabled": False})
    assert (point.id, point.enabled, point.url) == (9, False, "/x")
    method = PaymentMethod.from_api({"id": "7", "name": "IPpay", "is_active": True,
                                     "name_1": "TransactionID", "name_2": None})
    assert method.field_names == ("TransactionID", "", "", "", "")
    assert method == PaymentMethod(7, "IPpay", True)
