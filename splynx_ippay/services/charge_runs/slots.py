"""The bound on a worker's gateway calls in flight, per terminal (leases.py sizes it)."""

import contextlib
import threading
import time


class TerminalSlots:
    """Per terminal, how many gateway calls this worker may have in flight (the leases it
    holds) and until when those leases are sure to be its own; :meth:`turn` holds one slot.

    A call starts only while the leases will outlive it (``call_seconds``, the gateway's
    connect and read timeouts): a worker that cannot renew them (its database is gone, it
    was stopped for a while) stops starting calls before another worker may take them.
    """

    def __init__(self, call_seconds, on_missing=None):
        self.call_seconds = call_seconds
        #: Called (without arguments, by the waiting thread) when a call finds no lease on
        #: its terminal: the worker takes leases for it then (Worker.refresh_leases).
        self._on_missing = on_missing
        self._lock = threading.Lock()
        #: Per terminal, the threads waiting for one of its slots: a call that ends wakes
        #: one of them, not every charge thread of the worker.
        self._waiting = {}
        self._size = {}
        self._busy = {}
        self._until = {}
        #: The most calls this worker had in flight at once, all terminals together.
        self.peak = 0

    def terminals(self):
        """The terminals this worker has charged on or waits to."""
        with self._lock:
            return list(self._size)

    def busy(self, terminal):
        with self._lock:
            return self._busy.get(terminal, 0)

    def size(self, terminal):
        with self._lock:
            return self._size.get(terminal, 0)

    def grant(self, terminal, size, until):
        """``size`` calls at once on ``terminal`` while ``time.monotonic() < until``."""
        with self._lock:
            self._size[terminal] = size
            self._busy.setdefault(terminal, 0)
            self._until[terminal] = until
            self._waiters(terminal).notify_all()

    def _waiters(self, terminal):
        waiting = self._waiting.get(terminal)
        if waiting is None:
            waiting = self._waiting[terminal] = threading.Condition(self._lock)
        return waiting

    def _open(self, terminal):
        return (self._busy[terminal] < self._size[terminal]
                and time.monotonic() + self.call_seconds < self._until.get(terminal, 0))

    @contextlib.contextmanager
    def turn(self, terminal):
        """Wait for a free slot on ``terminal`` and hold it for the duration of the block."""
        with self._lock:
            if terminal not in self._size:
                self._size[terminal], self._busy[terminal] = 0, 0
            waiting = self._waiters(terminal)
            while not self._open(terminal):
                if not self._size[terminal] and self._on_missing is not None:
                    self._lock.release()
                    try:
                        self._on_missing()
                    finally:
                        self._lock.acquire()
                    if self._open(terminal):
                        break
                waiting.wait(0.5)
            self._busy[terminal] += 1
            self.peak = max(self.peak, sum(self._busy.values()))
        try:
            yield
        finally:
            with self._lock:
                self._busy[terminal] -= 1
                waiting.notify()
