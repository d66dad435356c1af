"""Charge runs: charge a period's unpaid invoices to the customers' saved cards (design.md §6).

The lifecycle of a run::

    staff confirm → queued → (a worker) expanding → running → done
                                 │ invoices read from Splynx page by page (keyset on id)
                                 ▼ one item per invoice
    item: queued → claimed → charged | declined | error | skipped
                       └──▶ pending (outcome not settled, or approved but not yet in Splynx)
                                └── claimed again later: ENQ / post, never a second SALE

The parts: ``filters`` (what staff ask for), ``selection`` (the invoices it means, read from
Splynx page by page, and the preview), ``runs`` (run records, progress, CSV, rerun),
``worker`` (claims items, heartbeats, takes over a dead worker's items), ``slots`` (the bound
on gateway calls in flight) and ``items`` (one invoice through the journal).

Every charge goes through the journal's one guarded path (journal.charge): one attempt per
invoice, Origin RECURRING, committed before the gateway hears of it, the invoice read again
under the lock; the item finds its attempt again by its internal request key
(``charge-item:<id>``), so a worker that restarts after a crash settles the same attempt
instead of charging again.
"""
