"""The bound on a worker's gateway calls in flight, per terminal (leases.py sizes it)."""

import contextlib
import threading
import time


class NoSlot(TimeoutError):
    """No gateway slot came free before the deadline: the call was not made."""


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
        #: Per terminal, the threads waiting for a place in line (:meth:`place`).
        self._lining_up = {}
        self._placed = {}
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
            self._waiters(terminal, self._lining_up).notify_all()

    def _waiters(self, terminal, conditions=None):
        conditions = self._waiting if conditions is None else conditions
        waiting = conditions.get(terminal)
        if waiting is None:
            waiting = conditions[terminal] = threading.Condition(self._lock)
        return waiting

    def _open(self, terminal):
        return (self._busy[terminal] < self._size[terminal]
                and time.monotonic() + self.call_seconds < self._until.get(terminal, 0))

    @contextlib.contextmanager
    def turn(self, terminal):
        """Wait for a free slot on ``terminal`` and hold it for the duration of the block."""
        self._take(terminal, deadline=None)
        try:
            yield
        finally:
            self._give_back(terminal)

    @contextlib.contextmanager
    def place(self, terminal):
        """A place in line for a call on ``terminal``: yields a :class:`Place`, whose
        :meth:`Place.call` then waits for the slot itself.

        Between the two a charge commits its attempt as ``sent``, so that the commit is not
        made while a slot (a call the gateway could be answering) waits on it. At most as
        many threads hold a place as the terminal has slots: an attempt marked ``sent`` is
        never more than one round of calls away from its own.
        """
        with self._lock:
            self._known(terminal)
            lining_up = self._waiters(terminal, self._lining_up)
            while self._placed[terminal] >= max(1, self._size[terminal]):
                lining_up.wait(0.5)
            self._placed[terminal] += 1
        place = Place(self, terminal)
        try:
            yield place
        finally:
            place.leave_line()

    def _known(self, terminal):
        if terminal not in self._size:
            self._size[terminal], self._busy[terminal] = 0, 0
        self._placed.setdefault(terminal, 0)

    def _left_line(self, terminal):
        with self._lock:
            self._placed[terminal] -= 1
            self._waiters(terminal, self._lining_up).notify()

    def _take(self, terminal, deadline):
        """Wait for a slot (until ``deadline``, a ``time.monotonic()``; None: as long as it
        takes) and take it; raises :class:`NoSlot` at the deadline."""
        with self._lock:
            self._known(terminal)
            waiting = self._waiters(terminal)
            while not self._open(terminal):
                if deadline is not None and time.monotonic() >= deadline:
                    raise NoSlot(f"no gateway slot on {terminal} came free in time")
                if not self._size[terminal] and self._on_missing is not None:
                    self._lock.release()
                    try:
                        self._on_missing()
                    finally:
                        self._lock.acquire()
                    if self._open(terminal):
                        break
                pause = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                waiting.wait(max(pause, 0.001))
            self._busy[terminal] += 1
            self.peak = max(self.peak, sum(self._busy.values()))

    def _give_back(self, terminal):
        with self._lock:
            self._busy[terminal] -= 1
            self._waiters(terminal).notify()


class Place:
    """A thread's place in line for one call on a terminal (:meth:`TerminalSlots.place`)."""

    def __init__(self, slots, terminal):
        self._slots, self._terminal = slots, terminal
        self._in_line = True

    def leave_line(self):
        """Give the place up (done once the call has its slot, or without a call)."""
        if self._in_line:
            self._in_line = False
            self._slots._left_line(self._terminal)

    @contextlib.contextmanager
    def call(self, deadline=None):
        """Wait for the slot until ``deadline`` (``time.monotonic()``), hold it for the
        block; raises :class:`NoSlot`, before the block, when none came free in time."""
        self._slots._take(self._terminal, deadline)
        self.leave_line()
        try:
            yield
        finally:
            self._slots._give_back(self._terminal)
