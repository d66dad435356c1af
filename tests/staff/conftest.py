"""Fixtures of the staff suite: the world with more invoices, saved cards, a worker."""

import os
import sys
import threading

import pytest
import requests
from sqlalchemy import select

from sandbox.serve import BackgroundServer
from splynx_ippay.db import session_scope
from splynx_ippay.ippay import Card as GatewayCard
from splynx_ippay.models import Card, ChargeRun

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class StaffWorld:
    """Emulator + add-on on one origin, simulator beside it (like tests/conftest.World)."""

    def __init__(self, front, sim, splynx_app, addon, config):
        self.front, self.sim, self.splynx_app, self.addon = front, sim, splynx_app, addon
        self.url = front.url
        self.config = config

    def sim_call(self, path, payload=None):
        method = requests.post if payload is not None else requests.get
        response = method(f"{self.sim.url}/_sim/{path}", json=payload, timeout=10)
        response.raise_for_status()
        return response.json()

    def emu_call(self, path, payload=None):
        method = requests.post if payload is not None else requests.get
        response = method(f"{self.url}/_sandbox/{path}", json=payload, timeout=30)
        response.raise_for_status()
        return response.json()

    def login(self, login, password=None, place="portal"):
        session = requests.Session()
        response = session.post(f"{self.url}/{place}/login",
                                data={"login": login, "password": password or f"{login}-pass"},
                                timeout=10)
        assert response.ok and "PHPSESSID" in session.cookies
        return session

    def login_admin(self):
        return self.login("admin", place="admin")

    def store(self):
        return self.splynx_app.extensions["splynx_store"]

    def env(self):
        """Environment for a worker or CLI subprocess talking to this world."""
        return {**os.environ, "PYTHONPATH": ROOT, "SPLYNX_IPPAY_CONFIG": "/nonexistent/config.ini",
                "SPLYNX_IPPAY_SPLYNX_URL": self.url, "SPLYNX_IPPAY_SPLYNX_API_KEY": "sandbox-key",
                "SPLYNX_IPPAY_SPLYNX_API_SECRET": "sandbox-secret",
                "SPLYNX_IPPAY_IPPAY_URL": self.sim.url + "/ippay",
                "SPLYNX_IPPAY_IPPAY_READ_TIMEOUT": str(self.config["IPPAY_READ_TIMEOUT"]),
                "SPLYNX_IPPAY_IPPAY_CONNECT_TIMEOUT": "2",
                "SPLYNX_IPPAY_DATABASE_URL": self.config["DATABASE_URL"],
                "SPLYNX_IPPAY_WEB_LOG_LEVEL": "WARNING"}

    def stop(self):
        self.front.stop()
        self.sim.stop()


def build_staff_world(database_url, splynx_config=None, **settings):
    from sandbox.front import Front
    from sandbox.ippay import create_app as create_sim
    from sandbox.splynx import create_app as create_splynx
    from splynx_ippay import create_app
    from splynx_ippay.config import validate
    from splynx_ippay.services import build_addon
    from splynx_ippay.services.registration import register

    sim = BackgroundServer(create_sim()).start()
    splynx_app = create_splynx(splynx_config or {})
    front = BackgroundServer(Front(splynx_app)).start()
    config = validate({
        "SPLYNX_URL": front.url, "SPLYNX_API_KEY": "sandbox-key",
        "SPLYNX_API_SECRET": "sandbox-secret", "IPPAY_URL": sim.url + "/ippay",
        "IPPAY_READ_TIMEOUT": 1.0, "IPPAY_CONNECT_TIMEOUT": 1.0, "SPLYNX_TIMEOUT": 5.0,
        "DATABASE_URL": database_url, "WEB_SECRET_KEY": "test-secret", **settings,
    })
    addon = build_addon(config)
    front.app.addon_app = create_app({**config, "ADDON": addon, "WTF_CSRF_ENABLED": False})
    register(addon.splynx)
    return StaffWorld(front, sim, splynx_app, addon, config)


@pytest.fixture
def staff_world(database_url):
    world = build_staff_world(database_url)
    yield world
    world.stop()


def save_cards(addon, customer_ids, pan="4111111111111111"):
    """A saved default card for each customer (one gateway token shared: a test shortcut)."""
    result = addon.gateway.tokenize(GatewayCard(pan, 12, 2031, holder="Test Holder"))
    assert result.approved, result
    with session_scope(addon.sessions) as session:
        for cid in customer_ids:
            session.add(Card(customer_id=cid, token=result.token, brand="Visa", last4=pan[-4:],
                             exp_month=12, exp_year=2031, holder_name="Test Holder",
                             is_default=True))
    return result.token


def run_worker_until_done(addon, run_id=None, concurrency=4, timeout=120, **kwargs):
    """Run an in-process worker until no run is active."""
    from splynx_ippay.services.charging import Worker

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
