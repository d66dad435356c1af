"""Registering the add-on with Splynx: its module record, settings schema with defaults,
entry points and payment method; and undoing it when the package is purged.

Idempotent: every piece is looked up by its name first and created or brought up to date,
so running it twice changes nothing (splynx-platform §3.2 "add-or-get").

The outcome of the last attempt is kept in ``registration.json`` in the add-on's state
directory (``/var/lib/splynx-ippay``): ``registered`` with the version and Splynx address it
was done for, or ``pending`` with the reason. The package's postinst registers; when Splynx
cannot be reached the install still succeeds, the state says ``pending``, and the web
service's start (``splynx-ippay register --if-needed``) or an admin's ``splynx-ippay
register`` completes it (packaging-and-style §B.7).
"""

import datetime
import json
import logging
import os
import tempfile

from .settings import DEFAULTS, MODULE_NAME

log = logging.getLogger(__name__)

#: Where the package keeps the add-on's state; registration.json lives there.
STATE_DIR = "/var/lib/splynx-ippay"
STATE_FILE = "registration.json"

#: The payment method payments made through the add-on are recorded with
#: (Config → Finance → Payment methods), created at registration.
PAYMENT_METHOD_NAME = "IPpay"

TITLE = "Splynx Ippay Billing Add-On"
ROOT = "/usr/share/splynx-ippay"

_PAYMENT_METHODS = "admin/finance/payment-methods"
_FINANCE = "controllers\\portal\\FinanceController"
_DASHBOARD = "controllers\\portal\\DashboardController"

#: The dashboard widget: Splynx renders this snippet (Twig) on the customer's dashboard; the
#: list itself is served by the add-on (/ippay/widget), which sizes the frame to its content.
_WIDGET_CODE = ('<iframe class="ippay-widget" src="/ippay/widget" title="Pay your invoices by card" '
                'style="display:block;width:100%;height:150px;border:0" scrolling="no"></iframe>')

#: The entry points the add-on shows itself through (splynx-platform §3.4).
ENTRY_POINTS = (
    {"name": "ippay_credit_card", "place": "portal", "type": "menu_link", "root": _FINANCE,
     "title": "Credit card", "icon": "fa-credit-card", "url": "/ippay/cards"},
    {"name": "ippay_pay_invoice", "place": "portal", "type": "action_link", "model": "Invoices",
     "size": "large", "title": "Pay by IPpay", "icon": "fa-credit-card",
     "url": "/ippay/pay-invoice"},
    {"name": "ippay_pay_proforma", "place": "portal", "type": "action_link", "model": "Requests",
     "size": "large", "title": "Pay by IPpay", "icon": "fa-credit-card",
     "url": "/ippay/pay-proforma"},
    {"name": "ippay_dashboard", "place": "portal", "type": "code", "root": _DASHBOARD,
     "location": "before_content", "title": "Pay your invoices by card", "code": _WIDGET_CODE},
    {"name": "ippay_refill", "place": "portal", "type": "menu_link", "root": _FINANCE,
     "title": "Add money", "icon": "fa-plus-circle", "url": "/ippay/"},
    # Staff side (docs/staff.md). The emulator shows admin menu links whose root is the
    # invoices page as buttons there (Finance → Invoices → Charge), and frames the one whose
    # root is the modules list in Modules list → Edit, as Splynx shows an add-on's config.
    {"name": "ippay_admin_charge", "place": "admin", "type": "menu_link",
     "root": "controllers\\admin\\finance\\InvoicesController", "title": "Charge",
     "icon": "fa-credit-card", "url": "/ippay/admin/charge"},
    {"name": "ippay_admin_settings", "place": "admin", "type": "menu_link",
     "root": "controllers\\admin\\config\\ModulesController", "title": "IPpay settings",
     "icon": "fa-cog", "url": "/ippay/admin/settings"},
    {"name": "ippay_admin_runs", "place": "admin", "type": "menu_link",
     "root": "controllers\\admin\\finance\\InvoicesController", "title": "IPpay charge runs",
     "icon": "fa-history", "url": "/ippay/admin/runs"},
    {"name": "ippay_admin_invoice", "place": "admin", "type": "action_link", "model": "Invoices",
     "size": "large", "title": "IPpay", "icon": "fa-credit-card",
     "url": "/ippay/admin/invoice"},
    {"name": "ippay_admin_transactions", "place": "admin", "type": "menu_link",
     "root": "controllers\\admin\\finance\\PaymentsController", "title": "IPpay transactions",
     "icon": "fa-list", "url": "/ippay/admin/transactions"},
)


def _differs(current, wanted):
    return any(str(current.get(k)) != str(v) for k, v in wanted.items())


def ensure_payment_method(splynx):
    """The id of the active ``IPpay`` payment method, created or re-activated as needed;
    returns ``(id, change or None)``."""
    methods = [m for m in splynx.list_payment_methods() if m.name == PAYMENT_METHOD_NAME]
    if not methods:
        _, body = splynx.request("POST", _PAYMENT_METHODS,
                                 json={"name": PAYMENT_METHOD_NAME, "is_active": "1"})
        return int(body["id"]), f"payment method {PAYMENT_METHOD_NAME} created"
    method = methods[0]
    if not method.is_active:
        splynx.request("PUT", f"{_PAYMENT_METHODS}/{method.id}", json={"is_active": "1"})
        return method.id, f"payment method {PAYMENT_METHOD_NAME} re-activated"
    return method.id, None


def register(splynx):
    """Create or update the module, its payment method, its default settings and its entry
    points.

    Returns a list of the changes made (empty when everything was already in place).
    Raises :class:`~splynx_ippay.splynx.SplynxError` when Splynx refuses or cannot be reached.
    """
    changes = []
    module = {"name": MODULE_NAME, "title": TITLE, "root": ROOT, "type": "simple"}
    existing = {m.get("name"): m for m in splynx.list_modules()}
    if MODULE_NAME not in existing:
        splynx.create_module(module)
        changes.append(f"module {MODULE_NAME} created")
    elif _differs(existing[MODULE_NAME], {"title": TITLE, "root": ROOT}):
        splynx.update_module(MODULE_NAME, {"title": TITLE, "root": ROOT})
        changes.append(f"module {MODULE_NAME} updated")

    method_id, change = ensure_payment_method(splynx)
    if change:
        changes.append(change)

    # The settings schema: every key with its default, never overwriting what an admin set.
    # Payments are recorded with the add-on's own payment method unless one was chosen.
    defaults = {**DEFAULTS, "payment_method_id": method_id}
    stored = splynx.get_module_config(MODULE_NAME)
    missing = {k: v for k, v in defaults.items() if k not in stored}
    if missing:
        splynx.put_module_config(MODULE_NAME, missing)
        changes.append("default settings stored: " + ", ".join(sorted(missing)))

    points = {p.get("name"): p for p in splynx.list_entry_points()
              if p.get("module") == MODULE_NAME}
    for point in ENTRY_POINTS:
        wanted = {"module": MODULE_NAME, "enabled": True, **point}
        current = points.get(point["name"])
        if current is None:
            splynx.create_entry_point(wanted)
            changes.append(f"entry point {point['name']} created")
        elif _differs(current, {k: v for k, v in wanted.items() if k != "enabled"}):
            splynx.update_entry_point(current["id"], wanted)
            changes.append(f"entry point {point['name']} updated")
    for change in changes:
        log.info("registration: %s", change)
    return changes


def unregister(splynx):
    """Remove the module record (Splynx drops its entry points and settings with it) and
    deactivate the payment method: payments already recorded with it must keep it.

    Idempotent; returns the changes made. Raises :class:`SplynxError` like :func:`register`.
    """
    changes = []
    if any(m.get("name") == MODULE_NAME for m in splynx.list_modules()):
        for point in splynx.list_entry_points():
            if point.get("module") == MODULE_NAME:
                splynx.delete_entry_point(point["id"])
        splynx.delete_module(MODULE_NAME)
        changes.append(f"module {MODULE_NAME} and its entry points removed")
    for method in splynx.list_payment_methods():
        if method.name == PAYMENT_METHOD_NAME and method.is_active:
            splynx.request("PUT", f"{_PAYMENT_METHODS}/{method.id}", json={"is_active": "0"})
            changes.append(f"payment method {PAYMENT_METHOD_NAME} deactivated")
    for change in changes:
        log.info("unregistration: %s", change)
    return changes


# -- the record of the last attempt (registration.json) ---------------------------------

def read_state(state_dir=STATE_DIR):
    """The recorded outcome as a dict (``{}`` when nothing was recorded)."""
    try:
        with open(os.path.join(state_dir, STATE_FILE), encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(state_dir, status, **details):
    """Record ``status`` (``registered`` or ``pending``) atomically; returns the path, or
    None when the state directory does not exist (not installed by the package) or cannot
    be written."""
    if not os.path.isdir(state_dir):
        return None
    state = {"status": status,
             "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             **details}
    path = os.path.join(state_dir, STATE_FILE)
    try:
        fd, temporary = tempfile.mkstemp(dir=state_dir, prefix=".registration-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=1, sort_keys=True)
            handle.write("\n")
        os.chmod(temporary, 0o640)
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("cannot record the registration state in %s: %s", path, exc)
        return None
    return path


def clear_state(state_dir=STATE_DIR):
    """Forget the recorded outcome (after unregistering)."""
    try:
        os.unlink(os.path.join(state_dir, STATE_FILE))
    except FileNotFoundError:
        pass


def is_current(state, version, splynx_url):
    """True when ``state`` records a registration done by ``version`` with ``splynx_url``."""
    return (state.get("status") == "registered" and state.get("version") == version
            and state.get("splynx_url") == splynx_url)
