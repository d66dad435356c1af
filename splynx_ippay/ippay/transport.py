"""One HTTP POST to IPpay, and what its failure means (ippay §1, §9.2-§9.4).

:class:`Transport` sends a request document with explicit (connect, read)
timeouts through one ``requests.Session``, never follows a redirect and never
retries by itself. It runs the ``url_guard`` first, then splits every failure
in two (design §9, the house's "certainly not sent" / "outcome unknown"):

* :class:`GatewayNotSentError` - the connection was never made (refused, DNS,
  connect timeout, TLS handshake): nothing reached IPpay;
* :class:`GatewayUnknownOutcomeError` - anything later: a read timeout, a cut
  connection, an HTTP status other than 200, an empty, oversized or malformed
  body, a reply that echoes the request (BOP's failure mode, ippay §9.4), a
  reply about another TransactionID.

:func:`may_resend` is the one place that says what may be sent again, as
stripe-python's ``_should_retry`` is for Stripe. Transcripts are logged at
DEBUG only, after :func:`scrub`.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import time
import traceback
from typing import Callable, Iterator, Optional

import requests
import urllib3.exceptions

from .errors import (
    GatewayAddressRefused, GatewayError, GatewayNotSentError, GatewayRequestError, GatewayUnknownOutcomeError,
)
from .scrub import scrub
from .xml import ResponseFormatError, parse_response

__all__ = ["Transport", "may_resend", "MAX_BODY_BYTES", "READ_ONLY_TYPES"]

# A reply is a few hundred bytes; anything this large is not an IPpay answer.
MAX_BODY_BYTES = 1 << 20

#: Types that change nothing at IPpay, so sending them twice is harmless.
READ_ONLY_TYPES = frozenset({"ENQ", "PING"})

# ssl "reason" strings that can only come from a handshake, i.e. before the
# request was written (ippay §9.2: TLS failures happen before anything is sent).
_HANDSHAKE_SSL_REASONS = frozenset({
    "CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER", "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION", "SSLV3_ALERT_HANDSHAKE_FAILURE", "NO_PROTOCOLS_AVAILABLE",
    "TLSV1_ALERT_UNKNOWN_CA", "NO_CIPHERS_AVAILABLE", "NO_SHARED_CIPHER", "HTTP_REQUEST",
    "UNSAFE_LEGACY_RENEGOTIATION_DISABLED", "TLSV1_UNRECOGNIZED_NAME", "SSLV3_ALERT_BAD_CERTIFICATE",
    "TLSV1_ALERT_INAPPROPRIATE_FALLBACK", "VERSION_TOO_LOW", "UNKNOWN_PROTOCOL",
})


def may_resend(transaction_type: str, error: GatewayError) -> bool:
    """Whether the request that raised ``error`` may be sent again as it is (same TransactionID).

    * not sent: yes, nothing reached IPpay;
    * outcome unknown: only ENQ and PING, which change nothing; a SALE,
      CREDIT, CHECK ... is settled by ENQ on its TransactionID first and never
      simply resent (ippay §8 client algorithm, design §3 invariant 2);
    * refused locally (including :class:`GatewayAddressRefused`): no, it would
      be refused again until the request or the settings change.
    """
    if isinstance(error, GatewayRequestError):
        return False
    if isinstance(error, GatewayNotSentError):
        return True
    return isinstance(error, GatewayUnknownOutcomeError) and transaction_type in READ_ONLY_TYPES


class Transport:
    """POSTs IPpay request documents to ``url`` and returns the parsed replies.

    ``url_guard(url)`` runs before every request; if it raises, nothing is
    sent (a :class:`GatewayRequestError` is passed on as it is, anything else
    becomes :class:`GatewayAddressRefused`). The session must not retry POSTs
    by itself (requests' default adapter does not).
    """

    def __init__(self, url: str, *, session: requests.Session, connect_timeout: float, read_timeout: float,
                 software: str, logger: logging.Logger, url_guard: Optional[Callable[[str], object]] = None):
        self.url = url
        self.session = session
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.software = software
        self.logger = logger
        self.url_guard = url_guard

    def exchange(self, ttype: str, tid: Optional[str], body: str) -> dict:
        """Send ``body`` (a ``ttype`` request for ``tid``) and return the reply's fields, or raise a GatewayError."""
        self._guard(ttype, tid)
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
            reply = parse_response(raw)  # also detects an echoed request (ippay §9.4)
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

    def _guard(self, ttype: str, tid: Optional[str]) -> None:
        if self.url_guard is None:
            return
        try:
            self.url_guard(self.url)
        except GatewayRequestError as exc:
            exc.transaction_type = exc.transaction_type or ttype
            exc.transaction_id = exc.transaction_id or tid
            self.logger.warning("IPpay %s %s: not sent, the gateway address was refused: %s", ttype, tid or "-", exc)
            raise
        except Exception as exc:  # noqa: BLE001 - any refusal by the guard means: do not send
            self.logger.warning("IPpay %s %s: not sent, the gateway address was refused: %s", ttype, tid or "-",
                                _brief(exc))
            raise GatewayAddressRefused(f"IPpay {ttype}: the gateway address was refused: {_brief(exc)}",
                                        url=self.url, transaction_type=ttype, transaction_id=tid) from None

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
        except Exception as exc:  # noqa: BLE001 - anything while reading the body: it was sent
            kind = "read_timeout" if _is_read_timeout(exc) else "connection_lost"
            self._unknown(ttype, tid, f"reply cut short ({kind}): {_brief(exc)}", kind,
                          status_code=response.status_code)
        return response.status_code, b"".join(chunks), time.monotonic() - started


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
        reason = getattr(current, "reason", None)
        stack.append(reason if isinstance(reason, BaseException) else None)
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
