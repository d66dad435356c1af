"""Autopay: charge runs that start by themselves, from schedules relative to an invoice's issue
or due date (as Splynx core's auto-charge filters), and the daily retry run of soft declines.

**Schedules** are module settings (``autopay_schedules``, a JSON list edited on the staff
settings page): which invoices (``issue_day``, ``after_issue`` N days, ``before_due`` N,
``due_day``, ``after_due`` N; a total range; a partner; customer statuses), the time of day,
and the mode — each invoice's amount ``due``, or each customer's whole outstanding
``balance`` (Splynx's two kinds of charge handler).

**Where they fire** [decision]: in the charge worker (``splynx-ippay worker``), not a systemd
timer. The worker already runs on every host with the database, a heartbeat and the clock;
a timer would start a process that does the same guarded thing. ``splynx-ippay autopay``
fires them by hand (or from cron, if an ISP wants). Whoever fires, a run is created with
``schedule_key = <schedule>:<day>`` under a unique index: a schedule runs once a day however
many workers, hosts or commands try, and after downtime the days missed within
``autopay_catch_up_days`` are caught up (older ones are not: a charge a week late surprises
a customer more than it helps). Only days since the schedule last ran are caught up: a new
schedule starts on the day it is added.

Every automatic charge is a charge-run item, so the journal's guarded path (journal.charge)
applies: an invoice paid meanwhile is skipped, never charged twice.
"""

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass
from typing import Optional, Tuple

from sqlalchemy import func, select

from ..db import session_scope
from ..ippay.codes import decline_category
from ..models import (Card, CaseState, ChargeItem, ChargeRun, CollectionCase, CustomerPrefs,
                      ItemStatus)
from ..money import AmountError, parse_amount
from . import dunning, notices, reconciliation
from .cards import debitable
from .charge_runs import runs
from .charge_runs.selection import invoice_pages
from .charge_runs.filters import MAX_PERIOD_DAYS, RunFilters

log = logging.getLogger(__name__)

#: What each trigger means, as (the invoice date it is about, days to add to the run's day).
TRIGGERS = {
    "issue_day": ("date_created", 0),
    "after_issue": ("date_created", -1),
    "before_due": ("date_till", +1),
    "due_day": ("date_till", 0),
    "after_due": ("date_till", -1),
}
TRIGGER_WORDS = {"issue_day": "on the day of issue", "after_issue": "{days} days after issue",
                 "before_due": "{days} days before the due date", "due_day": "on the due date",
                 "after_due": "{days} days after the due date"}
MODES = {"due": "each invoice's amount due", "balance": "the customer's whole outstanding balance"}
CUSTOMER_STATUSES = ("new", "active", "blocked", "disabled")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}", re.ASCII)


class ScheduleError(ValueError):
    """A schedule cannot be used; ``str()`` says why in staff words."""


@dataclass(frozen=True)
class Schedule:
    """One autopay schedule (module setting ``autopay_schedules``)."""

    id: str
    name: str
    trigger: str
    days: int = 0
    at: dt.time = dt.time(23, 59)
    mode: str = "due"
    enabled: bool = True
    min_total_cents: Optional[int] = None
    max_total_cents: Optional[int] = None
    partner_id: Optional[int] = None
    statuses: Tuple[str, ...] = ("active",)

    def invoice_date(self, day):
        """The invoice date (issue or due) a run on ``day`` is about."""
        _, sign = TRIGGERS[self.trigger]
        return day + dt.timedelta(days=sign * self.days) if sign else day

    def filters(self):
        field, _ = TRIGGERS[self.trigger]
        return RunFilters(partner_id=self.partner_id, min_total_cents=self.min_total_cents,
                          max_total_cents=self.max_total_cents, date_field=field,
                          customer_statuses=self.statuses)

    def describe(self):
        when = TRIGGER_WORDS[self.trigger].format(days=self.days)
        return f"{self.name}: {when} at {self.at:%H:%M}, {MODES[self.mode]}"

    def as_json(self):
        return {"id": self.id, "name": self.name, "trigger": self.trigger, "days": self.days,
                "at": f"{self.at:%H:%M}", "mode": self.mode, "enabled": self.enabled,
                "min_total": None if self.min_total_cents is None
                else f"{self.min_total_cents / 100:.2f}",
                "max_total": None if self.max_total_cents is None
                else f"{self.max_total_cents / 100:.2f}",
                "partner_id": self.partner_id, "statuses": list(self.statuses)}


def parse_schedule(data):
    """A :class:`Schedule` from its stored (or typed) form; raises ScheduleError."""
    if not isinstance(data, dict):
        raise ScheduleError("A schedule must be a set of fields.")
    sid = str(data.get("id") or "").strip().lower()
    if not _ID.fullmatch(sid):
        raise ScheduleError("A schedule's id is 1 to 40 lower-case letters, digits, - or _.")
    if sid == "retry":
        raise ScheduleError("The id retry is the retry run's own; choose another.")
    name = str(data.get("name") or sid).strip()[:80]
    trigger = str(data.get("trigger") or "")
    if trigger not in TRIGGERS:
        raise ScheduleError(f"Schedule {name}: choose when it charges (" +
                            ", ".join(TRIGGERS) + ").")
    try:
        days = int(data.get("days") or 0)
    except (TypeError, ValueError):
        raise ScheduleError(f"Schedule {name}: the number of days must be a whole number.") \
            from None
    if trigger in ("issue_day", "due_day"):
        days = 0
    elif not 1 <= days <= 60:
        raise ScheduleError(f"Schedule {name}: the number of days must be from 1 to 60.")
    try:
        at = dt.time.fromisoformat(str(data.get("at") or "23:59"))
    except ValueError:
        raise ScheduleError(f"Schedule {name}: the time of day must be HH:MM, e.g. 06:30.") \
            from None
    mode = str(data.get("mode") or "due")
    if mode not in MODES:
        raise ScheduleError(f"Schedule {name}: the mode must be due or balance.")
    totals = []
    for key in ("min_total", "max_total"):
        raw = data.get(key)
        try:
            totals.append(parse_amount(str(raw)) if raw not in (None, "") else None)
        except AmountError as exc:
            raise ScheduleError(f"Schedule {name}: {key.replace('_', ' ')}: {exc}") from None
    if None not in totals and totals[0] > totals[1]:
        raise ScheduleError(f"Schedule {name}: the minimum total is above the maximum.")
    partner = data.get("partner_id")
    try:
        partner = int(partner) if partner not in (None, "", 0, "0") else None
    except (TypeError, ValueError):
        raise ScheduleError(f"Schedule {name}: the partner must be a partner id.") from None
    statuses = tuple(s for s in data.get("statuses", ["active"]) or () if s)
    if not statuses:
        raise ScheduleError(f"Schedule {name}: choose at least one customer status.")
    if any(s not in CUSTOMER_STATUSES for s in statuses):
        raise ScheduleError(f"Schedule {name}: customer statuses are "
                            + ", ".join(CUSTOMER_STATUSES) + ".")
    return Schedule(id=sid, name=name, trigger=trigger, days=days, at=at, mode=mode,
                    enabled=bool(data.get("enabled", True)), min_total_cents=totals[0],
                    max_total_cents=totals[1], partner_id=partner, statuses=statuses)


def parse_schedules(text):
    """``(schedules, problems)`` from the stored JSON (problems in staff words)."""
    if not text:
        return (), ()
    try:
        rows = json.loads(text)
    except (TypeError, ValueError):
        return (), ("The module setting autopay_schedules is not valid JSON; no schedule runs.",)
    schedules, problems, seen = [], [], set()
    for row in rows if isinstance(rows, list) else []:
        try:
            schedule = parse_schedule(row)
        except ScheduleError as exc:
            problems.append(str(exc))
            continue
        if schedule.id in seen:
            problems.append(f"Two schedules have the id {schedule.id}; the second is ignored.")
            continue
        seen.add(schedule.id)
        schedules.append(schedule)
    return tuple(schedules), tuple(problems)


def schedules_json(schedules):
    return json.dumps([s.as_json() for s in schedules], sort_keys=True)


# --- firing -------------------------------------------------------------------------------

def due_days(schedule, now, catch_up_days):
    """The days, oldest first, on which ``schedule`` should have fired by ``now`` (a naive
    local datetime), from ``catch_up_days`` ago to today."""
    today = now.date()
    days = []
    for back in range(catch_up_days, -1, -1):
        day = today - dt.timedelta(days=back)
        if dt.datetime.combine(day, schedule.at) <= now:
            days.append(day)
    return days


def _create(ctx, schedule_key, source, mode, period, filters, note):
    """The run of ``schedule_key`` for the invoice dates ``period`` (a day, or a first and
    last day), created unless it exists; None when it existed."""
    period_from, period_to = period if isinstance(period, tuple) else (period, period)
    try:
        run = runs.create_run(ctx, admin_id=None, period_from=period_from, period_to=period_to,
                              filters=filters, source=source, schedule_key=schedule_key,
                              mode=mode, note=note,
                              with_fees=ctx.module_settings.current().fees.autopay)
    except runs.RunRefused:
        return None
    log.info("autopay: run %s queued for %s (%s)", run.id, schedule_key, note)
    return run


def last_day(ctx, schedule_id):
    """The latest day ``schedule_id`` ran (its runs' keys are ``<id>:<day>``), or None."""
    with session_scope(ctx.sessions) as session:
        key = session.execute(select(func.max(ChargeRun.schedule_key)).where(
            ChargeRun.schedule_key.like(f"{schedule_id}:%"))).scalar()
    return dt.date.fromisoformat(key.split(":", 1)[1]) if key else None


def fire(ctx, now=None):
    """Queue every automatic run that is due by ``now`` (default: the context's clock):
    each schedule's run of each day not yet run within the catch-up window, and the day's
    retry run. Returns the runs created (none when another process created them first)."""
    now = now or ctx.now()
    config = ctx.module_settings.current()
    created = []
    for schedule in config.autopay_schedules:
        if not schedule.enabled:
            continue
        last = last_day(ctx, schedule.id)
        for day in due_days(schedule, now, config.autopay_catch_up_days):
            # Catching up is for days missed since the schedule last ran: a schedule that
            # never ran (just added) starts today, not with the invoices of days past.
            if (day <= last) if last else (day < now.date()):
                continue
            run = _create(ctx, f"{schedule.id}:{day.isoformat()}", "auto", schedule.mode,
                          schedule.invoice_date(day), schedule.filters(),
                          f"{schedule.describe()}; {day.isoformat()}")
            if run is not None:
                created.append(run)
    for day in due_days(Schedule(id="retry", name="Retries", trigger="issue_day",
                                 at=config.retry_at), now, config.autopay_catch_up_days):
        invoice_ids = dunning.close_settled(ctx, dunning.due_invoices(ctx, day))
        if not invoice_ids:
            continue
        # The invoices are named; the period only has to hold them: every invoice issued
        # in the year up to the day (a retry is never about one issued later, nor — the
        # tries being days apart — one issued a year before).
        run = _create(ctx, f"retry:{day.isoformat()}", "retry", "due",
                      (day - dt.timedelta(days=MAX_PERIOD_DAYS), day),
                      RunFilters(invoice_ids=tuple(invoice_ids)),
                      f"retries of soft declines due {day.isoformat()}")
        if run is not None:
            created.append(run)
    return created


# --- the staff summary ----------------------------------------------------------------------

def tell_staff(ctx, run):
    """Send staff (module setting ``staff_emails``) the summary of an automatic run that
    has just finished: what was charged, the declines by reason, the errors, how many were
    skipped and what the reconciliation lists. Written once per run and address (notices'
    key); a run that found nothing to charge sends nothing."""
    if run.source not in ("auto", "retry") or not ctx.module_settings.current().staff_emails:
        return []
    with session_scope(ctx.sessions) as session:
        rows = session.execute(
            select(ChargeItem.status, ChargeItem.response_text, ChargeItem.action_code,
                   func.count(), func.sum(ChargeItem.amount_cents))
            .where(ChargeItem.run_id == run.id)
            .group_by(ChargeItem.status, ChargeItem.response_text, ChargeItem.action_code)).all()
        errors = session.execute(
            select(ChargeItem.invoice_number, ChargeItem.customer_id, ChargeItem.message)
            .where(ChargeItem.run_id == run.id, ChargeItem.status == ItemStatus.ERROR)
            .order_by(ChargeItem.id).limit(50)).all()
    if not rows:
        return []  # nothing was due: no message
    totals = {status: [0, 0] for status in ItemStatus}
    declined = []
    for status, text, code, count, cents in rows:
        totals[status][0] += count
        totals[status][1] += int(cents or 0)
        if status == ItemStatus.DECLINED:
            declined.append(notices.Declines(f"{text or 'Declined'} ({code or '?'})", count,
                                             int(cents or 0), decline_category(code) if code else ""))
    declined.sort(key=lambda d: (-d.count, d.reason))
    return notices.run_summary(
        ctx, run, charged_count=totals[ItemStatus.CHARGED][0],
        charged_cents=totals[ItemStatus.CHARGED][1], declined=declined,
        errors=[f"Customer {cid}, invoice {number or '-'}: {message or 'error'}"
                for number, cid, message in errors],
        skipped_count=totals[ItemStatus.SKIPPED][0],
        findings=[f.detail for f in reconciliation.open_findings(ctx, limit=50)])


# --- reminders ----------------------------------------------------------------------------

def remind(ctx, today=None):
    """Queue a reminder for each automatic charge due ``reminder_days`` after ``today``, to
    the customers who asked for reminders (and did not opt out, and have a card for
    automatic payments): per invoice, or per customer for a schedule charging the whole
    balance (the amount then is what they owe today). Each reminder is written once
    (notices' key: the invoice or customer and the day of the charge), so calling this again
    the same day is harmless. Returns how many were queued."""
    config = ctx.module_settings.current()
    if not config.reminder_days:
        return 0
    today = today or ctx.today()
    charge_on = today + dt.timedelta(days=config.reminder_days)
    queued = 0
    for schedule in config.autopay_schedules:
        if not schedule.enabled:
            continue
        invoice_date = schedule.invoice_date(charge_on)
        told = set()
        for _, page in invoice_pages(ctx, invoice_date, invoice_date, schedule.filters()):
            with session_scope(ctx.sessions) as session:
                asked = set(session.execute(select(CustomerPrefs.customer_id).where(
                    CustomerPrefs.customer_id.in_({inv.customer_id for inv in page}),
                    CustomerPrefs.reminders.is_(True),
                    CustomerPrefs.autopay.is_(True))).scalars())
                cards = {inv.id: card_for(session, inv.customer_id, inv.id, charge_on)[0]
                         for inv in page if inv.customer_id in asked}
            for inv in page:
                card = cards.get(inv.id)
                if card is None:
                    continue
                if schedule.mode == "balance":
                    if inv.customer_id in told:
                        continue
                    told.add(inv.customer_id)
                    owed = -ctx.splynx.get_customer_billing(inv.customer_id).deposit_cents
                    row = notices.reminder(ctx, customer_id=inv.customer_id, card=card,
                                           amount_cents=max(owed, inv.due_cents),
                                           charge_on=charge_on)
                else:
                    row = notices.reminder(ctx, customer_id=inv.customer_id, card=card,
                                           amount_cents=inv.due_cents, charge_on=charge_on,
                                           invoice_id=inv.id, invoice_number=inv.number)
                queued += row is not None
    return queued


# --- which card pays automatically ----------------------------------------------------------

def opted_out(session, customer_id):
    prefs = session.get(CustomerPrefs, customer_id)
    return prefs is not None and not prefs.autopay


def card_for(session, customer_id, invoice_id=None, today=None, methods=None):
    """``(card, reason)``: the card an automatic charge of the customer uses (their default
    card for automatic payments, else another they allowed; never one a hard decline of
    this invoice excluded; a bank account only while its debit authorisation is in force;
    only ``methods`` when given: the module setting ``payment_type``), or None and why
    not, in staff words."""
    if opted_out(session, customer_id):
        return None, "The customer opted out of automatic payments."
    excluded = set()
    if invoice_id is not None:
        case = session.execute(select(CollectionCase).where(
            CollectionCase.invoice_id == invoice_id)).scalar_one_or_none()
        if case is not None:
            if case.state == CaseState.STOPPED:
                return None, f"Collection stopped: {case.reason}"
            excluded = case.excluded
    cards = session.execute(debitable(select(Card).where(Card.customer_id == customer_id,
                                                         Card.autopay.is_(True)), methods)
                            .order_by(Card.is_default.desc(), Card.id)).scalars().all()
    usable = [c for c in cards if c.id not in excluded and not c.is_expired(today)]
    if usable:
        return usable[0], None
    if cards:
        return None, "No card for automatic payments can be used (declined or expired)."
    return None, "No card is set for automatic payments."


def set_preferences(ctx, customer_id, *, autopay=None, reminders=None):
    """Record the customer's choice: automatic payments on or off, reminders on or off."""
    with session_scope(ctx.sessions) as session:
        prefs = session.get(CustomerPrefs, customer_id)
        if prefs is None:
            prefs = CustomerPrefs(customer_id=customer_id, autopay=True, reminders=False)
            session.add(prefs)
        if autopay is not None:
            prefs.autopay = bool(autopay)
        if reminders is not None:
            prefs.reminders = bool(reminders)
        return prefs


def preferences(ctx, customer_id):
    """``(autopay, reminders)`` as the customer chose (on and off by default)."""
    with session_scope(ctx.sessions) as session:
        prefs = session.get(CustomerPrefs, customer_id)
        return (True, False) if prefs is None else (prefs.autopay, prefs.reminders)


def set_card_autopay(ctx, customer_id, card_id, on):
    """Use (or not) one of the customer's cards for automatic payments; False if not theirs."""
    with session_scope(ctx.sessions) as session:
        card = session.execute(select(Card).where(Card.id == card_id,
                                                  Card.customer_id == customer_id)
                               ).scalar_one_or_none()
        if card is None or (on and card.is_bank and not card.authorization_id):
            return False  # a bank account is debited only under an authorisation in force
        card.autopay = bool(on)
        if on:
            card.hard_declines = 0
        return True


def runs_of_day(ctx, day):
    """The automatic runs queued for ``day`` (the overview and tests)."""
    with session_scope(ctx.sessions) as session:
        return session.execute(select(ChargeRun).where(
            ChargeRun.schedule_key.like(f"%:{day.isoformat()}"))).scalars().all()
