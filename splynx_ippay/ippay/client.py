"""The IPpay XML gateway client: validate locally, send over HTTP, classify the outcome.

A decline is a :class:`GatewayResult`; a request whose fate is unknown or which
never left is an exception (see :mod:`.errors`). Every call goes through one
``requests.Session`` with explicit (connect, read) timeouts (design §2).
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import re
import socket
import ssl
import sys
import time
import traceback
from typing import Iterator, Optional
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from . import codes
from .errors import GatewayNotSentError, GatewayRequestError, GatewayUnknownOutcomeError
from .model import BankAccount, Card, GatewayResult
from .scrub import scrub
from .xml import Node, ResponseFormatError, build_request, parse_response

__all__ = ["IPpayClient", "ORIGINS", "LOGGER_NAME"]

LOGGER_NAME = "splynx_ippay.ippay"

# ippay §2.2 row 6.
ORIGINS = frozenset({"INTERNET", "RECURRING", "POS", "PHONE ORDER", "MAIL ORDER"})
# ippay §2.2 row 17.
ACCOUNT_TYPES = frozenset({"CHECKING", "SAVINGS"})
SEC_CODES = frozenset({"WEB", "PPD", "CCD", "TEL"})

# A reply is a few hundred bytes; anything this large is not an IPpay answer.
MAX_BODY_BYTES = 1 << 20

_TRANSACTION_ID_RE = re.compile(r"[A-Za-z0-9]{18}")
_PAN_RE = re.compile(r"\d{13,19}")
_CVV_RE = re.compile(r"\d{3,4}")
_TOKEN_RE = re.compile(r"[!-~]{1,64}")          # printable ASCII, no spaces
_ABA_RE = re.compile(r"\d{9}")                  # ippay §9.5 (BOP: routing number must be 9 digits)
_ACCOUNT_RE = re.compile(r"\d{4,17}")           # NACHA DFI account numbers are at most 17 characters
_CHECK_NUMBER_RE = re.compile(r"\d{1,15}")
_APPROVAL_RE = re.compile(r"[A-Za-z0-9 ]{1,16}")

# ssl "reason" strings that can only come from a handshake, i.e. before the
# request was written (ippay §9.2: TLS failures happen before anything is sent).
_HANDSHAKE_SSL_REASONS = frozenset({
    "CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER", "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION", "SSLV3_ALERT_HANDSHAKE_FAILURE", "NO_PROTOCOLS_AVAILABLE",
    "TLSV1_ALERT_UNKNOWN_CA", "NO_CIPHERS_AVAILABLE", "NO_SHARED_CIPHER", "HTTP_REQUEST",
    "UNSAFE_LEGACY_RENEGOTIATION_DISABLED", "TLSV1_UNRECOGNIZED_NAME", "SSLV3_ALERT_BAD_CERTIFICATE",
    "TLSV1_ALERT_INAPPROPRIATE_FALLBACK", "VERSION_TOO_LOW", "UNKNOWN_PROTOCOL",
})


def _default_software() -> str:
    # Read lazily: splynx_ippay/__init__ may still be importing when this
    # module is first imported, so a module-level import could be circular.
    version = getattr(sys.modules.get("splynx_ippay"), "__version__", None)
    if not version:
        try:
            from importlib.metadata import version as _dist_version
            version = _dist_version("splynx-ippay")
        except Exception:  # not installed as a distribution
            version = "unknown"
    return f"splynx-ippay/{version}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Yield ``exc`` and everything it wraps (urllib3 ``reason``, args, __cause__, __context__)."""
    seen = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.append(getattr(current, "reason", None) if isinstance(getattr(current, "reason", None),
                                                                     BaseException) else None)
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        stack.append(current.__cause__)
        stack.append(current.__context__)


def _never_sent(exc: BaseException) -> Optional[str]:
    """Return why ``exc`` proves the request was never written, or ``None`` if it might have been.

    Only connection-establishment failures qualify (ippay §9.2). Anything else
    - a reset, a read timeout, an SSL error after the handshake - is treated
    as an unknown outcome, because resolving a needless ENQ is cheap and
    resending a charge that went through is not.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect_timeout"
    for cause in _causes(exc):
        if isinstance(cause, urllib3.exceptions.NewConnectionError) or isinstance(cause, socket.gaierror):
            return "connect_failed"
        if isinstance(cause, urllib3.exceptions.ConnectTimeoutError):
            return "connect_timeout"
        if isinstance(cause, (ssl.SSLCertVerificationError, ssl.CertificateError)):
            return "tls_handshake"
        if isinstance(cause, ssl.SSLError) and (getattr(cause, "reason", None) in _HANDSHAKE_SSL_REASONS
                                                or _raised_in_handshake(cause)):
            return "tls_handshake"
    return None


def _raised_in_handshake(exc: BaseException) -> bool:
    # The reason strings change between OpenSSL versions; the frame that
    # raised does not: an error from SSLSocket.do_handshake() came before the
    # request was written.
    return any(frame.f_code.co_name == "do_handshake" for frame, _ in traceback.walk_tb(exc.__traceback__))


def _is_read_timeout(exc: BaseException) -> bool:
    return any(isinstance(c, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError,
                              socket.timeout, TimeoutError)) for c in _causes(exc))


def _brief(exc: BaseException) -> str:
    text = str(exc)
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class IPpayClient:
    """Client of the IPpay XML gateway (ippay §1-§9) for one terminal.

    ``url`` is the gateway endpoint (``https://gtwy.ippay.com/ippay`` live,
    ``https://testgtwy.ippay.com/ippay`` test, ippay §1); ``terminal_id`` is
    the TerminalID, the only credential (ippay §1). Pass a ``session`` to
    share a connection pool; without one the client makes its own and
    :meth:`close` closes it. The session must not retry POSTs by itself.

    Every method returns a :class:`GatewayResult` when IPpay answered (approved
    or declined) and raises :class:`GatewayNotSentError`,
    :class:`GatewayUnknownOutcomeError` or :class:`GatewayRequestError`
    otherwise. Amounts are positive ``int`` cents. Transcripts are logged at
    DEBUG on ``splynx_ippay.ippay`` (or ``logger``) after :func:`scrub`.
    """

    def __init__(self, url: str, terminal_id: str, *, session: Optional[requests.Session] = None,
                 connect_timeout: float = 10.0, read_timeout: float = 45.0,
                 software: Optional[str] = None, logger: Optional[logging.Logger] = None):
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise GatewayRequestError("the IPpay gateway URL must be an http(s) URL", field="url")
        if not isinstance(terminal_id, str) or not terminal_id.strip():
            raise GatewayRequestError("the IPpay TerminalID is empty", field="terminal_id")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise GatewayRequestError(f"{name} must be a positive number of seconds", field=name)
        self.url = url
        self.terminal_id = terminal_id.strip()
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        # ippay §2.2 row 26, §9.6: IPpay asked integrators to identify their
        # software in UDField3.
        self.software = software or _default_software()
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()

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

    # ------------------------------------------------------------------ cards

    def tokenize(self, card: Card) -> GatewayResult:
        """Store ``card`` at IPpay and return its Token (TOKENIZE, ippay §6 "Create, standalone").

        No TransactionID and no amount are sent (ippay §3, §6); neither is the
        CVV, which TOKENIZE does not check. ``approved`` requires ActionCode
        000 *and* a non-empty Token (ippay §5.1).
        """
        ttype = "TOKENIZE"
        fields = self._card_fields(ttype, None, card, send_cvv=False)
        reply = self._transact(ttype, fields, None)
        return self._result(ttype, reply, None, need_token=True)

    def update_token_expiry(self, token: str, exp_month, exp_year) -> GatewayResult:
        """Give a saved card a new expiry date: TOKENIZE with Token + new CardExpMonth/CardExpYear (ippay §6, SIP).

        Success is ActionCode 000. The result's ``token`` is the one IPpay
        returned, or ``token`` itself when the reply carries none; store the
        returned one if it differs.
        """
        ttype = "TOKENIZE"
        month, year = self._expiry(ttype, None, exp_month, exp_year)
        fields = {"Token": self._token(ttype, None, token), "CardExpMonth": month, "CardExpYear": year}
        reply = self._transact(ttype, fields, None)
        return self._result(ttype, reply, None, fallback_token=token.strip())

    def tokenize_bank_account(self, account: BankAccount) -> GatewayResult:
        """Store a bank account at IPpay and return its Token (TOKENIZE with root-level ABA + AccountNumber, ippay §6).

        ``approved`` requires ActionCode 000 and a non-empty Token.
        """
        ttype = "TOKENIZE"
        number, routing, _, _ = self._bank_account(ttype, None, account)
        fields = {"AccountNumber": number, "ABA": routing}
        reply = self._transact(ttype, fields, None)
        return self._result(ttype, reply, None, need_token=True)

    def sale(self, transaction_id: str, amount_cents: int, *, token: Optional[str] = None,
             card: Optional[Card] = None, origin: str = "INTERNET", order_number: Optional[str] = None,
             tokenize: bool = False, email: Optional[str] = None,
             user_ip: Optional[str] = None) -> GatewayResult:
        """Charge ``amount_cents`` to a saved ``token`` or to a ``card`` (SALE, ippay §3).

        ``transaction_id`` must be new (see :func:`new_transaction_id`) and be
        stored before calling, so that an unknown outcome can be settled with
        :meth:`enquire` (design §3). Give exactly one of ``token`` and
        ``card``. ``tokenize=True`` (card only) asks IPpay for a Token in the
        same reply (``<CardNum Tokenize="true">``, ippay §6); the sale is
        approved on ActionCode 000 whether or not the Token came back, since
        the money has moved - check ``result.token``. Use
        ``origin="RECURRING"`` for card-on-file rebills (ippay §2.2 row 6).
        """
        ttype = "SALE"
        tid = self._transaction_id(ttype, transaction_id)
        fields = {
            "TransactionID": tid,
            "Origin": self._origin(ttype, tid, origin),
            "OrderNumber": self._text(ttype, tid, "order_number", order_number),
            "TotalAmount": self._amount(ttype, tid, amount_cents),
            "Email": self._email(ttype, tid, email),
            "UserIPAddress": self._ip(ttype, tid, user_ip),
        }
        if tokenize and card is None:
            raise GatewayRequestError("tokenize=True needs a card, not a token", transaction_type=ttype,
                                      transaction_id=tid, field="tokenize")
        fields.update(self._payment_source(ttype, tid, token, card, send_cvv=True, tokenize=tokenize))
        reply = self._transact(ttype, fields, tid)
        return self._result(ttype, reply, tid)

    def enquire(self, transaction_id: str) -> GatewayResult:
        """Ask IPpay what became of ``transaction_id`` (ENQ, ippay §3, §8).

        The result is the original transaction's answer: ``approved`` means the
        payment went through; ``not_found`` (025) means nothing was recorded
        and the same TransactionID may be sent again; another code is the
        original decline. Use after :class:`GatewayUnknownOutcomeError`.
        """
        ttype = "ENQ"
        tid = self._transaction_id(ttype, transaction_id)
        reply = self._transact(ttype, {"TransactionID": tid}, tid)
        return self._result(ttype, reply, tid)

    def credit(self, amount_cents: int, *, transaction_id: str, token: Optional[str] = None,
               card: Optional[Card] = None) -> GatewayResult:
        """Refund ``amount_cents`` to a token or card (CREDIT, ippay §3, §8).

        Linked refund: ``transaction_id`` is the original SALE's ID. Unlinked
        refund: a new ID from :func:`new_transaction_id`. Either way IPpay
        needs the card or token again (ippay §3; AM #2369), so exactly one of
        ``token`` and ``card`` is required.
        """
        ttype = "CREDIT"
        tid = self._transaction_id(ttype, transaction_id)
        fields = {"TransactionID": tid, "TotalAmount": self._amount(ttype, tid, amount_cents)}
        fields.update(self._payment_source(ttype, tid, token, card, send_cvv=False))
        reply = self._transact(ttype, fields, tid)
        return self._result(ttype, reply, tid)

    def void(self, transaction_id: str, approval: str, amount_cents: int, *, token: Optional[str] = None,
             card: Optional[Card] = None) -> GatewayResult:
        """Cancel an unsettled SALE/CAPT/CREDIT the same day (VOID, ippay §3, §8).

        Needs the original ``transaction_id``, its ``approval`` code, the full
        original amount and the card or token it was charged to. After
        settlement use :meth:`credit` instead.
        """
        ttype = "VOID"
        tid = self._transaction_id(ttype, transaction_id)
        if not isinstance(approval, str) or not _APPROVAL_RE.fullmatch(approval.strip()):
            raise GatewayRequestError("VOID needs the original Approval code", transaction_type=ttype,
                                      transaction_id=tid, field="approval")
        fields = {"TransactionID": tid, "Approval": approval.strip(),
                  "TotalAmount": self._amount(ttype, tid, amount_cents)}
        fields.update(self._payment_source(ttype, tid, token, card, send_cvv=False))
        reply = self._transact(ttype, fields, tid)
        return self._result(ttype, reply, tid)

    def ping(self) -> GatewayResult:
        """Check that the gateway answers and knows the terminal (PING, ippay §3): approved means 000 / PING."""
        ttype = "PING"
        reply = self._transact(ttype, {}, None)
        return self._result(ttype, reply, None)

    # -------------------------------------------------------------------- ACH

    def check(self, transaction_id: str, amount_cents: int, holder: str, *,
              account: Optional[BankAccount] = None, token: Optional[str] = None,
              check_number: str = "100", account_type: str = "CHECKING", sec: str = "WEB") -> GatewayResult:
        """Debit a bank account by ACH (CHECK, ippay §2.2 row 17, §3).

        Give exactly one of ``account`` (sent as AccountNumber + ABA) and an
        ACH ``token``. ``holder`` is the account holder's name (CardName,
        required for ACH). With ``account``, its own ``account_type`` and
        ``sec`` are used; ``account_type`` and ``sec`` apply to a token.
        ``check_number`` is required by IPpay; BOP sends a constant ``100``.
        A reply's ``AdditionalInfo`` is surfaced as ``result.additional_info``
        (ippay §9.8).
        """
        ttype = "CHECK"
        tid = self._transaction_id(ttype, transaction_id)
        amount = self._amount(ttype, tid, amount_cents)
        name = self._text(ttype, tid, "holder", holder)
        if not name:
            raise GatewayRequestError("CHECK needs the account holder's name", transaction_type=ttype,
                                      transaction_id=tid, field="holder")
        if not isinstance(check_number, (str, int)) or not _CHECK_NUMBER_RE.fullmatch(str(check_number)):
            raise GatewayRequestError("check_number must be 1-15 digits", transaction_type=ttype,
                                      transaction_id=tid, field="check_number")
        if (account is None) == (token is None):
            raise GatewayRequestError("CHECK needs exactly one of account and token", transaction_type=ttype,
                                      transaction_id=tid, field="account")
        if account is not None:
            number, routing, acct_type, sec_code = self._bank_account(ttype, tid, account)
            children = [("AccountNumber", number), ("ABA", routing), ("CheckNumber", str(check_number))]
        else:
            acct_type = self._choice(ttype, tid, "account_type", account_type, ACCOUNT_TYPES)
            sec_code = self._choice(ttype, tid, "sec", sec, SEC_CODES)
            children = [("Token", self._token(ttype, tid, token)), ("CheckNumber", str(check_number))]
        fields = {
            "TransactionID": tid,
            "ACH": Node(attrs={"Type": acct_type, "SEC": sec_code}, children=children),
            "CardName": name,
            "TotalAmount": amount,
        }
        reply = self._transact(ttype, fields, tid)
        return self._result(ttype, reply, tid)

    # ------------------------------------------------------------- validation

    @staticmethod
    def _transaction_id(ttype: str, value) -> str:
        # ippay §9.5: 18 alphanumerics is the safe, widely accepted format.
        if not isinstance(value, str) or not _TRANSACTION_ID_RE.fullmatch(value):
            raise GatewayRequestError("TransactionID must be 18 letters or digits", transaction_type=ttype,
                                      field="transaction_id")
        return value

    @staticmethod
    def _amount(ttype: str, tid: Optional[str], value) -> str:
        # ippay §2.2 row 20, §9.5: integer cents, non-zero. bool is an int
        # subclass and Decimal/float would hide a unit mistake, so both are refused.
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise GatewayRequestError("the amount must be a positive whole number of cents",
                                      transaction_type=ttype, transaction_id=tid, field="amount_cents")
        return str(value)

    @staticmethod
    def _expiry(ttype: str, tid: Optional[str], month, year) -> tuple:
        # ippay §2.2 rows 13-14: MM 01-12 and YY.
        def as_int(value):
            if isinstance(value, bool):
                return None
            if isinstance(value, int):
                return value
            if isinstance(value, str) and value.strip().isdigit():
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

    @staticmethod
    def _token(ttype: str, tid: Optional[str], value) -> str:
        if not isinstance(value, str) or not _TOKEN_RE.fullmatch(value.strip()):
            raise GatewayRequestError("the token is empty or malformed", transaction_type=ttype,
                                      transaction_id=tid, field="token")
        return value.strip()

    @staticmethod
    def _origin(ttype: str, tid: Optional[str], value) -> str:
        normalised = value.strip().upper() if isinstance(value, str) else None
        if normalised not in ORIGINS:
            raise GatewayRequestError("Origin must be one of " + ", ".join(sorted(ORIGINS)),
                                      transaction_type=ttype, transaction_id=tid, field="origin")
        return normalised

    @staticmethod
    def _choice(ttype: str, tid: Optional[str], name: str, value, allowed) -> str:
        normalised = value.strip().upper() if isinstance(value, str) else None
        if normalised not in allowed:
            raise GatewayRequestError(f"{name} must be one of " + ", ".join(sorted(allowed)),
                                      transaction_type=ttype, transaction_id=tid, field=name)
        return normalised

    @staticmethod
    def _text(ttype: str, tid: Optional[str], name: str, value) -> Optional[str]:
        if value is None:
            return None
        if not isinstance(value, str):
            raise GatewayRequestError(f"{name} must be text", transaction_type=ttype, transaction_id=tid,
                                      field=name)
        return value.strip() or None

    @staticmethod
    def _email(ttype: str, tid: Optional[str], value) -> Optional[str]:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or len(value.strip()) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+",
                                                                                     value.strip()):
            raise GatewayRequestError("the e-mail address is not valid", transaction_type=ttype,
                                      transaction_id=tid, field="email")
        return value.strip()

    @staticmethod
    def _ip(ttype: str, tid: Optional[str], value) -> Optional[str]:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            return str(ipaddress.ip_address(value.strip()))
        except (ValueError, AttributeError):
            raise GatewayRequestError("the customer IP address is not valid", transaction_type=ttype,
                                      transaction_id=tid, field="user_ip") from None

    def _card_fields(self, ttype: str, tid: Optional[str], card, *, send_cvv: bool, tokenize: bool = False) -> dict:
        if not isinstance(card, Card):
            raise GatewayRequestError("card must be a Card", transaction_type=ttype, transaction_id=tid,
                                      field="card")
        number = re.sub(r"[\s-]", "", str(card.number))
        # Length and digits only: the Luhn check is left to IPpay (900
        # "Invalid card number.", ippay §7) so that its answer stays the single truth.
        if not _PAN_RE.fullmatch(number):
            raise GatewayRequestError("the card number must be 13-19 digits", transaction_type=ttype,
                                      transaction_id=tid, field="card.number")
        month, year = self._expiry(ttype, tid, card.exp_month, card.exp_year)
        cvv = None
        if send_cvv and card.cvv is not None and str(card.cvv).strip():
            cvv = str(card.cvv).strip()
            if not _CVV_RE.fullmatch(cvv):
                raise GatewayRequestError("the security code must be 3 or 4 digits", transaction_type=ttype,
                                          transaction_id=tid, field="card.cvv")
        return {
            "CardNum": Node(text=number, attrs={"Tokenize": "true"}) if tokenize else number,
            "CVV2": cvv,
            "CardExpMonth": month,
            "CardExpYear": year,
            "CardName": self._text(ttype, tid, "card.holder", card.holder),
            "BillingPostalCode": self._text(ttype, tid, "card.postal_code", card.postal_code),
        }

    def _payment_source(self, ttype: str, tid: Optional[str], token, card, *, send_cvv: bool,
                        tokenize: bool = False) -> dict:
        if (token is None) == (card is None):
            raise GatewayRequestError(f"{ttype} needs exactly one of token and card", transaction_type=ttype,
                                      transaction_id=tid, field="token")
        if token is not None:
            # A token replaces CardNum and the expiry (ippay §2.2 row 11).
            return {"Token": self._token(ttype, tid, token)}
        return self._card_fields(ttype, tid, card, send_cvv=send_cvv, tokenize=tokenize)

    def _bank_account(self, ttype: str, tid: Optional[str], account) -> tuple:
        if not isinstance(account, BankAccount):
            raise GatewayRequestError("account must be a BankAccount", transaction_type=ttype,
                                      transaction_id=tid, field="account")
        number = str(account.account_number).strip()
        routing = str(account.routing_number).strip()
        if not _ACCOUNT_RE.fullmatch(number):
            raise GatewayRequestError("the bank account number must be 4-17 digits", transaction_type=ttype,
                                      transaction_id=tid, field="account.account_number")
        if not _ABA_RE.fullmatch(routing):
            raise GatewayRequestError("the routing number must be 9 digits", transaction_type=ttype,
                                      transaction_id=tid, field="account.routing_number")
        acct_type = self._choice(ttype, tid, "account.account_type", account.account_type, ACCOUNT_TYPES)
        sec_code = self._choice(ttype, tid, "account.sec", account.sec, SEC_CODES)
        return number, routing, acct_type, sec_code

    # -------------------------------------------------------------- transport

    def _transact(self, ttype: str, fields: dict, tid: Optional[str]) -> dict:
        """Send one request and return the parsed reply, or raise a GatewayError."""
        fields = dict(fields)
        fields["UDField3"] = self.software
        try:
            body = build_request(ttype, self.terminal_id, fields)
        except ValueError as exc:
            raise GatewayRequestError(f"cannot build the {ttype} request: {exc}", transaction_type=ttype,
                                      transaction_id=tid) from None

        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("IPpay %s %s request to %s:\n%s", ttype, tid or "-", self.url, scrub(body))
        status, raw, elapsed = self._post(ttype, tid, body)
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("IPpay %s %s reply: HTTP %s, %d bytes, %.3f s:\n%s", ttype, tid or "-", status,
                              len(raw), elapsed, scrub(raw[:65536].decode("utf-8", "replace")))

        # ippay §9.2: a status other than 200 is a failure and the body is not
        # parsed; the request may still have been processed.
        if status != 200:
            self._unknown(ttype, tid, f"HTTP {status} from the gateway", "http_status", status_code=status)
        try:
            reply = parse_response(raw)
        except ResponseFormatError as exc:
            self._unknown(ttype, tid, str(exc), exc.kind, status_code=status, err_msg=exc.err_msg)

        # The reply must be about our request; a foreign TransactionID means
        # we cannot tell what happened to ours.
        echoed = reply.get("TransactionID")
        if tid and echoed and echoed.upper() != tid.upper():
            self._unknown(ttype, tid, "the gateway answered about another TransactionID",
                          "transaction_id_mismatch", status_code=status)
        self.logger.info("IPpay %s %s: ActionCode %s %s", ttype, tid or echoed or "-", reply["ActionCode"],
                         scrub(reply.get("ResponseText", "")))
        return reply

    def _unknown(self, ttype, tid, message, reason, *, status_code=None, err_msg=None):
        self.logger.warning("IPpay %s %s: outcome unknown (%s); settle it with ENQ", ttype, tid or "-", reason)
        raise GatewayUnknownOutcomeError(f"IPpay {ttype}: {message}", transaction_type=ttype,
                                         transaction_id=tid, reason=reason, status_code=status_code,
                                         err_msg=err_msg) from None

    def _post(self, ttype: str, tid: Optional[str], body: str) -> tuple:
        """POST ``body``; return ``(status, bytes, seconds)`` or raise a transport GatewayError."""
        started = time.monotonic()
        try:
            # stream=True makes post() return as soon as the status line and
            # headers are in, so an error raised here happened at or before
            # that point and one raised while reading the body certainly
            # happened after the request was written. Redirects are not
            # followed: requests would turn the POST into a GET.
            response = self.session.post(
                self.url,
                data=body.encode("ascii"),
                headers={"Content-Type": "text/xml", "Accept": "text/xml, application/xml",
                         "User-Agent": self.software},
                timeout=(self.connect_timeout, self.read_timeout),
                stream=True,
                allow_redirects=False,
            )
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader,
                requests.exceptions.URLRequired) as exc:
            raise GatewayRequestError(f"IPpay {ttype}: cannot send to {self.url}: {_brief(exc)}",
                                      transaction_type=ttype, transaction_id=tid) from None
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                http.client.HTTPException, OSError) as exc:
            reason = _never_sent(exc)
            if reason:
                self.logger.warning("IPpay %s %s: not sent (%s): %s", ttype, tid or "-", reason, _brief(exc))
                raise GatewayNotSentError(f"IPpay {ttype}: the request was not sent ({reason}): {_brief(exc)}",
                                          transaction_type=ttype, transaction_id=tid, reason=reason) from None
            kind = "read_timeout" if _is_read_timeout(exc) else "connection_lost"
            self._unknown(ttype, tid, f"no reply ({kind}): {_brief(exc)}", kind)

        try:
            with response:
                chunks, size = [], 0
                for chunk in response.iter_content(65536):
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        self._unknown(ttype, tid, f"reply larger than {MAX_BODY_BYTES} bytes", "oversized_body",
                                      status_code=response.status_code)
                    chunks.append(chunk)
        except GatewayUnknownOutcomeError:
            raise
        except Exception as exc:  # anything while reading the body: the request was sent
            kind = "read_timeout" if _is_read_timeout(exc) else "connection_lost"
            self._unknown(ttype, tid, f"reply cut short ({kind}): {_brief(exc)}", kind,
                          status_code=response.status_code)
        return response.status_code, b"".join(chunks), time.monotonic() - started

    # ---------------------------------------------------------------- results

    def _result(self, ttype: str, reply: dict, tid: Optional[str], *, need_token: bool = False,
                fallback_token: Optional[str] = None) -> GatewayResult:
        code = reply["ActionCode"]
        returned_token = reply.get("Token")
        approved = code == codes.APPROVED and (returned_token is not None or not need_token)
        if code == codes.APPROVED and not approved:
            # ippay §5.1: TOKENIZE without a Token is a failure (UCRM does the same).
            message = "The card details could not be saved. Please try again."
        else:
            message = codes.describe(code, err_msg=reply.get("ErrMsg"), response_text=reply.get("ResponseText"),
                                     transaction_type=ttype)
        return GatewayResult(
            approved=approved,
            action_code=code,
            response_text=reply.get("ResponseText", ""),
            message=message,
            transaction_id=reply.get("TransactionID") or tid,
            approval=reply.get("Approval"),
            token=returned_token or fallback_token,
            avs=reply.get("AVS"),
            cvv2=reply.get("CVV2"),
            ip_trans_id=reply.get("ipTransID"),
            err_msg=reply.get("ErrMsg"),
            additional_info=reply.get("AdditionalInfo"),
            transaction_type=ttype,
        )
