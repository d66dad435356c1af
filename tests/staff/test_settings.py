"""The module settings page: validation of every field, saving only valid settings to
Splynx's module config, the status of Splynx and the gateway, the Test gateway button, and
the rule that only IPpay's own endpoints (or the one config.ini names) are ever used."""

import socket
import threading

import pytest
from sqlalchemy import select

from splynx_ippay.context import build_context
from splynx_ippay.db import session_scope
from splynx_ippay.models import StaffAction

VALID = {"terminal_id": "TESTTERMINAL", "gateway_mode": "test", "payment_method_id": "3",
         "bank_payment_method_id": "2", "payment_type": "all", "ach_return_fee": "0.00",
         "payment_account_id": "0", "statement_grouping": "day", "refill_min": "5.00",
         "refill_max": "1,000.00", "charge_concurrency": "8", "language": "en",
         "staff_roles": "super-administrator", "limit_new_cards_per_customer_day": "5",
         "limit_declines_per_customer_day": "5", "limit_link_declines": "3",
         "limit_link_pause_minutes": "60", "limit_tries_per_address_hour": "10",
         "limit_max_saved_cards": "10"}


def module_config(world):
    return world.ctx.splynx.get_module_config("splynx_ippay_addon")


@pytest.mark.parametrize("changes, field, message", [
    ({"terminal_id": ""}, "terminal_id", "Enter the Terminal ID"),
    ({"terminal_id": "BAD ID!"}, "terminal_id", "1 to 32 letters"),
    ({"terminal_id": "X" * 33}, "terminal_id", "1 to 32 letters"),
    ({"gateway_mode": "custom"}, "gateway_mode", "Not a valid choice"),
    ({"charge_concurrency": "0"}, "charge_concurrency", "from 1 to 64"),
    ({"charge_concurrency": "1000"}, "charge_concurrency", "from 1 to 64"),
    ({"charge_concurrency": "eight"}, "charge_concurrency", "from 1 to 64"),
    ({"refill_max": "4.00"}, "refill_max", "may not be below the minimum"),
    ({"refill_min": "-1"}, "refill_min", "more than zero"),
    ({"refill_max": "12.345"}, "refill_max", "at most two decimals"),
    ({"refill_min": "٥"}, "refill_min", "as a number"),
    ({"payment_method_id": "99"}, "payment_method_id", "Not a valid choice"),
    ({"statement_grouping": "week"}, "statement_grouping", "Not a valid choice"),
    ({"language": "fr"}, "language", "Not a valid choice"),
    ({"staff_roles": " , "}, "staff_roles", "at least one Splynx role"),
    ({"limit_link_declines": "0"}, "limit_link_declines", "from 1 to 100"),
])
def test_invalid_settings_are_refused_field_by_field(staff_world, changes, field, message):
    admin = staff_world.login_admin()
    before = module_config(staff_world)
    response = admin.post(f"{staff_world.url}/ippay/admin/settings", data={**VALID, **changes})
    assert response.status_code == 400
    assert f'id="{field}-error">' in response.text and message in response.text
    assert "Nothing was saved" in response.text
    assert module_config(staff_world) == before


def test_valid_settings_are_saved_and_seen_by_every_process_at_once(staff_world):
    admin = staff_world.login_admin()
    page = admin.get(f"{staff_world.url}/ippay/admin/settings")
    assert page.ok and 'id="splynx-status"' in page.text and "Splynx answers" in page.text
    assert "answers PING" in page.text and "Fixed in config.ini" in page.text
    other = build_context(staff_world.config)  # another worker process, say
    assert other.module_settings.current().charge_concurrency == 4
    response = admin.post(f"{staff_world.url}/ippay/admin/settings", data=VALID,
                          allow_redirects=False)
    assert response.status_code == 302
    config = module_config(staff_world)
    assert config["terminal_id"] == "TESTTERMINAL" and config["gateway_mode"] == "test"
    assert str(config["charge_concurrency"]) == "8" and str(config["refill_min_cents"]) == "500"
    assert str(config["refill_max_cents"]) == "100000" and config["statement_grouping"] == "day"
    # The other process reads them at its next request, not after its cache's 30 s.
    other.module_settings.follow_changes()
    assert other.module_settings.current().charge_concurrency == 8
    page = admin.get(f"{staff_world.url}/ippay/admin/settings").text
    assert 'value="5.00"' in page
    with session_scope(staff_world.ctx.sessions) as session:
        action = session.execute(select(StaffAction)).scalars().one()
    assert action.admin_id == 1 and action.action == "settings_saved"
    # A wrong terminal is what the gateway says (the simulator knows TESTTERMINAL only).
    staff_world.set_module_settings({"terminal_id": "WRONG1"})
    page = admin.get(f"{staff_world.url}/ippay/admin/settings").text
    assert "refused terminal WRONG1" in page


class Listener:
    """A loopback port that records whether anyone connected (a would-be relay)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self):
        self.sock.close()


def test_test_gateway_pings_the_configured_gateway_only(staff_world):
    relay = Listener()
    try:
        admin = staff_world.login_admin()
        url = f"{staff_world.url}/ippay/admin/settings/test-gateway"
        # Whatever the form says, the configured gateway is asked: no port probing.
        answer = admin.post(url, data={**VALID, "gateway_mode": "custom",
                                       "gateway_url": f"http://127.0.0.1:{relay.port}/ippay"}).json()
        assert answer["ok"] and "answers PING" in answer["message"]
        assert relay.connections == 0
        customer = staff_world.login("alice")
        assert customer.post(url, data=VALID, allow_redirects=False).status_code == 403
    finally:
        relay.close()


def test_a_gateway_address_written_into_module_config_is_never_used(staff_world):
    """An address typed straight into Splynx's module config (or left by an older version)
    is ignored: cards still go to the one gateway config.ini names, the relay hears nothing,
    and the unusable value is reported to staff."""
    relay = Listener()
    try:
        staff_world.set_module_settings({"gateway_url": f"http://127.0.0.1:{relay.port}/ippay",
                                         "gateway_mode": "custom"})
        admin = staff_world.login_admin()
        page = admin.get(f"{staff_world.url}/ippay/admin/settings").text
        assert "gateway_mode" in page and "cannot be used" in page
        alice = staff_world.login("alice")
        saved = alice.post(f"{staff_world.url}/ippay/cards", data={
            "holder_name": "Alice Example", "number": "4111111111111111", "expiry": "12/30",
            "cvv": "737"})
        assert saved.ok and "Visa •••• 1111" in saved.text
        assert relay.connections == 0
        assert any("AUTHONLY" in r["body"] for r in staff_world.sim_call("requests")["requests"])
    finally:
        relay.close()


def test_the_gateway_address_is_checked_on_every_use(staff_world):
    """A client aimed anywhere but IPpay's endpoints or config.ini's refuses to send."""
    from splynx_ippay.ippay import GatewayRequestError, IPpayClient

    relay = Listener()
    try:
        gateways = staff_world.ctx.gateways
        rogue = IPpayClient(f"http://127.0.0.1:{relay.port}/ippay", "TESTTERMINAL",
                            url_guard=gateways.check_url)
        with pytest.raises(GatewayRequestError):
            rogue.ping()
        assert relay.connections == 0
    finally:
        relay.close()
