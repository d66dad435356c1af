"""The outbox: e-mails to customers and staff, written once, sent by the worker's pass.

:func:`queue` renders a message (text and HTML, in the customer's language) and writes it
to the ``outbox`` table once per ``(purpose, object_key)``: the unique index decides, so two
processes that queue the same notice at the same moment write one row, and a second call
is a cheap no-op. :func:`send_due` hands due messages to the mail relay (services/mail.py):
each is claimed by a conditional UPDATE (its ``tries`` as read, a lease on ``next_try_at``)
so that two workers never send one message twice; a failure keeps it queued with an
exponential backoff (:data:`BACKOFF_MINUTES`), a ``5xx`` for its recipient marks it failed.
Nothing here raises into the charge worker because mail is down.

The helpers (:func:`decline`, :func:`autopay_stopped`, :func:`reminder`, :func:`receipt`,
:func:`card_added`, :func:`card_removed`, :func:`expiring_cards`, :func:`run_summary`) build
each message's values and key from the add-on's own rows and never raise: a message that
cannot be queued (Splynx not answering, no e-mail address) is logged, and calling again later
is safe. docs/messages.md lists every message, its key and its values.

Templates: ``templates/mail/<language>/<purpose>.txt`` (its ``{% set subject %}`` is the
subject) and ``.html``, each overridable by the file of the same name under ``[mail]
templates`` (``/etc/splynx-ippay/mail/<language>/...``). Only masked cards ever reach a
template (:func:`_template_value`), and a rendered message that still holds what looks like a
card number is refused (:func:`looks_like_card_number`).
"""

import base64
import calendar
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import re
import socket
import threading
import weakref
from dataclasses import dataclass
from email.utils import formataddr, parseaddr
from typing import NamedTuple, Optional

import jinja2
from markupsafe import Markup
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from .. import catalogues
from ..cache import TTLCache
from ..config import LANGUAGES
from ..db import session_scope
from ..messages import Sentence
from ..models import Card, MessageStatus, OutboxMessage, utcnow
from ..money import format_cents
from . import customers, mail
from .mail import MailSettings

log = logging.getLogger(__name__)

#: Every message the add-on sends (a template pair per language for each).
PURPOSES = ("decline", "autopay_stopped", "reminder", "receipt", "card_added", "card_removed",
            "expiring", "run_summary", "ach_returned", "bank_account_added",
            "bank_account_removed")
#: Minutes to wait after the 1st, 2nd, 3rd … failed try; the last value repeats.
BACKOFF_MINUTES = (1, 5, 30, 120)
#: Tries after which a message that could not be delivered is marked failed (about three
#: days of a relay that is down or keeps answering 4xx).
MAX_TRIES = 40
#: How long a claimed message is held by the sender that claimed it (a sender that dies
#: while sending leaves it to be sent again after this).
CLAIM_MINUTES = 10
#: Cards expiring within this many days (to the last day of their expiry month) are told.
EXPIRY_NOTICE_DAYS = 30
#: The partner whose company information signs messages that concern no customer.
DEFAULT_PARTNER_ID = 1
#: Pages of the add-on the messages link to (under the public Splynx address).
CARDS_PATH = "/ippay/cards"
RUN_PATH = "/ippay/admin/runs/{run_id}"

_TEMPLATE_ROOT_NAME = os.path.join("templates", "mail")
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SHARE_ROOT = "/usr/share/splynx-ippay"

#: Thirteen to nineteen digits standing alone (not part of a longer word such as a hex
#: signature), spaces or dashes between them allowed: a card number.
_CARD_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])")

#: Long dates as people write them.
_MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre"),
}
#: What the ISP is called when Splynx's company information has no name.
_NO_COMPANY_NAME = {"en": "your Internet provider", "es": "su proveedor de Internet"}


# --- the catalogue ------------------------------------------------------------------------

def translator(language):
    """The catalogue of ``language`` the customer pages use (catalogues.py), for the
    sentences a message carries (a decline's reason); English is the text itself."""
    return catalogues.translations(language)


def _say(language, message):
    """A Sentence or an English text in ``language``."""
    translations = translator(language)
    if isinstance(message, Sentence):
        return message.render(translations)
    return translations.gettext(str(message)) if message else ""


# --- templates ----------------------------------------------------------------------------

def packaged_templates(settings=None):
    """The directory of the packaged templates: beside the package in a source checkout,
    under /usr/share when installed (``ASSET_ROOT`` overrides, as for the pages)."""
    root = (settings or {}).get("ASSET_ROOT")
    if not root:
        root = _SOURCE_ROOT if os.path.isdir(os.path.join(_SOURCE_ROOT, _TEMPLATE_ROOT_NAME)) \
            else _SHARE_ROOT
    return os.path.join(root, _TEMPLATE_ROOT_NAME)


def long_date(value, language="en"):
    """``2026-12-05`` → ``December 5, 2026`` / ``5 de diciembre de 2026``."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    months = _MONTHS.get(language, _MONTHS["en"])
    month = months[value.month - 1]
    if language == "es":
        return f"{value.day} de {month} de {value.year}"
    return f"{month} {value.day}, {value.year}"


def month_year(value, language="en"):
    """``2026-12-31`` → ``December 2026`` / ``diciembre de 2026``."""
    months = _MONTHS.get(language, _MONTHS["en"])
    month = months[value.month - 1]
    return f"{month} de {value.year}" if language == "es" else f"{month} {value.year}"


def _timestamp(value):
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return "" if value is None else str(value)


@functools.lru_cache(maxsize=64)
def _environment(directories, language, html):
    # <dir>/<language>/ first; shared pieces (the HTML frame) in <dir>/ itself.
    search = [os.path.join(d, language) for d in directories] + list(directories)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search), autoescape=html, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["date"] = functools.partial(long_date, language=language)
    env.filters["month"] = functools.partial(month_year, language=language)
    env.filters["timestamp"] = _timestamp
    translations = translator(language)

    def translate(text, **values):
        text = translations.gettext(text)
        return text.format(**values) if values else text

    env.globals.update(_=translate, ngettext=translations.ngettext, language=language)
    return env


class Rendered(NamedTuple):
    subject: str
    text: str
    html: str


def _tidy_text(text):
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return text + "\n"


def _render_with(directories, purpose, language, values):
    text_env = _environment(directories, language, False)
    module = text_env.get_template(f"{purpose}.txt").make_module(values)
    subject = " ".join(str(getattr(module, "subject", "")).split())
    if not subject:
        raise jinja2.TemplateError(f"{language}/{purpose}.txt sets no subject")
    text = _tidy_text(str(module))
    html_env = _environment(directories, language, True)
    html = html_env.get_template(f"{purpose}.html").render(dict(values, subject=subject))
    return Rendered(subject, text, html)


def render(purpose, language, values, *, override_dir=None, packaged_dir=None):
    """The subject, text and HTML of ``purpose`` in ``language`` with ``values``.

    Templates in ``override_dir`` (``[mail] templates``) are used instead of the packaged
    ones of the same name; an override that fails to render (a typo, a value it names that
    does not exist) is logged and the packaged template is used, so a message is never lost
    to an edit.
    """
    packaged = packaged_dir or packaged_templates()
    if override_dir and os.path.isdir(os.path.join(override_dir, language)):
        try:
            return _render_with((override_dir, packaged), purpose, language, values)
        except jinja2.TemplateError as exc:
            log.error("the mail template %s/%s of %s cannot be used (%s); the packaged one "
                      "is used instead", language, purpose, override_dir, exc)
    return _render_with((packaged,), purpose, language, values)


def looks_like_card_number(text):
    """True when ``text`` holds 13 to 19 digits in a row (spaces or dashes between them
    allowed) that pass the Luhn check, as a card number does."""
    from .cards import luhn_valid  # here: services/cards.py imports this module

    return any(luhn_valid(re.sub(r"\D", "", m.group())) for m in _CARD_NUMBER.finditer(text))


# --- values that may reach a template -----------------------------------------------------

class CardView(NamedTuple):
    """What a template may show of a saved card."""

    masked: str
    brand: str
    last4: str
    expiry: str

    def __str__(self):
        return self.masked

    def __html__(self):
        return Markup.escape(self.masked)


def card_view(card):
    """The masked view of a Card row (or of a CardView, or a masked text as it is)."""
    if card is None or isinstance(card, CardView):
        return card
    if isinstance(card, Card):
        return CardView(card.masked, card.brand, card.last4, card.expiry)
    if isinstance(card, str):
        return card
    raise TypeError(f"a card reaches a template only as a Card row, a CardView or its "
                    f"masked text, not {type(card).__name__}")


class Link(NamedTuple):
    """A path of the add-on (``/ippay/...``) that becomes a link under the public Splynx
    address (None in the template when no public address is known)."""

    path: str


def _template_value(value, language, base=""):
    """A value as a template gets it: a Card masked, a Sentence in the language, a Link
    made absolute, lists and dicts of those; anything else that is not plain data is
    refused."""
    if isinstance(value, Link):
        return base + value.path if base else None
    if isinstance(value, Card):
        return card_view(value)
    if isinstance(value, Sentence):
        return _say(language, value)
    if isinstance(value, (str, int, float, bool, dt.date, dt.datetime, CardView)) \
            or value is None:
        return value
    if isinstance(value, dict):
        return {k: _template_value(v, language, base) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_template_value(v, language, base) for v in value]
    raise TypeError(f"{type(value).__name__} cannot be given to a mail template")


# --- who writes, to whom, and the links ---------------------------------------------------

class Sender(NamedTuple):
    sender: str
    reply_to: Optional[str]
    company_name: str
    company: dict
    public_url: str


#: Company information by partner, per Splynx client, for a few minutes.
_company_caches = weakref.WeakKeyDictionary()
_company_lock = threading.Lock()


def _company_info(ctx, partner_id):
    with _company_lock:
        cache = _company_caches.get(ctx.splynx)
        if cache is None:
            cache = _company_caches[ctx.splynx] = TTLCache(300.0, max_entries=1000)
    return cache.get_or_load(partner_id, lambda: ctx.splynx.get_company_info(partner_id))


def forget_company_info(ctx):
    """Read Splynx's company information again at the next message (after it changed)."""
    with _company_lock:
        _company_caches.pop(ctx.splynx, None)


def _module_setting(ctx, name, default):
    """A module setting the messages need (docs/messages.md), or its default while
    services/settings.py does not have it."""
    return getattr(ctx.module_settings.current(), name, default)


def public_url(ctx, company=None):
    """The address customers reach Splynx at: the partner's ``splynx_url`` (Splynx's company
    information), else the module setting ``public_url``; empty when neither is set (the
    messages then carry no links)."""
    for candidate in ((company.splynx_url if company is not None else ""),
                      _module_setting(ctx, "public_url", "")):
        candidate = (candidate or "").strip().rstrip("/")
        if not candidate:
            continue
        if not re.match(r"^https?://", candidate):
            candidate = "https://" + candidate
        return candidate
    return ""


def _format_mailbox(name, address):
    return formataddr((name, address)) if name else address


def _sender(ctx, partner_id, language):
    company = _company_info(ctx, partner_id)
    name = company.company_name or _NO_COMPANY_NAME.get(language, _NO_COMPANY_NAME["en"])
    configured = ctx.settings.get("MAIL_FROM") or ""
    own = company.email.strip() if company.email else ""
    if own:
        try:
            own = mail.addresses(own)[0]
        except ValueError:
            log.warning("the company e-mail of partner %s is not an address: %r", partner_id, own)
            own = ""
    if configured:
        sender = configured if "<" in configured else _format_mailbox(company.company_name,
                                                                     configured)
    elif own:
        sender = _format_mailbox(company.company_name, own)
    else:
        sender = _format_mailbox(company.company_name, f"splynx-ippay@{socket.getfqdn()}")
        log.warning("neither [mail] from nor a company e-mail of partner %s is set: mail is "
                    "sent from %s", partner_id, sender)
    reply_to = ctx.settings.get("MAIL_REPLY_TO") or None
    if reply_to is None and own and own.lower() != _address_of(sender).lower():
        reply_to = _format_mailbox(company.company_name, own)
    details = {"name": name, "email": own, "phone": company.phone,
               "address": list(company.address_lines)}
    return Sender(sender, reply_to, name, details, public_url(ctx, company))


def _address_of(mailbox):
    return parseaddr(mailbox)[1]


def _recipient_of(customer):
    """The customer's billing e-mail, else their e-mail (Splynx may hold several, comma
    separated: each gets the message)."""
    for field in (customer.billing_email, customer.email):
        field = (field or "").strip()
        if field:
            return field
    return ""


def _language(ctx, language):
    language = language or ctx.module_settings.current().language
    return language if language in LANGUAGES else "en"


# --- queueing -----------------------------------------------------------------------------

def _exists(ctx, purpose, object_key):
    with session_scope(ctx.sessions) as session:
        return session.execute(
            select(OutboxMessage.id).where(OutboxMessage.purpose == purpose,
                                           OutboxMessage.object_key == object_key)
        ).first() is not None


def queue(ctx, purpose, object_key, *, to=None, customer_id=None, values, language=None,
          partner_id=None) -> Optional[OutboxMessage]:
    """Render ``purpose`` with ``values`` and queue it once for ``(purpose, object_key)``.

    The recipient is ``to``, else the billing e-mail (else the e-mail) of the Splynx
    customer ``customer_id``; without one nothing is queued (logged). The language is
    ``language``, else the module setting ``language``. From and Reply-To come from
    Splynx's company information of the customer's partner (``partner_id`` for messages
    about no customer; partner 1 by default), or ``[mail] from`` / ``reply_to``.

    Returns the queued row, or None when nothing was queued: the key was queued before (by
    this process or another: the unique index decides), there is no address, or the
    rendered text holds what looks like a card number (refused, logged). Raises
    SplynxError when Splynx cannot be read (nothing queued; calling again later is safe)
    and TypeError for a value that may not reach a template.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown message purpose {purpose!r}")
    object_key = str(object_key)
    if len(object_key) > 80:
        raise ValueError("object_key is at most 80 characters")
    if _exists(ctx, purpose, object_key):
        return None
    language = _language(ctx, language)
    customer = customers.customer(ctx, customer_id) if customer_id is not None else None
    recipient = (to if isinstance(to, str) else ", ".join(to or ())) or \
        (_recipient_of(customer) if customer is not None else "")
    if not recipient:
        log.info("no %s message for %s: customer %s has no e-mail address", purpose,
                 object_key, customer_id)
        return None
    try:
        recipient = ", ".join(mail.addresses(recipient))
    except ValueError as exc:
        log.warning("no %s message for %s: %s", purpose, object_key, exc)
        return None
    if len(recipient) > 255:
        log.warning("no %s message for %s: too many addresses", purpose, object_key)
        return None
    partner = partner_id or (customer.partner_id if customer is not None else None) \
        or DEFAULT_PARTNER_ID
    who = _sender(ctx, partner, language)
    config = ctx.module_settings.current()
    sign = config.currency_sign

    context = {
        "isp": who.company_name, "company": who.company, "language": language,
        "customer_name": customer.name if customer is not None else "",
        "public_url": who.public_url,
        "portal_url": who.public_url + CARDS_PATH if who.public_url else None,
        "currency_sign": sign,
    }
    context.update({k: _template_value(v, language, who.public_url) for k, v in values.items()})
    context["money"] = lambda cents: format_cents(cents or 0, sign)
    rendered = render(purpose, language, context, override_dir=ctx.settings.get("MAIL_TEMPLATES"),
                      packaged_dir=packaged_templates(ctx.settings))
    if any(looks_like_card_number(part) for part in rendered):
        log.error("the %s message for %s was not queued: its text holds what looks like a "
                  "card number (check the values and the templates)", purpose, object_key)
        return None
    row = OutboxMessage(purpose=purpose, object_key=object_key, recipient=recipient,
                        sender=who.sender, reply_to=who.reply_to, language=language,
                        subject=rendered.subject[:255], body_text=rendered.text,
                        body_html=rendered.html, status=MessageStatus.QUEUED, tries=0,
                        next_try_at=utcnow())
    try:
        with session_scope(ctx.sessions) as session:
            session.add(row)
    except IntegrityError:
        return None
    log.info("queued the %s message %s for %s", purpose, object_key, customer_id or recipient)
    return row


# --- sending ------------------------------------------------------------------------------

@dataclass
class SendCounts:
    """What one :func:`send_due` pass did."""

    #: Handed to the relay.
    sent: int = 0
    #: Still queued, tried again later (relay down, 4xx).
    deferred: int = 0
    #: Given up: refused for good (5xx), or too many tries.
    failed: int = 0


def backoff(tries):
    """The wait after the ``tries``-th failed try."""
    index = min(max(tries, 1), len(BACKOFF_MINUTES)) - 1
    return dt.timedelta(minutes=BACKOFF_MINUTES[index])


def message_id(row):
    """The Message-ID of an outbox row: the same on every try (a copy sent again after a
    crash is recognisable as the same message)."""
    digest = base64.b32encode(hashlib.sha256(f"{row.purpose}:{row.object_key}".encode())
                              .digest()[:10]).decode().lower()
    return f"<splynx-ippay.{row.id}.{digest}@{mail.domain_of(row.sender)}>"


def mime_message(row, now=None):
    """The MIME message of an outbox row, as it is sent."""
    now = (now or utcnow()).replace(tzinfo=dt.timezone.utc)
    return mail.build_message(sender=row.sender, recipient=row.recipient, subject=row.subject,
                              text=row.body_text, html=row.body_html, reply_to=row.reply_to,
                              language=row.language, message_id=message_id(row), date=now)


def _due(ctx, limit, now):
    with session_scope(ctx.sessions) as session:
        return session.execute(
            select(OutboxMessage.id, OutboxMessage.tries)
            .where(OutboxMessage.status == MessageStatus.QUEUED, OutboxMessage.next_try_at <= now)
            .order_by(OutboxMessage.next_try_at, OutboxMessage.id).limit(limit)).all()


def _claim(ctx, message_id_, tries, now):
    """The row, if this sender took it (its tries as read, still due); else None."""
    with session_scope(ctx.sessions) as session:
        taken = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id_, OutboxMessage.status == MessageStatus.QUEUED,
                   OutboxMessage.tries == tries, OutboxMessage.next_try_at <= now)
            .values(tries=tries + 1, next_try_at=now + dt.timedelta(minutes=CLAIM_MINUTES))
            .execution_options(synchronize_session=False)).rowcount == 1
        return session.get(OutboxMessage, message_id_) if taken else None


def _finish(ctx, row_id, tries, **values):
    """Write the outcome of a claimed message while the claim is still this sender's."""
    with session_scope(ctx.sessions) as session:
        session.execute(update(OutboxMessage)
                        .where(OutboxMessage.id == row_id, OutboxMessage.tries == tries,
                               OutboxMessage.status == MessageStatus.QUEUED)
                        .values(**values).execution_options(synchronize_session=False))


def _later(tries, error, now):
    """The fields of a message that failed its ``tries``-th try for now."""
    if tries >= MAX_TRIES:
        return {"status": MessageStatus.FAILED, "last_error": f"gave up after {tries} tries: "
                                                              f"{error}"[:2000]}
    return {"next_try_at": now + backoff(tries), "last_error": error[:2000]}


def _count(counts, fields):
    if fields.get("status") == MessageStatus.FAILED:
        counts.failed += 1
    else:
        counts.deferred += 1


def _defer_unclaimed(ctx, row_id, tries, fields, now):
    """A due message not tried because the relay is down: counted as a try, waits (or is
    failed, after its last); False when another sender has it."""
    with session_scope(ctx.sessions) as session:
        return session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, OutboxMessage.status == MessageStatus.QUEUED,
                   OutboxMessage.tries == tries, OutboxMessage.next_try_at <= now)
            .values(tries=tries + 1, **fields)
            .execution_options(synchronize_session=False)).rowcount == 1


def send_due(ctx, limit=100, now=None) -> SendCounts:
    """Send up to ``limit`` queued messages whose ``next_try_at`` has come; never raises.

    One connection to the relay serves the pass. A message the relay takes is marked sent;
    one refused for good (a 5xx for its recipient, or for its content) is marked failed;
    anything else (the relay down, a 4xx) keeps it queued, tried again after
    :func:`backoff`, failed after :data:`MAX_TRIES`. When the relay cannot be reached, the
    other due messages wait too (each counting a try) and the pass ends at once: the
    charge worker calling this every pass is held up by at most one connection timeout.
    """
    counts = SendCounts()
    now = now or utcnow()
    try:
        _send_due(ctx, limit, now, counts)
    except Exception:  # noqa: BLE001 - mail must never stop the caller (the charge worker)
        log.exception("sending queued e-mails failed; they stay queued")
    return counts


def _send_due(ctx, limit, now, counts):
    due = _due(ctx, limit, now)
    if not due:
        return
    connection = mail.Connection(MailSettings.from_settings(ctx.settings))
    opened = False
    try:
        for index, (row_id, tries) in enumerate(due):
            row = _claim(ctx, row_id, tries, now)
            if row is None:  # another sender has it, or sent it
                continue
            try:
                if not opened:
                    connection.open()
                    opened = True
                refused = connection.send(mime_message(row, now))
            except mail.RelayUnavailable as exc:
                error = str(exc)
                log.warning("e-mail not sent, the relay is unavailable: %s", error)
                fields = _later(row.tries, error, now)
                _finish(ctx, row.id, row.tries, **fields)
                _count(counts, fields)
                for other_id, other_tries in due[index + 1:]:
                    fields = _later(other_tries + 1, error, now)
                    if _defer_unclaimed(ctx, other_id, other_tries, fields, now):
                        _count(counts, fields)
                return
            except mail.PermanentRefusal as exc:
                log.warning("the %s message %s to %s was refused for good: %s", row.purpose,
                            row.object_key, row.recipient, exc)
                _finish(ctx, row.id, row.tries, status=MessageStatus.FAILED,
                        last_error=str(exc)[:2000])
                counts.failed += 1
            except (mail.TemporaryRefusal, ValueError) as exc:
                fields = _later(row.tries, str(exc), now)
                if isinstance(exc, ValueError):  # an address that cannot be sent to
                    fields = {"status": MessageStatus.FAILED, "last_error": str(exc)[:2000]}
                log.info("the %s message %s waits: %s", row.purpose, row.object_key, exc)
                _finish(ctx, row.id, row.tries, **fields)
                _count(counts, fields)
            else:
                note = ("refused by the relay for " + "; ".join(
                    f"{a}: {r}" for a, r in refused.items())) if refused else None
                _finish(ctx, row.id, row.tries, status=MessageStatus.SENT, sent_at=utcnow(),
                        last_error=note)
                counts.sent += 1
    finally:
        connection.close()


# --- the messages -------------------------------------------------------------------------

def _safely(purpose, key, call):
    try:
        return call()
    except Exception:  # noqa: BLE001 - telling a customer never breaks what they did
        log.exception("the %s message %s could not be queued (it may be queued again later)",
                      purpose, key)
        return None


class DocumentRef(NamedTuple):
    """What a direct pay link needs of a document."""

    id: int
    number: str


def pay_link(ctx, attempt):
    """The signed direct pay link of the attempt's invoice or proforma, as a :class:`Link`
    (None for balance payments and refills, or when direct links are off)."""
    from .payments import direct_link  # here: payments → cards → this module

    kind = attempt.document_kind
    if kind is None or attempt.document_id is None:
        return None
    if ctx.module_settings.current().direct_links == "off":
        return None
    return Link(direct_link(ctx, kind, DocumentRef(attempt.document_id,
                                                   attempt.document_number or "")))


def _sentence(text):
    """An English text (as the journal keeps a decline's message) made a Sentence, so
    that it is written in the message's language."""
    return text if isinstance(text, Sentence) or not text else Sentence(str(text))


def _masked(attempt, card=None):
    if card is not None:
        return card_view(card)
    return attempt.masked_card or ""


def decline(ctx, attempt, *, retry_on=None, reason=None, card=None):
    """Tell the customer an automatic charge was declined (key ``attempt:<id>``): the
    masked card, amount, invoice number, the reason in plain words (``reason``, a Sentence
    or English text, else the attempt's message), the next try on ``retry_on`` (a date) or
    "we will not try again" (None), and a signed pay link."""
    key = f"attempt:{attempt.id}"

    return _safely("decline", key, lambda: queue(
        ctx, "decline", key, customer_id=attempt.customer_id, values={
            "card": _masked(attempt, card), "amount_cents": attempt.amount_cents,
            "invoice_number": attempt.document_number or "",
            "reason": _sentence(reason if reason is not None else
                                (attempt.message or _DEFAULT_DECLINE)),
            "retry_on": retry_on, "pay_url": pay_link(ctx, attempt)}))


_DEFAULT_DECLINE = ("Your card issuer declined the payment. Please use another card or "
                    "contact your bank.")


def autopay_stopped(ctx, card, *, declines, reason=None, key=None):
    """Tell the customer automatic payments stopped using ``card`` after ``declines`` hard
    declines in a row (key ``card:<id>:<today>`` unless ``key``)."""
    key = key or f"card:{card.id}:{ctx.today().isoformat()}"
    return _safely("autopay_stopped", key, lambda: queue(
        ctx, "autopay_stopped", key, customer_id=card.customer_id, values={
            "card": card_view(card), "declines": int(declines),
            "reason": _sentence(reason or "")}))


def reminder(ctx, *, customer_id, card, amount_cents, charge_on, invoice_id=None,
             invoice_number=None, key=None):
    """Tell the customer an automatic charge is coming on ``charge_on`` (key
    ``invoice:<id>:<charge_on>``, or ``balance:<customer>:<charge_on>``, unless ``key``)."""
    key = key or (f"invoice:{invoice_id}:{charge_on.isoformat()}" if invoice_id is not None
                  else f"balance:{customer_id}:{charge_on.isoformat()}")
    days = max((charge_on - ctx.today()).days, 0)
    return _safely("reminder", key, lambda: queue(
        ctx, "reminder", key, customer_id=customer_id, values={
            "card": card_view(card), "amount_cents": int(amount_cents), "charge_on": charge_on,
            "days": days, "invoice_number": invoice_number or ""}))


def receipt(ctx, attempt, *, card=None):
    """A payment receipt (key ``attempt:<id>``), when the module setting ``receipts`` is on:
    amount, invoice, masked card, the reference (the IPpay TransactionID)."""
    if not _module_setting(ctx, "receipts", False):
        return None
    key = f"attempt:{attempt.id}"
    paid_on = attempt.updated_at.date() if attempt.updated_at else ctx.today()
    return _safely("receipt", key, lambda: queue(
        ctx, "receipt", key, customer_id=attempt.customer_id, values={
            "card": _masked(attempt, card), "amount_cents": attempt.charged_cents,
            "invoice_number": attempt.document_number or "", "reference": attempt.transaction_id,
            "approval": attempt.approval or "", "paid_on": paid_on}))


def ach_returned(ctx, attempt, *, reason, fee_cents=0, stops_autopay=False):
    """Tell the customer their bank returned a debit (key ``attempt:<id>``): the masked
    account, amount, invoice, the bank's reason (``reason``, English, written in the
    message's language), the fee booked (cents, 0: none), whether automatic debits of the
    account stopped, and a signed pay link."""
    key = f"attempt:{attempt.id}"
    return _safely("ach_returned", key, lambda: queue(
        ctx, "ach_returned", key, customer_id=attempt.customer_id, values={
            "account": attempt.masked_card or "", "amount_cents": attempt.amount_cents,
            "invoice_number": attempt.document_number or "", "code": attempt.return_code or "",
            "reason": _sentence(reason), "fee_cents": int(fee_cents or 0),
            "stops_autopay": bool(stops_autopay), "reference": attempt.transaction_id,
            "pay_url": pay_link(ctx, attempt)}))


def card_added(ctx, card):
    """Tell the customer a card was saved (key ``card:<id>``)."""
    key = f"card:{card.id}"
    return _safely("card_added", key, lambda: queue(
        ctx, "card_added", key, customer_id=card.customer_id, values={
            "card": card_view(card), "expiry": card.expiry, "added_on": ctx.today(),
            "autopay": bool(getattr(card, "autopay", False))}))


def card_removed(ctx, card):
    """Tell the customer a card was removed (key ``card:<id>``); ``card`` may be the row
    just deleted (its attributes are still loaded)."""
    key = f"card:{card.id}"
    return _safely("card_removed", key, lambda: queue(
        ctx, "card_removed", key, customer_id=card.customer_id, values={
            "card": card_view(card), "removed_on": ctx.today()}))


def bank_account_added(ctx, account):
    """Tell the customer a bank account was saved with their debit authorisation (key
    ``bank:<id>``): the masked account and routing number, whether autopay uses it."""
    key = f"bank:{account.id}"
    return _safely("bank_account_added", key, lambda: queue(
        ctx, "bank_account_added", key, customer_id=account.customer_id, values={
            "account": card_view(account), "routing": account.masked_routing,
            "added_on": ctx.today(), "autopay": bool(account.autopay)}))


def bank_account_removed(ctx, account):
    """Tell the customer a bank account was removed and its authorisation ended (key
    ``bank:<id>``); ``account`` may be the row just deleted."""
    key = f"bank:{account.id}"
    return _safely("bank_account_removed", key, lambda: queue(
        ctx, "bank_account_removed", key, customer_id=account.customer_id, values={
            "account": card_view(account), "routing": account.masked_routing,
            "removed_on": ctx.today()}))


def expiry_date(card):
    """The last day a card may be used (the end of its expiry month)."""
    return dt.date(card.exp_year, card.exp_month,
                   calendar.monthrange(card.exp_year, card.exp_month)[1])


def expiring_cards(ctx, today=None):
    """Queue the ``expiring`` notice of every saved card whose expiry month ends within
    :data:`EXPIRY_NOTICE_DAYS` days of ``today`` (not yet expired), once per card and expiry
    (key ``card:<id>:<yyyy-mm>``); customers Splynx calls ``disabled`` are not told.
    Cards already told are not read again, so calling this daily (or more often) is cheap.
    Returns how many were queued; never raises (Splynx not answering: the rest wait for the
    next call)."""
    today = today or ctx.today()
    months = []
    year, month = today.year, today.month
    for _ in range(3):
        last = dt.date(year, month, calendar.monthrange(year, month)[1])
        if 0 <= (last - today).days <= EXPIRY_NOTICE_DAYS:
            months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    if not months:
        return 0
    try:
        with session_scope(ctx.sessions) as session:
            cards = session.execute(
                select(Card).where(or_(*[and_(Card.exp_year == y, Card.exp_month == m)
                                         for y, m in months])).order_by(Card.id)).scalars().all()
            told = set(session.execute(
                select(OutboxMessage.object_key).where(
                    OutboxMessage.purpose == "expiring",
                    or_(*[OutboxMessage.object_key.like(f"card:%:{y:04d}-{m:02d}")
                          for y, m in months]))
            ).scalars())
    except Exception:  # noqa: BLE001
        log.exception("expiring cards could not be read")
        return 0
    queued = 0
    for card in cards:
        key = _expiry_key(card)
        if key in told:
            continue
        try:
            customer = customers.customer(ctx, card.customer_id)
            if customer.status == "disabled":
                continue
            row = queue(ctx, "expiring", key, customer_id=card.customer_id, values={
                "card": card_view(card), "expiry": card.expiry,
                "expires_on": expiry_date(card), "autopay": bool(getattr(card, "autopay", False))})
        except Exception:  # noqa: BLE001
            log.exception("expiring-card notices stopped at card %s; the rest wait", card.id)
            break
        queued += row is not None
    return queued


def _expiry_key(card):
    return f"card:{card.id}:{card.exp_year:04d}-{card.exp_month:02d}"


class Declines(NamedTuple):
    """One line of a run summary's declines: a reason, how many, how much."""

    reason: str
    count: int
    cents: int
    #: ``hard`` or ``soft`` (ippay.codes), or empty.
    category: str = ""


def run_summary(ctx, run, *, charged_count, charged_cents, declined=(), errors=(),
                skipped_count=0, findings=(), recipients=None, language="en"):
    """Send staff the summary of a finished run (key ``run:<id>:<recipient hash>``, one
    message per address): charged (count, amount), declines by reason (:class:`Declines`
    or ``(reason, count, cents[, category])``), errors (texts), the reconciliation's
    ``findings`` (texts) and a link to the run page. ``recipients`` default to the module
    setting ``staff_emails``. Staff messages are in English unless ``language``.
    Returns the messages queued."""
    recipients = recipients if recipients is not None else \
        _module_setting(ctx, "staff_emails", ())
    if isinstance(recipients, str):
        recipients = [r for r in re.split(r"[,;\s]+", recipients) if r]
    lines = [Declines(*d) if not isinstance(d, Declines) else d for d in declined]
    errors = [str(e) for e in errors]
    queued = []
    for address in recipients:
        digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()[:12]
        key = f"run:{run.id}:{digest}"

        def build(address=address, key=key):
            return queue(ctx, "run_summary", key, to=address, partner_id=_run_partner(run),
                         language=language, values={
                             "run_id": run.id, "source": run.source or "",
                             "period_from": run.period_from, "period_to": run.period_to,
                             "started_at": run.started_at, "finished_at": run.finished_at,
                             "run_url": Link(RUN_PATH.format(run_id=run.id)),
                             "charged_count": int(charged_count),
                             "charged_cents": int(charged_cents),
                             "declined": [d._asdict() for d in lines],
                             "declined_count": sum(d.count for d in lines),
                             "declined_cents": sum(d.cents for d in lines),
                             "errors": errors[:50], "error_count": len(errors),
                             "skipped_count": int(skipped_count),
                             "findings": [str(f) for f in findings][:50]})
        row = _safely("run_summary", key, build)
        if row is not None:
            queued.append(row)
    return queued


def _run_partner(run):
    try:
        return int(json.loads(run.filters or "{}").get("partner_id") or DEFAULT_PARTNER_ID)
    except (TypeError, ValueError):
        return DEFAULT_PARTNER_ID
