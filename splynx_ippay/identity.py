"""Who is logged in: the Splynx session cookie, exchanged with Splynx for an identity.

The browser sends Splynx's session cookie to ``/ippay`` because both share one origin. The
add-on never trusts a customer id from the browser: it asks Splynx (API v2,
``auth_type=session``) who the session belongs to (design.md §4, splynx-platform §4).

* Every request that can move money or change data asks Splynx again (``fresh``): a logout
  in Splynx is honoured at once.
* Reads may use an answer kept for at most 30 s, and never past the token's own expiry.
* A session Splynx refused is remembered for a few seconds, a cookie that cannot be a PHP
  session id is refused without asking, and an address that sent many refused sessions is
  not asked about new ones for a minute: a flood of made-up cookies costs Splynx little.
* The exchange has its own short timeout (``[splynx] session_timeout``), so a slow Splynx
  holds a page for seconds, not for the API timeout.
"""

import datetime as dt
import functools
import hashlib
import re
from urllib.parse import quote

from flask import current_app, g, redirect, request

from .cache import MISSING, TTLCache
from .i18n import _
from .pages import error_page, splynx_unavailable_page
from .splynx import SplynxAuthError, SplynxError

#: The longest a read may rely on an earlier answer, in seconds.
IDENTITY_TTL = 30.0
#: How long a refused session is remembered.
REFUSED_TTL = 5.0
#: Refused sessions one client address may have asked about before it is not asked for
#: any more, until a minute passes without one (a flood of made-up cookies).
REFUSED_PER_ADDRESS = 30
#: What a PHP session id can look like (session.sid_bits_per_character 4, 5 or 6).
_SESSION_ID = re.compile(r"[A-Za-z0-9,-]{16,128}", re.ASCII)


class Identities:
    """Session → identity answers of one process (two TTL caches: known and refused)."""

    def __init__(self):
        self.known = TTLCache(IDENTITY_TTL)
        self.refused = TTLCache(REFUSED_TTL)
        self.refusals_by_address = TTLCache(60.0)

    def lookup(self, splynx, session_id, fresh=False, address=None):
        """The identity of ``session_id``, or None when Splynx says it is not a session.
        Raises SplynxError when Splynx cannot be asked."""
        if not _SESSION_ID.fullmatch(session_id or ""):
            return None
        key = hashlib.sha256(session_id.encode()).hexdigest()
        if self.refused.get(key) is not MISSING:
            return None
        refusals = self.refusals_by_address.get(address)
        if refusals is not MISSING and refusals >= REFUSED_PER_ADDRESS \
                and self.known.get(key) is MISSING:
            return None
        if not fresh:
            hit = self.known.get(key)
            if hit is not MISSING:
                return hit
        try:
            identity = splynx.session_identity(session_id)
        except SplynxAuthError:
            self.known.pop(key)
            self.refused.put(key, True)
            if address:
                count = self.refusals_by_address.get(address)
                self.refusals_by_address.put(address, 1 if count is MISSING else count + 1)
            return None
        left = (identity.expires_at - dt.datetime.now(dt.timezone.utc)).total_seconds()
        self.known.put(key, identity, ttl=min(IDENTITY_TTL, left))
        return identity


def current_identity(fresh=False):
    """The identity behind the request's Splynx session, or None. Raises SplynxError when
    Splynx cannot be asked. ``fresh`` asks Splynx even if an answer is kept."""
    if fresh and not g.get("identity_fresh"):
        g.pop("identity", None)
    if "identity" not in g:
        web = current_app.extensions["splynx_ippay_web"]
        session_id = request.cookies.get(current_app.config["SPLYNX_SESSION_COOKIE"], "")
        g.identity = web.identities.lookup(web.session_checker, session_id, fresh=fresh,
                                           address=request.remote_addr)
        g.identity_fresh = fresh
    return g.identity


def _changes_something():
    return request.method not in ("GET", "HEAD", "OPTIONS")


def login_redirect(place):
    """Send the browser to Splynx's login for ``place`` (portal/admin), then back here."""
    return redirect(f"/{place}/login/?return={quote(request.full_path.rstrip('?'), safe='')}")


def customer_required(view):
    """Run ``view`` with ``customer_id`` for a logged-in customer; others go to the login.
    A request that changes something asks Splynx again."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            identity = current_identity(fresh=_changes_something())
        except SplynxError:
            return splynx_unavailable_page()
        if identity is None or identity.kind != "customer":
            return login_redirect("portal")
        return view(*args, customer_id=identity.id, **kwargs)

    return wrapper


def admin_required(view=None, *, allowed_role=False):
    """Run ``view`` with ``admin_id`` for a logged-in Splynx administrator.

    No session (or an expired one) goes to Splynx's admin login with ``return``; a
    customer's session is refused with 403. ``allowed_role=True`` (settings, void, refund)
    also needs one of the roles the module setting ``staff_roles`` allows.
    """
    if view is None:
        return functools.partial(admin_required, allowed_role=allowed_role)

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            identity = current_identity(fresh=_changes_something())
        except SplynxError:
            return splynx_unavailable_page()
        if identity is None:
            return login_redirect("admin")
        if identity.kind != "admin":
            return error_page(403, _("Staff only"),
                              _("This page is for Splynx administrators. You are signed in as "
                                "a customer."))
        if allowed_role:
            refusal = _role_refusal(identity.id)
            if refusal is not None:
                return refusal
        return view(*args, admin_id=identity.id, **kwargs)

    return wrapper


def _role_refusal(admin_id):
    """None when the administrator's Splynx role may act; else the 403 page saying why."""
    ctx = current_app.extensions["splynx_ippay"]
    roles = ctx.module_settings.current().staff_roles
    try:
        role = ctx.splynx.get_administrator(admin_id).role_name
    except SplynxError:
        return splynx_unavailable_page()
    if role in roles:
        return None
    return error_page(403, "Not allowed for your role",
                      f"Changing the IPpay settings, voiding and refunding need a Splynx "
                      f"administrator with the role {' or '.join(roles)}; yours is "
                      f"{role or 'not set'}. Ask an administrator who has it, or ask them to "
                      "allow your role in the IPpay settings.")
