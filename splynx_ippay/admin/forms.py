"""Staff forms (WTForms, as the portal's): module settings (the default's and a partner's),
automatic payments (schedules and the decline policy), a charge run's period and filters,
the transaction log's filters, a void and a refund. Each
says what is wrong in staff words, and none offers the journal's internal states."""

import re

from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateField, FieldList, Form, FormField, IntegerField,
                     SelectField, SelectMultipleField, StringField)
from wtforms.validators import InputRequired, NumberRange, Optional as Empty, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ..config import LANGUAGES, terminal_id_problem
from ..money import AmountError, parse_amount
from ..services.charge_runs.filters import PeriodError, RunFilters, check_period, parse_customer_ids
from ..services.autopay import (CUSTOMER_STATUSES, MODES as SCHEDULE_MODES, TRIGGER_WORDS,
                                ScheduleError, parse_schedule, schedules_json)
from ..services import fees
from ..services.settings import (CONCURRENCY_RANGE, KEYS as SETTING_KEYS, PARTNER_KEYS,
                                 PAYMENT_TYPES,
                                 STATEMENT_GROUPINGS)
from ..services.transactions import CHANNEL_WORDS, OUTCOME_FILTERS

#: The endpoints staff may choose; any other needs config.ini (root), see config.py.
GATEWAY_MODES = {"test": "IPpay test gateway", "live": "IPpay live gateway"}


def _optional_int(value):
    """A select's value as an int, or None for the empty choice (anything else is None too:
    the validators then say so)."""
    if value in (None, "", "None"):
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text) if text.isascii() and text.isdigit() and len(text) < 11 else -1


class AmountField(StringField):
    """An amount as people type it (``1,000.00``); ``.cents`` after validation."""

    cents = None

    def pre_validate(self, form):
        text = (self.data or "").strip()
        if not text:
            self.cents = None
            return
        try:
            self.cents = parse_amount(text)
        except AmountError as exc:
            raise ValidationError(f"{exc} (got {text[:20]!r})") from None


class FeeField(AmountField):
    """An amount that may be zero (no fee): empty, ``0`` or ``0.00`` is 0 cents."""

    def pre_validate(self, form):
        text = (self.data or "").strip()
        if text.replace(".", "").replace("0", "") == "":
            self.cents = 0
            return
        super().pre_validate(form)


class WholeNumberField(IntegerField):
    """A whole number from ``low`` to ``high``; one sentence for every way to miss it."""

    def __init__(self, label, low, high, **kwargs):
        self.low, self.high = low, high
        message = f"Enter a whole number from {low} to {high}."
        super().__init__(label, validators=[InputRequired(message), NumberRange(low, high, message)],
                         **kwargs)

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(f"Enter a whole number from {self.low} to {self.high}.") from None


class PeriodDateField(DateField):
    """A ``YYYY-MM-DD`` date of a charge period; ``which`` is "first" or "last"."""

    def __init__(self, label, which, **kwargs):
        super().__init__(label, **kwargs)
        self.which = which

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(f"The {self.which} date must be a date such as 2024-06-30.") from None


def _blank_is(default):
    """A filter: a field left empty means ``default`` (0 % is no fee)."""
    return lambda value: (value or "").strip() or default


class StoredValue:
    """Checks a field with the parser services/settings.py reads the stored value with, so
    that the page refuses exactly what the add-on could not use."""

    def __init__(self, key):
        self.parse = SETTING_KEYS[key][0]

    def __call__(self, form, field):
        try:
            self.parse(field.data if field.data is not None else "")
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"The value {exc}.") from None


class PartnerSettingsForm(FlaskForm):
    """What a Splynx partner may set apart from the default (services.settings.PARTNER_KEYS):
    the page of one partner in the "Partner: ▾" selector."""

    terminal_id = StringField("Terminal ID")
    gateway_mode = SelectField("Gateway", choices=list(GATEWAY_MODES.items()))
    payment_method_id = SelectField("Payment method for card payments", coerce=int)
    bank_payment_method_id = SelectField("Payment method for bank account payments", coerce=int)

    def validate_terminal_id(self, field):
        field.data = (field.data or "").strip()
        problem = terminal_id_problem(field.data)
        if problem:
            raise ValidationError(problem)

    def values(self):
        return {key: getattr(self, key).data for key in PARTNER_KEYS}


def partner_data(partner):
    """The partner form's values from a :class:`~..services.settings.PartnerSettings`."""
    return {"terminal_id": partner.terminal_id or "",
            "gateway_mode": partner.gateway_mode.value if partner.gateway_mode else "test",
            "payment_method_id": partner.payment_method_id or 0,
            "bank_payment_method_id": partner.bank_payment_method_id or 0}


class SettingsForm(PartnerSettingsForm):
    """The module settings page (services/settings.py keeps every key and its default)."""

    payment_account_id = SelectField("Payment account", coerce=int)
    payment_type = SelectField("Payment type (what customers may save and pay with)",
                               choices=list(PAYMENT_TYPES.items()))
    ach_return_fee = FeeField("Fee for a returned bank debit (0: none)")
    statement_grouping = SelectField("Payment statement grouping",
                                     choices=list(STATEMENT_GROUPINGS.items()))
    refill_min = AmountField("Refill minimum")
    refill_max = AmountField("Refill maximum")
    charge_concurrency = WholeNumberField(
        f"Charge concurrency ({CONCURRENCY_RANGE[0]}–{CONCURRENCY_RANGE[1]})", *CONCURRENCY_RANGE)
    language = SelectField("Language of the customer pages", choices=list(LANGUAGES.items()))
    staff_roles = StringField("Splynx roles that may change settings, void and refund")
    limit_new_cards_per_customer_day = WholeNumberField(
        "New cards a customer may try per day", 1, 1000)
    limit_declines_per_customer_day = WholeNumberField(
        "Declined cards per customer per day", 1, 1000)
    limit_link_declines = WholeNumberField("Declined cards before a pay link pauses", 1, 100)
    limit_link_pause_minutes = WholeNumberField("Pay link pause (minutes)", 1, 10080)
    limit_tries_per_address_hour = WholeNumberField(
        "New cards per client address per hour", 1, 10000)
    limit_max_saved_cards = WholeNumberField("Saved cards a customer may keep", 1, 100)
    # Service fees (docs/fees.md); each checked with the parser the stored value is read with.
    fee_card_percent = StringField(
        f"Card service fee (%, 0 = none, at most {fees.format_rate(fees.MAX_FEE_RATE)})",
        [StoredValue("fee_card_percent")], filters=[_blank_is("0")])
    fee_bank_percent = StringField(
        f"Bank account service fee (%, 0 = none, at most {fees.format_rate(fees.MAX_FEE_RATE)})",
        [StoredValue("fee_bank_percent")], filters=[_blank_is("0")])
    fee_vat_percent = StringField(
        f"VAT on the fee (%, at most {fees.format_rate(fees.MAX_VAT_RATE)})",
        [StoredValue("fee_vat_percent")], filters=[_blank_is("0")])
    fee_text = StringField("Fee text (what customers see and Splynx gets)",
                           [StoredValue("fee_text")],
                           filters=[_blank_is(SETTING_KEYS["fee_text"][1])])
    fee_category_id = SelectField("Splynx transaction category of fees", coerce=int, default=0)
    fee_autopay = BooleanField("Automatic payments add the card service fee")

    def validate_refill_min(self, field):
        if field.cents is None:
            raise ValidationError("Enter an amount of at least 0.01, such as 5.00.")

    def validate_refill_max(self, field):
        if field.cents is None or field.cents > 10_000_000:
            raise ValidationError("Enter an amount between 0.01 and 100,000.00.")
        if self.refill_min.cents is not None and self.refill_min.cents > field.cents:
            raise ValidationError("The maximum may not be below the minimum.")

    def validate_ach_return_fee(self, field):
        if (field.cents or 0) > 100_000:
            raise ValidationError("Enter an amount up to 1,000.00.")

    def validate_staff_roles(self, field):
        roles = [r.strip() for r in (field.data or "").split(",") if r.strip()]
        if not roles:
            raise ValidationError("Name at least one Splynx role, e.g. super-administrator.")
        field.data = ",".join(roles)

    def values(self):
        """What is stored in the module config (amounts in cents)."""
        return {
            "terminal_id": self.terminal_id.data, "gateway_mode": self.gateway_mode.data,
            "payment_method_id": self.payment_method_id.data,
            "bank_payment_method_id": self.bank_payment_method_id.data,
            "payment_account_id": self.payment_account_id.data or None,
            "payment_type": self.payment_type.data,
            "ach_return_fee_cents": self.ach_return_fee.cents or 0,
            "statement_grouping": self.statement_grouping.data,
            "refill_min_cents": self.refill_min.cents, "refill_max_cents": self.refill_max.cents,
            "charge_concurrency": self.charge_concurrency.data, "language": self.language.data,
            "staff_roles": self.staff_roles.data,
            **{name: getattr(self, name).data for name in LIMIT_FIELDS},
            # Stored as the percentage read back (``2.50`` → ``2.5``), text as typed.
            **{name: fees.format_rate(SETTING_KEYS[name][0](getattr(self, name).data))
               for name in FEE_RATE_FIELDS},
            "fee_text": self.fee_text.data,
            "fee_category_id": self.fee_category_id.data or None,
            "fee_autopay": bool(self.fee_autopay.data),
        }


FEE_RATE_FIELDS = ("fee_card_percent", "fee_bank_percent", "fee_vat_percent")
#: The service fee fields of the settings page, in their order.
FEE_FIELDS = FEE_RATE_FIELDS + ("fee_text", "fee_category_id", "fee_autopay")
LIMIT_FIELDS = ("limit_new_cards_per_customer_day", "limit_declines_per_customer_day",
                "limit_link_declines", "limit_link_pause_minutes",
                "limit_tries_per_address_hour", "limit_max_saved_cards")


def settings_data(config):
    """The form's values from the settings as they are (amounts as text)."""
    limits = config.limits
    return {
        "terminal_id": config.default.terminal_id or "",
        "gateway_mode": (config.default.gateway_mode.value if config.default.gateway_mode
                         else "test"),
        "payment_method_id": config.default.payment_method_id or 0,
        "bank_payment_method_id": config.default.bank_payment_method_id or 0,
        "payment_account_id": config.payment_account_id or 0,
        "payment_type": config.payment_type,
        "ach_return_fee": f"{config.ach_return_fee_cents / 100:.2f}",
        "statement_grouping": config.statement_grouping,
        "refill_min": f"{config.refill_min_cents / 100:.2f}",
        "refill_max": f"{config.refill_max_cents / 100:.2f}",
        "charge_concurrency": config.charge_concurrency, "language": config.language,
        "staff_roles": ",".join(config.staff_roles),
        "limit_new_cards_per_customer_day": limits.new_cards_per_customer_day,
        "limit_declines_per_customer_day": limits.declines_per_customer_day,
        "limit_link_declines": limits.link_declines,
        "limit_link_pause_minutes": limits.link_pause_minutes,
        "limit_tries_per_address_hour": limits.tries_per_address_hour,
        "limit_max_saved_cards": limits.max_saved_cards,
        **{f"fee_{m}_percent": fees.format_rate(config.fees.rates.get(m, 0))
           for m in fees.METHODS},
        "fee_vat_percent": fees.format_rate(config.fees.vat_rate),
        "fee_text": config.fees.text, "fee_category_id": config.fees.category_id or 0,
        "fee_autopay": config.fees.autopay,
    }


class ChargeForm(FlaskForm):
    """A charge run's period of invoice dates and its optional filters."""

    date_from = PeriodDateField("Invoice date from", "first", validators=[
        InputRequired("Enter the period: both the first and the last invoice date.")])
    date_to = PeriodDateField("Invoice date to", "last", validators=[
        InputRequired("Enter the period: both the first and the last invoice date.")])
    customer_ids = StringField("Customer IDs (optional)")
    #: Choices are Splynx's partners, filled by the view (``partner_choices``).
    partner_id = SelectField("Partner", coerce=_optional_int, validate_choice=False)
    min_total = AmountField("Minimum total (optional)")
    max_total = AmountField("Maximum total (optional)")
    with_fees = BooleanField("Add the card service fee to each charge")

    def validate_partner_id(self, field):
        if field.data is not None and not 0 < field.data < 2**31:
            raise ValidationError("Choose a partner from the list.")

    def partner_choices(self, partners):
        """The partner select: every partner by name (``partners`` is ``{id: Name}``, or None
        when Splynx did not say: the chosen one is kept, by number)."""
        choices = [("", "All partners")]
        if partners:
            choices += [(str(p.id), str(p)) for p in partners.values()]
        if self.partner_id.data and str(self.partner_id.data) not in dict(choices):
            choices.append((str(self.partner_id.data), f"#{self.partner_id.data}"))
        self.partner_id.choices = choices

    def validate_customer_ids(self, field):
        try:
            self.customer_id_list = parse_customer_ids(field.data)
        except PeriodError as exc:
            raise ValidationError(str(exc)) from None

    def validate_date_to(self, field):
        if self.date_from.data and field.data:
            try:
                check_period(self.date_from.data, field.data)
            except PeriodError as exc:
                raise ValidationError(str(exc)) from None

    def validate_max_total(self, field):
        low, high = self.min_total.cents, field.cents
        if low is not None and high is not None and low > high:
            raise ValidationError("The minimum total is above the maximum total.")

    def filters(self):
        """The validated filters as a :class:`RunFilters`."""
        return RunFilters(customer_ids=getattr(self, "customer_id_list", ()),
                          partner_id=self.partner_id.data, min_total_cents=self.min_total.cents,
                          max_total_cents=self.max_total.cents)


class TransactionFilterForm(FlaskForm):
    """The transaction log's filters (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    customer_id = IntegerField("Customer ID", validators=[
        Empty(), NumberRange(1, 2**31 - 1, "The customer must be a customer ID (a number).")])
    date_from = PeriodDateField("From", "first", validators=[Empty()])
    date_to = PeriodDateField("To", "last", validators=[Empty()])
    outcome = SelectField("Outcome", choices=[("", "any")] + [
        (key, words) for key, (words, _) in OUTCOME_FILTERS.items()], validators=[Empty()])
    channel = SelectField("Channel", choices=[("", "any")] + [
        (channel.value, words) for channel, words in CHANNEL_WORDS.items()], validators=[Empty()])

    def filters(self):
        return {k: v for k, v in (("customer_id", self.customer_id.data),
                                  ("date_from", self.date_from.data),
                                  ("date_to", self.date_to.data),
                                  ("outcome", self.outcome.data or None),
                                  ("channel", self.channel.data or None)) if v}


class VoidForm(FlaskForm):
    """A void's reason (the amount is always the whole payment)."""

    reason = StringField("Reason (optional)")


class RefundForm(FlaskForm):
    """A refund's amount and reason."""

    amount = AmountField("Amount")
    reason = StringField("Reason (optional)")

    def validate_amount(self, field):
        if field.cents is None:
            raise ValidationError("Enter the amount to refund, for example 12.50.")



# --- automatic payments -------------------------------------------------------------------

class ScheduleForm(Form):
    """One autopay schedule (a row of the automatic payments page); services/autopay.py
    checks the whole row (parse_schedule) and says what is wrong with it."""

    id = StringField("Id")
    name = StringField("Name")
    trigger = SelectField("When", choices=[(k, v.format(days="N")) for k, v in TRIGGER_WORDS.items()])
    days = StringField("N (days)")
    at = StringField("Time of day")
    mode = SelectField("Amount", choices=list(SCHEDULE_MODES.items()))
    min_total = StringField("Invoice total from")
    max_total = StringField("Invoice total to")
    partner_id = SelectField("Partner", coerce=_optional_int, validate_choice=False)
    statuses = SelectMultipleField("Customer statuses", choices=[(s, s) for s in CUSTOMER_STATUSES],
                                   widget=ListWidget(prefix_label=False),
                                   option_widget=CheckboxInput())
    enabled = BooleanField("Enabled")
    remove = BooleanField("Remove")

    def blank(self):
        """A row left empty (the one offered for a new schedule)."""
        return not (self.id.data or "").strip() and not (self.name.data or "").strip()

    def as_data(self):
        name = (self.name.data or "").strip()
        # A new schedule's id may be left out: it is made from the name ("On the due date" →
        # "on-the-due-date"), and kept from then on (its runs are keyed by it).
        made = re.sub(r"[^a-z0-9]+", "-", name.lower().encode("ascii", "ignore").decode())
        return {"id": (self.id.data or "").strip() or made.strip("-")[:40], "name": name,
                "trigger": self.trigger.data, "days": (self.days.data or "0").strip() or "0",
                "at": (self.at.data or "").strip(), "mode": self.mode.data,
                "min_total": (self.min_total.data or "").strip(),
                "max_total": (self.max_total.data or "").strip(),
                "partner_id": self.partner_id.data, "statuses": self.statuses.data or [],
                "enabled": bool(self.enabled.data)}


#: The collections settings of the automatic payments page, each checked as stored.
COLLECTION_KEYS = ("autopay_catch_up_days", "retry_at", "retry_days", "retry_max_tries",
                   "autopay_hard_declines", "reminder_days", "staff_emails", "public_url")


class AutopayForm(FlaskForm):
    """The automatic payments page: the schedules, the decline policy and the messages."""

    schedules = FieldList(FormField(ScheduleForm), min_entries=1)
    autopay_catch_up_days = StringField("Missed days caught up after downtime (0–14)",
                                        [StoredValue("autopay_catch_up_days")])
    retry_at = StringField("Time of day of the retries", [StoredValue("retry_at")])
    retry_days = StringField("Retry soft declines after (days from the first try)",
                             [StoredValue("retry_days")])
    retry_max_tries = StringField("Tries per invoice at most (1–10)",
                                  [StoredValue("retry_max_tries")])
    autopay_hard_declines = StringField(
        "Hard declines in a row that stop a card's automatic use (1–10)",
        [StoredValue("autopay_hard_declines")])
    reminder_days = StringField("Reminder e-mail, days before the charge (0: none; 0–30)",
                                [StoredValue("reminder_days")])
    receipts = BooleanField("E-mail a receipt after each payment")
    staff_emails = StringField("Staff who get each automatic run's summary",
                               [StoredValue("staff_emails")])
    public_url = StringField("Address customers reach Splynx at (for links in e-mails)",
                             [StoredValue("public_url")])

    def validate_schedules(self, field):
        self.parsed, seen = [], set()
        for entry in field.entries:
            row = entry.form
            if row.remove.data or row.blank():
                continue
            try:
                schedule = parse_schedule(row.as_data())
            except ScheduleError as exc:
                row.id.errors = list(row.id.errors) + [str(exc)]
                raise ValidationError("A schedule needs attention.") from None
            if schedule.id in seen:
                row.id.errors = list(row.id.errors) + [
                    f"Another schedule has the id {schedule.id}; each needs its own."]
                raise ValidationError("A schedule needs attention.")
            seen.add(schedule.id)
            self.parsed.append(schedule)

    def values(self):
        """What is stored in the module config."""
        values = {key: getattr(self, key).data.strip() for key in COLLECTION_KEYS}
        values["receipts"] = bool(self.receipts.data)
        values["autopay_schedules"] = schedules_json(self.parsed)
        return values


def autopay_data(config):
    """The page's values from the settings as they are, with an empty row for a new
    schedule."""
    rows = [dict(s.as_json(), min_total=s.as_json()["min_total"] or "",
                 max_total=s.as_json()["max_total"] or "", days=str(s.days))
            for s in config.autopay_schedules]
    rows.append({"trigger": "due_day", "at": "06:00", "mode": "due", "statuses": ["active"],
                 "enabled": True})
    return {"schedules": rows,
            "autopay_catch_up_days": str(config.autopay_catch_up_days),
            "retry_at": f"{config.retry_at:%H:%M}",
            "retry_days": ",".join(str(d) for d in config.retry_days),
            "retry_max_tries": str(config.retry_max_tries),
            "autopay_hard_declines": str(config.autopay_hard_declines),
            "reminder_days": str(config.reminder_days), "receipts": config.receipts,
            "staff_emails": ", ".join(config.staff_emails), "public_url": config.public_url}
