"""The add-on's own tables: saved cards and the payment journal.

A card row holds only what may be kept of a card: the gateway token, the brand, the last four
digits, the expiry and the holder's name. A payment attempt is written and committed before the
gateway hears of it (design.md §3); its status moves only along :data:`TRANSITIONS`.
"""

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger, Boolean, Column, Date, DateTime, ForeignKey, Index, Integer, String, Text,
    UniqueConstraint,
)
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()


def utcnow():
    """Naive UTC timestamp (every database here stores it the same way)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class AttemptStatus(str, enum.Enum):
    """Where a payment attempt stands. See design.md §3."""

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
    #: Approved and recorded in Splynx (final).
    POSTED = "posted"
    #: The gateway declined (final; code and reason kept).
    DECLINED = "declined"
    #: Nothing was charged: never sent, or ENQ found no such transaction (final).
    FAILED = "failed"

    @property
    def final(self):
        return self in FINAL_STATUSES

    @property
    def holds_document(self):
        """While True, no other attempt may start on the same invoice or balance."""
        return self not in (AttemptStatus.POSTED, AttemptStatus.DECLINED, AttemptStatus.FAILED)


S = AttemptStatus
FINAL_STATUSES = frozenset({S.POSTED, S.DECLINED, S.FAILED})

#: The only moves an attempt may make. Anything else is a bug and is refused, so that
#: no code path can, say, turn a declined attempt into a payment or post one twice.
TRANSITIONS = {
    S.CREATED: {S.SENT, S.FAILED},
    S.SENT: {S.APPROVED, S.DECLINED, S.UNKNOWN, S.FAILED},
    S.UNKNOWN: {S.APPROVED, S.DECLINED, S.FAILED},
    S.APPROVED: {S.POSTED, S.POST_PENDING},
    S.POST_PENDING: {S.POSTED},
    S.POSTED: set(),
    S.DECLINED: set(),
    S.FAILED: set(),
}


class InvalidTransition(RuntimeError):
    """A status change the journal does not allow."""


class AttemptKind(str, enum.Enum):
    """What an attempt pays."""

    INVOICE = "invoice"
    PROFORMA = "proforma"
    REFILL = "refill"


class Card(Base):
    """A customer's saved card: a gateway token and what may be shown of the card."""

    __tablename__ = "cards"

    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, nullable=False, index=True)
    token = Column(String(32), nullable=False)
    brand = Column(String(20), nullable=False)
    last4 = Column(String(4), nullable=False)
    exp_month = Column(Integer, nullable=False)
    exp_year = Column(Integer, nullable=False)
    holder_name = Column(String(100), nullable=False)
    is_default = Column(Boolean, nullable=False, default=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    @property
    def masked(self):
        return f"{self.brand} •••• {self.last4}"

    @property
    def expiry(self):
        return f"{self.exp_month:02d}/{self.exp_year % 100:02d}"

    def is_expired(self, today=None):
        today = today or dt.date.today()
        return (self.exp_year, self.exp_month) < (today.year, today.month)


class PaymentAttempt(Base):
    """One movement of money through the gateway, from before the call to the Splynx payment."""

    __tablename__ = "payment_attempts"

    id = Column(Integer, primary_key=True)
    #: Our IPpay TransactionID, committed before the request leaves (invariant 1).
    transaction_id = Column(String(18), nullable=False, unique=True)
    kind = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False, default=S.CREATED.value, index=True)
    #: ``invoice:<id>``, ``proforma:<id>`` or ``refill:<customer>`` while the attempt is not
    #: final, NULL after. A unique index on it lets the database, not timing, refuse a second
    #: attempt on the same document (invariant 3); every database allows many NULLs.
    lock_key = Column(String(40), unique=True)
    #: Set from a form's one-time key, so a resubmitted form finds its attempt instead of
    #: starting another.
    request_key = Column(String(64), unique=True)
    channel = Column(String(16), nullable=False)
    customer_id = Column(Integer, nullable=False, index=True)
    invoice_id = Column(Integer)
    proforma_id = Column(Integer)
    document_number = Column(String(40))
    amount_cents = Column(BigInteger, nullable=False)
    origin = Column(String(16), nullable=False, default="INTERNET")
    card_id = Column(Integer, ForeignKey("cards.id", ondelete="SET NULL"))
    token = Column(String(32))
    card_brand = Column(String(20))
    card_last4 = Column(String(4))
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

    @property
    def state(self):
        return AttemptStatus(self.status)

    @property
    def masked_card(self):
        return f"{self.card_brand} •••• {self.card_last4}" if self.card_last4 else ""

    def move_to(self, status, note=None):
        """Change status along :data:`TRANSITIONS`, recording the move as an event."""
        status = AttemptStatus(status)
        if status not in TRANSITIONS[self.state]:
            raise InvalidTransition(f"attempt {self.transaction_id}: {self.status} → {status.value}")
        self.events.append(AttemptEvent(from_status=self.status, to_status=status.value, note=note))
        self.status = status.value
        if not status.holds_document:
            self.lock_key = None


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


# --- staff side: charge runs, refunds and voids, the staff audit trail (migration 0002) ------

class RunState(str, enum.Enum):
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


ACTIVE_RUN_STATES = (RunState.QUEUED.value, RunState.EXPANDING.value, RunState.RUNNING.value)


class ItemStatus(str, enum.Enum):
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


OPEN_ITEM_STATUSES = (ItemStatus.QUEUED.value, ItemStatus.CLAIMED.value, ItemStatus.PENDING.value)


class ChargeRun(Base):
    """A staff-confirmed charge of a period's unpaid invoices (design.md §6)."""

    __tablename__ = "charge_runs"

    id = Column(Integer, primary_key=True)
    state = Column(String(16), nullable=False, default=RunState.QUEUED.value, index=True)
    #: Same period and filters while the run is active; the unique index refuses a second
    #: run started by a double click or by another member of staff at the same moment.
    active_key = Column(String(64), unique=True)
    period_from = Column(Date, nullable=False)
    period_to = Column(Date, nullable=False)
    #: JSON: customer_ids, partner_id, min_total_cents, max_total_cents, invoice_ids (reruns).
    filters = Column(Text, nullable=False, default="{}")
    parent_run_id = Column(Integer, ForeignKey("charge_runs.id", ondelete="SET NULL"))
    source = Column(String(16), nullable=False, default="web")
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
    invoice_id = Column(Integer, nullable=False)
    invoice_number = Column(String(40))
    customer_id = Column(Integer, nullable=False)
    customer_name = Column(String(100))
    amount_cents = Column(BigInteger, nullable=False)
    status = Column(String(16), nullable=False, default=ItemStatus.QUEUED.value)
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


class RefundStatus(str, enum.Enum):
    """Where a refund or void stands; the same shape as an attempt's journey."""

    CREATED = "created"
    SENT = "sent"
    UNKNOWN = "unknown"
    APPROVED = "approved"
    POST_PENDING = "post_pending"
    POSTED = "posted"
    DECLINED = "declined"
    FAILED = "failed"

    @property
    def final(self):
        return self in (RefundStatus.POSTED, RefundStatus.DECLINED, RefundStatus.FAILED)


class Refund(Base):
    """Money given back on an approved attempt: a VOID (same day, full amount) or a CREDIT.

    One refund or void per attempt is open at a time (``lock_key``), so two clicks can not
    refund twice; approved amounts never exceed what the attempt took.
    """

    __tablename__ = "refunds"

    id = Column(Integer, primary_key=True)
    attempt_id = Column(Integer, ForeignKey("payment_attempts.id", ondelete="CASCADE"),
                        nullable=False, index=True)
    kind = Column(String(8), nullable=False)  # "void" | "refund"
    status = Column(String(16), nullable=False, default=RefundStatus.CREATED.value)
    lock_key = Column(String(40), unique=True)
    amount_cents = Column(BigInteger, nullable=False)
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

    @property
    def state(self):
        return RefundStatus(self.status)


class StaffAction(Base):
    """The audit trail: every staff action with the Splynx administrator who did it."""

    __tablename__ = "staff_actions"

    id = Column(Integer, primary_key=True)
    admin_id = Column(Integer, nullable=False, index=True)
    action = Column(String(32), nullable=False)
    target = Column(String(64))
    detail = Column(Text)
    at = Column(DateTime, nullable=False, default=utcnow)
