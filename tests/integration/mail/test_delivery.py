"""Handing the outbox to a real SMTP server: once per message even with two senders at
once (on every database), backoff while the relay is down and delivery when it is back, a
550 recipient failed, a 450 retried, STARTTLS with a self-signed certificate, AUTH LOGIN."""

import datetime as dt
import socket
import threading
import time

import pytest
from sqlalchemy import select

from splynx_ippay.config import validate
from splynx_ippay.context import build_context
from splynx_ippay.models import MessageStatus, OutboxMessage
from splynx_ippay.services import notices
from tests.conftest import make_database
from tests.integration.mail.mail_helpers import SmtpServer, tls_context

T0 = dt.datetime(2026, 12, 5, 6, 0, 0)


def context_for(database_url, server=None, **mail):
    settings = validate({"DATABASE_URL": database_url, "WEB_SECRET_KEY": "test-secret",
                         "SPLYNX_URL": "http://127.0.0.1:9", **mail})
    if server is not None:
        settings.update(server.settings(**mail))
    return build_context(settings)


@pytest.fixture
def ctx(database_url, smtp):
    return context_for(database_url, smtp)


def put(ctx, n=1, *, recipient="alice@example.com", at=T0, first=0, **fields):
    """Queued messages written as notices.queue writes them (the rendering is another
    suite's subject)."""
    with ctx.sessions() as session:
        for i in range(first, first + n):
            session.add(OutboxMessage(
                purpose="card_added", object_key=f"card:{i}", recipient=recipient,
                sender="Sandbox ISP Ltd <billing@sandbox-isp.example>", reply_to=None,
                language="en", subject=f"Message {i}", body_text=f"Text {i}\n",
                body_html=f"<p>HTML {i}</p>", status=MessageStatus.QUEUED,
                next_try_at=at, **{"tries": 0, **fields}))
        session.commit()


def outbox(ctx):
    with ctx.sessions() as session:
        return session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()


def test_each_message_is_sent_once_by_two_senders_at_once(ctx, smtp):
    put(ctx, 40)
    start = threading.Barrier(2)
    results = []

    def sender():
        start.wait()
        results.append(notices.send_due(ctx, now=T0))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(r.sent for r in results) == 40
    subjects = sorted(m["Subject"] for m in smtp.received)
    assert subjects == sorted(f"Message {i}" for i in range(40))
    assert all(r.status == MessageStatus.SENT and r.tries == 1 for r in outbox(ctx))
    # Nothing is due any more.
    assert notices.send_due(ctx, now=T0 + dt.timedelta(days=1)).sent == 0
    assert len(smtp.received) == 40


@pytest.mark.databases
@pytest.mark.parametrize("kind", ["sqlite", "mariadb", "postgresql"])
def test_the_claim_holds_on_every_database(kind, tmp_path, smtp):
    url, drop = make_database(kind, tmp_path)
    try:
        ctx = context_for(url, smtp)
        put(ctx, 30)
        start = threading.Barrier(3)
        threads = [threading.Thread(target=lambda: (start.wait(), notices.send_due(ctx, now=T0)))
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(m["Subject"] for m in smtp.received) == \
            sorted(f"Message {i}" for i in range(30))
        ctx.engine.dispose()
    finally:
        drop()


def test_two_processes_queueing_the_same_notice_write_one_row(world, smtp):
    from tests.integration.mail.mail_helpers import add_card, use_relay

    use_relay(world, smtp)
    card = add_card(world, 1)
    start = threading.Barrier(4)
    got = []

    def queue():
        start.wait()
        got.append(notices.card_added(world.ctx, card))

    threads = [threading.Thread(target=queue) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len([g for g in got if g is not None]) == 1
    notices.send_due(world.ctx)
    notices.send_due(world.ctx)
    assert len(smtp.received) == 1


def test_a_relay_that_is_down_never_raises_and_messages_back_off_then_go(database_url):
    server = SmtpServer()           # not started: nothing listens on its port
    ctx = context_for(database_url, server)
    put(ctx, 3)

    started = time.monotonic()
    counts = notices.send_due(ctx, now=T0)
    assert time.monotonic() - started < 2
    assert (counts.sent, counts.deferred, counts.failed) == (0, 3, 0)
    rows = outbox(ctx)
    assert all(r.status == MessageStatus.QUEUED and r.tries == 1 for r in rows)
    assert all(r.next_try_at == T0 + dt.timedelta(minutes=1) for r in rows)
    assert "cannot connect to the mail relay 127.0.0.1" in rows[0].last_error

    # Not yet due: nothing is tried (no connection either).
    assert notices.send_due(ctx, now=T0 + dt.timedelta(seconds=59)) == notices.SendCounts()
    # Due again, still down: 5 minutes, then 30, then 2 hours.
    t = T0 + dt.timedelta(minutes=1)
    for wait in (5, 30, 120, 120):
        assert notices.send_due(ctx, now=t).deferred == 3
        t += dt.timedelta(minutes=wait)
        assert {r.next_try_at for r in outbox(ctx)} == {t}

    server.start()
    try:
        counts = notices.send_due(ctx, now=t)
        assert (counts.sent, counts.deferred, counts.failed) == (3, 0, 0)
        assert sorted(m["Subject"] for m in server.received) == ["Message 0", "Message 1",
                                                                 "Message 2"]
        assert all(r.status == MessageStatus.SENT and r.tries == 6 for r in outbox(ctx))
    finally:
        server.stop()


def test_a_relay_that_hangs_holds_the_caller_for_one_timeout_not_one_per_message(database_url):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)              # accepts connections, never says hello
    try:
        ctx = context_for(database_url, MAIL_HOST="127.0.0.1",
                          MAIL_PORT=str(listener.getsockname()[1]), MAIL_TIMEOUT="0.5")
        put(ctx, 10)
        started = time.monotonic()
        counts = notices.send_due(ctx, now=T0)
        assert time.monotonic() - started < 2.5
        assert counts.deferred == 10 and counts.sent == 0
    finally:
        listener.close()


def test_a_message_that_never_gets_through_is_failed_after_the_last_try(database_url):
    ctx = context_for(database_url, SmtpServer())
    put(ctx, 1, tries=notices.MAX_TRIES - 1)
    put(ctx, 1, first=1)
    counts = notices.send_due(ctx, now=T0)
    assert (counts.failed, counts.deferred) == (1, 1)
    given_up, waiting = outbox(ctx)
    assert given_up.status == MessageStatus.FAILED
    assert given_up.last_error.startswith(f"gave up after {notices.MAX_TRIES} tries")
    assert waiting.status == MessageStatus.QUEUED


def test_a_recipient_refused_with_550_is_failed_and_one_with_450_waits(ctx, smtp):
    smtp.handler.refuse.add("nobody@example.com")
    smtp.handler.defer.add("greylisted@example.com")
    put(ctx, 1, recipient="nobody@example.com")
    put(ctx, 1, first=1, recipient="greylisted@example.com")
    put(ctx, 1, first=2)
    put(ctx, 1, first=3, recipient="nobody@example.com, carol@example.com")
    counts = notices.send_due(ctx, now=T0)
    assert (counts.sent, counts.deferred, counts.failed) == (2, 1, 1)
    refused, greylisted, fine, half = outbox(ctx)
    assert refused.status == MessageStatus.FAILED and "550" in refused.last_error
    assert greylisted.status == MessageStatus.QUEUED and "450" in greylisted.last_error
    assert greylisted.next_try_at == T0 + dt.timedelta(minutes=1)
    assert fine.status == MessageStatus.SENT
    # Taken for one of its two addresses: sent, with the refusal noted.
    assert half.status == MessageStatus.SENT and "nobody@example.com: 550" in half.last_error
    assert sorted(tuple(m.rcpt_tos) for m in smtp.received) == [("alice@example.com",),
                                                                ("carol@example.com",)]

    smtp.handler.defer.clear()
    assert notices.send_due(ctx, now=T0 + dt.timedelta(minutes=1)).sent == 1
    assert outbox(ctx)[1].status == MessageStatus.SENT


def test_what_arrives_is_the_row_multipart_with_a_stable_message_id(ctx, smtp):
    put(ctx, 1)
    notices.send_due(ctx, now=T0)
    [got] = smtp.received
    [row] = outbox(ctx)
    assert got["Message-ID"] == notices.message_id(row)
    assert got["Date"].datetime == T0.replace(tzinfo=dt.timezone.utc)
    assert got.text == "Text 0\n" and "<p>HTML 0</p>" in got.html
    assert got.mail_from == "billing@sandbox-isp.example"


# --- STARTTLS and login ---------------------------------------------------------------

@pytest.fixture
def tls_smtp(certificate):
    server = SmtpServer(tls_context=tls_context(certificate), require_starttls=True).start()
    yield server
    server.stop()


def test_starttls_with_a_self_signed_certificate_named_in_ca_file(database_url, tls_smtp,
                                                                 certificate):
    ctx = context_for(database_url, tls_smtp, MAIL_STARTTLS="required",
                      MAIL_CA_FILE=certificate[0])
    put(ctx, 2)
    assert notices.send_due(ctx, now=T0).sent == 2
    assert [m.tls for m in tls_smtp.received] == [True, True]


def test_an_untrusted_certificate_sends_nothing(database_url, tls_smtp):
    ctx = context_for(database_url, tls_smtp, MAIL_STARTTLS="yes")
    put(ctx, 1)
    counts = notices.send_due(ctx, now=T0)
    assert counts.deferred == 1 and tls_smtp.received == []
    assert "certificate verify failed" in outbox(ctx)[0].last_error.lower()


def test_starttls_required_but_not_offered_sends_nothing_yes_sends_in_plain(database_url, smtp):
    ctx = context_for(database_url, smtp, MAIL_STARTTLS="required")
    put(ctx, 1)
    assert notices.send_due(ctx, now=T0).deferred == 1
    assert "does not offer STARTTLS" in outbox(ctx)[0].last_error
    assert smtp.received == []

    ctx.settings["MAIL_STARTTLS"] = "yes"
    assert notices.send_due(ctx, now=T0 + dt.timedelta(minutes=1)).sent == 1
    assert [m.tls for m in smtp.received] == [False]


@pytest.fixture
def auth_smtp(certificate):
    server = SmtpServer(tls_context=tls_context(certificate), require_starttls=True,
                        with_auth=True, auth_required=True,
                        auth_exclude_mechanism=["PLAIN"]).start()
    yield server
    server.stop()


def test_auth_login_over_starttls(database_url, auth_smtp, certificate):
    ctx = context_for(database_url, auth_smtp, MAIL_STARTTLS="required",
                      MAIL_CA_FILE=certificate[0], MAIL_USERNAME="mailer",
                      MAIL_PASSWORD="s3cret pass")
    put(ctx, 1)
    assert notices.send_due(ctx, now=T0).sent == 1
    assert auth_smtp.logins == [("LOGIN", "mailer")]
    [got] = auth_smtp.received
    assert got.tls and got.authenticated


def test_a_refused_login_keeps_the_messages(database_url, auth_smtp, certificate):
    ctx = context_for(database_url, auth_smtp, MAIL_STARTTLS="required",
                      MAIL_CA_FILE=certificate[0], MAIL_USERNAME="mailer",
                      MAIL_PASSWORD="wrong")
    put(ctx, 2)
    counts = notices.send_due(ctx, now=T0)
    assert counts.deferred == 2 and auth_smtp.received == []
    assert "refused the login of 'mailer'" in outbox(ctx)[0].last_error
    assert "wrong" not in outbox(ctx)[0].last_error


def test_a_password_goes_in_clear_only_to_a_relay_on_this_machine(database_url):
    server = SmtpServer(with_auth=True, auth_require_tls=False,
                        auth_exclude_mechanism=["PLAIN"]).start()
    try:
        ctx = context_for(database_url, server, MAIL_USERNAME="mailer",
                          MAIL_PASSWORD="s3cret pass")
        put(ctx, 1)
        assert notices.send_due(ctx, now=T0).sent == 1           # 127.0.0.1: loopback
        assert server.logins == [("LOGIN", "mailer")]

        name = socket.gethostname()
        if not socket.gethostbyname(name).startswith("127."):
            pytest.skip("this host's name is not on loopback")
        ctx.settings["MAIL_HOST"] = name                          # a name, not loopback
        put(ctx, 1, first=1)
        assert notices.send_due(ctx, now=T0).deferred == 1
        assert "not sending the SMTP password in clear text" in outbox(ctx)[1].last_error
        assert server.logins == [("LOGIN", "mailer")]
    finally:
        server.stop()

