"""Service fees: the one place a fee is worked out (docs/fees.md).

A fee is a percentage of the amount paid, set per payment method in the module settings
(``fee_card_percent``, ``fee_bank_percent``), with VAT on the fee (``fee_vat_percent``).
Everything is integer cents and rates are integer hundredths of a percent (``295`` is
2.95 %), so no float ever touches money. The rounding rules, written down in docs/fees.md:

- the fee is ``amount × rate``, rounded half-up to the cent;
- the VAT is ``fee × VAT rate`` on the *rounded* fee, rounded half-up to the cent;
- a refund of part of a payment returns the same fraction of the fee and of its VAT,
  worked out on the running total refunded so far (:func:`refund_share`): after refunds
  totalling ``X`` of an amount ``A``, exactly ``round_half_up(fee × X / A)`` of the fee has
  gone back, so the shares never add up to more than the fee, and a full refund returns
  every cent of it.

This module neither reads settings nor talks to anyone: callers pass a :class:`FeeRate`
(from ``ModuleConfig.fees``) and amounts.
"""

import re
from decimal import Decimal
from typing import NamedTuple, Optional

#: Rates are kept in hundredths of a percent: 10 000 of them make 100 %.
RATE_SCALE = 10_000
#: The payment methods a fee can be set for (the key is ``fee_<method>_percent``).
METHODS = ("card", "bank")
#: Highest fee rate accepted: card networks cap surcharges well below this (docs/fees.md).
MAX_FEE_RATE = 1_000   # 10.00 %
#: Highest VAT rate accepted on a fee.
MAX_VAT_RATE = 5_000   # 50.00 %

_PERCENT = re.compile(r"(\d{1,3})(?:\.(\d{1,2}))?", re.ASCII)


def half_up(numerator, denominator):
    """``numerator / denominator`` rounded half-up, for non-negative integers."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("half_up takes a non-negative numerator and a positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


def parse_rate(text, high=MAX_FEE_RATE):
    """A percentage as staff type it (``2.95``, ``3``, ``0``) → hundredths of a percent.

    At most two decimals, a dot as decimal mark, from 0 to ``high``; raises ValueError with
    what is wrong."""
    raw = str(text).strip().rstrip("%").strip()
    match = _PERCENT.fullmatch(raw)
    limit = format_rate(high)
    if match is None:
        raise ValueError(f"must be a percentage from 0 to {limit} with at most two decimals, "
                         f"such as 2.95")
    whole, decimals = match.group(1), (match.group(2) or "").ljust(2, "0")
    rate = int(whole) * 100 + int(decimals)
    if rate > high:
        raise ValueError(f"must be at most {limit} %")
    return rate


def format_rate(rate):
    """Hundredths of a percent as people read them: ``295`` → ``2.95``, ``300`` → ``3``."""
    whole, part = divmod(int(rate), 100)
    return f"{whole}" if part == 0 else f"{whole}.{part:02d}".rstrip("0")


def rate_decimal(rate):
    """Hundredths of a percent as a Decimal percentage (``825`` → ``8.25``), for Splynx's
    ``tax_percent``."""
    return Decimal(int(rate)).scaleb(-2)


class FeeRate(NamedTuple):
    """What a fee is made of: ``rate`` and ``vat_rate`` in hundredths of a percent, and the
    ``text`` the customer sees and Splynx gets."""

    rate: int
    vat_rate: int = 0
    text: str = "Service fee"


class Fee(NamedTuple):
    """A fee in cents: ``fee_cents`` before VAT and ``tax_cents`` of VAT on it."""

    fee_cents: int = 0
    tax_cents: int = 0

    @property
    def total_cents(self):
        """The fee with its VAT: what is added to the amount charged."""
        return self.fee_cents + self.tax_cents


NO_FEE = Fee(0, 0)


def compute(amount_cents, rate: Optional[FeeRate]):
    """The :class:`Fee` on ``amount_cents`` at ``rate`` (None: no fee)."""
    if not isinstance(amount_cents, int) or amount_cents < 0:
        raise ValueError(f"amount must be non-negative integer cents, got {amount_cents!r}")
    if rate is None or rate.rate == 0:
        return NO_FEE
    fee = half_up(amount_cents * rate.rate, RATE_SCALE)
    return Fee(fee, half_up(fee * rate.vat_rate, RATE_SCALE))


def refund_share(fee: Fee, amount_cents, refunded_before_cents, refund_cents):
    """The part of ``fee`` (taken on ``amount_cents``) a refund of ``refund_cents`` gives
    back, when ``refunded_before_cents`` of the amount was refunded already.

    Worked out on the running total so that every refund together never gives back more
    than the fee, and refunding the whole amount gives back all of it.
    """
    if not 0 <= refunded_before_cents <= refunded_before_cents + refund_cents <= amount_cents:
        raise ValueError("refunds may not exceed the amount paid")
    if amount_cents == 0:
        return NO_FEE

    def given_back(part, refunded):
        return half_up(part * refunded, amount_cents)

    after = refunded_before_cents + refund_cents
    return Fee(given_back(fee.fee_cents, after) - given_back(fee.fee_cents, refunded_before_cents),
               given_back(fee.tax_cents, after) - given_back(fee.tax_cents, refunded_before_cents))
