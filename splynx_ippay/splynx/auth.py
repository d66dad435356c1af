"""Splynx API v2 authentication: signatures, access tokens, session identity.

Two ways to authenticate the add-on's own calls (splynx §1.3):

* **signature** (§1.3a) — every request carries ``Splynx-EA (key=..&nonce=..&signature=..)``;
* **access token** (§1.3b, the default) — one signed ``POST admin/auth/tokens`` buys a
  30-minute JWT sent as ``Splynx-EA (access_token=..)``, renewed with the refresh token.

Both objects here are shared by every thread of the add-on, hence the locks.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Dict, Tuple
from urllib.parse import urlencode

from .errors import SplynxAuthError, SplynxError, error_from_response
from .models import Identity, parse_id

TOKENS_PATH = "admin/auth/tokens"

#: Renew this many seconds before the access token expires, as the official
#: clients do (splynx §1.3b: "renew when now + 5 > access_token_expiration").
RENEW_MARGIN_S = 5

#: ``send(method, path, *, json=None, authorization=None) -> (status, headers, body)``:
#: the client's transport, which raises only when no usable answer came.
Send = Callable[..., Tuple[int, Dict[str, str], object]]


def compute_signature(api_key: str, api_secret: str, nonce: int) -> str:
    """``UPPER(hex(HMAC-SHA256(key=secret, msg=str(nonce) + api_key)))`` (splynx §1.3a)."""
    message = f"{nonce}{api_key}".encode("utf-8")
    return hmac.new(api_secret.encode("utf-8"), message, hashlib.sha256).hexdigest().upper()


def signature_header(api_key: str, api_secret: str, nonce: int) -> str:
    """The ``Authorization`` value of a signed request; the inner part is query-encoded
    like PHP's ``http_build_query`` (splynx §1.3a)."""
    inner = urlencode([("key", api_key), ("nonce", nonce),
                       ("signature", compute_signature(api_key, api_secret, nonce))])
    return f"Splynx-EA ({inner})"


class NonceSource:
    """Increasing nonces for one API key, shared by every client in the process.

    Splynx wants each nonce of a key to be unused and larger than the last
    (splynx §1.3a). The official clients start at ``round(time * 100)`` and add 1
    per request; two clients of the same key in one process (a per-request client,
    the worker) would then collide, so the counter lives per key, not per client,
    and never falls behind the clock.

    Increasing nonces are not enough when threads share a key: a request signed
    later can overtake one signed earlier and make Splynx refuse the earlier one.
    Whoever signs with a nonce therefore holds :attr:`in_order` until the answer
    is back, so signed requests of one key reach Splynx one at a time.
    """

    _by_key: Dict[str, "NonceSource"] = {}
    _registry_lock = threading.Lock()

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()
        self.in_order = threading.Lock()

    @classmethod
    def for_key(cls, api_key: str) -> "NonceSource":
        """The process-wide source of ``api_key``."""
        with cls._registry_lock:
            return cls._by_key.setdefault(api_key, cls())

    def next(self) -> int:
        """A nonce larger than every one handed out before."""
        with self._lock:
            self._last = max(self._last + 1, round(self._clock() * 100))
            return self._last


def key_refused(api_key: str, status: int, body) -> SplynxError:
    """The error for a refused API key: says so plainly, then Splynx's own words."""
    return error_from_response(status, body, context=f"Splynx refused the API key {api_key!r}")


class SignatureAuth:
    """Signs every request with the API key (splynx §1.3a).

    Signed requests of one key go out one at a time (see :class:`NonceSource`):
    fine for the CLI and light use; token mode is the one for many threads.
    """

    def __init__(self, api_key: str, api_secret: str):
        self.api_key = api_key
        self._api_secret = api_secret
        self._nonces = NonceSource.for_key(api_key)

    def send(self, send: Send, method: str, path: str, **kwargs):
        """Sign and send one request through ``send``, holding the key's
        :attr:`NonceSource.in_order` lock until the answer is back."""
        with self._nonces.in_order:
            header = signature_header(self.api_key, self._api_secret, self._nonces.next())
            return send(method, path, authorization=header, **kwargs)


@dataclass(frozen=True)
class _Tokens:
    access_token: str
    access_expires: float
    refresh_token: str
    refresh_expires: float

    @classmethod
    def from_answer(cls, body) -> "_Tokens":
        try:
            return cls(str(body["access_token"]), float(body["access_token_expiration"]),
                       str(body["refresh_token"]), float(body["refresh_token_expiration"]))
        except (KeyError, TypeError, ValueError):
            raise SplynxError("Splynx answered the token request without usable tokens") from None

    @property
    def header(self) -> str:
        return f"Splynx-EA (access_token={self.access_token})"


class TokenAuth:
    """Access-token authentication with the API key (splynx §1.3b).

    :meth:`header` returns a valid token header, fetching or renewing the token
    under a lock so that a hundred threads hitting an expired token cause one
    renewal, not a hundred.
    """

    def __init__(self, api_key: str, api_secret: str, send: Send, *,
                 clock: Callable[[], float] = time.time):
        self.api_key = api_key
        self._api_secret = api_secret
        self._send = send
        self._clock = clock
        self._nonces = NonceSource.for_key(api_key)
        self._tokens = None
        self._lock = threading.Lock()

    def header(self) -> str:
        """The ``Authorization`` value for the next request."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens
            if tokens is None or now + RENEW_MARGIN_S > tokens.access_expires:
                if tokens is not None and now + RENEW_MARGIN_S < tokens.refresh_expires:
                    tokens = self._renew(tokens)
                else:
                    tokens = self._fetch()
                self._tokens = tokens
            return tokens.header

    def expired(self, header: str) -> None:
        """Splynx refused the token in ``header`` (401, e.g. ``EXPIRED_ACCESS_TOKEN``
        after clock skew): make the next :meth:`header` renew it, or fetch a new one
        if the refresh token is refused too. Another thread may already have
        replaced it, in which case there is nothing to do."""
        with self._lock:
            if self._tokens is not None and self._tokens.header == header:
                self._tokens = replace(self._tokens, access_expires=float("-inf"))

    def _fetch(self) -> _Tokens:
        with self._nonces.in_order:
            nonce = self._nonces.next()
            body = {"auth_type": "api_key", "key": self.api_key, "nonce": nonce,
                    "signature": compute_signature(self.api_key, self._api_secret, nonce)}
            status, _, answer = self._send("POST", TOKENS_PATH, json=body)
        if status != 201:
            if status >= 500:
                raise error_from_response(status, answer)
            raise key_refused(self.api_key, status, answer)
        return _Tokens.from_answer(answer)

    def _renew(self, tokens: _Tokens) -> _Tokens:
        # The official Python client sends the old access token along with the renewal.
        status, _, answer = self._send("GET", f"{TOKENS_PATH}/{tokens.refresh_token}",
                                       authorization=tokens.header)
        if status == 200:
            return _Tokens.from_answer(answer)
        if status >= 500:
            raise error_from_response(status, answer)
        # Refresh token refused (expired, banned, server restarted): start over.
        return self._fetch()


def decode_jwt_payload(token: str) -> dict:
    """The payload of a JWT, base64url-decoded, **without** checking its signature.

    Only for tokens this client just received from Splynx over its own
    connection: nobody else could have placed them there, so the payload can be
    believed without the signing key (which only Splynx has).
    """
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        data = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (IndexError, ValueError, binascii.Error, UnicodeError):
        raise SplynxError("Splynx returned an access token that is not a JWT") from None
    if not isinstance(data, dict):
        raise SplynxError("Splynx returned an access token that is not a JWT")
    return data


def identity_from_session_answer(body) -> Identity:
    """Read who owns a session from Splynx's answer to ``auth_type=session`` (splynx §4):
    the JWT's ``sub`` says ``customer`` or ``admin``, its ``id`` which one."""
    if not isinstance(body, dict) or "access_token" not in body:
        raise SplynxError("Splynx answered the session check without an access token")
    payload = decode_jwt_payload(str(body["access_token"]))
    kind = payload.get("sub")
    if kind not in ("customer", "admin"):
        raise SplynxAuthError(f"the Splynx session belongs to a {kind!r}, not a customer or admin")
    try:
        person_id = parse_id(payload.get("id"))
        expires = float(body.get("access_token_expiration") or payload["exp"])
    except (KeyError, TypeError, ValueError):
        raise SplynxError("Splynx returned a session token without id or expiry") from None
    return Identity(kind=kind, id=person_id,
                    expires_at=datetime.datetime.fromtimestamp(expires, datetime.timezone.utc))
