"""Paying a customer's invoice or proforma invoice, and adding money to the balance.

A document is always read from Splynx (never trusted from the browser), must belong to the
customer, and is read again once the journal holds its lock, so that a payment that finished
a moment ago is seen and not repeated. Every charge goes through the journal
(:mod:`.journal`): a card typed in for one payment is first tokenised, then its token is
charged like a saved card's.
"""

import datetime
import hashlib
import hmac
import logging
from dataclasses import dataclass

from ..i18n import _
from ..models import AttemptKind, AttemptStatus as S
from ..splynx import SplynxError, SplynxNotFoundError
from . import journal
from .cards import CardError, get_card, tokenize

log = logging.getLogger(__name__)

INVOICE, PROFORMA = "invoice", "proforma"

#: How each kind of document is read from Splynx and named to a customer.
_KINDS = {
    INVOICE: {"find": "find_invoice_by_number", "get": "get_invoice", "name": "invoice",
              "attempt": AttemptKind.INVOICE},
    PROFORMA: {"find": "find_proforma_by_number", "get": "get_proforma",
               "name": "proforma invoice", "attempt": AttemptKind.PROFORMA},
}

_UNAVAILABLE = ("The billing system is not answering right now. "
                "Please try again in a few minutes.")
# Customer-facing sentences go through _() (i18n.py): the customer page's language inside
# a customer request, English elsewhere.


class PaymentError(Exception):
    """A payment cannot be made; ``str()`` is a sentence for the customer."""


class DocumentNotFound(PaymentError):
    """No such document for this customer (the same answer whether it exists or not)."""

    def __init__(self, kind=INVOICE):
        super().__init__(_("This {name} was not found.", name=_(_KINDS[kind]["name"])))
        self.kind = kind


class AlreadyPaid(PaymentError):
    """Nothing is due on the document."""


class SplynxUnavailable(PaymentError):
    """Splynx could not be asked about the document."""


class AmountOutOfRange(PaymentError):
    """A refill amount outside the module settings' minimum and maximum."""


@dataclass(frozen=True)
class NewCard:
    """A card typed in by the customer for this payment. Passed straight to the gateway's
    TOKENIZE; never stored, logged or repeated back."""

    number: str
    exp_month: int
    exp_year: int
    holder_name: str
    cvv: str = None
    postal_code: str = None
    save: bool = False

    def __repr__(self):
        return f"NewCard(••••{self.number[-4:]}, {self.exp_month:02d}/{self.exp_year})"


def _attempt_kind(kind):
    return _KINDS[kind]["attempt"]


def _is_unpaid(document):
    return document.status not in ("paid", "deleted") and document.due_cents > 0


def find_document(addon, kind, customer_id, number):
    """The customer's invoice or proforma with this number, read from Splynx now.

    ``customer_id=None`` skips the owner check (direct links, which the caller guards).
    Raises :class:`DocumentNotFound` when there is none or it is another customer's.
    """
    number = (number or "").strip()
    if not number or len(number) > 40 or not number.isdigit():
        raise DocumentNotFound(kind)
    try:
        document = getattr(addon.splynx, _KINDS[kind]["find"])(number)
    except SplynxNotFoundError:
        document = None
    except SplynxError as exc:
        log.warning("cannot read %s %s from Splynx: %s", kind, number, exc)
        raise SplynxUnavailable(_(_UNAVAILABLE)) from None
    if document is None or document.status == "deleted" or (
            customer_id is not None and document.customer_id != customer_id):
        raise DocumentNotFound(kind)
    return document


def find_document_by_id(addon, kind, document_id):
    """The invoice or proforma with this Splynx id (direct links); DocumentNotFound if none."""
    text = str(document_id or "").strip()
    if not text.isdigit() or len(text) > 12 or int(text) <= 0:
        raise DocumentNotFound(kind)
    try:
        document = getattr(addon.splynx, _KINDS[kind]["get"])(int(text))
    except SplynxNotFoundError:
        raise DocumentNotFound(kind) from None
    except SplynxError as exc:
        log.warning("cannot read %s id %s from Splynx: %s", kind, text, exc)
        raise SplynxUnavailable(_(_UNAVAILABLE)) from None
    if document.status == "deleted":
        raise DocumentNotFound(kind)
    return document


def unpaid_invoices(addon, customer_id):
    """The customer's invoices with money due, oldest first (the dashboard widget)."""
    try:
        invoices = addon.splynx.list_invoices(customer_id=customer_id,
                                              status=["not_paid", "pending"])
    except SplynxError as exc:
        log.warning("cannot list invoices of customer %s: %s", customer_id, exc)
        raise SplynxUnavailable(_UNAVAILABLE) from None
    unpaid = [i for i in invoices if i.customer_id == customer_id and _is_unpaid(i)]
    return sorted(unpaid, key=lambda i: (i.date_created or datetime.date.min, i.id))


def balance_cents(addon, customer_id):
    """The customer's account balance in cents (negative: money owed)."""
    try:
        return addon.splynx.get_customer_billing(customer_id).deposit_cents
    except SplynxError as exc:
        raise SplynxUnavailable(_UNAVAILABLE) from exc


_ACTIVITY_SQL = ("SELECT count(*), max(updated_at) FROM payment_attempts "
                 "WHERE customer_id = {}")


def activity_marker(addon, customer_id):
    """Something that changes whenever one of the customer's payment attempts does: read-only
    answers cached under it are dropped by a payment made through any worker."""
    # Asked on every cached page view, in every worker: one indexed query sent as it is,
    # without an ORM session or statement compilation, keeps it cheap.
    engine = addon.engine
    placeholder = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    with engine.connect() as connection:
        row = connection.exec_driver_sql(_ACTIVITY_SQL.format(placeholder), (customer_id,)).one()
    return (row[0], str(row[1]))


# --- direct pay links -------------------------------------------------------------------

def link_signature(addon, kind, document_id):
    """The key that makes a direct pay link for one document valid (docs/portal.md)."""
    secret = (addon.settings.get("WEB_SECRET_KEY") or "").encode()
    message = f"splynx-ippay direct {kind} {int(document_id)}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:24]


def link_signature_valid(addon, kind, document_id, signature):
    """True when ``signature`` is the key of this document's direct link."""
    if not signature or not addon.settings.get("WEB_SECRET_KEY"):
        return False
    return hmac.compare_digest(str(signature), link_signature(addon, kind, document_id))


def direct_link(addon, kind, document, by="id"):
    """The path of a direct pay link for ``document`` (to put in an e-mail), by id or number."""
    base = f"/ippay/direct-pay-{kind}"
    item = document.id if by == "id" else document.number
    path = f"{base}-by-id?item_id={item}" if by == "id" else f"{base}?item_id={item}"
    if addon.module_settings.get().get("direct_links") != "open":
        path += f"&sig={link_signature(addon, kind, document.id)}"
    return path


# --- paying -----------------------------------------------------------------------------

def _reread(addon, kind, document_id):
    try:
        return getattr(addon.splynx, _KINDS[kind]["get"])(document_id)
    except SplynxError as exc:
        raise SplynxUnavailable(_("The billing system is not answering right now. "
                                  "Nothing was charged; please try again in a few minutes.")
                                ) from exc


def _card_for(addon, customer_id, card_id=None, new_card=None):
    """The token to charge: a saved card of the customer, or a new card tokenised now."""
    if new_card is not None:
        try:
            if new_card.save:
                from .cards import save_card

                return save_card(addon, customer_id, number=new_card.number,
                                 exp_month=new_card.exp_month, exp_year=new_card.exp_year,
                                 holder_name=new_card.holder_name, cvv=new_card.cvv,
                                 postal_code=new_card.postal_code)
            return tokenize(addon, customer_id, number=new_card.number,
                            exp_month=new_card.exp_month, exp_year=new_card.exp_year,
                            holder_name=new_card.holder_name, cvv=new_card.cvv,
                            postal_code=new_card.postal_code)
        except CardError as exc:
            raise PaymentError(str(exc)) from None
    card = get_card(addon, customer_id, card_id) if card_id is not None else None
    if card is None:
        raise PaymentError(_("Choose one of your saved cards."))
    if card.is_expired():
        raise PaymentError(_("The card {card} has expired. Please add a new card.",
                             card=card.masked))
    return card


def pay_document(addon, kind, customer_id, number, *, card_id=None, new_card=None,
                 request_key=None, channel="portal", document=None, admin_id=None):
    """Charge the amount due on the customer's invoice or proforma.

    Pays with the saved card ``card_id`` or with ``new_card`` (:class:`NewCard`: tokenised
    first, kept only if ``new_card.save``); ``admin_id`` is the administrator paying on the
    customer's behalf, if any. Returns the journal attempt as it ends (see
    :func:`journal.charge`). Raises :class:`PaymentError` subclasses when nothing was
    charged for a reason the customer should read.
    """
    label = _KINDS[kind]["name"]
    if document is None:
        document = find_document(addon, kind, customer_id, number)
    customer_id = document.customer_id
    earlier = journal.find_by_request_key(addon, customer_id, request_key)
    if earlier is not None and earlier.document_number == document.number and \
            earlier.kind == _attempt_kind(kind).value:
        return earlier  # the same form submitted again: show the first outcome
    if not _is_unpaid(document):
        raise AlreadyPaid(_("{name} {number} is already paid.", name=_(label.capitalize()),
                            lower=_(label), number=document.number))
    card = _card_for(addon, customer_id, card_id, new_card)
    try:
        attempt = journal.open_attempt(
            addon, kind=_attempt_kind(kind), customer_id=customer_id,
            amount_cents=document.due_cents, card=card, channel=channel,
            document_id=document.id, document_number=document.number, request_key=request_key,
            admin_id=admin_id)
    except journal.AttemptInProgress:
        raise PaymentError(_("A payment for {name} {number} is already being processed. "
                             "Please wait a moment and reload the page.", name=_(label),
                             number=document.number)) from None
    if attempt.state != S.CREATED or getattr(attempt, "reused", False):
        return attempt  # submitted twice at once: the other request is charging it
    # Under the lock, read the document again: a payment that just finished shows here.
    try:
        current = _reread(addon, kind, document.id)
    except SplynxUnavailable:
        journal.abandon(addon, attempt, "Splynx did not answer before charging")
        raise
    if not _is_unpaid(current):
        journal.abandon(addon, attempt, "already paid")
        raise AlreadyPaid(_("{name} {number} is already paid.", name=_(label.capitalize()),
                            lower=_(label), number=document.number))
    if current.due_cents != attempt.amount_cents:
        journal.abandon(addon, attempt, "amount due changed")
        raise PaymentError(_("The amount due on {name} {number} has just changed. "
                             "Please check it and pay again.", name=_(label),
                             number=document.number))
    return journal.charge(addon, attempt)


def refill_limits(addon):
    """(minimum, maximum) refill amount in cents, from the module settings."""
    settings = addon.module_settings.get()
    low, high = settings["refill_min_cents"], settings["refill_max_cents"]
    return max(1, low), max(max(1, low), high)


def refill(addon, customer_id, amount_cents, *, card_id=None, new_card=None, request_key=None,
           channel="portal"):
    """Add ``amount_cents`` to the customer's balance: a payment linked to no document.

    Raises :class:`AmountOutOfRange` outside the module's limits and :class:`PaymentError`
    when nothing was charged for another reason.
    """
    low, high = refill_limits(addon)
    if not isinstance(amount_cents, int) or not low <= amount_cents <= high:
        raise AmountOutOfRange("out of range")
    earlier = journal.find_by_request_key(addon, customer_id, request_key)
    if earlier is not None and earlier.kind == AttemptKind.REFILL.value:
        return earlier
    card = _card_for(addon, customer_id, card_id, new_card)
    try:
        attempt = journal.open_attempt(
            addon, kind=AttemptKind.REFILL, customer_id=customer_id, amount_cents=amount_cents,
            card=card, channel=channel, request_key=request_key)
    except journal.AttemptInProgress:
        raise PaymentError(_("Another payment to your balance is being processed. "
                             "Please wait a moment and reload the page.")) from None
    if attempt.state != S.CREATED or getattr(attempt, "reused", False):
        return attempt  # submitted twice at once: the other request is charging it
    return journal.charge(addon, attempt)
