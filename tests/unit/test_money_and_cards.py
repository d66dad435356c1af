"""Amount parsing, card number checks and brand detection."""

import datetime as dt

import pytest

from splynx_ippay.money import AmountError, format_cents, parse_amount
from splynx_ippay.services.cards import detect_brand, expiry_problem, luhn_valid, number_problem


@pytest.mark.parametrize("text,cents", [("12", 1200), ("12.5", 1250), ("12.50", 1250),
                                        (" 0.01 ", 1), ("999999999.99", 99999999999)])
def test_amounts_become_cents(text, cents):
    assert parse_amount(text) == cents


@pytest.mark.parametrize("text,words", [("", "Enter an amount"), ("0", "more than zero"),
                                        ("-5", "more than zero"), ("1e9", "as a number"),
                                        ("12,50", "point for decimals"), ("12.345", "two decimals"),
                                        ("abc", "as a number"), ("1000000000", "as a number")])
def test_bad_amounts_say_why(text, words):
    with pytest.raises(AmountError, match=words):
        parse_amount(text)


def test_format_cents():
    assert format_cents(7550) == "75.50"
    assert format_cents(123456789) == "1,234,567.89"
    assert format_cents(-5, "$") == "-$0.05"


@pytest.mark.parametrize("number,brand", [
    ("4111111111111111", "Visa"), ("5111111111111118", "Mastercard"),
    ("2223000048400011", "Mastercard"), ("378282246310005", "American Express"),
    ("6011111111111117", "Discover"), ("3530111333300000", "JCB"),
    ("30569309025904", "Diners Club"), ("9999999999999995", "Card")])
def test_brand_by_iin(number, brand):
    assert detect_brand(number) == brand


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


@pytest.mark.parametrize("number,words", [
    ("", "Enter the card number"), ("4111x11111111111", "digits only"),
    ("411111111111", "13 to 19"), ("4111111111111112", "not valid"),
    ("37828224631000", "American Express card number has 15")])
def test_number_problems(number, words):
    assert words in number_problem(number)


def test_expiry_problems():
    today = dt.date(2026, 11, 26)
    assert expiry_problem(11, 2026, today) is None
    assert "expired" in expiry_problem(10, 2026, today)
    assert "01 and 12" in expiry_problem(13, 2027, today)
    assert "too far" in expiry_problem(1, 2060, today)
