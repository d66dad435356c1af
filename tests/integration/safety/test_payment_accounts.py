"""Saved cards shown in Splynx (issue 9): each customer's cards are lines of the add-on's
payment account (Customer → Billing → Payment accounts), kept in step on add, default,
replace and remove; no token or card number reaches Splynx."""

import re

from tests.portal.helpers import add_card


def account_of(world, customer_id):
    rows = [a for a in world.emu_call("state")["payment_accounts"]
            if str(a["customer_id"]) == str(customer_id)]
    return rows[0] if rows else None


def test_cards_are_shown_in_splynx_and_follow_every_change(world):
    alice = world.login("alice")
    add_card(world, alice)
    account = account_of(world, 1)
    assert account["field_1"] == "Visa •••• 1111 · 12/30 · default"
    add_card(world, alice, number="5111111111111118", expiry="01/31")
    account = account_of(world, 1)
    assert account["field_2"] == "Mastercard •••• 1118 · 01/31"
    page = alice.get(f"{world.url}/ippay/cards").text
    second = re.findall(r'data-card-id="(\d+)"', page)[1]
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    alice.post(f"{world.url}/ippay/cards/{second}/default", data={"csrf_token": token})
    assert account_of(world, 1)["field_1"] == "Mastercard •••• 1118 · 01/31 · default"
    for card_id in re.findall(r'data-card-id="(\d+)"', alice.get(f"{world.url}/ippay/cards").text):
        alice.post(f"{world.url}/ippay/cards/{card_id}/remove", data={"csrf_token": token})
    assert account_of(world, 1) is None
    bodies = " ".join(str(r.get("body")) for r in world.emu_call("requests"))
    assert "4111111111111111" not in bodies and "5111111111111118" not in bodies
