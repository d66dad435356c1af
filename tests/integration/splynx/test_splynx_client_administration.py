"""The resources added for registration, refunds and the staff pages, against the
emulator in strict mode: payment methods (is_active a boolean), transaction categories
found by name or created, refund debits, administrators and their roles, partners,
company info, payment-account definitions, keyset paging, permission probes."""

import datetime

import pytest
import requests

from sandbox.serve import BackgroundServer
from sandbox.splynx import create_app
from splynx_ippay.splynx import SplynxClient, SplynxError, SplynxNotFoundError
from splynx_ippay.splynx.client import READ_PROBES
from tests.integration.splynx.splynx_helpers import KEY, SECRET, api_log


@pytest.fixture
def strict_emu():
    with BackgroundServer(create_app({"strict": True, "undocumented_methods": "refuse"})) as emu:
        yield emu


@pytest.fixture
def client(strict_emu):
    return SplynxClient(strict_emu.url, KEY, SECRET)


def test_payment_methods_are_created_and_switched_with_booleans(strict_emu, client):
    assert client.find_payment_method("ipPay ") is None
    method_id = client.create_payment_method("IPpay", field_names=("TransactionID", "Card"))
    method = client.get_payment_method(method_id)
    assert (method.name, method.is_active, method.field_names[:2]) == (
        "IPpay", True, ("TransactionID", "Card"))
    client.update_payment_method(method_id, is_active=False)
    assert client.find_payment_method("ipPay ").is_active is False
    sent = [e["json"] for e in api_log(strict_emu, "finance/payment-methods")
            if e["method"] in ("POST", "PUT")]
    assert [b["is_active"] for b in sent] == [True, False]


def test_the_refund_category_is_found_by_name_or_created(strict_emu, client):
    assert [c.name for c in client.list_transaction_categories()] == [
        "Service", "Discount", "Payment", "Correction"]
    assert client.find_transaction_category("refund") is None
    created = client.ensure_transaction_category("Refund")
    assert client.ensure_transaction_category(" REFUND") == created
    assert client.find_transaction_category("Refund").id == created != 4
    with BackgroundServer(create_app({"refund_category": True})) as stock:
        assert SplynxClient(stock.url, KEY, SECRET).ensure_transaction_category("Refund") == 4


def test_a_refund_debit_lowers_the_balance_in_its_category(client):
    before = client.get_customer_billing(1).deposit_cents
    category = client.ensure_transaction_category("Refund")
    txn_id = client.create_refund_debit(customer_id=1, amount_cents=1005,
                                        date=datetime.date(2024, 6, 1), category_id=category,
                                        description="Card refund 10.05",
                                        comment="IPPAY-REFUND-TXN1-1")
    assert client.get_customer_billing(1).deposit_cents == before - 1005
    found, = client.find_transactions(customer_id=1, comment="IPPAY-REFUND-TXN1-1")
    assert found == client.get_transaction(txn_id)
    assert (found.type, found.price_cents, found.total_cents, found.category_id) == (
        "debit", 1005, 1005, category)
    with pytest.raises(ValueError):
        client.find_transactions()


def test_administrators_partners_and_company_info(client):
    admin = client.get_administrator(1)
    assert (admin.login, admin.name, admin.role_name, admin.partner_id) == (
        "admin", "Sandbox Administrator", "super-administrator", None)
    assert {a.role_name for a in client.list_administrators()} >= {
        "super-administrator", "administrator", "manager", "partner"}
    assert client.get_administrator(4).partner_id == 2
    with pytest.raises(SplynxNotFoundError):
        client.get_administrator(99)
    assert [(p.id, p.name) for p in client.list_partners()] == [(1, "Default"),
                                                                (2, "Second Partner")]
    assert client.get_partner(2).name == "Second Partner"
    assert client.get_customer(3).partner_id == 2 and client.get_customer(1).partner_id == 1
    own = client.get_company_info(client.get_customer(3).partner_id)
    assert (own.company_name, own.email) == ("Second Partner Networks",
                                             "accounts@second-partner.example")
    assert own.phone and own.address_lines[0] == "22 Relay Road"
    assert [c.partner_id for c in client.list_company_info()] == [1, 2]


def test_payment_account_definitions_are_listed_but_not_created_over_the_api(client):
    assert client.list_payment_account_definitions() == []
    assert client.find_payment_account_definition("IPpay") is None
    with pytest.raises(SplynxError) as refused:
        client.create_payment_account_definition("IPpay", {"field_1": "Token"})
    assert (refused.value.status, refused.value.internal_code) == (405, "METHOD_NOT_ALLOWED")


def test_payment_account_definitions_when_the_api_offers_them(strict_emu, client):
    requests.post(f"{strict_emu.url}/_sandbox/settings",
                  json={"undocumented_methods": "allow"}, timeout=5)
    new_id = client.create_payment_account_definition("IPpay", {"field_1": "Token",
                                                                "field_2": "Card"})
    found = client.find_payment_account_definition("ippay")
    assert (found.id, found.labels["field_2"]) == (new_id, "Card")
    with pytest.raises(SplynxError, match="already exists"):
        client.create_payment_account_definition("IPpay", {})


def test_keyset_pages_of_invoices(client):
    first = client.invoice_page(limit=4)
    assert [i.id for i in first] == [1, 2, 3, 4]
    assert [i.id for i in client.invoice_page(after_id=first[-1].id, limit=4)] == [5, 6, 7, 8]
    unpaid = client.invoice_page(after_id=4, status="not_paid", customer_id=1)
    assert [i.id for i in unpaid] == [5, 8, 10]


def test_every_read_probe_is_allowed_for_a_full_key(client):
    for name in READ_PROBES:
        client.probe_read(name)


def test_typed_entry_points_of_a_module(strict_emu, client):
    client.create_module({"name": "splynx_ippay_addon", "title": "IPpay",
                          "root": "/usr/share/splynx-ippay", "type": "simple"})
    assert client.find_entry_points("splynx_ippay_addon") == []
