"""The ``Gateway`` protocol: every IPpay operation the add-on uses, in one place.

:class:`~splynx_ippay.ippay.IPpayClient` implements it explicitly (it
subclasses :class:`Gateway`); whatever stands in its place for the services -
the selector that picks the partner's terminal, the worker's concurrency slots
- implements it too, so go-to-definition on ``context.gateway.sale`` lands
here. It is ``runtime_checkable``: ``isinstance(obj, Gateway)`` checks that
every member below exists (not their signatures).

The contract every operation keeps (design §3, §9; ippay-protocol.md §8-§9):

* IPpay answered -> a :class:`GatewayResult`, approved or declined (a decline
  is a result, never an exception); ``result.decline_category`` says whether
  a decline may be retried (``soft``), never on that card (``hard``), or needs
  a look (``error``);
* IPpay did not answer -> :class:`GatewayNotSentError` (certainly not sent:
  the same request may be sent again), :class:`GatewayUnknownOutcomeError`
  (settle it with :meth:`Gateway.enquire` on the same TransactionID, never
  resend a new SALE) or :class:`GatewayRequestError` (refused locally,
  including :class:`GatewayAddressRefused`; nothing sent);
* amounts are positive ``int`` cents; TransactionIDs are 18 letters or digits
  (:func:`new_transaction_id`), stored before the call so that an unknown
  outcome can be settled;
* a card number or CVV is never stored or logged by the gateway object; the
  CVV goes to IPpay only on the card's first use (SALE, AUTHONLY or TOKENIZE
  with the typed card), never on a refund, void or reversal.
"""

from __future__ import annotations

from typing import Optional, Protocol, runtime_checkable

from .values import BankAccount, Card, GatewayResult

__all__ = ["Gateway"]


@runtime_checkable
class Gateway(Protocol):
    """The IPpay operations of one terminal (see the module docstring for the contract)."""

    #: The TerminalID, IPpay's only credential (ippay §1): a token is charged only on the
    #: terminal that made it.
    terminal_id: str
    #: The gateway endpoint (``https://gtwy.ippay.com/ippay`` live,
    #: ``https://testgtwy.ippay.com/ippay`` test, ippay §1).
    url: str

    # -- saving a card or an account ------------------------------------------------------------

    def tokenize(self, card: Card) -> GatewayResult:
        """Save ``card`` at IPpay (TOKENIZE, ippay §6) and return its Token in ``result.token``.

        Sends CVV2 when the card carries one (as UCRM does); whether IPpay checks it
        on TOKENIZE is not documented, so a card that must be CVV-checked is better
        verified with :meth:`authorize`. Approved needs ActionCode 000 and a Token.
        """
        ...

    def update_token_expiry(self, token: str, exp_month, exp_year) -> GatewayResult:
        """Give a saved card a new expiry (TOKENIZE with Token + expiry, ippay §6); keep ``result.token``."""
        ...

    def tokenize_bank_account(self, account: BankAccount) -> GatewayResult:
        """Save a bank account (TOKENIZE with root-level ABA + AccountNumber, ippay §6); Token in ``result.token``."""
        ...

    # -- cards -------------------------------------------------------------------------------

    def sale(self, transaction_id: str, amount_cents: int, *, token: Optional[str] = None,
             card: Optional[Card] = None, origin: str = "INTERNET", order_number: Optional[str] = None,
             tokenize: bool = False, email: Optional[str] = None, user_ip: Optional[str] = None) -> GatewayResult:
        """Charge a saved ``token`` or a typed ``card`` (SALE, ippay §3); exactly one of the two.

        A typed card's first charge carries its CVV2; ``tokenize=True`` (card only)
        sends ``<CardNum Tokenize="true">`` and the approval's ``result.token`` is the
        card's Token (ippay §6): one call pays, CVV-checks and saves. ``origin`` is
        ``RECURRING`` for card-on-file rebills (ippay §2.2 row 6).
        """
        ...

    def authorize(self, transaction_id: str, amount_cents: int, *, card: Card, tokenize: bool = True,
                  origin: str = "INTERNET", order_number: Optional[str] = None, email: Optional[str] = None,
                  user_ip: Optional[str] = None) -> GatewayResult:
        """Authorise ``amount_cents`` on a typed card without taking it (AUTHONLY, ippay §3).

        For verifying a card that is saved without paying: the CVV2 reaches the
        issuer, ``tokenize=True`` returns the Token, and the hold is then released
        with :meth:`release_authorization` (or taken with :meth:`capture`).
        """
        ...

    def capture(self, transaction_id: str, amount_cents: Optional[int] = None) -> GatewayResult:
        """Take an AUTHONLY's money (CAPT on its TransactionID, ippay §3); no amount takes all of it."""
        ...

    def reverse_authorization(self, transaction_id: str, amount_cents: int, *, token: Optional[str] = None,
                              card: Optional[Card] = None) -> GatewayResult:
        """Release an uncaptured AUTHONLY (REVERSEAUTH, ippay §3, §8): its ID, full amount and card or token.

        Approved on 000 (or 400 "Reversal accepted" [J]). A terminal without
        REVERSEAUTH answers 900 "The transaction type is not a valid transaction
        type." (``result.not_offered``; BOP recorded it on the test terminal).
        """
        ...

    def release_authorization(self, transaction_id: str, approval: str, amount_cents: int, *,
                              token: Optional[str] = None, card: Optional[Card] = None) -> GatewayResult:
        """Release an AUTHONLY: REVERSEAUTH, or VOID where the terminal does not offer REVERSEAUTH (ippay §8).

        Returns the result of the last call. If neither is accepted the hold is
        not released here and lapses at the issuer by itself.
        """
        ...

    def enquire(self, transaction_id: str) -> GatewayResult:
        """What became of ``transaction_id`` (ENQ, ippay §8): approved, the original decline, or 025 not found.

        ``result.not_found`` means nothing was recorded and the same TransactionID
        may be sent again (ippay §8 step 5).
        """
        ...

    def credit(self, amount_cents: int, *, transaction_id: str, token: Optional[str] = None,
               card: Optional[Card] = None) -> GatewayResult:
        """Refund to a token or card (CREDIT, ippay §3, §8): linked with the sale's ID, unlinked with a new one."""
        ...

    def void(self, transaction_id: str, approval: str, amount_cents: int, *, token: Optional[str] = None,
             card: Optional[Card] = None) -> GatewayResult:
        """Cancel an unsettled SALE, CAPT, CREDIT or AUTHONLY the same day (VOID, ippay §3, §8).

        Needs the original ID, Approval, full amount and card or token. After
        settlement refund with :meth:`credit`. Voiding an AUTHONLY is JetPay's
        behaviour [J]; a terminal that refuses it answers 900.
        """
        ...

    def ping(self) -> GatewayResult:
        """Check that the gateway answers and knows the terminal (PING, ippay §3)."""
        ...

    # -- bank accounts (ACH) -----------------------------------------------------------------

    def check(self, transaction_id: str, amount_cents: int, holder: str, *, account: Optional[BankAccount] = None,
              token: Optional[str] = None, check_number: str = "100", account_type: str = "CHECKING",
              sec: str = "WEB", tokenize: bool = False) -> GatewayResult:
        """Debit a bank account (CHECK, ippay §2.2 row 17, §3): exactly one of ``account`` and an ACH ``token``.

        ``holder`` is the account holder's name. ``sec`` (for a token; an account
        carries its own) follows :func:`.ach.sec_code`. ``tokenize=True`` (account
        only) returns the account's Token. Approval is not final: the bank may
        return the debit days later (R01 ...; :mod:`.ach`).
        """
        ...

    def ach_reversal(self, transaction_id: str, amount_cents: int, holder: str, *,
                     account: Optional[BankAccount] = None, token: Optional[str] = None, check_number: str = "100",
                     account_type: str = "CHECKING", sec: str = "WEB") -> GatewayResult:
        """Refund to a bank account (REVERSAL, ippay §3): linked with the CHECK's ID, or unlinked with a new one.

        VOIDACH is retired at IPpay ("VOIDACH transactions are no longer
        supported"), so this is the only way back for a CHECK.
        """
        ...
