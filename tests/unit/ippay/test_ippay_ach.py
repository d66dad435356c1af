"""Bank-account rules (splynx_ippay.ippay.ach): the ABA checksum, account numbers, which SEC code a
debit carries, and what each ACH return code means for the add-on (issue 12)."""

import pytest

from splynx_ippay.ippay import ach


@pytest.mark.parametrize("routing", ["111000025", "071025661", "011000015", "021000021", " 111000025 "])
def test_valid_routing_numbers(routing):
    # 111000025 and 071025661 are IPpay's test numbers (ippay §7); the others are well-known banks'.
    assert ach.routing_number_problem(routing) is None


@pytest.mark.parametrize("routing,problem", [
    ("111000026", "The routing number is not valid: please check its 9 digits."),
    ("071025662", "The routing number is not valid: please check its 9 digits."),
    ("123456789", "The routing number is not valid: please check its 9 digits."),
    ("11100002", "The routing number must be 9 digits."),
    ("1110000255", "The routing number must be 9 digits."),
    ("11100002X", "The routing number must be 9 digits."),
    ("１１１００００２５", "The routing number must be 9 digits."),
    ("", "The routing number must be 9 digits."),
    (None, "The routing number must be 9 digits."),
    (111000025, "The routing number must be 9 digits."),
])
def test_invalid_routing_numbers(routing, problem):
    assert ach.routing_number_problem(routing) == problem


def test_the_checksum_catches_every_single_digit_slip():
    good = "111000025"
    for position in range(9):
        for digit in "0123456789":
            if digit != good[position]:
                slipped = good[:position] + digit + good[position + 1:]
                assert ach.routing_number_problem(slipped), slipped


@pytest.mark.parametrize("number,ok", [
    ("12345", True), ("1234", True), ("1" * 17, True), ("11111999", True),
    ("123", False), ("1" * 18, False), ("12-345", False), ("12a45", False), ("１２３４５", False), ("", False),
    (None, False),
])
def test_account_numbers(number, ok):
    assert (ach.account_number_problem(number) is None) is ok


@pytest.mark.parametrize("authorised,business,expected", [
    ("online", False, "WEB"), ("written", False, "PPD"), ("phone", False, "TEL"),
    ("online", True, "CCD"), ("written", True, "CCD"), ("phone", True, "CCD"),
])
def test_sec_code_rule(authorised, business, expected):
    assert ach.sec_code(authorised=authorised, business=business) == expected
    assert expected in ach.SEC_CODES


def test_sec_code_refuses_an_unknown_authorisation():
    with pytest.raises(ValueError):
        ach.sec_code(authorised="email")


@pytest.mark.parametrize("code", ["R02", "R03", "R04", "R10"])
def test_the_returns_issue_12_names_stop_autopay(code):
    assert ach.return_code(code).stops_autopay and not ach.return_code(code).represent


@pytest.mark.parametrize("code", ["R01", "R09"])
def test_only_funds_returns_may_be_presented_again(code):
    row = ach.return_code(code)
    assert row.represent and not row.stops_autopay


def test_return_code_table():
    assert ach.return_code(" r01 ").meaning == "Insufficient funds"
    assert [c for c, r in ach.RETURN_CODES.items() if r.represent] == ["R01", "R09"]
    unknown = ach.return_code("R99")
    assert unknown.code == "R99" and unknown.stops_autopay  # be safe with what we do not know
    assert all(r.code == c and r.meaning for c, r in ach.RETURN_CODES.items())
