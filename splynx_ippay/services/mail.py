"""The SMTP transport: one connection to the mail relay of ``[mail]`` in config.ini, and
the MIME message of an outbox row (standard library only: smtplib, ssl, email).

Failures are sorted by what the sender should do about them (services/notices.py acts on
it):

* :class:`RelayUnavailable` - the relay cannot be used now (not listening, a timeout, TLS
  or login refused, ``421`` closing): nothing was sent; every message waits.
* :class:`TemporaryRefusal` - a ``4xx`` for this message: it waits and is tried again.
* :class:`PermanentRefusal` - a ``5xx`` for this recipient or this message: trying again
  would be refused again; the message is marked failed.

A password is sent only over STARTTLS or to a relay on this machine (``localhost``,
``127.0.0.1``): never in clear text over a network. Certificates are always verified
(against the system's CAs, or ``[mail] ca_file``).
"""

import base64
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formatdate, getaddresses, parseaddr

from ..config import is_loopback_host


class DeliveryError(Exception):
    """A message was not handed to the relay."""


class RelayUnavailable(DeliveryError):
    """The relay cannot take any message now; nothing was sent."""


class TemporaryRefusal(DeliveryError):
    """The relay refused this message for now (``4xx``)."""


class PermanentRefusal(DeliveryError):
    """The relay refused this message for good (``5xx`` for its recipient or its content)."""


@dataclass(frozen=True)
class MailSettings:
    """``[mail]`` of config.ini (config.SETTINGS), as the transport uses them."""

    host: str = "localhost"
    port: int = 25
    starttls: str = "no"
    username: str = ""
    password: str = ""
    ca_file: str = ""
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings):
        return cls(host=settings["MAIL_HOST"], port=settings["MAIL_PORT"],
                   starttls=settings["MAIL_STARTTLS"], username=settings["MAIL_USERNAME"],
                   password=settings["MAIL_PASSWORD"], ca_file=settings["MAIL_CA_FILE"],
                   timeout=settings["MAIL_TIMEOUT"])

    def tls_context(self):
        context = ssl.create_default_context(cafile=self.ca_file or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def addresses(field):
    """The addresses of a header value such as ``"A <a@x.example>, b@y.example"``; raises
    ValueError when one is not an address (so nothing odd reaches a header or RCPT TO)."""
    text = str(field or "")
    if "\r" in text or "\n" in text:
        raise ValueError("an address may not contain a line break")
    found = [address for _name, address in getaddresses([text]) if address]
    if not found or any(not _plain_address(a) for a in found):
        raise ValueError(f"not an e-mail address: {text[:80]!r}")
    return found


def _plain_address(address):
    local, at, domain = address.rpartition("@")
    if not (at and local and domain) or any(c.isspace() or c in '<>,;"' for c in address):
        return False
    return "." in domain.strip(".") or domain == "localhost"


def domain_of(mailbox):
    """The domain of a From value (for the Message-ID), ``localhost`` when it has none."""
    address = parseaddr(mailbox or "")[1]
    return address.rpartition("@")[2] or "localhost"


def build_message(*, sender, recipient, subject, text, html=None, reply_to=None,
                  language="en", message_id=None, date=None):
    """The message as it is sent: ``multipart/alternative`` (text, then HTML) when there is
    HTML, with From, To, Reply-To, Subject, Date, Message-ID and Content-Language.
    ``Auto-Submitted: auto-generated`` keeps vacation responders from answering it."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = sender
    message["To"] = recipient
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = " ".join(str(subject).split())
    message["Date"] = format_datetime(date) if date is not None else formatdate(localtime=True)
    if message_id:
        message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, subtype="plain", charset="utf-8")
    if html:
        message.add_alternative(html, subtype="html", charset="utf-8")
        # A boundary of letters (Python's own is 19 random digits, which reads like a card
        # number to anyone scanning the message for one).
        message.set_boundary("=_" + base64.b32encode(os.urandom(15)).decode())
    # After the content: setting it clears every Content-* header.
    message["Content-Language"] = language
    return message


def _code(exc):
    return getattr(exc, "smtp_code", None) or 0


def _reply(exc):
    text = getattr(exc, "smtp_error", b"")
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{_code(exc)} {text}".strip()


class Connection:
    """One SMTP session with the relay; :meth:`send` may be called for many messages."""

    def __init__(self, settings: MailSettings, local_hostname=None):
        self.settings = settings
        self._local_hostname = local_hostname
        self._smtp = None

    def open(self):
        """Connect, EHLO, STARTTLS and log in as configured; raises RelayUnavailable."""
        s = self.settings
        try:
            smtp = smtplib.SMTP(s.host, s.port, local_hostname=self._local_hostname,
                                timeout=s.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise RelayUnavailable(f"cannot connect to the mail relay {s.host}:{s.port}: "
                                   f"{exc}") from None
        self._smtp = smtp
        try:
            smtp.ehlo()
            encrypted = False
            if s.starttls != "no":
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=s.tls_context())
                    smtp.ehlo()
                    encrypted = True
                elif s.starttls == "required":
                    raise RelayUnavailable(f"the mail relay {s.host}:{s.port} does not offer "
                                           "STARTTLS, which [mail] starttls = required asks for")
            if s.username:
                if not encrypted and not is_loopback_host(s.host):
                    raise RelayUnavailable(
                        f"not sending the SMTP password in clear text to {s.host}: set "
                        "[mail] starttls = required (or yes), or use a relay on this machine")
                smtp.login(s.username, s.password)
        except RelayUnavailable:
            self.close()
            raise
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            raise RelayUnavailable(f"the mail relay refused the login of {s.username!r}: "
                                   f"{_reply(exc)}") from None
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            self.close()
            raise RelayUnavailable(f"the mail relay {s.host}:{s.port} could not be used: "
                                   f"{type(exc).__name__}: {exc}") from None
        return self

    def send(self, message: EmailMessage):
        """Hand ``message`` to the relay for its To addresses. Raises TemporaryRefusal,
        PermanentRefusal or RelayUnavailable (the connection is then closed); returns the
        addresses the relay refused while taking the message for the others."""
        if self._smtp is None:
            raise RelayUnavailable("not connected")
        sender = parseaddr(message["From"])[1]
        recipients = addresses(message["To"])
        try:
            refused = self._smtp.send_message(message, from_addr=sender, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            replies = list(exc.recipients.values())
            text = "; ".join(f"{addr}: {code} {_text(reply)}"
                             for addr, (code, reply) in exc.recipients.items())
            if all(500 <= code < 600 for code, _ in replies):
                raise PermanentRefusal(f"recipient refused: {text}") from None
            raise TemporaryRefusal(f"recipient refused for now: {text}") from None
        except smtplib.SMTPSenderRefused as exc:
            # The relay will not take our From: a setting to fix, not this message's fault.
            raise TemporaryRefusal(f"the relay refused the sender {sender}: "
                                   f"{_reply(exc)}") from None
        except smtplib.SMTPDataError as exc:
            if 500 <= _code(exc) < 600:
                raise PermanentRefusal(f"message refused: {_reply(exc)}") from None
            if _code(exc) == 421:
                self.close()
                raise RelayUnavailable(f"the relay is closing: {_reply(exc)}") from None
            raise TemporaryRefusal(f"message refused for now: {_reply(exc)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentRefusal(f"the relay cannot take this message: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            if 500 <= _code(exc) < 600:
                raise PermanentRefusal(f"message refused: {_reply(exc)}") from None
            raise RelayUnavailable(f"the relay answered {_reply(exc)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise RelayUnavailable(f"the connection to the mail relay failed: "
                                   f"{type(exc).__name__}: {exc}") from None
        return {addr: f"{code} {_text(reply)}" for addr, (code, reply) in refused.items()}

    def close(self):
        """QUIT (or just drop the connection when the relay is gone); never raises."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            try:
                smtp.close()
            except OSError:
                pass

    def __enter__(self):
        return self.open() if self._smtp is None else self

    def __exit__(self, *exc_info):
        self.close()


def _text(reply):
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
