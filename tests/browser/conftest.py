"""A real headless Chromium (Debian's ``chromium``, driven by Playwright) against the whole
stack through nginx: the Splynx emulator's portal, the add-on under gunicorn, the IPpay
simulator. Screenshots go to ``tests/artifacts/``."""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 360, "height": 740}}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed")
    from sandbox.stack import Stack

    with Stack(tmp_path_factory.mktemp("browser-stack")) as stack:
        yield stack


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request):
    return request.param


@pytest.fixture
def page(browser, viewport, request):
    """A fresh browser window (no cookies) at the viewport's width; the last screen is
    saved when the test ends."""
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="en-US")
    context.set_default_timeout(15000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.shot = lambda step: shot(page, request, viewport, step)
    yield page
    try:
        page.shot("end")
    finally:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(page, request, viewport, step):
    ARTIFACTS.mkdir(exist_ok=True)
    name = request.node.originalname.replace("test_", "", 1)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{viewport}-{step}.png"), full_page=True)
