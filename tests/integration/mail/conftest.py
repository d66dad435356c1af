"""Fixtures of the mail suites: a real SMTP server on loopback that keeps what it
receives, a self-signed certificate, and one add-on world for each module."""

import subprocess

import pytest
from sqlalchemy import delete

from sandbox.world import build_world
from splynx_ippay.models import Card, OutboxMessage
from splynx_ippay.services import notices
from tests.conftest import make_database
from tests.integration.mail.mail_helpers import SmtpServer


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1: (cert, key) paths."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "relay.pem", folder / "relay.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


# --- the add-on ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mail_world(tmp_path_factory):
    """One world for the module (starting one takes a while); each test gets it clean."""
    url, drop = make_database("sqlite", tmp_path_factory.mktemp("mail-db"))
    world = build_world(url, csrf=False)
    yield world
    world.stop()
    drop()


@pytest.fixture
def world(mail_world, tmp_path):
    """The module's world with an empty outbox and no cards, default settings, today
    fixed, and its own override directory for templates."""
    ctx = mail_world.ctx
    saved = dict(ctx.settings)
    ctx.settings["MAIL_TEMPLATES"] = str(tmp_path / "overrides")
    with ctx.sessions() as session:
        session.execute(delete(OutboxMessage))
        session.execute(delete(Card))
        session.commit()
    store = mail_world.store()
    companies = {pid: dict(store.company_info.get(pid)) for pid in (1, 2)}
    customers = {cid: dict(store.customers.get(cid)) for cid in (1, 2, 3)}
    notices.forget_company_info(ctx)
    ctx.customers.clear()
    yield mail_world
    ctx.settings.clear()
    ctx.settings.update(saved)
    for pid, row in companies.items():
        store.company_info.get(pid).update(row)
    for cid, row in customers.items():
        store.customers.get(cid).update(row)
    mail_world.set_module_settings({"language": "en", "direct_links": "signed"})
    mail_world.today.moment = None
    notices.forget_company_info(ctx)
    ctx.customers.clear()
