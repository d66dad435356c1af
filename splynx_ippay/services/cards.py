"""Saved cards: tokenise at IPpay, keep only what may be kept, list, choose, remove.

A card number and CVV pass through here on their way to the gateway and are never stored,
logged or sent anywhere else (design.md §3, invariant 5).
"""

import datetime as dt
import logging

from sqlalchemy import select

from ..db import session_scope
from ..i18n import _
from ..ippay import Card as GatewayCard, GatewayError
from ..models import Card

log = logging.getLogger(__name__)

#: Issuer identification number ranges by brand, longest prefixes first where they overlap.
_BRANDS = (
    ("American Express", ((34, 34), (37, 37))),
    ("Diners Club", ((300, 305), (36, 36), (38, 39))),
    ("JCB", ((3528, 3589),)),
    ("Discover", ((6011, 6011), (622126, 622925), (644, 649), (65, 65))),
    ("Mastercard", ((51, 55), (2221, 2720))),
    ("Visa", ((4, 4),)),
)

_LENGTHS = {"American Express": {15}, "Diners Club": {14, 16, 19}, "Visa": {13, 16, 19}}


class CardError(Exception):
    """A card could not be saved; ``str()`` is a sentence for the customer."""


def digits_only(number):
    """The card number without the spaces or dashes people type."""
    return "".join(ch for ch in (number or "") if ch not in " -")


def luhn_valid(number):
    """True when ``number`` (digits) passes the Luhn check every card number carries."""
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def detect_brand(number):
    """The card brand from its first digits, or "Card" when unknown."""
    if not number.isdigit():
        return "Card"
    for brand, ranges in _BRANDS:
        for low, high in ranges:
            width = len(str(low))
            if len(number) >= width and low <= int(number[:width]) <= high:
                return brand
    return "Card"


def number_problem(number):
    """Why ``number`` cannot be a card number, in plain words, or None when it can."""
    if not number:
        return _("Enter the card number.")
    if not number.isdigit():
        return _("The card number may contain digits only.")
    if not 13 <= len(number) <= 19:
        return _("A card number has 13 to 19 digits.")
    brand = detect_brand(number)
    if brand in _LENGTHS and len(number) not in _LENGTHS[brand]:
        return _("A {brand} card number has {lengths} digits.", brand=brand,
                 lengths=_(" or ").join(map(str, sorted(_LENGTHS[brand]))))
    if not luhn_valid(number):
        return _("This card number is not valid. Please check the digits.")
    return None


def expiry_problem(month, year, today=None):
    """Why a card with this expiry cannot be used, or None."""
    today = today or dt.date.today()
    if not 1 <= month <= 12:
        return _("The month must be between 01 and 12.")
    if (year, month) < (today.year, today.month):
        return _("This card has expired.")
    if year > today.year + 20:
        return _("The expiry year is too far in the future.")
    return None


def list_cards(addon, customer_id):
    """The customer's saved cards, the default first."""
    with session_scope(addon.sessions) as session:
        rows = session.execute(
            select(Card).where(Card.customer_id == customer_id)
            .order_by(Card.is_default.desc(), Card.id)
        ).scalars().all()
        return list(rows)


def get_card(addon, customer_id, card_id):
    """One of the customer's cards, or None (also when it is another customer's)."""
    with session_scope(addon.sessions) as session:
        return session.execute(
            select(Card).where(Card.id == card_id, Card.customer_id == customer_id)
        ).scalar_one_or_none()


def tokenize(addon, customer_id, *, number, exp_month, exp_year, holder_name, cvv=None,
             postal_code=None):
    """Store a card at IPpay (TOKENIZE) and return an unsaved :class:`Card` holding the token.

    ``postal_code`` (the billing ZIP) goes to the gateway for AVS and is kept nowhere. The
    returned row is not in the database: :func:`save_card` keeps it, a one-time payment
    charges it through the journal and forgets it. Raises :class:`CardError` with the
    gateway's reason in plain words when it refuses or cannot be reached.
    """
    card = GatewayCard(number=number, exp_month=exp_month, exp_year=exp_year, cvv=cvv,
                       holder=holder_name, postal_code=(postal_code or None))
    try:
        result = addon.gateway.tokenize(card)
    except GatewayError:
        log.warning("card not tokenised for customer %s: gateway unavailable", customer_id)
        raise CardError(_("The payment gateway is not answering right now, so the card could not "
                          "be used. Nothing was charged. Please try again in a few minutes.")
                        ) from None
    if not result.approved:
        log.info("card refused for customer %s: %s %s", customer_id, result.action_code,
                 result.response_text)
        raise CardError(_(result.message))
    return Card(customer_id=customer_id, token=result.token, brand=detect_brand(number),
                last4=number[-4:], exp_month=exp_month, exp_year=exp_year,
                holder_name=holder_name, is_default=False)


def save_card(addon, customer_id, *, number, exp_month, exp_year, holder_name, cvv=None,
              make_default=False, postal_code=None, replaces=None):
    """Tokenise a card at IPpay and keep the token with what may be shown of the card.

    ``replaces`` is the id of one of the customer's cards that the new one takes the place
    of (and its default flag): it is removed once the new card is saved. Raises
    :class:`CardError` with the gateway's reason in plain words when it refuses.
    """
    fresh = tokenize(addon, customer_id, number=number, exp_month=exp_month, exp_year=exp_year,
                     holder_name=holder_name, cvv=cvv, postal_code=postal_code)
    with session_scope(addon.sessions) as session:
        existing = session.execute(
            select(Card).where(Card.customer_id == customer_id)).scalars().all()
        old = next((c for c in existing if replaces is not None and c.id == replaces), None)
        if replaces is not None and old is None:
            raise CardError(_("The card to replace was not found."))
        row = next((c for c in existing if c.token == fresh.token), None)
        if row is None:
            row = Card(customer_id=customer_id, token=fresh.token)
            session.add(row)
        row.brand = fresh.brand
        row.last4 = fresh.last4
        row.exp_month = exp_month
        row.exp_year = exp_year
        row.holder_name = holder_name
        if old is not None and old is not row:
            make_default = make_default or old.is_default
            session.delete(old)
            existing = [c for c in existing if c is not old]
        if make_default or not any(c.is_default for c in existing if c is not row):
            for other in existing:
                other.is_default = False
            row.is_default = True
        session.flush()
        log.info("card %s saved for customer %s%s", row.masked, customer_id,
                 f" in place of card {replaces}" if old is not None else "")
        return row


def remove_card(addon, customer_id, card_id):
    """Forget one of the customer's cards; another becomes the default. False if not theirs."""
    with session_scope(addon.sessions) as session:
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
        return True


def set_default_card(addon, customer_id, card_id):
    """Make one of the customer's cards the default. False if not theirs."""
    with session_scope(addon.sessions) as session:
        rows = session.execute(select(Card).where(Card.customer_id == customer_id)).scalars().all()
        if not any(r.id == card_id for r in rows):
            return False
        for row in rows:
            row.is_default = row.id == card_id
        return True
