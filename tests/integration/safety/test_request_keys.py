"""Request keys are the server's (design.md §3, invariant 6): on every payment form a forged,
tampered, expired, reused or foreign key gets a clear refusal and charges nothing, and no
form value can name an attempt the add-on made for itself (a charge-run item)."""

import datetime as dt
import re

import pytest

from splynx_ippay.models import Channel
from splynx_ippay.services import request_keys
from splynx_ippay.services.charge_runs import runs as charge_runs
from splynx_ippay.services.charge_runs.filters import RunFilters
from splynx_ippay.services.payments import link_signature
from tests.portal.helpers import add_card, csrf, form_value, new_card_fields, pay_page, refill_page

REFUSED = "This form can no longer be used, so nothing was charged."


def sales(world):
    return [t for t in world.sim_call("ledger")["transactions"] if t["type"] == "SALE"]


def post_pay(world, session, kind, number, page, key, **fields):
    card_id = fields.pop("card_id", None) or re.search(
        r'name="card_id"[^>]*value="(\d+|new)"', page.text).group(1)
    return session.post(f"{world.url}/ippay/pay-{kind}", params={"item_id": number}, data={
        "csrf_token": csrf(page.text), "request_key": key, "card_id": card_id, **fields},
        timeout=30)


@pytest.fixture
def alice(world):
    session = world.login("alice")
    add_card(world, session)
    return session


@pytest.mark.parametrize("key", [
    "", "form:abc", "charge-item:1", "x" * 300,
    "portal.1.invoice.5.1796000000.AAAAAAAAAAAAAAAA.0123456789abcdef0123456789abcdef",
])
def test_a_forged_key_is_refused_and_charges_nothing(world, alice, key):
    page = pay_page(world, alice, "invoice", "202403000005")
    result = post_pay(world, alice, "invoice", "202403000005", page, key)
    assert result.status_code == 422 and REFUSED in result.text
    assert sales(world) == []


def test_a_key_for_another_invoice_or_channel_is_refused(world, alice):
    page = pay_page(world, alice, "invoice", "202403000005")
    other = pay_page(world, alice, "invoice", "202402000003")
    # The key of the other invoice's form, posted with this one.
    result = post_pay(world, alice, "invoice", "202403000005", page,
                      form_value(other.text, "request_key"))
    assert result.status_code == 422 and REFUSED in result.text
    # A key the server made for the direct link of the same invoice.
    link_key = request_keys.issue(world.ctx, channel=Channel.DIRECT, customer_id=1,
                                  kind="invoice", document_id=5)
    result = post_pay(world, alice, "invoice", "202403000005", page, link_key)
    assert result.status_code == 422 and REFUSED in result.text
    # One edited by hand to name another document keeps its old signature.
    mine = form_value(page.text, "request_key")
    edited = mine.replace(".invoice.5.", ".invoice.3.", 1)
    assert edited != mine
    result = post_pay(world, alice, "invoice", "202402000003", other, edited)
    assert result.status_code == 422 and REFUSED in result.text
    assert sales(world) == []


def test_another_customers_key_is_refused(world, alice):
    bob = world.login("bob")
    add_card(world, bob)
    alices = form_value(pay_page(world, alice, "invoice", "202403000005").text, "request_key")
    bobs_page = pay_page(world, bob, "invoice", "202403000006")
    assert bobs_page.status_code == 200, bobs_page.text[:300]
    result = post_pay(world, bob, "invoice", "202403000006", bobs_page, alices)
    assert result.status_code == 422 and REFUSED in result.text
    assert sales(world) == []


def test_an_expired_key_is_refused(world, alice):
    page = pay_page(world, alice, "invoice", "202403000005")
    old = request_keys.issue(world.ctx, channel=Channel.PORTAL, customer_id=1, kind="invoice",
                             document_id=5, now=dt.datetime(2020, 1, 1).timestamp())
    result = post_pay(world, alice, "invoice", "202403000005", page, old)
    assert result.status_code == 422 and REFUSED in result.text
    assert sales(world) == []


def test_a_key_used_twice_shows_the_first_outcome_and_charges_once(world, alice):
    page = pay_page(world, alice, "invoice", "202403000005")
    key = form_value(page.text, "request_key")
    first = post_pay(world, alice, "invoice", "202403000005", page, key)
    again = post_pay(world, alice, "invoice", "202403000005", page, key)
    assert "Success!" in first.text and "Success!" in again.text
    reference = re.search(r"Reference ([A-Z0-9]{18})", first.text).group(1)
    assert reference in again.text and len(sales(world)) == 1


def test_a_refill_cannot_take_over_a_charge_run_item(world, alice):
    """The attack of issue 8: ``request_key=charge-item:N`` with a refill used to adopt the
    run's attempt for item N. Internal keys are out of any form's reach."""
    run = charge_runs.create_run(world.ctx, admin_id=1, period_from=dt.date(2024, 1, 1),
                                 period_to=dt.date(2024, 12, 31), filters=RunFilters())
    page = refill_page(world, alice)
    for key in ("charge-item:1", f"charge-item:{run.id}", "form:charge-item:1"):
        result = alice.post(f"{world.url}/ippay/", data={
            "csrf_token": csrf(page.text), "request_key": key, "amount": "20.00",
            "card_id": re.search(r'name="card_id"[^>]*value="(\d+)"', page.text).group(1)},
            timeout=30)
        assert result.status_code == 422 and REFUSED in result.text
    assert sales(world) == []


def test_a_direct_link_form_key_is_bound_to_its_link(world):
    import requests

    def link(invoice_id):
        sig = link_signature(world.ctx, "invoice", invoice_id)
        return f"{world.url}/ippay/direct-pay-invoice-by-id?item_id={invoice_id}&sig={sig}"

    stranger = requests.Session()
    other = stranger.get(link(3), timeout=10)
    page = stranger.get(link(5), timeout=10)
    result = stranger.post(link(5), data={
        "csrf_token": csrf(page.text), "request_key": form_value(other.text, "request_key"),
        "card_id": "new", **new_card_fields()}, timeout=30)
    assert result.status_code == 422 and REFUSED in result.text
    assert sales(world) == []


def test_the_admin_pay_form_refuses_a_key_of_another_invoice(world):
    admin = world.login_admin()
    alice = world.login("alice")
    add_card(world, alice)
    page = admin.get(f"{world.url}/ippay/admin/invoice", params={"item_id": "202403000005"})
    other = admin.get(f"{world.url}/ippay/admin/invoice", params={"item_id": "202402000003"})
    result = admin.post(f"{world.url}/ippay/admin/invoice", params={"item_id": "202403000005"},
                        data={"csrf_token": csrf(page.text),
                              "request_key": form_value(other.text, "request_key")})
    assert "no longer be used" in result.text and sales(world) == []
