"""Paying a customer's invoice or proforma invoice, and adding money to the balance.

A document is always read from Splynx (never trusted from the browser) and must belong to
the customer; the journal reads it again under its lock before the SALE (journal.py). A saved
card is charged by its token, on the terminal that made it; a card typed in is charged by the
journal's SALE with its CVV2 after the card-testing limits let it through (limits.py), and is
kept only if the customer asked and the gateway approved.
"""

import datetime
import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import NamedTuple

from ..db import read_row
from ..ippay import GatewayError
from ..messages import N_, Sentence, UserError
from ..models import AttemptKind, AttemptStatus as S, Channel, Method, TrialOutcome
from ..splynx import SplynxError
from . import bank_accounts, cards as card_service, documents, fees, journal, limits
from .documents import INVOICE, PROFORMA, DocumentNotFound, SplynxUnavailable  # noqa: F401

log = logging.getLogger(__name__)

_UNAVAILABLE = documents.UNAVAILABLE


class Outcome(NamedTuple):
    """What a payment request came to: the journal ``attempt`` as it ended, and ``replay``
    True when the same form had been sent before (the earlier request's attempt, shown and
    never charged again)."""

    attempt: object
    replay: bool


class PaymentError(UserError):
    """A payment cannot be made (a sentence for the customer); nothing was charged."""


class AlreadyPaid(PaymentError):
    """Nothing is due on the document."""


class AmountOutOfRange(PaymentError):
    """A refill amount outside the module settings' minimum and maximum."""


class FeeChanged(PaymentError):
    """The service fee is not the one the customer was shown (the settings changed)."""


#: The channels where a payment carries the service fee: the customer's own payments. Staff
#: paying one invoice for a customer add none; charge runs add it when staff chose so for
#: the run, automatic runs when the module setting ``fee_autopay`` says so (docs/fees.md).
FEE_CHANNELS = (Channel.PORTAL, Channel.DIRECT)


def fee_rate_for(ctx, channel, method="card"):
    """The ``fees.FeeRate`` a payment on ``channel`` with ``method`` carries, or None."""
    if Channel(channel) not in FEE_CHANNELS:
        return None
    return ctx.module_settings.current().fees.rate_for(method)


def fee_terms(rate):
    """The fee terms as a page shows them and sends back (``"295/1000"``: the rate and
    the VAT rate in hundredths of a percent), so that the payment is refused when they
    changed in between (:class:`FeeChanged`)."""
    return f"{rate.rate}/{rate.vat_rate}" if rate else "0/0"


class FeeQuote(NamedTuple):
    """The fee shown before paying: its ``rate`` (None: no fee), the ``fee`` in cents, the
    ``terms`` the form sends back and the ``total_cents`` to pay."""

    rate: object
    fee: fees.Fee
    terms: str
    total_cents: int


def fee_quote(ctx, amount_cents, channel=Channel.PORTAL, method="card"):
    """What paying ``amount_cents`` on ``channel`` costs with its service fee."""
    rate = fee_rate_for(ctx, channel, method)
    fee = fees.compute(max(int(amount_cents or 0), 0), rate)
    return FeeQuote(rate, fee, fee_terms(rate), int(amount_cents or 0) + fee.total_cents)


def _fee_rate_checked(ctx, channel, shown_terms, bank=None):
    """The fee rate to open the attempt with; refused when the page showed other terms.
    A bank debit carries no fee yet: the pages show the card fee only (docs/fees.md)."""
    if bank is not None:
        return None
    rate = fee_rate_for(ctx, channel)
    if shown_terms is not None and shown_terms != fee_terms(rate):
        raise FeeChanged("The service fee has just changed. Please check the amount and "
                         "pay again. Nothing was charged.")
    return rate


@dataclass(frozen=True)
class NewCard:
    """A card typed in by the customer for this payment. Passed straight to the gateway's
    SALE with its CVV2; never stored, logged or repeated back."""

    number: str
    exp_month: int
    exp_year: int
    holder_name: str
    cvv: str = None
    postal_code: str = None
    save: bool = False

    def __repr__(self):
        return f"NewCard(••••{self.number[-4:]}, {self.exp_month:02d}/{self.exp_year})"

    def source(self):
        return journal.PaymentSource(
            brand=card_service.detect_brand(self.number), last4=self.number[-4:],
            typed=card_service.gateway_card(self.number, self.exp_month, self.exp_year,
                                            self.holder_name, self.cvv, self.postal_code))


@dataclass(frozen=True)
class NewBankAccount:
    """A bank account typed in by the customer for one payment, debited by the journal's
    CHECK; never stored, logged or repeated back (saving one is done on the saved
    payment methods page, with the recurring authorisation)."""

    account_number: str
    routing_number: str
    account_type: str
    holder_name: str

    def __repr__(self):
        return f"NewBankAccount(••••{self.account_number[-4:]}, {self.account_type})"

    @property
    def last4(self):
        return self.account_number[-4:]

    def source(self, authorization_id):
        account = bank_accounts.gateway_account(self.account_number, self.routing_number,
                                                self.account_type)
        return journal.PaymentSource(
            brand=bank_accounts.type_label(self.account_type), last4=self.last4,
            bank=bank_accounts.BankDebit(sec="WEB", account_type=self.account_type,
                                         holder=self.holder_name,
                                         authorization_id=authorization_id, account=account))


class BankChoice(NamedTuple):
    """Paying by bank account: the saved account ``account_id`` or ``new_account`` (a
    :class:`NewBankAccount`), and ``acceptance`` (``bank_accounts.Acceptance``) of the
    one-time authorisation the customer was shown, or None where the account's
    authorisation in force applies (staff)."""

    account_id: int = None
    new_account: object = None
    acceptance: object = None


def unpaid_invoices(ctx, customer_id):
    """The customer's invoices with money due, oldest first (the dashboard widget)."""
    try:
        invoices = ctx.splynx.list_invoices(customer_id=customer_id,
                                            status=["not_paid", "pending"])
    except SplynxError as exc:
        log.warning("cannot list invoices of customer %s: %s", customer_id, exc)
        raise SplynxUnavailable(_UNAVAILABLE) from None
    unpaid = [i for i in invoices if i.customer_id == customer_id and documents.is_unpaid(i)]
    return sorted(unpaid, key=lambda i: (i.date_created or datetime.date.min, i.id))


def balance_cents(ctx, customer_id):
    """The customer's account balance in cents (negative: money owed)."""
    try:
        return ctx.splynx.get_customer_billing(customer_id).deposit_cents
    except SplynxError as exc:
        raise SplynxUnavailable(_UNAVAILABLE) from exc


_ACTIVITY_SQL = "SELECT count(*), max(updated_at) FROM payment_attempts WHERE customer_id = ?"


def activity_marker(ctx, customer_id):
    """Something that changes whenever one of the customer's payment attempts does: read-only
    answers cached under it are dropped by a payment made through any worker."""
    # Asked on every cached page view, in every worker: one indexed query sent as it is
    # (db.read_row) keeps it cheap.
    row = read_row(ctx.engine, _ACTIVITY_SQL, customer_id)
    return (row[0], str(row[1]))


# --- direct pay links -------------------------------------------------------------------

def link_signature(ctx, kind, document_id):
    """The key that makes a direct pay link for one document valid (docs/portal.md)."""
    message = f"splynx-ippay direct {kind} {int(document_id)}".encode()
    return hmac.new(ctx.secret, message, hashlib.sha256).hexdigest()[:24]


def link_signature_valid(ctx, kind, document_id, signature):
    """True when ``signature`` is the key of this document's direct link."""
    if not signature:
        return False
    return hmac.compare_digest(str(signature), link_signature(ctx, kind, document_id))


def direct_link(ctx, kind, document, by="id"):
    """The path of a direct pay link for ``document`` (to put in an e-mail), by id or number."""
    base = f"/ippay/direct-pay-{kind}"
    item = document.id if by == "id" else document.number
    path = f"{base}-by-id?item_id={item}" if by == "id" else f"{base}?item_id={item}"
    if ctx.module_settings.current().direct_links != "open":
        path += f"&sig={link_signature(ctx, kind, document.id)}"
    return path


# --- paying -----------------------------------------------------------------------------

def _terminal(ctx, customer_id):
    try:
        return card_service.customer_terminal(ctx, customer_id)
    except SplynxError:
        raise SplynxUnavailable(Sentence("The billing system is not answering right now. "
                                         "Nothing was charged; please try again in a few "
                                         "minutes.")) from None
    except GatewayError:
        raise PaymentError(card_service.GATEWAY_UNAVAILABLE) from None


def _saved_source(ctx, customer_id, card_id, terminal):
    card = card_service.get_card(ctx, customer_id, card_id) if card_id is not None else None
    if card is None:
        raise PaymentError("Choose one of your saved cards.")
    if card.is_expired(ctx.today()):
        raise PaymentError("The card {card} has expired. Please add a new card.", card=card.masked)
    if not card_service.on_terminal(card, terminal):
        raise PaymentError("The card {card} was saved for an earlier payment account of your "
                           "provider and cannot be charged any more. Please add it again.",
                           card=card.masked)
    return journal.PaymentSource(brand=card.brand, last4=card.last4, card=card)


def _bank_source(ctx, customer_id, bank, terminal):
    """The :class:`journal.PaymentSource` of a bank payment, its one-time authorisation
    recorded first when the customer gave one (the payment needs it or the account's
    authorisation in force). Raises :class:`PaymentError` with nothing sent."""
    if not bank_accounts.allows(ctx.module_settings.current(), Method.BANK):
        raise PaymentError("Payments by bank account are not accepted here.")
    if bank.new_account is not None:
        account = bank.new_account
        label = f"{bank_accounts.type_label(account.account_type)} •••• {account.last4} " \
                f"({account.routing_number})"
        auth_id = bank_accounts.record_single(ctx, customer_id, label=label,
                                              acceptance=bank.acceptance)
        return account.source(auth_id)
    row = bank_accounts.get_account(ctx, customer_id, bank.account_id) \
        if bank.account_id is not None else None
    if row is None:
        raise PaymentError("Choose one of your saved bank accounts.")
    if not card_service.on_terminal(row, terminal):
        raise PaymentError("The bank account {account} was saved for an earlier payment "
                           "account of your provider and cannot be debited any more. Please "
                           "add it again.", account=row.masked)
    single = None
    if bank.acceptance is not None:
        single = bank_accounts.record_single(ctx, customer_id, label=f"{row.masked} "
                                             f"({row.routing_number})",
                                             acceptance=bank.acceptance, card_id=row.id)
    try:
        debit = bank_accounts.saved_debit(ctx, row, single_authorization_id=single)
    except bank_accounts.BankAccountError as exc:
        raise PaymentError(exc.sentence) from None
    return journal.PaymentSource(brand=row.brand, last4=row.last4, card=row, bank=debit)


def _source(ctx, customer_id, terminal, *, card_id, new_card, bank):
    """What a payment is charged to: a bank account (``bank``), a card typed in or a saved
    card."""
    if bank is not None:
        return _bank_source(ctx, customer_id, bank, terminal)
    if not bank_accounts.allows(ctx.module_settings.current(), Method.CARD):
        raise PaymentError("Payments by card are not accepted here.")
    if new_card is not None:
        if new_card.save:
            limits.check_card_cap(ctx, ctx.module_settings.current().limits, customer_id)
        return new_card.source()
    return _saved_source(ctx, customer_id, card_id, terminal)


def _link_authorization(ctx, source, opened, bank):
    """A one-time authorisation names the payment it was given for."""
    if bank is not None and bank.acceptance is not None and not opened.replay:
        bank_accounts.link_single(ctx, source.bank.authorization_id,
                                  opened.attempt.transaction_id)


def _outcome(attempt):
    if attempt.status in (S.APPROVED, S.POST_PENDING, S.POSTED):
        return TrialOutcome.APPROVED
    if attempt.status == S.DECLINED:
        return TrialOutcome.DECLINED
    return TrialOutcome.ERROR


def _charge(ctx, opened, *, source, new_card, terminal, client_address, link_key):
    """Charge a freshly opened attempt through the journal; a card typed in is counted by
    the card-testing limits first and kept after an approval if the customer asked."""
    attempt = opened.attempt
    trial = None
    if new_card is not None:
        config = ctx.module_settings.current()
        try:
            trial = limits.admit(ctx, config.limits, purpose="pay",
                                 customer_id=attempt.customer_id, client_address=client_address,
                                 last4=source.last4, link_key=link_key)
        except limits.TryLater:
            journal.abandon(ctx, attempt, "refused by the card-testing limits",
                            message=N_("Not sent: too many cards tried. Nothing was charged."))
            raise
    attempt = journal.charge(ctx, attempt, source)
    if trial is not None:
        limits.settle(ctx, trial, _outcome(attempt), transaction_id=attempt.transaction_id)
    if new_card is not None and new_card.save and attempt.status.took_money and attempt.token:
        try:
            card_service.keep(ctx, attempt.customer_id, token=attempt.token, terminal=terminal,
                              brand=source.brand, last4=source.last4,
                              exp_month=new_card.exp_month, exp_year=new_card.exp_year,
                              holder_name=new_card.holder_name)
        except Exception:  # noqa: BLE001 - the payment is done; only the card is not kept
            log.exception("attempt %s paid, the card was not kept", attempt.transaction_id)
    return Outcome(attempt, False)


def _replayed(attempt, customer_id, kind, document_id):
    """An earlier attempt of the same (server-made) request key is shown, not repeated; a
    key of another payment is refused (it cannot be, being bound, but never trust it)."""
    if attempt.customer_id != customer_id or attempt.document_kind != kind or (
            kind is not None and attempt.document_id != document_id):
        raise PaymentError("This form can no longer be used, so nothing was charged. "
                           "Please reload the page and try again.")
    return Outcome(attempt, True)


def pay_document(ctx, kind, document, *, request_key, channel, card_id=None, new_card=None,
                 admin_id=None, client_address=None, link_key=None, fee_terms_shown=None,
                 bank=None):
    """Charge the amount due on ``document`` (an invoice or proforma read from Splynx).

    Pays with the saved card ``card_id``, with ``new_card`` (:class:`NewCard`) or by bank
    account (``bank``, a :class:`BankChoice`: a CHECK through the journal). The
    ``request_key`` is the journal key from ``request_keys.accept`` (a form submitted twice
    gets its first attempt back). ``admin_id`` is the administrator paying on the customer's
    behalf; ``link_key`` names a direct pay link for the card-testing limits;
    ``fee_terms_shown`` the :func:`fee_terms` the page showed (the customer's channels add
    the service fee, :data:`FEE_CHANNELS`). Returns an
    :class:`Outcome` (the attempt as it ends, see :func:`journal.charge`). Raises
    :class:`PaymentError`
    (or ``limits.TryLater`` / ``limits.TooManyCards``) when nothing was charged.
    """
    customer_id = document.customer_id
    earlier = journal.find_by_request_key(ctx, request_key)
    if earlier is not None:
        return _replayed(earlier, customer_id, kind, document.id)
    name = documents.NAMES[kind]
    if not documents.is_unpaid(document):
        raise AlreadyPaid("This {name} ({number}) is already paid.", name=name,
                          number=document.number)
    fee_rate = _fee_rate_checked(ctx, channel, fee_terms_shown, bank)
    partner_id, terminal = _terminal(ctx, customer_id)
    source = _source(ctx, customer_id, terminal, card_id=card_id, new_card=new_card, bank=bank)
    try:
        opened = journal.open_attempt(
            ctx, kind=documents.ATTEMPT_KINDS[kind], customer_id=customer_id,
            amount_cents=document.due_cents, source=source, channel=channel,
            terminal=terminal, partner_id=partner_id, document_id=document.id,
            document_number=document.number, request_key=request_key, admin_id=admin_id,
            fee_rate=fee_rate)
    except journal.AttemptInProgress:
        raise PaymentError("A payment of this {name} ({number}) is already being processed. "
                           "Please wait a moment and reload the page.", name=name,
                           number=document.number) from None
    if opened.replay:
        return _replayed(opened.attempt, customer_id, kind, document.id)
    _link_authorization(ctx, source, opened, bank)
    return _charge(ctx, opened, source=source, new_card=new_card, terminal=terminal,
                   client_address=client_address, link_key=link_key)


def refill_limits(ctx):
    """(minimum, maximum) refill amount in cents, from the module settings."""
    config = ctx.module_settings.current()
    return config.refill_min_cents, max(config.refill_min_cents, config.refill_max_cents)


def refill(ctx, customer_id, amount_cents, *, request_key, card_id=None, new_card=None,
           channel="portal", client_address=None, fee_terms_shown=None, bank=None):
    """Add ``amount_cents`` to the customer's balance: a payment linked to no document
    (the service fee, when set, is charged on top; ``fee_terms_shown`` as
    :func:`pay_document`).

    Raises :class:`AmountOutOfRange` outside the module's limits and :class:`PaymentError`
    when nothing was charged for another reason.
    """
    low, high = refill_limits(ctx)
    if not isinstance(amount_cents, int) or not low <= amount_cents <= high:
        raise AmountOutOfRange("The amount is outside the limits of this page.")
    earlier = journal.find_by_request_key(ctx, request_key)
    if earlier is not None:
        return _replayed(earlier, customer_id, None, None)
    fee_rate = _fee_rate_checked(ctx, channel, fee_terms_shown, bank)
    partner_id, terminal = _terminal(ctx, customer_id)
    source = _source(ctx, customer_id, terminal, card_id=card_id, new_card=new_card, bank=bank)
    try:
        opened = journal.open_attempt(
            ctx, kind=AttemptKind.REFILL, customer_id=customer_id, amount_cents=amount_cents,
            source=source, channel=channel, terminal=terminal, partner_id=partner_id,
            request_key=request_key, fee_rate=fee_rate)
    except journal.AttemptInProgress:
        raise PaymentError("Another payment to your balance is being processed. "
                           "Please wait a moment and reload the page.") from None
    if opened.replay:
        return _replayed(opened.attempt, customer_id, None, None)
    _link_authorization(ctx, source, opened, bank)
    return _charge(ctx, opened, source=source, new_card=new_card, terminal=terminal,
                   client_address=client_address, link_key=None)
