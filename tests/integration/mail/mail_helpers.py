"""The test SMTP server (aiosmtpd on loopback, Debian's python3-aiosmtpd 1.4.3) and
helpers of the mail suites."""

import email
import socket
import ssl
import threading
from email.policy import default as default_policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from splynx_ippay.models import Card


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Received:
    """One message as the server got it: envelope, parsed message, how it came."""

    def __init__(self, mail_from, rcpt_tos, content, tls, authenticated):
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.raw = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        self.message = email.message_from_bytes(
            content if isinstance(content, bytes) else content.encode(), policy=default_policy)
        self.tls = tls
        self.authenticated = authenticated

    def __getitem__(self, header):
        return self.message[header]

    @property
    def text(self):
        return self.message.get_body(("plain",)).get_content().replace("\r\n", "\n")

    @property
    def html(self):
        part = self.message.get_body(("html",))
        return part.get_content().replace("\r\n", "\n") if part is not None else None


class Handler:
    """Accepts every message, except recipients listed in ``refuse`` (550) or
    ``defer`` (450)."""

    def __init__(self):
        self.received = []
        self.refuse = set()
        self.defer = set()
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if address in self.defer:
            return "450 4.2.0 <%s>: Recipient address rejected: Greylisted" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.append(Received(envelope.mail_from, envelope.rcpt_tos,
                                          envelope.original_content or envelope.content,
                                          session.ssl is not None,
                                          bool(session.authenticated)))
        return "250 2.0.0 Ok: queued"


class SmtpServer:
    """aiosmtpd on 127.0.0.1:<port>, which can be stopped (the relay is down) and started
    again on the same port."""

    def __init__(self, port=None, **smtp_options):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.handler = Handler()
        self.options = smtp_options
        self.controller = None
        self.logins = []

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((mechanism, auth_data.login.decode()))
        ok = (auth_data.login, auth_data.password) == (b"mailer", b"s3cret pass")
        # handled=False: aiosmtpd answers 235 or 535 itself.
        return AuthResult(success=ok, handled=False)

    def start(self):
        options = dict(self.options)
        if options.pop("with_auth", False):
            options["authenticator"] = self.authenticator
        self.controller = Controller(self.handler, hostname=self.host, port=self.port,
                                     ready_timeout=10, **options)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def received(self):
        return list(self.handler.received)

    def settings(self, **extra):
        values = {"MAIL_HOST": self.host, "MAIL_PORT": self.port, "MAIL_STARTTLS": "no",
                  "MAIL_USERNAME": "", "MAIL_PASSWORD": "", "MAIL_CA_FILE": "",
                  "MAIL_TIMEOUT": 5.0}
        values.update(extra)
        return values


def tls_context(certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def use_relay(world, server, **extra):
    """Point the add-on's ``[mail]`` settings at ``server``."""
    world.ctx.settings.update(server.settings(**extra))


def add_card(world, customer_id=1, *, last4="1111", brand="Visa", exp_month=12, exp_year=2030,
             default=True):
    """A saved card row, as services/cards.keep writes it (no gateway needed here)."""
    with world.ctx.sessions() as session:
        card = Card(customer_id=customer_id, token="tok" + last4 * 3, terminal_id="TESTTERMINAL",
                    brand=brand, last4=last4, exp_month=exp_month, exp_year=exp_year,
                    holder_name="Alice Anderson", is_default=default)
        session.add(card)
        session.commit()
        session.refresh(card)
        session.expunge(card)
        return card
