"""Gateway calls in flight per terminal, and the most there ever were at once (not part of
IPpay; ``GET /_sim/stats``).

A terminal's concurrency budget is shared by every worker on every host (design.md §6):
the simulator is the one place that sees all of their calls at once, so it is where a test
measures whether they kept to it. A call is in flight from the moment its document is read
until its reply is ready, latency and fault delays included.
"""

import contextlib
import threading


class InFlight:
    """Per-terminal counters of gateway calls: in flight now, the peak, and the total."""

    def __init__(self):
        self._lock = threading.Lock()
        self._now, self._peak, self._calls = {}, {}, {}

    def reset(self):
        """Forget the peaks and totals; the peak starts again from the calls in flight now
        (which are still counted down when they end)."""
        with self._lock:
            self._peak = {terminal: n for terminal, n in self._now.items() if n}
            self._calls = {}

    @contextlib.contextmanager
    def call(self, terminal):
        """Count one call to ``terminal`` for the duration of the block (a request without
        a TerminalID, or one that could not be parsed, is not counted)."""
        if not terminal:
            yield
            return
        with self._lock:
            now = self._now.get(terminal, 0) + 1
            self._now[terminal] = now
            self._peak[terminal] = max(self._peak.get(terminal, 0), now)
            self._calls[terminal] = self._calls.get(terminal, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._now[terminal] -= 1

    def snapshot(self):
        """``{"terminals": {terminal_id: {"in_flight", "peak_in_flight", "calls"}}}``."""
        with self._lock:
            names = sorted(set(self._peak) | set(self._calls))
            return {"terminals": {name: {"in_flight": self._now.get(name, 0),
                                         "peak_in_flight": self._peak.get(name, 0),
                                         "calls": self._calls.get(name, 0)}
                                  for name in names}}
