"""The resources the emulator added for the add-on's staff pages, mails and per-partner
settings, in the wire types of the API blueprint's answers: administrators with roles,
partners (a Default and a second one with a customer of its own), company info,
transaction categories (Splynx's defaults; "Refund" by switch), payment-account
definitions."""

import requests

from sandbox.serve import BackgroundServer
from tests.sandbox.splynx.emulator_helpers import api, assert_error, bearer, state, token_for


def test_administrators_with_roles(seeded_emu):
    admins = api(seeded_emu, "GET", "admin/administration/administrators").json()
    assert [(a["id"], a["login"], a["role_name"], a["partner_id"]) for a in admins] == [
        ("1", "admin", "super-administrator", "0"), ("2", "office", "administrator", "1"),
        ("3", "manager", "manager", "1"), ("4", "partner", "partner", "2")]
    one = api(seeded_emu, "GET", "admin/administration/administrators/3").json()
    assert set(one) == {"id", "partner_id", "role_name", "login", "name", "email", "timeout",
                        "router_access", "phone"}
    assert one["name"] == "Manny Manager" and "password" not in one
    found = api(seeded_emu, "GET", "admin/administration/administrators"
                "?main_attributes[role_name]=manager").json()
    assert [a["login"] for a in found] == ["manager"]
    assert_error(api(seeded_emu, "GET", "admin/administration/administrators/99"), 404, "NOT_FOUND")
    assert_error(api(seeded_emu, "POST", "admin/administration/administrators",
                     json={"login": "x", "name": "X", "email": "x@x", "password": "p"}),
                 405, "METHOD_NOT_ALLOWED")


def test_every_seeded_administrator_can_log_in(seeded_emu):
    for login in ("admin", "office", "manager", "partner"):
        session = requests.Session()
        r = session.post(f"{seeded_emu.url}/admin/login",
                         data={"login": login, "password": f"{login}-pass"},
                         allow_redirects=False, timeout=5)
        assert r.status_code == 302 and "PHPSESSID" in session.cookies, login


def test_partners_and_their_customers(seeded_emu):
    assert api(seeded_emu, "GET", "admin/administration/partners").json() == [
        {"id": "1", "name": "Default"}, {"id": "2", "name": "Second Partner"}]
    assert api(seeded_emu, "GET", "admin/administration/partners/2").json()["name"] == "Second Partner"
    second = api(seeded_emu, "GET", "admin/customers/customer?main_attributes[partner_id]=2").json()
    assert [c["login"] for c in second] == ["carol"]


def test_company_info_per_partner(seeded_emu):
    companies = api(seeded_emu, "GET", "admin/config/company-info").json()
    assert [c["id"] for c in companies] == ["1", "2"]
    own = api(seeded_emu, "GET", "admin/config/company-info/2").json()
    assert (own["company_name"], own["email"], own["phone"], own["city"]) == (
        "Second Partner Networks", "accounts@second-partner.example", "+1 555 0200", "Shelbyville")
    assert own["receipt_template_id"] == "3" and own["vat_percent"] == "0.0000"
    assert_error(api(seeded_emu, "GET", "admin/config/company-info/7"), 404, "NOT_FOUND")


def test_customers_do_not_see_staff_resources(seeded_emu):
    headers = bearer(token_for(seeded_emu, auth_type="customer", login="alice",
                               password="alice-pass")["access_token"])
    for path in ("admin/administration/administrators", "admin/administration/partners",
                 "admin/config/company-info", "admin/customers/customer-payment-account-data",
                 "admin/customers/customer-payment-accounts"):
        assert_error(api(seeded_emu, "GET", path, headers=headers), 403, "FORBIDDEN")


def test_transaction_categories_are_splynx_s_defaults_without_refund_by_default(seeded_emu):
    from sandbox.splynx import create_app

    names = lambda emu: [(c["id"], c["name"]) for c in api(  # noqa: E731
        emu, "GET", "admin/finance/transaction-categories").json()]
    with BackgroundServer(create_app({"strict": True})) as strict:
        assert names(strict) == [("1", "Service"), ("2", "Discount"), ("3", "Payment"),
                                 ("5", "Correction")]
        r = api(strict, "POST", "admin/finance/transaction-categories", json={"name": "Refund"})
        assert r.status_code == 201 and r.json()["id"] == 6
    with BackgroundServer(create_app({"refund_category": True})) as stock:
        assert ("4", "Refund") in names(stock)
        assert [c["name"] for c in state(stock)["transaction_categories"]][3] == "Refund"


def test_payment_account_definitions_and_all_account_data(splynx_emu):
    url = "admin/customers/customer-payment-accounts"
    assert api(splynx_emu, "GET", url).json() == []
    assert api(splynx_emu, "PUT", f"{url}?id=1--7", json={"field_1": "TOKEN"}).status_code == 202
    assert api(splynx_emu, "PUT", f"{url}?id=2--7", json={"field_1": "OTHER"}).status_code == 202
    every = api(splynx_emu, "GET", "admin/customers/customer-payment-account-data").json()
    assert [(r["customer_id"], r["field_1"]) for r in every] == [("1", "TOKEN"), ("2", "OTHER")]
    requests.post(f"{splynx_emu.url}/_sandbox/settings", json={"undocumented_methods": "allow"},
                  timeout=5)
    r = api(splynx_emu, "POST", url, json={"title": "IPpay", "field_1": "Card"})
    assert r.status_code == 201
    assert api(splynx_emu, "GET", url).json() == [
        {"id": str(r.json()["id"]), "title": "IPpay", "field_1": "Card",
         **{f"field_{n}": "" for n in range(2, 11)}}]
    assert_error(api(splynx_emu, "POST", url, json={"title": "ippay"}), 400, "INVALID_INPUT_DATA")
    assert state(splynx_emu)["payment_account_definitions"][0]["title"] == "IPpay"
