"""Paying a customer's invoice with a saved card.

The invoice is always read from Splynx (never trusted from the browser), must belong to the
customer, and is read again once the journal holds its lock, so that a payment that finished
a moment ago is seen and not repeated.
"""

import logging

from ..models import AttemptKind, AttemptStatus as S
from ..splynx import SplynxError, SplynxNotFoundError
from . import journal
from .cards import get_card

log = logging.getLogger(__name__)


class PaymentError(Exception):
    """A payment cannot be made; ``str()`` is a sentence for the customer."""


class DocumentNotFound(PaymentError):
    """No such document for this customer (the same answer whether it exists or not)."""

    def __init__(self):
        super().__init__("This invoice was not found.")


class AlreadyPaid(PaymentError):
    """Nothing is due on the document."""


class SplynxUnavailable(PaymentError):
    """Splynx could not be asked about the document."""


def find_invoice(addon, customer_id, number):
    """The customer's invoice with this number, read from Splynx now.

    Raises :class:`DocumentNotFound` when there is none or it is another customer's.
    """
    number = (number or "").strip()
    if not number or len(number) > 40:
        raise DocumentNotFound()
    try:
        invoice = addon.splynx.find_invoice_by_number(number)
    except SplynxNotFoundError:
        invoice = None
    except SplynxError as exc:
        log.warning("cannot read invoice %s from Splynx: %s", number, exc)
        raise SplynxUnavailable("The billing system is not answering right now. "
                                "Please try again in a few minutes.") from None
    if invoice is None or invoice.customer_id != customer_id or invoice.status == "deleted":
        raise DocumentNotFound()
    return invoice


def _reread(addon, invoice_id):
    try:
        return addon.splynx.get_invoice(invoice_id)
    except SplynxError as exc:
        raise SplynxUnavailable("The billing system is not answering right now. "
                                "Nothing was charged; please try again in a few minutes.") from exc


def pay_invoice(addon, customer_id, number, card_id, *, request_key=None, channel="portal"):
    """Charge the amount due on the customer's invoice to one of their saved cards.

    Returns the journal attempt as it ends (see :func:`journal.charge`). Raises
    :class:`PaymentError` subclasses when nothing was charged for a reason the customer
    should read.
    """
    invoice = find_invoice(addon, customer_id, number)
    earlier = journal.find_by_request_key(addon, customer_id, request_key)
    if earlier is not None and earlier.invoice_id == invoice.id:
        return earlier  # the same form submitted again: show the first outcome
    if invoice.due_cents <= 0 or invoice.status == "paid":
        raise AlreadyPaid(f"Invoice {invoice.number} is already paid.")
    card = get_card(addon, customer_id, card_id)
    if card is None:
        raise PaymentError("Choose one of your saved cards.")
    if card.is_expired():
        raise PaymentError(f"The card {card.masked} has expired. Please add a new card.")
    try:
        attempt = journal.open_attempt(
            addon, kind=AttemptKind.INVOICE, customer_id=customer_id,
            amount_cents=invoice.due_cents, card=card, channel=channel, document_id=invoice.id,
            document_number=invoice.number, request_key=request_key)
    except journal.AttemptInProgress:
        raise PaymentError(f"A payment for invoice {invoice.number} is already being processed. "
                           "Please wait a moment and reload the page.") from None
    if attempt.state != S.CREATED:
        return attempt  # submitted twice at once: the other request is charging it
    # Under the lock, read the invoice again: a payment that just finished shows here.
    try:
        current = _reread(addon, invoice.id)
    except SplynxUnavailable:
        journal.abandon(addon, attempt, "Splynx did not answer before charging")
        raise
    if current.due_cents <= 0 or current.status == "paid":
        journal.abandon(addon, attempt, "already paid")
        raise AlreadyPaid(f"Invoice {invoice.number} is already paid.")
    if current.due_cents != attempt.amount_cents:
        journal.abandon(addon, attempt, "amount due changed")
        raise PaymentError(f"The amount due on invoice {invoice.number} has just changed. "
                           "Please check it and pay again.")
    return journal.charge(addon, attempt)
