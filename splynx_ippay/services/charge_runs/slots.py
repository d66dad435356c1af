"""The bound on a worker's gateway calls in flight."""

import contextlib
import threading


class GatewaySlots:
    """A resizable bound on the gateway calls in flight; :meth:`turn` holds one slot."""

    def __init__(self, size):
        self._cond = threading.Condition()
        self.size = size
        self.busy = 0
        self.peak = 0

    def resize(self, size):
        with self._cond:
            self.size = size
            self._cond.notify_all()

    @contextlib.contextmanager
    def turn(self):
        """Wait for a free slot and hold it for the duration of the block."""
        with self._cond:
            while self.busy >= self.size:
                self._cond.wait()
            self.busy += 1
            self.peak = max(self.peak, self.busy)
        try:
            yield
        finally:
            with self._cond:
                self.busy -= 1
                self._cond.notify()
