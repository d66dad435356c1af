"""The module settings page: validation of every field, saving only valid settings to
Splynx's module config, the status of Splynx and the gateway, the Test gateway button,
and the gateway client following the saved settings."""

import pytest
from sqlalchemy import select

from splynx_ippay.db import session_scope
from splynx_ippay.models import StaffAction
from splynx_ippay.services import staff_settings as ss

VALID = {"terminal_id": "TESTTERMINAL", "gateway_mode": "custom",
         "gateway_url": "http://127.0.0.1:1/ippay", "payment_method_id": "3",
         "payment_account_id": "1", "statement_grouping": "day", "refill_min": "5.00",
         "refill_max": "500", "charge_concurrency": "8", "language": "en"}


def stored(world):
    return world.emu_call("state")["config"]


def module_config(world):
    return world.addon.splynx.get_module_config("splynx_ippay_addon")


@pytest.mark.parametrize("changes, field, message", [
    ({"terminal_id": ""}, "terminal_id", "Enter the Terminal ID"),
    ({"terminal_id": "BAD ID!"}, "terminal_id", "1 to 32 letters"),
    ({"terminal_id": "X" * 33}, "terminal_id", "1 to 32 letters"),
    ({"gateway_url": "http://gateway.example/ippay"}, "gateway_url", "must use https"),
    ({"gateway_url": "ftp://gateway.example/"}, "gateway_url", "full address"),
    ({"gateway_mode": "sandbox"}, "gateway_mode", "Choose the test gateway"),
    ({"charge_concurrency": "0"}, "charge_concurrency", "from 1 to 64"),
    ({"charge_concurrency": "1000"}, "charge_concurrency", "from 1 to 64"),
    ({"charge_concurrency": "eight"}, "charge_concurrency", "from 1 to 64"),
    ({"refill_min": "600"}, "refill_min", "may not be above the maximum"),
    ({"refill_min": "-1"}, "refill_min", "at least 0.01"),
    ({"refill_max": "12.345"}, "refill_max", "between 0.01"),
    ({"payment_method_id": "99"}, "payment_method_id", "does not exist in Splynx"),
    ({"payment_account_id": ""}, "payment_account_id", "Choose a payment account"),
    ({"statement_grouping": "week"}, "statement_grouping", "Month or Day"),
    ({"language": "xx"}, "language", "Choose a language"),
    ({"language": "fr"}, "language", "Choose a language"),
])
def test_invalid_settings_are_refused_field_by_field(staff_world, changes, field, message):
    admin = staff_world.login_admin()
    before = module_config(staff_world)
    response = admin.post(f"{staff_world.url}/ippay/admin/settings", data={**VALID, **changes})
    assert response.status_code == 400
    assert f'id="{field}-error">' in response.text and message in response.text
    assert "Nothing was saved" in response.text
    assert module_config(staff_world) == before


def test_unit_validation_accepts_test_and_live_without_url():
    for mode in ("test", "live"):
        values, errors = ss.validate_form({**VALID, "gateway_mode": mode, "gateway_url": ""})
        assert errors == {} and values["gateway_url"] == ""
    assert ss.gateway_url_problem("https://staging.example/ippay") is None
    assert ss.gateway_url_problem("http://localhost:8080/ippay") is None
    assert ss.gateway_url_problem("http://[::1]:8080/ippay") is None
    assert "https" in ss.gateway_url_problem("http://10.0.0.5/ippay")


def test_valid_settings_are_saved_and_drive_the_gateway(staff_world):
    admin = staff_world.login_admin()
    page = admin.get(f"{staff_world.url}/ippay/admin/settings")
    assert page.ok and 'id="splynx-status"' in page.text and "Splynx answers" in page.text
    assert "answers PING" in page.text and "from config.ini" in page.text
    good = {**VALID, "gateway_url": staff_world.sim.url + "/ippay"}
    response = admin.post(f"{staff_world.url}/ippay/admin/settings", data=good,
                          allow_redirects=False)
    assert response.status_code == 302
    config = module_config(staff_world)
    assert config["terminal_id"] == "TESTTERMINAL" and config["gateway_mode"] == "custom"
    assert str(config["charge_concurrency"]) == "8" and str(config["refill_min_cents"]) == "500"
    assert str(config["refill_max_cents"]) == "50000" and config["statement_grouping"] == "day"
    page = admin.get(f"{staff_world.url}/ippay/admin/settings").text
    assert "from module settings" in page and 'value="5.00"' in page
    assert staff_world.addon.gateway.current().url == staff_world.sim.url + "/ippay"
    with session_scope(staff_world.addon.sessions) as session:
        action = session.execute(select(StaffAction)).scalars().one()
    assert action.admin_id == 1 and action.action == "settings_saved"
    # A wrong terminal is what the gateway says (the simulator knows TESTTERMINAL only).
    staff_world.addon.splynx.put_module_config("splynx_ippay_addon", {"terminal_id": "WRONG1"})
    staff_world.addon.module_settings.invalidate()
    page = admin.get(f"{staff_world.url}/ippay/admin/settings").text
    assert "refused terminal WRONG1" in page


def test_the_test_gateway_button_pings_what_is_typed(staff_world):
    admin = staff_world.login_admin()
    url = f"{staff_world.url}/ippay/admin/settings/test-gateway"
    ok = admin.post(url, data={**VALID, "gateway_url": staff_world.sim.url + "/ippay"}).json()
    assert ok["ok"] and "answers PING" in ok["message"]
    wrong = admin.post(url, data={**VALID, "terminal_id": "NOPE",
                                  "gateway_url": staff_world.sim.url + "/ippay"}).json()
    assert not wrong["ok"] and "refused terminal NOPE" in wrong["message"]
    insecure = admin.post(url, data={**VALID, "gateway_url": "http://gw.example/x"}).json()
    assert not insecure["ok"] and "https" in insecure["message"]
    down = admin.post(url, data={**VALID, "gateway_url": "http://127.0.0.1:9/ippay"}).json()
    assert not down["ok"] and "did not answer" in down["message"]
    customer = staff_world.login("alice")
    assert customer.post(url, data=VALID, allow_redirects=False).status_code == 403


def test_gateway_keeps_its_client_while_splynx_is_down(staff_world):
    gateway = staff_world.addon.gateway
    first = gateway.current()
    staff_world.emu_call("faults", {"status": 500, "path_regex": "config/config"})
    staff_world.addon.module_settings.invalidate()
    assert gateway.current() is first  # not a guess at config.ini's gateway
