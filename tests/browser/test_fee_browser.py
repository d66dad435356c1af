"""The service fee in a real Chromium at 1280 and 360 px (docs/fees.md): the fee, its VAT and
the total are visible in the Pay modal before paying, and the button says the total."""

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import create_engine, update

from splynx_ippay.models import SettingsStamp
from splynx_ippay.splynx import SplynxClient
from tests.browser.helpers import login
from tests.browser.test_portal_browser import ensure_card

pytestmark = pytest.mark.browser

#: 60.10 due: fee 1.77, VAT 0.35, 62.22 to pay; 30.00 due: fee 0.89, VAT 0.18, 31.07.
PEOPLE = {"desktop": ("alice", "202402000003", "$1.77", "$0.35", "$62.22"),
          "phone": ("bob", "202403000006", "$0.89", "$0.18", "$31.07")}


@pytest.fixture(scope="module", autouse=True)
def card_fee(stack):
    """A card fee of 2.95 % with 20 % VAT, as staff would set it; every add-on process
    sees it at once (the settings stamp)."""
    env = stack.addon_env()
    client = SplynxClient(stack.splynx_url, env["SPLYNX_IPPAY_SPLYNX_API_KEY"],
                          env["SPLYNX_IPPAY_SPLYNX_API_SECRET"])
    client.put_module_config("splynx_ippay_addon", {
        "fee_card_percent": "2.95", "fee_vat_percent": "20", "fee_text": "Card fee"})
    engine = create_engine(stack.database_url)
    with engine.begin() as connection:
        connection.execute(update(SettingsStamp).values(version=SettingsStamp.version + 1))
    engine.dispose()


def test_the_fee_is_visible_in_the_pay_modal_before_paying(page, stack, viewport):
    who, number, fee, vat, total = PEOPLE[viewport]
    login(page, stack, who)
    ensure_card(page, stack, viewport)
    before = _sales(stack)
    page.goto(f"{stack.front}/portal/finance/invoices")
    page.locator(f'tr[data-number="{number}"]').get_by_title("Pay by IPpay").click()
    modal = page.frame_locator("#addon-modal iframe")
    expect(modal.locator("h1")).to_have_text(f"Invoice #{number}")
    fee_line = modal.locator("dd.fee")
    expect(fee_line).to_be_visible()
    expect(fee_line).to_have_text(fee)
    expect(modal.locator(".fee-label")).to_have_text("Card fee (2.95 %)")
    expect(modal.locator("dd.fee-vat")).to_have_text(vat)
    expect(modal.locator("dd.total-to-pay")).to_have_text(total)
    pay = modal.locator("button.btn-pay")
    expect(pay).to_have_text(f"Pay {total}")
    # The fee line and the button are on screen together, even at phone width.
    fee_box, pay_box = fee_line.bounding_box(), pay.bounding_box()
    assert fee_box and pay_box and fee_box["width"] > 0 and pay_box["y"] > fee_box["y"]
    page.shot("fee")
    assert _sales(stack) == before, "nothing is charged before the customer presses Pay"
    if viewport == "desktop":
        pay.click()
        expect(modal.locator(".result")).to_contain_text("Success!", timeout=20000)
        expect(modal.locator(".fee-paid")).to_contain_text("$2.12")
        assert _sales(stack) == before + [6222]


def _sales(stack):
    return [int(t["amount"]) for t in requests.get(f"{stack.ippay_url}/_sim/ledger", timeout=5)
            .json()["transactions"] if t["type"] == "SALE"]
