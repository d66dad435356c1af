"""Module settings: what Splynx admins change, kept in Splynx's module config (design.md §5).

Splynx admins edit them under Config → Integrations → Modules list, and the add-on's own
settings page writes them through the API (``admin/config/config?module=add-on&path=
splynx_ippay_addon``, with ``partner_id`` for a partner's own values, as Splynx's
``per_partner_options``). This module is their one home: every key, its default, how a
stored value is read, and the typed, frozen :class:`ModuleConfig` the rest of the add-on
uses. A stored value that cannot be used (typed straight into Splynx, say) is never used:
the default applies — or, for the gateway, nothing is sent — and the problem is listed in
``ModuleConfig.problems`` for the settings page and ``splynx-ippay doctor``.

Changes must reach every process at once: a copy is kept for ``ttl`` seconds, and a version
stamp in the add-on's database (bumped by :meth:`ModuleSettingsStore.save`) makes every
process read Splynx again at its next use after the settings page saved.
"""

import datetime as dt
import logging
import re
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Mapping, NamedTuple, Optional, Tuple

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from ..config import LANGUAGES, terminal_id_problem
from ..db import read_row, session_scope
from ..models import GatewayMode, SettingsStamp, utcnow
from ..splynx import SplynxError
from . import fees as fee_rules

log = logging.getLogger(__name__)

MODULE_NAME = "splynx_ippay_addon"
STATEMENT_GROUPINGS = {"month": "Month", "day": "Day"}
DIRECT_LINK_MODES = ("signed", "open", "off")
#: The module setting ``payment_type``: what customers may save and pay with (splynx §5.2).
PAYMENT_TYPES = {"all": "All", "card": "Credit card", "bank": "Bank account"}
CONCURRENCY_RANGE = (1, 64)
#: The Splynx administrator role allowed to change settings, void and refund by default.
DEFAULT_STAFF_ROLES = ("super-administrator",)


@dataclass(frozen=True)
class CardLimits:
    """The card-testing defences (services/limits.py), per rolling window."""

    #: New cards a customer may try (to save or to pay) per 24 hours.
    new_cards_per_customer_day: int = 5
    #: Declined new-card tries after which a direct pay link pauses ...
    link_declines: int = 3
    #: ... for this many minutes.
    link_pause_minutes: int = 60
    #: New-card tries from one client address per hour, whoever it claims to be.
    tries_per_address_hour: int = 10
    #: Declined new-card tries per customer per 24 hours.
    declines_per_customer_day: int = 5
    #: Saved cards a customer may keep.
    max_saved_cards: int = 10


class Terminal(NamedTuple):
    """An IPpay terminal on one endpoint: where a token is made, and the only place it is
    charged (context.GatewayDirectory turns it into a client)."""

    mode: GatewayMode
    terminal_id: str


@dataclass(frozen=True)
class PartnerSettings:
    """What may differ per Splynx partner: the terminal, its endpoint and the payment method."""

    #: The Terminal ID; None when not set (config.ini's ``[ippay] terminal_id`` applies).
    terminal_id: Optional[str] = None
    #: ``test`` or ``live`` (IPpay's endpoints); None when the stored value is unusable,
    #: in which case nothing is sent to any gateway for this partner.
    gateway_mode: Optional[GatewayMode] = GatewayMode.TEST
    #: Splynx payment method the add-on's payments are recorded with.
    payment_method_id: Optional[int] = None
    #: ... and its bank-account (ACH) payments (splynx §5.2 "Bank Account payment method").
    bank_payment_method_id: Optional[int] = None


@dataclass(frozen=True)
class FeeSettings:
    """Service fees (services/fees.py, docs/fees.md): off while every rate is 0."""

    #: Fee per payment method, in hundredths of a percent (``fee_card_percent`` ...).
    rates: Mapping[str, int] = field(default_factory=lambda: {m: 0 for m in fee_rules.METHODS})
    #: VAT on the fee, in hundredths of a percent.
    vat_rate: int = 0
    #: What the customer sees and what the Splynx fee transaction is called.
    text: str = "Service fee"
    #: The Splynx transaction category of fee transactions; None: the one named
    #: :data:`FEE_CATEGORY_NAME`.
    category_id: Optional[int] = None
    #: Whether automatic payments (autopay schedules and their retries) add the fee.
    autopay: bool = False

    def rate_for(self, method):
        """The :class:`~.fees.FeeRate` of ``method`` (``card``, ``bank``), or None: no fee."""
        rate = self.rates.get(method, 0)
        return fee_rules.FeeRate(rate, self.vat_rate, self.text) if rate else None


#: The category fee transactions are booked in when none is chosen: Splynx's own
#: "Correction", the documented default of the add-on (splynx-platform §2.6, §5.2).
FEE_CATEGORY_NAME = "Correction"


@dataclass(frozen=True)
class ModuleConfig:
    """The module settings as read from Splynx and checked (frozen: never edited in place)."""

    default: PartnerSettings = field(default_factory=PartnerSettings)
    #: Partners whose values differ from the default, by partner id.
    partners: Mapping[int, PartnerSettings] = field(default_factory=dict)
    payment_account_id: Optional[int] = None
    statement_grouping: str = "month"
    refill_min_cents: int = 500
    refill_max_cents: int = 100000
    charge_concurrency: int = 4
    language: str = "en"
    currency: str = "USD"
    currency_sign: str = "$"
    direct_links: str = "signed"
    #: What customers may save and pay with: ``all``, ``card`` or ``bank`` (docs/ach.md).
    payment_type: str = "all"
    #: A fee booked in Splynx when a bank debit is returned (0: none).
    ach_return_fee_cents: int = 0
    staff_roles: Tuple[str, ...] = DEFAULT_STAFF_ROLES
    limits: CardLimits = field(default_factory=CardLimits)
    #: Automatic payments (services/autopay.py, services/dunning.py).
    autopay_schedules: Tuple = ()
    autopay_catch_up_days: int = 3
    retry_at: dt.time = dt.time(6, 0)
    retry_days: Tuple[int, ...] = (1, 3, 7)
    retry_max_tries: int = 4
    autopay_hard_declines: int = 2
    #: Days before an automatic charge a customer who asked is reminded (0: never).
    reminder_days: int = 3
    #: A receipt e-mail after each payment.
    receipts: bool = False
    #: Who gets the summary after each automatic run.
    staff_emails: Tuple[str, ...] = ()
    #: The address customers reach Splynx at, for links in e-mails when the partner's
    #: company information has none (``https://billing.example.net``; empty: no links).
    public_url: str = ""
    #: Service fees (services/fees.py).
    fees: FeeSettings = field(default_factory=FeeSettings)
    #: Stored values that were refused, each a sentence for staff.
    problems: Tuple[str, ...] = ()
    #: False when Splynx could not be read: these are the defaults, not the settings.
    read_ok: bool = True

    def for_partner(self, partner_id):
        """The partner's own settings, or the default ones."""
        return self.partners.get(partner_id, self.default) if partner_id else self.default


# --- reading stored values ----------------------------------------------------------------

def _int(low, high):
    def parse(raw):
        value = int(str(raw).strip())
        if not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return value
    return parse


def _choice(choices):
    def parse(raw):
        value = str(raw).strip().lower()
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(choices))
        return value
    return parse


def _optional_id(raw):
    text = str(raw).strip()
    if text in ("", "0"):
        return None
    return _int(1, 2**31 - 1)(text)


def _terminal(raw):
    text = str(raw).strip()
    if not text:
        return None
    problem = terminal_id_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def _mode(raw):
    return GatewayMode(_choice(("test", "live"))(raw))


def _roles(raw):
    roles = tuple(sorted({r.strip() for r in str(raw).split(",") if r.strip()}))
    if not roles:
        raise ValueError("must name at least one Splynx administrator role")
    return roles


def _days_list(raw):
    parts = [p for p in str(raw).replace(" ", "").split(",") if p]
    if not all(p.isascii() and p.isdigit() and len(p) < 4 for p in parts):
        raise ValueError("must be increasing numbers of days from 1 to 60, e.g. 1,3,7")
    days = tuple(int(p) for p in parts)
    if not days or any(not 1 <= d <= 60 for d in days) or list(days) != sorted(set(days)):
        raise ValueError("must be increasing numbers of days from 1 to 60, e.g. 1,3,7")
    return days


def _time(raw):
    try:
        return dt.time.fromisoformat(str(raw).strip())
    except ValueError:
        raise ValueError("must be a time of day such as 06:00") from None


def _flag(raw):
    text = str(raw).strip().lower()
    if text not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ValueError("must be on or off")
    return text in ("1", "true", "yes", "on")


def _emails(raw):
    found = tuple(e.strip() for e in str(raw).replace(";", ",").split(",") if e.strip())
    if any("@" not in e or " " in e or len(e) > 254 for e in found):
        raise ValueError("must be e-mail addresses separated by commas")
    return found


def _public_url(raw):
    text = str(raw).strip().rstrip("/")
    if text and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", text, re.ASCII):
        raise ValueError("must be an address such as https://billing.example.net")
    return text


def _text(limit):
    def parse(raw):
        text = str(raw).strip()
        if not text or len(text) > limit:
            raise ValueError(f"must be 1 to {limit} characters")
        return text
    return parse


def _fee_rate(raw):
    return fee_rules.parse_rate(raw, fee_rules.MAX_FEE_RATE)


def _vat_rate(raw):
    return fee_rules.parse_rate(raw, fee_rules.MAX_VAT_RATE)


#: Every key the add-on keeps in its module config: (parser, default as stored).
KEYS = {
    "terminal_id": (_terminal, ""),
    "gateway_mode": (_mode, "test"),
    # Splynx's own "Credit card" method until registration stores the add-on's (§2.5).
    "payment_method_id": (_optional_id, 3),
    # Splynx's own "Bank transfer" method until registration stores the add-on's (§5.2).
    "bank_payment_method_id": (_optional_id, 2),
    "payment_type": (_choice(tuple(PAYMENT_TYPES)), "all"),
    "ach_return_fee_cents": (_int(0, 100_000), 0),
    "payment_account_id": (_optional_id, ""),
    "statement_grouping": (_choice(tuple(STATEMENT_GROUPINGS)), "month"),
    "refill_min_cents": (_int(1, 10_000_000), 500),
    "refill_max_cents": (_int(1, 10_000_000), 100000),
    "charge_concurrency": (_int(*CONCURRENCY_RANGE), 4),
    "language": (_choice(tuple(LANGUAGES)), "en"),
    "currency": (_text(3), "USD"),
    "currency_sign": (_text(4), "$"),
    "direct_links": (_choice(DIRECT_LINK_MODES), "signed"),
    "staff_roles": (_roles, ",".join(DEFAULT_STAFF_ROLES)),
    "limit_new_cards_per_customer_day": (_int(1, 1000), 5),
    "limit_link_declines": (_int(1, 100), 3),
    "limit_link_pause_minutes": (_int(1, 10_080), 60),
    "limit_tries_per_address_hour": (_int(1, 10_000), 10),
    "limit_declines_per_customer_day": (_int(1, 1000), 5),
    "limit_max_saved_cards": (_int(1, 100), 10),
    "autopay_schedules": (str, ""),
    "autopay_catch_up_days": (_int(0, 14), 3),
    "retry_at": (_time, "06:00"),
    "retry_days": (_days_list, "1,3,7"),
    "retry_max_tries": (_int(1, 10), 4),
    "autopay_hard_declines": (_int(1, 10), 2),
    "reminder_days": (_int(0, 30), 3),
    "receipts": (_flag, "0"),
    "staff_emails": (_emails, ""),
    "public_url": (_public_url, ""),
    # Service fees (docs/fees.md): a percentage per payment method, 0 = no fee.
    **{f"fee_{method}_percent": (_fee_rate, "0") for method in fee_rules.METHODS},
    "fee_vat_percent": (_vat_rate, "0"),
    "fee_text": (_text(64), "Service fee"),
    "fee_category_id": (_optional_id, ""),
    "fee_autopay": (_flag, "0"),
}
#: The keys a partner may set apart from the default (``per_partner_options``).
PARTNER_KEYS = ("terminal_id", "gateway_mode", "payment_method_id", "bank_payment_method_id")
#: What registration stores when a key is missing (never over an admin's value).
DEFAULTS = {key: default for key, (_, default) in KEYS.items()}


def _read(stored, problems, where=""):
    """``{key: parsed value}`` of every known key in ``stored`` (others ignored)."""
    values = {}
    for key, (parse, default) in KEYS.items():
        raw = stored.get(key, default)
        if raw is None or (raw == "" and key not in ("terminal_id", "payment_account_id",
                                                     "autopay_schedules", "staff_emails",
                                                     "public_url", "fee_category_id")):
            raw = default
        try:
            values[key] = parse(raw)
        except (TypeError, ValueError) as exc:
            problems.append(f"The module setting {key}{where} is {str(raw)[:40]!r}, which "
                            f"cannot be used: it {exc}.")
            values[key] = None if key == "gateway_mode" else parse(default)
    return values


def _partner(values):
    return PartnerSettings(terminal_id=values["terminal_id"], gateway_mode=values["gateway_mode"],
                           payment_method_id=values["payment_method_id"],
                           bank_payment_method_id=values["bank_payment_method_id"])


def parse_config(stored, partner_stored=None):
    """A :class:`ModuleConfig` from the module config as stored (strings), and each
    partner's (``{partner_id: stored values}``, the default overlaid as Splynx returns it)."""
    problems = []
    values = _read(stored, problems)
    default = _partner(values)
    partners = {}
    for partner_id, raw in sorted((partner_stored or {}).items()):
        own = _partner(_read(raw, problems, f" of partner {partner_id}"))
        if own != default:
            partners[partner_id] = own
    if values["refill_min_cents"] > values["refill_max_cents"]:
        problems.append("The refill minimum is above the maximum; the defaults apply.")
        values["refill_min_cents"], values["refill_max_cents"] = 500, 100000
    limits = CardLimits(
        new_cards_per_customer_day=values["limit_new_cards_per_customer_day"],
        link_declines=values["limit_link_declines"],
        link_pause_minutes=values["limit_link_pause_minutes"],
        tries_per_address_hour=values["limit_tries_per_address_hour"],
        declines_per_customer_day=values["limit_declines_per_customer_day"],
        max_saved_cards=values["limit_max_saved_cards"])
    from .autopay import parse_schedules

    schedules, schedule_problems = parse_schedules(values["autopay_schedules"])
    problems.extend(schedule_problems)
    return ModuleConfig(
        autopay_schedules=schedules, autopay_catch_up_days=values["autopay_catch_up_days"],
        retry_at=values["retry_at"], retry_days=values["retry_days"],
        retry_max_tries=values["retry_max_tries"],
        autopay_hard_declines=values["autopay_hard_declines"],
        reminder_days=values["reminder_days"], receipts=values["receipts"],
        staff_emails=values["staff_emails"], public_url=values["public_url"],
        fees=FeeSettings(
            rates={m: values[f"fee_{m}_percent"] for m in fee_rules.METHODS},
            vat_rate=values["fee_vat_percent"], text=values["fee_text"],
            category_id=values["fee_category_id"], autopay=values["fee_autopay"]),
        default=default, partners=partners, payment_account_id=values["payment_account_id"],
        statement_grouping=values["statement_grouping"],
        refill_min_cents=values["refill_min_cents"], refill_max_cents=values["refill_max_cents"],
        charge_concurrency=values["charge_concurrency"], language=values["language"],
        currency=values["currency"], currency_sign=values["currency_sign"],
        direct_links=values["direct_links"], payment_type=values["payment_type"],
        ach_return_fee_cents=values["ach_return_fee_cents"], staff_roles=values["staff_roles"], limits=limits,
        problems=tuple(problems))


def as_stored(values):
    """Module config values as Splynx keeps them (strings; None as empty)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, GatewayMode):
            value = value.value
        elif isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, dt.time):
            value = f"{value:%H:%M}"
        out[key] = "" if value is None else str(value)
    return out


# --- the store -----------------------------------------------------------------------------

_STAMP_SQL = f"SELECT version FROM {SettingsStamp.__tablename__} WHERE id = 1"


class ModuleSettingsStore:
    """The module settings of one process: read from Splynx, kept ``ttl`` seconds, read
    again as soon as the database's settings stamp says another process changed them (the
    stamp itself is looked at most every ``stamp_interval`` seconds: a charge touches the
    settings several times, and one indexed read a second is enough to follow a change)."""

    def __init__(self, splynx, sessions, ttl=30.0, stamp_interval=1.0, clock=time.monotonic):
        self._splynx = splynx
        self._sessions = sessions
        self._ttl = ttl
        self._stamp_interval = stamp_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._config = None
        self._read_at = 0.0
        self._stamp = None
        self._stamp_read_at = -stamp_interval

    def _current_stamp(self):
        # Read at the start of every web request: sent as it is (db.read_row).
        try:
            row = read_row(self._sessions.kw["bind"], _STAMP_SQL)
            return row[0] if row is not None else None
        except SQLAlchemyError:  # a database not yet migrated has no stamp
            return None

    def follow_changes(self):
        """Look at the settings stamp now (each web request and each worker pass starts so):
        a change saved by any process is used from the next :meth:`current` on."""
        with self._lock:
            self._stamp_read_at = -self._stamp_interval

    def current(self):
        """The settings as a :class:`ModuleConfig` (the defaults, ``read_ok`` False, while
        Splynx cannot be read)."""
        now = self._clock()
        with self._lock:
            fresh = self._config is not None and now - self._read_at < self._ttl
            if fresh and now - self._stamp_read_at < self._stamp_interval:
                return self._config
        stamp = self._current_stamp()
        with self._lock:
            self._stamp_read_at = now
            if fresh and stamp == self._stamp:
                return self._config
        config = self._load()
        with self._lock:
            self._config, self._read_at, self._stamp = config, self._clock(), stamp
        return config

    def _load(self):
        try:
            stored = self._splynx.get_module_config(MODULE_NAME)
            partners = {}
            for partner in self._splynx.list_partners():
                partners[partner.id] = self._splynx.get_module_config(
                    MODULE_NAME, partner_id=partner.id)
        except SplynxError as exc:
            if exc.status == 404:
                # The module is not registered yet, so nothing is stored: the defaults apply.
                return parse_config({})
            log.warning("module settings could not be read from Splynx: %s", exc)
            return replace(parse_config({}), read_ok=False)
        return parse_config(stored, partners)

    def save(self, values, partner_id=None):
        """Store ``values`` (checked by the caller) in Splynx's module config — a partner's
        own when ``partner_id`` — and make every process read them again."""
        self._splynx.put_module_config(MODULE_NAME, as_stored(values), partner_id=partner_id)
        self.bump()

    def bump(self):
        """Tell every process that the settings changed (and forget this one's copy). A
        database not migrated yet has no stamp: the others then see it within ``ttl``."""
        with self._lock:
            self._config = None
        try:
            with session_scope(self._sessions) as session:
                session.execute(update(SettingsStamp).where(SettingsStamp.id == 1).values(
                    version=SettingsStamp.version + 1, changed_at=utcnow()))
        except SQLAlchemyError as exc:
            log.warning("the settings stamp could not be bumped (%s); other processes see "
                        "the change within %.0f s", exc.__class__.__name__, self._ttl)
