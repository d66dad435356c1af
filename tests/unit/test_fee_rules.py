"""The fee rules (services/fees.py, docs/fees.md): tables for the written-down cases, and
Hypothesis properties for the rest."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

from splynx_ippay.services import fees
from splynx_ippay.services.settings import parse_config

amounts = st.integers(min_value=0, max_value=10**9)
rates = st.integers(min_value=0, max_value=fees.MAX_FEE_RATE)
vat_rates = st.integers(min_value=0, max_value=fees.MAX_VAT_RATE)


@pytest.mark.parametrize("amount, rate, vat, fee, tax", [
    (10000, 295, 0, 295, 0),        # 100.00 at 2.95 %: 2.95
    (7500, 300, 0, 225, 0),         # 75.00 at 3 %: 2.25
    (1050, 250, 0, 26, 0),          # 10.50 at 2.5 % = 26.25 cents → 26
    (1010, 250, 0, 25, 0),          # 25.25 → 25
    (1020, 250, 0, 26, 0),          # 25.50 → 26 (half-up)
    (10000, 300, 825, 300, 25),     # VAT 8.25 % of 3.00 = 24.75 → 25
    (6010, 295, 2000, 177, 35),     # fee 177.295 → 177; VAT of the rounded 177 = 35.4 → 35
    (1, 1000, 5000, 0, 0),          # a cent: 0.1 cent of fee → 0
    (10000, 0, 2000, 0, 0),         # no rate, no fee, whatever the VAT
])
def test_fee_and_vat_are_rounded_half_up_vat_on_the_rounded_fee(amount, rate, vat, fee, tax):
    assert fees.compute(amount, fees.FeeRate(rate, vat)) == (fee, tax)


def test_no_rate_is_no_fee_and_amounts_must_be_cents():
    assert fees.compute(5000, None) == fees.NO_FEE
    for bad in (-1, 1.5, "10"):
        with pytest.raises(ValueError):
            fees.compute(bad, fees.FeeRate(100))


@pytest.mark.parametrize("text, rate", [("0", 0), ("2.95", 295), ("3", 300), ("2.5", 250),
                                        ("10", 1000), (" 1.05 ", 105), ("2.5%", 250)])
def test_percentages_are_read_as_hundredths(text, rate):
    assert fees.parse_rate(text) == rate
    assert fees.parse_rate(fees.format_rate(rate)) == rate


@pytest.mark.parametrize("text, words", [
    ("10.01", "at most 10 %"), ("-1", "percentage from 0 to 10"), ("2.955", "two decimals"),
    ("2,95", "such as 2.95"), ("abc", "such as 2.95"), ("", "such as 2.95"), ("1e2", "such as"),
])
def test_bad_percentages_say_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=words):
        fees.parse_rate(text)


@given(amounts, rates, vat_rates)
def test_fee_matches_decimal_arithmetic(amount, rate, vat):
    fee = fees.compute(amount, fees.FeeRate(rate, vat))
    expected = (Decimal(amount) * rate / 10000).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert fee.fee_cents == int(expected)
    tax = (Decimal(fee.fee_cents) * vat / 10000).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert fee.tax_cents == int(tax)
    assert isinstance(fee.fee_cents, int) and isinstance(fee.tax_cents, int)


@given(amounts, amounts, rates, vat_rates)
def test_a_larger_amount_never_has_a_smaller_fee(a, b, rate, vat):
    low, high = sorted((a, b))
    small, large = (fees.compute(x, fees.FeeRate(rate, vat)) for x in (low, high))
    assert small.fee_cents <= large.fee_cents and small.total_cents <= large.total_cents


@given(amounts, rates)
def test_the_fee_is_within_half_a_cent_of_the_exact_fee(amount, rate):
    fee = fees.compute(amount, fees.FeeRate(rate))
    assert abs(fee.fee_cents * 10000 - amount * rate) <= 5000


@hyp_settings(max_examples=300)
@given(st.integers(min_value=1, max_value=10**7), rates, vat_rates,
       st.lists(st.integers(min_value=1, max_value=10**7), min_size=1, max_size=8))
def test_refund_shares_never_exceed_the_fee_and_a_full_refund_returns_all(amount, rate, vat,
                                                                         parts):
    fee = fees.compute(amount, fees.FeeRate(rate, vat))
    done, given_fee, given_tax = 0, 0, 0
    for part in parts:
        part = min(part, amount - done)
        if part == 0:
            break
        share = fees.refund_share(fee, amount, done, part)
        assert share.fee_cents >= 0 and share.tax_cents >= 0
        done += part
        given_fee += share.fee_cents
        given_tax += share.tax_cents
        # After refunds of `done`, exactly the proportional fee (half-up) went back.
        assert given_fee == fees.half_up(fee.fee_cents * done, amount)
        assert given_fee <= fee.fee_cents and given_tax <= fee.tax_cents
    rest = amount - done
    if rest:
        last = fees.refund_share(fee, amount, done, rest)
        given_fee, given_tax = given_fee + last.fee_cents, given_tax + last.tax_cents
    assert (given_fee, given_tax) == fee


def test_refund_share_refuses_more_than_was_paid():
    fee = fees.compute(10000, fees.FeeRate(300))
    assert fees.refund_share(fee, 10000, 0, 5000) == (150, 0)
    assert fees.refund_share(fee, 10000, 5000, 5000) == (150, 0)
    with pytest.raises(ValueError):
        fees.refund_share(fee, 10000, 5000, 5001)


def test_fees_are_off_by_default_and_read_from_the_module_config():
    config = parse_config({})
    assert config.fees.rate_for("card") is None and config.fees.rate_for("bank") is None
    assert not config.fees.autopay and config.fees.category_id is None and not config.problems
    config = parse_config({"fee_card_percent": "2.95", "fee_bank_percent": "1",
                           "fee_vat_percent": "20", "fee_text": "Card fee",
                           "fee_category_id": "5", "fee_autopay": "1"})
    assert config.fees.rate_for("card") == fees.FeeRate(295, 2000, "Card fee")
    assert config.fees.rate_for("bank") == fees.FeeRate(100, 2000, "Card fee")
    assert config.fees.category_id == 5 and config.fees.autopay


def test_a_stored_fee_that_cannot_be_used_is_no_fee_and_is_listed():
    config = parse_config({"fee_card_percent": "15", "fee_vat_percent": "x"})
    assert config.fees.rate_for("card") is None and config.fees.vat_rate == 0
    assert any("fee_card_percent" in p and "at most 10 %" in p for p in config.problems)
    assert any("fee_vat_percent" in p for p in config.problems)
