"""Service fees on the staff side (docs/fees.md): the settings page refuses values it could
not use, and a charge run adds the card fee only when staff ticked it for that run."""

import pytest
from sqlalchemy import select

from splynx_ippay.db import session_scope
from splynx_ippay.models import PaymentAttempt

from .conftest import run_worker_until_done, runs, save_cards, start_run
from .test_settings import VALID, module_config

PERIOD = {"date_from": "2024-01-01", "date_to": "2024-12-31", "customer_ids": "2"}


@pytest.mark.parametrize("changes, field, message", [
    ({"fee_card_percent": "12"}, "fee_card_percent", "must be at most 10 %"),
    ({"fee_card_percent": "2,95"}, "fee_card_percent", "such as 2.95"),
    ({"fee_card_percent": "-1"}, "fee_card_percent", "percentage from 0 to 10"),
    ({"fee_bank_percent": "1.234"}, "fee_bank_percent", "at most two decimals"),
    ({"fee_vat_percent": "60"}, "fee_vat_percent", "must be at most 50 %"),
    ({"fee_text": "x" * 65}, "fee_text", "1 to 64 characters"),
    ({"fee_category_id": "999"}, "fee_category_id", "Not a valid choice"),
])
def test_bad_fee_settings_are_refused_with_a_clear_message(staff_world, changes, field, message):
    admin = staff_world.login_admin()
    before = module_config(staff_world)
    response = admin.post(f"{staff_world.url}/ippay/admin/settings", data={**VALID, **changes})
    assert response.status_code == 400
    assert f'id="{field}-error">' in response.text and message in response.text
    assert "Nothing was saved" in response.text and module_config(staff_world) == before


def test_fee_settings_are_off_by_default_warned_about_and_saved(staff_world):
    admin = staff_world.login_admin()
    page = admin.get(f"{staff_world.url}/ippay/admin/settings")
    assert 'id="fee-warning"' in page.text and "Card surcharges are regulated" in page.text
    assert "some US states forbid card surcharges" in page.text
    assert 'name="fee_card_percent" type="text" value="0"' in page.text
    saved = admin.post(f"{staff_world.url}/ippay/admin/settings", data={
        **VALID, "fee_card_percent": "2.50", "fee_bank_percent": "1", "fee_vat_percent": "8.25",
        "fee_text": "Card fee", "fee_category_id": "5", "fee_autopay": "y"},
        allow_redirects=False)
    assert saved.status_code == 302, saved.text[:2000]
    stored = module_config(staff_world)
    assert (stored["fee_card_percent"], stored["fee_bank_percent"], stored["fee_vat_percent"],
            stored["fee_text"], stored["fee_category_id"], stored["fee_autopay"]) == \
        ("2.5", "1", "8.25", "Card fee", "5", "1")
    fees = staff_world.ctx.module_settings.current().fees
    assert fees.rates == {"card": 250, "bank": 100} and fees.vat_rate == 825 and fees.autopay


def _sales(world):
    return sorted(int(t["amount"]) for t in world.sim_call("ledger")["transactions"]
                  if t["type"] == "SALE" and t["status"] != "declined")


@pytest.mark.parametrize("ticked", [False, True])
def test_a_charge_run_adds_the_fee_only_when_staff_ticked_it(staff_world, ticked):
    addon = staff_world.ctx
    # 2.25 %: the simulator approves or declines by the cents of the total, and these
    # totals keep bob's approvals approved and his decline declined.
    staff_world.set_module_settings({"fee_card_percent": "2.25"})
    save_cards(addon, [2])
    admin = staff_world.login_admin()
    page = admin.post(f"{staff_world.url}/ippay/admin/charge/preview",
                      data={**PERIOD, **({"with_fees": "y"} if ticked else {})})
    assert "service fee of 2.25 %" in page.text and 'id="with_fees"' in page.text
    response = start_run(admin, staff_world, {**PERIOD, **({"with_fees": "y"} if ticked else {})})
    assert response.status_code == 302
    [run] = runs(addon)
    assert run.with_fees is ticked
    run_worker_until_done(addon)
    with session_scope(addon.sessions) as session:
        attempts = session.execute(select(PaymentAttempt).where(
            PaymentAttempt.status == "posted")).scalars().all()
    # bob's 30.00 and 55.25 are approved (12.34 declines): 2.25 % is 0.68 (67.5 → 68, half-up)
    # and 1.24 (124.3125 → 124).
    dues = sorted(a.amount_cents for a in attempts)
    assert dues == [3000, 5525]
    expected = [3068, 5649] if ticked else [3000, 5525]
    assert _sales(staff_world) == expected
    assert sorted(a.charged_cents for a in attempts) == expected
    payments = [p for p in staff_world.emu_call("state")["payments"]
                if p["field_1"] in {a.transaction_id for a in attempts}]
    assert sorted(round(float(p["amount"]) * 100) for p in payments) == expected


@pytest.mark.parametrize("setting", ["0", "1"])
def test_automatic_runs_add_the_fee_as_the_setting_says(staff_world, setting):
    import datetime as dt

    from splynx_ippay.services import autopay
    from splynx_ippay.services.charge_runs.filters import RunFilters

    staff_world.set_module_settings({"fee_card_percent": "3", "fee_autopay": setting})
    run = autopay._create(staff_world.ctx, "due-day:2024-03-01", "auto", "due",
                          dt.date(2024, 3, 1), RunFilters(), "test")
    assert run is not None and run.with_fees is (setting == "1")
