"""Errors raised by the Splynx client.

Splynx answers a failed call with ``{"error": {"message", "code", "internal_code"}}``
(splynx §1.2); the HTTP status picks the class, the body gives the words.
"""


class SplynxError(Exception):
    """A call to Splynx failed.

    ``message`` is Splynx's own ``error.message`` where it sent one, ``status``
    the HTTP status (``None`` when no answer came), ``internal_code`` Splynx's
    ``error.internal_code`` (e.g. ``"EXPIRED_ACCESS_TOKEN"``) or ``None``.
    """

    def __init__(self, message, status=None, internal_code=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.internal_code = internal_code

    def __str__(self):
        details = [f"HTTP {self.status}" if self.status is not None else None, self.internal_code]
        details = ", ".join(d for d in details if d)
        return f"{self.message} ({details})" if details else self.message


class SplynxAuthError(SplynxError):
    """401: the API key, token or session was refused."""


class SplynxForbiddenError(SplynxError):
    """403: authenticated, but the key or user lacks the permission."""


class SplynxNotFoundError(SplynxError):
    """404: no such object."""


class SplynxValidationError(SplynxError):
    """400 or 422: Splynx rejected the request data."""


class SplynxServerError(SplynxError):
    """5xx: Splynx failed while handling the call; it may or may not have acted."""


class SplynxUnavailableError(SplynxError):
    """No usable answer: connection refused, DNS failure, timeout, or a body that
    is not Splynx JSON (a proxy error page, a wrong base URL)."""


class SplynxConnectionError(SplynxUnavailableError):
    """The connection failed: refused, reset, a DNS failure, a connect timeout. For a read
    this is worth another try (:mod:`.retry`); a write may still have reached Splynx."""


def error_from_response(status, body, context=None):
    """Build the :class:`SplynxError` subclass that fits an HTTP ``status``.

    The message is Splynx's ``error.message`` from ``body`` (splynx §1.2), put
    after ``context`` when given; a body without one gets a plain stand-in.
    """
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = error.get("message") or f"Splynx answered HTTP {status}"
    if context:
        message = f"{context}: {message}"
    if status == 401:
        cls = SplynxAuthError
    elif status == 403:
        cls = SplynxForbiddenError
    elif status == 404:
        cls = SplynxNotFoundError
    elif status in (400, 422):
        cls = SplynxValidationError
    elif status >= 500:
        cls = SplynxServerError
    else:
        # 405 also means "object belongs to another partner" (splynx §1.2): no finer class fits.
        cls = SplynxError
    return cls(message, status, error.get("internal_code"))
