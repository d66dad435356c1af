"""Module settings kept in Splynx's module config (design.md §5).

Splynx admins edit them under Config → Integrations → Modules list; the add-on reads them
through the API (``admin/config/config?module=add-on&path=splynx_ippay_addon``). They change
rarely, so a copy is kept for a short while instead of asking Splynx on every page.
"""

import threading
import time

from ..splynx import SplynxError

MODULE_NAME = "splynx_ippay_addon"

#: Defaults declared at registration; Splynx's values override them.
DEFAULTS = {
    "payment_method_id": 3,        # "Credit card" in a fresh Splynx (splynx-platform §2.5)
    "refill_min_cents": 500,
    "refill_max_cents": 100000,
    "statement_grouping": "month",
    # Customer portal (docs/portal.md): how amounts are shown, and direct pay links.
    "currency": "USD",             # ISO 4217 code shown beside amount fields
    "currency_sign": "$",          # written before amounts: $75.00
    "direct_links": "signed",      # signed | open | off (docs/portal.md "Direct pay links")
    # Staff side (docs/staff.md). The gateway's terminal_id / gateway_mode / gateway_url
    # have no default on purpose: while unset, config.ini's [ippay] section applies.
    "charge_concurrency": 4,       # charges in flight per worker, 1..64
    "language": "en",              # language of the customer pages
}

_INTEGER_KEYS = {"payment_method_id", "refill_min_cents", "refill_max_cents",
                 "charge_concurrency", "payment_account_id"}


class ModuleSettings:
    """The module settings, read from Splynx and cached for ``ttl`` seconds."""

    def __init__(self, splynx, ttl=30.0, clock=time.monotonic):
        self._splynx = splynx
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._values = None
        self._read_at = 0.0
        #: False while the last read failed (Splynx down): the values are then only the
        #: defaults, and whoever must not act on a guess (the gateway choice) can tell.
        self.read_ok = None

    def get(self):
        """The settings as a dict; the defaults while Splynx cannot be read."""
        with self._lock:
            if self._values is not None and self._clock() - self._read_at < self._ttl:
                return self._values
        values = dict(DEFAULTS)
        try:
            stored = self._splynx.get_module_config(MODULE_NAME)
            read_ok = True
        except SplynxError as exc:
            stored = {}
            # 404: the module is not registered, so nothing is stored: the defaults are right.
            read_ok = exc.status == 404
        self.read_ok = read_ok
        for key, value in stored.items():
            if key in _INTEGER_KEYS:
                try:
                    value = int(value)
                except (TypeError, ValueError):
                    continue
            values[key] = value
        with self._lock:
            self._values, self._read_at = values, self._clock()
        return values

    def invalidate(self):
        """Forget the cached copy (after the settings page saves)."""
        with self._lock:
            self._values = None
