"""The IPpay XML gateway client: one screen of operations (ippay-protocol.md §3).

Each operation builds its request (:mod:`.fields`, which also refuses bad
arguments before anything is sent), exchanges it (:mod:`.transport`: timeouts,
the url guard, not-sent versus unknown outcome) and reads the answer
(:class:`.GatewayResult`). The contract is documented once, on :class:`.Gateway`.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable, Optional
from urllib.parse import urlsplit

import requests

from . import codes, fields
from .errors import GatewayRequestError, GatewayUnknownOutcomeError
from .fields import ORIGINS
from .interface import Gateway
from .transport import Transport
from .values import BankAccount, Card, GatewayResult

__all__ = ["IPpayClient", "ORIGINS", "LOGGER_NAME"]

LOGGER_NAME = "splynx_ippay.ippay"


class IPpayClient(Gateway):
    """The IPpay XML gateway for one terminal; implements :class:`.Gateway`.

    ``url`` is the gateway endpoint and ``terminal_id`` the TerminalID (ippay
    §1). Pass a ``session`` to share a connection pool (it must not retry
    POSTs); without one the client makes its own and :meth:`close` closes it.
    ``url_guard(url)`` runs before every request and may refuse the address
    by raising (nothing is sent; see :class:`.GatewayAddressRefused`).
    Transcripts are logged at DEBUG on ``splynx_ippay.ippay`` (or ``logger``), scrubbed.
    """

    def __init__(self, url: str, terminal_id: str, *, session: Optional[requests.Session] = None,
                 connect_timeout: float = 10.0, read_timeout: float = 45.0, software: Optional[str] = None,
                 logger: Optional[logging.Logger] = None, url_guard: Optional[Callable[[str], object]] = None):
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise GatewayRequestError("the IPpay gateway URL must be an http(s) URL", field="url")
        if not isinstance(terminal_id, str) or not terminal_id.strip():
            raise GatewayRequestError("the IPpay TerminalID is empty", field="terminal_id")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise GatewayRequestError(f"{name} must be a positive number of seconds", field=name)
        self.terminal_id = terminal_id.strip()
        self._owns_session = session is None
        # ippay §2.2 row 26, §9.6: IPpay asked integrators to name their software in UDField3.
        self.transport = Transport(url, session=session if session is not None else requests.Session(),
                                   connect_timeout=float(connect_timeout), read_timeout=float(read_timeout),
                                   software=software or _default_software(),
                                   logger=logger or logging.getLogger(LOGGER_NAME), url_guard=url_guard)

    # -- cards (Gateway documents each operation) ------------------------------------------------

    def tokenize(self, card: Card) -> GatewayResult:
        """TOKENIZE ``card`` (with its CVV2 when given); see :meth:`.Gateway.tokenize`."""
        return self._send(fields.tokenize_card(card))

    def update_token_expiry(self, token: str, exp_month, exp_year) -> GatewayResult:
        """TOKENIZE ``token`` with a new expiry; see :meth:`.Gateway.update_token_expiry`."""
        return self._send(fields.update_expiry(token, exp_month, exp_year))

    def tokenize_bank_account(self, account: BankAccount) -> GatewayResult:
        """TOKENIZE a bank account; see :meth:`.Gateway.tokenize_bank_account`."""
        return self._send(fields.tokenize_account(account))

    def sale(self, transaction_id, amount_cents, *, token=None, card=None, origin="INTERNET", order_number=None,
             tokenize=False, email=None, user_ip=None) -> GatewayResult:
        """SALE with a token or a card; see :meth:`.Gateway.sale`."""
        return self._send(fields.charge("SALE", transaction_id, amount_cents, token=token, card=card, origin=origin,
                                        order_number=order_number, tokenize=tokenize, email=email, user_ip=user_ip))

    def authorize(self, transaction_id, amount_cents, *, card, tokenize=True, origin="INTERNET", order_number=None,
                  email=None, user_ip=None) -> GatewayResult:
        """AUTHONLY on a typed card; see :meth:`.Gateway.authorize`."""
        return self._send(fields.charge("AUTHONLY", transaction_id, amount_cents, card=card, origin=origin,
                                        order_number=order_number, tokenize=tokenize, email=email, user_ip=user_ip))

    def capture(self, transaction_id, amount_cents=None) -> GatewayResult:
        """CAPT an AUTHONLY; see :meth:`.Gateway.capture`."""
        return self._send(fields.capture(transaction_id, amount_cents))

    def reverse_authorization(self, transaction_id, amount_cents, *, token=None, card=None) -> GatewayResult:
        """REVERSEAUTH an AUTHONLY; see :meth:`.Gateway.reverse_authorization`."""
        return self._send(fields.reverse_authorization(transaction_id, amount_cents, token=token, card=card))

    def release_authorization(self, transaction_id, approval, amount_cents, *, token=None, card=None):
        """REVERSEAUTH, else VOID; see :meth:`.Gateway.release_authorization`."""
        try:
            result = self.reverse_authorization(transaction_id, amount_cents, token=token, card=card)
        except GatewayUnknownOutcomeError as exc:  # the ErrMsg-only error layout (ippay §11)
            if not codes.names_type_not_offered(exc.err_msg):
                raise
        else:
            if not result.not_offered:
                return result
        # ippay §8: REVERSEAUTH was not enabled on the test terminal; JetPay voids authorisations [J].
        return self.void(transaction_id, approval, amount_cents, token=token, card=card)

    def enquire(self, transaction_id) -> GatewayResult:
        """ENQ; see :meth:`.Gateway.enquire`."""
        return self._send(fields.enquiry(transaction_id))

    def credit(self, amount_cents, *, transaction_id, token=None, card=None) -> GatewayResult:
        """CREDIT, linked or unlinked; see :meth:`.Gateway.credit`."""
        return self._send(fields.credit(transaction_id, amount_cents, token=token, card=card))

    def void(self, transaction_id, approval, amount_cents, *, token=None, card=None) -> GatewayResult:
        """VOID; see :meth:`.Gateway.void`."""
        return self._send(fields.void(transaction_id, approval, amount_cents, token=token, card=card))

    def ping(self) -> GatewayResult:
        """PING; see :meth:`.Gateway.ping`."""
        return self._send(fields.ping())

    # -- bank accounts -------------------------------------------------------------------------

    def check(self, transaction_id, amount_cents, holder, *, account=None, token=None, check_number="100",
              account_type="CHECKING", sec="WEB", tokenize=False) -> GatewayResult:
        """CHECK (ACH debit); see :meth:`.Gateway.check`."""
        return self._send(fields.ach_debit("CHECK", transaction_id, amount_cents, holder, account=account,
                                           token=token, check_number=check_number, account_type=account_type,
                                           sec=sec, tokenize=tokenize))

    def ach_reversal(self, transaction_id, amount_cents, holder, *, account=None, token=None, check_number="100",
                     account_type="CHECKING", sec="WEB") -> GatewayResult:
        """REVERSAL (ACH refund); see :meth:`.Gateway.ach_reversal`."""
        return self._send(fields.ach_debit("REVERSAL", transaction_id, amount_cents, holder, account=account,
                                           token=token, check_number=check_number, account_type=account_type,
                                           sec=sec))

    # -- plumbing ------------------------------------------------------------------------------

    def _send(self, request: fields.Request) -> GatewayResult:
        body = request.body(self.terminal_id, self.software)
        reply = self.transport.exchange(request.transaction_type, request.transaction_id, body)
        return GatewayResult.from_reply(reply, transaction_type=request.transaction_type,
                                        transaction_id=request.transaction_id, need_token=request.need_token,
                                        fallback_token=request.fallback_token,
                                        success_codes=request.success_codes)

    @property
    def url(self) -> str:
        """The gateway endpoint."""
        return self.transport.url

    @property
    def software(self) -> str:
        """What UDField3 and the User-Agent name (``splynx-ippay/<version>`` by default)."""
        return self.transport.software

    @property
    def session(self) -> requests.Session:
        """The HTTP session every request goes through."""
        return self.transport.session

    @property
    def logger(self) -> logging.Logger:
        """Where transcripts (DEBUG, scrubbed) and outcomes go."""
        return self.transport.logger

    @property
    def connect_timeout(self) -> float:
        """Seconds to wait for the connection (ippay §9.1)."""
        return self.transport.connect_timeout

    @property
    def read_timeout(self) -> float:
        """Seconds to wait for the reply; after that the outcome is unknown (ippay §9.1)."""
        return self.transport.read_timeout

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> "IPpayClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IPpayClient(url={self.url!r}, terminal_id={self.terminal_id!r})"


def _default_software() -> str:
    # Read lazily: splynx_ippay/__init__ may still be importing when this
    # module is first imported, so a module-level import could be circular.
    version = getattr(sys.modules.get("splynx_ippay"), "__version__", None)
    if not version:
        try:
            from importlib.metadata import version as _dist_version
            version = _dist_version("splynx-ippay")
        except Exception:  # noqa: BLE001 - not installed as a distribution
            version = "unknown"
    return f"splynx-ippay/{version}"
