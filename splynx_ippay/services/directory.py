"""Who is who on the staff pages: customers, administrators and partners by name.

Names come from Splynx and are kept for a minute (one :class:`~splynx_ippay.cache.TTLCache`
per directory): customers in one search per hundred ids (``id IN (…)``), administrators and
partners in one list each. A page never waits long for them: what Splynx has not answered
within ``wait`` seconds — or at all — is shown as ``#<id>`` (the answer still fills the cache
when it comes), and a failure is remembered for ``failure_ttl`` seconds so that a Splynx that
is down costs one try, not one per page. Names are only shown, never used to decide anything.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as WaitedTooLong
from dataclasses import dataclass
from typing import Dict, Iterable, Optional

from ..cache import MISSING, TTLCache
from ..splynx import SplynxError

log = logging.getLogger(__name__)

#: Customers asked for in one search.
BATCH = 100


@dataclass(frozen=True)
class Name:
    """Someone's id and, when Splynx said it, their name; prints as the name or ``#id``."""

    id: int
    name: Optional[str] = None

    def __str__(self):
        return self.name or f"#{self.id}"

    @property
    def known(self):
        return bool(self.name)


class Directory:
    """Names of one process, shared by its threads (the web layer keeps one)."""

    def __init__(self, ttl=60.0, failure_ttl=10.0, wait=2.0, clock=time.monotonic):
        self.wait = wait
        self._names = TTLCache(ttl, max_entries=50_000, clock=clock)
        self._failed = TTLCache(failure_ttl, clock=clock)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="directory")

    # -- the three kinds --

    def customers(self, ctx, ids: Iterable[int], wait=None) -> Dict[int, Name]:
        """``{id: Name}`` of the customers ``ids`` (``#id`` for those not known in time)."""
        def load(missing):
            found = {}
            for start in range(0, len(missing), BATCH):
                for customer in ctx.splynx.find_customers(missing[start:start + BATCH]):
                    found[customer.id] = customer.name
            return found
        return self._lookup("customer", ids, load, wait)

    def administrators(self, ctx, ids: Iterable[int], wait=None) -> Dict[int, Name]:
        """``{id: Name}`` of the administrators ``ids``."""
        return self._lookup("admin", ids, lambda missing: {
            admin.id: admin.name or admin.login for admin in ctx.splynx.list_administrators()},
            wait)

    def partners(self, ctx, wait=None) -> Optional[Dict[int, Name]]:
        """Every Splynx partner by id, or None when Splynx did not say in time."""
        hit = self._names.get(("partners",))
        if hit is not MISSING:
            return hit
        found = self._ask("partners", lambda: {
            p.id: Name(p.id, p.name) for p in ctx.splynx.list_partners()}, wait)
        if found is None:
            return None
        self._names.put(("partners",), found)
        return found

    def customer(self, ctx, customer_id, wait=None) -> Name:
        return self.customers(ctx, [customer_id], wait)[customer_id]

    def administrator(self, ctx, admin_id, wait=None) -> Name:
        return self.administrators(ctx, [admin_id], wait)[admin_id]

    # -- the machinery --

    def _lookup(self, kind, ids, load, wait):
        wanted = {int(i) for i in ids if i}
        out, missing = {}, []
        for one in sorted(wanted):
            hit = self._names.get((kind, one))
            if hit is MISSING:
                missing.append(one)
            else:
                out[one] = hit
        if missing:
            def fill():
                names = load(missing)
                for one in missing:
                    # Unknown to Splynx (a deleted customer, say): "#id", kept as long.
                    self._names.put((kind, one), Name(one, names.get(one) or None))
                return True
            self._ask(kind, fill, wait)
            for one in missing:
                hit = self._names.get((kind, one))
                out[one] = Name(one) if hit is MISSING else hit
        return out

    def _ask(self, kind, job, wait):
        """Run ``job`` in the background and wait for it at most ``wait`` seconds; None when
        it failed or took longer (a failure is remembered for a few seconds)."""
        if self._failed.get(kind) is not MISSING:
            return None

        def guarded():
            try:
                return job()
            except SplynxError as exc:
                log.warning("Splynx did not give the %s names: %s", kind, exc)
                self._failed.put(kind, True)
                return None

        future = self._pool.submit(guarded)
        try:
            return future.result(timeout=self.wait if wait is None else wait)
        except WaitedTooLong:
            return None
