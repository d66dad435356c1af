"""Which invoices a run charges: the period's unpaid invoices, read from Splynx page by page,
and the preview staff confirm."""

from ...db import session_scope
from ...money import decimal_text
from .. import customers
from ..cards import default_cards

PAGE_SIZE = 100


def _search_filters(filters, after_id=0):
    """Splynx search filters for the run's invoices besides status, date and ``id > after``."""
    attributes = {}
    if filters.invoice_ids:
        attributes["id"] = ("IN", [i for i in filters.invoice_ids if i > after_id] or [0])
    if filters.customer_ids:
        attributes["customer_id"] = ("IN", list(filters.customer_ids))
    low, high = filters.min_total_cents, filters.max_total_cents
    if low is not None and high is not None:
        attributes["total"] = ("BETWEEN", (decimal_text(low), decimal_text(high)))
    elif low is not None:
        attributes["total"] = (">=", decimal_text(low))
    elif high is not None:
        attributes["total"] = ("<=", decimal_text(high))
    return attributes


def _customer_matches(ctx, customer_id, filters):
    record = customers.customer(ctx, customer_id)
    if filters.partner_id is not None and record.partner_id != filters.partner_id:
        return False
    return not filters.customer_statuses or record.status in filters.customer_statuses


def invoice_pages(ctx, period_from, period_to, filters, after_id=0, page_size=PAGE_SIZE):
    """The run's unpaid invoices, one page (a list) at a time, by ascending id; yields
    ``(last id read, invoices with money due)``.

    Keyset paging (``id > last``) rather than offsets: invoices that turn paid while the
    run goes on must not shift the pages. Only one page is in memory at a time.
    """
    if filters.date_field == "date_created":
        dates, created = {}, {"date_from": period_from, "date_to": period_to}
    else:
        dates, created = {filters.date_field: ("BETWEEN", (period_from, period_to))}, {}
    while True:
        # Named invoices (a rerun, the retries) are paged through their list, which
        # _search_filters cuts to the ids above the last read (Splynx takes one condition
        # per field); the others by id > last.
        if filters.invoice_ids and not any(i > after_id for i in filters.invoice_ids):
            return
        read = ctx.splynx.invoice_page(
            after_id=0 if filters.invoice_ids else after_id, limit=page_size,
            status="not_paid", main_attributes={**_search_filters(filters, after_id), **dates},
            **created)
        if not read:
            return
        after_id = read[-1].id
        page = read
        if filters.partner_id is not None or filters.customer_statuses:
            page = [inv for inv in read if _customer_matches(ctx, inv.customer_id, filters)]
        yield after_id, [inv for inv in page if inv.due_cents > 0]
        if len(read) < page_size:
            return


def preview(ctx, period_from, period_to, filters, list_limit=200):
    """What a run would charge: invoices, customers, total due, customers without a card.

    Streams the invoices page by page; returns a dict with ``invoices``, ``customers``,
    ``total_cents``, ``chargeable`` / ``chargeable_cents`` (customers with a card), and
    ``without_card`` (up to ``list_limit`` rows ``{customer_id, invoices, due_cents}``)
    with ``without_card_count``.
    """
    invoices = total = chargeable = chargeable_cents = 0
    payers, has_card, without = set(), {}, {}
    for _, page in invoice_pages(ctx, period_from, period_to, filters):
        unknown = {inv.customer_id for inv in page} - has_card.keys()
        if unknown:
            with session_scope(ctx.sessions) as session:
                found = default_cards(session, unknown)
            for cid in unknown:
                has_card[cid] = cid in found
        for inv in page:
            invoices += 1
            total += inv.due_cents
            payers.add(inv.customer_id)
            if has_card[inv.customer_id]:
                chargeable += 1
                chargeable_cents += inv.due_cents
            else:
                row = without.setdefault(inv.customer_id, {"customer_id": inv.customer_id,
                                                           "invoices": 0, "due_cents": 0})
                row["invoices"] += 1
                row["due_cents"] += inv.due_cents
    listed = sorted(without.values(), key=lambda r: r["customer_id"])
    return {"invoices": invoices, "customers": len(payers), "total_cents": total,
            "chargeable": chargeable, "chargeable_cents": chargeable_cents,
            "without_card": listed[:list_limit], "without_card_count": len(listed)}
