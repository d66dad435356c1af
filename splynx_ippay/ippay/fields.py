"""Building the fields of each IPpay request, and refusing bad ones before anything is sent.

One builder per transaction type (ippay §3) returns a :class:`Request`: the
TransactionType, the TransactionID, the element values of ippay §2.2 and what
the reply must hold to count as a success. Every argument is checked here
(ippay §9.5: "validate locally before sending, since the gateway's errors are
cryptic"); a bad one raises :class:`GatewayRequestError`, which names the
field and never its value. Nothing here touches the network.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Optional

from . import ach, codes
from .errors import GatewayRequestError
from .values import BankAccount, Card
from .xml import Node, build_request

__all__ = [
    "ORIGINS", "ACCOUNT_TYPES", "SEC_CODES", "Request",
    "tokenize_card", "update_expiry", "tokenize_account", "charge", "capture", "reverse_authorization",
    "void", "credit", "enquiry", "ping", "ach_debit",
]

# ippay §2.2 row 6.
ORIGINS = frozenset({"INTERNET", "RECURRING", "POS", "PHONE ORDER", "MAIL ORDER"})
# ippay §2.2 row 17 (the rules themselves live in ach.py).
ACCOUNT_TYPES = frozenset(ach.ACCOUNT_TYPES)
SEC_CODES = frozenset(ach.SEC_CODES)

_TRANSACTION_ID_RE = re.compile(r"[A-Za-z0-9]{18}")
_PAN_RE = re.compile(r"\d{13,19}")
_CVV_RE = re.compile(r"\d{3,4}")
_TOKEN_RE = re.compile(r"[!-~]{1,64}")          # printable ASCII, no spaces
_CHECK_NUMBER_RE = re.compile(r"\d{1,15}")
_APPROVAL_RE = re.compile(r"[A-Za-z0-9 ]{1,16}")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+")


@dataclass(frozen=True)
class Request:
    """One request ready to send: its type, TransactionID, elements and what success means.

    ``need_token``: approved only with a Token in the reply (TOKENIZE of a new
    card or account, ippay §5.1). ``fallback_token``: the token to report when
    the reply has none (an expiry update). ``success_codes``: the ActionCodes
    that mean success (000; REVERSEAUTH also 400 "Reversal accepted" [J]).
    """

    transaction_type: str
    transaction_id: Optional[str]
    fields: dict
    need_token: bool = False
    fallback_token: Optional[str] = None
    success_codes: tuple = (codes.APPROVED,)

    def body(self, terminal_id: str, software: str) -> str:
        """The XML document for ``terminal_id``, with ``software`` in UDField3 (ippay §2.2 row 26, §9.6)."""
        try:
            return build_request(self.transaction_type, terminal_id, {**self.fields, "UDField3": software})
        except ValueError as exc:
            raise GatewayRequestError(f"cannot build the {self.transaction_type} request: {exc}",
                                      transaction_type=self.transaction_type,
                                      transaction_id=self.transaction_id) from None


# ---------------------------------------------------------------- request builders (ippay §3)

def tokenize_card(card: Card) -> Request:
    """TOKENIZE a card (ippay §6): CardNum + expiry, and CVV2 when given (as UCRM does); no ID, no amount."""
    return Request("TOKENIZE", None, _card("TOKENIZE", None, card), need_token=True)


def update_expiry(token: str, exp_month, exp_year) -> Request:
    """TOKENIZE with Token + new CardExpMonth/CardExpYear (ippay §6, SIP ``updateToken``)."""
    month, year = _expiry("TOKENIZE", None, exp_month, exp_year)
    token = _token("TOKENIZE", None, token)
    return Request("TOKENIZE", None, {"Token": token, "CardExpMonth": month, "CardExpYear": year},
                   fallback_token=token)


def tokenize_account(account: BankAccount) -> Request:
    """TOKENIZE a bank account with root-level AccountNumber + ABA (ippay §6, OCA/OMNI)."""
    number, routing, _, _ = _bank_account("TOKENIZE", None, account)
    return Request("TOKENIZE", None, {"AccountNumber": number, "ABA": routing}, need_token=True)


def charge(ttype: str, transaction_id, amount_cents, *, token=None, card=None, origin="INTERNET",
           order_number=None, tokenize=False, email=None, user_ip=None) -> Request:
    """SALE or AUTHONLY (ippay §3): a new TransactionID, the amount and exactly one of token and card.

    With a card, its CVV2 is sent when the customer typed one; ``tokenize``
    (card only) sets ``<CardNum Tokenize="true">`` so the reply carries a Token (ippay §6).
    """
    tid = _transaction_id(ttype, transaction_id)
    if tokenize and card is None:
        raise GatewayRequestError("tokenize=True needs a card, not a token", transaction_type=ttype,
                                  transaction_id=tid, field="tokenize")
    fields = {
        "TransactionID": tid,
        "Origin": _choice(ttype, tid, "origin", origin, ORIGINS),
        "OrderNumber": _text(ttype, tid, "order_number", order_number),
        "TotalAmount": _amount(ttype, tid, amount_cents),
        "Email": _email(ttype, tid, email),
        "UserIPAddress": _ip(ttype, tid, user_ip),
        **_source(ttype, tid, token, card, send_cvv=True, tokenize=tokenize),
    }
    return Request(ttype, tid, fields)


def capture(transaction_id, amount_cents=None) -> Request:
    """CAPT on the AUTHONLY's TransactionID (ippay §3); no amount captures all of it (BOP)."""
    tid = _transaction_id("CAPT", transaction_id)
    amount = None if amount_cents is None else _amount("CAPT", tid, amount_cents)
    return Request("CAPT", tid, {"TransactionID": tid, "TotalAmount": amount})


def reverse_authorization(transaction_id, amount_cents, *, token=None, card=None) -> Request:
    """REVERSEAUTH of an uncaptured AUTHONLY: its ID, the card (or token) and its amount (ippay §3, §8)."""
    tid = _transaction_id("REVERSEAUTH", transaction_id)
    fields = {"TransactionID": tid, "TotalAmount": _amount("REVERSEAUTH", tid, amount_cents),
              **_source("REVERSEAUTH", tid, token, card, send_cvv=False)}
    return Request("REVERSEAUTH", tid, fields, success_codes=(codes.APPROVED, codes.REVERSAL_ACCEPTED))


def void(transaction_id, approval, amount_cents, *, token=None, card=None) -> Request:
    """VOID: the original ID, its Approval, its full amount and its card or token (ippay §3, §8)."""
    tid = _transaction_id("VOID", transaction_id)
    if not isinstance(approval, str) or not _APPROVAL_RE.fullmatch(approval.strip()):
        raise GatewayRequestError("VOID needs the original Approval code", transaction_type="VOID",
                                  transaction_id=tid, field="approval")
    fields = {"TransactionID": tid, "Approval": approval.strip(), "TotalAmount": _amount("VOID", tid, amount_cents),
              **_source("VOID", tid, token, card, send_cvv=False)}
    return Request("VOID", tid, fields)


def credit(transaction_id, amount_cents, *, token=None, card=None) -> Request:
    """CREDIT, linked (the sale's ID) or unlinked (a new ID), with the card or token (ippay §3, §8); no CVV."""
    tid = _transaction_id("CREDIT", transaction_id)
    fields = {"TransactionID": tid, "TotalAmount": _amount("CREDIT", tid, amount_cents),
              **_source("CREDIT", tid, token, card, send_cvv=False)}
    return Request("CREDIT", tid, fields)


def enquiry(transaction_id) -> Request:
    """ENQ: only the TransactionID (ippay §3, §8)."""
    tid = _transaction_id("ENQ", transaction_id)
    return Request("ENQ", tid, {"TransactionID": tid})


def ping() -> Request:
    """PING: nothing but the type and the terminal (ippay §3)."""
    return Request("PING", None, {})


def ach_debit(ttype: str, transaction_id, amount_cents, holder, *, account=None, token=None,
              check_number="100", account_type="CHECKING", sec="WEB", tokenize=False) -> Request:
    """CHECK (a debit) or REVERSAL (a refund to the account) with ``<ACH Type SEC>`` (ippay §2.2 row 17, §3).

    Exactly one of ``account`` (AccountNumber + ABA, its own type and SEC) and
    an ACH ``token`` (``account_type`` and ``sec`` apply). ``holder`` is
    CardName, required for ACH. ``tokenize`` (account only) sets
    ``<AccountNumber Tokenize="true">`` so the reply carries a Token (ippay §6).
    """
    tid = _transaction_id(ttype, transaction_id)
    amount = _amount(ttype, tid, amount_cents)
    name = _text(ttype, tid, "holder", holder)
    if not name:
        raise GatewayRequestError(f"{ttype} needs the account holder's name", transaction_type=ttype,
                                  transaction_id=tid, field="holder")
    if not isinstance(check_number, (str, int)) or not _CHECK_NUMBER_RE.fullmatch(str(check_number)):
        raise GatewayRequestError("check_number must be 1-15 digits", transaction_type=ttype,
                                  transaction_id=tid, field="check_number")
    if (account is None) == (token is None):
        raise GatewayRequestError(f"{ttype} needs exactly one of account and token", transaction_type=ttype,
                                  transaction_id=tid, field="account")
    if tokenize and account is None:
        raise GatewayRequestError("tokenize=True needs an account, not a token", transaction_type=ttype,
                                  transaction_id=tid, field="tokenize")
    if account is not None:
        number, routing, account_type, sec = _bank_account(ttype, tid, account)
        number_node = Node(text=number, attrs={"Tokenize": "true"}) if tokenize else number
        children = [("AccountNumber", number_node), ("ABA", routing), ("CheckNumber", str(check_number))]
    else:
        account_type = _choice(ttype, tid, "account_type", account_type, ACCOUNT_TYPES)
        sec = _choice(ttype, tid, "sec", sec, SEC_CODES)
        children = [("Token", _token(ttype, tid, token)), ("CheckNumber", str(check_number))]
    fields = {"TransactionID": tid, "ACH": Node(attrs={"Type": account_type, "SEC": sec}, children=children),
              "CardName": name, "TotalAmount": amount}
    return Request(ttype, tid, fields)


# ---------------------------------------------------------------- field checks (ippay §9.5)

def _transaction_id(ttype: str, value) -> str:
    # ippay §9.5: 18 alphanumerics is the safe, widely accepted format.
    if not isinstance(value, str) or not _TRANSACTION_ID_RE.fullmatch(value):
        raise GatewayRequestError("TransactionID must be 18 letters or digits", transaction_type=ttype,
                                  field="transaction_id")
    return value


def _amount(ttype: str, tid: Optional[str], value) -> str:
    # ippay §2.2 row 20, §9.5: integer cents, non-zero. bool is an int subclass and
    # Decimal/float would hide a unit mistake, so both are refused.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise GatewayRequestError("the amount must be a positive whole number of cents",
                                  transaction_type=ttype, transaction_id=tid, field="amount_cents")
    return str(value)


def _expiry(ttype: str, tid: Optional[str], month, year) -> tuple:
    # ippay §2.2 rows 13-14: MM 01-12 and YY.
    def as_int(value):
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            return int(value.strip())
        return None

    m, y = as_int(month), as_int(year)
    if m is None or not 1 <= m <= 12:
        raise GatewayRequestError("the expiry month must be 1-12", transaction_type=ttype,
                                  transaction_id=tid, field="exp_month")
    if y is not None and 2000 <= y <= 2099:
        y -= 2000
    if y is None or not 0 <= y <= 99:
        raise GatewayRequestError("the expiry year must be YY or YYYY", transaction_type=ttype,
                                  transaction_id=tid, field="exp_year")
    return f"{m:02d}", f"{y:02d}"


def _token(ttype: str, tid: Optional[str], value) -> str:
    if not isinstance(value, str) or not _TOKEN_RE.fullmatch(value.strip()):
        raise GatewayRequestError("the token is empty or malformed", transaction_type=ttype,
                                  transaction_id=tid, field="token")
    return value.strip()


def _choice(ttype: str, tid: Optional[str], name: str, value, allowed) -> str:
    normalised = value.strip().upper() if isinstance(value, str) else None
    if normalised not in allowed:
        label = "Origin" if name == "origin" else name
        raise GatewayRequestError(f"{label} must be one of " + ", ".join(sorted(allowed)),
                                  transaction_type=ttype, transaction_id=tid, field=name)
    return normalised


def _text(ttype: str, tid: Optional[str], name: str, value) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise GatewayRequestError(f"{name} must be text", transaction_type=ttype, transaction_id=tid,
                                  field=name)
    return value.strip() or None


def _email(ttype: str, tid: Optional[str], value) -> Optional[str]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value.strip()) > 254 or not _EMAIL_RE.fullmatch(value.strip()):
        raise GatewayRequestError("the e-mail address is not valid", transaction_type=ttype,
                                  transaction_id=tid, field="email")
    return value.strip()


def _ip(ttype: str, tid: Optional[str], value) -> Optional[str]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except (ValueError, AttributeError):
        raise GatewayRequestError("the customer IP address is not valid", transaction_type=ttype,
                                  transaction_id=tid, field="user_ip") from None


def _card(ttype: str, tid: Optional[str], card, *, send_cvv: bool = True, tokenize: bool = False) -> dict:
    """CardNum, CVV2, expiry, CardName and ZIP of ``card``.

    The CVV2 goes only where it verifies the card (SALE, AUTHONLY, TOKENIZE:
    design §3 invariant 5, the card's first use); refunds, voids and reversals
    never carry it.
    """
    if not isinstance(card, Card):
        raise GatewayRequestError("card must be a Card", transaction_type=ttype, transaction_id=tid,
                                  field="card")
    number = re.sub(r"[\s-]", "", str(card.number))
    # Length and digits only: the Luhn check is left to IPpay (900 "Invalid card
    # number.", ippay §7) so that its answer stays the single truth.
    if not (number.isascii() and _PAN_RE.fullmatch(number)):
        raise GatewayRequestError("the card number must be 13-19 digits", transaction_type=ttype,
                                  transaction_id=tid, field="card.number")
    month, year = _expiry(ttype, tid, card.exp_month, card.exp_year)
    cvv = str(card.cvv).strip() if send_cvv and card.has_cvv else None
    if cvv is not None and not (cvv.isascii() and _CVV_RE.fullmatch(cvv)):
        raise GatewayRequestError("the security code must be 3 or 4 digits", transaction_type=ttype,
                                  transaction_id=tid, field="card.cvv")
    return {
        "CardNum": Node(text=number, attrs={"Tokenize": "true"}) if tokenize else number,
        "CVV2": cvv,
        "CardExpMonth": month,
        "CardExpYear": year,
        "CardName": _text(ttype, tid, "card.holder", card.holder),
        "BillingPostalCode": _text(ttype, tid, "card.postal_code", card.postal_code),
    }


def _source(ttype: str, tid: Optional[str], token, card, *, send_cvv: bool, tokenize: bool = False) -> dict:
    """Exactly one of a token (instead of CardNum and expiry, ippay §2.2 row 11) and a card."""
    if (token is None) == (card is None):
        raise GatewayRequestError(f"{ttype} needs exactly one of token and card", transaction_type=ttype,
                                  transaction_id=tid, field="token")
    if token is not None:
        return {"Token": _token(ttype, tid, token)}
    return _card(ttype, tid, card, send_cvv=send_cvv, tokenize=tokenize)


def _bank_account(ttype: str, tid: Optional[str], account) -> tuple:
    """``(number, routing, type, sec)`` of ``account``, checked by the rules of :mod:`.ach`."""
    if not isinstance(account, BankAccount):
        raise GatewayRequestError("account must be a BankAccount", transaction_type=ttype,
                                  transaction_id=tid, field="account")
    number = str(account.account_number).strip()
    routing = str(account.routing_number).strip()
    for field_name, problem in (("account.account_number", ach.account_number_problem(number)),
                                ("account.routing_number", ach.routing_number_problem(routing))):
        if problem:
            raise GatewayRequestError(problem, transaction_type=ttype, transaction_id=tid, field=field_name)
    account_type = _choice(ttype, tid, "account.account_type", account.account_type, ACCOUNT_TYPES)
    sec = _choice(ttype, tid, "account.sec", account.sec, SEC_CODES)
    return number, routing, account_type, sec
