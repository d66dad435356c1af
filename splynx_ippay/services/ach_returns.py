"""ACH returns: a bank debit (CHECK) the customer's bank sends back days after IPpay
accepted it (R01 insufficient funds, R02 account closed …; ippay/ach.py).

A return is learnt from staff (the transaction page) or from IPpay's returns report
(:func:`import_csv`; the format assumed and the column mapping are in docs/ach.md). Either
way it goes through one path, :func:`record_return`:

1. the code and the day are written on the attempt first (``return_code``), so that an
   interrupted reversal is finished later (:func:`finish_pending`, run by reconcile) and
   the journal never posts a returned debit (journal.post);
2. the Splynx payment is **deleted** (splynx-platform §2.4: a payment linked to an
   invoice pays it; deleting it makes the invoice due again and lowers the balance, as a
   void does) and its statement record marked ``canceled``;
3. the attempt moves ``posted`` → ``returned`` (compare-and-set, with an event); only the
   process that made that move goes on to
4. take the account out of automatic debits when the code says so (R02, R03, R04, R10 …),
   book the return fee in Splynx when the module setting asks for one, and tell the
   customer (notices.ach_returned), each once.
"""

import csv
import datetime as dt
import io
import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from ..db import session_scope
from ..ippay.ach import RETURN_CODES, return_code as return_reason
from ..messages import UserError
from ..models import AttemptStatus as S, Method, PaymentAttempt
from ..money import AmountError, format_cents, parse_amount
from ..splynx import SplynxError
from . import bank_accounts, journal, notices

log = logging.getLogger(__name__)

#: The transaction category return fees are booked in (found or created by name).
FEE_CATEGORY_NAME = "Returned bank debit fee"

#: The returns report's columns the import reads, by meaning → header (docs/ach.md).
DEFAULT_COLUMNS = {"transaction_id": "transaction_id", "return_code": "return_code",
                   "return_date": "return_date", "amount": "amount_cents"}

#: Statuses a return may be recorded on: the debit was accepted.
_ACCEPTED = (S.APPROVED, S.POST_PENDING, S.POSTED)


class ReturnError(UserError):
    """A return that cannot be recorded (in staff words)."""


def parse_columns(text):
    """A column mapping from ``meaning=header,…`` (e.g. ``transaction_id=TransID``), over
    the defaults; raises ValueError naming what is wrong."""
    columns = dict(DEFAULT_COLUMNS)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        meaning, sep, header = part.partition("=")
        meaning, header = meaning.strip(), header.strip()
        if not sep or meaning not in DEFAULT_COLUMNS or not header:
            raise ValueError(f"column mapping {part.strip()!r}: write meaning=header, the "
                             f"meanings being {', '.join(DEFAULT_COLUMNS)}")
        columns[meaning] = header
    return columns


def record_return(ctx, attempt_id, code, *, returned_on=None, note=None):
    """Record that the bank returned the debit ``attempt_id`` with NACHA ``code`` and act
    on it (module docstring). Idempotent: a return recorded before is the attempt as it
    is. Raises :class:`ReturnError` for a card payment, an unknown code, or a debit that
    was never accepted."""
    code = (code or "").strip().upper()
    if code not in RETURN_CODES:
        raise ReturnError(f"{code or 'An empty code'} is not an ACH return code "
                          f"({', '.join(RETURN_CODES)}).")
    attempt = journal.load(ctx, attempt_id)
    if attempt is None or attempt.method != Method.BANK:
        raise ReturnError("Only a bank account payment can be returned.")
    if attempt.status == S.RETURNED:
        return attempt
    if attempt.status not in _ACCEPTED:
        raise ReturnError(f"This payment is {attempt.status.value}: the bank never took the "
                          "money, so there is nothing to return.")
    if attempt.return_code is None:
        attempt = journal.note_return(ctx, attempt, code, returned_on or ctx.today(), note)
    return finish(ctx, attempt)


def finish(ctx, attempt):
    """Reverse a recorded return in Splynx and move the attempt to ``returned``; when
    Splynx does not answer the attempt stays as it is (``finish_pending`` tries again)."""
    if attempt.status == S.RETURNED:
        return attempt
    try:
        ref = _delete_payment(ctx, attempt)
    except SplynxError as exc:
        log.warning("return of %s not reversed in Splynx yet: %s", attempt.transaction_id, exc)
        return journal.write_note(ctx, attempt, last_error=f"return: {exc}"[:2000])
    moved, won = journal.mark_returned(ctx, attempt, f"returned {attempt.return_code}; "
                                                     f"Splynx payment {ref or '-'} deleted")
    return _after(ctx, moved) if won else moved


def _delete_payment(ctx, attempt):
    payment_id = journal.delete_splynx_payment(ctx, attempt)
    if attempt.statement_record_id:
        try:
            ctx.splynx.update_bank_statement_record(attempt.statement_record_id,
                                                {"status": "canceled"})
        except SplynxError as exc:  # bookkeeping only
            log.warning("statement record %s of %s not marked canceled: %s",
                        attempt.statement_record_id, attempt.transaction_id, exc)
    return payment_id


def _after(ctx, attempt):
    """What a return leads to, once (the caller made the move to returned)."""
    reason = return_reason(attempt.return_code)
    if reason.stops_autopay and attempt.card_id:
        bank_accounts.stop_debits(ctx, attempt.card_id, f"return {attempt.return_code}")
    fee = ctx.module_settings.current().ach_return_fee_cents
    if fee:
        attempt = _book_fee(ctx, attempt, fee)
    notices.ach_returned(ctx, attempt, reason=reason.meaning, fee_cents=fee,
                         stops_autopay=reason.stops_autopay)
    return attempt


def _book_fee(ctx, attempt, fee_cents):
    """The return fee as a debit transaction, found again by its comment key (never twice)."""
    splynx = ctx.splynx
    key = f"IPPAY-RETURN-FEE-{attempt.transaction_id}"
    try:
        found = [t for t in splynx.find_transactions(customer_id=attempt.customer_id,
                                                     comment=key) if t.comment == key]
        ref = found[0].id if found else splynx.create_refund_debit(
            customer_id=attempt.customer_id, amount_cents=fee_cents, date=ctx.today(),
            category_id=splynx.ensure_transaction_category(FEE_CATEGORY_NAME),
            description=f"Returned bank debit {attempt.return_code} "
                        f"(IPpay {attempt.transaction_id}, {attempt.masked_card})",
            comment=key)
    except SplynxError as exc:
        log.warning("return fee of %s not booked: %s", attempt.transaction_id, exc)
        return journal.write_note(ctx, attempt, last_error=f"return fee: {exc}"[:2000])
    log.info("return fee %s booked for %s", format_cents(fee_cents), attempt.transaction_id)
    return journal.write_note(ctx, attempt, return_fee_ref=str(ref)[:40])


def finish_pending(ctx, limit=200):
    """Finish every return recorded but not yet reversed in Splynx; returns how many."""
    with session_scope(ctx.sessions) as session:
        ids = session.execute(select(PaymentAttempt.id).where(
            PaymentAttempt.return_code.isnot(None),
            PaymentAttempt.status.in_(list(_ACCEPTED))).limit(limit)).scalars().all()
    done = 0
    for attempt_id in ids:
        done += finish(ctx, journal.load(ctx, attempt_id)).status == S.RETURNED
    return done


# --- the returns report -------------------------------------------------------------------

@dataclass
class ImportResult:
    """What an import of the returns report did, row by row (staff words)."""

    recorded: list = field(default_factory=list)
    already: list = field(default_factory=list)
    problems: list = field(default_factory=list)


def _amount_cents(text, header):
    text = (text or "").strip()
    if header.endswith("_cents") or (text.isdigit() and "." not in text and header != "amount"):
        return int(text)
    return parse_amount(text)


def import_csv(ctx, text, columns=None):
    """Record every return of IPpay's returns report ``text`` (CSV, docs/ach.md), the
    columns named by ``columns`` (a mapping as :func:`parse_columns` makes). A row whose
    TransactionID is not one of the add-on's bank debits, or whose amount differs from
    it, is listed as a problem and changes nothing."""
    result = ImportResult()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        _import_rows(ctx, reader, columns or DEFAULT_COLUMNS, result)
    except csv.Error as exc:
        # Not CSV from here on (e.g. a field over the csv module's limit): what was read
        # before is recorded; nothing after it is guessed at.
        result.problems.append(f"Line {reader.line_num}: the report is not readable as CSV "
                               f"({exc}); the lines after it were not read.")
    return result


def _import_rows(ctx, reader, columns, result):
    missing = [h for m, h in columns.items() if m != "amount" and h not in (reader.fieldnames or [])]
    if missing:
        result.problems.append(f"The report has no column {', '.join(missing)} "
                               f"(its columns: {', '.join(reader.fieldnames or [])}).")
        return
    for line, row in enumerate(reader, start=2):
        tid = (row.get(columns["transaction_id"]) or "").strip()
        code = (row.get(columns["return_code"]) or "").strip().upper()
        with session_scope(ctx.sessions) as session:
            attempt = session.execute(select(PaymentAttempt).where(
                PaymentAttempt.transaction_id == tid)).scalar_one_or_none()
        if attempt is None or attempt.method != Method.BANK:
            result.problems.append(f"Line {line}: {tid or '(empty)'} is not a bank payment "
                                   "of this add-on; nothing done.")
            continue
        header = columns["amount"]
        if header in row and (row.get(header) or "").strip():
            try:
                amount = _amount_cents(row[header], header)
            except (ValueError, AmountError):
                amount = None
            if amount != attempt.amount_cents:
                result.problems.append(f"Line {line}: {tid} was {format_cents(attempt.amount_cents)}"
                                       f", the report says {row[header]}; nothing done.")
                continue
        try:
            day = dt.date.fromisoformat((row.get(columns["return_date"]) or "").strip())
        except ValueError:
            day = ctx.today()
        if attempt.status == S.RETURNED:
            result.already.append(tid)
            continue
        try:
            attempt = record_return(ctx, attempt.id, code, returned_on=day,
                                    note="returns report")
        except ReturnError as exc:
            result.problems.append(f"Line {line}: {tid}: {exc}")
            continue
        (result.recorded if attempt.status == S.RETURNED else result.problems).append(
            tid if attempt.status == S.RETURNED
            else f"Line {line}: {tid}: recorded; Splynx did not answer, finished later.")
