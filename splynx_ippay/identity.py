"""Who is logged in: the Splynx session cookie, exchanged with Splynx for an identity.

The browser sends Splynx's session cookie to ``/ippay`` because both share one origin. The
add-on never trusts a customer id from the browser: it asks Splynx (API v2,
``auth_type=session``) who the session belongs to (design.md §4, splynx-platform §4).
Answers are kept briefly so that a page with several requests asks once.
"""

import functools
import hashlib
import threading
import time
from urllib.parse import quote

from flask import current_app, g, redirect, request

from .pages import splynx_unavailable_page
from .splynx import SplynxAuthError, SplynxError

#: How long a session's identity is remembered, in seconds.
IDENTITY_TTL = 30.0
_MAX_ENTRIES = 10000


class IdentityCache:
    """Session → identity answers from Splynx, kept for ``ttl`` seconds."""

    def __init__(self, ttl=IDENTITY_TTL, clock=time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries = {}

    def lookup(self, splynx, session_id):
        """The identity of ``session_id`` (None when Splynx says it is not a session)."""
        key = hashlib.sha256(session_id.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit and hit[1] > now:
                return hit[0]
        try:
            identity = splynx.session_identity(session_id)
        except SplynxAuthError:
            # Not remembered: the same session id may be logged in a moment from now.
            return None
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
            self._entries[key] = (identity, now + self._ttl)
        return identity


_cache = IdentityCache()


def current_identity():
    """The identity behind the request's Splynx session, or None. Raises SplynxError when
    Splynx cannot be asked."""
    if "identity" not in g:
        session_id = request.cookies.get(current_app.config["SPLYNX_SESSION_COOKIE"], "")
        addon = current_app.extensions["splynx_ippay"]
        g.identity = _cache.lookup(addon.splynx, session_id) if session_id else None
    return g.identity


def login_redirect(place):
    """Send the browser to Splynx's login for ``place`` (portal/admin), then back here."""
    return redirect(f"/{place}/login/?return={quote(request.full_path.rstrip('?'), safe='')}")


def customer_required(view):
    """Run ``view`` with ``customer_id`` for a logged-in customer; others go to the login."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            identity = current_identity()
        except SplynxError:
            return splynx_unavailable_page()
        if identity is None or identity.kind != "customer":
            return login_redirect("portal")
        return view(*args, customer_id=identity.id, **kwargs)

    return wrapper


def admin_required(view):
    """Run ``view`` with ``admin_id`` for a logged-in Splynx administrator.

    No session (or an expired one) goes to Splynx's admin login with ``return``; a
    customer's session is refused with 403: staff pages are not for customers.
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        from .pages import error_page

        try:
            identity = current_identity()
        except SplynxError:
            return splynx_unavailable_page()
        if identity is None:
            return login_redirect("admin")
        if identity.kind != "admin":
            return error_page(403, "Staff only",
                              "This page is for Splynx administrators. You are signed in as a "
                              "customer.")
        return view(*args, admin_id=identity.id, **kwargs)

    return wrapper
