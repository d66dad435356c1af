"""Pure rules of the test gateway: field formats, the penny-value decision table,
and format-preserving tokens (ippay-protocol.md §2.2, §6, §7)."""

import datetime
import hashlib
import hmac
import re
import string

#: §7 (AGR [S]): cent values that approve on the test gateway. Every other value
#: declines with ActionCode ``0`` + the two cent digits ([I, strong]).
APPROVING_CENTS = frozenset(
    [0, 8, 9, 10, 11, 16, 17, 18, 20, 56, 60, 64, 79, 95, 97, 98, 99]
    + list(range(22, 28)) + list(range(45, 51)) + list(range(66, 75)) + list(range(86, 90))
)

#: §7 [S] BOP: the Luhn failure text, trailing spaces included.
INVALID_CARD_TEXT = "Invalid card number.  "

# Digits are ASCII digits: a real gateway reads bytes, so "１００" (full-width) is no amount.
_DIGITS = re.compile(r"^\d+$", re.ASCII)
_AMOUNT = re.compile(r"^[+-]?\d+$", re.ASCII)


class Rejection(Exception):
    """A request the gateway answers without processing it (validation errors,
    unknown originals, duplicates). Nothing is stored for it."""

    def __init__(self, action_code, response_text, err_msg=None):
        super().__init__(err_msg or response_text)
        self.action_code = action_code
        self.response_text = response_text
        self.err_msg = err_msg


def invalid(message):
    """§10: validation errors are ActionCode 900 + ErrMsg + ResponseText DECLINED."""
    return Rejection("900", "DECLINED", message)


def not_found():
    """§5.2/§10: 025 for CAPT, VOID, REVERSEAUTH or ENQ on an unknown ID."""
    return Rejection("025", "Transaction Not Found")


def parse_amount(text):
    """§2.2 row 20: TotalAmount is a positive integer number of cents."""
    if not _AMOUNT.match(text):
        raise invalid("Bad dollar amount. TotalAmount must be a whole number of cents.")
    amount = int(text)
    if amount <= 0:
        raise invalid("Bad dollar amount. TotalAmount must be greater than 0.")
    return amount


def luhn_ok(number):
    """The mod-10 check digit test every card number must pass."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def check_card_number(pan):
    """§2.2 row 9: 13-19 digits; §7: a Luhn failure is 900 "Invalid card number.  "
    with no ErrMsg (BOP read the text from ResponseText, which it only does when
    ErrMsg is absent)."""
    if not (_DIGITS.match(pan) and 13 <= len(pan) <= 19 and luhn_ok(pan)):
        raise Rejection("900", INVALID_CARD_TEXT)


def parse_expiry(month, year):
    """§2.2 rows 13-14: CardExpMonth ``01``-``12`` and CardExpYear ``YY``.

    Returns ``(month, four-digit year)``.
    """
    two_digits = re.compile(r"^\d\d$", re.ASCII)
    if not (two_digits.match(month) and 1 <= int(month) <= 12 and two_digits.match(year)):
        raise invalid("Invalid card expiration date.")
    return int(month), 2000 + int(year)


def is_expired(expiry, today=None):
    """A card is valid through the last day of its expiry month."""
    today = today or datetime.date.today()
    month, year = expiry
    return (year, month) < (today.year, today.month)


def check_cvv2(cvv2, action_code="900"):
    """§2.2 row 10: 3-4 digits, else ``action_code`` (switch ``cvv_format_error``: 900 or 933)
    with ErrMsg "Invalid CVV2."."""
    if not re.match(r"^\d{3,4}$", cvv2, re.ASCII):
        raise Rejection(action_code, "DECLINED", "Invalid CVV2.")


def check_aba(aba):
    """§10: an ABA routing number has 9 digits whose checksum holds
    (3, 7, 1 weights: 3·(d1+d4+d7) + 7·(d2+d5+d8) + (d3+d6+d9) ≡ 0 mod 10),
    else ActionCode 923 Invalid ABA (§5.2)."""
    if not re.match(r"^\d{9}$", aba, re.ASCII):
        raise Rejection("923", "DECLINED", "Invalid ABA number. ABA must be 9 digits.")
    weighted = sum(int(digit) * (3, 7, 1)[i % 3] for i, digit in enumerate(aba))
    if weighted % 10:
        raise Rejection("923", "DECLINED", "Invalid ABA number. The check digit does not match.")


def check_account_number(account):
    """§5.2: 924 Invalid DDA for an account number that is not 4-17 digits [I]."""
    if not re.match(r"^\d{4,17}$", account, re.ASCII):
        raise Rejection("924", "DECLINED", "Invalid account number.")


def penny_decision(amount):
    """§7: the ActionCode decided by the cents of ``amount``."""
    cents = amount % 100
    return "000" if cents in APPROVING_CENTS else f"0{cents:02d}"


def approval_code(amount):
    """§4.2/§7: test approvals are ``TEST`` + the two cent digits."""
    return f"TEST{amount % 100:02d}"


def _alternating(key, message, length):
    """``length`` characters alternating letter, digit, letter… drawn from an
    HMAC-SHA256 of ``message``, like the OFF-RPT example ``4B3J7E7D7K2A1000``.
    Starting with a letter means a token can never pass for a card number."""
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
    out = []
    for i in range(length):
        byte = digest[i % len(digest)] ^ (i // len(digest))
        out.append(string.ascii_uppercase[byte % 26] if i % 2 == 0 else string.digits[byte % 10])
    return "".join(out)


def card_token(key, terminal_id, pan):
    """§6 [C] OFF-RPT: same length as the PAN, first digit and last 4 kept, the
    middle upper-case letters and digits. Deterministic per (TerminalID, PAN) [I]."""
    return pan[0] + _alternating(key, f"card:{terminal_id}:{pan}", len(pan) - 5) + pan[-4:]


def ach_token(key, terminal_id, aba, account):
    """§6 [C] OFF-RPT: same length as the account number, last 4 digits kept.
    Deterministic per (TerminalID, ABA, account). A 4-digit account still gets one
    leading letter, so that no token ever equals the account number it stands for."""
    prefix = _alternating(key, f"ach:{terminal_id}:{aba}:{account}", max(len(account) - 4, 1))
    return prefix + account[-4:]
