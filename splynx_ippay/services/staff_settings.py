"""The staff settings page's rules: validating module settings and choosing the gateway.

Module settings live in Splynx's module config (design.md §5, settings.py). This module
checks what staff type before anything is stored, and decides which gateway address and
Terminal ID the add-on talks to: the module settings when set there, else config.ini's
``[ippay]`` section. :class:`GatewaySelector` stands where ``addon.gateway`` used to be a
fixed client and rebuilds the client when the effective settings change (cached with the
module settings' TTL).
"""

import ipaddress
import re
import threading
from urllib.parse import urlsplit

from ..ippay import GatewayNotSentError
from .settings import MODULE_NAME

#: The gateway endpoints a terminal can be on (ippay-protocol.md).
GATEWAY_URLS = {
    "test": "https://testgtwy.ippay.com/ippay",
    "live": "https://gtwy.ippay.com/ippay",
}
GATEWAY_MODES = {"test": "IPpay test gateway", "live": "IPpay live gateway",
                 "custom": "Custom address (staging, sandbox)"}
#: The languages of the customer pages (i18n.py has a catalog for each but English).
LANGUAGES = {"en": "English", "es": "Español"}
STATEMENT_GROUPINGS = {"month": "Month", "day": "Day"}
CONCURRENCY_RANGE = (1, 64)
#: Keys the settings page writes to Splynx's module config.
EDITABLE_KEYS = ("terminal_id", "gateway_mode", "gateway_url", "payment_method_id",
                 "payment_account_id", "statement_grouping", "refill_min_cents",
                 "refill_max_cents", "charge_concurrency", "language")
_TERMINAL_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_MAX_REFILL_CENTS = 10_000_000  # 100,000.00


def is_loopback_host(host):
    """True for ``localhost`` and loopback addresses (where the sandbox simulator lives)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def gateway_url_problem(url):
    """Why ``url`` cannot be a custom gateway address, or None.

    It must be https; plain http is accepted only on a loopback host (the sandbox
    simulator, a local TLS proxy), where nothing crosses a network.
    """
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Enter a full address such as https://gateway.example/ippay."
    if parts.scheme != "https" and not is_loopback_host(parts.hostname):
        return "A gateway address must use https (plain http only on this machine, 127.0.0.1)."
    if parts.username or parts.password:
        return "The address may not contain a user name or password."
    return None


def parse_amount(text):
    """``"12.50"`` / ``"12"`` → 1250 cents; None when not an amount with ≤ 2 decimals."""
    text = (text or "").strip().replace(",", "")
    if not re.fullmatch(r"\d{1,9}(\.\d{1,2})?", text):
        return None
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def form_defaults(values, bootstrap):
    """The settings page's field values from stored module settings (amounts as text)."""
    url, terminal, _ = effective_gateway(values, bootstrap)
    mode = values.get("gateway_mode") or next(
        (m for m, u in GATEWAY_URLS.items() if u == url.rstrip("/")), "custom")

    def amount(cents):
        try:
            return f"{int(cents) / 100:.2f}"
        except (TypeError, ValueError):
            return ""

    return {
        "terminal_id": values.get("terminal_id") or terminal,
        "gateway_mode": mode,
        "gateway_url": values.get("gateway_url") or (url if mode == "custom" else ""),
        "payment_method_id": str(values.get("payment_method_id") or ""),
        "payment_account_id": str(values.get("payment_account_id") or ""),
        "statement_grouping": values.get("statement_grouping") or "month",
        "refill_min": amount(values.get("refill_min_cents")),
        "refill_max": amount(values.get("refill_max_cents")),
        "charge_concurrency": str(values.get("charge_concurrency") or ""),
        "language": values.get("language") or "en",
    }


def validate_form(form, payment_method_ids=None):
    """Check every field of the settings page; return ``(values, errors)``.

    ``form`` maps field names to strings (amounts in currency units). ``values`` is what
    would be stored (amounts in cents); ``errors`` maps a field to a sentence. Nothing
    may be saved unless ``errors`` is empty.
    """
    errors, values = {}, {}

    def get(key):
        return (form.get(key) or "").strip()

    terminal = get("terminal_id")
    if not terminal:
        errors["terminal_id"] = "Enter the Terminal ID assigned by IPpay."
    elif not _TERMINAL_RE.match(terminal):
        errors["terminal_id"] = "A Terminal ID is 1 to 32 letters, digits, '-' or '_'."
    values["terminal_id"] = terminal

    mode = get("gateway_mode")
    if mode not in GATEWAY_MODES:
        errors["gateway_mode"] = "Choose the test gateway, the live gateway or a custom address."
    values["gateway_mode"] = mode
    url = get("gateway_url")
    if mode == "custom":
        problem = gateway_url_problem(url)
        if problem:
            errors["gateway_url"] = problem
        values["gateway_url"] = url.rstrip("/")
    else:
        values["gateway_url"] = ""

    for key, label in (("payment_method_id", "payment method"),
                       ("payment_account_id", "payment account")):
        raw = get(key)
        if not raw.isdigit() or int(raw) < 1:
            errors[key] = f"Choose a {label}."
            values[key] = raw
        else:
            values[key] = int(raw)
    if (payment_method_ids is not None and "payment_method_id" not in errors
            and values["payment_method_id"] not in payment_method_ids):
        errors["payment_method_id"] = "This payment method does not exist in Splynx."

    grouping = get("statement_grouping")
    if grouping not in STATEMENT_GROUPINGS:
        errors["statement_grouping"] = "Choose Month or Day."
    values["statement_grouping"] = grouping

    low, high = parse_amount(get("refill_min")), parse_amount(get("refill_max"))
    if low is None or low < 1:
        errors["refill_min"] = "Enter an amount of at least 0.01, such as 5.00."
    if high is None or high < 1 or high > _MAX_REFILL_CENTS:
        errors["refill_max"] = "Enter an amount between 0.01 and 100,000.00."
    if "refill_min" not in errors and "refill_max" not in errors and low > high:
        errors["refill_min"] = "The minimum may not be above the maximum."
    values["refill_min_cents"], values["refill_max_cents"] = low, high

    raw = get("charge_concurrency")
    lo, hi = CONCURRENCY_RANGE
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        errors["charge_concurrency"] = f"Enter a whole number from {lo} to {hi}."
        values["charge_concurrency"] = raw
    else:
        values["charge_concurrency"] = int(raw)

    language = get("language")
    if language not in LANGUAGES:
        errors["language"] = "Choose a language."
    values["language"] = language
    return values, errors


def save(addon, values):
    """Store validated settings in Splynx's module config and drop the cached copies."""
    addon.splynx.put_module_config(MODULE_NAME, {k: ("" if values[k] is None else str(values[k]))
                                                 for k in EDITABLE_KEYS})
    addon.module_settings.invalidate()


def effective_gateway(values, bootstrap):
    """``(url, terminal_id, source)`` of the gateway the add-on uses.

    The module settings win when their Terminal ID and mode are set; otherwise
    config.ini's ``[ippay]`` applies (an add-on not yet configured, or the sandbox).
    """
    terminal, mode = values.get("terminal_id"), values.get("gateway_mode")
    if terminal and mode in GATEWAY_MODES:
        url = values.get("gateway_url") if mode == "custom" else GATEWAY_URLS[mode]
        if url:
            return url.rstrip("/"), terminal, "module settings"
    return bootstrap["IPPAY_URL"], bootstrap["IPPAY_TERMINAL_ID"], "config.ini"


def charge_concurrency(addon):
    """The worker's bound on charges in flight, from the module settings (1..64)."""
    try:
        value = int(addon.module_settings.get().get("charge_concurrency") or 4)
    except (TypeError, ValueError):
        value = 4
    lo, hi = CONCURRENCY_RANGE
    return max(lo, min(hi, value))


class GatewaySelector:
    """Stands for the IPpay client: every attribute is the current client's.

    The client is built from the effective settings (module settings, else config.ini),
    which are read through the cached module settings, and kept until they change.
    """

    def __init__(self, factory, module_settings, bootstrap):
        self._factory = factory
        self._module_settings = module_settings
        self._bootstrap = bootstrap
        self._lock = threading.Lock()
        self._key = None
        self._client = None

    def current(self):
        """The client for the effective (url, terminal id).

        While Splynx cannot be read the last client stays in use; with none yet, the call
        fails as not sent rather than guess a gateway (config.ini's could be another one).
        """
        values = self._module_settings.get()
        if getattr(self._module_settings, "read_ok", True) is False:
            with self._lock:
                if self._client is not None:
                    return self._client
            raise GatewayNotSentError("the gateway settings could not be read from Splynx",
                                      reason="settings_unavailable")
        url, terminal, _ = effective_gateway(values, self._bootstrap)
        with self._lock:
            if self._key != (url, terminal):
                self._client = self._factory(url, terminal)
                self._key = (url, terminal)
            return self._client

    def __getattr__(self, name):
        return getattr(self.current(), name)
