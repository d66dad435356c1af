"""Bank-account (ACH) rules the client checks before anything is sent (ippay §2.2 row 17, §9.5).

IPpay's own answers to a bad routing or account number are cryptic (923 / 924,
BOP: "ippay dumps an error indecipherable to the end user"), so the routing
number's checksum and the account number's shape are checked here, where the
customer can be told what to fix. Also here: which NACHA SEC code applies to a
debit, and what the ACH return codes (R01 ...) mean for the add-on.

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = [
    "ACCOUNT_TYPES", "SEC_CODES", "RETURN_CODES", "ReturnCode",
    "routing_number_problem", "account_number_problem", "sec_code", "return_code",
]

#: ippay §2.2 row 17: the ``Type`` attribute of ``<ACH>``.
ACCOUNT_TYPES = ("CHECKING", "SAVINGS")

#: ippay §2.2 row 17: the ``SEC`` attribute of ``<ACH>`` (NACHA Standard Entry Class), and
#: when each one applies (NACHA Operating Rules; :func:`sec_code` picks one).
SEC_CODES = {
    "WEB": "a consumer account, authorised by the customer online (one-time or recurring)",
    "PPD": "a consumer account, authorised in writing (a signed or similarly authenticated form)",
    "CCD": "a business account, under an agreement with the business",
    "TEL": "a consumer account, authorised by telephone (the call recorded or confirmed in writing)",
}

# NACHA: a DFI account number is at most 17 characters. IPpay's test accounts are digits
# ("12345", "11111999"); letters and dashes are refused here [I] so that what the customer
# types is what the bank will read. Four digits at least [I]: fewer is a typing slip.
ACCOUNT_NUMBER_LENGTHS = (4, 17)


def routing_number_problem(routing_number) -> Optional[str]:
    """Why ``routing_number`` is not a valid ABA routing number, or ``None``.

    Nine digits (ippay §9.5, BOP) whose ABA checksum holds:
    3·(d1+d4+d7) + 7·(d2+d5+d8) + (d3+d6+d9) is a multiple of 10. IPpay's test
    numbers pass it (111000025, 071025661, ippay §7).
    """
    text = routing_number.strip() if isinstance(routing_number, str) else ""
    if len(text) != 9 or not text.isascii() or not text.isdigit():
        return "The routing number must be 9 digits."
    d = [int(ch) for ch in text]
    if (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10:
        return "The routing number is not valid: please check its 9 digits."
    return None


def account_number_problem(account_number) -> Optional[str]:
    """Why ``account_number`` is not an account number the add-on sends, or ``None`` (4-17 ASCII digits)."""
    text = account_number.strip() if isinstance(account_number, str) else ""
    low, high = ACCOUNT_NUMBER_LENGTHS
    if not (low <= len(text) <= high and text.isascii() and text.isdigit()):
        return f"The account number must be {low} to {high} digits."
    return None


def sec_code(*, authorised: str = "online", business: bool = False) -> str:
    """The SEC code of a debit (CHECK) or a refund of one (REVERSAL), by how it was authorised.

    ``authorised`` is ``"online"`` (the customer accepted the debit
    authorisation on the add-on's pages: one-time or recurring), ``"written"``
    (staff recorded a signed authorisation) or ``"phone"``. ``business`` is
    True for a company account. The rule (NACHA Operating Rules):

    * a business account: ``CCD``, however it was agreed;
    * a consumer account authorised online: ``WEB``;
    * ... authorised in writing: ``PPD``; ... by telephone: ``TEL``.

    A refund goes back with the code of the debit it refunds [I]: IPpay's
    REVERSAL takes "the same fields as CHECK" (ippay §3).
    """
    if business:
        return "CCD"
    try:
        return {"online": "WEB", "written": "PPD", "phone": "TEL"}[authorised]
    except KeyError:
        raise ValueError("authorised must be 'online', 'written' or 'phone'") from None


@dataclass(frozen=True)
class ReturnCode:
    """One ACH return reason (NACHA), as the add-on acts on it.

    ``represent``: the same debit may be presented again (NACHA allows two
    more tries after R01/R09 within 180 days). ``stops_autopay``: the account
    must not be debited again until the customer acts (closed, not found,
    invalid, not authorised, stopped ...; issue 12 names R02/R03/R04/R10).
    """

    code: str
    meaning: str
    represent: bool = False
    stops_autopay: bool = False


#: NACHA return reason codes the add-on may meet on a consumer or business debit.
RETURN_CODES = {r.code: r for r in (
    ReturnCode("R01", "Insufficient funds", represent=True),
    ReturnCode("R02", "Account closed", stops_autopay=True),
    ReturnCode("R03", "No account, or the account could not be found", stops_autopay=True),
    ReturnCode("R04", "Invalid account number", stops_autopay=True),
    ReturnCode("R05", "Unauthorised debit to a consumer account with a business SEC code",
               stops_autopay=True),
    ReturnCode("R06", "Returned at the request of the originating bank"),
    ReturnCode("R07", "Authorisation revoked by the customer", stops_autopay=True),
    ReturnCode("R08", "Payment stopped by the customer", stops_autopay=True),
    ReturnCode("R09", "Uncollected funds", represent=True),
    ReturnCode("R10", "The customer says the debit was not authorised", stops_autopay=True),
    ReturnCode("R11", "The debit does not match the terms of the authorisation", stops_autopay=True),
    ReturnCode("R12", "The account was sold to another bank", stops_autopay=True),
    ReturnCode("R14", "The payee's representative has died", stops_autopay=True),
    ReturnCode("R15", "The account holder has died", stops_autopay=True),
    ReturnCode("R16", "The account is frozen", stops_autopay=True),
    ReturnCode("R20", "The account does not allow debits", stops_autopay=True),
    ReturnCode("R24", "Duplicate entry"),
    ReturnCode("R29", "The business says the debit was not authorised", stops_autopay=True),
)}


def return_code(code: str) -> ReturnCode:
    """The :class:`ReturnCode` for ``code`` (``"R01"`` ...); an unknown code stops autopay [I]: be safe."""
    key = (code or "").strip().upper()
    return RETURN_CODES.get(key) or ReturnCode(key, "Returned by the bank", stops_autopay=True)
