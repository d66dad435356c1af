"""Injected failures for client tests (ippay-protocol.md §9, §10 "Fault injection").

A fault is either queued (it hits the next ``count`` matching calls) or drawn at
random for a share of calls. Queued faults win over the random share.
"""

import random
import threading
from dataclasses import dataclass

#: Whether the gateway processes and stores the transaction before misbehaving.
#: The two timeouts are defined by it; for the others it is a per-fault choice
#: (default: only a truncated reply implies the work was done).
COMMIT_DEFAULT = {
    "timeout_commit": True,
    "timeout_no_commit": False,
    "http_500": False,
    "malformed": True,
    "empty": False,
    "echo": False,
}
KINDS = tuple(COMMIT_DEFAULT)
_FIXED_COMMIT = ("timeout_commit", "timeout_no_commit")
#: A timeout must outlast the client's read timeout; clients normally pass delay_s.
_TIMEOUT_DEFAULT_DELAY = 5.0


class FaultError(ValueError):
    """A fault specification the simulator does not accept."""


@dataclass
class Fault:
    """One failure mode: ``kind``, a ``delay_s`` before answering, the
    TransactionTypes it applies to (None = all) and whether to ``commit``."""

    kind: str
    delay_s: float
    types: frozenset = None
    count: int = 1
    commit: bool = False

    def matches(self, transaction_type):
        """Whether this fault applies to a call of ``transaction_type``."""
        return self.types is None or transaction_type in self.types

    def to_json(self):
        """The fault as the control plane shows it."""
        return {"kind": self.kind, "delay_s": self.delay_s,
                "types": sorted(self.types) if self.types is not None else None,
                "count": self.count, "commit": self.commit}


def _parse(spec, with_count=True):
    if not isinstance(spec, dict):
        raise FaultError("a fault must be a JSON object")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise FaultError(f"kind must be one of {', '.join(KINDS)}")
    default_delay = _TIMEOUT_DEFAULT_DELAY if kind.startswith("timeout") else 0.0
    delay = spec.get("delay_s", default_delay)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise FaultError("delay_s must be a non-negative number")
    types = spec.get("types")
    if types is not None:
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise FaultError("types must be a list of TransactionTypes")
        types = frozenset(types)
    count = spec.get("count", 1) if with_count else 0
    if isinstance(count, bool) or not isinstance(count, int) or (with_count and count < 1):
        raise FaultError("count must be a positive integer")
    commit = spec.get("commit", COMMIT_DEFAULT[kind])
    if not isinstance(commit, bool):
        raise FaultError("commit must be true or false")
    if kind in _FIXED_COMMIT and commit != COMMIT_DEFAULT[kind]:
        raise FaultError(f"{kind} fixes commit to {str(COMMIT_DEFAULT[kind]).lower()}")
    return Fault(kind, float(delay), types, count, commit)


class FaultPlan:
    """The queued faults and the random share, thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self.clear()

    def clear(self):
        """Drop every queued fault and the random share."""
        with self._lock:
            self._queue = []
            self._random = None
            self._rate = 0.0
            self._rng = random.Random()

    def configure(self, spec):
        """Apply a ``POST /_sim/faults`` body; return the new plan.

        ``{"clear": true}`` empties the plan first; ``{"faults": [...]}`` queues;
        ``{"rate": r, "kind": ..., "types": [...], "delay_s": ..., "seed": n}``
        sets the random share (rate 0 turns it off). Everything is validated
        before anything changes.
        """
        if not isinstance(spec, dict):
            raise FaultError("the body must be a JSON object")
        queued = spec.get("faults", [])
        if not isinstance(queued, list):
            raise FaultError("faults must be a list")
        queued = [_parse(item) for item in queued]
        random_fault, rate, seed = None, None, spec.get("seed")
        if "rate" in spec:
            rate = spec["rate"]
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise FaultError("rate must be a number from 0 to 1")
            if rate > 0:
                random_fault = _parse(spec, with_count=False)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise FaultError("seed must be an integer")
        if spec.get("clear"):
            self.clear()
        with self._lock:
            self._queue.extend(queued)
            if rate is not None:
                self._rate, self._random = float(rate), random_fault
            if seed is not None:
                self._rng.seed(seed)
        return self.snapshot()

    def pick(self, transaction_type):
        """The fault for a call of ``transaction_type`` (None if unparsable), or None."""
        with self._lock:
            for fault in self._queue:
                if fault.matches(transaction_type):
                    fault.count -= 1
                    if fault.count == 0:
                        self._queue.remove(fault)
                    return fault
            if self._random is not None and self._random.matches(transaction_type) \
                    and self._rng.random() < self._rate:
                return self._random
        return None

    def snapshot(self):
        """The plan as JSON: ``{"queued": [...], "random": {...} | null}``."""
        with self._lock:
            random_part = None
            if self._random is not None:
                random_part = {**self._random.to_json(), "rate": self._rate}
                del random_part["count"]
            return {"queued": [f.to_json() for f in self._queue], "random": random_part}
