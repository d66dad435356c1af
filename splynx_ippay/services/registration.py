"""Registering the add-on with Splynx: its API key (through Splynx's local add-on CLI), its
module record, settings schema with defaults, payment method, Refund category, payment
account definition and entry points; and undoing it when the package is purged.

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
import subprocess
import tempfile
from dataclasses import dataclass, field

from .refunds import REFUND_CATEGORY_NAME
from .settings import DEFAULTS, MODULE_NAME

log = logging.getLogger(__name__)

#: Where the package keeps the add-on's state; registration.json lives there.
STATE_DIR = "/var/lib/splynx-ippay"
STATE_FILE = "registration.json"

#: The payment method payments made through the add-on are recorded with
#: (Config → Finance → Payment methods), created at registration.
PAYMENT_METHOD_NAME = "IPpay"
#: ... and bank-account (ACH) payments (splynx §5.2 "Bank Account payment method").
BANK_PAYMENT_METHOD_NAME = "IPpay bank account"

TITLE = "Splynx Ippay Billing Add-On"
ROOT = "/usr/share/splynx-ippay"

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
    {"name": "ippay_admin_collections", "place": "admin", "type": "menu_link",
     "root": "controllers\\admin\\finance\\PaymentsController", "title": "IPpay collections",
     "icon": "fa-area-chart", "url": "/ippay/admin/collections"},
    {"name": "ippay_admin_autopay", "place": "admin", "type": "menu_link",
     "root": "controllers\\admin\\finance\\InvoicesController",
     "title": "IPpay automatic payments", "icon": "fa-clock-o", "url": "/ippay/admin/autopay"},
)


#: What the add-on's API key may do: exactly the calls it makes (granted through the add-on
#: CLI at installation; docs/packaging.md lists them for an admin granting by hand).
API_PERMISSIONS = (
    ("api\\admin\\customers\\Customer", ("index", "view")),
    ("api\\admin\\customers\\CustomerBilling", ("view",)),
    ("api\\admin\\customers\\CustomerPaymentAccounts", ("index", "view", "update", "delete")),
    ("api\\admin\\finance\\Invoices", ("index", "view")),
    ("api\\admin\\finance\\Requests", ("index", "view")),
    ("api\\admin\\finance\\Payments", ("index", "view", "add", "delete")),
    ("api\\admin\\finance\\PaymentMethods", ("index", "view", "add", "update")),
    ("api\\admin\\finance\\Transactions", ("index", "view", "add")),
    ("api\\admin\\finance\\TransactionCategories", ("index", "add")),
    ("api\\admin\\finance\\BankStatements", ("index", "view", "add")),
    ("api\\admin\\finance\\BankStatementsRecords", ("index", "view", "add", "update")),
    ("api\\admin\\config\\Config", ("view", "update")),
    ("api\\admin\\config\\Modules", ("index", "view", "add", "update", "delete")),
    ("api\\admin\\config\\EntryPoints", ("index", "view", "add", "update", "delete")),
    ("api\\admin\\administration\\Administrators", ("index", "view")),
    ("api\\admin\\administration\\Partners", ("index", "view")),
    ("api\\admin\\config\\CompanyInfo", ("index", "view")),
)

#: How Splynx shows a customer's saved cards (Customer → Billing → Payment accounts): one
#: line per card, read-only; the tokens stay in the add-on (cards.sync_payment_account).
PAYMENT_ACCOUNT_TITLE = "IPpay"
PAYMENT_ACCOUNT_LABELS = {f"field_{n}": ("Default card" if n == 1 else f"Card {n}")
                          for n in range(1, 11)}


@dataclass
class Registration:
    """What :func:`register` did: ``changes`` made, and ``instructions`` for steps Splynx
    would not take through its API (what an admin must do by hand)."""

    changes: list = field(default_factory=list)
    instructions: list = field(default_factory=list)


def host_addresses():
    """This host's own addresses (the API key's allowed list), loopback first."""
    addresses = ["127.0.0.1"]
    try:
        shown = subprocess.run(["ip", "-o", "addr", "show", "scope", "global"],
                               capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        shown = ""
    for line in shown.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[2] in ("inet", "inet6"):
            address = parts[3].split("/")[0]
            if address not in addresses:
                addresses.append(address)
    return addresses


def obtain_api_key(cli, addresses=None):
    """Create (or find) the add-on's API key through Splynx's local add-on CLI, allow it
    from this host and grant exactly :data:`API_PERMISSIONS`; store the API domain, key
    and secret in the module config too, as Splynx's own add-ons do.

    Returns ``(api_domain, key, secret)``. Raises ``AddonCliError`` when the CLI fails (an
    install must then say so: an add-on without a key cannot work).
    """
    addresses = addresses or host_addresses()
    key_id = cli.add_or_get_api_key(TITLE)
    key, secret = cli.get_api_key_and_secret(key_id)
    cli.api_key_white_list(key_id, addresses)
    for controller, actions in API_PERMISSIONS:
        for action in actions:
            cli.set_api_key_permission(key_id, controller, action)
    domain = f"http://{addresses[-1] if len(addresses) > 1 else addresses[0]}/"
    for name, value in (("api_domain", domain), ("api_key", key), ("api_secret", secret)):
        cli.config_set(MODULE_NAME, name, value)
    log.info("registration: API key %s obtained through the add-on CLI", key_id)
    return domain, key, secret


def ensure_payment_method(splynx, name=PAYMENT_METHOD_NAME, second_field="Card"):
    """The id of the active payment method ``name`` (``IPpay``, or the bank accounts'
    one), created or re-activated as needed; returns ``(id, change or None)``."""
    method = splynx.find_payment_method(name)
    if method is None:
        method_id = splynx.create_payment_method(name, is_active=True,
                                                 field_names=("IPpay transaction", second_field))
        return method_id, f"payment method {name} created"
    if not method.is_active:
        splynx.update_payment_method(method.id, is_active=True)
        return method.id, f"payment method {name} re-activated"
    return method.id, None


def register(splynx, cli=None):
    """Create or update the module, its payment method, the Refund transaction category, the
    payment-account definition, the default settings and the entry points.

    ``cli`` is Splynx's local add-on CLI (``splynx.addon_cli.AddonCli``) where Splynx runs
    on this host: steps the API does not document go through it first (splynx.registrar).
    Returns a :class:`Registration`. Raises :class:`~splynx_ippay.splynx.SplynxError` when
    Splynx refuses or cannot be reached.
    """
    from ..splynx.registrar import Registrar

    done = Registration()
    module = {"name": MODULE_NAME, "title": TITLE, "root": ROOT, "type": "simple"}
    existing = {m.get("name"): m for m in splynx.list_modules()}
    if MODULE_NAME not in existing:
        splynx.create_module(module)
        done.changes.append(f"module {MODULE_NAME} created")
    elif any(str(existing[MODULE_NAME].get(k)) != v for k, v in (("title", TITLE),
                                                                  ("root", ROOT))):
        splynx.update_module(MODULE_NAME, {"title": TITLE, "root": ROOT})
        done.changes.append(f"module {MODULE_NAME} updated")

    method_id, change = ensure_payment_method(splynx)
    done.changes += [change] if change else []
    bank_method_id, change = ensure_payment_method(splynx, BANK_PAYMENT_METHOD_NAME, "Bank account")
    done.changes += [change] if change else []
    before = splynx.find_transaction_category(REFUND_CATEGORY_NAME)
    splynx.ensure_transaction_category(REFUND_CATEGORY_NAME)
    if before is None:
        done.changes.append(f"transaction category {REFUND_CATEGORY_NAME} created")

    registrar = Registrar(splynx, cli, module=MODULE_NAME)
    account = registrar.ensure_payment_account(PAYMENT_ACCOUNT_TITLE, PAYMENT_ACCOUNT_LABELS)
    done.changes += account.changes
    done.instructions += account.instructions

    # The settings schema: every key with its default, never overwriting what an admin set.
    # Payments are recorded with the add-on's own payment method, cards shown in its
    # payment account, unless an admin chose others.
    defaults = {**DEFAULTS, "payment_method_id": method_id,
                "bank_payment_method_id": bank_method_id,
                "payment_account_id": account.value or ""}
    stored = splynx.get_module_config(MODULE_NAME)
    missing = {k: v for k, v in defaults.items() if k not in stored}
    if account.value and not str(stored.get("payment_account_id") or ""):
        missing["payment_account_id"] = account.value
    if missing:
        splynx.put_module_config(MODULE_NAME, missing)
        done.changes.append("default settings stored: " + ", ".join(sorted(missing)))

    points = registrar.ensure_entry_points(ENTRY_POINTS)
    done.changes += points.changes
    done.instructions += points.instructions
    for change in done.changes:
        log.info("registration: %s", change)
    for line in done.instructions:
        log.warning("registration: %s", line)
    return done


def unregister(splynx, cli=None):
    """Remove the entry points and the module record (Splynx drops its settings with it) and
    deactivate the payment method: payments already recorded with it must keep it.

    Idempotent; returns a :class:`Registration`. Raises :class:`SplynxError` like
    :func:`register`.
    """
    from ..splynx.registrar import Registrar

    done = Registration()
    if any(m.get("name") == MODULE_NAME for m in splynx.list_modules()):
        points = Registrar(splynx, cli, module=MODULE_NAME).remove_entry_points()
        done.changes += points.changes
        done.instructions += points.instructions
        splynx.delete_module(MODULE_NAME)
        done.changes.append(f"module {MODULE_NAME} removed")
    for name in (PAYMENT_METHOD_NAME, BANK_PAYMENT_METHOD_NAME):
        method = splynx.find_payment_method(name)
        if method is not None and method.is_active:
            splynx.update_payment_method(method.id, is_active=False)
            done.changes.append(f"payment method {name} deactivated")
    for change in done.changes:
        log.info("unregistration: %s", change)
    return done


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
