"""Money as integer cents: the one parse and the one format (standard library only).

Amounts are ``int`` cents from the moment they leave a form or a Splynx response until they
are written back. People type ``12``, ``12.5``, ``12.50`` or ``1,000.00`` (the pages print
amounts grouped that way); :func:`parse_amount` takes exactly those and refuses what could
be meant two ways. Only ASCII digits count: ``١٠`` or ``５０`` are not amounts here.

Error sentences are English :class:`~splynx_ippay.messages.Sentence` s; the page that shows
one translates it (i18n.py).
"""

import re

from .messages import N_, UserError


class AmountError(UserError, ValueError):
    """An amount as typed cannot be a payment amount; ``str()`` says why (English, to be
    translated where it is shown)."""


class AmountTooLarge(AmountError):
    """More than any amount the add-on takes (:data:`MAX_CENTS`)."""


_PLAIN = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,2})?", re.ASCII)
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3}){1,2}(?:\.[0-9]{1,2})?", re.ASCII)
_TOO_MANY_DECIMALS = re.compile(r"[0-9,]+\.[0-9]{3,}", re.ASCII)
#: The largest amount anything in the add-on accepts: 999,999,999.99.
MAX_CENTS = 99_999_999_999


def parse_amount(text, sign=""):
    """Cents from an amount typed as ``12``, ``12.5``, ``12.50`` or ``1,000.00``.

    A leading currency ``sign`` (``$``) is allowed. Refuses signs, exponents, letters,
    non-ASCII digits, more than two decimals, a comma that is not a thousands separator
    (``12,50``), zero, and more than :data:`MAX_CENTS` (:class:`AmountTooLarge`).
    """
    text = (text or "").strip()
    if sign and text.startswith(sign):
        text = text[len(sign):].strip()
    if not text:
        raise AmountError(N_("Enter an amount."))
    if _PLAIN.fullmatch(text):
        digits = text
    elif _GROUPED.fullmatch(text):
        digits = text.replace(",", "")
    elif _TOO_MANY_DECIMALS.fullmatch(text):
        raise AmountError(N_("Use at most two decimals, for example 12.50."))
    elif text.startswith("-"):
        raise AmountError(N_("The amount must be more than zero."))
    elif re.fullmatch(r"[0-9]+,[0-9]{1,2}", text, re.ASCII):
        raise AmountError(N_("Use a point for decimals, for example 12.50."))
    elif re.fullmatch(r"[0-9]{10,}(\.[0-9]{1,2})?", text, re.ASCII):
        raise AmountTooLarge(N_("Enter the amount as a number, for example 12.50."))
    else:
        raise AmountError(N_("Enter the amount as a number, for example 12.50."))
    whole, _, fraction = digits.partition(".")
    cents = int(whole) * 100 + int((fraction + "00")[:2])
    if cents <= 0:
        raise AmountError(N_("The amount must be more than zero."))
    return cents


def format_cents(cents, sign="", grouped=True):
    """``755012`` → ``"7,550.12"``: with the currency ``sign`` in front when given, without
    thousands separators when ``grouped`` is False (CSV files, APIs)."""
    minus = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    whole_text = f"{whole:,}" if grouped else str(whole)
    return f"{minus}{sign}{whole_text}.{part:02d}"


def decimal_text(cents):
    """Cents as the decimal string APIs take: ``7550`` → ``"75.50"``."""
    return format_cents(cents, grouped=False)
