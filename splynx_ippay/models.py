"""The add-on's own tables: saved cards and bank accounts, the payment journal, refunds, charge
runs, the staff audit trail, the card-testing ledger and the ACH debit authorisations.

A card row holds only what may be kept of a card: the gateway token, the terminal that made
it, the brand, the last four digits, the expiry and the holder's name. A bank account is a row
of the same table (``method`` ``bank``): the gateway token, the account type, the routing
number, the last four digits of the account number and the holder's name; never the account
number (docs/ach.md). A payment attempt is
written and committed before the gateway hears of it (design.md §3). Attempts and refunds
change status only through :func:`compare_and_set`, along their transition tables
(:data:`ATTEMPT_TRANSITIONS`, :data:`REFUND_TRANSITIONS`), each move recorded as an event.
"""

import datetime as dt
import enum
import functools

from sqlalchemy import (
    BigInteger, Boolean, Column, Date, DateTime, ForeignKey, Index, Integer, String, Text,
    UniqueConstraint, bindparam, false as sa_false,
)
from sqlalchemy.orm import declarative_base, make_transient_to_detached, relationship
from sqlalchemy.types import TypeDecorator

Base = declarative_base()


def utcnow():
    """Naive UTC timestamp (every database here stores it the same way)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class EnumColumn(TypeDecorator):
    """An enum stored as its value in a plain string column (no database enum type, so
    adding a member needs no migration); rows come back as enum members."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class, length=16):
        super().__init__(length)
        self.enum_class = enum_class

    def process_bind_param(self, value, dialect):
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value, dialect):
        return None if value is None else self.enum_class(value)


class TextEnum(str, enum.Enum):
    """An enum of strings that prints as its value (in templates, logs and CSV files)."""

    def __str__(self):
        return self.value

    def __format__(self, spec):
        return format(self.value, spec)


# --- statuses and their transitions -------------------------------------------------------

class AttemptStatus(TextEnum):
    """Where a payment attempt stands (design.md §3)."""

    #: Written and committed, the gateway not yet called.
    CREATED = "created"
    #: The request is on its way; the outcome is not known yet.
    SENT = "sent"
    #: The call failed in a way that may have charged the card; settle with ENQ.
    UNKNOWN = "unknown"
    #: The gateway approved; the Splynx payment is not yet recorded.
    APPROVED = "approved"
    #: Approved, but recording the payment in Splynx failed; retried by reconcile.
    POST_PENDING = "post_pending"
    #: Approved and recorded in Splynx (final unless voided).
    POSTED = "posted"
    #: The gateway declined (final; code and reason kept).
    DECLINED = "declined"
    #: Nothing was charged: never sent, or ENQ found no such transaction (final).
    FAILED = "failed"
    #: Nothing was sent on purpose: read again under the lock, the document was paid,
    #: cancelled or changed meanwhile (final).
    SKIPPED = "skipped"
    #: Voided the same day: no money moved and the Splynx payment was deleted (final).
    VOIDED = "voided"
    #: A bank debit (CHECK) returned by the customer's bank days after it was accepted
    #: (R01 …): the Splynx payment was deleted, so the document is due again (final).
    RETURNED = "returned"

    @property
    def final(self):
        return self in FINAL_ATTEMPT_STATUSES

    @property
    def holds_document(self):
        """While True, no other attempt may start on the same invoice or balance."""
        return self in (AttemptStatus.CREATED, AttemptStatus.SENT, AttemptStatus.UNKNOWN,
                        AttemptStatus.APPROVED, AttemptStatus.POST_PENDING)

    @property
    def took_money(self):
        """True once the gateway approved (the money is the customer's to get back)."""
        return self in (AttemptStatus.APPROVED, AttemptStatus.POST_PENDING,
                        AttemptStatus.POSTED)


S = AttemptStatus
FINAL_ATTEMPT_STATUSES = frozenset({S.POSTED, S.DECLINED, S.FAILED, S.SKIPPED, S.VOIDED,
                                    S.RETURNED})
OPEN_ATTEMPT_STATUSES = tuple(s for s in S if s.holds_document)

#: The only moves an attempt may make. Anything else is a bug and is refused, so that
#: no code path can, say, turn a declined attempt into a payment or post one twice.
ATTEMPT_TRANSITIONS = {
    S.CREATED: {S.SENT, S.FAILED, S.SKIPPED},
    S.SENT: {S.APPROVED, S.DECLINED, S.UNKNOWN, S.FAILED},
    S.UNKNOWN: {S.APPROVED, S.DECLINED, S.FAILED},
    S.APPROVED: {S.POSTED, S.POST_PENDING, S.RETURNED},
    # A bank debit's return may come before Splynx took the payment: nothing to reverse then.
    S.POST_PENDING: {S.POSTED, S.RETURNED},
    S.POSTED: {S.VOIDED, S.RETURNED},
    S.DECLINED: set(),
    S.FAILED: set(),
    S.SKIPPED: set(),
    S.VOIDED: set(),
    S.RETURNED: set(),
}


class RefundStatus(TextEnum):
    """Where a refund or void stands; the same journey as an attempt's."""

    #: Written and committed, the gateway not yet called.
    CREATED = "created"
    #: The VOID or CREDIT is on its way.
    SENT = "sent"
    #: No clear answer; settled by ENQ, never by a second VOID or CREDIT.
    UNKNOWN = "unknown"
    #: The gateway approved; not yet reflected in Splynx.
    APPROVED = "approved"
    #: Approved; reflecting it in Splynx failed and is retried.
    POST_PENDING = "post_pending"
    #: Approved and reflected in Splynx (final).
    POSTED = "posted"
    #: The gateway refused (final).
    DECLINED = "declined"
    #: Nothing was given back: never sent, or the gateway has no record of it (final).
    FAILED = "failed"

    @property
    def final(self):
        return self in (RefundStatus.POSTED, RefundStatus.DECLINED, RefundStatus.FAILED)

    @property
    def gave_money_back(self):
        return self in (RefundStatus.APPROVED, RefundStatus.POST_PENDING, RefundStatus.POSTED)


R = RefundStatus
REFUND_TRANSITIONS = {
    R.CREATED: {R.SENT, R.FAILED},
    R.SENT: {R.APPROVED, R.DECLINED, R.UNKNOWN, R.FAILED},
    R.UNKNOWN: {R.APPROVED, R.DECLINED, R.FAILED},
    R.APPROVED: {R.POSTED, R.POST_PENDING},
    R.POST_PENDING: {R.POSTED},
    R.POSTED: set(),
    R.DECLINED: set(),
    R.FAILED: set(),
}


class InvalidTransition(RuntimeError):
    """A status change the transition table does not allow (a bug, never user input)."""


def next_status(table, current, wanted):
    """``wanted`` if ``table`` allows ``current`` → ``wanted``; raises InvalidTransition."""
    if wanted not in table[current]:
        raise InvalidTransition(f"{current.value} → {wanted.value}")
    return wanted


@functools.lru_cache(maxsize=None)
def _conditional_update(table, on_status):
    """``UPDATE <table> SET … WHERE id = :where_id [AND status = :where_status]``, built once
    per table: the SET clause comes from the parameters of each execution, and a statement
    made once keeps its cache key, which SQLAlchemy would otherwise work out again for every
    status move (docs/performance.md)."""
    condition = table.c.id == bindparam("where_id")
    if on_status:
        condition &= table.c.status == bindparam("where_status")
    return table.update().where(condition)


def _record_event(session, row, from_status, to_status, note):
    """The row's history: one event (a Core insert, executed at once)."""
    events = type(row).Event.__table__
    session.execute(events.insert(), {type(row).Event.OWNER_COLUMN: row.id,
                                      "from_status": from_status, "to_status": to_status,
                                      "note": (note or "")[:255] or None, "at": utcnow()})


def compare_and_set(session, row, wanted, note=None, **fields):
    """Move ``row`` (an attempt or a refund) from the status it was read with to ``wanted``.

    One conditional UPDATE (``WHERE id = … AND status = <as read>``) is the whole decision:
    of several processes moving the same row at once exactly one changes it; the others get
    False and must re-read the row and act on what it is now. The move is checked against
    the row's transition table, ``fields`` are written with it, the lock key is released
    when the new status no longer holds the document, and the move is recorded as an event.
    Returns the values written when this call made the move (see :func:`as_written`),
    else None. The caller commits.
    """
    model = type(row)
    wanted = model.status.type.enum_class(wanted)
    next_status(model.TRANSITIONS, row.status, wanted)
    values = dict(fields, status=wanted, updated_at=utcnow())
    if not model.holds_lock(wanted):
        values["lock_key"] = None
    moved = session.execute(_conditional_update(model.__table__, True),
                            dict(values, where_id=row.id, where_status=row.status)).rowcount == 1
    if not moved:
        return None
    _record_event(session, row, row.status.value, wanted.value, note)
    return values


def write_fields(session, row, **fields):
    """Write ``fields`` of ``row`` without a status move (e.g. the last ENQ error); returns
    the values written."""
    values = dict(fields, updated_at=utcnow())
    session.execute(_conditional_update(type(row).__table__, False),
                    dict(values, where_id=row.id))
    return values


def as_written(row, values):
    """A detached copy of ``row`` as it is in the database once ``values`` (what
    :func:`compare_and_set` or :func:`write_fields` wrote) are committed: the row as the
    next reader sees it, without reading it back."""
    copy = type(row)(**{column.key: getattr(row, column.key)
                        for column in type(row).__mapper__.column_attrs})
    for key, value in values.items():
        setattr(copy, key, value)
    make_transient_to_detached(copy)
    return copy


def save(session, row, status=None, note=None, **fields):
    """Move ``row`` to ``status`` (:func:`compare_and_set`) or, without a status, only write
    ``fields``; returns ``(the row as it is now, whether this call wrote it)``. The caller
    commits."""
    written = (write_fields(session, row, **fields) if status is None
               else compare_and_set(session, row, status, note, **fields))
    if written is None:
        return session.get(type(row), row.id), False
    return as_written(row, written), True


class AttemptKind(TextEnum):
    """What an attempt pays."""

    INVOICE = "invoice"
    PROFORMA = "proforma"
    REFILL = "refill"
    #: The customer's whole outstanding balance (an autopay schedule in balance mode): a
    #: payment linked to no document, which Splynx spreads over the unpaid invoices.
    BALANCE = "balance"


class Channel(TextEnum):
    """Where an attempt was started."""

    #: The customer portal (logged in).
    PORTAL = "portal"
    #: A direct pay link, without logging in.
    DIRECT = "direct"
    #: Staff paying a customer's invoice from Splynx's admin pages.
    ADMIN = "admin"
    #: A charge run's worker.
    CHARGE_RUN = "charge_run"


class GatewayMode(TextEnum):
    """Which IPpay endpoint a terminal is on (config.GATEWAY_URLS); ``custom`` is the one
    endpoint root may name in config.ini."""

    TEST = "test"
    LIVE = "live"
    CUSTOM = "custom"


# --- cards and the payment journal --------------------------------------------------------

class Method(TextEnum):
    """How a saved payment method (a row of ``cards``) or an attempt pays."""

    CARD = "card"
    #: A bank account, debited by ACH (IPpay's CHECK).
    BANK = "bank"


class Card(Base):
    """A customer's saved card or bank account (``method``): a gateway token and what may
    be shown of it. Bank accounts have no expiry; they are debited only while
    ``authorization_id`` names the customer's current debit authorisation."""

    __tablename__ = "cards"

    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, nullable=False, index=True)
    method = Column(EnumColumn(Method, 8), nullable=False, default=Method.CARD,
                    server_default="card")
    token = Column(String(32), nullable=False)
    #: The terminal that made the token: the only one it is charged on.
    terminal_id = Column(String(32))
    gateway_mode = Column(EnumColumn(GatewayMode, 8))
    brand = Column(String(20), nullable=False)
    last4 = Column(String(4), nullable=False)
    #: NULL for a bank account.
    exp_month = Column(Integer)
    exp_year = Column(Integer)
    holder_name = Column(String(100), nullable=False)
    #: A bank account's ``CHECKING`` or ``SAVINGS`` (ippay §2.2 row 17).
    account_type = Column(String(8))
    #: A bank account's ABA routing number (it names the bank, not the account).
    routing_number = Column(String(9))
    #: A company's account (debits use SEC code CCD).
    business = Column(Boolean, nullable=False, default=False, server_default=sa_false())
    #: The debit authorisation in force (ach_authorizations); NULL: revoked or never given,
    #: and the account is not debited automatically.
    #: (No foreign key: the two tables would name each other.)
    authorization_id = Column(Integer)
    is_default = Column(Boolean, nullable=False, default=False)
    #: "Use for automatic payments": on for the default card unless the customer says no.
    autopay = Column(Boolean, nullable=False, default=False)
    #: Hard declines of automatic payments in a row; autopay stops at the module's limit.
    hard_declines = Column(Integer, nullable=False, default=0)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    @property
    def is_bank(self):
        return self.method == Method.BANK

    @property
    def masked(self):
        return f"{self.brand} •••• {self.last4}"

    @property
    def masked_routing(self):
        return f"•••••{self.routing_number[-4:]}" if self.routing_number else ""

    @property
    def expiry(self):
        if self.exp_month is None or self.exp_year is None:
            return ""
        return f"{self.exp_month:02d}/{self.exp_year % 100:02d}"

    def is_expired(self, today=None):
        if self.exp_month is None or self.exp_year is None:
            return False  # bank accounts do not expire
        today = today or dt.date.today()
        return (self.exp_year, self.exp_month) < (today.year, today.month)


class PaymentAttempt(Base):
    """One movement of money through the gateway, from before the call to the Splynx payment."""

    __tablename__ = "payment_attempts"

    TRANSITIONS = ATTEMPT_TRANSITIONS

    id = Column(Integer, primary_key=True)
    #: Our IPpay TransactionID, committed before the request leaves (invariant 1).
    transaction_id = Column(String(18), nullable=False, unique=True)
    kind = Column(EnumColumn(AttemptKind), nullable=False)
    status = Column(EnumColumn(AttemptStatus), nullable=False, default=S.CREATED, index=True)
    #: ``invoice:<id>``, ``proforma:<id>`` or ``refill:<customer>`` while the attempt holds
    #: its document, NULL after. A unique index on it lets the database, not timing, refuse
    #: a second attempt on the same document (invariant 3); every database allows many NULLs.
    lock_key = Column(String(40), unique=True)
    #: Makes a request idempotent (invariant 6): ``form:<nonce>`` from a server-issued
    #: form key (services/request_keys.py), or an internal key such as ``run-item:<id>``.
    request_key = Column(String(64), unique=True)
    channel = Column(EnumColumn(Channel), nullable=False)
    customer_id = Column(Integer, nullable=False, index=True)
    #: The customer's Splynx partner when the attempt was opened (its settings applied).
    partner_id = Column(Integer)
    invoice_id = Column(Integer)
    proforma_id = Column(Integer)
    document_number = Column(String(40))
    #: The document's (or refill's) amount: what the Splynx document is paid with.
    amount_cents = Column(BigInteger, nullable=False)
    #: The service fee (services/fees.py) before VAT and its VAT, added to the amount at
    #: the gateway; 0 without a fee. Worked out again with ``fee_rate`` whenever the amount
    #: is (the journal's re-read under the lock).
    fee_cents = Column(BigInteger, nullable=False, default=0)
    fee_tax_cents = Column(BigInteger, nullable=False, default=0)
    #: The fee's rate and VAT rate in hundredths of a percent, as the customer was shown.
    fee_rate = Column(Integer, nullable=False, default=0)
    fee_vat_rate = Column(Integer, nullable=False, default=0)
    #: The fee's text as the customer was shown, and the Splynx fee transaction's id.
    fee_text = Column(String(64))
    fee_transaction_id = Column(Integer)
    origin = Column(String(16), nullable=False, default="INTERNET")
    #: The terminal (and endpoint) the attempt is sent on; ENQ asks the same one.
    terminal_id = Column(String(32))
    gateway_mode = Column(EnumColumn(GatewayMode, 8))
    card_id = Column(Integer, ForeignKey("cards.id", ondelete="SET NULL"))
    #: The saved card's token, or (a card typed in for this payment) the token the SALE
    #: returned; NULL until then. Never a card number.
    token = Column(String(32))
    card_brand = Column(String(20))
    card_last4 = Column(String(4))
    #: ``card`` (SALE) or ``bank`` (CHECK).
    method = Column(EnumColumn(Method, 8), nullable=False, default=Method.CARD,
                    server_default="card")
    #: A bank debit's SEC code (WEB, PPD, CCD), account type and holder (the CHECK's
    #: ``CardName``), fixed when the attempt is opened.
    sec_code = Column(String(3))
    account_type = Column(String(8))
    holder_name = Column(String(100))
    #: The debit authorisation it was made under (ach_authorizations).
    authorization_id = Column(Integer)
    #: A bank debit returned by the bank: the NACHA code (R01 …) and the day it was learnt.
    #: Written before the reversal in Splynx, so an interrupted one is finished later.
    return_code = Column(String(4))
    returned_on = Column(Date)
    #: The Splynx transaction of the return fee, when one was booked.
    return_fee_ref = Column(String(40))
    action_code = Column(String(4))
    response_text = Column(String(120))
    approval = Column(String(12))
    message = Column(String(255))
    splynx_payment_id = Column(Integer)
    #: The payment statement record (splynx-platform §2.7) logging the Splynx payment: NULL
    #: until written (reconcile completes it), 0 when none will be (posted before migration
    #: 0003, or the payment was deleted first). Bookkeeping only: never gates the payment.
    statement_record_id = Column(Integer)
    post_tries = Column(Integer, nullable=False, default=0)
    last_error = Column(Text)
    admin_id = Column(Integer)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    card = relationship(Card)
    events = relationship("AttemptEvent", order_by="AttemptEvent.id", back_populates="attempt")

    __table_args__ = (Index("ix_payment_attempts_invoice", "invoice_id"),
                      Index("ix_payment_attempts_created_at", "created_at"),
                      Index("ix_payment_attempts_statement", "status", "statement_record_id"))

    @staticmethod
    def holds_lock(status):
        return AttemptStatus(status).holds_document

    @property
    def masked_card(self):
        return f"{self.card_brand} •••• {self.card_last4}" if self.card_last4 else ""

    @property
    def fee_total_cents(self):
        """The fee with its VAT (0 without a fee)."""
        return (self.fee_cents or 0) + (self.fee_tax_cents or 0)

    @property
    def charged_cents(self):
        """What the gateway is asked for: the amount and the fee with its VAT."""
        return self.amount_cents + self.fee_total_cents

    @property
    def is_bank(self):
        return self.method == Method.BANK

    @property
    def document_kind(self):
        """``invoice`` / ``proforma`` for document payments, None for refills and balances."""
        return None if self.kind in (AttemptKind.REFILL, AttemptKind.BALANCE) \
            else self.kind.value

    @property
    def document_id(self):
        return self.invoice_id if self.kind == AttemptKind.INVOICE else self.proforma_id


class AttemptEvent(Base):
    """The history of an attempt: every status change, when, and why."""

    __tablename__ = "attempt_events"

    id = Column(Integer, primary_key=True)
    attempt_id = Column(Integer, ForeignKey("payment_attempts.id", ondelete="CASCADE"),
                        nullable=False, index=True)
    at = Column(DateTime, nullable=False, default=utcnow)
    from_status = Column(String(16))
    to_status = Column(String(16), nullable=False)
    note = Column(String(255))

    attempt = relationship(PaymentAttempt, back_populates="events")

    OWNER_COLUMN = "attempt_id"

    def __init__(self, owner_id=None, **fields):
        super().__init__(attempt_id=owner_id, **fields)


PaymentAttempt.Event = AttemptEvent


# --- staff side: charge runs, refunds and voids, the staff audit trail ----------------------

class RunState(TextEnum):
    """Where a charge run stands."""

    #: Confirmed by staff, waiting for a worker.
    QUEUED = "queued"
    #: A worker is reading the period's invoices from Splynx into items, page by page.
    EXPANDING = "expanding"
    #: Items are being charged.
    RUNNING = "running"
    #: Every item has a final outcome.
    DONE = "done"
    #: Stopped by staff; items not yet claimed were not charged.
    CANCELLED = "cancelled"


ACTIVE_RUN_STATES = (RunState.QUEUED, RunState.EXPANDING, RunState.RUNNING)


class ItemStatus(TextEnum):
    """Where one invoice of a charge run stands."""

    QUEUED = "queued"
    #: A worker holds it (``claim_token``); its attempt may be in flight.
    CLAIMED = "claimed"
    #: The outcome is not settled yet (gateway unknown, or approved but not yet in Splynx):
    #: the worker finishes it by ENQ / posting, never by a second SALE.
    PENDING = "pending"
    CHARGED = "charged"
    DECLINED = "declined"
    #: Nothing was charged: the gateway was unreachable, Splynx failed before the charge …
    ERROR = "error"
    #: Not charged on purpose: no saved card, already paid, another payment in progress …
    SKIPPED = "skipped"


OPEN_ITEM_STATUSES = (ItemStatus.QUEUED, ItemStatus.CLAIMED, ItemStatus.PENDING)


class ChargeRun(Base):
    """A staff-confirmed charge of a period's unpaid invoices (design.md §6)."""

    __tablename__ = "charge_runs"

    id = Column(Integer, primary_key=True)
    state = Column(EnumColumn(RunState), nullable=False, default=RunState.QUEUED, index=True)
    #: Same period and filters while the run is active; the unique index refuses a second
    #: run started by a double click or by another member of staff at the same moment.
    active_key = Column(String(64), unique=True)
    period_from = Column(Date, nullable=False)
    period_to = Column(Date, nullable=False)
    #: JSON: customer_ids, partner_id, min_total_cents, max_total_cents, invoice_ids (reruns).
    filters = Column(Text, nullable=False, default="{}")
    parent_run_id = Column(Integer, ForeignKey("charge_runs.id", ondelete="SET NULL"))
    #: ``web``, ``cli``, ``rerun``, ``auto`` (an autopay schedule) or ``retry``.
    source = Column(String(16), nullable=False, default="web")
    #: ``<schedule>:<day>`` of an automatic run: unique, so a schedule runs once a day
    #: however many workers, hosts or timers try (services/autopay.py).
    schedule_key = Column(String(80), unique=True)
    #: ``due``: each invoice's amount due; ``balance``: each customer's whole outstanding
    #: balance (Splynx's two kinds of charge handler).
    mode = Column(String(8), nullable=False, default="due")
    #: Whether the run adds the service fee (services/fees.py): staff choose per run, an
    #: automatic run follows the ``fee_autopay`` setting.
    with_fees = Column(Boolean, nullable=False, default=False)
    admin_id = Column(Integer)
    preview_invoices = Column(Integer, nullable=False, default=0)
    preview_total_cents = Column(BigInteger, nullable=False, default=0)
    #: The last invoice id read from Splynx while expanding (keyset paging: the resume
    #: point after a crash, unaffected by invoices turning paid meanwhile).
    expand_offset = Column(Integer, nullable=False, default=0)
    #: The worker expanding the run (a dead worker's expansion is taken over).
    claim_token = Column(String(64))
    note = Column(String(255))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    started_at = Column(DateTime)
    finished_at = Column(DateTime)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class ChargeItem(Base):
    """One invoice of a charge run and what became of it."""

    __tablename__ = "charge_items"

    id = Column(Integer, primary_key=True)
    run_id = Column(Integer, ForeignKey("charge_runs.id", ondelete="CASCADE"), nullable=False)
    #: ``invoice:<id>`` or ``balance:<customer>``: what the item charges, once per run.
    target_key = Column(String(40), nullable=False)
    #: NULL for a balance item.
    invoice_id = Column(Integer)
    #: The card to charge when the run chose one (a retry on another card); else the
    #: customer's card for automatic payments.
    card_id = Column(Integer)
    invoice_number = Column(String(40))
    customer_id = Column(Integer, nullable=False)
    customer_name = Column(String(100))
    amount_cents = Column(BigInteger, nullable=False)
    status = Column(EnumColumn(ItemStatus), nullable=False, default=ItemStatus.QUEUED)
    claim_token = Column(String(64))
    claimed_at = Column(DateTime)
    attempt_id = Column(Integer, ForeignKey("payment_attempts.id", ondelete="SET NULL"))
    transaction_id = Column(String(18))
    masked_card = Column(String(40))
    action_code = Column(String(4))
    response_text = Column(String(120))
    message = Column(String(255))
    tries = Column(Integer, nullable=False, default=0)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "invoice_id", name="uq_charge_items_run_invoice"),
        UniqueConstraint("run_id", "target_key", name="uq_charge_items_run_target"),
        Index("ix_charge_items_run_status", "run_id", "status"),
    )


class ChargeWorker(Base):
    """A live worker process: items it claimed are recovered when its heartbeat stops."""

    __tablename__ = "charge_workers"

    token = Column(String(64), primary_key=True)
    host = Column(String(100), nullable=False)
    pid = Column(Integer, nullable=False)
    started_at = Column(DateTime, nullable=False, default=utcnow)
    heartbeat_at = Column(DateTime, nullable=False, default=utcnow)


class GatewayLease(Base):
    """One unit of a terminal's concurrency budget (the module setting
    ``charge_concurrency``): while a worker holds it, it may have one gateway call in flight
    on that terminal. Rows ``0 .. budget-1`` of a terminal are taken by conditional UPDATEs
    (services/charge_runs/leases.py); one whose holder stopped renewing it is free again
    once ``expires_at`` has passed."""

    __tablename__ = "gateway_leases"

    #: ``<mode>:<terminal id>``, as :func:`services.charge_runs.leases.terminal_key` makes it.
    terminal_key = Column(String(120), primary_key=True)
    slot = Column(Integer, primary_key=True, autoincrement=False)
    #: The holding worker's token (charge_workers.token), None when free.
    holder = Column(String(64), nullable=True)
    expires_at = Column(DateTime, nullable=True)


class RefundKind(TextEnum):
    """How money is given back."""

    #: IPpay VOID the same day, before settlement: no money moved.
    VOID = "void"
    #: IPpay CREDIT linked to the sale, full or partial, after settlement.
    REFUND = "refund"


class Refund(Base):
    """Money given back on an approved attempt: a VOID (same day, full amount) or a CREDIT.

    One refund or void per attempt is open at a time (``lock_key``), so two clicks can not
    refund twice; approved amounts never exceed what the attempt took.
    """

    __tablename__ = "refunds"

    TRANSITIONS = REFUND_TRANSITIONS

    id = Column(Integer, primary_key=True)
    attempt_id = Column(Integer, ForeignKey("payment_attempts.id", ondelete="CASCADE"),
                        nullable=False, index=True)
    kind = Column(EnumColumn(RefundKind, 8), nullable=False)
    status = Column(EnumColumn(RefundStatus), nullable=False, default=R.CREATED)
    lock_key = Column(String(40), unique=True)
    #: The part of the payment's amount given back (not counting the fee).
    amount_cents = Column(BigInteger, nullable=False)
    #: The part of the payment's fee and of its VAT given back with it (fees.refund_share).
    fee_cents = Column(BigInteger, nullable=False, default=0)
    fee_tax_cents = Column(BigInteger, nullable=False, default=0)
    action_code = Column(String(4))
    response_text = Column(String(120))
    approval = Column(String(12))
    message = Column(String(255))
    #: The Splynx record reflecting it: the refund transaction id (refunds) or the
    #: deleted payment id (voids).
    splynx_ref = Column(String(40))
    reason = Column(String(255))
    last_error = Column(Text)
    admin_id = Column(Integer)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    events = relationship("RefundEvent", order_by="RefundEvent.id")

    @staticmethod
    def holds_lock(status):
        return not RefundStatus(status).final

    @property
    def fee_total_cents(self):
        return (self.fee_cents or 0) + (self.fee_tax_cents or 0)

    @property
    def given_cents(self):
        """What goes back to the card: the amount and the fee's share with its VAT."""
        return self.amount_cents + self.fee_total_cents


class RefundEvent(Base):
    """The history of a refund or void: every status change, when, and why."""

    __tablename__ = "refund_events"

    id = Column(Integer, primary_key=True)
    refund_id = Column(Integer, ForeignKey("refunds.id", ondelete="CASCADE"), nullable=False,
                       index=True)
    at = Column(DateTime, nullable=False, default=utcnow)
    from_status = Column(String(16))
    to_status = Column(String(16), nullable=False)
    note = Column(String(255))

    OWNER_COLUMN = "refund_id"

    def __init__(self, owner_id=None, **fields):
        super().__init__(refund_id=owner_id, **fields)


Refund.Event = RefundEvent


class StaffAction(Base):
    """The audit trail: every staff action with the Splynx administrator who did it."""

    __tablename__ = "staff_actions"

    id = Column(Integer, primary_key=True)
    admin_id = Column(Integer, nullable=False, index=True)
    action = Column(String(32), nullable=False)
    target = Column(String(64))
    detail = Column(Text)
    at = Column(DateTime, nullable=False, default=utcnow)


# --- card-testing defences and settings changes (migration 0004) ----------------------------

class TrialOutcome(TextEnum):
    """What became of one try of a card typed in (services/limits.py)."""

    #: Let through; the gateway's answer is not recorded yet.
    ALLOWED = "allowed"
    #: Refused by a limit before the gateway heard of it.
    BLOCKED = "blocked"
    APPROVED = "approved"
    DECLINED = "declined"
    #: Nothing was learnt (gateway unreachable, unknown outcome).
    ERROR = "error"


class CardTrial(Base):
    """One try of a card typed in (to save it or pay with it), counted by the card-testing
    limits of every process and host sharing the database; blocked tries are kept for staff."""

    __tablename__ = "card_trials"

    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=utcnow)
    #: The customer it was for (the document's customer on a direct link).
    customer_id = Column(Integer)
    #: ``invoice:<id>`` / ``proforma:<id>`` for tries through a direct pay link.
    link_key = Column(String(40))
    #: A hash of the client's address (never the address itself; services/limits.py).
    client_key = Column(String(64))
    purpose = Column(String(8), nullable=False)  # "save" | "pay"
    outcome = Column(EnumColumn(TrialOutcome), nullable=False, default=TrialOutcome.ALLOWED)
    #: The limit that blocked it, in staff words.
    reason = Column(String(255))
    card_last4 = Column(String(4))
    #: The AUTHONLY that verified a card being saved (committed before it was sent).
    transaction_id = Column(String(18))

    __table_args__ = (Index("ix_card_trials_customer_at", "customer_id", "at"),
                      Index("ix_card_trials_link_at", "link_key", "at"),
                      Index("ix_card_trials_client_at", "client_key", "at"),
                      Index("ix_card_trials_outcome_at", "outcome", "at"))


class SettingsStamp(Base):
    """A version number bumped whenever the add-on changes its module settings, so every
    process (and host) sees a change at its next request instead of after a cache timeout."""

    __tablename__ = "settings_stamp"

    id = Column(Integer, primary_key=True)
    version = Column(Integer, nullable=False, default=0)
    changed_at = Column(DateTime, nullable=False, default=utcnow)


# --- collections: autopay, dunning, messages, reconciliation (migration 0005) ---------------

class CustomerPrefs(Base):
    """What a customer chose about automatic payments (the portal's Credit card page)."""

    __tablename__ = "customer_prefs"

    customer_id = Column(Integer, primary_key=True, autoincrement=False)
    #: False: the customer opted out of automatic payments altogether.
    autopay = Column(Boolean, nullable=False, default=True)
    #: A reminder e-mail before each automatic charge.
    reminders = Column(Boolean, nullable=False, default=False)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class CaseState(TextEnum):
    """Where the collection of one invoice stands (services/dunning.py)."""

    #: Declined softly; tried again on ``next_try_on``.
    OPEN = "open"
    #: Paid (by a retry, or by any channel meanwhile).
    PAID = "paid"
    #: The decline policy gave up: tries used up, a hard decline with no other card, or the
    #: customer opted out.
    STOPPED = "stopped"


class CollectionCase(Base):
    """The automatic collection of one invoice after a decline: its tries and next retry."""

    __tablename__ = "collection_cases"

    id = Column(Integer, primary_key=True)
    invoice_id = Column(Integer, nullable=False, unique=True)
    customer_id = Column(Integer, nullable=False)
    schedule_id = Column(String(40))
    state = Column(EnumColumn(CaseState, 8), nullable=False, default=CaseState.OPEN)
    #: Automatic charges tried so far (the first one included).
    tries = Column(Integer, nullable=False, default=0)
    first_try_on = Column(Date, nullable=False)
    last_try_on = Column(Date)
    next_try_on = Column(Date)
    last_code = Column(String(4))
    #: ``hard`` or ``soft`` (ippay.codes), of the last decline.
    last_category = Column(String(8))
    #: Ids of the customer's cards never to try again for it (hard declines), comma-separated.
    excluded_cards = Column(String(255), nullable=False, default="")
    amount_cents = Column(BigInteger, nullable=False)
    #: What a retry (not the first try) collected: the money recovered.
    recovered_cents = Column(BigInteger, nullable=False, default=0)
    reason = Column(String(255))
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_collection_cases_next", "state", "next_try_on"),)

    @property
    def excluded(self):
        return {int(x) for x in self.excluded_cards.split(",") if x}


class MessageStatus(TextEnum):
    """Where an e-mail of the outbox stands (services/notices.py)."""

    QUEUED = "queued"
    SENT = "sent"
    #: Refused for good (a bad address), or too many tries: kept for staff to see.
    FAILED = "failed"


class OutboxMessage(Base):
    """One e-mail, written once per purpose and object (the unique key), sent by the
    worker's pass; kept when mail is down and tried again. Never holds a card number."""

    __tablename__ = "outbox"

    id = Column(Integer, primary_key=True)
    #: ``decline``, ``expiring``, ``receipt``, ``card_added``, ``card_removed``,
    #: ``reminder``, ``run_summary``, ``autopay_stopped`` …
    purpose = Column(String(32), nullable=False)
    #: What it is about, e.g. ``attempt:42`` or ``card:7:2026-12``: one message per both.
    object_key = Column(String(80), nullable=False)
    recipient = Column(String(255), nullable=False)
    #: The From and Reply-To headers, decided when the message is queued (the customer's
    #: partner's company e-mail, or ``[mail] from`` / ``reply_to``).
    sender = Column(String(255), nullable=False, default="")
    reply_to = Column(String(255))
    language = Column(String(8), nullable=False, default="en")
    subject = Column(String(255), nullable=False)
    body_text = Column(Text, nullable=False)
    body_html = Column(Text)
    status = Column(EnumColumn(MessageStatus, 8), nullable=False, default=MessageStatus.QUEUED)
    tries = Column(Integer, nullable=False, default=0)
    next_try_at = Column(DateTime, nullable=False, default=utcnow)
    last_error = Column(Text)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime)

    __table_args__ = (UniqueConstraint("purpose", "object_key", name="uq_outbox_purpose_object"),
                      Index("ix_outbox_due", "status", "next_try_at"))


class ReconcileFinding(Base):
    """Something the daily three-way reconciliation found (services/reconciliation.py):
    repaired, or listed for staff until it is resolved."""

    __tablename__ = "reconcile_findings"

    id = Column(Integer, primary_key=True)
    found_on = Column(Date, nullable=False)
    #: ``missing_payment``, ``orphan_payment``, ``amount_mismatch``, ``unsettled`` …
    kind = Column(String(24), nullable=False)
    #: What it is about, so a finding seen again on another day is one row.
    finding_key = Column(String(80), nullable=False, unique=True)
    attempt_id = Column(Integer)
    splynx_payment_id = Column(Integer)
    detail = Column(String(255), nullable=False)
    repaired = Column(Boolean, nullable=False, default=False)
    resolved_at = Column(DateTime)


# --- bank accounts: debit authorisations (migration 0008) -----------------------------------

class AchAuthorization(Base):
    """A debit authorisation as the customer gave it (NACHA: kept two years after it ends).

    ``scope`` ``recurring`` (saving a bank account: automatic and staff debits) or
    ``single`` (one payment in the portal or by a direct link); ``given`` ``online``
    (accepted on the add-on's pages: SEC WEB) or ``written`` (a signed form staff recorded:
    PPD, or CCD for a business). What was accepted is kept as the text's version and hash,
    with when and from which client address. Never an account number.
    """

    __tablename__ = "ach_authorizations"

    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, nullable=False, index=True)
    card_id = Column(Integer, ForeignKey("cards.id", ondelete="SET NULL"))
    #: What was authorised, as shown: ``Checking •••• 6789`` and the routing number.
    account_label = Column(String(60), nullable=False)
    scope = Column(String(10), nullable=False)
    given = Column(String(8), nullable=False)
    sec_code = Column(String(3), nullable=False)
    text_version = Column(String(16), nullable=False)
    #: SHA-256 of the exact text shown (in the customer's language).
    text_hash = Column(String(64), nullable=False)
    language = Column(String(8), nullable=False, default="en")
    accepted_at = Column(DateTime, nullable=False, default=utcnow)
    client_address = Column(String(45))
    #: The administrator who recorded a written authorisation.
    admin_id = Column(Integer)
    #: A written authorisation's reference (the form's number or date) in staff words.
    reference = Column(String(100))
    #: The one payment a single authorisation was given for.
    transaction_id = Column(String(18))
    revoked_at = Column(DateTime)
    #: ``customer``, ``staff``, ``removed`` or ``return R02`` …
    revoked_by = Column(String(20))

    @property
    def active(self):
        return self.revoked_at is None
