"""The one short-lived memory of the add-on: answers kept for a few seconds (who a session
belongs to, module settings, read-only pages), bounded in size, shared by every thread."""

import threading
import time

#: Returned by :meth:`TTLCache.get` for a key that is not (or no longer) kept.
MISSING = object()


class TTLCache:
    """``key → value`` for ``ttl`` seconds each (or a per-entry ``ttl``), at most
    ``max_entries`` entries (expired ones are dropped first when full)."""

    def __init__(self, ttl, max_entries=10000, clock=time.monotonic):
        self.ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries = {}

    def get(self, key):
        """The kept value, or :data:`MISSING`."""
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return MISSING
            if hit[1] <= now:
                del self._entries[key]
                return MISSING
            return hit[0]

    def put(self, key, value, ttl=None):
        """Keep ``value`` for ``ttl`` seconds (default: the cache's); ``ttl <= 0`` keeps
        nothing."""
        ttl = self.ttl if ttl is None else ttl
        if ttl <= 0:
            return
        now = self._clock()
        with self._lock:
            if len(self._entries) >= self._max and key not in self._entries:
                self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
                if len(self._entries) >= self._max:
                    self._entries.clear()
            self._entries[key] = (value, now + ttl)

    def get_or_load(self, key, loader, ttl=None):
        """The kept value, or ``loader()`` kept and returned (two threads may both load)."""
        value = self.get(key)
        if value is MISSING:
            value = loader()
            self.put(key, value, ttl)
        return value

    def pop(self, key):
        with self._lock:
            self._entries.pop(key, None)

    def clear(self):
        with self._lock:
            self._entries.clear()
