"""Registering the add-on with Splynx: its module record, settings and entry points.

Idempotent: every piece is looked up by its name first and created or brought up to date,
so running it twice changes nothing (splynx-platform §3.2 "add-or-get").
"""

import logging

from .settings import DEFAULTS, MODULE_NAME

log = logging.getLogger(__name__)

TITLE = "Splynx Ippay Billing Add-On"
ROOT = "/usr/share/splynx-ippay"

_FINANCE = "controllers\\portal\\FinanceController"

#: The entry points the add-on shows itself through (splynx-platform §3.4).
ENTRY_POINTS = (
    {"name": "ippay_credit_card", "place": "portal", "type": "menu_link", "root": _FINANCE,
     "title": "Credit card", "icon": "fa-credit-card", "url": "/ippay/cards"},
    {"name": "ippay_pay_invoice", "place": "portal", "type": "action_link", "model": "Invoices",
     "size": "large", "title": "Pay by IPpay", "icon": "fa-credit-card",
     "url": "/ippay/pay-invoice"},
)


def _differs(current, wanted):
    return any(str(current.get(k)) != str(v) for k, v in wanted.items())


def register(splynx):
    """Create or update the module, its default settings and its entry points.

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

    stored = splynx.get_module_config(MODULE_NAME)
    missing = {k: v for k, v in DEFAULTS.items() if k not in stored}
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
