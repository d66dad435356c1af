"""Customer forms. The card number and CVV are never put back into a re-rendered form."""

import re

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, StringField
from wtforms.validators import ValidationError

from ..i18n import _, ngettext, say
from ..messages import N_
from ..money import AmountError, AmountTooLarge, format_cents, parse_amount
from ..services.cards import (CARD_NUMBER_IN_NAME, detect_brand, digits_only, expiry_problem,
                              holder_name_problem, number_problem)
from ..services.bank_accounts import NOT_ACCEPTED, account_problems, holder_problem
from ..services.payments import NewBankAccount, NewCard

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


# --- bank accounts (docs/ach.md) ----------------------------------------------------------

ACCOUNT_TYPE_CHOICES = [("CHECKING", N_("Checking")), ("SAVINGS", N_("Savings"))]
NEW_ACCOUNT = "new"


class BankFieldsForm(FlaskForm):
    """The fields of a bank account: holder's first and last name, routing number, account
    number, CHECKING or SAVINGS, and the debit authorisation accepted. Checked only when
    :meth:`wants_new_account` says the account is being used. The account number is never
    put back into a re-rendered form."""

    first_name = StringField(N_("Account holder's first name"))
    last_name = StringField(N_("Account holder's last name"))
    routing_number = StringField(N_("Routing number (9 digits)"))
    account_number = StringField(N_("Account number"))
    account_type = SelectField(N_("Checking or savings"), choices=ACCOUNT_TYPE_CHOICES,
                               validate_choice=False)

    def wants_new_account(self):
        return True

    @property
    def holder(self):
        return " ".join(p for p in ((self.first_name.data or "").strip(),
                                    (self.last_name.data or "").strip()) if p)

    def validate_first_name(self, field):
        if self.wants_new_account() and not (field.data or "").strip():
            raise ValidationError(_("Enter the first name of the account holder."))

    def validate_last_name(self, field):
        if not self.wants_new_account():
            return
        if not (field.data or "").strip():
            raise ValidationError(_("Enter the last name of the account holder."))
        problem = holder_problem(self.holder)
        if problem:
            raise ValidationError(say(problem))

    def _check(self, name):
        if self.wants_new_account():
            problem = account_problems(self.routing_number.data, self.account_number.data,
                                       self.account_type.data).get(name)
            if problem:
                raise ValidationError(say(problem))

    def validate_routing_number(self, field):
        self._check("routing_number")

    def validate_account_number(self, field):
        self._check("account_number")

    def validate_account_type(self, field):
        self._check("account_type")

    def forget_account_data(self):
        """Never send the account number back (nor a name field holding one)."""
        self.account_number.data = ""
        for field in (self.first_name, self.last_name):
            if holder_problem(field.data) is not None and (field.data or "").strip():
                field.data = ""

    def typed_account(self):
        """The account typed in as a :class:`NewBankAccount` (after validation)."""
        return NewBankAccount(account_number=self.account_number.data.strip(),
                              routing_number=self.routing_number.data.strip(),
                              account_type=self.account_type.data, holder_name=self.holder)


class BankAccountForm(BankFieldsForm):
    """Save a bank account, accepting the recurring debit authorisation."""

    accept_debit = BooleanField(N_("I have read and accept the debit authorisation above"))
    make_default = BooleanField(N_("Use as my default payment method"))

    def validate_accept_debit(self, field):
        if not field.data:
            raise ValidationError(say(NOT_ACCEPTED))


class _PayingForm(CardFieldsForm, BankFieldsForm):
    """A payment form: a card (a saved card's id, or ``new`` with the card fields filled
    in) or, with ``pay_method`` ``bank``, a bank account (a saved one's id in ``bank_id``,
    or ``new`` with the bank fields) and the one-time debit authorisation accepted; and the
    request key the server issued with the form (services/request_keys.py)."""

    pay_method = StringField(N_("Account type"))
    card_id = StringField(N_("Pay with"))
    save_card = BooleanField(N_("Save this card for next time"))
    bank_id = StringField(N_("Pay from"))
    accept_debit = BooleanField(N_("I have read and accept the debit authorisation above"))
    request_key = HiddenField()
    #: The service fee terms the page showed (payments.fee_terms), checked when paying.
    fee_terms = HiddenField()

    #: Ids of the customer's usable saved cards and bank accounts, and the methods the
    #: module setting ``payment_type`` allows, set by the view.
    allowed_cards = ()
    allowed_accounts = ()
    methods = ("card", "bank")

    def by_bank(self):
        return (self.pay_method.data or "card") == "bank"

    def wants_new_card(self):
        return not self.by_bank() and (self.card_id.data or "") == NEW_CARD

    def wants_new_account(self):
        return self.by_bank() and (self.bank_id.data or "") == NEW_ACCOUNT

    def validate_pay_method(self, field):
        if (field.data or "card") not in self.methods:
            raise ValidationError(_("Choose how to pay."))

    def validate_card_id(self, field):
        if self.by_bank():
            return
        value = (field.data or "").strip()
        if value == NEW_CARD:
            return
        if not (value.isascii() and value.isdigit()) or int(value) not in self.allowed_cards:
            raise ValidationError(_("Choose one of your saved cards or enter a new card."))

    def validate_bank_id(self, field):
        if not self.by_bank():
            return
        value = (field.data or "").strip()
        if value == NEW_ACCOUNT:
            return
        if not (value.isascii() and value.isdigit()) or int(value) not in self.allowed_accounts:
            raise ValidationError(_("Choose one of your saved bank accounts or enter one."))

    def validate_accept_debit(self, field):
        if self.by_bank() and not field.data:
            raise ValidationError(say(NOT_ACCEPTED))

    @property
    def saved_card_id(self):
        return None if self.by_bank() or self.wants_new_card() else int(self.card_id.data)

    @property
    def saved_account_id(self):
        return None if not self.by_bank() or self.wants_new_account() else int(self.bank_id.data)

    def forget_card_data(self):
        CardFieldsForm.forget_card_data(self)
        self.forget_account_data()


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
