"""Customer forms. The card number and CVV are never put back into a re-rendered form."""

import re
import secrets

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from ..services.cards import detect_brand, digits_only, expiry_problem, number_problem


def parse_expiry(text):
    """(month, four-digit year) from ``MM/YY`` or ``MM/YYYY``; raises ValueError."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", text or "")
    if not match:
        raise ValueError("Enter the expiry as MM/YY, for example 09/29.")
    month, year = int(match.group(1)), int(match.group(2))
    return month, year + 2000 if year < 100 else year


class CardForm(FlaskForm):
    """Add a card: holder name, number, expiry MM/YY, CVV."""

    holder_name = StringField("Name on card", validators=[
        DataRequired("Enter the name as it is printed on the card."),
        Length(max=100, message="The name may be at most 100 characters.")])
    number = StringField("Card number")
    expiry = StringField("Expiry (MM/YY)")
    cvv = StringField("Security code (CVV)")
    make_default = BooleanField("Use as my default card")

    def validate_number(self, field):
        problem = number_problem(digits_only(field.data))
        if problem:
            raise ValidationError(problem)

    def validate_expiry(self, field):
        try:
            month, year = parse_expiry(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        problem = expiry_problem(month, year)
        if problem:
            raise ValidationError(problem)

    def validate_cvv(self, field):
        cvv = (field.data or "").strip()
        wanted = 4 if detect_brand(digits_only(self.number.data)) == "American Express" else 3
        if not cvv:
            raise ValidationError("Enter the security code from the back of the card.")
        if not cvv.isdigit() or len(cvv) != wanted:
            raise ValidationError(f"The security code has {wanted} digits.")

    @property
    def card_number(self):
        return digits_only(self.number.data)

    @property
    def expiry_parts(self):
        return parse_expiry(self.expiry.data)


def new_request_key():
    """A one-time key that lets a resubmitted payment form find its first attempt."""
    return secrets.token_urlsafe(24)


class PayForm(FlaskForm):
    """Pay one document with one saved card."""

    card_id = RadioField("Card", coerce=int, validate_choice=True,
                         validators=[DataRequired("Choose a card.")])
    request_key = HiddenField(validators=[DataRequired(), Length(max=64)])
