"""Customer forms. The card number and CVV are never put back into a re-rendered form."""

import re

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField
from wtforms.validators import ValidationError

from ..i18n import _, ngettext, say
from ..messages import N_
from ..money import AmountError, AmountTooLarge, format_cents, parse_amount
from ..services.cards import (CARD_NUMBER_IN_NAME, detect_brand, digits_only, expiry_problem,
                              holder_name_problem, number_problem)
from ..services.payments import NewCard

NEW_CARD = "new"


def parse_expiry(text):
    """(month, four-digit year) from ``MM/YY`` or ``MM/YYYY``; raises ValueError."""
    match = re.fullmatch(r"\s*([0-9]{1,2})\s*/\s*([0-9]{2}|[0-9]{4})\s*", text or "", re.ASCII)
    if not match:
        raise ValueError(_("Enter the expiry as MM/YY, for example 09/29."))
    month, year = int(match.group(1)), int(match.group(2))
    return month, year + 2000 if year < 100 else year


class CardFieldsForm(FlaskForm):
    """The fields of a card: holder name, number, expiry MM/YY, CVV, optional ZIP.

    Checked only when :meth:`wants_new_card` says the card is being used (a payment form
    with a saved card chosen ignores them).
    """

    holder_name = StringField(N_("Name on card"))
    number = StringField(N_("Card number"))
    expiry = StringField(N_("Expiry (MM/YY)"))
    cvv = StringField(N_("Security code (CVV)"))
    postal_code = StringField(N_("Billing ZIP code (optional)"))

    def wants_new_card(self):
        return True

    def validate_holder_name(self, field):
        if self.wants_new_card():
            problem = holder_name_problem(field.data)
            if problem:
                raise ValidationError(say(problem))

    def validate_number(self, field):
        if self.wants_new_card():
            problem = number_problem(digits_only(field.data))
            if problem:
                raise ValidationError(say(problem))

    def validate_expiry(self, field):
        if not self.wants_new_card():
            return
        try:
            month, year = parse_expiry(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        problem = expiry_problem(month, year)
        if problem:
            raise ValidationError(say(problem))

    def validate_cvv(self, field):
        if not self.wants_new_card():
            return
        cvv = (field.data or "").strip()
        wanted = 4 if detect_brand(digits_only(self.number.data)) == "American Express" else 3
        if not cvv:
            raise ValidationError(_("Enter the security code from the back of the card."))
        if not (cvv.isascii() and cvv.isdigit()) or len(cvv) != wanted:
            raise ValidationError(ngettext("The security code has {count} digit.",
                                           "The security code has {count} digits.", wanted))

    def validate_postal_code(self, field):
        if not self.wants_new_card():
            return
        code = (field.data or "").strip()
        if code and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 -]{1,8}[A-Za-z0-9]", code, re.ASCII):
            raise ValidationError(_("Enter the ZIP code of the card's billing address, "
                                    "for example 30301, or leave it empty."))

    @property
    def card_number(self):
        return digits_only(self.number.data)

    def new_card(self, save=False):
        """The typed card as a :class:`NewCard` (after validation)."""
        month, year = parse_expiry(self.expiry.data)
        return NewCard(number=self.card_number, exp_month=month, exp_year=year,
                       holder_name=self.holder_name.data.strip(), cvv=self.cvv.data.strip(),
                       postal_code=(self.postal_code.data or "").strip() or None, save=save)

    def forget_card_data(self):
        """Never send the card number or CVV back in a re-rendered form (nor a name field
        that holds a card number)."""
        self.number.data = ""
        self.cvv.data = ""
        if holder_name_problem(self.holder_name.data) == CARD_NUMBER_IN_NAME:
            self.holder_name.data = ""


class ExpiryForm(FlaskForm):
    """A saved card's new expiry date (the number is not typed again)."""

    expiry = StringField("New expiry (MM/YY)")

    def validate_expiry(self, field):
        try:
            month, year = parse_expiry(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        problem = expiry_problem(month, year)
        if problem:
            raise ValidationError(say(problem))


class CardForm(CardFieldsForm):
    """Add (or replace) a saved card."""

    make_default = BooleanField(N_("Use as my default card"))


class _PayingForm(CardFieldsForm):
    """A payment form: a saved card (its id) or ``new`` with the card fields filled in, and
    the request key the server issued with the form (services/request_keys.py)."""

    card_id = StringField(N_("Pay with"))
    save_card = BooleanField(N_("Save this card for next time"))
    request_key = HiddenField()
    #: The service fee terms the page showed (payments.fee_terms), checked when paying.
    fee_terms = HiddenField()

    #: Ids of the customer's usable saved cards, set by the view.
    allowed_cards = ()

    def wants_new_card(self):
        return (self.card_id.data or "") == NEW_CARD

    def validate_card_id(self, field):
        value = (field.data or "").strip()
        if value == NEW_CARD:
            return
        if not (value.isascii() and value.isdigit()) or int(value) not in self.allowed_cards:
            raise ValidationError(_("Choose one of your saved cards or enter a new card."))

    @property
    def saved_card_id(self):
        return None if self.wants_new_card() else int(self.card_id.data)


class PayForm(_PayingForm):
    """Pay the amount due on one document."""


class RefillForm(_PayingForm):
    """Add money to the balance: an amount and a card."""

    amount = StringField(N_("Amount"))

    #: (minimum, maximum) in cents and the currency sign, set by the view.
    limits = (1, 10**9)
    sign = ""

    def validate_amount(self, field):
        low, high = self.limits
        try:
            cents = parse_amount(field.data, sign=self.sign)
        except AmountTooLarge:
            cents = high + 1
        except AmountError as exc:
            raise ValidationError(say(exc)) from None
        if cents < low:
            raise ValidationError(_("The smallest amount you can add is {amount}.",
                                    amount=format_cents(low, self.sign)))
        if cents > high:
            raise ValidationError(_("The largest amount you can add is {amount}.",
                                    amount=format_cents(high, self.sign)))
        field.cents = cents
