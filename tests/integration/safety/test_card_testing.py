"""Card-testing defences (services/limits.py): someone with a list of card numbers gets no
more tries at the gateway than the limits allow — through a direct pay link without login,
the refill page or the card form, one at a time or all at once — is told when to try again,
and staff see what was blocked."""

import re
import threading

import requests

from splynx_ippay.services.payments import link_signature
from tests.portal.helpers import add_card, csrf, form_value, new_card_fields, refill_page

#: Valid (Luhn) test numbers, all different: what a card tester cycles through.
CARDS = ["4111111111111111", "5111111111111118", "4242424242424242", "4000300020001000",
         "5555555555554444", "4012888888881881", "5105105105105100", "4222222222222",
         "6011111111111117", "378282246310005", "4917610000000000", "5200828282828210"]


def gateway_tries(world):
    """Requests that carried a card number (a new card's first use)."""
    return [r for r in world.sim_call("requests")["requests"] if "<CardNum" in r["body"]]


def cvv_for(number):
    return "1234" if number.startswith("37") else "123"


def link_url(world, invoice_id):
    sig = link_signature(world.ctx, "invoice", invoice_id)
    return f"{world.url}/ippay/direct-pay-invoice-by-id?item_id={invoice_id}&sig={sig}"


def try_link(world, invoice_id, number):
    session = requests.Session()
    url = link_url(world, invoice_id)
    page = session.get(url, timeout=10)
    return session.post(url, data={
        "csrf_token": csrf(page.text), "request_key": form_value(page.text, "request_key"),
        "card_id": "new", **new_card_fields(number=number, cvv=cvv_for(number))}, timeout=30)


def test_a_pay_link_pauses_after_three_declined_cards(world):
    declining = 10  # 202405000010, 19.05: the simulator declines 05 cents
    answers = [try_link(world, declining, number) for number in CARDS[:8]]
    assert [("not made" in a.text) for a in answers[:3]] == [True] * 3
    for refused in answers[3:]:
        assert refused.status_code == 422 and "try again in 60 minutes" in refused.text
    assert len(gateway_tries(world)) == 3
    # Staff see what was blocked, without the card numbers.
    admin = world.login_admin()
    blocked = admin.get(f"{world.url}/ippay/admin/blocked").text
    assert blocked.count("invoice:10") >= 5 and "paused" in blocked
    assert not any(number in blocked for number in CARDS)


def test_many_tries_at_once_on_one_link_get_no_more_gateway_calls(world):
    declining = 10
    threads = [threading.Thread(target=try_link, args=(world, declining, number))
               for number in CARDS[:10]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(gateway_tries(world)) <= 3


def test_the_refill_page_stops_new_cards_after_the_daily_limit(world):
    world.set_module_settings({"limit_tries_per_address_hour": 100})
    alice = world.login("alice")
    results = []
    for number in CARDS[:7]:
        page = refill_page(world, alice)
        results.append(alice.post(f"{world.url}/ippay/", data={
            "csrf_token": csrf(page.text), "request_key": form_value(page.text, "request_key"),
            "amount": "10.05", "card_id": "new",
            **new_card_fields(number=number, cvv=cvv_for(number))}, timeout=30))
    assert all("not made" in r.text for r in results[:5])
    assert all(r.status_code == 422 and "no more cards can be tried" in r.text
               for r in results[5:])
    assert len(gateway_tries(world)) == 5


def test_the_card_form_stops_after_five_new_cards_a_day_and_keeps_ten_at_most(world):
    world.set_module_settings({"limit_tries_per_address_hour": 100})
    alice = world.login("alice")
    saved = [add_card(world, alice, number=n, cvv=cvv_for(n)) for n in CARDS[:6]]
    assert all(s.status_code == 200 for s in saved[:5])
    assert saved[5].status_code == 422 and "try again in" in saved[5].text
    assert len(gateway_tries(world)) == 5
    # Whatever was typed is kept but the number and CVV.
    assert 'value="Alice Example"' in saved[5].text and CARDS[5] not in saved[5].text

    world.set_module_settings({"limit_new_cards_per_customer_day": 100,
                               "limit_max_saved_cards": 6})
    assert add_card(world, alice, number=CARDS[6]).status_code == 200
    full = add_card(world, alice, number=CARDS[7])
    assert full.status_code == 422 and "You already keep 6 cards" in full.text
    assert len(gateway_tries(world)) == 6


def test_one_address_trying_cards_for_several_customers_is_stopped(world):
    world.set_module_settings({"limit_tries_per_address_hour": 4})
    people = [world.login(name) for name in ("alice", "bob", "carol")]
    answers = [add_card(world, people[n % 3], number=number, cvv=cvv_for(number))
               for n, number in enumerate(CARDS[:6])]
    assert [a.status_code for a in answers] == [200] * 4 + [422] * 2
    assert "no more cards can be tried" in answers[4].text
    assert len(gateway_tries(world)) == 4


def test_saved_cards_pay_whatever_the_card_limits(world):
    """The limits are for cards typed in; paying with a saved card is never refused."""
    world.set_module_settings({"limit_new_cards_per_customer_day": 1})
    alice = world.login("alice")
    assert add_card(world, alice).status_code == 200
    from tests.portal.helpers import submit_pay

    for number in ("202403000005", "202402000003"):
        assert "Success!" in submit_pay(world, alice, "invoice", number).text
    card_id = re.search(r'data-card-id="(\d+)"',
                        alice.get(f"{world.url}/ippay/cards").text).group(1)
    assert card_id
