"""Payment statements (splynx-platform §2.7, services/statements.py): every posted payment is
logged in "IPpay MM/YYYY" or "IPpay DD/MM/YYYY" once, after the payment, and a failure to log
it never costs or repeats the payment; reconcile and the worker complete it later."""

import datetime as dt

from sqlalchemy import select, update

from splynx_ippay.db import session_scope
from splynx_ippay.models import AttemptStatus as S, Card, PaymentAttempt, utcnow
from splynx_ippay.services import journal, statements
from splynx_ippay.services.charge_runs import runs as charge_runs
from splynx_ippay.services.charge_runs.filters import RunFilters
from splynx_ippay.services.charge_runs.worker import Worker

from tests.support import open_attempt_for

from .conftest import run_worker_until_done, save_cards


def state(world):
    return world.emu_call("state")


def pay(world, kind, document_id, day=None):
    addon = world.ctx
    if day is not None:
        world.today.set(day)
    getter = addon.splynx.get_invoice if kind == "invoice" else addon.splynx.get_proforma
    document = getter(document_id)
    with session_scope(addon.sessions) as session:
        card = session.execute(select(Card).where(Card.customer_id == document.customer_id)
                               ).scalars().first()
    return journal.charge(addon, open_attempt_for(addon, card, document, kind))


def set_grouping(world, grouping):
    world.set_module_settings({"statement_grouping": grouping})


def load(world, attempt_id):
    with session_scope(world.ctx.sessions) as session:
        return session.get(PaymentAttempt, attempt_id)


def test_payments_are_logged_in_a_monthly_statement(staff_world):
    save_cards(staff_world.ctx, [1])
    first = pay(staff_world, "invoice", 5, dt.date(2026, 3, 7))
    second = pay(staff_world, "proforma", 1, dt.date(2026, 3, 30))
    third = pay(staff_world, "invoice", 8, dt.date(2026, 4, 1))
    assert [a.status for a in (first, second, third)] == [S.POSTED.value] * 3
    world = state(staff_world)
    processes = {p["title"]: p for p in world["bank_statements"]}
    assert sorted(processes) == ["IPpay 03/2026", "IPpay 04/2026"]
    method_id = staff_world.ctx.module_settings.current().default.payment_method_id
    march = processes["IPpay 03/2026"]
    assert march["status"] == "success" and march["payment_type"] == str(method_id)
    # No statement handler is named: the field names one of Splynx's bank-statement
    # import handlers (API blueprint), which payments made by an add-on have none of.
    assert march["handler"] == ""
    records = {r["payment_id"]: r for r in world["bank_statement_records"]}
    assert len(records) == 3
    record = records[str(first.splynx_payment_id)]
    assert record == {**record, "bank_statements_process_id": march["id"], "amount": "75.0000",
                      "status": "processed", "customer_id": "1", "invoice_id": "5",
                      "request_id": "0", "payment_date": "2026-03-07",
                      "comment": f"IPpay {first.transaction_id}", "pairing_1": "1",
                      "pairing_2": "202403000005", "additional_1": "Visa •••• 1111"}
    proforma = records[str(second.splynx_payment_id)]
    assert proforma["request_id"] == "1" and proforma["invoice_id"] == "0"
    assert proforma["bank_statements_process_id"] == march["id"]
    assert records[str(third.splynx_payment_id)]["bank_statements_process_id"] == \
        processes["IPpay 04/2026"]["id"]
    for attempt in (first, second, third):
        assert load(staff_world, attempt.id).statement_record_id == int(
            records[str(attempt.splynx_payment_id)]["id"])


def test_grouping_by_day(staff_world):
    set_grouping(staff_world, "day")
    save_cards(staff_world.ctx, [1, 2])
    pay(staff_world, "invoice", 5, dt.date(2026, 3, 7))
    pay(staff_world, "invoice", 6, dt.date(2026, 3, 7))
    pay(staff_world, "invoice", 8, dt.date(2026, 3, 8))
    world = state(staff_world)
    titles = {p["id"]: p["title"] for p in world["bank_statements"]}
    assert sorted(titles.values()) == ["IPpay 07/03/2026", "IPpay 08/03/2026"]
    per_title = {}
    for record in world["bank_statement_records"]:
        title = titles[record["bank_statements_process_id"]]
        per_title[title] = per_title.get(title, 0) + 1
    assert per_title == {"IPpay 07/03/2026": 2, "IPpay 08/03/2026": 1}


def test_retries_never_write_a_second_record_or_payment(staff_world):
    addon = staff_world.ctx
    save_cards(addon, [1])
    attempt = pay(staff_world, "invoice", 5, dt.date(2026, 3, 7))
    record_id = load(staff_world, attempt.id).statement_record_id
    assert record_id
    # A retry with the record already written (the answer lost, the id not kept): it is
    # found by its payment id, not written again.
    with session_scope(addon.sessions) as session:
        session.execute(update(PaymentAttempt).where(PaymentAttempt.id == attempt.id)
                        .values(statement_record_id=None))
    assert statements.complete(addon, min_age_seconds=0) == {"written": 1}
    assert load(staff_world, attempt.id).statement_record_id == record_id
    assert statements.write(addon, load(staff_world, attempt.id), dt.date(2026, 3, 7)) == record_id
    assert statements.complete(addon, min_age_seconds=0) == {}
    assert journal.reconcile(addon, min_age_seconds=0) == {}
    world = state(staff_world)
    assert len(world["bank_statement_records"]) == 1 and len(world["bank_statements"]) == 1
    assert len([p for p in world["payments"] if p["field_1"] == attempt.transaction_id]) == 1


def test_a_statement_failure_leaves_the_payment_posted_once_and_is_completed_later(staff_world):
    addon = staff_world.ctx
    save_cards(addon, [1])
    staff_world.emu_call("faults", {"status": 500, "path_regex": "bank-statements", "count": 1})
    attempt = pay(staff_world, "invoice", 5, dt.date(2026, 3, 7))
    assert attempt.status == S.POSTED.value and attempt.splynx_payment_id
    assert load(staff_world, attempt.id).statement_record_id is None
    world = state(staff_world)
    mine = [p for p in world["payments"] if p["field_1"] == attempt.transaction_id]
    assert len(mine) == 1 and world["bank_statement_records"] == []
    invoice = next(i for i in world["invoices"] if i["id"] == "5")
    assert invoice["status"] == "paid"
    # Too recent for reconcile: the request that posted it may still be writing it.
    assert statements.complete(addon, min_age_seconds=3600) == {}
    # Splynx still failing: nothing written, the next pass retries.
    staff_world.emu_call("faults", {"status": 500, "path_regex": "bank-statements", "count": 1})
    assert statements.complete(addon, min_age_seconds=0) == {}
    assert statements.complete(addon, min_age_seconds=0) == {"written": 1}
    world = state(staff_world)
    assert len([p for p in world["payments"] if p["field_1"] == attempt.transaction_id]) == 1
    [record] = world["bank_statement_records"]
    assert record["payment_id"] == str(attempt.splynx_payment_id)
    assert record["payment_date"] == "2026-03-07"
    assert [p["title"] for p in world["bank_statements"]] == ["IPpay 03/2026"]
    assert load(staff_world, attempt.id).statement_record_id == int(record["id"])


def test_the_worker_periodic_pass_completes_missing_records(staff_world):
    addon = staff_world.ctx
    save_cards(addon, [1, 2])
    staff_world.emu_call("faults", {"status": 500, "path_regex": "bank-statements", "count": 2})
    first = pay(staff_world, "invoice", 5)
    second = pay(staff_world, "invoice", 6)
    assert state(staff_world)["bank_statement_records"] == []
    worker = Worker(addon, concurrency=1, poll=0.05)
    worker.reconcile_leftovers()   # too recent: left alone
    assert state(staff_world)["bank_statement_records"] == []
    with session_scope(addon.sessions) as session:
        session.execute(update(PaymentAttempt).values(
            updated_at=utcnow() - dt.timedelta(minutes=5)))
    worker.reconcile_leftovers()
    records = state(staff_world)["bank_statement_records"]
    assert sorted(r["payment_id"] for r in records) == sorted(
        [str(first.splynx_payment_id), str(second.splynx_payment_id)])


def test_a_payment_deleted_before_it_was_logged_is_not_logged(staff_world):
    addon = staff_world.ctx
    save_cards(addon, [1])
    staff_world.emu_call("faults", {"status": 500, "path_regex": "bank-statements", "count": 1})
    attempt = pay(staff_world, "invoice", 5)
    addon.splynx.request("DELETE", f"admin/finance/payments/{attempt.splynx_payment_id}")
    assert statements.complete(addon, min_age_seconds=0) == {"no payment": 1}
    assert load(staff_world, attempt.id).statement_record_id == statements.NO_RECORD
    assert statements.complete(addon, min_age_seconds=0) == {}
    assert state(staff_world)["bank_statement_records"] == []


def test_charge_runs_log_every_charge(staff_world):
    addon = staff_world.ctx
    save_cards(addon, [1, 2])
    run = charge_runs.create_run(addon, admin_id=1, period_from=dt.date(2024, 1, 1),
                              period_to=dt.date(2024, 12, 31), filters=RunFilters())
    run_worker_until_done(addon, run.id)
    with session_scope(addon.sessions) as session:
        posted = session.execute(select(PaymentAttempt).where(
            PaymentAttempt.status == S.POSTED.value)).scalars().all()
    assert len(posted) >= 3
    world = state(staff_world)
    records = {r["payment_id"]: r for r in world["bank_statement_records"]}
    assert sorted(records) == sorted(str(a.splynx_payment_id) for a in posted)
    assert all(a.statement_record_id == int(records[str(a.splynx_payment_id)]["id"])
               for a in posted)
    title = statements.title_for("month", addon.today())
    assert [p["title"] for p in world["bank_statements"]] == [title]
    assert {r["comment"] for r in records.values()} == {f"IPpay {a.transaction_id}" for a in posted}


def test_emulator_history_page_lists_the_statement(staff_world):
    save_cards(staff_world.ctx, [1])
    pay(staff_world, "invoice", 5, dt.date(2026, 3, 7))
    admin = staff_world.login_admin()
    page = admin.get(f"{staff_world.url}/admin/finance/bank-statements", timeout=10).text
    assert "IPpay 03/2026" in page
    process_id = state(staff_world)["bank_statements"][0]["id"]
    records = admin.get(f"{staff_world.url}/admin/finance/bank-statements/view?id={process_id}",
                        timeout=10).text
    assert "Alice Anderson" in records and "202403000005" in records and "75.00" in records


def test_migration_0003_does_not_back_fill_payments_posted_before_it(tmp_path):
    from sqlalchemy import text

    from splynx_ippay import db

    url = f"sqlite:///{tmp_path}/old.db"
    db.upgrade(url, "0002")
    engine = db.make_engine(url)
    with engine.begin() as connection:
        for n, status in enumerate(("posted", "post_pending")):
            connection.execute(text(
                "INSERT INTO payment_attempts (transaction_id, kind, status, channel, customer_id,"
                " amount_cents, origin, post_tries, created_at, updated_at) VALUES (:t, 'invoice',"
                " :s, 'portal', 1, 100, 'INTERNET', 0, '2026-01-01', '2026-01-01')"),
                {"t": f"OLD{n:015d}", "s": status})
    db.upgrade(url)
    with engine.begin() as connection:
        rows = connection.execute(text("SELECT status, statement_record_id FROM payment_attempts"
                                       " ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("posted", 0), ("post_pending", None)]


def test_a_process_deleted_in_splynx_is_looked_up_again(staff_world):
    save_cards(staff_world.ctx, [1])
    pay(staff_world, "invoice", 5, dt.date(2026, 3, 7))
    store = staff_world.store()
    with store.lock:
        [old] = store.bank_statements.all()
        store.bank_statements.delete(old["id"])
    second = pay(staff_world, "invoice", 8, dt.date(2026, 3, 9))
    assert load(staff_world, second.id).statement_record_id
    world = state(staff_world)
    [process] = world["bank_statements"]
    assert process["title"] == "IPpay 03/2026" and process["id"] != str(old["id"])
    assert [r["bank_statements_process_id"] for r in world["bank_statement_records"]
            if r["payment_id"] == str(second.splynx_payment_id)] == [process["id"]]
