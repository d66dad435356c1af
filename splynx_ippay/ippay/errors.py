"""Exceptions of the IPpay client.

A decline is not an exception: it is a :class:`~splynx_ippay.ippay.GatewayResult`
with ``approved=False``. Exceptions are for requests whose fate the gateway did
not tell us (ActiveMerchant / Business::OnlinePayment style, design §9):

* :class:`GatewayNotSentError` - the request certainly never reached IPpay
  (connection refused, DNS failure, connect timeout, TLS handshake failure).
  Sending it again, with the same TransactionID, is safe.
* :class:`GatewayUnknownOutcomeError` - the request may have been processed
  (read timeout, HTTP status other than 200, empty body, malformed XML, an
  echoed request, no ActionCode). Settle it with ENQ on the same
  TransactionID; never send a new SALE for it (ippay §8, §9.2; design §3).
* :class:`GatewayRequestError` - the request was refused locally, before
  anything was sent (bad amount, expiry, TransactionID, ...; ippay §9.5). It is
  also a :class:`ValueError`.
* :class:`GatewayAddressRefused` - a :class:`GatewayRequestError`: the client's
  ``url_guard`` refused the gateway address just before sending, so nothing
  left this machine.

What may be sent again after which error is decided in one place:
:func:`splynx_ippay.ippay.transport.may_resend`.
"""

from __future__ import annotations

from .scrub import scrub

__all__ = [
    "GatewayError",
    "GatewayNotSentError",
    "GatewayUnknownOutcomeError",
    "GatewayRequestError",
    "GatewayAddressRefused",
]


class GatewayError(Exception):
    """Base class of every IPpay client error.

    ``transaction_type`` (``"SALE"``, ``"ENQ"``, ...) and ``transaction_id``
    (the TransactionID sent, or ``None``) say which request failed; ``reason``
    is a short machine-readable cause such as ``"read_timeout"``.

    The message is passed through :func:`scrub`, so even a careless caller
    cannot put a card number into a log through an exception.
    """

    def __init__(self, message: str, *, transaction_type: str | None = None,
                 transaction_id: str | None = None, reason: str | None = None):
        message = scrub(message)
        super().__init__(message)
        self.message = message
        self.transaction_type = transaction_type
        self.transaction_id = transaction_id
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class GatewayNotSentError(GatewayError):
    """The request certainly did not reach IPpay; retrying it is safe.

    Raised for a refused connection, a DNS failure, a connect timeout or a TLS
    handshake failure: all of them happen before the first byte of the request
    is written (ippay §9.2). ``reason`` is ``"connect_failed"``,
    ``"connect_timeout"`` or ``"tls_handshake"``.
    """


class GatewayUnknownOutcomeError(GatewayError):
    """IPpay may or may not have processed the request.

    Resolve it with :meth:`IPpayClient.enquire` on the same TransactionID and
    never resend a SALE as a new payment (ippay §8 client algorithm, §9.2).

    Extra attributes: ``status_code`` (the HTTP status, when one was received)
    and ``err_msg`` (a scrubbed ``ErrMsg`` from a reply without an
    ActionCode, e.g. "Cannot determine the URL for the processor." for an
    unknown terminal, ippay §5.4).  ``reason`` is one of ``"read_timeout"``,
    ``"connection_lost"``, ``"http_status"``, ``"empty_body"``,
    ``"oversized_body"``, ``"malformed"``, ``"echo"``, ``"no_action_code"``,
    ``"bad_action_code"``, ``"transaction_id_mismatch"``.
    """

    def __init__(self, message: str, *, transaction_type: str | None = None,
                 transaction_id: str | None = None, reason: str | None = None,
                 status_code: int | None = None, err_msg: str | None = None):
        super().__init__(message, transaction_type=transaction_type,
                         transaction_id=transaction_id, reason=reason)
        self.status_code = status_code
        self.err_msg = scrub(err_msg) if err_msg else None


class GatewayRequestError(GatewayError, ValueError):
    """The request was refused locally and nothing was sent.

    Raised before any network traffic when an argument is invalid (amount not
    a positive integer of cents, month outside 01-12, TransactionID not 18
    letters/digits, unknown Origin, missing card or token, a gateway URL that
    is not http(s), ...; ippay §9.5). The message names the field, never its
    secret value. ``reason`` is ``"invalid_request"``.
    """

    def __init__(self, message: str, *, transaction_type: str | None = None,
                 transaction_id: str | None = None, field: str | None = None):
        super().__init__(message, transaction_type=transaction_type,
                         transaction_id=transaction_id, reason="invalid_request")
        self.field = field


class GatewayAddressRefused(GatewayRequestError):
    """The gateway address was refused before the request was sent (the client's ``url_guard``).

    Certainly not sent, like every :class:`GatewayRequestError`. ``url`` is the
    address that was refused; ``reason`` is ``"address_refused"``. The add-on's
    guard raises it when the configured gateway is no longer an address it may
    use (issue 8 item 5: the address is checked again every time it is used).
    """

    def __init__(self, message: str, *, url: str | None = None, transaction_type: str | None = None,
                 transaction_id: str | None = None):
        super().__init__(message, transaction_type=transaction_type, transaction_id=transaction_id,
                         field="url")
        self.reason = "address_refused"
        self.url = url
