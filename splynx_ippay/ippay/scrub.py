"""Masking of card and bank data in IPpay transcripts (ippay §9.4).

IPpay has a failure mode in which it echoes the whole request, card number
included (ippay §9.4, BOP), and a truncated or otherwise malformed reply must be
loggable too, so masking works on the raw text with regular expressions rather
than on a parsed tree: it never fails, whatever it is given.
"""

from __future__ import annotations

import re

__all__ = ["scrub", "mask_tail"]

# Elements whose content is secret (ippay §9.4). The last four characters of a
# card number, token or account number are kept so that a transcript can still
# be matched to a saved card; CVV2, track data and the password are hidden
# completely.
_KEEP_LAST4 = ("CardNum", "Token", "AccountNumber")
_HIDE_ALL = ("CVV2", "Track1", "Track2", "Password")

# <CardNum>, <cardnum Tokenize="true">, <ns:CardNum> ... up to the next "<" or
# the end of the text, so that a reply cut off in the middle of a value
# (ippay §10 "truncated or invalid XML body") is masked as well.
_ELEMENT_RE = re.compile(
    r"(<\s*(?:[\w.-]+:)?(?P<name>" + "|".join(_KEEP_LAST4 + _HIDE_ALL) + r")\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>)"
    r"(?P<value>[^<]*)",
    re.IGNORECASE,
)

# A CDATA section inside a secret element: <CardNum><![CDATA[4111...]]></CardNum>.
_CDATA_RE = re.compile(
    r"(<\s*(?:[\w.-]+:)?(?P<name>" + "|".join(_KEEP_LAST4 + _HIDE_ALL) + r")\b[^>]*>\s*<!\[CDATA\[)"
    r"(?P<value>.*?)(?=\]\]>|$)",
    re.IGNORECASE | re.DOTALL,
)

# Attribute form, should a value ever travel as an attribute: CardNum="4111...".
_ATTRIBUTE_RE = re.compile(
    r"(\b(?P<name>" + "|".join(_KEEP_LAST4 + _HIDE_ALL) + r")\s*=\s*)(?P<quote>[\"'])(?P<value>[^\"']*)(?P=quote)",
    re.IGNORECASE,
)

# Belt and braces: any free-standing run of 13-19 digits (optionally grouped by
# single spaces or dashes) looks like a PAN and is masked wherever it appears,
# e.g. in an ErrMsg that quotes the card number or in an HTML error page. The
# look-arounds keep IPpay's 26-digit ipTransID and letter-prefixed
# TransactionIDs such as B20191106095946460 (ippay §2.2 row 3) intact.
_PAN_RE = re.compile(r"(?<![\w])(?:\d[ -]?){12,18}\d(?![\w])")

# CVV2 in a *reply* is a one-letter result code (ippay §5.3), not a secret.
_CVV_RESULT_RE = re.compile(r"\s*[MNPSUY]\s*", re.IGNORECASE)


def mask_tail(value: str, keep: int = 4) -> str:
    """Return ``value`` with every letter or digit but the last ``keep`` replaced by ``X``.

    Separators (spaces, dashes) are kept so the shape stays recognisable; a
    value of ``keep`` characters or fewer is masked completely.
    """
    alnum_positions = [i for i, ch in enumerate(value) if ch.isalnum()]
    if len(alnum_positions) <= keep:
        visible = set()
    else:
        visible = set(alnum_positions[-keep:]) if keep else set()
    return "".join(
        ch if (i in visible or not ch.isalnum()) else "X" for i, ch in enumerate(value)
    )


def _mask_value(name: str, value: str) -> str:
    if not value.strip():
        return value
    lname = name.lower()
    if lname == "cvv2" and _CVV_RESULT_RE.fullmatch(value):
        return value
    if lname in ("cardnum", "token", "accountnumber"):
        return mask_tail(value)
    return "X" * 3  # CVV2, Track1/2, Password: hide even the length


def scrub(text) -> str:
    """Mask CardNum, CVV2, Token, AccountNumber, Track1, Track2 (and Password) in ``text``.

    ``text`` is an IPpay request or reply, well-formed or not (bytes are
    decoded as Latin-1, which never fails). Element names are matched in any
    case and with any attributes; card numbers, tokens and account numbers
    keep their last four characters, the rest is hidden completely. Any
    remaining 13-19 digit run that looks like a card number is masked too.
    ``None`` gives ``""``.
    """
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("latin-1")
    elif not isinstance(text, str):
        text = str(text)
    text = _CDATA_RE.sub(lambda m: m.group(1) + _mask_value(m.group("name"), m.group("value")), text)
    text = _ELEMENT_RE.sub(lambda m: m.group(1) + _mask_value(m.group("name"), m.group("value")), text)
    text = _ATTRIBUTE_RE.sub(
        lambda m: m.group(1) + m.group("quote") + _mask_value(m.group("name"), m.group("value")) + m.group("quote"),
        text,
    )
    return _PAN_RE.sub(lambda m: mask_tail(m.group(0)), text)
