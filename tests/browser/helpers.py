"""Helpers shared by the browser suites (portal and staff): logging in, filling the card
form, and checking that every form field has a label."""

from playwright.sync_api import expect

UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(e => e.type !== 'hidden')
  .filter(e => !(e.getAttribute('aria-label') || e.closest('label') ||
                 (e.id && document.querySelector('label[for="' + e.id + '"]'))))
  .map(e => e.name || e.id || e.outerHTML)"""


def login(page, stack, who):
    """Log a customer into the emulator's portal."""
    page.goto(f"{stack.front}/portal/")
    page.fill("#login", who)
    page.fill("#password", f"{who}-pass")
    page.click("button[type=submit]")
    expect(page.locator(".navbar")).to_contain_text("Log out")


def admin_login(page, stack, who="admin"):
    """Log an administrator into the emulator's admin area."""
    page.goto(f"{stack.front}/admin/login")
    page.fill("#login", who)
    page.fill("#password", f"{who}-pass")
    page.click("button[type=submit]")
    expect(page.locator(".navbar")).to_contain_text("Log out")


def open_finance_entry(page, title):
    # The menu opens on hover or focus (a phone has no hover): focus it, then choose.
    page.locator(".dropdown", has_text="Finance").first.focus()
    link = page.locator(".dropdown-menu a", has_text=title)
    expect(link).to_be_visible()
    link.click()
    page.wait_for_url("**/portal/add-on?*")
    return page.frame_locator("#addon-frame")


def fill_card(frame, number="4111111111111111", holder="Pat Example", expiry="12/30", cvv="123"):
    frame.get_by_label("Name on card").fill(holder)
    frame.get_by_label("Card number").fill(number)
    frame.get_by_label("Expiry (MM/YY)").fill(expiry)
    frame.get_by_label("Security code (CVV)").fill(cvv)


def assert_labelled(frame_or_page):
    locator = frame_or_page.locator("body")
    unlabelled = locator.evaluate(f"(body) => ({UNLABELLED})()")
    assert unlabelled == [], f"fields without a label: {unlabelled}"
