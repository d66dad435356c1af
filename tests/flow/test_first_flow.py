"""The first flow, and every way it can go wrong: a customer logged into the Splynx portal
saves a card and pays an invoice; Splynx shows it Paid. Simulator, emulator and add-on run
on loopback; the add-on and the emulator share one origin."""

import re
import threading

import pytest

TEST_CARD = "4111111111111111"
TEST_CVV = "737"


def form_value(html, name):
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html)
    assert match, f"no {name} in page"
    return match.group(1)


def add_card(world, session, number=TEST_CARD, expiry="12/30", holder="Alice Example",
             cvv=TEST_CVV):
    page = session.get(f"{world.url}/ippay/cards", timeout=10)
    assert page.status_code == 200
    return session.post(f"{world.url}/ippay/cards", data={
        "csrf_token": form_value(page.text, "csrf_token"), "holder_name": holder,
        "number": number, "expiry": expiry, "cvv": cvv}, timeout=10)


def invoices_of(world, customer_id, status="not_paid"):
    state = world.emu_call("state")
    return [i for i in state["invoices"]
            if int(i["customer_id"]) == customer_id and i["status"] == status]


def approving_invoice(world, customer_id):
    """An unpaid invoice whose cents the test gateway approves (00 here)."""
    for invoice in invoices_of(world, customer_id):
        if round(float(invoice["due"]) * 100) % 100 == 0:
            return invoice
    raise AssertionError("seed has no approving unpaid invoice")


def open_pay(world, session, number):
    page = session.get(f"{world.url}/ippay/pay-invoice",
                       params={"module": "splynx_ippay_addon", "model": "Invoices",
                               "item_id": number}, timeout=10)
    return page


def pay(world, session, number, page=None):
    page = page or open_pay(world, session, number)
    assert page.status_code == 200, page.text[:300]
    card_id = re.search(r'name="card_id"[^>]*value="(\d+)"', page.text).group(1)
    return session.post(f"{world.url}/ippay/pay-invoice", params={"item_id": number}, data={
        "csrf_token": form_value(page.text, "csrf_token"), "card_id": card_id,
        "request_key": form_value(page.text, "request_key")}, timeout=30)


def sales(world):
    return [t for t in world.sim_call("ledger")["transactions"] if t["type"] == "SALE"]


def payments_for(world, invoice_id):
    state = world.emu_call("state")
    return [p for p in state["payments"] if str(p.get("invoice_id")) == str(invoice_id)]


def test_customer_saves_card_and_pays_invoice(world):
    alice = world.login("alice")
    saved = add_card(world, alice)
    assert saved.status_code == 200 and "Your card was saved." in saved.text
    assert "Visa •••• 1111" in saved.text and "12/30" in saved.text

    invoice = approving_invoice(world, 1)
    page = open_pay(world, alice, invoice["number"])
    assert f"Invoice #{invoice['number']}" in page.text and "Visa •••• 1111" in page.text
    result = pay(world, alice, invoice["number"], page)
    assert result.status_code == 200 and "Success!" in result.text

    state = world.emu_call("state")
    paid = next(i for i in state["invoices"] if str(i["id"]) == str(invoice["id"]))
    assert paid["status"] == "paid" and float(paid["due"]) == 0
    [payment] = payments_for(world, invoice["id"])
    [sale] = sales(world)
    assert payment["field_1"] == sale["transaction_id"]
    assert float(payment["amount"]) == float(invoice["total"])
    # Both sides of Splynx show it: the portal's invoice list and the admin's.
    portal = alice.get(f"{world.url}/portal/finance/invoices", timeout=10).text
    assert re.search(rf"{invoice['number']}.*?Paid", portal, re.S)
    listing = world.login_admin().get(f"{world.url}/admin/finance/invoices", timeout=10).text
    assert re.search(rf"{invoice['number']}.*?Paid", listing, re.S)


def test_pages_need_a_portal_login(world):
    import requests

    for path in ("/ippay/cards", "/ippay/pay-invoice?item_id=1"):
        response = requests.get(world.url + path, allow_redirects=False, timeout=10)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/portal/login/?return=%2Fippay%2F")


def test_a_forged_session_cookie_is_not_a_login(world):
    import requests

    response = requests.get(world.url + "/ippay/cards", cookies={"PHPSESSID": "forged"},
                            allow_redirects=False, timeout=10)
    assert response.status_code == 302


@pytest.mark.parametrize("number,expiry,holder,cvv,field,words", [
    ("4111111111111112", "12/30", "Alice", "737", "number", "not valid"),
    ("411111111111", "12/30", "Alice", "737", "number", "13 to 19"),
    ("4111abcd11111111", "12/30", "Alice", "737", "number", "digits only"),
    ("4111111111111111", "01/20", "Alice", "737", "expiry", "expired"),
    ("4111111111111111", "1230", "Alice", "737", "expiry", "MM/YY"),
    ("4111111111111111", "12/30", "", "737", "holder_name", "name as it is printed"),
    ("4111111111111111", "12/30", "Alice", "7", "cvv", "3 digits"),
])
def test_card_form_errors_keep_name_and_expiry_never_number(world, number, expiry, holder, cvv,
                                                            field, words):
    alice = world.login("alice")
    response = add_card(world, alice, number=number, expiry=expiry, holder=holder, cvv=cvv)
    assert response.status_code == 422
    assert re.search(rf'id="{field}-error">[^<]*{words}', response.text), response.text
    if holder:
        assert f'value="{holder}"' in response.text
    assert f'value="{expiry}"' in response.text
    assert number not in response.text and f'value="{cvv}"' not in response.text
    assert world.sim_call("ledger")["transactions"] == []


def test_gateway_refusal_is_explained_and_nothing_saved(world):
    world.sim_call("config", {"terminals": ["OTHERTERMINAL"]})
    alice = world.login("alice")
    response = add_card(world, alice)
    assert response.status_code == 422
    assert "alert-danger" in response.text and "Cannot determine the URL" not in response.text
    assert "Card payments are not set up correctly on our side. Please contact us." in response.text
    assert "Visa •••• 1111" not in response.text
    assert TEST_CARD not in response.text


def test_another_customers_invoice_is_not_found_and_not_charged(world):
    alice = world.login("alice")
    add_card(world, alice)
    bobs = invoices_of(world, 2)[0]
    page = open_pay(world, alice, bobs["number"])
    assert page.status_code == 404
    missing = open_pay(world, alice, "999999999999")
    assert missing.status_code == 404
    assert page.text.replace(bobs["number"], "") == missing.text.replace("999999999999", "")
    response = alice.post(f"{world.url}/ippay/pay-invoice", params={"item_id": bobs["number"]},
                          data={"csrf_token": "x", "card_id": "1", "request_key": "k"}, timeout=10)
    assert response.status_code in (400, 404)
    assert sales(world) == []


def test_paid_invoice_says_so(world):
    alice = world.login("alice")
    add_card(world, alice)
    [paid, *_] = invoices_of(world, 1, status="paid")
    page = open_pay(world, alice, paid["number"])
    assert page.status_code == 200 and "is already paid" in page.text
    assert 'name="card_id"' not in page.text


def test_resubmitting_the_form_pays_once(world):
    alice = world.login("alice")
    add_card(world, alice)
    invoice = approving_invoice(world, 1)
    page = open_pay(world, alice, invoice["number"])
    first = pay(world, alice, invoice["number"], page)
    second = pay(world, alice, invoice["number"], page)
    assert "Success!" in first.text and "Success!" in second.text
    assert len(sales(world)) == 1 and len(payments_for(world, invoice["id"])) == 1


def test_two_concurrent_payments_of_one_invoice_charge_once(world):
    world.sim_call("config", {"latency_ms": 400})
    alice = world.login("alice")
    add_card(world, alice)
    invoice = approving_invoice(world, 1)
    pages = [open_pay(world, alice, invoice["number"]) for _ in range(2)]
    results = [None, None]

    def submit(index):
        results[index] = pay(world, alice, invoice["number"], pages[index])

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    texts = [r.text for r in results]
    assert sum("Success!" in t for t in texts) == 1
    assert sum("already being processed" in t or "already paid" in t for t in texts) == 1
    assert len(sales(world)) == 1 and len(payments_for(world, invoice["id"])) == 1


@pytest.mark.parametrize("kind", ["timeout_commit", "http_500", "empty", "malformed", "echo"])
def test_unknown_outcome_is_settled_by_enq(world, kind):
    alice = world.login("alice")
    add_card(world, alice)
    invoice = approving_invoice(world, 1)
    world.sim_call("faults", {"faults": [{"kind": kind, "delay_s": 2.0, "types": ["SALE"],
                                          "count": 1}]})
    result = pay(world, alice, invoice["number"])
    types = [t["type"] for t in world.sim_call("ledger")["transactions"]]
    requests_seen = world.sim_call("requests")["requests"]
    sale_requests = [r for r in requests_seen if "<TransactionType>SALE" in r["body"]]
    enq_requests = [r for r in requests_seen if "<TransactionType>ENQ" in r["body"]]
    assert len(sale_requests) == 1, "an unknown outcome must never be resent as a SALE"
    assert enq_requests, "the outcome must be asked for with ENQ"
    if kind in ("timeout_commit", "malformed"):
        # The simulator processed the SALE but its answer was lost or garbled.
        assert "Success!" in result.text
        assert types.count("SALE") == 1 and len(payments_for(world, invoice["id"])) == 1
    else:
        # The simulator answered without processing: ENQ finds nothing, nothing is charged.
        assert "Nothing was charged" in result.text
        assert payments_for(world, invoice["id"]) == []


def test_timeout_before_commit_tells_the_customer_nothing_was_charged(world):
    alice = world.login("alice")
    add_card(world, alice)
    invoice = approving_invoice(world, 1)
    world.sim_call("faults", {"faults": [{"kind": "timeout_no_commit", "delay_s": 2.0,
                                          "types": ["SALE"], "count": 1}]})
    result = pay(world, alice, invoice["number"])
    assert "The payment was not made." in result.text and "Nothing was charged" in result.text
    assert payments_for(world, invoice["id"]) == []
    assert invoices_of(world, 1) and any(i["id"] == invoice["id"] for i in invoices_of(world, 1))


def test_splynx_failure_after_approval_is_posted_later_never_charged_again(world):
    from splynx_ippay.models import AttemptStatus
    from splynx_ippay.services.journal import reconcile

    alice = world.login("alice")
    add_card(world, alice)
    invoice = approving_invoice(world, 1)
    world.emu_call("faults", {"status": 500, "path_regex": "finance/payments$", "method": "POST",
                              "count": 1})
    result = pay(world, alice, invoice["number"])
    assert "Payment approved." in result.text and "do not pay again" in result.text.lower()
    assert payments_for(world, invoice["id"]) == []
    again = open_pay(world, alice, invoice["number"])
    retry = pay(world, alice, invoice["number"], again)
    assert "already being processed" in retry.text
    assert reconcile(world.ctx, min_age_seconds=0) == {AttemptStatus.POSTED.value: 1}
    assert reconcile(world.ctx, min_age_seconds=0) == {}
    assert len(sales(world)) == 1 and len(payments_for(world, invoice["id"])) == 1


def _database_cells(url):
    from sqlalchemy import MetaData, create_engine, select

    engine = create_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                yield from (str(value) for value in row if value is not None)
    engine.dispose()


def test_no_card_number_or_cvv_is_kept_logged_or_sent_to_splynx(world, caplog):
    import logging
    import os

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="splynx_ippay")
    cards = {"4111111111111111": "737", "5111111111111118": "864"}
    alice = world.login("alice")
    for number, cvv in cards.items():
        add_card(world, alice, number=number, cvv=cvv, holder="Alice Example")
    pay(world, alice, approving_invoice(world, 1)["number"])
    # A gateway that echoes the request back (card data included) must not leak it either.
    world.sim_call("faults", {"faults": [{"kind": "echo", "types": ["SALE"], "count": 1}]})
    pay(world, alice, invoices_of(world, 1)[0]["number"])

    url = world.ctx.settings["DATABASE_URL"]
    path = url.replace("sqlite:///", "")
    raw_database = b"".join(open(p, "rb").read() for p in (path, path + "-wal")
                            if os.path.exists(p))
    cells = list(_database_cells(url))
    splynx_bodies = [str(r.get("body") or "") + str(r.get("query") or "")
                     for r in world.emu_call("requests")]
    assert any("IPPAY-" in body for body in splynx_bodies), "the payment post was recorded"
    for number, cvv in cards.items():
        for text in (number, number[:12], number[-12:]):
            assert text.encode() not in raw_database
            assert text not in caplog.text
            assert not any(text in body for body in splynx_bodies)
        word = re.compile(rf"(?<![0-9A-Za-z]){cvv}(?![0-9A-Za-z])")
        assert not any(word.search(cell) for cell in cells), f"CVV {cvv} in the database"
        assert not any(word.search(body) for body in splynx_bodies), f"CVV {cvv} sent to Splynx"
        assert not re.search(rf"<CVV2>\s*{cvv}", caplog.text), f"CVV {cvv} logged"
    assert "<CardNum" in caplog.text, "the gateway transcript is logged (scrubbed)"


def test_the_worker_records_an_approval_splynx_missed(world):
    """A portal payment whose Splynx post failed is posted by the charge worker's periodic
    pass, once, without a second charge."""
    import datetime as dt

    from sqlalchemy import update

    from splynx_ippay.models import PaymentAttempt, utcnow
    from splynx_ippay.services.charge_runs.worker import Worker

    alice = world.login("alice")
    add_card(world, alice)
    invoice = approving_invoice(world, 1)
    world.emu_call("faults", {"status": 500, "path_regex": "finance/payments$", "method": "POST",
                              "count": 1})
    assert "Payment approved." in pay(world, alice, invoice["number"]).text
    # Old enough that no web request can still be waiting on it.
    with world.ctx.engine.begin() as connection:
        connection.execute(update(PaymentAttempt).values(
            updated_at=utcnow() - dt.timedelta(minutes=5)))
    Worker(world.ctx, concurrency=1, poll=0.05).run(exit_when_idle=True)
    assert len(sales(world)) == 1 and len(payments_for(world, invoice["id"])) == 1
