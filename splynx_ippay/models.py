"""The add-on's own tables: saved cards and the payment journal.

A card row holds only what may be kept of a card: the gateway token, the brand, the last four
digits, the expiry and the holder's name. A payment attempt is written and committed before the
gateway hears of it (design.md §3); its status moves only along :data:`TRANSITIONS`.
"""

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, ForeignKey, Index, Integer, String, Text,
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
    post_tries = Column(Integer, nullable=False, default=0)
    last_error = Column(Text)
    admin_id = Column(Integer)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    card = relationship(Card)
    events = relationship("AttemptEvent", order_by="AttemptEvent.id", back_populates="attempt")

    __table_args__ = (Index("ix_payment_attempts_invoice", "invoice_id"),)

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
