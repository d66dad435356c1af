"""Strict mode (default on): every request body held to the API blueprint's documented
fields and types, 400 INVALID_INPUT_DATA naming the field; the methods the blueprint does
not document refused with 405 unless switched on; both switchable per run and at run time.
Also the bodies the add-on sends today that strict mode refuses (README "Strict mode")."""

import pytest
import requests

from sandbox.serve import BackgroundServer
from tests.sandbox.splynx.emulator_helpers import (MODULE, api, assert_error, payment_body,
                                                   register_addon, state)


def refused(response, field):
    assert_error(response, 400, "INVALID_INPUT_DATA")
    message = response.json()["error"]["message"]
    assert message.startswith(field), message
    return message


@pytest.mark.parametrize("change, field, words", [
    ({"payment_type": 3}, "payment_type", "must be a string"),
    ({"amount": 75}, "amount", "must be a string"),
    ({"customer_id": "1"}, "customer_id", "must be a number"),
    ({"is_sent": "yes"}, "is_sent", "one of 0, 1"),
    ({"total": "1.00"}, "total", "unknown field"),
    ({"comment": None}, "comment", "must not be null"),
])
def test_payment_bodies_are_typed_as_documented(strict_emu, change, field, words):
    body = {**payment_body(customer_id=1, amount="1.00"), **change}
    message = refused(api(strict_emu, "POST", "admin/finance/payments", json=body), field)
    assert words in message


def test_nullable_fields_take_null(strict_emu):
    body = payment_body(customer_id=1, amount="1.00", invoice_id=None, request_id=None)
    assert api(strict_emu, "POST", "admin/finance/payments", json=body).status_code == 201


def test_required_fields_on_create_but_not_on_update(strict_emu):
    body = payment_body(customer_id=1, amount="1.00")
    del body["field_3"]
    refused(api(strict_emu, "POST", "admin/finance/payments", json=body), "field_3")
    r = api(strict_emu, "POST", "admin/finance/payments", json=payment_body(customer_id=1, amount="1.00"))
    assert r.status_code == 201
    assert api(strict_emu, "PUT", f"admin/finance/payments/{r.json()['id']}",
               json={"comment": "corrected"}).status_code == 202
    refused(api(strict_emu, "PUT", f"admin/finance/payments/{r.json()['id']}",
                json={"comment": 5}), "comment")


def test_the_add_on_s_refund_transaction_of_today_is_refused(strict_emu):
    """services/refunds.py posts this: no tax_percent, an invented total, price as a
    string, the category a number (and a magic 4)."""
    today = {"type": "debit", "customer_id": 1, "price": "12.34", "total": "12.34",
             "quantity": 1, "date": "2024-06-01", "category": 4,
             "description": "Card refund", "comment": "IPPAY-REFUND-X-1"}
    refused(api(strict_emu, "POST", "admin/finance/transactions", json=today), "price")
    fixed = {**today, "price": 12.34}
    refused(api(strict_emu, "POST", "admin/finance/transactions", json=fixed), "total")
    del fixed["total"]
    refused(api(strict_emu, "POST", "admin/finance/transactions", json=fixed), "category")
    fixed["category"] = "4"
    refused(api(strict_emu, "POST", "admin/finance/transactions", json=fixed), "tax_percent")
    fixed["tax_percent"] = 0
    # Every field as the blueprint types it; the category still has to exist.
    refused(api(strict_emu, "POST", "admin/finance/transactions", json=fixed), "category")
    assert "unknown transaction category" in api(
        strict_emu, "POST", "admin/finance/transactions", json=fixed).json()["error"]["message"]
    fixed["category"] = "5"
    assert api(strict_emu, "POST", "admin/finance/transactions", json=fixed).status_code == 201


def test_the_add_on_s_payment_method_body_of_today_is_refused(strict_emu):
    """services/registration.py sends is_active as "1"/"0"; the blueprint says boolean."""
    message = refused(api(strict_emu, "POST", "admin/finance/payment-methods",
                          json={"name": "IPpay", "is_active": "1"}), "is_active")
    assert "boolean" in message
    r = api(strict_emu, "POST", "admin/finance/payment-methods",
            json={"name": "IPpay", "is_active": True})
    assert r.status_code == 201
    refused(api(strict_emu, "PUT", f"admin/finance/payment-methods/{r.json()['id']}",
                json={"is_active": "0"}), "is_active")
    assert api(strict_emu, "PUT", f"admin/finance/payment-methods/{r.json()['id']}",
               json={"is_active": False}).status_code == 202
    refused(api(strict_emu, "POST", "admin/finance/payment-methods", json={"name": "X"}),
            "is_active")


def test_undocumented_methods_are_refused_until_allowed(strict_emu):
    assert api(strict_emu, "POST", "admin/config/modules", json={
        "name": MODULE, "title": "IPpay", "root": "/ippay", "type": "simple"}).status_code == 201
    point = {"module": MODULE, "name": "ippay_cards", "place": "portal", "type": "menu_link",
             "title": "Credit card", "url": "/ippay/cards", "enabled": True}
    r = api(strict_emu, "POST", "admin/config/entry-points", json=point)
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert "not in the Splynx API blueprint" in r.json()["error"]["message"]
    assert_error(api(strict_emu, "PUT", "admin/config/entry-points/1", json={"enabled": False}),
                 405, "METHOD_NOT_ALLOWED")
    assert_error(api(strict_emu, "DELETE", "admin/config/entry-points/1"), 405, "METHOD_NOT_ALLOWED")
    assert_error(api(strict_emu, "POST", "admin/customers/customer-payment-accounts",
                     json={"title": "IPpay"}), 405, "METHOD_NOT_ALLOWED")
    assert api(strict_emu, "GET", "admin/config/entry-points").json() == []
    assert state(strict_emu)["entry_points"] == []
    requests.post(f"{strict_emu.url}/_sandbox/settings", json={"undocumented_methods": "allow"},
                  timeout=5)
    r = api(strict_emu, "POST", "admin/config/entry-points", json=point)
    assert r.status_code == 201
    # Allowed, they are still held to the types of "Entry Point Response".
    refused(api(strict_emu, "PUT", f"admin/config/entry-points/{r.json()['id']}",
                json={"enabled": "0"}), "enabled")
    refused(api(strict_emu, "POST", "admin/config/entry-points",
                json={**point, "name": "other", "partners": [1]}), "partners[0]")


def test_modules_tokens_accounts_and_nested_items(strict_emu):
    refused(api(strict_emu, "POST", "admin/config/modules",
                json={"name": MODULE, "title": "IPpay", "root": "/ippay"}), "type")
    refused(api(strict_emu, "PUT", "admin/customers/customer-payment-accounts?id=1--4",
                json={"field_1": 1111}), "field_1")
    refused(api(strict_emu, "PUT", "admin/customers/customer-payment-accounts?id=1--4",
                json={"token": "x"}), "token")
    refused(api(strict_emu, "POST", "admin/finance/invoices", json={
        "customer_id": 1, "status": "not_paid", "number": "X1",
        "items": [{"description": "Extra", "quantity": 2, "unit": 1, "price": "10.00"}]}),
        "items[0][price]")
    r = requests.post(f"{strict_emu.url}/api/2.0/admin/auth/tokens",
                      json={"auth_type": "admin", "login": "admin", "password": "admin-pass",
                            "remember": True}, timeout=5)
    refused(r, "remember")
    r = requests.post(f"{strict_emu.url}/api/2.0/admin/auth/tokens",
                      data={"auth_type": "customer", "login": "bob", "password": "bob-pass"},
                      timeout=5)
    assert r.status_code == 201  # a form: names checked, values are all strings


def test_strict_mode_is_switchable_at_run_time_and_per_run(strict_emu, monkeypatch):
    body = {"name": "IPpay", "is_active": "1"}
    assert api(strict_emu, "POST", "admin/finance/payment-methods", json=body).status_code == 400
    requests.post(f"{strict_emu.url}/_sandbox/settings", json={"strict": False}, timeout=5)
    assert api(strict_emu, "POST", "admin/finance/payment-methods", json=body).status_code == 201
    from sandbox.splynx import create_app

    monkeypatch.setenv("SPLYNX_SANDBOX_STRICT", "0")
    with BackgroundServer(create_app()) as lenient:
        settings = requests.get(f"{lenient.url}/_sandbox/settings", timeout=5).json()
        assert (settings["strict"], settings["undocumented_methods"],
                settings["refund_category"]) == (False, "allow", True)
        register_addon(lenient)
    monkeypatch.setenv("SPLYNX_SANDBOX_STRICT", "1")
    with BackgroundServer(create_app()) as strict:
        settings = requests.get(f"{strict.url}/_sandbox/settings", timeout=5).json()
        assert (settings["strict"], settings["undocumented_methods"],
                settings["refund_category"]) == (True, "refuse", False)
    with BackgroundServer(create_app({"strict": True, "undocumented_methods": "allow"})) as mixed:
        register_addon(mixed)
