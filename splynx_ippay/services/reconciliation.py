"""The daily three-way reconciliation: the journal against the gateway and against Splynx.

* **Gateway.** Every attempt whose outcome is not final is settled by ENQ and every approval
  not yet in Splynx is posted (journal.reconcile: a posting looks for the payment first, so
  a missing approval is recorded once). Attempts still not settled after a day are listed.
* **Splynx.** Within the window (:data:`WINDOW_DAYS`), each posted attempt must have its
  payment, for its customer and amount; each payment of the add-on's payment methods that
  carries a TransactionID (``field_1``) must have its attempt, and only one payment per
  TransactionID.

What cannot be repaired safely is a :class:`~splynx_ippay.models.ReconcileFinding` for
staff (the collections overview, the staff summary): a payment deleted or edited by hand in
Splynx may have been staff's decision, so it is never re-created or changed here. A finding
seen again on a later day stays one row (its ``finding_key``); one no longer seen is marked
resolved.
"""

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Dict, List

from sqlalchemy import select

from ..db import session_scope
from ..models import AttemptStatus as S, PaymentAttempt, ReconcileFinding, utcnow
from ..money import format_cents
from . import journal

log = logging.getLogger(__name__)

#: Days of payments compared with the journal each day (a month and its stragglers).
WINDOW_DAYS = 35
#: An attempt not settled (or not posted) this long after it was made is listed for staff.
STUCK_AFTER = dt.timedelta(days=1)
_TRANSACTION_ID = re.compile(r"[A-Z0-9]{18}")
#: Each kind of finding, as staff read it.
KINDS = {
    "missing_payment": "Payment missing in Splynx",
    "amount_mismatch": "Amount differs",
    "customer_mismatch": "Customer differs",
    "orphan_payment": "Payment without an attempt",
    "duplicate_payment": "Two payments of one transaction",
    "unsettled": "Outcome not known",
    "not_posted": "Approved, not in Splynx",
    "posted_late": "Recorded in Splynx by the reconciliation",
}


@dataclass
class Report:
    """What one reconciliation did and found."""

    day: dt.date
    #: journal.reconcile's counts by resulting status (approvals posted, outcomes settled).
    repaired: Dict[str, int] = field(default_factory=dict)
    #: The findings open after this pass (new and still seen), as stored.
    findings: List[ReconcileFinding] = field(default_factory=list)
    resolved: int = 0
    compared_attempts: int = 0
    compared_payments: int = 0


class _Finder:
    """The findings of one pass, by key, in the currency the settings name."""

    def __init__(self, sign):
        self.rows = {}
        self.sign = sign

    def money(self, cents):
        return format_cents(cents, self.sign)

    def describe(self, attempt):
        return (f"transaction {attempt.transaction_id} (customer {attempt.customer_id}, "
                f"{self.money(attempt.amount_cents)}"
                + (f", {attempt.document_number}" if attempt.document_number else "") + ")")

    def add(self, kind, key, detail, attempt=None, payment_id=None, repaired=False):
        self.rows[f"{kind}:{key}"] = dict(
            kind=kind, detail=detail[:255], attempt_id=attempt.id if attempt else None,
            splynx_payment_id=payment_id, repaired=repaired)


def _payment_methods(config):
    ids = {config.default.payment_method_id, config.default.bank_payment_method_id}
    ids.update(p.payment_method_id for p in config.partners.values())
    ids.update(p.bank_payment_method_id for p in config.partners.values())
    return sorted(i for i in ids if i)


def _waiting_approvals(ctx):
    with session_scope(ctx.sessions) as session:
        return session.execute(select(PaymentAttempt.id).where(
            PaymentAttempt.status.in_([S.APPROVED, S.POST_PENDING]))).scalars().all()


def _note_repairs(ctx, finder, attempt_ids):
    """Approvals that the pass recorded in Splynx: kept as repaired findings (history)."""
    if not attempt_ids:
        return
    with session_scope(ctx.sessions) as session:
        posted = session.execute(select(PaymentAttempt).where(
            PaymentAttempt.id.in_(attempt_ids), PaymentAttempt.status == S.POSTED)).scalars()
        for attempt in posted:
            finder.add("posted_late", attempt.transaction_id,
                       f"{finder.describe(attempt)} was approved earlier and is now Splynx payment "
                       f"#{attempt.splynx_payment_id}.", attempt, attempt.splynx_payment_id,
                       repaired=True)


def _check_gateway(ctx, finder, now):
    """Attempts the journal's reconcile could not finish within :data:`STUCK_AFTER`."""
    with session_scope(ctx.sessions) as session:
        stuck = session.execute(select(PaymentAttempt).where(
            PaymentAttempt.status.in_([S.SENT, S.UNKNOWN, S.APPROVED, S.POST_PENDING]),
            PaymentAttempt.created_at < now - STUCK_AFTER)).scalars().all()
    for attempt in stuck:
        if attempt.status in (S.SENT, S.UNKNOWN):
            finder.add("unsettled", attempt.transaction_id,
                       f"The gateway has not told the outcome of {finder.describe(attempt)}; it is "
                       "asked again (ENQ) every few minutes. Check it in IPpay's reports.",
                       attempt)
        else:
            finder.add("not_posted", attempt.transaction_id,
                       f"{finder.describe(attempt)} was approved but Splynx has not taken the "
                       f"payment: {(attempt.last_error or 'no answer')[:80]}", attempt)


def _check_splynx(ctx, finder, day, report):
    config = ctx.module_settings.current()
    methods = _payment_methods(config)
    since = day - dt.timedelta(days=WINDOW_DAYS)
    with session_scope(ctx.sessions) as session:
        posted = session.execute(select(PaymentAttempt).where(
            PaymentAttempt.status == S.POSTED,
            PaymentAttempt.updated_at >= dt.datetime.combine(since, dt.time()))
        ).scalars().all()
    payments = ctx.splynx.find_payments(
        payment_type=("IN", methods or [0]),
        date=("BETWEEN", (since.isoformat(), day.isoformat())))
    report.compared_attempts, report.compared_payments = len(posted), len(payments)
    by_transaction = {}
    for payment in payments:
        if _TRANSACTION_ID.fullmatch(payment.field_1 or ""):
            by_transaction.setdefault(payment.field_1, []).append(payment)
    for transaction_id, found in by_transaction.items():
        if len(found) > 1:
            finder.add("duplicate_payment", transaction_id,
                       f"Splynx has {len(found)} payments of transaction {transaction_id}: "
                       + ", ".join(f"#{p.id} ({finder.money(p.amount_cents)})" for p in found)
                       + ". Only one was charged; delete the others.", payment_id=found[-1].id)
    known = _attempts_named(ctx, by_transaction)
    for transaction_id, found in by_transaction.items():
        if transaction_id not in known:
            payment = found[0]
            finder.add("orphan_payment", payment.id,
                       f"Splynx payment #{payment.id} ({finder.money(payment.amount_cents)}, "
                       f"customer {payment.customer_id}) names transaction {transaction_id}, "
                       "which the add-on never made.", payment_id=payment.id)
    for attempt in posted:
        found = by_transaction.get(attempt.transaction_id)
        payment = found[0] if found else _payment_outside_window(ctx, attempt)
        if payment is None:
            finder.add("missing_payment", attempt.transaction_id,
                       f"The Splynx payment #{attempt.splynx_payment_id} of {finder.describe(attempt)} "
                       "is gone (deleted by hand?). The card was charged: record the payment "
                       "again or refund the card.", attempt, attempt.splynx_payment_id)
            continue
        # The payment carries what the card was charged: the amount and any service fee.
        if payment.amount_cents != attempt.charged_cents:
            finder.add("amount_mismatch", attempt.transaction_id,
                       f"Splynx payment #{payment.id} is {finder.money(payment.amount_cents)}; "
                       f"the card was charged {finder.money(attempt.charged_cents)} "
                       f"({finder.describe(attempt)}).", attempt, payment.id)
        if payment.customer_id != attempt.customer_id:
            finder.add("customer_mismatch", attempt.transaction_id,
                       f"Splynx payment #{payment.id} is recorded for customer "
                       f"{payment.customer_id}, not the customer charged "
                       f"({finder.describe(attempt)}).", attempt, payment.id)


def _attempts_named(ctx, transaction_ids):
    names = list(transaction_ids)
    known = set()
    with session_scope(ctx.sessions) as session:
        for start in range(0, len(names), 500):
            known.update(session.execute(select(PaymentAttempt.transaction_id).where(
                PaymentAttempt.transaction_id.in_(names[start:start + 500]))).scalars())
    return known


def _payment_outside_window(ctx, attempt):
    """The attempt's payment when the search did not show it (its date or method edited)."""
    found = ctx.splynx.find_payments(customer_id=attempt.customer_id,
                                     field_1=attempt.transaction_id)
    found = [p for p in found if p.field_1 == attempt.transaction_id]
    return found[0] if found else None


def _store(ctx, finder, day, report):
    with session_scope(ctx.sessions) as session:
        open_rows = {row.finding_key: row for row in session.execute(
            select(ReconcileFinding).where(ReconcileFinding.resolved_at.is_(None))).scalars()}
        for key, values in finder.rows.items():
            row = open_rows.pop(key, None)
            if row is None:
                row = session.execute(select(ReconcileFinding).where(
                    ReconcileFinding.finding_key == key)).scalar_one_or_none()
                if row is None:
                    row = ReconcileFinding(finding_key=key, found_on=day)
                    session.add(row)
                    log.warning("reconciliation: %s", values["detail"])
                row.resolved_at = None
            for name, value in values.items():
                setattr(row, name, value)
            if row.repaired:  # nothing left to do: kept as history
                row.resolved_at = row.resolved_at or utcnow()
            else:
                report.findings.append(row)
        for row in open_rows.values():
            row.resolved_at = utcnow()
            report.resolved += 1
        session.flush()


def run(ctx, day=None, min_age_seconds=None) -> Report:
    """Reconcile the journal with the gateway and Splynx as of ``day`` (default today);
    returns the :class:`Report`. ``min_age_seconds`` is journal.reconcile's (attempts
    younger are left to the request or worker making them). Splynx not answering raises
    SplynxError with no finding stored (the next pass does it all again)."""
    day = day or ctx.today()
    report = Report(day=day)
    finder = _Finder(ctx.module_settings.current().currency_sign)
    waiting = _waiting_approvals(ctx)
    report.repaired = journal.reconcile(ctx, min_age_seconds=min_age_seconds)
    _note_repairs(ctx, finder, waiting)
    _check_gateway(ctx, finder, utcnow())
    _check_splynx(ctx, finder, day, report)
    _store(ctx, finder, day, report)
    log.info("reconciliation of %s: %s attempts and %s payments compared, %s findings open, "
             "%s resolved, repaired %s", day, report.compared_attempts,
             report.compared_payments, len(report.findings), report.resolved, report.repaired)
    return report


def open_findings(ctx, limit=200):
    """The findings staff have yet to look at, newest first."""
    with session_scope(ctx.sessions) as session:
        return session.execute(select(ReconcileFinding).where(
            ReconcileFinding.resolved_at.is_(None))
            .order_by(ReconcileFinding.found_on.desc(), ReconcileFinding.id.desc())
            .limit(limit)).scalars().all()
