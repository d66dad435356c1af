"""Amounts are integer cents inside the add-on; these helpers meet people's notation."""

import re

from .i18n import _

_AMOUNT = re.compile(r"^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$")


class AmountError(ValueError):
    """An amount as typed cannot be a payment amount; ``str()`` says why in plain words."""


def parse_amount(text):
    """Cents from an amount typed as ``12``, ``12.5`` or ``12.50``.

    Refuses what a person could mean two ways or did not mean: commas, more than two
    decimals, signs, exponents, letters, and zero.
    """
    text = (text or "").strip()
    if not text:
        raise AmountError(_("Enter an amount."))
    if "," in text:
        raise AmountError(_("Use a point for decimals, for example 12.50."))
    match = _AMOUNT.match(text)
    if not match:
        if re.match(r"^\s*\d+\.\d{3,}\s*$", text):
            raise AmountError(_("Use at most two decimals, for example 12.50."))
        if text.startswith("-"):
            raise AmountError(_("The amount must be more than zero."))
        raise AmountError(_("Enter the amount as a number, for example 12.50."))
    cents = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    if cents <= 0:
        raise AmountError(_("The amount must be more than zero."))
    return cents


def format_cents(cents, currency=""):
    """``7550`` → ``"75.50"`` (with the currency sign or code in front when given)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{currency}{whole:,}.{part:02d}"
