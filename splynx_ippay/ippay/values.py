"""Value objects of the IPpay client: what goes in (Card, BankAccount) and what comes out (GatewayResult).

Plain frozen dataclasses, as saleor's ``payment/interface.py`` keeps gateway
data apart from the code that moves it. Nothing here talks to the network.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Mapping, Optional, Union

from . import codes
from .scrub import mask_tail

__all__ = ["Card", "BankAccount", "GatewayResult", "new_transaction_id"]

_ID_ALPHABET = string.ascii_uppercase + string.digits
TRANSACTION_ID_LENGTH = 18


def new_transaction_id() -> str:
    """Return a fresh IPpay TransactionID: 18 characters from ``[A-Z0-9]``, drawn with :mod:`secrets`.

    18 alphanumerics is the format every IPpay client and the reporting spec
    use (ippay §2.2 row 3, §9.5); with 36**18 (about 10**28) possible values a
    collision within IPpay's 90-day uniqueness window (ippay §8) is not a
    practical concern, and the IDs cannot be guessed from one another.
    """
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(TRANSACTION_ID_LENGTH))


@dataclass(frozen=True)
class Card:
    """A payment card as typed by the customer. Never logged, never stored (design §3, invariant 5).

    ``exp_year`` may have 4 digits (2031) or 2 (31); it is sent as ``YY``
    (ippay §2.2 row 14). ``number`` may contain spaces or dashes, which are
    removed before sending. ``repr()`` shows only the last four digits.
    """

    number: str = field(repr=False)
    exp_month: Union[int, str]
    exp_year: Union[int, str]
    cvv: Optional[str] = field(default=None, repr=False)
    holder: Optional[str] = None
    postal_code: Optional[str] = None

    @property
    def last4(self) -> str:
        """The last four digits of the card number."""
        digits = "".join(ch for ch in str(self.number) if ch.isdigit())
        return digits[-4:]

    @property
    def has_cvv(self) -> bool:
        """True when the customer typed a security code (it goes to IPpay on the card's first use only)."""
        return self.cvv is not None and bool(str(self.cvv).strip())

    def __repr__(self) -> str:
        return (f"Card(number={mask_tail(str(self.number))!r}, exp_month={self.exp_month!r}, "
                f"exp_year={self.exp_year!r}, cvv={'***' if self.cvv else None!r}, "
                f"holder={self.holder!r}, postal_code={self.postal_code!r})")


@dataclass(frozen=True)
class BankAccount:
    """A US bank account for ACH (ippay §2.2 row 17).

    ``account_type`` is ``CHECKING`` or ``SAVINGS``; ``sec`` is the NACHA
    entry class ``WEB``, ``PPD``, ``CCD`` or ``TEL`` (see :func:`.ach.sec_code`
    for which one applies). ``repr()`` shows only the last four digits of the
    account number, which is never stored (design §3).
    """

    account_number: str = field(repr=False)
    routing_number: str
    account_type: str = "CHECKING"
    sec: str = "WEB"

    @property
    def last4(self) -> str:
        """The last four digits of the account number."""
        return str(self.account_number)[-4:]

    def __repr__(self) -> str:
        return (f"BankAccount(account_number={mask_tail(str(self.account_number))!r}, "
                f"routing_number={self.routing_number!r}, account_type={self.account_type!r}, "
                f"sec={self.sec!r})")


@dataclass(frozen=True)
class GatewayResult:
    """IPpay's answer to one request that it did answer: an approval or a decline.

    ``approved`` is ``action_code == "000"`` (ippay §5.1; for REVERSEAUTH also
    ``400`` "Reversal accepted", [J]); a TOKENIZE of a new card or bank account
    also needs a non-empty ``token`` (ippay §5.1, §9.8). ``message`` is a
    sentence a customer understands (see :func:`codes.describe`);
    ``response_text`` and ``err_msg`` are IPpay's own words, stripped.
    ``cvv2`` is the CVV2 result letter (``M`` match, ``N`` no match, ``P`` not
    processed ..., ippay §5.3), never the code itself. ``transaction_type`` and
    ``additional_info`` (ACH remarks, ippay §4.2) are additions to the
    documented interface.
    """

    approved: bool
    action_code: str
    response_text: str
    message: str
    transaction_id: Optional[str] = None
    approval: Optional[str] = None
    token: Optional[str] = None
    avs: Optional[str] = None
    cvv2: Optional[str] = None
    ip_trans_id: Optional[str] = None
    err_msg: Optional[str] = None
    additional_info: Optional[str] = None
    transaction_type: Optional[str] = None

    @classmethod
    def from_reply(cls, reply: Mapping[str, str], *, transaction_type: str, transaction_id: Optional[str],
                   need_token: bool = False, fallback_token: Optional[str] = None,
                   success_codes: tuple = (codes.APPROVED,)) -> "GatewayResult":
        """Build the result of ``reply`` (the fields of :func:`.xml.parse_response`).

        ``need_token``: approval also needs a Token (TOKENIZE of new data);
        ``fallback_token``: the token to report when the reply carries none
        (an expiry update); ``success_codes``: the ActionCodes that mean success
        for this type.
        """
        code = reply["ActionCode"]
        returned_token = reply.get("Token")
        succeeded = code in success_codes
        approved = succeeded and (returned_token is not None or not need_token)
        if succeeded and not approved:
            # ippay §5.1: TOKENIZE without a Token is a failure (UCRM does the same).
            message = codes.N_("The card details could not be saved. Please try again.")
        else:
            message = codes.describe(code, err_msg=reply.get("ErrMsg"), response_text=reply.get("ResponseText"),
                                     transaction_type=transaction_type)
        return cls(
            approved=approved,
            action_code=code,
            response_text=reply.get("ResponseText", ""),
            message=message,
            transaction_id=reply.get("TransactionID") or transaction_id,
            approval=reply.get("Approval"),
            token=returned_token or fallback_token,
            avs=reply.get("AVS"),
            cvv2=reply.get("CVV2"),
            ip_trans_id=reply.get("ipTransID"),
            err_msg=reply.get("ErrMsg"),
            additional_info=reply.get("AdditionalInfo"),
            transaction_type=transaction_type,
        )

    @property
    def not_found(self) -> bool:
        """True when IPpay does not know the TransactionID (ActionCode 025, ippay §8): nothing went through."""
        return self.action_code == codes.NOT_FOUND

    @property
    def declined(self) -> bool:
        """The opposite of :attr:`approved`."""
        return not self.approved

    @property
    def decline_category(self) -> Optional[str]:
        """``None`` for an approval; else ``"hard"``, ``"soft"`` or ``"error"`` (:data:`codes.TABLE`).

        ``hard``: never retry on this card (lost, stolen, expired, invalid
        account, CVV refused ...); ``soft``: the issuer may approve later (do not
        honour, insufficient funds, issuer unavailable ...); ``error``: neither,
        the request or the set-up needs a look (validation error, unknown
        terminal, duplicate TransactionID ...), never retried by itself.
        """
        if self.approved:
            return None
        return codes.decline_category(self.action_code, err_msg=self.err_msg, response_text=self.response_text)

    @property
    def not_offered(self) -> bool:
        """True when the terminal does not offer this transaction type (ippay §5.4; BOP's REVERSEAUTH answer)."""
        return not self.approved and codes.names_type_not_offered(self.err_msg, self.response_text)
