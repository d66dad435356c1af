"""The simulator's calendar: real dates, or dates moved on by tests (expiry checks, ACH returns).

A scenario over 90 days must not wait 90 days: ``POST /_sim/clock`` moves the
simulator's today forwards (or sets it) while everything else keeps running on
real time. Only *dates* are simulated; timestamps in the ledger stay real.
"""

import datetime
import threading


class ClockError(ValueError):
    """A clock change the simulator does not accept."""


class Clock:
    """Today's date as the simulator sees it: the real date plus an offset in days."""

    def __init__(self):
        self._lock = threading.Lock()
        self._offset = 0

    def today(self):
        """The simulated date."""
        with self._lock:
            return datetime.date.today() + datetime.timedelta(days=self._offset)

    def change(self, spec):
        """Apply a ``POST /_sim/clock`` body: ``{"advance_days": n}`` (n >= 0) or
        ``{"today": "YYYY-MM-DD"}``; return :meth:`snapshot`."""
        if not isinstance(spec, dict) or len(spec.keys() & {"advance_days", "today"}) != 1:
            raise ClockError('send {"advance_days": n} or {"today": "YYYY-MM-DD"}')
        if "advance_days" in spec:
            days = spec["advance_days"]
            if isinstance(days, bool) or not isinstance(days, int) or days < 0:
                raise ClockError("advance_days must be a non-negative integer (time does not go back)")
            with self._lock:
                self._offset += days
        else:
            try:
                wanted = datetime.date.fromisoformat(spec["today"])
            except (TypeError, ValueError):
                raise ClockError("today must be a date YYYY-MM-DD") from None
            with self._lock:
                self._offset = (wanted - datetime.date.today()).days
        return self.snapshot()

    def reset(self):
        """Back to the real date."""
        with self._lock:
            self._offset = 0

    def snapshot(self):
        """``{"today": "YYYY-MM-DD", "offset_days": n}``."""
        today = self.today()
        with self._lock:
            return {"today": today.isoformat(), "offset_days": self._offset}
