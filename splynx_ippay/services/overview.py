"""The figures of the collections overview (staff page /ippay/admin/collections), read from
the add-on's own tables only (no Splynx call: the page opens fast however big Splynx is).

Days are those of the attempts' timestamps (UTC, as the transaction log shows them).
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from sqlalchemy import func, select

from ..db import session_scope
from ..ippay import codes
from ..models import (AttemptStatus as S, Card, CaseState, Channel, ChargeItem, ChargeRun,
                      CollectionCase, ItemStatus as I, PaymentAttempt, utcnow)

DAYS = 90
RUNS = 30
EXPIRY_MONTHS = 12
#: Attempts whose money moved (approved, whether or not Splynx has it yet).
COLLECTED = (S.POSTED, S.APPROVED, S.POST_PENDING)
#: How the overview names where a payment came from.
CHANNELS = ("automatic", "staff run", "portal", "pay link", "staff")


@dataclass
class Overview:
    days: List[dt.date]
    #: Cents collected per channel (CHANNELS), one value per day.
    collected: Dict[str, List[int]]
    #: ``(run id, label, charged, tried)`` of the latest runs, oldest first.
    runs: List[Tuple[int, str, int, int]]
    #: ``(reason, category, count, cents)``, most frequent first.
    declines: List[Tuple[str, str, int, int]]
    #: Cents recovered by retries, per week (Monday) of the successful retry.
    recovered_weeks: List[dt.date]
    recovered: List[int]
    #: Saved cards expiring per month, ``(first day of the month, count)``; the first row is
    #: the cards already expired.
    expiring: List[Tuple[dt.date, int]]
    expired: int
    totals: Dict[str, int] = field(default_factory=dict)


def _day(value):
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _channel(channel, by_staff):
    """The overview's name of an attempt's channel; a charge run is a staff run when staff
    started it (the attempt keeps the admin), else automatic."""
    if channel == Channel.CHARGE_RUN:
        return "staff run" if by_staff else "automatic"
    return {Channel.PORTAL: "portal", Channel.DIRECT: "pay link"}.get(channel, "staff")


def build(ctx, today=None) -> Overview:
    """The overview's figures for the :data:`DAYS` days up to ``today``."""
    today = today or utcnow().date()
    first = today - dt.timedelta(days=DAYS - 1)
    since = dt.datetime.combine(first, dt.time())
    days = [first + dt.timedelta(days=n) for n in range(DAYS)]
    index = {d: n for n, d in enumerate(days)}
    collected = {name: [0] * DAYS for name in CHANNELS}
    with session_scope(ctx.sessions) as session:
        day = func.date(PaymentAttempt.created_at)
        for when, channel, staff_run, cents in session.execute(
                select(day, PaymentAttempt.channel, PaymentAttempt.admin_id.isnot(None),
                       func.sum(PaymentAttempt.amount_cents))
                .where(PaymentAttempt.created_at >= since,
                       PaymentAttempt.status.in_(COLLECTED))
                .group_by(day, PaymentAttempt.channel, PaymentAttempt.admin_id.isnot(None))):
            position = index.get(_day(when))
            if position is not None:
                collected[_channel(channel, bool(staff_run))][position] += int(cents or 0)

        declines = defaultdict(lambda: [0, 0])
        for code, count, cents in session.execute(
                select(PaymentAttempt.action_code, func.count(),
                       func.sum(PaymentAttempt.amount_cents))
                .where(PaymentAttempt.created_at >= since,
                       PaymentAttempt.status == S.DECLINED)
                .group_by(PaymentAttempt.action_code)):
            reason = codes.meaning(code) if code else "No answer code"
            category = codes.decline_category(code) if code else "error"
            declines[(reason, category)][0] += count
            declines[(reason, category)][1] += int(cents or 0)

        latest = session.execute(
            select(ChargeRun.id, ChargeRun.source, ChargeRun.created_at)
            .where(ChargeRun.created_at >= since)
            .order_by(ChargeRun.id.desc()).limit(RUNS)).all()
        outcomes = defaultdict(lambda: [0, 0])
        if latest:
            for run_id, status, count in session.execute(
                    select(ChargeItem.run_id, ChargeItem.status, func.count())
                    .where(ChargeItem.run_id.in_([r.id for r in latest]),
                           ChargeItem.status.in_([I.CHARGED, I.DECLINED, I.ERROR]))
                    .group_by(ChargeItem.run_id, ChargeItem.status)):
                outcomes[run_id][1] += count
                if status == I.CHARGED:
                    outcomes[run_id][0] += count

        week_of = {}
        for tried_on, cents in session.execute(
                select(CollectionCase.last_try_on, func.sum(CollectionCase.recovered_cents))
                .where(CollectionCase.state == CaseState.PAID,
                       CollectionCase.recovered_cents > 0,
                       CollectionCase.last_try_on >= first)
                .group_by(CollectionCase.last_try_on)):
            tried_on = _day(tried_on)
            monday = tried_on - dt.timedelta(days=tried_on.weekday())
            week_of[monday] = week_of.get(monday, 0) + int(cents or 0)

        cards = session.execute(select(Card.exp_year, Card.exp_month, func.count())
                                .group_by(Card.exp_year, Card.exp_month)).all()

    months = []
    year, month = today.year, today.month
    for _ in range(EXPIRY_MONTHS):
        months.append(dt.date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    by_month = {(y, m): n for y, m, n in cards}
    expired = sum(n for (y, m), n in by_month.items() if (y, m) < (today.year, today.month))
    first_week = first - dt.timedelta(days=first.weekday())
    weeks = [first_week + dt.timedelta(weeks=n)
             for n in range((today - first_week).days // 7 + 1)]
    run_rows = [(r.id, f"#{r.id}" + (" auto" if r.source in ("auto", "retry") else ""),
                 *outcomes[r.id]) for r in reversed(latest)]
    decline_rows = sorted(((reason, category, n, cents)
                           for (reason, category), (n, cents) in declines.items()),
                          key=lambda row: (-row[2], row[0]))
    return Overview(
        days=days, collected=collected, runs=run_rows, declines=decline_rows,
        recovered_weeks=weeks, recovered=[week_of.get(w, 0) for w in weeks],
        expiring=[(m, by_month.get((m.year, m.month), 0)) for m in months], expired=expired,
        totals={"collected_cents": sum(sum(v) for v in collected.values()),
                "declined": sum(row[2] for row in decline_rows),
                "recovered_cents": sum(week_of.values())})
