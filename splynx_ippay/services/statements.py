"""Payment statements: how the add-on logs its payments in Splynx (splynx-platform §2.7).

Splynx's payment add-ons log the money they take in a *payment statement* ("bank statement")
process per month or per day — "IPpay 10/2023" or "IPpay 05/10/2023", as the module setting
``statement_grouping`` says — with one record per payment, shown under *Finance → Payment
Statements*.

The order is chosen so that the money invariants of the journal (journal.py) stay whole:

1. The Splynx **payment** is the record of money. ``journal.post`` creates it exactly once
   (find-first by ``field_1``, then the compare-and-set move to ``posted``) and nothing here
   runs before that or can undo it.
2. Only then is the **statement record** written: ``{bank_statements_process_id, amount,
   status: "processed", customer_id, payment_date, payment_id, invoice_id | request_id,
   comment: "IPpay <TransactionID>", pairing_1: customer id, pairing_2: document number}``.
   Its id is kept in ``payment_attempts.statement_record_id``.
3. Writing it may fail (Splynx down, a 500, no permission): the payment stays posted, the
   customer sees their payment as done, and ``statement_record_id`` stays NULL.
   :func:`complete` (run by ``splynx-ippay reconcile`` and by the worker's periodic pass)
   writes the missing ones later. Every retry looks for a record carrying the payment id
   first, so a record whose creation answer was lost is found, not written twice.

Only the process that moved the attempt to ``posted`` writes its record at once (a brand
new payment cannot have a record yet, so that first write skips the search); :func:`complete`
only takes attempts posted longer ago than the gateway read timeout plus a margin.
"""

import datetime as dt
import logging
import threading

from sqlalchemy import bindparam, select

from ..db import session_scope
from ..models import AttemptStatus as S, PaymentAttempt, utcnow
from ..splynx import SplynxError, SplynxNotFoundError

log = logging.getLogger(__name__)

GATEWAY = "IPpay"


def payment_method_of(ctx, attempt):
    """The payment method of the attempt's partner (as its Splynx payment has)."""
    config = ctx.module_settings.current()
    if attempt.is_bank:
        # A bank debit is recorded with the bank-account method (splynx §5.2).
        return (config.for_partner(attempt.partner_id).bank_payment_method_id
                or config.default.bank_payment_method_id)
    return (config.for_partner(attempt.partner_id).payment_method_id
            or config.default.payment_method_id)
GROUPINGS = ("month", "day")
#: ``statement_record_id`` of an attempt for which no record will be written.
NO_RECORD = 0


class ProcessCache:
    """Statement process ids by title, so that only the first payment of a month (or day)
    looks the process up; one thread at a time finds or creates a title."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ids = {}

    def forget(self, title):
        with self.lock:
            self.ids.pop(title, None)


def title_for(grouping, day):
    """``"IPpay MM/YYYY"`` (grouping ``month``) or ``"IPpay DD/MM/YYYY"`` (``day``)."""
    if grouping == "day":
        return f"{GATEWAY} {day:%d/%m/%Y}"
    return f"{GATEWAY} {day:%m/%Y}"


def grouping_of(ctx):
    """The ``statement_grouping`` module setting (``month`` or ``day``)."""
    return ctx.module_settings.current().statement_grouping


def _process_id(ctx, title, payment_type):
    """``(id, cached)`` of the process titled ``title``, found or created."""
    cache = ctx.statement_processes
    with cache.lock:
        if title in cache.ids:
            return cache.ids[title], True
        splynx = ctx.splynx
        found = [p for p in splynx.find_bank_statements(title=title) if p.title == title]
        if not found:
            new_id = splynx.create_bank_statement(
                title=title, date_time=dt.datetime.now(), status="success",
                payment_type=payment_type)
            log.info("payment statement %r opened (%s)", title, new_id)
            # Another process may have opened the same title at the same moment: everyone
            # settles on the oldest (the other stays empty).
            found = [p for p in splynx.find_bank_statements(title=title) if p.title == title]
            process_id = found[0].id if found else new_id
        else:
            process_id = found[0].id
        cache.ids[title] = process_id
        return process_id, False


_ATTEMPTS = PaymentAttempt.__table__
#: Built once (models._conditional_update says why); ``updated_at`` is written as it is.
_MARK = (_ATTEMPTS.update()
         .where(_ATTEMPTS.c.id == bindparam("attempt_id"),
                _ATTEMPTS.c.statement_record_id.is_(None))
         .values(statement_record_id=bindparam("record_id"),
                 updated_at=_ATTEMPTS.c.updated_at))


def _mark(ctx, attempt_id, record_id):
    """Keep the record id on the attempt (only while none is kept; updated_at unchanged)."""
    with session_scope(ctx.sessions) as session:
        session.execute(_MARK, {"attempt_id": attempt_id, "record_id": record_id})


def write(ctx, attempt, payment_date, search_first=True):
    """Log the posted attempt's Splynx payment in its payment statement; return the record id.

    ``search_first`` looks for a record of the payment before writing one (every retry);
    only the first write for a payment created a moment ago may skip it. Raises
    :class:`SplynxError` when Splynx refuses or cannot be reached.
    """
    splynx, payment_id = ctx.splynx, attempt.splynx_payment_id
    if not payment_id:
        raise ValueError(f"attempt {attempt.transaction_id} has no Splynx payment")
    found = []
    if search_first:
        found = [r for r in splynx.find_bank_statement_records(
            customer_id=attempt.customer_id, payment_id=payment_id) if r.payment_id == payment_id]
    if found:
        record_id = found[0].id
    else:
        title = title_for(grouping_of(ctx), payment_date)
        fields = dict(
            amount_cents=attempt.charged_cents, status="processed", payment_date=payment_date,
            datetime_=dt.datetime.now(), customer_id=attempt.customer_id, payment_id=payment_id,
            invoice_id=attempt.invoice_id, request_id=attempt.proforma_id,
            comment=f"{GATEWAY} {attempt.transaction_id}", pairing_1=str(attempt.customer_id),
            pairing_2=attempt.document_number or "", additional_1=attempt.masked_card)
        method = payment_method_of(ctx, attempt)
        process_id, cached = _process_id(ctx, title, method)
        try:
            record_id = splynx.create_bank_statement_record(process_id=process_id, **fields)
        except SplynxError as exc:
            if not (cached and exc.status == 400):
                raise
            # The remembered process may be gone (deleted in Splynx): look it up again.
            ctx.statement_processes.forget(title)
            process_id, _ = _process_id(ctx, title, method)
            record_id = splynx.create_bank_statement_record(process_id=process_id, **fields)
        log.info("attempt %s logged in payment statement %r, record %s",
                 attempt.transaction_id, title, record_id)
    _mark(ctx, attempt.id, record_id)
    return record_id


def log_payment(ctx, attempt, payment_date, new_payment=False):
    """Write the statement record of an attempt just posted; never fails.

    Returns the attempt (with ``statement_record_id`` when written). A failure is logged and
    left to :func:`complete`: the payment is posted whatever happens here.
    """
    try:
        attempt.statement_record_id = write(ctx, attempt, payment_date,
                                            search_first=not new_payment)
    except Exception as exc:  # noqa: BLE001 - bookkeeping must never undo or block a payment
        log.warning("attempt %s: payment %s posted, its payment statement record not written "
                    "(reconcile will): %s", attempt.transaction_id, attempt.splynx_payment_id, exc)
    return attempt


def complete(ctx, min_age_seconds=None, limit=200):
    """Write the statement records missing for posted attempts; returns a count per outcome
    (``written``, ``no payment``; empty when nothing was missing).

    Attempts posted less than ``min_age_seconds`` ago (default: the gateway read timeout
    plus a margin) are left to the request that posted them. Stops at the first Splynx
    failure (down, or the key may not write statements): the next pass tries again.
    """
    if min_age_seconds is None:
        min_age_seconds = ctx.settings["IPPAY_READ_TIMEOUT"] + 15
    cutoff = utcnow() - dt.timedelta(seconds=min_age_seconds)
    with session_scope(ctx.sessions) as session:
        rows = session.execute(
            select(PaymentAttempt)
            .where(PaymentAttempt.status == S.POSTED,
                   PaymentAttempt.statement_record_id.is_(None),
                   PaymentAttempt.splynx_payment_id.is_not(None),
                   PaymentAttempt.updated_at <= cutoff)
            .order_by(PaymentAttempt.id).limit(limit)
        ).scalars().all()
    counts = {}
    for attempt in rows:
        try:
            try:
                payment = ctx.splynx.get_payment(attempt.splynx_payment_id)
            except SplynxNotFoundError:
                # Deleted in Splynx (a void) before it was logged: nothing to log.
                _mark(ctx, attempt.id, NO_RECORD)
                counts["no payment"] = counts.get("no payment", 0) + 1
                continue
            write(ctx, attempt, payment.date or attempt.updated_at.date())
        except SplynxError as exc:
            log.warning("payment statement records not completed (next pass retries): %s", exc)
            break
        counts["written"] = counts.get("written", 0) + 1
    return counts
