"""The documents a customer pays: invoices and proforma invoices, read from Splynx.

A document is always read from Splynx (never trusted from the browser) and must belong to
the customer who pays it. The journal reads it once more under its lock before any SALE
(journal.py); these are the one set of rules both use.
"""

import logging

from ..messages import Sentence, UserError
from ..models import AttemptKind
from ..splynx import SplynxError, SplynxNotFoundError

log = logging.getLogger(__name__)

INVOICE, PROFORMA = "invoice", "proforma"
KINDS = (INVOICE, PROFORMA)
#: What a customer reads for each kind (translated where shown).
NAMES = {INVOICE: Sentence("invoice"), PROFORMA: Sentence("proforma invoice")}
ATTEMPT_KINDS = {INVOICE: AttemptKind.INVOICE, PROFORMA: AttemptKind.PROFORMA}

UNAVAILABLE = Sentence("The billing system is not answering right now. "
                       "Please try again in a few minutes.")


class DocumentError(UserError):
    """A document cannot be paid (a sentence for the customer)."""


class DocumentNotFound(DocumentError):
    """No such document for this customer (the same answer whether it exists or not)."""

    def __init__(self, kind=INVOICE):
        super().__init__(Sentence("This {name} was not found.", name=NAMES[kind]))
        self.kind = kind


class SplynxUnavailable(DocumentError):
    """Splynx could not be asked about the document: nothing was done."""


def is_unpaid(document):
    """True while something is due on ``document`` and it is neither paid nor deleted."""
    return document.status not in ("paid", "deleted") and document.due_cents > 0


def _valid_number(number):
    number = str(number or "").strip()
    return number if number.isascii() and number.isdigit() and len(number) <= 40 else None


def read(splynx, kind, document_id):
    """The invoice or proforma with this Splynx id, read now; raises SplynxError."""
    if kind == INVOICE:
        return splynx.get_invoice(document_id)
    if kind == PROFORMA:
        return splynx.get_proforma(document_id)
    raise ValueError(f"not a document kind: {kind!r}")


def find_by_number(ctx, kind, customer_id, number):
    """The customer's invoice or proforma with this number, read from Splynx now.

    ``customer_id=None`` skips the owner check (direct links, which the caller guards).
    Raises :class:`DocumentNotFound` when there is none or it is another customer's, and
    :class:`SplynxUnavailable` when Splynx does not answer.
    """
    number = _valid_number(number)
    if number is None:
        raise DocumentNotFound(kind)
    try:
        if kind == INVOICE:
            document = ctx.splynx.find_invoice_by_number(number)
        else:
            document = ctx.splynx.find_proforma_by_number(number)
    except SplynxNotFoundError:
        document = None
    except SplynxError as exc:
        log.warning("cannot read %s %s from Splynx: %s", kind, number, exc)
        raise SplynxUnavailable(UNAVAILABLE) from None
    if document is None or document.status == "deleted" or (
            customer_id is not None and document.customer_id != customer_id):
        raise DocumentNotFound(kind)
    return document


def find_by_id(ctx, kind, document_id):
    """The invoice or proforma with this Splynx id (direct links); DocumentNotFound if none."""
    text = str(document_id or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not 0 < int(text) < 2**31:
        raise DocumentNotFound(kind)
    try:
        document = read(ctx.splynx, kind, int(text))
    except SplynxNotFoundError:
        raise DocumentNotFound(kind) from None
    except SplynxError as exc:
        log.warning("cannot read %s id %s from Splynx: %s", kind, text, exc)
        raise SplynxUnavailable(UNAVAILABLE) from None
    if document.status == "deleted":
        raise DocumentNotFound(kind)
    return document
