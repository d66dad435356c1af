"""Fixtures of the staff suite: the world with more invoices, saved cards, a worker."""

import os
import threading

import pytest
from sqlalchemy import select

from sandbox.world import build_world
from splynx_ippay.db import session_scope
from splynx_ippay.ippay import Card as GatewayCard
from splynx_ippay.models import Card, ChargeRun

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_staff_world(database_url, splynx_config=None, **settings):
    """The world of tests/conftest.py, without form tokens (these tests post like an API)."""
    return build_world(database_url, splynx_config=splynx_config, csrf=False, **settings)


@pytest.fixture
def staff_world(database_url):
    world = build_staff_world(database_url)
    yield world
    world.stop()


def default_gateway(ctx):
    """The IPpay client of the default terminal (the world's simulator)."""
    config = ctx.module_settings.current()
    return ctx.gateways.client(ctx.gateways.terminal_for(config.default, config.read_ok))


def save_cards(addon, customer_ids, pan="4111111111111111"):
    """A saved default card for each customer (one gateway token shared: a test shortcut)."""
    result = default_gateway(addon).tokenize(GatewayCard(pan, 12, 2031, holder="Test Holder"))
    assert result.approved, result
    with session_scope(addon.sessions) as session:
        for cid in customer_ids:
            session.add(Card(customer_id=cid, token=result.token, brand="Visa", last4=pan[-4:],
                             exp_month=12, exp_year=2031, holder_name="Test Holder",
                             is_default=True))
    return result.token


def run_worker_until_done(addon, run_id=None, concurrency=4, timeout=120, **kwargs):
    """Run an in-process worker until no run is active."""
    from splynx_ippay.services.charge_runs.worker import Worker

    kwargs.setdefault("settle_after", 0.5)
    kwargs.setdefault("retry_after", 0.2)
    worker = Worker(addon, concurrency=concurrency, run_ids=[run_id] if run_id else None,
                    poll=0.05, **kwargs)
    timer = threading.Timer(timeout, worker.stop_event.set)
    timer.start()
    try:
        worker.run(exit_when_idle=True)
    finally:
        timer.cancel()
    return worker


def runs(addon):
    with session_scope(addon.sessions) as session:
        return session.execute(select(ChargeRun).order_by(ChargeRun.id)).scalars().all()


def confirm_data(session, world, data):
    """What the preview's Confirm button sends for ``data`` (the filters, and the count and
    total previewed): a run starts only with them."""
    import re

    from html import unescape

    page = session.post(f"{world.url}/ippay/admin/charge/preview", data=data, timeout=30)
    assert page.status_code == 200 and 'id="confirm-form"' in page.text, page.text[:2000]
    form = page.text.split('id="confirm-form"', 1)[1].split("</form>", 1)[0]
    return {unescape(name): unescape(value) for name, value in
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)}


def start_run(session, world, data):
    """Preview and confirm a run as staff do; the answer to the confirmation."""
    return session.post(f"{world.url}/ippay/admin/charge/confirm",
                        data=confirm_data(session, world, data), timeout=30,
                        allow_redirects=False)
