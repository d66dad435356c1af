"""A short-lived memory of read-only answers from Splynx, for pages that are only looked at.

Entries are keyed with the customer's payment activity marker
(:func:`~splynx_ippay.services.payments.activity_marker`), so a payment made through any
worker makes the next page read Splynx again. Payments never use this: they re-read the
document from Splynx under the journal's lock.
"""

import threading
import time

#: Seconds an answer is reused (a payment made outside the add-on shows after this).
READ_TTL = 15.0
_MAX_ENTRIES = 5000


class ReadCache:
    """``get_or_load(key, loader)`` with a time limit and a size bound."""

    def __init__(self, ttl=READ_TTL, clock=time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries = {}

    def get_or_load(self, key, loader):
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[1] > now:
                return hit[0]
        value = loader()
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
                if len(self._entries) >= _MAX_ENTRIES:
                    self._entries.clear()
            self._entries[key] = (value, now + self._ttl)
        return value

    def clear(self):
        with self._lock:
            self._entries.clear()

