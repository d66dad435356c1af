"""The charge worker: claims charge-run items from the database and charges them.

Items are claimed row by row with a conditional UPDATE (``WHERE status = 'queued'``), which
gives each item to exactly one worker on SQLite, MariaDB and PostgreSQL alike; several
workers on several hosts may share one database. A worker that dies leaves its claimed
items behind; another (or the same one restarted) takes them over and finishes their
attempts by ENQ or posting, never by a second SALE (items.carry_on).
"""

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from sqlalchemy import bindparam, func, select, update

from ...db import session_scope
from ...models import (ACTIVE_RUN_STATES, OPEN_ITEM_STATUSES, ChargeItem, ChargeRun,
                       ChargeWorker, GatewayLease, ItemStatus as I, RunState, utcnow)
from .. import journal, refunds, statements
from ..cards import default_cards
from . import leases
from .items import no_card_reason, process_item, target_key
from .runs import filters_of, get_run
from .selection import invoice_pages
from .slots import TerminalSlots

log = logging.getLogger(__name__)

_ITEMS = ChargeItem.__table__
#: Claims a batch of items that are still in ``from_status`` (statements built once: see
#: models._conditional_update).
_CLAIM = _ITEMS.update().where(
    _ITEMS.c.id.in_(bindparam("ids", expanding=True)),
    _ITEMS.c.status == bindparam("from_status")).values(
    status=I.CLAIMED, claim_token=bindparam("holder"), claimed_at=bindparam("now"),
    tries=_ITEMS.c.tries + 1)
_CLAIMED = select(_ITEMS.c.id).where(_ITEMS.c.id.in_(bindparam("ids", expanding=True)),
                                     _ITEMS.c.claim_token == bindparam("holder"),
                                     _ITEMS.c.status == I.CLAIMED)
_PENDING_DUE = (select(_ITEMS.c.id, _ITEMS.c.status)
                .where(_ITEMS.c.run_id == bindparam("run_id"), _ITEMS.c.status == I.PENDING,
                       _ITEMS.c.updated_at <= bindparam("before"))
                .order_by(_ITEMS.c.id).limit(bindparam("n")))
_QUEUED = (select(_ITEMS.c.id, _ITEMS.c.status)
           .where(_ITEMS.c.run_id == bindparam("run_id"), _ITEMS.c.status == I.QUEUED)
           .order_by(_ITEMS.c.id).limit(bindparam("n")))

#: Without a heartbeat for this long a worker on another host is taken for dead.
LEASE_SECONDS = 60.0
HEARTBEAT_SECONDS = 2.0
#: How far two hosts' clocks may disagree: a lease is taken for lost this much before the
#: expiry written in the database (which another host reads on its own clock).
CLOCK_SKEW_SECONDS = 5.0
#: How often a worker looks whether an automatic run is due (services/autopay.py).
AUTOPAY_SECONDS = 30.0
#: How often a worker finishes portal, refill and direct-link attempts and refunds left
#: half-way (an unknown outcome, an approval Splynx did not take), as ``splynx-ippay
#: reconcile`` does.
RECONCILE_SECONDS = 60.0


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Worker:
    """Claims charge items from the database and charges them, ``concurrency`` at a time.

    Several workers (processes, hosts) may share one MariaDB or PostgreSQL database:
    each item goes to one of them by a conditional UPDATE, and they share each terminal's
    concurrency budget (the module setting ``charge_concurrency``) through leases
    (leases.py); ``concurrency`` caps this worker's own share. A worker that dies leaves its
    claimed items behind; another (or the same one restarted) takes them over once the
    dead one's process is gone (same host) or its heartbeat has stopped (``lease``), and
    finishes their attempts by ENQ or posting, never by a second SALE.
    """

    def __init__(self, ctx, *, concurrency=None, run_ids=None, settle_after=None,
                 retry_after=None, lease=LEASE_SECONDS, poll=0.5, automatic=None):
        self.ctx = ctx
        #: This worker's cap on its share of a terminal's budget (``--concurrency``).
        self.fixed_concurrency = concurrency
        self.run_ids = set(run_ids) if run_ids else None
        read_timeout = ctx.settings.get("IPPAY_READ_TIMEOUT", 45)
        #: An attempt left "sent" is settled by ENQ only once the gateway can no longer be
        #: working on it (its read timeout has passed), so ENQ's answer is final.
        self.settle_after = read_timeout + 5 if settle_after is None else settle_after
        self.retry_after = 10.0 if retry_after is None else retry_after
        self.lease = lease
        self.poll = poll
        self.host = socket.gethostname()[:100]
        self.token = f"{self.host[:40]}:{os.getpid()}:{secrets.token_hex(6)}"
        self.stop_event = threading.Event()
        # A gateway call lasts at most its connect and read timeouts; leases must outlive
        # one started just before a renewal, with heartbeats to spare.
        call_seconds = ctx.settings.get("IPPAY_CONNECT_TIMEOUT", 10) + read_timeout
        self.lease_ttl = max(lease, call_seconds + 3 * HEARTBEAT_SECONDS + CLOCK_SKEW_SECONDS)
        #: Bounds the gateway calls in flight, per terminal, by the leases held.
        self.slots = TerminalSlots(call_seconds, on_missing=self._refresh_soon)
        self._leases_lock = threading.Lock()
        self._last_leases = 0.0
        #: This worker's share of the budget, as last computed (sizes its claims).
        self.share = concurrency or 1
        #: Whether this worker fires autopay schedules (not one started for given runs).
        self.automatic = run_ids is None if automatic is None else automatic
        self._last_autopay = -AUTOPAY_SECONDS
        self._housekeeping_day = None
        self._runs_cache = None
        self._last_beat = 0.0
        self._last_check = 0.0
        self._last_reconcile = 0.0

    def _budget(self):
        self.ctx.module_settings.follow_changes()
        return self.ctx.module_settings.current().charge_concurrency

    def refresh_leases(self):
        """Renew this worker's leases on every terminal it charges on, and bring them to
        its fair share of each terminal's budget (leases.py). A failure is logged: the
        leases then run out and calls stop starting before anyone else may take them."""
        with self._leases_lock:
            self._last_leases = time.monotonic()
            self._refresh_leases()

    def _refresh_soon(self):
        """A charge waits on a terminal with no lease: take leases now, unless just done
        (every waiting thread asks)."""
        if time.monotonic() - self._last_leases >= 0.5:
            self.refresh_leases()

    def _refresh_leases(self):
        try:
            budget = self._budget()
            self.share = leases.fair_share(self.ctx, budget, self.lease,
                                           cap=self.fixed_concurrency)
            for terminal in self.slots.terminals():
                started = time.monotonic()
                held = leases.hold(self.ctx, self.token, leases.terminal_key(terminal),
                                   budget=budget, share=self.share,
                                   busy=self.slots.busy(terminal), ttl_seconds=self.lease_ttl)
                self.slots.grant(terminal, min(held, self.share),
                                 started + self.lease_ttl - CLOCK_SKEW_SECONDS)
        except Exception:  # noqa: BLE001 - retried at the next heartbeat
            log.exception("worker %s could not renew its gateway leases", self.token)

    # -- bookkeeping --

    def _register(self):
        with session_scope(self.ctx.sessions) as session:
            session.add(ChargeWorker(token=self.token, host=self.host, pid=os.getpid()))
        self._last_beat = time.monotonic()

    def _unregister(self):
        leases.release(self.ctx, self.token)
        with session_scope(self.ctx.sessions) as session:
            session.execute(ChargeWorker.__table__.delete().where(ChargeWorker.token == self.token))

    def _heartbeat(self):
        now = time.monotonic()
        if now - self._last_beat < HEARTBEAT_SECONDS:
            return
        self._last_beat = now
        with session_scope(self.ctx.sessions) as session:
            beat = session.execute(update(ChargeWorker).where(ChargeWorker.token == self.token)
                                   .values(heartbeat_at=utcnow())).rowcount
            if beat != 1:
                # Taken for dead while stalled: the items it held went to others (its late
                # results are dropped by the claim token). Come back to life, or every item
                # it claims from now on would be taken over at once while it charges it.
                log.warning("worker %s was taken for dead; registering again", self.token)
                session.add(ChargeWorker(token=self.token, host=self.host, pid=os.getpid()))

    def _dead_tokens(self, session, tokens):
        """Which of the ``tokens`` (of claims, expansions, leases) belong to workers that
        are gone: ``(dead, gone)``, where ``gone`` are those certainly not running any more
        (their process vanished on this host), the others having missed their heartbeat."""
        tokens = {t for t in tokens if t and t != self.token}
        if not tokens:
            return set(), set()
        workers = {w.token: w for w in session.execute(
            select(ChargeWorker).where(ChargeWorker.token.in_(list(tokens)))).scalars()}
        stale = utcnow() - dt.timedelta(seconds=self.lease)
        dead, gone = set(), set()
        for token in tokens:
            worker = workers.get(token)
            if worker is not None and worker.host == self.host \
                    and worker.pid != os.getpid() and not _alive(worker.pid):
                # On this host a vanished process is certainly dead: no need to wait for
                # the lease (a worker restarted after a SIGKILL resumes at once).
                dead.add(token)
                gone.add(token)
            elif worker is None or worker.heartbeat_at < stale:
                dead.add(token)
        if dead:
            session.execute(ChargeWorker.__table__.delete().where(
                ChargeWorker.token.in_(list(dead))))
        return dead, gone

    def recover(self):
        """Take over items and expansions left by workers that died; returns items moved."""
        with session_scope(self.ctx.sessions) as session:
            claimed = session.execute(
                select(ChargeItem.claim_token).where(ChargeItem.status == I.CLAIMED)
                .distinct()).scalars().all()
            expanding = session.execute(
                select(ChargeRun.claim_token).where(ChargeRun.state == RunState.EXPANDING)
            ).scalars().all()
            holders = session.execute(select(GatewayLease.holder).where(
                GatewayLease.holder.is_not(None)).distinct()).scalars().all()
            dead, gone = self._dead_tokens(session, set(claimed) | set(expanding) | set(holders))
            if gone:
                # Nothing of a vanished process is in flight: its share of the terminal's
                # budget comes back now, not when its leases expire.
                session.execute(update(GatewayLease).where(GatewayLease.holder.in_(list(gone)))
                                .values(holder=None, expires_at=None)
                                .execution_options(synchronize_session=False))
            if not dead:
                return 0
            moved = session.execute(
                update(ChargeItem).where(ChargeItem.status == I.CLAIMED,
                                         ChargeItem.claim_token.in_(list(dead)))
                .values(status=I.PENDING, claim_token=None,
                        message="The worker stopped while charging; settling by ENQ.",
                        updated_at=utcnow() - dt.timedelta(days=1))
                .execution_options(synchronize_session=False)).rowcount
            session.execute(
                update(ChargeRun).where(ChargeRun.state == RunState.EXPANDING,
                                        ChargeRun.claim_token.in_(list(dead)))
                .values(claim_token=None).execution_options(synchronize_session=False))
        if moved:
            log.warning("worker %s took over %s items of stopped workers", self.token, moved)
        return moved

    def _active_runs(self, session, fresh=False):
        """Active runs, re-read at most every ``poll`` seconds unless ``fresh``."""
        now = time.monotonic()
        cached = self._runs_cache
        if not fresh and cached and now - cached[0] < self.poll:
            return cached[1]
        query = select(ChargeRun).where(ChargeRun.state.in_(ACTIVE_RUN_STATES))
        if self.run_ids is not None:
            query = query.where(ChargeRun.id.in_(list(self.run_ids)))
        runs = session.execute(query.order_by(ChargeRun.id)).scalars().all()
        self._runs_cache = (now, runs)
        return runs

    # -- expansion --

    def expand_step(self):
        """Read one page of invoices into items for a run that needs it; True if it did."""
        with session_scope(self.ctx.sessions) as session:
            runs = [r for r in self._active_runs(session)
                    if r.state == RunState.QUEUED
                    or (r.state == RunState.EXPANDING
                        and r.claim_token in (None, self.token))]
        for run in runs:
            with session_scope(self.ctx.sessions) as session:
                took = session.execute(
                    update(ChargeRun).where(
                        ChargeRun.id == run.id,
                        ChargeRun.state.in_([RunState.QUEUED, RunState.EXPANDING]),
                        (ChargeRun.claim_token.is_(None)) | (ChargeRun.claim_token == self.token))
                    .values(state=RunState.EXPANDING, claim_token=self.token,
                            started_at=func.coalesce(ChargeRun.started_at, utcnow()))
                    .execution_options(synchronize_session=False)).rowcount
            if took:
                self._expand_page(get_run(self.ctx, run.id))
                return True
        return False

    def _expand_page(self, run):
        filters = filters_of(run)
        pages = invoice_pages(self.ctx, run.period_from, run.period_to, filters,
                              after_id=run.expand_offset)
        try:
            last_id, page = next(pages)
        except StopIteration:
            with session_scope(self.ctx.sessions) as session:
                session.execute(update(ChargeRun).where(ChargeRun.id == run.id,
                                                        ChargeRun.claim_token == self.token)
                                .values(state=RunState.RUNNING, claim_token=None))
            log.info("charge run %s: every invoice read", run.id)
            return
        finally:
            pages.close()
        balance = run.mode == "balance"
        with session_scope(self.ctx.sessions) as session:
            keys = {inv.id: target_key(run, inv) for inv in page}
            have = set(session.execute(select(ChargeItem.target_key).where(
                ChargeItem.run_id == run.id,
                ChargeItem.target_key.in_(list(set(keys.values()))))).scalars())
            cards = default_cards(session, {inv.customer_id for inv in page})
            rows, now = [], utcnow()
            for inv in page:
                if keys[inv.id] in have:
                    continue
                have.add(keys[inv.id])
                skipped = cards.get(inv.customer_id) is None
                rows.append(dict(run_id=run.id, target_key=keys[inv.id],
                                 invoice_id=None if balance else inv.id,
                                 invoice_number=None if balance else inv.number,
                                 customer_id=inv.customer_id, amount_cents=inv.due_cents,
                                 status=I.SKIPPED if skipped else I.QUEUED, tries=0,
                                 message=no_card_reason(session, inv.customer_id)
                                 if skipped else None, updated_at=now))
            if rows:
                # One statement for the page (ORM objects would be inserted one by one).
                session.execute(_ITEMS.insert(), rows)
            session.execute(update(ChargeRun).where(ChargeRun.id == run.id)
                            .values(expand_offset=last_id))

    # -- claiming --

    def claim(self, limit):
        """Claim up to ``limit`` items (due pending ones first); returns their ids."""
        if limit <= 0:
            return []
        retry_before = utcnow() - dt.timedelta(seconds=self.retry_after)
        with session_scope(self.ctx.sessions) as session:
            run_ids = [r.id for r in self._active_runs(session)
                       if r.state in (RunState.EXPANDING, RunState.RUNNING)]
            if not run_ids:
                return []
            candidates = []
            # One run at a time, so that (run_id, status) equality lets the index deliver
            # rows in id order: no sort of every queued item on each claim.
            for run_id in run_ids:
                candidates += session.execute(_PENDING_DUE, {
                    "run_id": run_id, "before": retry_before,
                    "n": limit - len(candidates)}).all()
                if len(candidates) >= limit:
                    break
            for run_id in run_ids:
                if len(candidates) >= limit:
                    break
                candidates += session.execute(_QUEUED, {
                    "run_id": run_id, "n": limit - len(candidates)}).all()
            if not candidates:
                return []
            # The conditional UPDATE is the claim: of several workers seeing the same
            # candidate, exactly one changes the row. One statement per status claims the
            # whole batch; reading back which rows carry this worker's token tells which
            # it won (a candidate cannot have been this worker's already: it was free).
            by_status = {}
            for item_id, status in candidates:
                by_status.setdefault(status, []).append(item_id)
            now = utcnow()
            for status, ids in by_status.items():
                session.execute(_CLAIM, {"ids": ids, "from_status": status,
                                         "holder": self.token, "now": now})
            won = set(session.execute(_CLAIMED, {"ids": [c[0] for c in candidates],
                                                 "holder": self.token}).scalars())
        return [item_id for item_id, _ in candidates if item_id in won]

    def finish_runs(self):
        """Mark runs whose items are all final as done; returns how many are still active."""
        active, finished = 0, []
        with session_scope(self.ctx.sessions) as session:
            for run in self._active_runs(session, fresh=True):
                if run.state != RunState.RUNNING:
                    active += 1
                    continue
                open_items = session.execute(
                    select(func.count()).select_from(ChargeItem).where(
                        ChargeItem.run_id == run.id,
                        ChargeItem.status.in_(OPEN_ITEM_STATUSES))).scalar()
                if open_items:
                    active += 1
                    continue
                if session.execute(update(ChargeRun).where(ChargeRun.id == run.id,
                                                           ChargeRun.state == RunState.RUNNING)
                                   .values(state=RunState.DONE, active_key=None,
                                           finished_at=utcnow())).rowcount == 1:
                    log.info("charge run %s done", run.id)
                    finished.append(run.id)
        # Told by the worker that finished the run, after the commit: once, and about
        # every item's final outcome.
        for run_id in finished:
            self._tell_staff(run_id)
        return active

    def _tell_staff(self, run_id):
        from .. import autopay

        try:
            with session_scope(self.ctx.sessions) as session:
                run = session.get(ChargeRun, run_id)
            autopay.tell_staff(self.ctx, run)
        except Exception:  # noqa: BLE001 - a summary is never worth stopping the charges
            log.exception("the summary of charge run %s was not queued", run_id)

    def collect(self):
        """Queue the automatic runs that are due (autopay schedules, the day's retries), send
        the queued e-mails, and once a day queue the expiring-card notices and reminders and
        reconcile with the gateway and Splynx (services/reconciliation.py). Failures are
        logged and tried again at the next pass (the day's steps the next day), never
        stopping the charges."""
        from .. import autopay, notices, reconciliation

        today = self.ctx.today()
        steps = [("queueing automatic runs", lambda: autopay.fire(self.ctx))]
        if self._housekeeping_day != today:
            # Once a day per worker (each is written once however many workers do it).
            self._housekeeping_day = today
            steps += [("expiring-card notices", lambda: notices.expiring_cards(self.ctx)),
                      ("reminders", lambda: autopay.remind(self.ctx, today)),
                      ("the daily reconciliation", lambda: reconciliation.run(self.ctx, today))]
        steps.append(("sending mail", lambda: notices.send_due(self.ctx)))
        for what, step in steps:
            try:
                step()
            except Exception:  # noqa: BLE001 - tried again next pass
                log.exception("%s failed", what)

    def reconcile_leftovers(self):
        """Finish what other channels left half-way: attempts (settle by ENQ, post), refunds
        and voids, and the payment statement records that failed when their payment was
        posted. Several workers may do it at once: every step is a compare-and-set."""
        passes = (("left-over attempts", lambda: journal.reconcile(self.ctx)),
                  ("left-over refunds", lambda: refunds.reconcile(
                      self.ctx, min_age_seconds=self.settle_after)),
                  ("payment statement records", lambda: statements.complete(self.ctx)))
        for what, step in passes:
            try:
                counts = step()
            except Exception:  # noqa: BLE001 - a failed pass is retried next time
                log.exception("reconciling %s failed", what)
                continue
            if counts:
                log.info("reconciled %s: %s", what, counts)

    # -- the loop --

    def run(self, exit_when_idle=False, on_tick=None):
        """Work until stopped (or, with ``exit_when_idle``, until no run is active)."""
        self._register()
        self.refresh_leases()
        log.info("worker %s started, %s charges at a time", self.token, self.share)
        # The share bounds the calls in flight at the gateway (the slots). Around each
        # call an item also reads its invoice, writes the journal and posts to Splynx;
        # more threads than slots let that work overlap the gateway's latency without ever
        # sending more requests at once than the leases allow.
        concurrency = self.share
        # Threads start only as items are submitted, and at most 6 × concurrency items are
        # in flight, so a generous cap lets the concurrency setting grow while running.
        pool = ThreadPoolExecutor(max_workers=128, thread_name_prefix="charge")
        in_flight = set()
        try:
            self.recover()
            while not self.stop_event.is_set():
                self._heartbeat()
                if time.monotonic() - self._last_check > HEARTBEAT_SECONDS:
                    self._last_check = time.monotonic()
                    self.recover()
                    self.refresh_leases()
                concurrency = self.share
                if time.monotonic() - self._last_reconcile > RECONCILE_SECONDS:
                    self._last_reconcile = time.monotonic()
                    self.reconcile_leftovers()
                if self.automatic and time.monotonic() - self._last_autopay > AUTOPAY_SECONDS:
                    self._last_autopay = time.monotonic()
                    self.collect()
                expanded = self.expand_step() if len(in_flight) < 5 * concurrency else False
                # Claim in batches and keep up to one batch waiting behind the running
                # charges: fewer, larger claim transactions, and no idle thread.
                if len(in_flight) <= 5 * concurrency:
                    for item_id in self.claim(6 * concurrency - len(in_flight)):
                        in_flight.add(pool.submit(process_item, self.ctx, item_id, self))
                if on_tick:
                    on_tick()
                if in_flight:
                    done, in_flight = wait(in_flight, timeout=self.poll,
                                           return_when=FIRST_COMPLETED)
                    for future in done:
                        if future.exception():
                            log.error("charge item failed unexpectedly: %r", future.exception())
                    continue
                if expanded:
                    continue
                active = self.finish_runs()
                if exit_when_idle and not active:
                    break
                self.stop_event.wait(self.poll)
        finally:
            for future in in_flight:
                future.result()
            pool.shutdown(wait=True)
            self.finish_runs()
            self._unregister()
            log.info("worker %s stopped", self.token)
