"""Request keys: the one-time keys that make a payment form idempotent (design.md §3,
invariant 6).

The server issues every key with the form that carries it, signed and bound to the channel,
the customer and the document (``issue``). When the form comes back, :func:`accept` checks
the signature, the binding and the age, and turns the key into the value the journal
stores: ``form:<nonce>``. Keys the add-on makes for itself (a charge-run item is
``run-item:<id>``) live in other namespaces, which no form value can reach, so a form can
neither take over another channel's attempt nor replay one made for another document. A
key used again returns the attempt it started (a double click is shown its first outcome,
never charged twice).
"""

import hashlib
import hmac
import re
import secrets
import time

from ..messages import UserError

#: How long a payment form may be left open before it must be reloaded.
LIFETIME_SECONDS = 24 * 3600
FORM_PREFIX = "form:"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16}", re.ASCII)
_PART = re.compile(r"[a-z_]{1,16}|[0-9]{1,10}", re.ASCII)


class RequestKeyRefused(UserError):
    """A form's key is forged, expired or made for another payment: nothing was charged."""


def _mac(secret, payload):
    return hmac.new(secret, f"splynx-ippay request-key {payload}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def _binding(channel, customer_id, kind, document_id):
    parts = [getattr(channel, "value", channel), str(int(customer_id or 0)), kind or "refill",
             str(int(document_id or 0))]
    if not all(_PART.fullmatch(p) for p in parts):
        raise ValueError(f"cannot bind a request key to {parts!r}")
    return ".".join(parts)


def issue(ctx, *, channel, customer_id, kind=None, document_id=None, now=None):
    """A fresh key for one form: ``<binding>.<issued>.<nonce>.<signature>``."""
    issued = int(now if now is not None else time.time())
    payload = f"{_binding(channel, customer_id, kind, document_id)}.{issued}." \
              f"{secrets.token_urlsafe(12)}"
    return f"{payload}.{_mac(ctx.secret, payload)}"


def accept(ctx, key, *, channel, customer_id, kind=None, document_id=None, now=None):
    """The journal's request key for a form's ``key``, checked against what the form pays.

    Raises :class:`RequestKeyRefused` for a key that is missing, forged, too old, or bound
    to another channel, customer or document.
    """
    key = (key or "").strip()
    refused = RequestKeyRefused("This form can no longer be used, so nothing was charged. "
                                "Please reload the page and try again.")
    payload, _, mac = key.rpartition(".")
    if not payload or len(key) > 200 or not hmac.compare_digest(
            mac.encode(), _mac(ctx.secret, payload).encode()):
        raise refused
    binding, issued, nonce = payload.rsplit(".", 2) if payload.count(".") >= 2 else ("", "", "")
    if binding != _binding(channel, customer_id, kind, document_id) or not _NONCE.fullmatch(nonce):
        raise refused
    age = (now if now is not None else time.time()) - int(issued)
    if not 0 <= age <= LIFETIME_SECONDS:
        raise refused
    return FORM_PREFIX + nonce
