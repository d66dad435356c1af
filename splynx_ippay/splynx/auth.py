"""Splynx API v2 authentication: signatures, access tokens, session identity.

Two ways to authenticate the add-on's own calls (splynx §1.3):

* **signature** (§1.3a) — every request carries ``Splynx-EA (key=..&nonce=..&signature=..)``;
* **access token** (§1.3b, the default) — one signed ``POST admin/auth/tokens`` buys a
  30-minute JWT sent as ``Splynx-EA (access_token=..)``, renewed with the refresh token.

Both objects here are shared by every thread of the add-on, hence the locks.

Nonces (splynx §1.3a: each larger than the last one Splynx saw for the key) come from one
source per host when the client is given a ``nonce_dir``: :class:`FileNonceSource` keeps
the last nonce in a file under an exclusive ``flock`` held until the answer of the signed
request is back, so the web workers, the charge worker and every CLI run of one API key
hand out increasing nonces and reach Splynx in that order. Without a directory (or when it
cannot be used) the process keeps its own :class:`NonceSource`; a request Splynx refuses
for its nonce is then signed again with a fresh one, a few times (:data:`NONCE_RETRIES`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Dict, Iterator, Optional, Tuple, Union
from urllib.parse import urlencode

from .errors import SplynxAuthError, SplynxError, SplynxUnavailableError, error_from_response
from .records import Identity, parse_id

log = logging.getLogger(__name__)

TOKENS_PATH = "admin/auth/tokens"

#: How many times a request refused for its nonce is signed again with a fresh one.
NONCE_RETRIES = 5

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

    @contextlib.contextmanager
    def hold(self) -> Iterator[int]:
        """A fresh nonce, with :attr:`in_order` held until the block ends: sign and send
        the request inside it."""
        with self.in_order:
            yield self.next()


class FileNonceSource:
    """Increasing nonces for one API key, shared by every process on the host.

    The last nonce handed out lives in a small file in ``directory`` (the package gives
    ``/run/splynx-ippay``); :meth:`hold` opens it, takes an exclusive ``flock``, writes
    ``max(last + 1, centiseconds now)`` and keeps the lock until its block ends, i.e. until
    the answer of the request signed with that nonce is back. No later nonce can therefore
    reach Splynx before an earlier one, across threads and processes alike (each
    :meth:`hold` opens the file anew, so threads exclude each other too, and a forked
    worker never shares a locked file description with its parent). The kernel drops the
    lock of a process that dies.

    Nonces are centiseconds like the official clients' and the in-process
    :class:`NonceSource`, so processes that fall back to it stay comparable.
    """

    def __init__(self, api_key: str, directory: str, *, clock: Callable[[], float] = time.time,
                 lock_timeout: float = 60.0):
        digest = hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]
        self.path = os.path.join(directory, f"splynx-nonce-{digest}")
        self._clock = clock
        self._lock_timeout = lock_timeout

    def _open(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
        try:
            info = os.fstat(fd)
            if info.st_size == 0 and os.geteuid() == 0:
                # root (postinst, an admin's CLI run) creating it: leave it to the owner
                # of the directory (the service user), or the service could not write it.
                parent = os.stat(os.path.dirname(self.path) or ".")
                os.fchown(fd, parent.st_uid, parent.st_gid)
        except OSError:
            pass
        return fd

    def _lock(self, fd: int) -> None:
        deadline = time.monotonic() + self._lock_timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                raise SplynxUnavailableError(
                    f"another process has held the Splynx nonce lock {self.path} for "
                    f"{self._lock_timeout:.0f} s (a request to Splynx that does not end?)")
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    @staticmethod
    def _read(fd: int) -> int:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[int]:
        """A nonce larger than any handed out on this host for the key, with the lock held
        until the block ends."""
        fd = self._open()
        try:
            self._lock(fd)
            nonce = max(self._read(fd) + 1, round(self._clock() * 100))
            data = f"{nonce}\n".encode("ascii")
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            yield nonce
        finally:
            os.close(fd)  # releases the flock

    def next(self) -> int:
        """A nonce, the lock released at once (for callers that send nothing with it)."""
        with self.hold() as nonce:
            return nonce


AnyNonceSource = Union[NonceSource, FileNonceSource]
_file_sources: Dict[Tuple[str, str], FileNonceSource] = {}
_unusable_dirs: set = set()
_sources_lock = threading.Lock()


def nonce_source(api_key: str, nonce_dir: Optional[str] = None) -> AnyNonceSource:
    """The nonce source of ``api_key``: host-wide under ``nonce_dir`` when it is given and
    can be written, else the process's own (with one warning per unusable directory)."""
    if not nonce_dir:
        return NonceSource.for_key(api_key)
    directory = os.path.abspath(nonce_dir)
    with _sources_lock:
        found = _file_sources.get((api_key, directory))
        if found is not None:
            return found
        source = FileNonceSource(api_key, directory)
        try:
            os.close(source._open())
        except OSError as exc:
            if directory not in _unusable_dirs:
                _unusable_dirs.add(directory)
                log.warning("cannot keep Splynx nonces in %s (%s): this process counts its "
                            "own, and Splynx may refuse some of them while other processes "
                            "use the same API key (they are then signed again)",
                            directory, exc.strerror or exc)
            return NonceSource.for_key(api_key)
        _file_sources[(api_key, directory)] = source
        return source


def is_nonce_refusal(status: int, body) -> bool:
    """Whether Splynx refused a signed request for its nonce (401, "Nonce must be greater
    than the last one used" or the like), rather than for the key or signature."""
    if status != 401 or not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    return "nonce" in str(body["error"].get("message", "")).lower()


def _signed_with_retry(nonces: AnyNonceSource,
                       exchange: Callable[[int], Tuple[int, object, object]]):
    """Run ``exchange(nonce)`` (sign and send) under the held nonce; sign again with a
    fresh nonce while Splynx refuses the nonce, at most :data:`NONCE_RETRIES` times.
    Splynx refused before acting, so this is safe for any method."""
    for attempt in range(NONCE_RETRIES + 1):
        with nonces.hold() as nonce:
            answer = exchange(nonce)
        status, _, body = answer
        if attempt < NONCE_RETRIES and is_nonce_refusal(status, body):
            log.info("Splynx refused nonce %s (%s); signing again", nonce, body["error"].get(
                "message"))
            # Another process of the key took a later nonce meanwhile: let the clock pass it.
            time.sleep(random.uniform(0.01, 0.05))
            continue
        return answer
    raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover


def key_refused(api_key: str, status: int, body) -> SplynxError:
    """The error for a refused API key: says so plainly, then Splynx's own words."""
    return error_from_response(status, body, context=f"Splynx refused the API key {api_key!r}")


class SignatureAuth:
    """Signs every request with the API key (splynx §1.3a).

    Signed requests of one key go out one at a time (see :class:`NonceSource`; with a
    :class:`FileNonceSource`, one at a time on the whole host): fine for the CLI and light
    use; token mode is the one for many threads and processes.
    """

    def __init__(self, api_key: str, api_secret: str, *, nonces: Optional[AnyNonceSource] = None):
        self.api_key = api_key
        self._api_secret = api_secret
        self._nonces = nonces if nonces is not None else NonceSource.for_key(api_key)

    def send(self, send: Send, method: str, path: str, **kwargs):
        """Sign and send one request through ``send``, holding the nonce until the answer
        is back; a refused nonce is replaced (:func:`is_nonce_refusal`)."""
        return _signed_with_retry(self._nonces, lambda nonce: send(
            method, path, authorization=signature_header(self.api_key, self._api_secret, nonce),
            **kwargs))


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
                 clock: Callable[[], float] = time.time,
                 nonces: Optional[AnyNonceSource] = None):
        self.api_key = api_key
        self._api_secret = api_secret
        self._send = send
        self._clock = clock
        self._nonces = nonces if nonces is not None else NonceSource.for_key(api_key)
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
        status, _, answer = _signed_with_retry(self._nonces, lambda nonce: self._send(
            "POST", TOKENS_PATH, json={
                "auth_type": "api_key", "key": self.api_key, "nonce": nonce,
                "signature": compute_signature(self.api_key, self._api_secret, nonce)}))
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
