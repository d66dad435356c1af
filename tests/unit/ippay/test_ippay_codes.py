"""The ActionCode table and the decline policy (issue 11 item 3), as pure tables: every code the
spec lists is classified, each classification has a source, and the policy's named cases fall
where the policy puts them."""

import re

import pytest

from splynx_ippay.ippay import codes

# ippay-protocol.md §5.2, both columns, and the Amex family's named rows.
SPEC_CODES = """000 001 002 003 004 005 006 007 008 010 011 012 013 014 015 019 021 025 028 030 041 043
051 052 053 054 055 057 058 061 062 063 065 075 076 077 078 080 082 085 091 092 093 094 096
100 101 110 122 200 400 806 900 912 917 920 923 924 925 933 992 996 999""".split()

def test_codes_table_covers_the_spec_codes():
    for code in ("000", "005", "025", "051", "054", "094", "806", "900", "917", "923", "933", "999"):
        assert codes.meaning(code) != "Unknown code"
    assert codes.meaning("150") == "Deny (Amex)"
    assert codes.describe("000", transaction_type="CREDIT") == "The refund was accepted."
    assert codes.describe("051", transaction_type="CHECK") == "There are not enough funds in the bank account."
    assert codes.describe("005", transaction_type="CHECK").startswith("Your bank declined")



@pytest.mark.parametrize("code", SPEC_CODES)
def test_every_spec_code_has_a_row(code):
    row = codes.TABLE[code]
    assert row.code == code and row.category in codes.CATEGORIES
    assert row.name and row.plain and row.message and row.source


@pytest.mark.parametrize("row", list(codes.TABLE.values()), ids=lambda r: r.code)
def test_each_row_is_complete_and_kind_to_customers(row):
    assert re.fullmatch(r"\d{3}", row.code)
    assert row.category in codes.CATEGORIES and row.source.strip()
    assert row.plain.endswith(".") and row.message.endswith(".")
    for word in ("stolen", "lost", "pick up", "fraud"):
        assert word not in row.message.lower()  # the customer may not be the cardholder


@pytest.mark.parametrize("row", [r for r in codes.TABLE.values() if r.source.startswith("Visa ")],
                         ids=lambda r: r.code)
def test_rows_sourced_from_visa_follow_visas_categories(row):
    # Visa 1 (never approve) and 3 (not with these details): never retried on the same card.
    expected = {"1": codes.HARD, "3": codes.HARD, "2": codes.SOFT, "4": codes.SOFT}[row.source[5]]
    assert row.category == expected


@pytest.mark.parametrize("code,case", [
    ("041", "lost"), ("043", "stolen"), ("004", "pick up"), ("007", "pick up"), ("200", "pick up"),
    ("014", "invalid account"), ("111", "invalid account"), ("924", "invalid account"),
    ("054", "expired"), ("101", "expired"), ("917", "expired"), ("062", "restricted"),
    ("057", "not permitted"), ("115", "not permitted"), ("093", "violation of law"), ("003", "invalid merchant"),
    ("806", "CVV refused"), ("933", "CVV refused"), ("082", "CVV refused"), ("046", "closed account"),
])
def test_the_policys_hard_cases(code, case):
    assert codes.category(code) == codes.HARD, case


@pytest.mark.parametrize("code,case", [
    ("005", "do not honour"), ("051", "insufficient funds"), ("061", "over limit"), ("065", "over limit"),
    ("091", "issuer unavailable"), ("080", "issuer unavailable"), ("096", "system error"), ("992", "timeout"),
    ("999", "communication failure"), ("019", "re-enter"), ("100", "Amex generic deny"),
])
def test_the_policys_soft_cases(code, case):
    assert codes.category(code) == codes.SOFT, case


@pytest.mark.parametrize("code", ["008", "010", "011", "013", "025", "030", "058", "094", "900", "925", "996"])
def test_errors_are_neither_the_cards_fault_nor_retried(code):
    assert codes.category(code) == codes.ERROR


@pytest.mark.parametrize("code,expected", [
    ("000", codes.APPROVAL), ("400", codes.APPROVAL),
    ("150", codes.SOFT), ("189", codes.HARD), ("188", codes.ERROR),  # Amex family and its named rows
    ("047", codes.SOFT),   # an ISO decline in no table: Visa 4, generic
    ("777", codes.ERROR), ("5", codes.ERROR), ("", codes.ERROR),
])
def test_codes_outside_the_table(code, expected):
    assert codes.category(code) == expected


@pytest.mark.parametrize("code,err_msg,response_text,expected", [
    ("900", None, "Invalid card number.", codes.HARD),
    ("900", "Invalid card expiration date.", "DECLINED", codes.HARD),
    ("900", "Invalid CVV2.", "DECLINED", codes.HARD),
    ("900", "Invalid ABA number. ABA must be 9 digits.", "DECLINED", codes.HARD),
    ("900", "Bad dollar amount. TotalAmount must be greater than 0.", "DECLINED", codes.ERROR),
    ("900", "Cannot determine the URL for the processor.", "DECLINED", codes.ERROR),
    ("900", "The transaction type is not a valid transaction type.", "DECLINED", codes.ERROR),
    ("000", None, "TOKENIZED", codes.ERROR),   # 000 that was no success (TOKENIZE without a Token)
    ("400", None, None, codes.ERROR),          # 400 outside a reversal
    ("051", "anything", None, codes.SOFT),
])
def test_decline_category_reads_the_900s_text(code, err_msg, response_text, expected):
    assert codes.decline_category(code, err_msg=err_msg, response_text=response_text) == expected


def test_meanings_and_messages_come_from_the_table():
    assert codes.MEANINGS["005"] == "Do not honor" and codes.meaning("150") == "Deny (Amex)"
    assert codes.meaning("777") == "Unknown code"
    assert codes.describe("043") == codes.TABLE["043"].message
    assert codes.lookup("122").plain == "The security code did not match."


@pytest.mark.parametrize("texts,expected", [
    (("The transaction type is not a valid transaction type.",), True),
    ((None, "the transaction type is NOT A VALID TRANSACTION TYPE"), True),
    (("Invalid CVV2.", None), False),
    ((), False),
])
def test_names_type_not_offered(texts, expected):
    assert codes.names_type_not_offered(*texts) is expected
