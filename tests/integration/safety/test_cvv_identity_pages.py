"""The CVV checked on a card's first use; who is logged in, asked again for every change;
staff roles; and the smaller edges of issue 8: ids, amounts, names, headers, cookies."""

import re
import secrets

import pytest
import requests

from splynx_ippay.models import Card
from tests.portal.helpers import (add_card, csrf, form_value, new_card_fields, pay_page,
                                  submit_pay, submit_refill)


def requests_of(world, kind):
    return [r["body"] for r in world.sim_call("requests")["requests"]
            if f"<TransactionType>{kind}<" in r["body"]]


def saved_cards(world):
    with world.ctx.sessions() as session:
        return session.query(Card).all()


# --- CVV on first use ------------------------------------------------------------------------

def test_a_card_saved_with_a_cvv_the_issuer_refuses_is_not_saved(world):
    alice = world.login("alice")
    refused = add_card(world, alice, cvv="000")  # the simulator: 806 invalid CVV2
    assert refused.status_code == 422 and "security code" in refused.text.lower()
    assert saved_cards(world) == []
    [authorisation] = requests_of(world, "AUTHONLY")
    assert "<CVV2>000</CVV2>" in authorisation  # the CVV went to the gateway, and only there
    good = add_card(world, alice, cvv="737")
    assert good.status_code == 200 and len(saved_cards(world)) == 1
    # The verification hold was released at once.
    assert requests_of(world, "REVERSEAUTH")


def test_paying_with_a_new_card_and_a_refused_cvv_charges_and_keeps_nothing(world):
    alice = world.login("alice")
    result = submit_pay(world, alice, "invoice", "202403000005",
                        **new_card_fields(cvv="000", save_card="y"))
    assert "The payment was not made." in result.text and "security code" in result.text.lower()
    [sale] = requests_of(world, "SALE")
    assert "<CVV2>000</CVV2>" in sale and 'Tokenize="true"' in sale
    assert saved_cards(world) == []
    assert world.emu_call("state")["payments"] == [p for p in world.emu_call("state")["payments"]
                                                    if p.get("invoice_id") != "5"]


# --- identity --------------------------------------------------------------------------------

def test_a_logout_in_splynx_is_honoured_at_once_for_anything_that_changes(world):
    alice = world.login("alice")
    add_card(world, alice)
    page = pay_page(world, alice, "invoice", "202403000005")
    alice.get(f"{world.url}/portal/logout", timeout=10)
    # The page is still a read away; paying asks Splynx again and finds no session.
    result = alice.post(f"{world.url}/ippay/pay-invoice", params={"item_id": "202403000005"},
                        data={"csrf_token": csrf(page.text), "card_id": "new",
                              "request_key": form_value(page.text, "request_key")},
                        allow_redirects=False, timeout=10)
    assert result.status_code == 302 and "/portal/login/" in result.headers["Location"]
    assert requests_of(world, "SALE") == []


def test_made_up_session_cookies_cost_splynx_little(world):
    before = len([r for r in world.emu_call("requests") if r["path"].endswith("auth/tokens")])
    for _ in range(200):
        stranger = requests.Session()
        stranger.cookies.set("PHPSESSID", secrets.token_hex(13))
        page = stranger.get(f"{world.url}/ippay/cards", allow_redirects=False, timeout=10)
        assert page.status_code == 302
    asked = len([r for r in world.emu_call("requests")
                 if r["path"].endswith("auth/tokens")]) - before
    assert asked <= 35, asked


def test_a_slow_splynx_holds_a_page_for_seconds_not_the_api_timeout(world):
    import time

    world.emu_call("faults", {"delay_s": 8, "path_regex": "auth/tokens"})
    stranger = requests.Session()
    stranger.cookies.set("PHPSESSID", secrets.token_hex(13))
    started = time.monotonic()
    page = stranger.get(f"{world.url}/ippay/cards", allow_redirects=False, timeout=20)
    assert time.monotonic() - started < 6
    assert page.status_code == 503 and "not answering" in page.text


# --- staff roles -------------------------------------------------------------------------------

@pytest.mark.parametrize("login, allowed", [("admin", True), ("office", False),
                                            ("manager", False)])
def test_settings_void_and_refund_need_an_allowed_role(world, login, allowed):
    session = world.login(login, place="admin")
    page = session.get(f"{world.url}/ippay/admin/settings", timeout=10)
    if allowed:
        assert page.status_code == 200
        return
    assert page.status_code == 403 and "super-administrator" in page.text
    assert "yours is" in page.text
    for path in ("settings", "settings/test-gateway", "transactions/1/void",
                 "transactions/1/refund"):
        refused = session.post(f"{world.url}/ippay/admin/{path}",
                               data={"csrf_token": csrf(page.text) if "csrf" in page.text else ""},
                               timeout=10)
        assert refused.status_code in (400, 403), path  # a form token or the role: no action
    # The runs and transactions may still be looked at.
    assert session.get(f"{world.url}/ippay/admin/transactions", timeout=10).status_code == 200


def test_another_role_may_be_allowed_in_the_settings(world):
    world.set_module_settings({"staff_roles": "super-administrator,administrator"})
    office = world.login("office", place="admin")
    assert office.get(f"{world.url}/ippay/admin/settings", timeout=10).status_code == 200


# --- ids, amounts, names, headers, cookies ------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/ippay/cards/99999999999999999999/replace", "/ippay/cards/0/replace",
    "/ippay/cards/-1/replace", "/ippay/admin/transactions/99999999999999999999",
    "/ippay/admin/runs/99999999999999999999", "/ippay/admin/runs/2147483648/progress",
])
def test_any_id_is_found_or_not_never_a_500(world, path):
    session = world.login_admin() if "/admin/" in path else world.login("alice")
    assert session.get(world.url + path, timeout=10).status_code == 404
    if path.endswith("/replace"):
        removal = path.replace("/replace", "/remove")
        page = session.get(f"{world.url}/ippay/cards", timeout=10)
        assert session.post(world.url + removal, data={"csrf_token": csrf(page.text)},
                            timeout=10).status_code == 404


@pytest.mark.parametrize("amount", ["١٠", "５０", "1٠.00", "²⁰"])
def test_only_ascii_digits_make_an_amount(world, amount):
    alice = world.login("alice")
    add_card(world, alice)
    result = submit_refill(world, alice, amount)
    assert result.status_code == 422 and "as a number" in result.text
    assert requests_of(world, "SALE") == []


def test_a_thousands_separator_is_an_amount(world):
    world.set_module_settings({"refill_max_cents": 500000})
    alice = world.login("alice")
    add_card(world, alice)
    result = submit_refill(world, alice, "1,000.00")
    assert "Success!" in result.text and "$1,000.00" in result.text


def test_a_card_number_typed_as_the_holder_name_is_refused(world):
    alice = world.login("alice")
    refused = add_card(world, alice, holder="4111 1111 1111 1111")
    assert refused.status_code == 422 and "may not contain a card number" in refused.text
    assert "4111 1111" not in refused.text
    assert saved_cards(world) == [] and requests_of(world, "AUTHONLY") == []


def test_payment_pages_are_framed_by_splynx_only_and_never_kept(world):
    alice = world.login("alice")
    for path in ("/ippay/cards", "/ippay/pay-invoice?item_id=202403000005", "/ippay/",
                 "/ippay/widget"):
        page = alice.get(world.url + path, timeout=10)
        assert page.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
        assert page.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert page.headers["Cache-Control"] == "no-store"


def test_the_session_cookie_is_secure_when_the_request_came_over_https(world):
    plain = world.login("alice").get(f"{world.url}/ippay/cards", timeout=10)
    assert "ippay_session=" in plain.headers["Set-Cookie"]
    assert "Secure" not in plain.headers["Set-Cookie"]
    https = world.login("alice").get(f"{world.url}/ippay/cards",
                                     headers={"X-Forwarded-Proto": "https"}, timeout=10)
    cookie = https.headers.get("Set-Cookie", "")
    assert "ippay_session=" in cookie and re.search(r";\s*Secure", cookie)
