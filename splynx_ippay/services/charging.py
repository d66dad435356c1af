"""Charge runs: charge a period's unpaid invoices to the customers' saved cards (design.md §6).

The lifecycle of a run::

    staff confirm → queued → (a worker) expanding → running → done
                                 │ invoices read from Splynx page by page (keyset on id)
                                 ▼ one item per invoice
    item: queued → claimed → charged | declined | error | skipped
                       └──▶ pending (outcome not settled, or approved but not yet in Splynx)
                                └── claimed again later: ENQ / post, never a second SALE

Every charge goes through the journal (journal.py): one attempt per invoice, Origin
RECURRING, committed before the gateway hears of it; the item's attempt is found again by
its ``request_key`` (``charge-item:<id>``), so a worker that restarts after a crash picks
up the same attempt and settles it instead of charging again. Items are claimed row by
row with a conditional UPDATE (``WHERE status = 'queued'``), which gives each item to
exactly one worker on SQLite, MariaDB and PostgreSQL alike.
"""

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..db import session_scope
from ..models import (
    ACTIVE_RUN_STATES, OPEN_ITEM_STATUSES, AttemptKind, AttemptStatus as S, Card, ChargeItem,
    ChargeRun, ChargeWorker, ItemStatus as I, PaymentAttempt, RunState, utcnow,
)
from ..money import format_cents
from . import journal, statements
from .staff_settings import charge_concurrency

log = logging.getLogger(__name__)

_INVOICES = "admin/finance/invoices"
PAGE_SIZE = 100
#: A period longer than this is almost certainly a typo (e.g. the wrong year).
MAX_PERIOD_DAYS = 366
#: Without a heartbeat for this long a worker on another host is taken for dead.
LEASE_SECONDS = 60.0
HEARTBEAT_SECONDS = 2.0
#: How often a worker finishes portal, refill and direct-link attempts left half-way (an
#: unknown outcome, an approval Splynx did not take), as ``splynx-ippay reconcile`` does.
RECONCILE_SECONDS = 60.0


class PeriodError(ValueError):
    """The period or filters cannot be used; ``str()`` is a sentence for staff."""


class RunRefused(Exception):
    """A run was not started; ``str()`` says why, ``run`` is the run in the way (if any)."""

    def __init__(self, message, run=None):
        super().__init__(message)
        self.run = run


# --- the period and filters -------------------------------------------------------------

def parse_date(text, label):
    """A ``YYYY-MM-DD`` date typed by staff."""
    try:
        return dt.date.fromisoformat((text or "").strip())
    except ValueError:
        raise PeriodError(f"The {label} date must be a date such as 2024-06-30.") from None


def parse_request(form):
    """``(period_from, period_to, filters)`` from the charge form; raises PeriodError.

    Filters: ``customer_ids`` (comma-separated), ``partner_id``, ``min_total`` and
    ``max_total`` (amounts), all optional.
    """
    if not (form.get("date_from") or "").strip() or not (form.get("date_to") or "").strip():
        raise PeriodError("Enter the period: both the first and the last invoice date.")
    period_from = parse_date(form.get("date_from"), "first")
    period_to = parse_date(form.get("date_to"), "last")
    if period_from > period_to:
        raise PeriodError("The period starts after it ends: the first date must be on or "
                          "before the last date.")
    if (period_to - period_from).days > MAX_PERIOD_DAYS:
        raise PeriodError("The period is longer than a year; choose a shorter one.")
    filters = {}
    raw = (form.get("customer_ids") or "").replace(" ", "")
    if raw:
        parts = [p for p in raw.split(",") if p]
        if not all(p.isdigit() and int(p) > 0 for p in parts) or len(parts) > 1000:
            raise PeriodError("Customer IDs must be numbers separated by commas, e.g. 12,15,40.")
        filters["customer_ids"] = sorted({int(p) for p in parts})
    raw = (form.get("partner_id") or "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise PeriodError("The partner must be a partner ID (a number).")
        filters["partner_id"] = int(raw)
    from .staff_settings import parse_amount

    for key, label in (("min_total", "minimum"), ("max_total", "maximum")):
        raw = (form.get(key) or "").strip()
        if raw:
            cents = parse_amount(raw)
            if cents is None:
                raise PeriodError(f"The {label} total must be an amount such as 25.00.")
            filters[f"{key}_cents"] = cents
    if filters.get("min_total_cents", 0) > filters.get("max_total_cents", float("inf")):
        raise PeriodError("The minimum total is above the maximum total.")
    return period_from, period_to, filters


def _cents_text(cents):
    return f"{cents // 100}.{cents % 100:02d}"


def _search_filters(period_from, period_to, filters, after_id=0):
    """Splynx search filters for the run's unpaid invoices with ``id > after_id``."""
    attributes = {"status": "not_paid",
                  "date_created": ("BETWEEN", (period_from, period_to))}
    if after_id:
        attributes["id"] = (">", after_id)
    if filters.get("invoice_ids"):
        attributes["id"] = ("IN", [i for i in filters["invoice_ids"] if i > after_id] or [0])
    if filters.get("customer_ids"):
        attributes["customer_id"] = ("IN", filters["customer_ids"])
    low, high = filters.get("min_total_cents"), filters.get("max_total_cents")
    if low is not None and high is not None:
        attributes["total"] = ("BETWEEN", (_cents_text(low), _cents_text(high)))
    elif low is not None:
        attributes["total"] = (">=", _cents_text(low))
    elif high is not None:
        attributes["total"] = ("<=", _cents_text(high))
    return attributes


def invoice_pages(addon, period_from, period_to, filters, after_id=0, page_size=PAGE_SIZE):
    """The run's unpaid invoices, one page (a list) at a time, by ascending id.

    Keyset paging (``id > last``) rather than offsets: invoices that turn paid while the
    run goes on must not shift the pages. Only one page is in memory at a time.
    """
    from ..splynx import Invoice

    partner = filters.get("partner_id")
    partners = {}
    while True:
        records = addon.splynx.search(
            _INVOICES, main_attributes=_search_filters(period_from, period_to, filters, after_id),
            order={"id": "ASC"}, limit=page_size)
        if not records:
            return
        page = [Invoice.from_api(r) for r in records]
        after_id = page[-1].id
        if partner is not None:
            for invoice in page:
                if invoice.customer_id not in partners:
                    partners[invoice.customer_id] = addon.splynx.get_customer(
                        invoice.customer_id).partner_id
            page = [inv for inv in page if partners[inv.customer_id] == partner]
        yield after_id, [inv for inv in page if inv.due_cents > 0]
        if len(records) < page_size:
            return


def cards_of(session, customer_ids):
    """The default (else newest) saved card of each customer in ``customer_ids``."""
    rows = session.execute(
        select(Card).where(Card.customer_id.in_(list(customer_ids)))
        .order_by(Card.customer_id, Card.is_default.desc(), Card.id.desc())
    ).scalars().all()
    best = {}
    for card in rows:
        best.setdefault(card.customer_id, card)
    return best


def preview(addon, period_from, period_to, filters, list_limit=200):
    """What a run would charge: invoices, customers, total due, customers without a card.

    Streams the invoices page by page; returns a dict with ``invoices``, ``customers``,
    ``total_cents``, ``chargeable`` / ``chargeable_cents`` (customers with a card), and
    ``without_card`` (up to ``list_limit`` rows ``{customer_id, invoices, due_cents}``)
    with ``without_card_count``.
    """
    invoices = total = chargeable = chargeable_cents = 0
    customers, has_card, without = set(), {}, {}
    for _, page in invoice_pages(addon, period_from, period_to, filters):
        unknown = {inv.customer_id for inv in page} - has_card.keys()
        if unknown:
            with session_scope(addon.sessions) as session:
                found = cards_of(session, unknown)
            for cid in unknown:
                has_card[cid] = cid in found
        for inv in page:
            invoices += 1
            total += inv.due_cents
            customers.add(inv.customer_id)
            if has_card[inv.customer_id]:
                chargeable += 1
                chargeable_cents += inv.due_cents
            else:
                row = without.setdefault(inv.customer_id, {"customer_id": inv.customer_id,
                                                           "invoices": 0, "due_cents": 0})
                row["invoices"] += 1
                row["due_cents"] += inv.due_cents
    listed = sorted(without.values(), key=lambda r: r["customer_id"])
    return {"invoices": invoices, "customers": len(customers), "total_cents": total,
            "chargeable": chargeable, "chargeable_cents": chargeable_cents,
            "without_card": listed[:list_limit], "without_card_count": len(listed)}


# --- runs -------------------------------------------------------------------------------

def _active_key(period_from, period_to, filters):
    text = json.dumps([period_from.isoformat(), period_to.isoformat(), filters], sort_keys=True)
    return "period:" + hashlib.sha256(text.encode()).hexdigest()[:40]


def create_run(addon, *, admin_id, period_from, period_to, filters, source="web",
               parent_run_id=None, summary=None):
    """Queue a run; raises :class:`RunRefused` when the same run is already active.

    The refusal comes from the database (a unique ``active_key``), so two clicks or two
    members of staff at the same instant get one run between them.
    """
    key = (f"rerun:{parent_run_id}" if parent_run_id
           else _active_key(period_from, period_to, filters))
    run = ChargeRun(state=RunState.QUEUED.value, active_key=key, period_from=period_from,
                    period_to=period_to, filters=json.dumps(filters, sort_keys=True),
                    parent_run_id=parent_run_id, source=source, admin_id=admin_id,
                    preview_invoices=(summary or {}).get("chargeable", 0),
                    preview_total_cents=(summary or {}).get("chargeable_cents", 0))
    session = addon.sessions()
    try:
        session.add(run)
        session.commit()
        log.info("charge run %s queued by admin %s: %s to %s %s", run.id, admin_id,
                 period_from, period_to, filters)
        return run
    except IntegrityError:
        session.rollback()
        existing = session.execute(select(ChargeRun).where(ChargeRun.active_key == key)
                                   ).scalar_one_or_none()
        what = "these invoices" if parent_run_id else "this period with these filters"
        when = f" (run #{existing.id}, {existing.state})" if existing else ""
        raise RunRefused(f"A charge run for {what} is already queued or running{when}. "
                         "It was not started a second time.", existing) from None
    finally:
        session.close()


def get_run(addon, run_id):
    with session_scope(addon.sessions) as session:
        return session.get(ChargeRun, run_id)


def list_runs(addon, limit=100):
    with session_scope(addon.sessions) as session:
        return session.execute(select(ChargeRun).order_by(ChargeRun.id.desc()).limit(limit)
                               ).scalars().all()


def counts(addon, run_id):
    """Per outcome: ``{status: (count, cents)}`` plus ``total``/``remaining``/``done``."""
    with session_scope(addon.sessions) as session:
        rows = session.execute(
            select(ChargeItem.status, func.count(), func.coalesce(func.sum(ChargeItem.amount_cents), 0))
            .where(ChargeItem.run_id == run_id).group_by(ChargeItem.status)).all()
    out = {s.value: {"count": 0, "cents": 0} for s in I}
    for status, count, cents in rows:
        out[status] = {"count": int(count), "cents": int(cents)}
    return out


def progress(addon, run_id):
    """The run's progress as JSON-ready data (the run page polls it)."""
    run = get_run(addon, run_id)
    if run is None:
        return None
    c = counts(addon, run_id)
    total = sum(v["count"] for v in c.values())
    remaining = sum(c[s]["count"] for s in OPEN_ITEM_STATUSES)
    expected = max(total, run.preview_invoices) if run.state in (
        RunState.QUEUED.value, RunState.EXPANDING.value) else total
    finished = total - remaining
    return {
        "id": run.id, "state": run.state, "total": expected,
        "charged": c[I.CHARGED.value]["count"], "charged_cents": c[I.CHARGED.value]["cents"],
        "charged_amount": format_cents(c[I.CHARGED.value]["cents"]),
        "declined": c[I.DECLINED.value]["count"], "errors": c[I.ERROR.value]["count"],
        "skipped": c[I.SKIPPED.value]["count"], "pending": c[I.PENDING.value]["count"],
        "remaining": remaining + max(0, expected - total),
        "percent": int(100 * finished / expected) if expected else (100 if run.state == "done" else 0),
        "done": run.state in (RunState.DONE.value, RunState.CANCELLED.value),
    }


def items(addon, run_id, status=None, offset=0, limit=200):
    with session_scope(addon.sessions) as session:
        query = select(ChargeItem).where(ChargeItem.run_id == run_id)
        if status:
            query = query.where(ChargeItem.status == status)
        return session.execute(query.order_by(ChargeItem.id).offset(offset).limit(limit)
                               ).scalars().all()


CSV_HEADER = ("invoice_id", "invoice_number", "customer_id", "amount", "outcome",
              "gateway_code", "gateway_text", "message", "card", "transaction_id")


def csv_rows(addon, run_id, batch=500):
    """Every item of the run as CSV rows (header first), read ``batch`` rows at a time."""
    yield CSV_HEADER
    last = 0
    while True:
        with session_scope(addon.sessions) as session:
            chunk = session.execute(select(ChargeItem).where(ChargeItem.run_id == run_id,
                                                             ChargeItem.id > last)
                                    .order_by(ChargeItem.id).limit(batch)).scalars().all()
        if not chunk:
            return
        for item in chunk:
            yield (item.invoice_id, item.invoice_number or "", item.customer_id,
                   format_cents(item.amount_cents).replace(",", ""), item.status,
                   item.action_code or "", item.response_text or "", item.message or "",
                   item.masked_card or "", item.transaction_id or "")
        last = chunk[-1].id


def rerun(addon, run_id, admin_id):
    """A new run of the declined and failed items of ``run_id`` only."""
    run = get_run(addon, run_id)
    if run is None:
        raise RunRefused("There is no such run.")
    if run.state in ACTIVE_RUN_STATES:
        raise RunRefused("The run is still going on; rerun it when it has finished.", run)
    invoice_ids = []
    with session_scope(addon.sessions) as session:
        invoice_ids = session.execute(
            select(ChargeItem.invoice_id).where(
                ChargeItem.run_id == run_id,
                ChargeItem.status.in_([I.DECLINED.value, I.ERROR.value]))
            .order_by(ChargeItem.invoice_id)).scalars().all()
    if not invoice_ids:
        raise RunRefused("The run has no declined or failed invoices to charge again.", run)
    filters = dict(json.loads(run.filters or "{}"), invoice_ids=list(invoice_ids))
    return create_run(addon, admin_id=admin_id, period_from=run.period_from,
                      period_to=run.period_to, filters=filters, source="rerun",
                      parent_run_id=run.id, summary={"chargeable": len(invoice_ids)})


# --- the worker -------------------------------------------------------------------------

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
    each item goes to one of them by a conditional UPDATE. A worker that dies leaves its
    claimed items behind; another (or the same one restarted) takes them over once the
    dead one's process is gone (same host) or its heartbeat has stopped (``lease``), and
    finishes their attempts by ENQ or posting, never by a second SALE.
    """

    def __init__(self, addon, *, concurrency=None, run_ids=None, settle_after=None,
                 retry_after=None, lease=LEASE_SECONDS, poll=0.5, log_progress=False):
        self.addon = addon
        self.fixed_concurrency = concurrency
        self.run_ids = set(run_ids) if run_ids else None
        read_timeout = addon.settings.get("IPPAY_READ_TIMEOUT", 45)
        #: An attempt left "sent" is settled by ENQ only once the gateway can no longer be
        #: working on it (its read timeout has passed), so ENQ's answer is final.
        self.settle_after = read_timeout + 5 if settle_after is None else settle_after
        self.retry_after = 10.0 if retry_after is None else retry_after
        self.lease = lease
        self.poll = poll
        self.host = socket.gethostname()[:100]
        self.token = f"{self.host[:40]}:{os.getpid()}:{secrets.token_hex(6)}"
        self.stop_event = threading.Event()
        self._last_beat = 0.0
        self._last_check = 0.0
        self._last_reconcile = 0.0

    # -- bookkeeping --

    def _register(self):
        with session_scope(self.addon.sessions) as session:
            session.add(ChargeWorker(token=self.token, host=self.host, pid=os.getpid()))
        self._last_beat = time.monotonic()

    def _unregister(self):
        with session_scope(self.addon.sessions) as session:
            session.execute(ChargeWorker.__table__.delete().where(ChargeWorker.token == self.token))

    def _heartbeat(self):
        now = time.monotonic()
        if now - self._last_beat < HEARTBEAT_SECONDS:
            return
        self._last_beat = now
        with session_scope(self.addon.sessions) as session:
            beat = session.execute(update(ChargeWorker).where(ChargeWorker.token == self.token)
                                   .values(heartbeat_at=utcnow())).rowcount
            if beat != 1:
                # Taken for dead while stalled: the items it held went to others (its late
                # results are dropped by the claim token). Come back to life, or every item
                # it claims from now on would be taken over at once while it charges it.
                log.warning("worker %s was taken for dead; registering again", self.token)
                session.add(ChargeWorker(token=self.token, host=self.host, pid=os.getpid()))

    def _dead_tokens(self, session, tokens):
        """Which of the claim ``tokens`` belong to workers that are gone."""
        tokens = {t for t in tokens if t and t != self.token}
        if not tokens:
            return set()
        workers = {w.token: w for w in session.execute(
            select(ChargeWorker).where(ChargeWorker.token.in_(list(tokens)))).scalars()}
        stale = utcnow() - dt.timedelta(seconds=self.lease)
        dead = set()
        for token in tokens:
            worker = workers.get(token)
            if worker is None or worker.heartbeat_at < stale:
                dead.add(token)
            elif worker.host == self.host and worker.pid != os.getpid() and not _alive(worker.pid):
                # On this host a vanished process is certainly dead: no need to wait for
                # the lease (a worker restarted after a SIGKILL resumes at once).
                dead.add(token)
        if dead:
            session.execute(ChargeWorker.__table__.delete().where(
                ChargeWorker.token.in_(list(dead))))
        return dead

    def recover(self):
        """Take over items and expansions left by workers that died; returns items moved."""
        with session_scope(self.addon.sessions) as session:
            claimed = session.execute(
                select(ChargeItem.claim_token).where(ChargeItem.status == I.CLAIMED.value)
                .distinct()).scalars().all()
            expanding = session.execute(
                select(ChargeRun.claim_token).where(ChargeRun.state == RunState.EXPANDING.value)
            ).scalars().all()
            dead = self._dead_tokens(session, set(claimed) | set(expanding))
            if not dead:
                return 0
            moved = session.execute(
                update(ChargeItem).where(ChargeItem.status == I.CLAIMED.value,
                                         ChargeItem.claim_token.in_(list(dead)))
                .values(status=I.PENDING.value, claim_token=None,
                        message="The worker stopped while charging; settling by ENQ.",
                        updated_at=utcnow() - dt.timedelta(days=1))
                .execution_options(synchronize_session=False)).rowcount
            session.execute(
                update(ChargeRun).where(ChargeRun.state == RunState.EXPANDING.value,
                                        ChargeRun.claim_token.in_(list(dead)))
                .values(claim_token=None).execution_options(synchronize_session=False))
        if moved:
            log.warning("worker %s took over %s items of stopped workers", self.token, moved)
        return moved

    def _active_runs(self, session, fresh=False):
        """Active runs, re-read at most every ``poll`` seconds unless ``fresh``."""
        now = time.monotonic()
        cached = getattr(self, "_runs_cache", None)
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
        with session_scope(self.addon.sessions) as session:
            runs = [r for r in self._active_runs(session)
                    if r.state == RunState.QUEUED.value
                    or (r.state == RunState.EXPANDING.value
                        and r.claim_token in (None, self.token))]
        for run in runs:
            with session_scope(self.addon.sessions) as session:
                took = session.execute(
                    update(ChargeRun).where(
                        ChargeRun.id == run.id,
                        ChargeRun.state.in_([RunState.QUEUED.value, RunState.EXPANDING.value]),
                        (ChargeRun.claim_token.is_(None)) | (ChargeRun.claim_token == self.token))
                    .values(state=RunState.EXPANDING.value, claim_token=self.token,
                            started_at=func.coalesce(ChargeRun.started_at, utcnow()))
                    .execution_options(synchronize_session=False)).rowcount
            if took:
                self._expand_page(get_run(self.addon, run.id))
                return True
        return False

    def _expand_page(self, run):
        filters = json.loads(run.filters or "{}")
        pages = invoice_pages(self.addon, run.period_from, run.period_to, filters,
                              after_id=run.expand_offset)
        try:
            last_id, page = next(pages)
        except StopIteration:
            with session_scope(self.addon.sessions) as session:
                session.execute(update(ChargeRun).where(ChargeRun.id == run.id,
                                                        ChargeRun.claim_token == self.token)
                                .values(state=RunState.RUNNING.value, claim_token=None))
            log.info("charge run %s: every invoice read", run.id)
            return
        finally:
            pages.close()
        with session_scope(self.addon.sessions) as session:
            have = set(session.execute(select(ChargeItem.invoice_id).where(
                ChargeItem.run_id == run.id,
                ChargeItem.invoice_id.in_([inv.id for inv in page]))).scalars())
            cards = cards_of(session, {inv.customer_id for inv in page})
            for inv in page:
                if inv.id in have:
                    continue
                card = cards.get(inv.customer_id)
                item = ChargeItem(run_id=run.id, invoice_id=inv.id, invoice_number=inv.number,
                                  customer_id=inv.customer_id, amount_cents=inv.due_cents,
                                  status=I.QUEUED.value, tries=0)
                if card is None:
                    item.status, item.message = I.SKIPPED.value, "No saved card."
                session.add(item)
            session.execute(update(ChargeRun).where(ChargeRun.id == run.id)
                            .values(expand_offset=last_id))

    # -- claiming --

    def claim(self, limit):
        """Claim up to ``limit`` items (due pending ones first); returns their ids."""
        if limit <= 0:
            return []
        retry_before = utcnow() - dt.timedelta(seconds=self.retry_after)
        with session_scope(self.addon.sessions) as session:
            run_ids = [r.id for r in self._active_runs(session)
                       if r.state in (RunState.EXPANDING.value, RunState.RUNNING.value)]
            if not run_ids:
                return []
            candidates = []
            # One run at a time, so that (run_id, status) equality lets the index deliver
            # rows in id order: no sort of every queued item on each claim.
            for run_id in run_ids:
                candidates += session.execute(
                    select(ChargeItem.id, ChargeItem.status).where(
                        ChargeItem.run_id == run_id, ChargeItem.status == I.PENDING.value,
                        ChargeItem.updated_at <= retry_before)
                    .order_by(ChargeItem.id).limit(limit - len(candidates))).all()
                if len(candidates) >= limit:
                    break
            for run_id in run_ids:
                if len(candidates) >= limit:
                    break
                candidates += session.execute(
                    select(ChargeItem.id, ChargeItem.status).where(
                        ChargeItem.run_id == run_id, ChargeItem.status == I.QUEUED.value)
                    .order_by(ChargeItem.id).limit(limit - len(candidates))).all()
            won = []
            for item_id, status in candidates:
                # The conditional UPDATE is the claim: of several workers seeing the same
                # candidate, exactly one changes the row.
                if session.execute(
                        update(ChargeItem).where(ChargeItem.id == item_id,
                                                 ChargeItem.status == status)
                        .values(status=I.CLAIMED.value, claim_token=self.token,
                                claimed_at=utcnow(), tries=ChargeItem.tries + 1)
                        .execution_options(synchronize_session=False)).rowcount == 1:
                    won.append(item_id)
        return won

    def finish_runs(self):
        """Mark runs whose items are all final as done; returns how many are still active."""
        active = 0
        with session_scope(self.addon.sessions) as session:
            for run in self._active_runs(session, fresh=True):
                if run.state != RunState.RUNNING.value:
                    active += 1
                    continue
                open_items = session.execute(
                    select(func.count()).select_from(ChargeItem).where(
                        ChargeItem.run_id == run.id,
                        ChargeItem.status.in_(OPEN_ITEM_STATUSES))).scalar()
                if open_items:
                    active += 1
                    continue
                session.execute(update(ChargeRun).where(ChargeRun.id == run.id,
                                                        ChargeRun.state == RunState.RUNNING.value)
                                .values(state=RunState.DONE.value, active_key=None,
                                        finished_at=utcnow()))
                log.info("charge run %s done", run.id)
        return active

    def reconcile_leftovers(self):
        """Settle and post the other channels' attempts left half-way (journal.reconcile);
        several workers may do it at once, the journal's compare-and-set keeps it safe.
        Then write the payment statement records that failed when their payment was posted
        (any channel: a posted attempt is final, its worker is done with it)."""
        try:
            counts = journal.reconcile(self.addon)
        except Exception:  # noqa: BLE001 - a failed pass is retried next time; charging goes on
            log.exception("reconciling left-over attempts failed")
        else:
            if counts:
                log.info("reconciled left-over attempts: %s", counts)
        try:
            written = statements.complete(self.addon)
        except Exception:  # noqa: BLE001 - bookkeeping; retried next pass
            log.exception("completing payment statement records failed")
            return
        if written:
            log.info("payment statement records completed: %s", written)

    # -- the loop --

    def run(self, exit_when_idle=False, on_tick=None):
        """Work until stopped (or, with ``exit_when_idle``, until no run is active)."""
        self._register()
        concurrency = self.fixed_concurrency or charge_concurrency(self.addon)
        log.info("worker %s started, %s charges at a time", self.token, concurrency)
        # ``concurrency`` bounds the calls in flight at the gateway (the slots). Around
        # each call an item also reads its invoice, writes the journal and posts to
        # Splynx; more threads than slots let that work overlap the gateway's latency
        # without ever sending more than ``concurrency`` requests at once.
        self.slots = GatewaySlots(concurrency)
        self.addon = dataclasses.replace(self.addon,
                                         gateway=SlottedGateway(self.addon.gateway, self.slots))
        # Threads start only as items are submitted, and at most 4 × concurrency items are
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
                    if self.fixed_concurrency is None:
                        concurrency = charge_concurrency(self.addon)
                        self.slots.resize(concurrency)
                if time.monotonic() - self._last_reconcile > RECONCILE_SECONDS:
                    self._last_reconcile = time.monotonic()
                    self.reconcile_leftovers()
                expanded = self.expand_step() if len(in_flight) < 3 * concurrency else False
                # Claim in batches and keep up to one batch waiting behind the running
                # charges: fewer, larger claim transactions, and no idle thread.
                if len(in_flight) <= 3 * concurrency:
                    for item_id in self.claim(4 * concurrency - len(in_flight)):
                        in_flight.add(pool.submit(process_item, self.addon, item_id, self))
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


class GatewaySlots:
    """A resizable bound on the gateway calls in flight."""

    def __init__(self, size):
        self._cond = threading.Condition()
        self.size = size
        self.busy = 0
        self.peak = 0

    def resize(self, size):
        with self._cond:
            self.size = size
            self._cond.notify_all()

    def __enter__(self):
        with self._cond:
            while self.busy >= self.size:
                self._cond.wait()
            self.busy += 1
            self.peak = max(self.peak, self.busy)

    def __exit__(self, *exc):
        with self._cond:
            self.busy -= 1
            self._cond.notify()


class SlottedGateway:
    """The gateway client, each call holding one of the worker's slots."""

    def __init__(self, gateway, slots):
        self._gateway = gateway
        self._slots = slots

    @contextlib.contextmanager
    def turn(self):
        """Hold a slot and give the plain gateway: the journal marks an attempt sent only
        once its turn has come (journal._gateway_turn)."""
        with self._slots:
            yield self._gateway

    def __getattr__(self, name):
        attribute = getattr(self._gateway, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            with self._slots:
                return attribute(*args, **kwargs)

        return call


# --- one item ---------------------------------------------------------------------------

_ITEM_BY_ATTEMPT = {
    S.POSTED.value: I.CHARGED.value,
    S.DECLINED.value: I.DECLINED.value,
    S.FAILED.value: I.ERROR.value,
}


def _finish(addon, item_id, worker, status, message=None, attempt=None, **fields):
    values = dict(fields, status=status, claim_token=None, updated_at=utcnow())
    if message is not None:
        values["message"] = message[:255]
    if attempt is not None:
        values.update(attempt_id=attempt.id, transaction_id=attempt.transaction_id,
                      masked_card=attempt.masked_card, action_code=attempt.action_code,
                      response_text=attempt.response_text, amount_cents=attempt.amount_cents)
        if message is None:
            values["message"] = (attempt.message or "")[:255] or None
    with session_scope(addon.sessions) as session:
        session.execute(update(ChargeItem).where(ChargeItem.id == item_id,
                                                 ChargeItem.claim_token == worker.token)
                        .values(**values).execution_options(synchronize_session=False))


def _item_key(item_id):
    return f"charge-item:{item_id}"


def process_item(addon, item_id, worker):
    """Charge one claimed item, or carry its earlier attempt on; never raises."""
    try:
        _process(addon, item_id, worker)
    except Exception as exc:  # noqa: BLE001 - one item's failure must not stop the run
        log.exception("charge item %s failed", item_id)
        with session_scope(addon.sessions) as session:
            attempt = (session.execute(select(PaymentAttempt).where(
                PaymentAttempt.request_key == _item_key(item_id))).scalar_one_or_none())
        if attempt is not None and attempt.state.final:
            _record(addon, item_id, worker, attempt)
        elif attempt is not None:
            # Money may have moved: keep the item open so it is settled, not forgotten.
            _finish(addon, item_id, worker, I.PENDING.value, f"Will be retried: {exc}"[:255],
                    attempt=attempt)
        else:
            _finish(addon, item_id, worker, I.ERROR.value,
                    f"Not charged: {type(exc).__name__}: {exc}"[:255])


def _process(addon, item_id, worker):
    with session_scope(addon.sessions) as session:
        item = session.get(ChargeItem, item_id)
        run = session.get(ChargeRun, item.run_id)
        attempt = session.execute(select(PaymentAttempt).where(
            PaymentAttempt.request_key == _item_key(item_id))).scalar_one_or_none()
    if attempt is not None:
        attempt = _carry_on(addon, attempt, worker)
    else:
        attempt = _start(addon, item, run, worker)
        if attempt is None:
            return
        attempt = journal.charge(addon, attempt)
    _record(addon, item_id, worker, attempt)


def _record(addon, item_id, worker, attempt):
    status = _ITEM_BY_ATTEMPT.get(attempt.status)
    if status is None:
        note = ("Approved; recording the payment in Splynx will be retried."
                if attempt.state in (S.APPROVED, S.POST_PENDING)
                else "The gateway's answer is not known yet; it will be asked (ENQ).")
        _finish(addon, item_id, worker, I.PENDING.value, note, attempt=attempt)
    else:
        _finish(addon, item_id, worker, status, attempt=attempt)


def _start(addon, item, run, worker):
    """Check the invoice again and open the item's attempt; None when it is not charged."""
    invoice = addon.splynx.get_invoice(item.invoice_id)
    if invoice.status == "paid" or invoice.due_cents <= 0:
        _finish(addon, item.id, worker, I.SKIPPED.value, "Already paid.")
        return None
    if invoice.status != "not_paid":
        _finish(addon, item.id, worker, I.SKIPPED.value, f"The invoice is {invoice.status}.")
        return None
    with session_scope(addon.sessions) as session:
        card = cards_of(session, [item.customer_id]).get(item.customer_id)
    if card is None:
        _finish(addon, item.id, worker, I.SKIPPED.value, "No saved card.")
        return None
    if card.is_expired(addon.today()):
        _finish(addon, item.id, worker, I.SKIPPED.value,
                f"The saved card {card.masked} expired {card.expiry}.", masked_card=card.masked)
        return None
    try:
        attempt = journal.open_attempt(
            addon, kind=AttemptKind.INVOICE, customer_id=invoice.customer_id,
            amount_cents=invoice.due_cents, card=card, channel=journal.CHARGE_RUN_CHANNEL,
            document_id=invoice.id, document_number=invoice.number,
            request_key=_item_key(item.id), origin="RECURRING", admin_id=run.admin_id)
    except journal.AttemptInProgress as exc:
        _finish(addon, item.id, worker, I.SKIPPED.value,
                f"Another payment of this invoice is in progress "
                f"({exc.attempt.channel}, {exc.attempt.transaction_id}); not charged twice.")
        return None
    if attempt.status != S.CREATED.value or getattr(attempt, "reused", False):
        # The request key found an attempt made for this item before (by this worker or
        # one taken for dead that may still be sending it): carry it on.
        return _carry_on(addon, attempt, worker, record=True, item_id=item.id)
    # The item finds this attempt again by its request key; the item row itself is
    # written once, with the outcome (one write fewer per invoice).
    return attempt


def _carry_on(addon, attempt, worker, record=False, item_id=None):
    """Finish an attempt made for this item earlier (by this or a stopped worker)."""
    state = attempt.state
    age = (utcnow() - attempt.updated_at).total_seconds()
    if state == S.CREATED and age < worker.settle_after:
        pass  # its worker may be about to send it: look again later
    elif state == S.CREATED:
        # Committed but never marked sent, long ago: its worker stopped before the request
        # left. Charge it now, unless the invoice got paid meanwhile.
        invoice = addon.splynx.get_invoice(attempt.invoice_id)
        if invoice.status == "paid" or invoice.due_cents < attempt.amount_cents:
            attempt = journal.abandon(addon, attempt, "invoice changed before sending")
        else:
            attempt = journal.charge(addon, attempt)
    elif state in (S.SENT, S.UNKNOWN):
        if age >= worker.settle_after:
            attempt = journal.settle(addon, attempt)
    elif state in (S.APPROVED, S.POST_PENDING):
        attempt = journal.post(addon, attempt)
    if record:
        _record(addon, item_id, worker, attempt)
        return None
    return attempt
