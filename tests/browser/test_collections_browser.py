"""Collections in a real Chromium, at desktop and phone width: staff add an autopay schedule
(and are told what is wrong with one they mistype) on the automatic payments page; a
customer opts out of automatic payments and stops one card being used for them; staff read
the collections overview's plots after a charge run."""

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import admin_login, assert_labelled, login, open_finance_entry
from tests.browser.staff_world import (  # noqa: F401  (staff_stack: the stack fixture)
    confirm, fits_and_is_wide, issue_invoices, open_addons_menu, open_charge_page, preview,
    save_cards_in_portal, shot, staff_stack)

pytestmark = pytest.mark.browser

#: A schedule per viewport, so that the two runs of the test do not meet.
SCHEDULES = {"desktop": ("Three days after due", "07:30"), "phone": ("Day of issue", "05:15")}


@pytest.fixture(scope="module")
def collections_data(stack, browser):
    save_cards_in_portal(stack, browser)
    issue_invoices(stack, [(1, "41.00", "2025-02-03"), (2, "42.00", "2025-02-04")])
    return stack


def test_an_autopay_schedule_is_added_on_the_automatic_payments_page(page, collections_data,
                                                                     viewport):
    stack = collections_data
    name, at = SCHEDULES[viewport]
    admin_login(page, stack)
    frame = open_addons_menu(page, "IPpay automatic payments")
    expect(frame.locator("h1")).to_have_text("Automatic payments")
    assert_labelled(frame)
    fits_and_is_wide(frame, viewport, "automatic payments")
    new = frame.locator("fieldset.schedule").last
    new.get_by_label("Name").fill(name)
    new.get_by_label("When").select_option(label="N days after the due date")
    new.get_by_label("N (days)").fill("3")
    new.get_by_label("Time of day").fill("25:00")  # mistyped first
    frame.get_by_role("button", name="Save").click()
    expect(frame.locator(".alert-danger")).to_contain_text("Nothing was saved")
    expect(frame.locator("fieldset.schedule.has-error")).to_contain_text("HH:MM")
    row = frame.locator("fieldset.schedule.has-error")
    expect(row.get_by_label("Name")).to_have_value(name)  # what was typed is kept
    shot(page, "schedule-error")
    row.get_by_label("Time of day").fill(at)
    frame.get_by_role("button", name="Save").click()
    expect(frame.locator(".alert-success")).to_contain_text("Automatic payments saved")
    expect(frame.locator("#plans")).to_contain_text(f"{name}: 3 days after the due date at {at}")
    fits_and_is_wide(frame, viewport, "automatic payments")
    shot(page, "schedule-saved")


def test_a_customer_opts_out_of_automatic_payments(page, collections_data, viewport):
    stack = collections_data
    login(page, stack, "alice")
    frame = open_finance_entry(page, "Credit card")
    box = frame.get_by_label("Pay my invoices automatically with the card marked for "
                             "automatic payments")
    card = frame.locator(".saved-card").first
    if card.get_by_role("button", name="Use for automatic payments").count():
        card.get_by_role("button", name="Use for automatic payments").click()
        expect(frame.locator(".alert-success")).to_contain_text("will be used")
    box.check()
    frame.get_by_role("button", name="Save", exact=True).click()
    expect(frame.locator(".alert-success")).to_contain_text("were saved")
    box.uncheck()
    frame.get_by_label("E-mail me a reminder before each automatic payment").check()
    frame.get_by_role("button", name="Save", exact=True).click()
    expect(frame.locator(".alert-success")).to_contain_text(
        "Your choices about automatic payments were saved.")
    expect(box).not_to_be_checked()
    expect(frame.get_by_label("E-mail me a reminder before each automatic payment")).to_be_checked()
    # The card stops being the one for automatic payments, by its own button.
    frame.locator(".saved-card").first.get_by_role(
        "button", name="Stop using for automatic payments").click()
    expect(frame.locator(".alert-success")).to_contain_text("will not be used")
    expect(frame.locator(".saved-card").first.get_by_role(
        "button", name="Use for automatic payments")).to_be_visible()
    shot(page, "opted-out")


def test_the_collections_overview_in_plots(page, collections_data, viewport):
    stack = collections_data
    admin_login(page, stack)
    if viewport == "desktop":  # one run for both widths: the overview then has a day to plot
        frame = open_charge_page(page)
        preview(frame, "2025-02-01", "2025-02-28")
        confirm(frame)
        expect(frame.locator("#p-state")).to_have_text("done", timeout=60000)
    frame = open_addons_menu(page, "IPpay collections")
    expect(frame.locator("h1")).to_have_text("Collections")
    charts = frame.locator("figure.chart svg")
    expect(charts).to_have_count(5)
    expect(frame.locator("figure.chart").first).to_contain_text("Collected per day, by channel")
    expect(frame.locator("figure.chart svg rect title").first).to_contain_text("staff run")
    # The figures behind a plot are there as a table for who cannot see it.
    first = frame.locator("figure.chart details").first
    first.locator("summary").click()
    expect(first.locator("table")).to_be_visible()
    expect(frame.locator("#no-findings")).to_be_visible()
    fits_and_is_wide(frame, viewport, "collections")
    # Labels stay readable at phone width: a plot's text is never drawn below 11 px (the
    # plot scrolls inside its box instead), and the page itself does not scroll sideways.
    sizes = charts.evaluate_all(
        "svgs => svgs.map(s => s.getBoundingClientRect().width / s.viewBox.baseVal.width * 11)")
    assert min(sizes) >= 10.9, sizes
    shot(page, "overview")
