"""IPpay ActionCodes: what they mean, and what to tell a customer (ippay §5.2).

``MEANINGS`` holds the short technical meaning (for staff and logs);
:func:`describe` gives the plain-words sentence shown to the customer, which
is what :attr:`GatewayResult.message` carries. Customer messages never say
"stolen" or "pick up": like every card processor, we say the issuer declined
and let the bank explain (the cardholder may be the fraudster).
"""

from __future__ import annotations

import re

__all__ = ["MEANINGS", "APPROVED", "NOT_FOUND", "DUPLICATE", "VALIDATION_ERROR", "meaning", "describe"]

APPROVED = "000"
NOT_FOUND = "025"          # CAPT/VOID/ENQ on an unknown TransactionID (ippay §5.2, §8)
DUPLICATE = "094"          # TransactionID already used (ippay §8)
VALIDATION_ERROR = "900"   # gateway validation error, details in ErrMsg (ippay §5.2)

# ippay §5.2 (ActiveMerchant jetpay.rb numbering, confirmed by OFF-MAN).
MEANINGS = {
    "000": "Approved",
    "001": "Refer to issuer",
    "002": "Refer to issuer, special condition",
    "003": "Invalid merchant",
    "004": "Pick up card",
    "005": "Do not honor",
    "006": "Error",
    "007": "Pick up card, special condition",
    "008": "Honor with identification",
    "010": "Partial approval",
    "011": "VIP approval",
    "012": "Invalid transaction",
    "013": "Invalid amount",
    "014": "Invalid account number",
    "015": "No such issuer",
    "019": "Re-enter transaction",
    "021": "No action taken",
    "025": "Transaction not found",
    "028": "File temporarily unavailable",
    "030": "Format error",
    "041": "Lost card",
    "043": "Stolen card",
    "051": "Insufficient funds",
    "052": "No checking account",
    "053": "No savings account",
    "054": "Expired card",
    "055": "Incorrect PIN",
    "057": "Transaction not permitted to cardholder",
    "058": "Transaction not allowed at terminal",
    "061": "Exceeds withdrawal limit",
    "062": "Restricted card",
    "063": "Security violation",
    "065": "Activity count limit exceeded",
    "075": "PIN tries exceeded",
    "076": "Original transaction not found",
    "077": "Inconsistent with original transaction",
    "078": "Account blocked",
    "080": "Invalid date / issuer unavailable",
    "082": "Negative CVV result",
    "085": "No reason to decline",
    "091": "Issuer unavailable",
    "092": "Unable to route",
    "093": "Violation of law",
    "094": "Duplicate transmission",
    "096": "System error",
    "100": "Deny (Amex)",
    "101": "Expired card (Amex)",
    "110": "Invalid amount (Amex)",
    "122": "Invalid CID (Amex)",
    "200": "Deny - pick up card",
    "400": "Reversal accepted",
    "806": "Declined for invalid CVV2",
    "900": "Invalid message / gateway validation error",
    "912": "Invalid card number",
    "917": "Expired card",
    "920": "Invalid amount",
    "923": "Invalid ABA routing number",
    "924": "Invalid DDA account number",
    "925": "Invalid terminal ID",
    "933": "Invalid CVV2",
    "992": "Transaction timeout",
    "996": "Bad terminal ID",
    "999": "Communication failure",
}

_DECLINED = "Your card issuer declined the payment. Please use another card or contact your bank."
_BANK_DECLINED = ("Your bank declined the payment. Please check the account details "
                  "or use another payment method.")
_TRY_AGAIN = "The payment could not be completed. Please try again."
_ISSUER_DOWN = "Your card issuer could not be reached. Please try again in a few minutes."
_SETUP = "Card payments are not set up correctly on our side. Please contact us."
_CARD_NUMBER = "The card number is not valid."
_EXPIRED = "The card has expired. Please use another card or update the expiry date."
_CVV = "The security code (CVV) is not valid. Please check it and try again."
_AMOUNT = "The payment amount was not accepted."
_FUNDS = "There are not enough funds on the card. Please use another card."
_ORIGINAL = "The original transaction could not be found."
_MISMATCH = "The request does not match the original transaction."
_REJECTED = "The payment gateway rejected the request. Please check the details and try again."

# Codes whose customer message is something other than the generic decline.
_MESSAGES = {
    "003": _SETUP,
    "006": _TRY_AGAIN,
    "010": "Your card issuer approved only part of the amount, so the payment was not completed.",
    "012": "This card cannot be used for this kind of payment. Please use another card.",
    "013": _AMOUNT,
    "014": _CARD_NUMBER,
    "015": _CARD_NUMBER,
    "019": _TRY_AGAIN,
    "021": _TRY_AGAIN,
    "025": "The transaction was not found at the payment gateway.",
    "028": _ISSUER_DOWN,
    "030": "The payment gateway could not read the request. Please try again later or contact us.",
    "051": _FUNDS,
    "054": _EXPIRED,
    "058": _SETUP,
    "061": "The payment is over the card's limit. Please use another card or contact your bank.",
    "076": _ORIGINAL,
    "077": _MISMATCH,
    "080": _ISSUER_DOWN,
    "082": _CVV,
    "091": _ISSUER_DOWN,
    "092": _ISSUER_DOWN,
    "094": "This payment was already submitted, so it was not charged again.",
    "096": _ISSUER_DOWN,
    "101": _EXPIRED,
    "110": _AMOUNT,
    "122": _CVV,
    "400": "The reversal was accepted.",
    "806": _CVV,
    "912": _CARD_NUMBER,
    "917": _EXPIRED,
    "920": _AMOUNT,
    "923": "The bank routing number is not valid.",
    "924": "The bank account number is not valid.",
    "925": _SETUP,
    "933": _CVV,
    "992": _ISSUER_DOWN,
    "996": _SETUP,
    "999": _ISSUER_DOWN,
}

_APPROVED_MESSAGES = {
    "SALE": "The payment was approved.",
    "AUTHONLY": "The payment was authorised.",
    "CAPT": "The payment was captured.",
    "CREDIT": "The refund was accepted.",
    "VOID": "The payment was cancelled.",
    "TOKENIZE": "The card was saved.",
    "CHECK": "The bank payment was accepted.",
    "REVERSAL": "The bank refund was accepted.",
    "PING": "The payment gateway is reachable.",
    "ENQ": "The transaction was approved.",
}

_ACH_TYPES = frozenset({"CHECK", "REVERSAL", "VOIDACH"})
# Bank (ACH) wording where the card wording would be wrong.
_ACH_MESSAGES = {
    "014": "The bank account number is not valid.",
    "051": "There are not enough funds in the bank account.",
    "052": "The bank account is not a checking account.",
    "053": "The bank account is not a savings account.",
}

# ippay §3 and §5.4: the wording of the gateway's validation errors (ErrMsg,
# or ResponseText with 900 - BOP's "Invalid card number.  "). The first
# pattern that matches wins, so the specific ones come first.
_ERRMSG_PATTERNS = (
    (re.compile(r"determine the URL|terminal ?id|not a valid transaction type|password", re.I), _SETUP),
    (re.compile(r"card ?num|card number|invalid card|luhn|\bPAN\b", re.I), _CARD_NUMBER),
    (re.compile(r"expir", re.I), "The card expiry date is not valid."),
    (re.compile(r"cvv|security code", re.I), _CVV),
    (re.compile(r"\bABA\b|routing", re.I), "The bank routing number is not valid."),
    (re.compile(r"account number|\bDDA\b", re.I), "The bank account number is not valid."),
    (re.compile(r"amount", re.I), _AMOUNT),
    (re.compile(r"token", re.I), "The saved card was not recognised. Please add the card again."),
    (re.compile(r"approval|original|mismatch|does not match", re.I), _MISMATCH),
    (re.compile(r"duplicate", re.I), _MESSAGES["094"]),
)


def meaning(action_code: str) -> str:
    """Return the short technical meaning of an ActionCode, e.g. ``"Do not honor"`` for ``"005"``."""
    if action_code in MEANINGS:
        return MEANINGS[action_code]
    if action_code.isdigit() and 100 <= int(action_code) <= 189:
        return "Deny (Amex)"
    return "Unknown code"


def describe(action_code: str, *, err_msg: str | None = None, response_text: str | None = None,
             transaction_type: str | None = None) -> str:
    """Return one or two sentences for a customer explaining ``action_code``.

    ``000`` gives a confirmation suited to ``transaction_type``. ``900`` (and
    any code that comes with an ErrMsg but no table entry) is explained from
    the gateway's text: ``900`` with "Invalid card number." gives "The card
    number is not valid.". Declines of bank (ACH) transactions speak of the
    bank rather than the card issuer.
    """
    ttype = (transaction_type or "").upper()
    if action_code == APPROVED:
        return _APPROVED_MESSAGES.get(ttype, "The transaction was approved.")
    if action_code == VALIDATION_ERROR or (action_code not in _MESSAGES and err_msg):
        detail = " ".join(t for t in (err_msg, response_text) if t)
        for pattern, message in _ERRMSG_PATTERNS:
            if pattern.search(detail):
                return message
        if action_code == VALIDATION_ERROR:
            return _REJECTED
    if ttype in _ACH_TYPES:
        return _ACH_MESSAGES.get(action_code) or _MESSAGES.get(action_code) or _BANK_DECLINED
    if action_code in _MESSAGES:
        return _MESSAGES[action_code]
    return _DECLINED
