"""IPpay ActionCodes in one table: what each means, what the customer is told, and the decline policy.

:data:`TABLE` has one :class:`Code` row per ActionCode of ippay §5.2 (plus a few
the card networks add): its short technical ``name`` (staff pages, logs),
its ``plain`` meaning in words a customer understands, the ``message`` shown
to the customer, its ``category`` and the ``source`` of that category.

Categories (issue 11 item 3, the decline policy):

* ``approved`` - the request succeeded;
* ``hard`` - the issuer will not approve this card, or these card details,
  again: never retried on the same card (lost, stolen, pick up, invalid
  account, expired, restricted, not permitted, violation of law, invalid
  merchant, CVV refused ...);
* ``soft`` - the issuer cannot approve now and may later: retried on a
  schedule (do not honour, insufficient funds, over a limit, issuer
  unavailable, system error, timeout ...);
* ``error`` - neither: the request, the terminal's set-up or an answer we do
  not expect (a validation error, an unknown terminal, a duplicate
  TransactionID, an ISO approval code that is not IPpay's 000 ...); never
  retried by itself, shown to staff.

Sources: ``spec`` (ippay-protocol.md, the row named), ``Visa 1/2/3/4`` (Visa's
decline categories, Visa Rules "Excessive Reattempts", 2021: 1 "issuer will
never approve" - no retry; 2 "cannot approve at this time" and 4 "generic" -
retries allowed; 3 "cannot approve with these details" - retry only with
corrected details, so *hard* for a saved card), ``issue 11`` (the policy's own
list, where it is stricter than Visa), ``[I]`` (our choice, with its reason).

Customer messages never say "stolen" or "pick up": like every card processor,
we say the issuer declined and let the bank explain (the cardholder may be
the fraudster). Every ``message`` is marked ``N_()`` for the customer pages' catalogue
(babel.cfg); the pages translate it where they show it (i18n.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

__all__ = [
    "Code", "TABLE", "MEANINGS", "CATEGORIES", "APPROVED", "NOT_FOUND", "DUPLICATE", "VALIDATION_ERROR",
    "REVERSAL_ACCEPTED", "HARD", "SOFT", "ERROR", "APPROVAL", "lookup", "meaning", "describe", "category",
    "decline_category", "names_type_not_offered",
]

APPROVED = "000"
NOT_FOUND = "025"           # CAPT/VOID/ENQ on an unknown TransactionID (ippay §5.2, §8)
DUPLICATE = "094"           # TransactionID already used (ippay §8)
REVERSAL_ACCEPTED = "400"   # JetPay's answer to an accepted reversal (ippay §5.2 [J])
VALIDATION_ERROR = "900"    # gateway validation error, details in ErrMsg (ippay §5.2)


def N_(text):
    """Mark a customer message for the catalogue (gettext_noop); this package stays free of
    the add-on's modules, so it has its own."""
    return text


APPROVAL, HARD, SOFT, ERROR = "approved", "hard", "soft", "error"
CATEGORIES = (APPROVAL, HARD, SOFT, ERROR)

_DECLINED = N_("Your card issuer declined the payment. Please use another card or contact your bank.")
_BANK_DECLINED = N_("Your bank declined the payment. Please check the account details "
                    "or use another payment method.")
_TRY_AGAIN = N_("The payment could not be completed. Please try again.")
_ISSUER_DOWN = N_("Your card issuer could not be reached. Please try again in a few minutes.")
_SETUP = N_("Card payments are not set up correctly on our side. Please contact us.")
_CARD_NUMBER = N_("The card number is not valid.")
_EXPIRED = N_("The card has expired. Please use another card or update the expiry date.")
_EXPIRY = N_("The card expiry date is not valid.")
_CVV = N_("The security code (CVV) is not valid. Please check it and try again.")
_AMOUNT = N_("The payment amount was not accepted.")
_FUNDS = N_("There are not enough funds on the card. Please use another card.")
_LIMIT = N_("The payment is over the card's limit. Please use another card or contact your bank.")
_ORIGINAL = N_("The original transaction could not be found.")
_MISMATCH = N_("The request does not match the original transaction.")
_REJECTED = N_("The payment gateway rejected the request. Please check the details and try again.")
_ROUTING = N_("The bank routing number is not valid.")
_ACCOUNT = N_("The bank account number is not valid.")
_PARTIAL = N_("Your card issuer approved only part of the amount, so the payment was not completed.")
_NOT_THIS_KIND = N_("This card cannot be used for this kind of payment. Please use another card.")
_DUPLICATE = N_("This payment was already submitted, so it was not charged again.")
_UNREADABLE = N_("The payment gateway could not read the request. Please try again later or contact us.")


@dataclass(frozen=True)
class Code:
    """One ActionCode: ``name`` (technical), ``plain`` (its meaning in plain words),
    ``message`` (what the customer is told), ``category`` and the ``source`` of the category."""

    code: str
    category: str
    name: str
    plain: str
    message: str
    source: str


def _c(code, category, name, plain, source, message=_DECLINED):
    return Code(code, category, name, plain, message, source)


#: ippay §5.2 (ActiveMerchant jetpay.rb numbering, which OFF-MAN confirms for IPpay), the
#: 806/9xx gateway codes, and the Amex 1xx family; 046 and 059 are Visa codes an issuer may send.
TABLE = {row.code: row for row in (
    _c("000", APPROVAL, "Approved", "The payment went through.", "spec §5.1 [C]"),
    _c("001", SOFT, "Refer to issuer", "The bank wants to be called before it approves this payment.", "Visa 4"),
    _c("002", SOFT, "Refer to issuer, special condition", "The bank wants to be called about this card.",
       "Visa 4"),
    _c("003", HARD, "Invalid merchant", "The bank does not accept payments from this shop's account.", "Visa 1",
       _SETUP),
    _c("004", HARD, "Pick up card", "The bank has blocked the card.", "Visa 1"),
    _c("005", SOFT, "Do not honor", "The bank declined without giving a reason.", "Visa 4"),
    _c("006", SOFT, "Error", "The bank had a problem with this payment.", "Visa 4", _TRY_AGAIN),
    _c("007", HARD, "Pick up card, special condition", "The bank has blocked the card.", "Visa 1"),
    _c("008", ERROR, "Honor with identification", "The bank asks to see an ID before approving.",
       "[I] an ISO approval code, not IPpay's success (000 only, spec §5.1): never retried, staff look"),
    _c("010", ERROR, "Partial approval", "The bank approved only part of the amount.",
       "[I] part of the amount may be held: a retry could hold it twice; staff look", _PARTIAL),
    _c("011", ERROR, "VIP approval", "The bank approved as a special case.",
       "[I] an ISO approval code, not IPpay's success (000 only, spec §5.1): never retried, staff look"),
    _c("012", HARD, "Invalid transaction", "The bank does not allow this kind of payment on the card.", "Visa 1",
       _NOT_THIS_KIND),
    _c("013", ERROR, "Invalid amount", "The bank did not accept the amount.",
       "[I] the same amount is refused again; the request needs a look", _AMOUNT),
    _c("014", HARD, "Invalid account number", "The card number does not exist.", "Visa 3", _CARD_NUMBER),
    _c("015", HARD, "No such issuer", "No bank issues cards with this number.", "Visa 1", _CARD_NUMBER),
    _c("019", SOFT, "Re-enter transaction", "The bank asks to try the payment again.", "Visa 2", _TRY_AGAIN),
    _c("021", SOFT, "No action taken", "The bank did not process the request.", "Visa 4", _TRY_AGAIN),
    _c("025", ERROR, "Transaction not found", "The payment gateway has no record of this transaction.",
       "spec §8: the answer to CAPT/VOID/ENQ on an unknown TransactionID, not a card decision",
       N_("The transaction was not found at the payment gateway.")),
    _c("028", SOFT, "File temporarily unavailable", "The bank's records were briefly unavailable.",
       "Visa 4", _ISSUER_DOWN),
    _c("030", ERROR, "Format error", "The payment gateway could not read the request.",
       "[I] our request was malformed: sending it again fails again", _UNREADABLE),
    _c("041", HARD, "Lost card", "The card was reported lost.", "Visa 1"),
    _c("043", HARD, "Stolen card", "The card was reported stolen.", "Visa 1"),
    _c("046", HARD, "Closed account", "The card's account is closed.", "Visa 1"),
    _c("051", SOFT, "Insufficient funds", "There is not enough money or credit on the card.", "Visa 2", _FUNDS),
    _c("052", HARD, "No checking account", "There is no checking account behind the card.",
       "[I] the account does not exist, so the same account never succeeds (Visa 4 would retry)"),
    _c("053", HARD, "No savings account", "There is no savings account behind the card.",
       "[I] the account does not exist, so the same account never succeeds (Visa 4 would retry)"),
    _c("054", HARD, "Expired card", "The card has expired.", "Visa 3", _EXPIRED),
    _c("055", HARD, "Incorrect PIN", "The PIN was wrong.", "Visa 3"),
    _c("057", HARD, "Transaction not permitted to cardholder", "The card may not be used for this payment.",
       "Visa 1"),
    _c("058", ERROR, "Transaction not allowed at terminal", "This shop's terminal may not take this payment.",
       "[I] the terminal's set-up, not the card", _SETUP),
    _c("059", SOFT, "Suspected fraud", "The bank wants to check the payment with the cardholder.", "Visa 2"),
    _c("061", SOFT, "Exceeds withdrawal limit", "The payment is over the card's limit.", "Visa 2", _LIMIT),
    _c("062", HARD, "Restricted card", "The card may not be used here.", "Visa 1"),
    _c("063", HARD, "Security violation", "The bank flagged a security problem with the card.",
       "[I] retrying invites fraud flags (Visa 4 would retry)"),
    _c("065", SOFT, "Activity count limit exceeded", "The card has been used too often today.", "Visa 2",
       _LIMIT),
    _c("075", SOFT, "PIN tries exceeded", "The PIN was entered wrongly too many times.", "Visa 2"),
    _c("076", ERROR, "Original transaction not found", "The bank cannot find the original payment.",
       "[I] about a follow-up (reversal, void), not the card", _ORIGINAL),
    _c("077", ERROR, "Inconsistent with original transaction", "The request does not match the original payment.",
       "[I] about a follow-up (reversal, void), not the card", _MISMATCH),
    _c("078", HARD, "Account blocked", "The card's account is blocked or does not exist.", "Visa 1"),
    _c("080", SOFT, "Invalid date / issuer unavailable", "The bank could not be reached.",
       "[I] jetpay.rb reads it as 'issuer unavailable or invalid date': the temporary reading", _ISSUER_DOWN),
    _c("082", HARD, "Negative CVV result", "The security code did not match.", "Visa 3", _CVV),
    _c("085", ERROR, "No reason to decline", "The bank verified the card without taking a payment.",
       "[I] ISO's answer to a card check, not IPpay's success (000 only): staff look"),
    _c("091", SOFT, "Issuer unavailable", "The bank could not be reached.", "Visa 2", _ISSUER_DOWN),
    _c("092", SOFT, "Unable to route", "The payment could not be routed to the bank.", "Visa 4", _ISSUER_DOWN),
    _c("093", HARD, "Violation of law", "The bank may not take this payment by law.", "Visa 1"),
    _c("094", ERROR, "Duplicate transmission", "This payment had already been sent.",
       "spec §8: a repeated TransactionID, not a card decision", _DUPLICATE),
    _c("096", SOFT, "System error", "The bank's system had a problem.", "Visa 2", _ISSUER_DOWN),
    _c("100", SOFT, "Deny (Amex)", "American Express declined without giving a reason.",
       "[I] Amex's generic deny, treated like 005"),
    _c("101", HARD, "Expired card (Amex)", "The card has expired.", "[I] as 054 (Visa 3)", _EXPIRED),
    _c("103", HARD, "Deny - invalid CID (Amex)", "The security code did not match.", "[I] as 082 (Visa 3)",
       _CVV),
    _c("104", HARD, "Deny - new card issued (Amex)", "The card has been replaced by a new one.",
       "[I] the old number is never approved again"),
    _c("105", HARD, "Deny - account cancelled (Amex)", "The card's account is closed.", "[I] as 046 (Visa 1)"),
    _c("106", SOFT, "Exceeded PIN attempts (Amex)", "The PIN was entered wrongly too many times.",
       "[I] as 075 (Visa 2)"),
    _c("107", SOFT, "Please call issuer (Amex)", "American Express wants to be called about this payment.",
       "[I] as 001 (Visa 4)"),
    _c("109", HARD, "Invalid merchant (Amex)", "American Express does not accept this shop's account.",
       "[I] as 003 (Visa 1)", _SETUP),
    _c("110", ERROR, "Invalid amount (Amex)", "American Express did not accept the amount.", "[I] as 013",
       _AMOUNT),
    _c("111", HARD, "Invalid account (Amex)", "The card number does not exist.", "[I] as 014 (Visa 3)",
       _CARD_NUMBER),
    _c("115", HARD, "Service not permitted (Amex)", "The card may not be used for this payment.",
       "[I] as 057 (Visa 1)"),
    _c("122", HARD, "Invalid CID (Amex)", "The security code did not match.", "[I] as 082 (Visa 3)", _CVV),
    _c("125", HARD, "Invalid effective date (Amex)", "The card's dates are not valid.", "[I] as 054 (Visa 3)",
       _EXPIRY),
    _c("181", ERROR, "Format error (Amex)", "American Express could not read the request.", "[I] as 030",
       _UNREADABLE),
    _c("182", SOFT, "Please wait (Amex)", "American Express asks to try again shortly.", "[I] temporary",
       _ISSUER_DOWN),
    _c("183", ERROR, "Invalid currency code (Amex)", "American Express did not accept the currency.",
       "[I] our request, not the card", _REJECTED),
    _c("187", HARD, "Deny - new card issued (Amex)", "The card has been replaced by a new one.",
       "[I] as 104"),
    _c("188", ERROR, "Deny - expiration date required (Amex)", "The expiry date was missing.",
       "[I] our request, not the card", _EXPIRY),
    _c("189", HARD, "Deny - cancelled or closed merchant (Amex)",
       "American Express no longer accepts this shop's account.", "[I] as 003 (Visa 1)", _SETUP),
    _c("200", HARD, "Deny - pick up card", "The bank has blocked the card.", "[I] as 004 (Visa 1)"),
    _c("400", APPROVAL, "Reversal accepted", "The authorisation was released.",
       "spec §5.2 [J]: success for REVERSEAUTH only", N_("The reversal was accepted.")),
    _c("806", HARD, "Declined for invalid CVV2", "The security code did not match.",
       "spec §5.2 [C] OFF-RPT App. D; Visa 3 (N7)", _CVV),
    _c("900", ERROR, "Invalid message / gateway validation error", "The payment gateway refused the request.",
       "spec §5.2: fix the request (a 900 naming the card number, expiry or CVV is hard, see below)", _REJECTED),
    _c("912", HARD, "Invalid card number", "The card number is not valid.", "spec §7 (old JetPay host); as 014",
       _CARD_NUMBER),
    _c("917", HARD, "Expired card", "The card has expired.", "as 054 (Visa 3)", _EXPIRED),
    _c("920", ERROR, "Invalid amount", "The payment gateway did not accept the amount.", "[I] as 013", _AMOUNT),
    _c("923", HARD, "Invalid ABA routing number", "The bank routing number does not exist.",
       "issue 11 (invalid account)", _ROUTING),
    _c("924", HARD, "Invalid DDA account number", "The bank account number is not valid.",
       "issue 11 (invalid account)", _ACCOUNT),
    _c("925", ERROR, "Invalid terminal ID", "This shop's terminal is not known to the gateway.",
       "[I] the set-up, not the card", _SETUP),
    _c("933", HARD, "Invalid CVV2", "The security code is not valid.", "as 806 (Visa 3)", _CVV),
    _c("992", SOFT, "Transaction timeout", "The bank did not answer in time.", "issue 11 (timeout)",
       _ISSUER_DOWN),
    _c("996", ERROR, "Bad terminal ID", "This shop's terminal is not known to the gateway.",
       "[I] the set-up, not the card", _SETUP),
    _c("999", SOFT, "Communication failure", "The payment network had a communication problem.",
       "[I] temporary", _ISSUER_DOWN),
)}

#: Every other code of the Amex deny family 100-189 (ippay §5.2) reads as Amex's generic deny.
_AMEX_FAMILY = Code("1xx", SOFT, "Deny (Amex)", "American Express declined the payment.", _DECLINED,
                    "[I] as 100")
#: A code in no table: an ISO decline (001-099) is generic (Visa 4); anything else is unexpected.
_UNKNOWN_ISO = Code("0xx", SOFT, "Unknown code", "The bank declined the payment.", _DECLINED,
                    "Visa 4: every code outside categories 1-3 is generic")
_UNKNOWN = Code("???", ERROR, "Unknown code", "The payment gateway gave an answer we do not know.", _DECLINED,
                "[I] an unexpected answer: staff look")

#: Short technical meanings by code (staff pages, logs).
MEANINGS = {code: row.name for code, row in TABLE.items()}

# Codes whose customer message is something other than the generic decline.
_MESSAGES = {code: row.message for code, row in TABLE.items() if row.message != _DECLINED and code != APPROVED}

_APPROVED_MESSAGES = {
    "SALE": N_("The payment was approved."),
    "AUTHONLY": N_("The payment was authorised."),
    "CAPT": N_("The payment was captured."),
    "CREDIT": N_("The refund was accepted."),
    "VOID": N_("The payment was cancelled."),
    "TOKENIZE": N_("The card was saved."),
    "CHECK": N_("The bank payment was accepted."),
    "REVERSAL": N_("The bank refund was accepted."),
    "PING": N_("The payment gateway is reachable."),
    "ENQ": N_("The transaction was approved."),
}

_ACH_TYPES = frozenset({"CHECK", "REVERSAL", "VOIDACH"})
# Bank (ACH) wording where the card wording would be wrong.
_ACH_MESSAGES = {
    "014": N_("The bank account number is not valid."),
    "051": N_("There are not enough funds in the bank account."),
    "052": N_("The bank account is not a checking account."),
    "053": N_("The bank account is not a savings account."),
}

_NOT_OFFERED_RE = re.compile(r"not a valid transaction type", re.I)

# ippay §3 and §5.4: the wording of the gateway's validation errors (ErrMsg,
# or ResponseText with 900 - BOP's "Invalid card number.  "). The first
# pattern that matches wins, so the specific ones come first.
_ERRMSG_PATTERNS = (
    (re.compile(r"determine the URL|terminal ?id|not a valid transaction type|password", re.I), _SETUP),
    (re.compile(r"card ?num|card number|invalid card|luhn|\bPAN\b", re.I), _CARD_NUMBER),
    (re.compile(r"expir", re.I), _EXPIRY),
    (re.compile(r"cvv|security code", re.I), _CVV),
    (re.compile(r"\bABA\b|routing", re.I), _ROUTING),
    (re.compile(r"account number|\bDDA\b", re.I), _ACCOUNT),
    (re.compile(r"amount", re.I), _AMOUNT),
    (re.compile(r"token", re.I), N_("The saved card was not recognised. Please add the card again.")),
    (re.compile(r"approval|original|mismatch|does not match", re.I), _MISMATCH),
    (re.compile(r"duplicate", re.I), _DUPLICATE),
)
# A 900 whose text names the card's own data is about the card, not the request: hard.
_HARD_ERRMSG = frozenset({_CARD_NUMBER, _EXPIRY, _CVV, _ROUTING, _ACCOUNT})


def lookup(action_code: str) -> Code:
    """The :class:`Code` row for ``action_code``: the table's, the Amex family's, or an "unknown" row."""
    if action_code in TABLE:
        return TABLE[action_code]
    if action_code.isdigit() and len(action_code) == 3:
        if 100 <= int(action_code) <= 189:
            return _AMEX_FAMILY
        if 1 <= int(action_code) <= 99:
            return _UNKNOWN_ISO
    return _UNKNOWN


def meaning(action_code: str) -> str:
    """Return the short technical meaning of an ActionCode, e.g. ``"Do not honor"`` for ``"005"``."""
    return lookup(action_code).name


def category(action_code: str) -> str:
    """The table's category of ``action_code``: ``approved``, ``hard``, ``soft`` or ``error``."""
    return lookup(action_code).category


def decline_category(action_code: str, *, err_msg: Optional[str] = None,
                     response_text: Optional[str] = None) -> str:
    """``hard``, ``soft`` or ``error`` for an answer that was not a success.

    The table decides, except for ``900``: a validation error naming the card
    number, expiry, CVV or bank account (BOP's 900 "Invalid card number.") is
    ``hard``, since the same details fail again; other 900s are ``error``. A
    code the table calls ``approved`` that did not count as a success here
    (000 without the Token a TOKENIZE needs, 400 outside a reversal) is ``error``.
    """
    row_category = category(action_code)
    if action_code == VALIDATION_ERROR and _errmsg_message(err_msg, response_text) in _HARD_ERRMSG:
        return HARD
    return ERROR if row_category == APPROVAL else row_category


def names_type_not_offered(*texts: Optional[str]) -> bool:
    """True when the gateway's words say the terminal does not offer the transaction type (ippay §5.4)."""
    return any(text and _NOT_OFFERED_RE.search(text) for text in texts)


def _errmsg_message(err_msg: Optional[str], response_text: Optional[str]) -> Optional[str]:
    detail = " ".join(t for t in (err_msg, response_text) if t)
    for pattern, message in _ERRMSG_PATTERNS:
        if pattern.search(detail):
            return message
    return None


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
        return _APPROVED_MESSAGES.get(ttype, N_("The transaction was approved."))
    if action_code == VALIDATION_ERROR or (action_code not in _MESSAGES and err_msg):
        message = _errmsg_message(err_msg, response_text)
        if message:
            return message
        if action_code == VALIDATION_ERROR:
            return _REJECTED
    if ttype in _ACH_TYPES:
        return _ACH_MESSAGES.get(action_code) or _MESSAGES.get(action_code) or _BANK_DECLINED
    return lookup(action_code).message
