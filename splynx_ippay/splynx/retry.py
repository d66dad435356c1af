"""The one place that decides which Splynx calls are tried again (design §2).

Only reads are retried: ``GET`` and ``HEAD`` (a ``GET`` without the body) change nothing in
Splynx, so asking twice cannot book a payment twice. A ``POST``, ``PUT`` or ``DELETE`` is
never retried here, whatever went wrong: Splynx may have acted before the answer was lost,
and the journal (design §3) is what finds out and finishes such a call.

A read is tried again only when the failure says nothing about the request itself:

* no connection could be made (refused, reset, DNS, a connect timeout);
* a proxy or Splynx's front answered 502, 503 or 504 (Splynx is restarting or overloaded).

A read timeout is not retried: Splynx got the request and is slow, and asking again doubles
the wait of a caller who already waited the full read timeout. Every other status is an
answer from Splynx and stands.

The two other retries of the client are not transport retries and live with the
authentication (:mod:`.auth`): a request refused with 401 for a stale token, or a signed
request refused for its nonce, was refused before Splynx acted on it and is sent once more
with fresh credentials whatever its method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple

#: Methods that read and therefore may be repeated.
IDEMPOTENT_METHODS: FrozenSet[str] = frozenset({"GET", "HEAD"})
#: Statuses from a gateway or an overloaded server, not from the application.
TRANSIENT_STATUSES: FrozenSet[int] = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon a read is tried again.

    ``retries`` is the number of extra attempts (0 turns retrying off); ``backoff`` the
    pause before each, in seconds (the last one repeats when there are more retries than
    pauses).
    """

    retries: int = 2
    backoff: Tuple[float, ...] = (0.1, 0.3)

    def __post_init__(self):
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")
        if self.retries and not self.backoff:
            raise ValueError("backoff needs at least one pause when retrying")

    def should_retry(self, method: str, attempt: int, *, status: Optional[int] = None,
                     connection_failed: bool = False) -> bool:
        """Whether attempt number ``attempt`` (0 for the first) of ``method``, which got
        ``status`` (or made no connection at all), is to be followed by another."""
        if method.upper() not in IDEMPOTENT_METHODS or attempt >= self.retries:
            return False
        return connection_failed or status in TRANSIENT_STATUSES

    def delay(self, attempt: int) -> float:
        """The pause in seconds after attempt number ``attempt`` failed."""
        return self.backoff[min(attempt, len(self.backoff) - 1)]


#: For callers (and tests) that want every failure at once.
NO_RETRY = RetryPolicy(retries=0, backoff=())
