"""Charge run records: queue a run once, its progress in staff words, the health of the
workers that should be charging it, its items, its CSV, a rerun."""

import hashlib
import json
import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ...db import session_scope
from ...models import (ACTIVE_RUN_STATES, OPEN_ITEM_STATUSES, ChargeItem, ChargeRun,
                       ChargeWorker, ItemStatus as I, RunState, utcnow)
from ...money import format_cents
from .filters import RunFilters

log = logging.getLogger(__name__)

#: A run that no worker has touched for this long (no claim, no item done, no page of
#: invoices read) gets a warning on its page; ``[worker] alarm_after`` in config.ini.
ALARM_AFTER = 60.0

#: How a run's state reads to staff.
STATE_WORDS = {
    RunState.QUEUED: "waiting for a worker",
    RunState.EXPANDING: "reading the invoices from Splynx",
    RunState.RUNNING: "charging",
    RunState.DONE: "done",
    RunState.CANCELLED: "cancelled",
}
#: How an item's outcome reads to staff.
ITEM_WORDS = {
    I.QUEUED: "waiting",
    I.CLAIMED: "being charged",
    I.PENDING: "waiting for the gateway's answer",
    I.CHARGED: "charged",
    I.DECLINED: "declined",
    I.ERROR: "not charged (error)",
    I.SKIPPED: "skipped",
}
#: The run page's "Show" filter: key → (words, the item statuses it means).
ITEM_FILTERS = {
    "waiting": ("waiting", (I.QUEUED,)),
    "charging": ("being charged or settled", (I.CLAIMED, I.PENDING)),
    "charged": ("charged", (I.CHARGED,)),
    "declined": ("declined", (I.DECLINED,)),
    "error": ("not charged (error)", (I.ERROR,)),
    "skipped": ("skipped", (I.SKIPPED,)),
}


class RunRefused(Exception):
    """A run was not started; ``str()`` says why, ``run`` is the run in the way (if any)."""

    def __init__(self, message, run=None):
        super().__init__(message)
        self.run = run


def _active_key(period_from, period_to, filters):
    text = json.dumps([period_from.isoformat(), period_to.isoformat(), filters.as_json()],
                      sort_keys=True)
    return "period:" + hashlib.sha256(text.encode()).hexdigest()[:40]


def create_run(ctx, *, admin_id, period_from, period_to, filters, source="web",
               parent_run_id=None, summary=None, schedule_key=None, mode="due", note=None,
               with_fees=False):
    """Queue a run; raises :class:`RunRefused` when the same run is already active, or
    (an automatic run) was already made for its ``schedule_key``. ``with_fees``: each
    charge adds the card service fee of the module settings (docs/fees.md).

    The refusal comes from the database (unique ``active_key`` and ``schedule_key``), so two
    clicks, two members of staff, or two workers firing a schedule at the same instant get
    one run between them.
    """
    if schedule_key:
        key = f"auto:{schedule_key}"
    elif parent_run_id:
        key = f"rerun:{parent_run_id}"
    else:
        key = _active_key(period_from, period_to, filters)
    run = ChargeRun(state=RunState.QUEUED, active_key=key[:64], period_from=period_from,
                    period_to=period_to, filters=json.dumps(filters.as_json(), sort_keys=True),
                    parent_run_id=parent_run_id, source=source, admin_id=admin_id,
                    schedule_key=schedule_key, mode=mode, note=(note or "")[:255] or None,
                    with_fees=bool(with_fees),
                    preview_invoices=(summary or {}).get("chargeable", 0),
                    preview_total_cents=(summary or {}).get("chargeable_cents", 0))
    session = ctx.sessions()
    try:
        session.add(run)
        session.commit()
        log.info("charge run %s queued by admin %s: %s to %s %s", run.id, admin_id,
                 period_from, period_to, filters.as_json())
        return run
    except IntegrityError:
        session.rollback()
        existing = session.execute(select(ChargeRun).where(
            (ChargeRun.active_key == key[:64]) | (ChargeRun.schedule_key == schedule_key)
            if schedule_key else ChargeRun.active_key == key)).scalars().first()
        what = "these invoices" if parent_run_id else "this period with these filters"
        when = f" (run #{existing.id}, {existing.state.value})" if existing else ""
        raise RunRefused(f"A charge run for {what} is already queued or running{when}. "
                         "It was not started a second time.", existing) from None
    finally:
        session.close()


def get_run(ctx, run_id):
    with session_scope(ctx.sessions) as session:
        return session.get(ChargeRun, run_id)


def filters_of(run):
    return RunFilters.from_json(json.loads(run.filters or "{}"))


def list_runs(ctx, limit=100):
    with session_scope(ctx.sessions) as session:
        return session.execute(select(ChargeRun).order_by(ChargeRun.id.desc()).limit(limit)
                               ).scalars().all()


def counts(ctx, run_id):
    """Per item status: ``{status: {"count": n, "cents": c}}``."""
    with session_scope(ctx.sessions) as session:
        rows = session.execute(
            select(ChargeItem.status, func.count(),
                   func.coalesce(func.sum(ChargeItem.amount_cents), 0))
            .where(ChargeItem.run_id == run_id).group_by(ChargeItem.status)).all()
    out = {s: {"count": 0, "cents": 0} for s in I}
    for status, count, cents in rows:
        out[status] = {"count": int(count), "cents": int(cents)}
    return out


def progress(ctx, run_id):
    """The run's progress as JSON-ready data (the run page polls it).

    The bar (``percent``) counts the charges made — charged, declined, errors — against
    the charges to make: skipped invoices (no saved card, paid meanwhile) are counted
    apart (``skipped``), never as progress. While the invoices are still being read the
    preview's count stands in for the charges not read yet. ``warning`` is the worker
    health sentence (:func:`worker_health`) or None.
    """
    run = get_run(ctx, run_id)
    if run is None:
        return None
    c = counts(ctx, run_id)
    total = sum(v["count"] for v in c.values())
    remaining = sum(c[s]["count"] for s in OPEN_ITEM_STATUSES)
    reading = run.state in (RunState.QUEUED, RunState.EXPANDING)
    expected = max(total, run.preview_invoices) if reading else total
    made = c[I.CHARGED]["count"] + c[I.DECLINED]["count"] + c[I.ERROR]["count"]
    to_make = total - c[I.SKIPPED]["count"]
    if reading:
        to_make = max(to_make, run.preview_invoices)
    done = run.state in (RunState.DONE, RunState.CANCELLED)
    return {
        "id": run.id, "state": run.state.value, "state_words": STATE_WORDS[run.state],
        "total": expected,
        "charged": c[I.CHARGED]["count"], "charged_cents": c[I.CHARGED]["cents"],
        "charged_amount": format_cents(c[I.CHARGED]["cents"]),
        "declined": c[I.DECLINED]["count"], "errors": c[I.ERROR]["count"],
        "skipped": c[I.SKIPPED]["count"], "pending": c[I.PENDING]["count"],
        "made": made, "to_make": to_make,
        "remaining": remaining + max(0, expected - total),
        "percent": min(100, int(100 * made / to_make)) if to_make else (
            100 if run.state == RunState.DONE else 0),
        "done": done,
        "warning": None if done else worker_health(ctx, run),
    }


def alarm_after(ctx):
    """Seconds without any work on a run before its page warns (``[worker] alarm_after``)."""
    return float(ctx.settings.get("WORKER_ALARM_AFTER") or ALARM_AFTER)


def worker_health(ctx, run, now=None):
    """A sentence for staff when nothing has worked on the active ``run`` for
    :func:`alarm_after` seconds, else None.

    Work is any sign of a worker on this run: the run taken or a page of its invoices read
    (the run's ``updated_at``), an item claimed or finished. Whether a worker is running at
    all comes from the ``charge_workers`` heartbeats (every couple of seconds while it
    runs): none fresh means no worker is running; fresh ones mean they are busy elsewhere.
    """
    if run.state not in ACTIVE_RUN_STATES:
        return None
    limit = alarm_after(ctx)
    now = now or utcnow()
    with session_scope(ctx.sessions) as session:
        touched, claimed = session.execute(
            select(func.max(ChargeItem.updated_at), func.max(ChargeItem.claimed_at))
            .where(ChargeItem.run_id == run.id)).one()
        workers = session.execute(select(ChargeWorker).order_by(
            ChargeWorker.heartbeat_at.desc())).scalars().all()
    last = max(t for t in (run.created_at, run.started_at, run.updated_at, touched, claimed)
               if t is not None)
    quiet = (now - last).total_seconds()
    if quiet < limit:
        return None
    alive = [w for w in workers if (now - w.heartbeat_at).total_seconds() < limit]
    if not alive:
        seen = ""
        if workers:
            w = workers[0]
            seen = (f" The last worker seen was on {w.host} (process {w.pid}), "
                    f"{(now - w.heartbeat_at).total_seconds():.0f} s ago.")
        return (f"No worker has taken this run for {quiet:.0f} s: is splynx-ippay-worker "
                f"running?{seen} Nothing is lost: the run goes on where it stopped as soon "
                "as a worker runs.")
    hosts = ", ".join(sorted({w.host for w in alive}))
    return (f"No worker has taken this run for {quiet:.0f} s, although {len(alive)} "
            f"{'worker is' if len(alive) == 1 else 'workers are'} running ({hosts}): they "
            "are busy with older runs, or waiting for the gateway.")


def items(ctx, run_id, statuses=None, offset=0, limit=200):
    """Items of the run by id, only those with one of ``statuses`` when given."""
    with session_scope(ctx.sessions) as session:
        query = select(ChargeItem).where(ChargeItem.run_id == run_id)
        if statuses:
            query = query.where(ChargeItem.status.in_(list(statuses)))
        return session.execute(query.order_by(ChargeItem.id).offset(offset).limit(limit)
                               ).scalars().all()


#: The CSV's columns; new ones are added at the end (spreadsheets and scripts rely on them).
CSV_HEADER = ("invoice_id", "invoice_number", "customer_id", "amount", "outcome",
              "gateway_code", "gateway_text", "message", "card", "transaction_id",
              "customer_name", "charge_started_utc", "outcome_at_utc")


def _iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def csv_rows(ctx, run_id, names=None, batch=500):
    """Every item of the run as CSV rows (header first), read ``batch`` rows at a time.

    ``names(customer_ids)`` gives ``{id: Name}`` (services/directory.py) for the
    ``customer_name`` column, left empty where Splynx did not say.
    """
    yield CSV_HEADER
    last = 0
    while True:
        with session_scope(ctx.sessions) as session:
            chunk = session.execute(select(ChargeItem).where(ChargeItem.run_id == run_id,
                                                             ChargeItem.id > last)
                                    .order_by(ChargeItem.id).limit(batch)).scalars().all()
        if not chunk:
            return
        known = names({item.customer_id for item in chunk}) if names else {}
        for item in chunk:
            name = known.get(item.customer_id)
            yield (item.invoice_id, item.invoice_number or "", item.customer_id,
                   format_cents(item.amount_cents, grouped=False), item.status.value,
                   item.action_code or "", item.response_text or "", item.message or "",
                   item.masked_card or "", item.transaction_id or "",
                   (name.name if name else None) or item.customer_name or "",
                   _iso(item.claimed_at), _iso(item.updated_at))
        last = chunk[-1].id


def rerun(ctx, run_id, admin_id):
    """A new run of the declined and failed items of ``run_id`` only."""
    run = get_run(ctx, run_id)
    if run is None:
        raise RunRefused("There is no such run.")
    if run.state in ACTIVE_RUN_STATES:
        raise RunRefused("The run is still going on; rerun it when it has finished.", run)
    with session_scope(ctx.sessions) as session:
        invoice_ids = session.execute(
            select(ChargeItem.invoice_id).where(
                ChargeItem.run_id == run_id, ChargeItem.status.in_([I.DECLINED, I.ERROR]))
            .order_by(ChargeItem.invoice_id)).scalars().all()
    if not invoice_ids:
        raise RunRefused("The run has no declined or failed invoices to charge again.", run)
    filters = RunFilters.from_json(dict(filters_of(run).as_json(),
                                        invoice_ids=list(invoice_ids)))
    return create_run(ctx, admin_id=admin_id, period_from=run.period_from,
                      period_to=run.period_to, filters=filters, source="rerun",
                      parent_run_id=run.id, summary={"chargeable": len(invoice_ids)},
                      with_fees=run.with_fees)
