"""Saved cards: verify at IPpay with the CVV, keep only what may be kept, list, choose, remove.

A card number and CVV pass through here on their way to the gateway and are never stored,
logged or sent anywhere else (design.md §3, invariant 5). A card's first gateway call
carries its CVV2 (docs/portal.md "CVV on first use"): a card saved without paying is
verified by an AUTHONLY of :data:`VERIFY_CENTS` with ``Tokenize="true"`` — the issuer
checks the CVV, the reply carries the token — and the hold is released at once
(REVERSEAUTH, else VOID; an authorisation that cannot be released lapses by itself, no
money moves). A card typed in to pay goes to the journal's SALE with its CVV2 instead
(payments.py). Either way the try is counted by the card-testing limits first (limits.py).

A token is charged only on the terminal that made it: each card keeps its terminal, and a
card whose terminal is no longer its customer's is not offered or charged.
"""

import datetime as dt
import logging
import re

from sqlalchemy import bindparam, func, select

from ..db import session_scope
from ..ippay import Card as GatewayCard, GatewayError, new_transaction_id
from ..messages import Sentence, UserError
from ..models import Card, GatewayMode, Method, TrialOutcome
from ..splynx import SplynxError
from . import customers, limits as card_limits, notices
from .settings import Terminal

log = logging.getLogger(__name__)

#: The authorisation that verifies a card saved without paying (released at once) [I].
VERIFY_CENTS = 100

#: Issuer identification number ranges by brand, longest prefixes first where they overlap.
_BRANDS = (
    ("American Express", ((34, 34), (37, 37))),
    ("Diners Club", ((300, 305), (36, 36), (38, 39))),
    ("JCB", ((3528, 3589),)),
    ("Discover", ((6011, 6011), (622126, 622925), (644, 649), (65, 65))),
    ("Mastercard", ((51, 55), (2221, 2720))),
    ("Visa", ((4, 4),)),
)

#: Six or more digits in a row (spaces or dashes between them, as card numbers are typed).
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){5,}")

_LENGTHS = {"American Express": {15}, "Diners Club": {14, 16, 19}, "Visa": {13, 16, 19}}

CARD_NUMBER_IN_NAME = Sentence("The name may not contain a card number. Enter the name as it "
                               "is printed on the card.")
GATEWAY_UNAVAILABLE = Sentence("The payment gateway is not answering right now, so the card "
                               "could not be used. Nothing was charged. Please try again in "
                               "a few minutes.")


class CardError(UserError):
    """A card could not be saved or used (a sentence for the customer)."""


def digits_only(number):
    """The card number without the spaces or dashes people type."""
    return "".join(ch for ch in (number or "") if ch not in " -")


def luhn_valid(number):
    """True when ``number`` (ASCII digits) passes the Luhn check every card number carries."""
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _ascii_digits(text):
    return bool(text) and text.isascii() and text.isdigit()


def detect_brand(number):
    """The card brand from its first digits, or "Card" when unknown."""
    if not _ascii_digits(number):
        return "Card"
    for brand, ranges in _BRANDS:
        for low, high in ranges:
            width = len(str(low))
            if len(number) >= width and low <= int(number[:width]) <= high:
                return brand
    return "Card"


def number_problem(number):
    """Why ``number`` cannot be a card number, as a Sentence, or None when it can."""
    if not number:
        return Sentence("Enter the card number.")
    if not _ascii_digits(number):
        return Sentence("The card number may contain digits only.")
    if not 13 <= len(number) <= 19:
        return Sentence("A card number has 13 to 19 digits.")
    brand = detect_brand(number)
    if brand in _LENGTHS and len(number) not in _LENGTHS[brand]:
        return Sentence("A {brand} card number has {lengths} digits.", brand=brand,
                        lengths="/".join(map(str, sorted(_LENGTHS[brand]))))
    if not luhn_valid(number):
        return Sentence("This card number is not valid. Please check the digits.")
    return None


def expiry_problem(month, year, today=None):
    """Why a card with this expiry cannot be used, as a Sentence, or None."""
    today = today or dt.date.today()
    if not 1 <= month <= 12:
        return Sentence("The month must be between 01 and 12.")
    if (year, month) < (today.year, today.month):
        return Sentence("This card has expired.")
    if year > today.year + 20:
        return Sentence("The expiry year is too far in the future.")
    return None


def holder_name_problem(name):
    """Why ``name`` cannot be a card holder's name, as a Sentence, or None. A run of six
    or more digits is refused: it is a card number typed in the wrong field, and it would
    be stored and shown."""
    name = (name or "").strip()
    if not name:
        return Sentence("Enter the name as it is printed on the card.")
    if len(name) > 100:
        return Sentence("The name may be at most 100 characters.")
    if _DIGIT_RUN.search(name):
        return CARD_NUMBER_IN_NAME
    return None


# --- which terminal -------------------------------------------------------------------------

def customer_terminal(ctx, customer_id):
    """``(partner_id, Terminal)``: where the customer's new cards and payments go (their
    Splynx partner's settings). Raises SplynxError, or GatewayUnavailable (context.py) when
    no gateway may be used."""
    partner_id = customers.partner_of(ctx, customer_id)
    config = ctx.module_settings.current()
    return partner_id, ctx.gateways.terminal_for(config.for_partner(partner_id), config.read_ok)


def on_terminal(card, terminal):
    """True when ``card``'s token belongs to ``terminal`` (cards saved before terminals were
    recorded are taken to be on the customer's current one)."""
    if card.terminal_id is None:
        return True
    return (card.terminal_id, card.gateway_mode) == (terminal.terminal_id, terminal.mode)


# --- saved cards ----------------------------------------------------------------------------

def _saved_of(method):
    query = select(Card).where(Card.customer_id == bindparam("customer_id"))
    if method is not None:
        query = query.where(Card.method == method)
    return query.order_by(Card.is_default.desc(), Card.id)


#: Per method (None: both), built once: pages read them on every view, and a statement
#: made once keeps its cache key (models._conditional_update).
_SAVED = {method: _saved_of(method) for method in (None, *Method)}


def list_cards(ctx, customer_id, method=Method.CARD):
    """The customer's saved cards (or bank accounts: ``method``; None: both), the default
    first."""
    query = _SAVED[None if method is None else Method(method)]
    with session_scope(ctx.sessions) as session:
        return list(session.execute(query, {"customer_id": customer_id}).scalars())


def cards_and_accounts(ctx, customer_id):
    """``(cards, bank accounts)`` the customer saved, each the default first: one read for
    the pages that offer both."""
    saved = list_cards(ctx, customer_id, method=None)
    return [c for c in saved if not c.is_bank], [c for c in saved if c.is_bank]


def get_card(ctx, customer_id, card_id):
    """One of the customer's cards, or None (also when it is another customer's)."""
    with session_scope(ctx.sessions) as session:
        return session.execute(
            select(Card).where(Card.id == card_id, Card.customer_id == customer_id)
        ).scalar_one_or_none()


def debitable(query, methods=None):
    """``query`` of cards kept to those staff and automatic runs may charge: cards, and
    bank accounts with a debit authorisation in force (docs/ach.md); only ``methods``
    when given (the module setting ``payment_type``)."""
    query = query.where((Card.method == Method.CARD) | Card.authorization_id.isnot(None))
    if methods is not None:
        query = query.where(Card.method.in_([Method(m) for m in methods]))
    return query


def default_cards(session, customer_ids, methods=None):
    """The default (else newest) saved card or authorised bank account of each customer
    in ``customer_ids`` (only ``methods``, when given)."""
    rows = session.execute(debitable(
        select(Card).where(Card.customer_id.in_(list(customer_ids))), methods)
        .order_by(Card.customer_id, Card.is_default.desc(), Card.id.desc())
    ).scalars().all()
    best = {}
    for card in rows:
        best.setdefault(card.customer_id, card)
    return best


def count_cards(ctx, customer_id):
    with session_scope(ctx.sessions) as session:
        return session.execute(select(func.count()).select_from(Card)
                               .where(Card.customer_id == customer_id)).scalar()


def _release(gateway, transaction_id, result):
    """Release a verification hold (REVERSEAUTH, else VOID); a hold left lapses by itself."""
    try:
        released = gateway.release_authorization(transaction_id, result.approval, VERIFY_CENTS,
                                                 token=result.token).approved
    except GatewayError as exc:
        log.info("verification %s not released: %s", transaction_id, exc)
        released = False
    if not released:
        log.warning("verification %s could not be released; the hold lapses by itself",
                    transaction_id)
    return released


def keep(ctx, customer_id, *, token, terminal, brand, last4, exp_month, exp_year,
         holder_name, make_default=False, replaces=None):
    """Keep a token the gateway made (with what may be shown of the card) as a saved card.

    ``replaces`` is the id of one of the customer's cards that the new one takes the place
    of (and its default flag): it is removed once the new card is saved.
    """
    with session_scope(ctx.sessions) as session:
        existing = session.execute(
            select(Card).where(Card.customer_id == customer_id)).scalars().all()
        old = next((c for c in existing if replaces is not None and c.id == replaces), None)
        if replaces is not None and old is None:
            raise CardError("The card to replace was not found.")
        row = next((c for c in existing if c.token == token
                    and c.terminal_id in (None, terminal.terminal_id)), None)
        added = row is None
        if added:
            row = Card(customer_id=customer_id, token=token)
            session.add(row)
        row.terminal_id, row.gateway_mode = terminal.terminal_id, terminal.mode
        row.brand, row.last4 = brand, last4
        row.exp_month, row.exp_year, row.holder_name = exp_month, exp_year, holder_name
        if old is not None and old is not row:
            make_default = make_default or old.is_default
            session.delete(old)
            existing = [c for c in existing if c is not old]
        if make_default or not any(c.is_default for c in existing if c is not row):
            for other in existing:
                other.is_default = False
            row.is_default = True
        # Automatic payments use the default card (or the card it replaces, as it was).
        row.autopay = old.autopay if old is not None else bool(row.autopay or row.is_default)
        session.flush()
        log.info("card %s saved for customer %s%s", row.masked, customer_id,
                 f" in place of card {replaces}" if old is not None else "")
    sync_payment_account(ctx, customer_id)
    if added:
        notices.card_added(ctx, row)
    return row


def save_card(ctx, customer_id, typed, *, client_address=None, make_default=False,
              replaces=None):
    """Verify a card typed in (AUTHONLY with its CVV2, released at once) and save its token.

    ``typed`` is an ``ippay.Card`` (number, expiry, CVV, holder, optional ZIP for AVS).
    Raises :class:`CardError` (declined: the issuer's reason in plain words; gateway down),
    ``limits.TryLater`` / ``limits.TooManyCards`` (card-testing limits) with nothing sent.
    """
    config = ctx.module_settings.current()
    if replaces is None:
        card_limits.check_card_cap(ctx, config.limits, customer_id)
    try:
        _partner, terminal = customer_terminal(ctx, customer_id)
    except SplynxError:
        raise CardError("The billing system is not answering right now. Please try again "
                        "in a few minutes.") from None
    except GatewayError:
        raise CardError(GATEWAY_UNAVAILABLE) from None
    trial = card_limits.admit(ctx, config.limits, purpose="save", customer_id=customer_id,
                              client_address=client_address, last4=typed.number[-4:])
    transaction_id = new_transaction_id()
    # The verification's TransactionID is committed before it is sent.
    card_limits.settle(ctx, trial, TrialOutcome.ALLOWED, transaction_id=transaction_id)
    gateway = ctx.gateways.client(terminal)
    try:
        result = gateway.authorize(transaction_id, VERIFY_CENTS, card=typed, tokenize=True)
    except GatewayError:
        card_limits.settle(ctx, trial, TrialOutcome.ERROR)
        log.warning("card not verified for customer %s: gateway unavailable", customer_id)
        raise CardError(GATEWAY_UNAVAILABLE) from None
    if not result.approved or not result.token:
        card_limits.settle(ctx, trial, TrialOutcome.DECLINED)
        log.info("card refused for customer %s: %s %s", customer_id, result.action_code,
                 result.response_text)
        if result.approved:  # approved without a token: nothing to keep (the hold lapses)
            raise CardError(GATEWAY_UNAVAILABLE)
        raise CardError(Sentence(result.message))
    card_limits.settle(ctx, trial, TrialOutcome.APPROVED)
    _release(gateway, transaction_id, result)
    return keep(ctx, customer_id, token=result.token, terminal=terminal,
                brand=detect_brand(typed.number), last4=typed.number[-4:],
                exp_month=typed.exp_month, exp_year=typed.exp_year, holder_name=typed.holder,
                make_default=make_default, replaces=replaces)


def _account_line(card):
    detail = f"routing {card.routing_number}" if card.is_bank else card.expiry
    return f"{card.masked} · {detail}" + (" · default" if card.is_default else "")


def sync_payment_account(ctx, customer_id):
    """Show the customer's saved cards in Splynx (Customer → Billing → Payment accounts):
    one read-only line per card in the add-on's payment account, default first; the tokens
    stay in the add-on. Best effort: a Splynx that does not answer is logged, and the next
    change of the customer's cards writes it again. Returns True when Splynx took it."""
    account_id = ctx.module_settings.current().payment_account_id
    if not account_id:
        return False
    cards = list_cards(ctx, customer_id, method=None)[:10]
    try:
        if cards:
            fields = {f"field_{n}": "" for n in range(1, 11)}
            fields.update({f"field_{n}": _account_line(c) for n, c in enumerate(cards, 1)})
            ctx.splynx.put_payment_account(customer_id, account_id, fields)
        else:
            ctx.splynx.delete_payment_account(customer_id, account_id)
    except SplynxError as exc:
        log.warning("customer %s: saved cards not shown in Splynx's payment accounts: %s",
                    customer_id, exc)
        return False
    return True


def update_expiry(ctx, customer_id, card_id, exp_month, exp_year):
    """Give a saved card its new expiry (TOKENIZE with the token and the new date, on the
    card's own terminal): the number is not typed again. Returns the card; raises
    :class:`CardError` when the gateway refuses or does not answer."""
    card = get_card(ctx, customer_id, card_id)
    if card is None:
        raise CardError("The card was not found.")
    terminal = Terminal(card.gateway_mode or GatewayMode.TEST,
                        card.terminal_id or ctx.settings["IPPAY_TERMINAL_ID"])
    try:
        result = ctx.gateways.client(terminal).update_token_expiry(card.token, exp_month, exp_year)
    except GatewayError:
        raise CardError(GATEWAY_UNAVAILABLE) from None
    if not result.approved:
        raise CardError(Sentence(result.message))
    with session_scope(ctx.sessions) as session:
        row = session.get(Card, card_id)
        row.exp_month, row.exp_year = exp_month, exp_year
        row.token = result.token or row.token
        row.hard_declines = 0
        session.flush()
        card = row
    log.info("card %s of customer %s now expires %s", card.masked, customer_id, card.expiry)
    sync_payment_account(ctx, customer_id)
    return card


def remove_card(ctx, customer_id, card_id, notify=True):
    """Forget one of the customer's cards (or bank accounts); another becomes the default.
    False if not theirs. ``notify``: the "card removed" message."""
    with session_scope(ctx.sessions) as session:
        row = session.execute(
            select(Card).where(Card.id == card_id, Card.customer_id == customer_id)
        ).scalar_one_or_none()
        if row is None:
            return False
        was_default = row.is_default
        session.delete(row)
        session.flush()
        if was_default:
            successor = session.execute(
                select(Card).where(Card.customer_id == customer_id).order_by(Card.id)
            ).scalars().first()
            if successor is not None:
                successor.is_default = True
    sync_payment_account(ctx, customer_id)
    if notify:
        notices.card_removed(ctx, row)
    return True


def set_default_card(ctx, customer_id, card_id):
    """Make one of the customer's cards the default. False if not theirs."""
    with session_scope(ctx.sessions) as session:
        rows = session.execute(select(Card).where(Card.customer_id == customer_id)).scalars().all()
        if not any(r.id == card_id for r in rows):
            return False
        for row in rows:
            row.is_default = row.id == card_id
    sync_payment_account(ctx, customer_id)
    return True


def gateway_card(number, exp_month, exp_year, holder_name, cvv=None, postal_code=None):
    """The ``ippay.Card`` of a card typed in (never stored, logged or repeated back)."""
    return GatewayCard(number=number, exp_month=exp_month, exp_year=exp_year, cvv=cvv,
                       holder=holder_name, postal_code=postal_code or None)

