"""Saved bank accounts (ACH) and the debit authorisations they are debited under.

A bank account is a row of the ``cards`` table with ``method`` ``bank`` (models.py): the
gateway token IPpay's TOKENIZE made from the account and routing numbers, the account type
(CHECKING or SAVINGS), the routing number, the last four digits and the holder's name. The
account number passes through here on its way to the gateway and is never stored, logged or
sent anywhere else (design.md §3, invariant 5).

Nothing is saved or debited without an authorisation the customer accepted (NACHA; the rule
is written in docs/ach.md): saving an account needs the *recurring* authorisation text
accepted, each payment in the portal or by a direct link a *single* one; each acceptance is
kept (:class:`~splynx_ippay.models.AchAuthorization`: the text's version and SHA-256, when,
from which client address). Staff may record a written authorisation instead. Automatic and
staff debits use the account's authorisation in force (``Card.authorization_id``); revoking
it (the customer, staff, or a return such as R02) stops them. The SEC code follows from how
the authorisation was given (:func:`~splynx_ippay.ippay.ach.sec_code`).
"""

import hashlib
import logging
from typing import NamedTuple, Optional

from sqlalchemy import select

from ..db import session_scope
from ..ippay import BankAccount, GatewayError
from ..ippay.ach import ACCOUNT_TYPES, account_number_problem, routing_number_problem, sec_code
from ..messages import N_, Sentence
from ..models import AchAuthorization, Card, Method, utcnow
from ..splynx import SplynxError
from . import cards as card_service, notices

log = logging.getLogger(__name__)

#: The version of the authorisation texts below; a new wording gets a new version.
TEXT_VERSION = "2026-12"

#: What a customer accepts to save a bank account (debits now and automatically later).
#: The account is the one typed above it (kept with the acceptance as ``account_label``).
RECURRING_TEXT = N_(
    "I authorise {company} to debit the bank account entered above through the ACH "
    "network: for the invoices and balance I choose to pay on these pages, and "
    "automatically for my invoices when they are due. This authorisation stays in force "
    "until I revoke it on this page or by telling {company}; revoking it stops the debits "
    "not yet made. If my bank returns a debit, the invoice is due again.")

#: What a customer accepts to pay once from a bank account.
SINGLE_TEXT = N_(
    "I authorise {company} to debit {amount} once from the bank account chosen above "
    "through the ACH network, for {what}. If my bank returns the debit, the amount is due "
    "again.")

ACCOUNT_TYPE_NAMES = {"CHECKING": N_("Checking"), "SAVINGS": N_("Savings")}

#: The words the ippay.ach checks use, marked for the catalogue (they are shown as Sentences).
_CHECK_WORDS = (N_("The routing number must be 9 digits."),
                N_("The routing number is not valid: please check its 9 digits."),
                N_("The account number must be 4 to 17 digits."))

NOT_ACCEPTED = Sentence("Please read the debit authorisation and tick the box to accept it.")


class BankAccountError(card_service.CardError):
    """A bank account could not be saved or debited (a sentence for the customer)."""


class Acceptance(NamedTuple):
    """An authorisation text the customer was shown and accepted: ``text`` exactly as shown
    (in ``language``), from ``client_address``."""

    text: str
    language: str = "en"
    client_address: Optional[str] = None


class BankDebit(NamedTuple):
    """What a bank debit (CHECK) needs besides the token: the journal's view of the
    account. ``account`` is an ``ippay.BankAccount`` typed in for this payment (never
    stored), else None and the attempt's token is debited."""

    sec: str
    account_type: str
    holder: str
    authorization_id: Optional[int] = None
    account: object = None


def text_hash(text):
    """SHA-256 of an authorisation text as shown."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def type_label(account_type):
    """``Checking`` / ``Savings`` (English; the brand column of the row)."""
    return ACCOUNT_TYPE_NAMES.get(account_type, "Bank")


def holder_problem(name):
    """Why ``name`` cannot be an account holder's name (the CHECK's CardName), or None. A
    run of six digits or more is an account number in the wrong field: it would be kept."""
    name = (name or "").strip()
    if not name:
        return Sentence("Enter the first and last name of the account holder.")
    if len(name) > 100:
        return Sentence("The name may be at most 100 characters.")
    if card_service._DIGIT_RUN.search(name):
        return Sentence("The name may not contain an account number.")
    return None


def account_problems(routing, number, account_type):
    """``{field: Sentence}`` of what is wrong with a bank account typed in (empty: none)."""
    problems = {}
    why = routing_number_problem(routing)
    if why:
        problems["routing_number"] = Sentence(why)
    why = account_number_problem(number)
    if why:
        problems["account_number"] = Sentence(why)
    if account_type not in ACCOUNT_TYPES:
        problems["account_type"] = Sentence("Choose checking or savings.")
    return problems


def gateway_account(number, routing, account_type, sec="WEB"):
    """The ``ippay.BankAccount`` of an account typed in (never stored or logged)."""
    return BankAccount(account_number=number.strip(), routing_number=routing.strip(),
                       account_type=account_type, sec=sec)


# --- listing ----------------------------------------------------------------------------

def list_accounts(ctx, customer_id):
    """The customer's saved bank accounts, the default first."""
    return card_service.list_cards(ctx, customer_id, method=Method.BANK)


def get_account(ctx, customer_id, account_id):
    """One of the customer's bank accounts, or None (also another customer's or a card)."""
    row = card_service.get_card(ctx, customer_id, account_id)
    return row if row is not None and row.is_bank else None


def authorization(ctx, authorization_id):
    """An authorisation by id, or None."""
    if authorization_id is None:
        return None
    with session_scope(ctx.sessions) as session:
        return session.get(AchAuthorization, authorization_id)


def authorizations_of(ctx, customer_id):
    """Every authorisation the customer gave (newest first), for the staff page."""
    with session_scope(ctx.sessions) as session:
        return list(session.execute(select(AchAuthorization).where(
            AchAuthorization.customer_id == customer_id)
            .order_by(AchAuthorization.id.desc())).scalars())


def _own_row(session, customer_id, account_id):
    """One of the customer's bank account rows in ``session``, or None."""
    return session.execute(select(Card).where(
        Card.id == account_id, Card.customer_id == customer_id,
        Card.method == Method.BANK)).scalar_one_or_none()


def _label(row_or_type, last4=None):
    if isinstance(row_or_type, Card):
        return f"{row_or_type.masked} ({row_or_type.routing_number})"
    return f"{type_label(row_or_type)} •••• {last4}"


def _record(session, customer_id, *, label, scope, given, business, acceptance=None,
            card_id=None, admin_id=None, reference=None, transaction_id=None, text=None):
    text = acceptance.text if acceptance is not None else (text or "")
    row = AchAuthorization(
        customer_id=customer_id, card_id=card_id, account_label=label[:60], scope=scope,
        given=given, sec_code=sec_code(authorised=given, business=business),
        text_version=TEXT_VERSION, text_hash=text_hash(text),
        language=(acceptance.language if acceptance is not None else "en")[:8],
        client_address=(acceptance.client_address if acceptance is not None else None),
        admin_id=admin_id, reference=(reference or None) and reference[:100],
        transaction_id=transaction_id, accepted_at=utcnow())
    session.add(row)
    session.flush()
    return row


# --- saving -----------------------------------------------------------------------------

def save_account(ctx, customer_id, account, *, holder, acceptance, make_default=False):
    """Tokenize a bank account typed in (IPpay TOKENIZE) and save it with the recurring
    authorisation the customer accepted (``acceptance``: the text as shown).

    ``account`` is an ``ippay.BankAccount``. Nothing is sent without ``acceptance``.
    Raises :class:`BankAccountError` (refused, gateway or Splynx down) or
    ``limits.TooManyCards`` with nothing saved.
    """
    if acceptance is None or not acceptance.text:
        raise BankAccountError(NOT_ACCEPTED)
    config = ctx.module_settings.current()
    card_service.card_limits.check_card_cap(ctx, config.limits, customer_id)
    try:
        _partner, terminal = card_service.customer_terminal(ctx, customer_id)
    except SplynxError:
        raise BankAccountError("The billing system is not answering right now. Please try "
                               "again in a few minutes.") from None
    except GatewayError:
        raise BankAccountError(card_service.GATEWAY_UNAVAILABLE) from None
    try:
        result = ctx.gateways.client(terminal).tokenize_bank_account(account)
    except GatewayError:
        log.warning("bank account not saved for customer %s: gateway unavailable", customer_id)
        raise BankAccountError(card_service.GATEWAY_UNAVAILABLE) from None
    if not result.approved or not result.token:
        log.info("bank account refused for customer %s: %s %s", customer_id,
                 result.action_code, result.response_text)
        raise BankAccountError(Sentence("The bank account could not be saved: {reason}",
                                        reason=Sentence(result.message)))
    return keep(ctx, customer_id, token=result.token, terminal=terminal, account_type=account.account_type,
                routing=account.routing_number, last4=account.last4, holder=holder,
                acceptance=acceptance, make_default=make_default)


def keep(ctx, customer_id, *, token, terminal, account_type, routing, last4, holder,
         acceptance=None, make_default=False, business=False):
    """Keep a bank token (from TOKENIZE, or a CHECK that tokenized) as a saved account, and
    record the recurring authorisation ``acceptance`` when given (it becomes the one in
    force). The same token saved again updates its row."""
    with session_scope(ctx.sessions) as session:
        existing = session.execute(
            select(Card).where(Card.customer_id == customer_id)).scalars().all()
        row = next((c for c in existing if c.is_bank and c.token == token
                    and c.terminal_id in (None, terminal.terminal_id)), None)
        added = row is None
        if added:
            row = Card(customer_id=customer_id, token=token, method=Method.BANK)
            session.add(row)
        row.terminal_id, row.gateway_mode = terminal.terminal_id, terminal.mode
        row.brand, row.last4, row.account_type = type_label(account_type), last4, account_type
        row.routing_number, row.holder_name, row.business = routing, holder, bool(business)
        row.exp_month = row.exp_year = None
        if make_default or not any(c.is_default for c in existing if c is not row):
            for other in existing:
                other.is_default = False
            row.is_default = True
        session.flush()
        if acceptance is not None:
            auth = _record(session, customer_id, label=_label(row), scope="recurring",
                           given="online", business=row.business, acceptance=acceptance,
                           card_id=row.id)
            _replace_authorization(session, row, auth.id)
            row.autopay = bool(row.autopay or row.is_default)
        session.flush()
        log.info("bank account %s saved for customer %s", row.masked, customer_id)
    card_service.sync_payment_account(ctx, customer_id)
    if added:
        notices.bank_account_added(ctx, row)
    return row


def _replace_authorization(session, row, authorization_id, revoked_by="replaced"):
    if row.authorization_id and row.authorization_id != authorization_id:
        old = session.get(AchAuthorization, row.authorization_id)
        if old is not None and old.revoked_at is None:
            old.revoked_at, old.revoked_by = utcnow(), revoked_by
    row.authorization_id = authorization_id


def record_single(ctx, customer_id, *, label, acceptance, transaction_id=None, card_id=None):
    """Keep a one-time authorisation (a payment in the portal or by a direct link); returns
    its id. Raises :class:`BankAccountError` when nothing was accepted."""
    if acceptance is None or not acceptance.text:
        raise BankAccountError(NOT_ACCEPTED)
    with session_scope(ctx.sessions) as session:
        return _record(session, customer_id, label=label, scope="single", given="online",
                       business=False, acceptance=acceptance, card_id=card_id,
                       transaction_id=transaction_id).id


def link_single(ctx, authorization_id, transaction_id):
    """Name the payment (its TransactionID) a one-time authorisation was given for."""
    if authorization_id is None:
        return
    with session_scope(ctx.sessions) as session:
        row = session.get(AchAuthorization, authorization_id)
        if row is not None and row.transaction_id is None:
            row.transaction_id = transaction_id


def record_written(ctx, customer_id, account_id, *, admin_id, business, reference):
    """Staff record a signed (written) authorisation of one of the customer's accounts:
    it becomes the one in force (SEC PPD, or CCD for a business account). Returns it, or
    None when the account is not the customer's."""
    with session_scope(ctx.sessions) as session:
        row = _own_row(session, customer_id, account_id)
        if row is None:
            return None
        row.business = bool(business)
        auth = _record(session, customer_id, label=_label(row), scope="recurring",
                       given="written", business=row.business, card_id=row.id,
                       admin_id=admin_id, reference=reference,
                       text=f"written authorisation: {reference}")
        _replace_authorization(session, row, auth.id)
        log.info("written authorisation %s of %s recorded by admin %s", auth.id, row.masked,
                 admin_id)
        return auth


def revoke(ctx, customer_id, account_id, by="customer"):
    """End the authorisation in force of one of the customer's accounts: it is no longer
    debited automatically or by staff (a payment the customer makes and authorises again
    still may be). Returns False when the account is not the customer's."""
    with session_scope(ctx.sessions) as session:
        row = _own_row(session, customer_id, account_id)
        if row is None:
            return False
        _revoke_row(session, row, by)
    log.info("authorisation of bank account %s of customer %s revoked by %s", account_id,
             customer_id, by)
    return True


def reauthorize(ctx, customer_id, account_id, acceptance):
    """The customer accepts the recurring authorisation of a saved account again (after
    revoking it); returns the new authorisation, or None when the account is not theirs."""
    if acceptance is None or not acceptance.text:
        raise BankAccountError(NOT_ACCEPTED)
    with session_scope(ctx.sessions) as session:
        row = _own_row(session, customer_id, account_id)
        if row is None:
            return None
        auth = _record(session, customer_id, label=_label(row), scope="recurring",
                       given="online", business=row.business, acceptance=acceptance,
                       card_id=row.id)
        _replace_authorization(session, row, auth.id)
        return auth


def _revoke_row(session, row, by):
    if row.authorization_id:
        auth = session.get(AchAuthorization, row.authorization_id)
        if auth is not None and auth.revoked_at is None:
            auth.revoked_at, auth.revoked_by = utcnow(), by[:20]
    row.authorization_id = None
    row.autopay = False


def stop_debits(ctx, card_id, by):
    """Take a bank account out of automatic debits (an ACH return such as R02): its
    authorisation is revoked; returns the row, or None."""
    with session_scope(ctx.sessions) as session:
        row = session.get(Card, card_id) if card_id else None
        if row is None or not row.is_bank:
            return None
        _revoke_row(session, row, by)
        return row


def remove_account(ctx, customer_id, account_id):
    """Forget one of the customer's bank accounts (its authorisation ends with it; the
    record of it is kept). False if not theirs."""
    account = get_account(ctx, customer_id, account_id)
    if account is None:
        return False
    revoke(ctx, customer_id, account_id, by="removed")
    removed = card_service.remove_card(ctx, customer_id, account_id, notify=False)
    if removed:
        notices.bank_account_removed(ctx, account)
    return removed


# --- debiting ---------------------------------------------------------------------------

def saved_debit(ctx, card, *, single_authorization_id=None):
    """The :class:`BankDebit` of a saved account: under a one-time authorisation just
    given (SEC WEB), else the account's authorisation in force. Raises
    :class:`BankAccountError` when there is none (revoked, or never given)."""
    if single_authorization_id is not None:
        return BankDebit(sec="WEB", account_type=card.account_type, holder=card.holder_name,
                         authorization_id=single_authorization_id)
    auth = authorization(ctx, card.authorization_id)
    if auth is None or auth.revoked_at is not None:
        raise BankAccountError("The debit authorisation of the bank account {account} was "
                               "revoked, so it cannot be debited.", account=card.masked)
    return BankDebit(sec=auth.sec_code, account_type=card.account_type,
                     holder=card.holder_name, authorization_id=auth.id)


def revoked_reason(session, customer_id):
    """Why a customer's saved bank account is not debited automatically or by staff (its
    debit authorisation was revoked: by the customer, removed, or by a return), in staff
    words; None when the customer has no such account."""
    row = session.execute(select(Card).where(
        Card.customer_id == customer_id, Card.method == Method.BANK,
        Card.authorization_id.is_(None)).order_by(Card.is_default.desc(), Card.id)
    ).scalars().first()
    if row is None:
        return None
    last = session.execute(select(AchAuthorization).where(
        AchAuthorization.card_id == row.id, AchAuthorization.revoked_at.isnot(None))
        .order_by(AchAuthorization.id.desc())).scalars().first()
    by = f" ({_REVOKED_BY.get(last.revoked_by, last.revoked_by)})" if last is not None else ""
    return (f"The debit authorisation of the bank account {row.masked} was revoked{by}, so it "
            "is not debited.")


#: Who ended an authorisation (``AchAuthorization.revoked_by``), in staff words.
_REVOKED_BY = {"customer": "by the customer", "removed": "the account was removed",
               "replaced": "replaced by a newer one"}


def allowed_methods(config):
    """The methods (``card``, ``bank``) the module setting ``payment_type`` allows."""
    return tuple(m for m in ("card", "bank") if allows(config, m))


def allows(config, method):
    """True when the module setting ``payment_type`` lets customers use ``method``."""
    return config.payment_type in ("all", Method(method).value)
