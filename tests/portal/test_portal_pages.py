"""The customer portal in one process (emulator and add-on on one origin, simulator beside):
entry points, cards, the Pay modals, the dashboard widget, refill, and direct pay links."""

import re

import pytest
import requests

from splynx_ippay.models import Card
from tests.portal.helpers import (
    MASTERCARD, TEST_CARD, add_card, csrf, deposit, document, form_value, ledger,
    new_card_fields, pay_page, refill_page, state, submit_pay, submit_refill, text_of,
)

MODULE = "splynx_ippay_addon"


# --- entry points --------------------------------------------------------------------------

def test_every_portal_entry_point_is_registered_and_shown(world):
    points = {p["name"]: p for p in state(world)["entry_points"]}
    assert points["ippay_credit_card"]["type"] == "menu_link"
    assert points["ippay_refill"]["url"] == "/ippay/"
    assert points["ippay_pay_invoice"]["model"] == "Invoices"
    assert points["ippay_pay_proforma"]["model"] == "Requests"
    assert points["ippay_pay_proforma"]["url"] == "/ippay/pay-proforma"
    assert points["ippay_dashboard"]["type"] == "code"

    alice = world.login("alice")
    dashboard = alice.get(f"{world.url}/portal/", timeout=10).text
    assert 'src="/ippay/widget"' in dashboard
    assert ">Credit card<" in dashboard and ">Add money<" in dashboard
    proformas = alice.get(f"{world.url}/portal/finance/requests", timeout=10).text
    assert "/ippay/pay-proforma?module=splynx_ippay_addon&amp;model=Requests&amp;item_id=2024050001" \
        in proformas


# --- cards ---------------------------------------------------------------------------------

def test_several_cards_default_replace_remove(world):
    alice = world.login("alice")
    add_card(world, alice)
    page = add_card(world, alice, number=MASTERCARD, holder="Alice M", cvv="864")
    assert "Visa •••• 1111" in page.text and "Mastercard •••• 1118" in page.text
    ids = {c.last4: c.id for c in _cards(world, 1)}
    assert _default(world, 1) == "1111"

    made = alice.post(f"{world.url}/ippay/cards/{ids['1118']}/default",
                      data={"csrf_token": csrf(page.text)}, timeout=10)
    assert "Mastercard •••• 1118 is now your default card." in made.text
    assert _default(world, 1) == "1118"

    form = alice.get(f"{world.url}/ippay/cards/{ids['1118']}/replace", timeout=10)
    assert "Replace Mastercard •••• 1118" in form.text and 'value="Alice M"' in form.text
    replaced = alice.post(f"{world.url}/ippay/cards/{ids['1118']}/replace", data={
        "csrf_token": csrf(form.text), "holder_name": "Alice M", "number": "378282246310005",
        "expiry": "11/31", "cvv": "1234"}, timeout=10)
    assert "was replaced by American Express •••• 0005" in replaced.text
    assert {c.last4 for c in _cards(world, 1)} == {"1111", "0005"}
    assert _default(world, 1) == "0005", "the replacement keeps the default"

    # Remove asks first (a confirmation inside the page), then removes.
    assert "Remove Visa •••• 1111? You can add it again later." in replaced.text
    removed = alice.post(f"{world.url}/ippay/cards/{ids['1111']}/remove",
                         data={"csrf_token": csrf(replaced.text)}, timeout=10)
    assert "The card Visa •••• 1111 was removed." in removed.text
    assert [c.last4 for c in _cards(world, 1)] == ["0005"]


def test_expired_card_is_flagged_and_cannot_be_chosen(world):
    _insert_card(world, 1, last4="4242", exp=(1, 2021))
    alice = world.login("alice")
    cards = alice.get(f"{world.url}/ippay/cards", timeout=10).text
    assert re.search(r"Visa •••• 4242.*?Expired", cards, re.S)
    modal = pay_page(world, alice, "invoice", "202403000005").text
    assert re.search(r'value="\d+"\s+disabled', modal)
    assert 'id="card-new" value="new"' in modal and "checked" in modal.split('id="card-new"')[1][:60]


def test_zip_goes_to_the_gateway_for_avs_and_is_not_kept(world):
    alice = world.login("alice")
    saved = add_card(world, alice, postal_code="30301")
    assert saved.status_code == 200 and "Visa •••• 1111" in saved.text
    # The card's first gateway call (the AUTHONLY that verifies it with its CVV) carries it.
    first_use = [r["body"] for r in world.sim_call("requests")["requests"]
                 if "AUTHONLY" in r["body"]]
    assert first_use and "<BillingPostalCode>30301</BillingPostalCode>" in first_use[-1]
    from tests.flow.test_first_flow import _database_cells

    assert not any("30301" in cell for cell in _database_cells(world.ctx.settings["DATABASE_URL"]))
    bad = add_card(world, alice, postal_code="<b>!")
    assert bad.status_code == 422 and 'id="postal_code-error"' in bad.text


# --- paying documents ----------------------------------------------------------------------

def test_partially_paid_invoice_shows_total_and_due_and_becomes_paid(world):
    alice = world.login("alice")
    add_card(world, alice)
    page = pay_page(world, alice, "invoice", "202402000003")
    words = text_of(page.text)
    assert "Invoice #202402000003" in words and "Total $100.10" in words
    assert "Amount due $60.10 Partially paid" in words and "Pay $60.10" in words
    result = submit_pay(world, alice, "invoice", "202402000003", page)
    assert "Success!" in result.text and "is now paid" in result.text
    assert document(world, "invoice", "202402000003")["status"] == "paid"


def test_pay_proforma_by_number(world):
    alice = world.login("alice")
    add_card(world, alice)
    page = pay_page(world, alice, "proforma", "2024050001")
    assert "Proforma invoice #2024050001" in page.text and "Pay $45.00" in page.text
    result = submit_pay(world, alice, "proforma", "2024050001", page)
    assert "Success!" in result.text
    assert document(world, "proforma", "2024050001")["status"] == "paid"
    [payment] = [p for p in state(world)["payments"] if str(p.get("request_id")) == "1"]
    assert float(payment["amount"]) == 45.0


@pytest.mark.parametrize("save", [False, True])
def test_pay_with_a_new_card_is_one_sale_with_its_cvv_through_the_journal(world, save):
    from splynx_ippay.models import Card, PaymentAttempt

    alice = world.login("alice")
    page = pay_page(world, alice, "invoice", "202403000005")
    assert 'type="hidden" name="card_id" value="new"' in page.text, "no saved card: a new one"
    fields = new_card_fields(postal_code="30301", **({"save_card": "y"} if save else {}))
    result = submit_pay(world, alice, "invoice", "202403000005", page, **fields)
    assert "Success!" in result.text
    # The card's first use is the SALE itself, with its CVV2 and Tokenize="true": the
    # issuer checks the CVV, and the approval carries the token kept from then on.
    assert [t["type"] for t in ledger(world)] == ["SALE"]
    [sale] = ledger(world, "SALE")
    [body] = [r["body"] for r in world.sim_call("requests")["requests"] if "SALE" in r["body"]]
    assert 'Tokenize="true"' in body and "<CVV2>737</CVV2>" in body
    with world.ctx.sessions() as session:
        [attempt] = session.query(PaymentAttempt).all()
        assert attempt.transaction_id == sale["transaction_id"] and attempt.status == "posted"
        assert attempt.token and attempt.token == sale["token"]
        kept = [c.token for c in session.query(Card).all()]
    assert kept == ([attempt.token] if save else [])
    assert [c.last4 for c in _cards(world, 1)] == (["1111"] if save else [])
    assert TEST_CARD not in result.text


def test_new_card_errors_are_field_errors_and_nothing_is_charged(world):
    alice = world.login("alice")
    add_card(world, alice)
    result = submit_pay(world, alice, "invoice", "202403000005",
                        **new_card_fields(number="4111111111111112", cvv="12"))
    assert result.status_code == 422
    assert 'id="number-error"' in result.text and 'id="cvv-error"' in result.text
    assert ledger(world, "SALE") == []


def test_the_kept_new_card_and_bank_fields_never_carry_what_was_typed(world):
    # The card and bank fields of a form as first shown are made once and kept
    # (pages.BlankParts): what one customer typed must never come back in anyone's form.
    alice, bob = world.login("alice"), world.login("bob")
    first = pay_page(world, alice, "invoice", "202403000005")
    typed = submit_pay(world, alice, "invoice", "202403000005",
                       **new_card_fields(holder="Typed Holder", expiry="13/30", cvv="12",
                                         postal_code="30301"))
    assert typed.status_code == 422
    assert 'value="Typed Holder"' in typed.text and 'value="30301"' in typed.text
    assert 'id="expiry-error"' in typed.text and 'id="cvv-error"' in typed.text
    assert TEST_CARD not in typed.text and 'value="12"' not in typed.text
    for session, number in ((alice, "202403000005"), (bob, "202403000006")):
        again = pay_page(world, session, "invoice", number)
        assert again.status_code == 200
        for leaked in ("Typed Holder", "30301", TEST_CARD, "field-error", "has-error"):
            assert leaked not in again.text, leaked
    # Bob's new-card fields (kept) are alice's as first rendered, before anything was kept.
    fields = re.compile(r'<fieldset class="new-card" id="new-card".*?</fieldset>', re.S)
    assert fields.search(again.text)[0] == fields.search(first.text)[0]
    world.set_module_settings({"language": "es"})
    spanish = pay_page(world, alice, "invoice", "202403000005").text
    assert "Nombre en la tarjeta" in spanish and "Name on card" not in spanish


def test_a_saved_card_choice_must_be_the_customers_own(world):
    bob = world.login("bob")
    add_card(world, bob, holder="Bob")
    bobs_card = _cards(world, 2)[0].id
    alice = world.login("alice")
    add_card(world, alice)
    result = submit_pay(world, alice, "invoice", "202403000005", card_id=str(bobs_card))
    assert result.status_code == 422 and "Choose one of your saved cards" in result.text
    assert ledger(world, "SALE") == []


def test_decline_says_what_happened_and_what_to_do(world):
    alice = world.login("alice")
    add_card(world, alice)
    result = submit_pay(world, alice, "invoice", "202405000010")  # cents 05: declined
    assert result.status_code == 200
    words = text_of(result.text)
    assert "The payment was not made." in words and "Nothing was charged." in words
    assert "Try again" in words
    assert document(world, "invoice", "202405000010")["status"] == "not_paid"


def test_gateway_down_is_explained_never_a_500(world):
    alice = world.login("alice")
    add_card(world, alice)
    world.sim.stop()
    result = submit_pay(world, alice, "invoice", "202403000005")
    assert result.status_code == 200 and "could not be reached. Nothing was charged." in result.text
    new = submit_pay(world, alice, "invoice", "202403000005",
                     page=pay_page(world, alice, "invoice", "202403000005"), **new_card_fields())
    assert new.status_code == 200 and "could not be reached. Nothing was charged." in new.text
    refill = submit_refill(world, alice, "20.00")
    assert refill.status_code == 200 and "The payment was not made." in refill.text
    world.sim = _Stopped()


def test_splynx_down_is_explained_never_a_500(world):
    alice = world.login("alice")
    add_card(world, alice)
    alice.get(f"{world.url}/ippay/cards", timeout=10)  # identity known before Splynx fails
    world.emu_call("faults", {"status": 500, "path_regex": "finance/(invoices|proforma)"})
    for path in ("/ippay/pay-invoice?item_id=202403000005", "/ippay/pay-proforma?item_id=2024050001",
                 "/ippay/widget"):
        page = alice.get(world.url + path, timeout=10)
        assert page.status_code == 503, path
        assert "billing system is not answering" in page.text.lower(), path
    world.emu_call("faults", {"status": 500, "path_regex": "."})
    fresh = requests.Session()
    fresh.cookies.set("PHPSESSID", "notknownyet00000000000000a")
    page = fresh.get(f"{world.url}/ippay/cards", timeout=10)
    assert page.status_code == 503 and "Billing system unavailable" in page.text


# --- dashboard widget ----------------------------------------------------------------------

def test_widget_lists_unpaid_invoices_with_pay_buttons_and_total(world):
    alice = world.login("alice")
    page = alice.get(f"{world.url}/ippay/widget", timeout=10)
    assert page.status_code == 200
    numbers = re.findall(r'<tr data-number="(\d+)"', page.text)
    assert numbers == ["202402000003", "202403000005", "202404000008", "202405000010"]
    assert "Total owed" in page.text and "$274.65" in page.text  # 60.10+75+120.50+19.05
    assert (f"add-on--action-link-modal?module={MODULE}&amp;name=ippay_pay_invoice&amp;"
            "id=202403000005") in page.text
    assert "202403000006" not in page.text, "only the customer's own invoices"


def test_widget_says_all_paid_and_is_fresh_after_a_payment(world):
    carol = world.login("carol")
    add_card(world, carol, holder="Carol")
    before = carol.get(f"{world.url}/ippay/widget", timeout=10).text
    assert re.findall(r'<tr data-number="(\d+)"', before) == ["202402000004", "202403000007"]
    for number in ("202402000004", "202403000007"):
        world.ctx.splynx.create_payment(customer_id=3, amount_cents=20000, payment_type=1,
                                          date=world.ctx.today(), receipt_number=f"cash-{number}",
                                          invoice_id=int(number[-6:]))
    # A payment made outside the add-on shows after the short cache; one through it at once.
    world.ctx.splynx.create_payment  # noqa: B018
    _clear_reads(world)
    after = carol.get(f"{world.url}/ippay/widget", timeout=10).text
    assert "All your invoices are paid. Thank you!" in after and "Total owed" not in after


def test_widget_drops_its_cache_when_the_customer_pays(world):
    alice = world.login("alice")
    add_card(world, alice)
    assert "202403000005" in alice.get(f"{world.url}/ippay/widget", timeout=10).text
    submit_pay(world, alice, "invoice", "202403000005")
    assert "202403000005" not in alice.get(f"{world.url}/ippay/widget", timeout=10).text


def test_widget_without_a_session_offers_the_login(world):
    page = requests.get(f"{world.url}/ippay/widget", timeout=10)
    assert page.status_code == 200 and "Log in again" in page.text


# --- refill --------------------------------------------------------------------------------

def test_refill_adds_money_to_the_balance_without_an_invoice(world):
    alice = world.login("alice")
    add_card(world, alice)
    page = refill_page(world, alice)
    words = text_of(page.text)
    assert "Amount (USD)" in words and "From $5.00 to $1,000.00" in words
    assert "Current balance -$274.65" in words
    before = deposit(world, 1)
    result = submit_refill(world, alice, "25.00", page)
    assert result.status_code == 200 and "Success!" in result.text
    assert "$25.00 was added to your balance" in text_of(result.text)
    assert deposit(world, 1) == pytest.approx(before + 25.0)
    [payment] = [p for p in state(world)["payments"] if p.get("field_1")]
    assert str(payment.get("invoice_id") or "0") in ("0", "", "None")
    assert float(payment["amount"]) == 25.0


def test_refill_with_a_new_card(world):
    alice = world.login("alice")
    result = submit_refill(world, alice, "10", **new_card_fields())
    assert "Success!" in result.text and _cards(world, 1) == []


@pytest.mark.parametrize("amount,words", [
    ("", "Enter an amount."),
    ("0", "more than zero"),
    ("-5", "more than zero"),
    ("1e9", "as a number"),
    ("1000000000", "largest amount you can add is $1,000.00"),
    ("12,50", "Use a point for decimals"),
    ("12.345", "at most two decimals"),
    ("twelve", "as a number"),
    ("1000.01", "largest amount you can add is $1,000.00"),
    ("4.99", "smallest amount you can add is $5.00"),
])
def test_refill_amount_errors_charge_nothing(world, amount, words):
    alice = world.login("alice")
    add_card(world, alice)
    result = submit_refill(world, alice, amount)
    assert result.status_code == 422
    assert re.search(r'id="amount-error">[^<]*' + re.escape(words), result.text), text_of(result.text)
    assert ledger(world, "SALE") == []


def test_refill_limits_come_from_the_module_settings(world):
    world.set_module_settings({"refill_min_cents": 2000, "refill_max_cents": 3000,
                                                  "currency": "EUR", "currency_sign": "€"})
    alice = world.login("alice")
    add_card(world, alice)
    page = refill_page(world, alice)
    assert "Amount (EUR)" in text_of(page.text) and "From €20.00 to €30.00" in text_of(page.text)
    assert "smallest amount you can add is €20.00" in submit_refill(world, alice, "19.99").text
    assert "Success!" in submit_refill(world, alice, "30").text


# --- direct pay links ----------------------------------------------------------------------

def _link(world, kind, doc_id):
    from splynx_ippay.services.payments import link_signature

    return link_signature(world.ctx, kind, doc_id)


def test_signed_direct_link_pays_with_a_card_typed_in_and_shows_only_number_and_due(world):
    world.splynx_app.extensions["splynx_store"].invoices.get(3)["note"] = "Secret note"
    visitor = requests.Session()
    url = f"{world.url}/ippay/direct-pay-invoice-by-id?item_id=3&sig={_link(world, 'invoice', 3)}"
    page = visitor.get(url, timeout=10)
    assert page.status_code == 200
    words = text_of(page.text)
    assert "Invoice #202402000003" in words and "Amount due $60.10" in words
    for hidden in ("100.10", "Alice", "Secret note", "Total", "Save this card"):
        assert hidden not in words, hidden
    assert "Log in to the customer portal" in words
    result = visitor.post(url, data={"csrf_token": csrf(page.text),
                                     "request_key": form_value(page.text, "request_key"),
                                     "card_id": "new", **new_card_fields(holder="A Friend")},
                          timeout=30)
    assert "Success!" in result.text
    assert document(world, "invoice", "202402000003")["status"] == "paid"
    assert _cards(world, 1) == []
    again = visitor.get(url, timeout=10)
    assert again.status_code == 404 and "This payment link cannot be used" in again.text


@pytest.mark.parametrize("path", ["direct-pay-invoice", "direct-pay-proforma"])
def test_direct_link_by_number(world, path):
    kind = "invoice" if path.endswith("invoice") else "proforma"
    number, doc_id = ("202403000005", 5) if kind == "invoice" else ("2024050001", 1)
    page = requests.get(f"{world.url}/ippay/{path}",
                        params={"item_id": number, "sig": _link(world, kind, doc_id)}, timeout=10)
    assert page.status_code == 200 and f"#{number}" in page.text


def test_direct_links_reveal_nothing_about_other_documents(world):
    """Unsigned, forged, missing, paid, deleted, wrong kind: one answer, word for word."""
    def fetch(path, **params):
        response = requests.get(f"{world.url}/ippay/{path}", params=params, timeout=10)
        return response.status_code, response.text

    sig5 = _link(world, "invoice", 5)
    answers = {
        "unsigned": fetch("direct-pay-invoice-by-id", item_id=5),
        "forged": fetch("direct-pay-invoice-by-id", item_id=5, sig="0" * 24),
        "other id": fetch("direct-pay-invoice-by-id", item_id=6, sig=sig5),
        "missing": fetch("direct-pay-invoice-by-id", item_id=999, sig=sig5),
        "paid": fetch("direct-pay-invoice-by-id", item_id=1, sig=_link(world, "invoice", 1)),
        "junk": fetch("direct-pay-invoice-by-id", item_id="1 OR 1=1"),
        "number unsigned": fetch("direct-pay-invoice", item_id="202403000005"),
        "proforma as invoice": fetch("direct-pay-proforma-by-id", item_id=5, sig=sig5),
        "paid proforma": fetch("direct-pay-proforma-by-id", item_id=3,
                               sig=_link(world, "proforma", 3)),
    }
    assert {status for status, _ in answers.values()} == {404}
    assert len({text for _, text in answers.values()}) == 1, "every refusal reads the same"
    assert ledger(world) == []


def test_open_and_off_modes_of_direct_links(world):
    world.set_module_settings({"direct_links": "open"})
    page = requests.get(f"{world.url}/ippay/direct-pay-invoice-by-id?item_id=5", timeout=10)
    assert page.status_code == 200 and "Amount due $75.00" in text_of(page.text)
    world.set_module_settings({"direct_links": "off"})
    signed = requests.get(f"{world.url}/ippay/direct-pay-invoice-by-id",
                          params={"item_id": 5, "sig": _link(world, "invoice", 5)}, timeout=10)
    assert signed.status_code == 404


# --- other customers, CSRF, sessions, escaping ---------------------------------------------

def test_another_customers_documents_and_cards_are_404_like_missing_ones(world):
    bob = world.login("bob")
    add_card(world, bob, holder="Bob")
    bobs_card = _cards(world, 2)[0].id
    alice = world.login("alice")
    page = alice.get(f"{world.url}/ippay/cards", timeout=10)

    def pair(kind, theirs, missing):
        a, b = pay_page(world, alice, kind, theirs), pay_page(world, alice, kind, missing)
        assert a.status_code == b.status_code == 404
        assert a.text == b.text

    pair("invoice", "202403000006", "202403999999")
    pair("proforma", "2024050002", "2024059999")
    for action in ("remove", "default"):
        theirs = alice.post(f"{world.url}/ippay/cards/{bobs_card}/{action}",
                            data={"csrf_token": csrf(page.text)}, timeout=10)
        missing = alice.post(f"{world.url}/ippay/cards/99999/{action}",
                             data={"csrf_token": csrf(page.text)}, timeout=10)
        assert theirs.status_code == missing.status_code == 404 and theirs.text == missing.text
    assert alice.get(f"{world.url}/ippay/cards/{bobs_card}/replace", timeout=10).status_code == 404
    assert len(_cards(world, 2)) == 1


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_missing_or_forged_csrf_is_a_clear_400(world, token):
    alice = world.login("alice")
    add_card(world, alice)
    data = {"amount": "20", "card_id": "1", "request_key": "k"}
    if token:
        data["csrf_token"] = token
    for path in ("/ippay/", "/ippay/pay-invoice?item_id=202403000005", "/ippay/cards"):
        response = alice.post(world.url + path, data=data, timeout=10)
        assert response.status_code == 400
        assert "The form has expired" in response.text and "reload the page" in response.text
    assert ledger(world, "SALE") == []


def test_expired_session_goes_to_the_login_and_back(world):
    session = requests.Session()
    session.cookies.set("PHPSESSID", "expired-session", domain="127.0.0.1", path="/")
    response = session.get(f"{world.url}/ippay/?x=1", allow_redirects=False, timeout=10)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location == "/portal/login/?return=%2Fippay%2F%3Fx%3D1"
    back = session.post(world.url + location, data={"login": "alice", "password": "alice-pass"},
                        timeout=10)
    assert back.url.endswith("/ippay/?x=1") and "Add money to your balance" in back.text


def test_script_in_names_and_notes_is_shown_as_text_everywhere(world):
    evil = '<script>alert("x")</script>'
    store = world.splynx_app.extensions["splynx_store"]
    store.customers.get(1)["name"] = evil
    store.invoices.get(5)["note"] = evil
    alice = world.login("alice")
    add_card(world, alice, holder=evil)
    pages = [
        alice.get(f"{world.url}/portal/", timeout=10),
        alice.get(f"{world.url}/ippay/widget", timeout=10),
        alice.get(f"{world.url}/ippay/cards", timeout=10),
        pay_page(world, alice, "invoice", "202403000005"),
        pay_page(world, alice, "proforma", "2024050001"),
        refill_page(world, alice),
        requests.get(f"{world.url}/ippay/direct-pay-invoice-by-id",
                     params={"item_id": 5, "sig": _link(world, "invoice", 5)}, timeout=10),
    ]
    modal = pages[3].text
    assert "&lt;script&gt;alert(" in modal, "the note and holder are shown, escaped"
    result = submit_pay(world, alice, "invoice", "202403000005", pages[3])
    pages.append(result)
    for page in pages:
        assert "<script>alert" not in page.text, page.url


# --- helpers -------------------------------------------------------------------------------

class _Stopped:
    def stop(self):
        pass


def _cards(world, customer_id):
    from splynx_ippay.services.cards import list_cards

    return list_cards(world.ctx, customer_id)


def _default(world, customer_id):
    return next(c.last4 for c in _cards(world, customer_id) if c.is_default)


def _insert_card(world, customer_id, last4, exp):
    with world.ctx.sessions() as session:
        session.add(Card(customer_id=customer_id, token=f"TOKEN{last4}", brand="Visa", last4=last4,
                         exp_month=exp[0], exp_year=exp[1], holder_name="Old Card"))
        session.commit()


def _clear_reads(world):
    reads = world.front.app.addon_app.extensions["splynx_ippay_web"].reads
    if reads is not None:
        reads.clear()
