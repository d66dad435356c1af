"""Payment statements in the Splynx emulator (splynx-platform §2.7) and the client's
methods for them: wire types, searches, validation, the error body, the admin pages."""

import datetime as dt

import pytest
import requests

from splynx_ippay.splynx import BankStatement, BankStatementRecord, SplynxClient, SplynxError

API = "/api/2.0/admin/finance/"


@pytest.fixture
def client(splynx_emu):
    return SplynxClient(splynx_emu.url, "sandbox-key", "sandbox-secret")


def test_processes_and_records_round_trip_in_splynx_types(splynx_emu, client):
    process_id = client.create_bank_statement(title="IPpay 03/2026",
                                              date_time=dt.datetime(2026, 3, 7, 10, 30, 0),
                                              payment_type=3, handler="splynx_ippay_addon")
    record_id = client.create_bank_statement_record(
        process_id=process_id, amount_cents=7500, status="processed",
        payment_date=dt.date(2026, 3, 7), customer_id=1, payment_id=1, invoice_id=1,
        comment="IPpay ABC", pairing_1="1", pairing_2="202401000001")
    status, raw = client.request("GET", f"admin/finance/bank-statements/{process_id}")
    assert status == 200
    assert raw == {"id": str(process_id), "title": "IPpay 03/2026",
                   "date_time": "2026-03-07 10:30:00", "handler": "splynx_ippay_addon",
                   "payment_type": "3", "status": "success", "filename_original": "",
                   "filename_uploaded": "", "delimiter": ""}
    _, record = client.request("GET", f"admin/finance/bank-statements-records/{record_id}")
    assert record["bank_statements_process_id"] == str(process_id)
    assert record["amount"] == "75.0000" and record["status"] == "processed"
    assert record["customer_id"] == "1" and record["payment_id"] == "1"
    assert record["request_id"] == "0" and record["payment_date"] == "2026-03-07"
    assert record["comment"] == "IPpay ABC" and record["pairing_2"] == "202401000001"
    assert len(record["datetime"]) == 19

    # The client's models: ids int, money cents, dates as dates, unset links None.
    assert client.get_bank_statement(process_id) == BankStatement(
        id=process_id, title="IPpay 03/2026", date_time="2026-03-07 10:30:00",
        handler="splynx_ippay_addon", payment_type=3, status="success")
    got = client.get_bank_statement_record(record_id)
    assert isinstance(got, BankStatementRecord)
    assert (got.process_id, got.amount_cents, got.customer_id, got.payment_id, got.invoice_id,
            got.request_id, got.payment_date) == (process_id, 7500, 1, 1, 1, None,
                                                  dt.date(2026, 3, 7))

    # Search by title and by payment; PUT changes fields.
    assert [p.id for p in client.find_bank_statements(title="IPpay 03/2026")] == [process_id]
    assert client.find_bank_statements(title="IPpay 04/2026") == []
    assert [r.id for r in client.find_bank_statement_records(customer_id=1, payment_id=1)] == [
        record_id]
    assert client.find_bank_statement_records(customer_id=1, payment_id=2) == []
    client.update_bank_statement_record(record_id, {"status": "canceled"})
    assert client.get_bank_statement_record(record_id).status == "canceled"
    client.update_bank_statement(process_id, {"status": "fail"})
    assert client.get_bank_statement(process_id).status == "fail"
    state = requests.get(f"{splynx_emu.url}/_sandbox/state", timeout=10).json()
    assert [p["id"] for p in state["bank_statements"]] == [str(process_id)]
    assert [r["id"] for r in state["bank_statement_records"]] == [str(record_id)]


def test_invalid_bodies_answer_splynx_errors(splynx_emu, client):
    with pytest.raises(SplynxError) as missing:
        client.create_bank_statement_record(process_id=99, amount_cents=100, status="processed",
                                            payment_date=dt.date(2026, 3, 7))
    assert missing.value.status == 400 and missing.value.internal_code == "INVALID_INPUT_DATA"
    assert "bank_statements_process_id" in missing.value.message
    process_id = client.create_bank_statement(title="IPpay 03/2026",
                                              date_time=dt.datetime(2026, 3, 7))
    with pytest.raises(SplynxError) as bad_status:
        client.create_bank_statement_record(process_id=process_id, amount_cents=100,
                                            status="paid", payment_date=dt.date(2026, 3, 7))
    assert bad_status.value.status == 400 and "status" in bad_status.value.message
    with pytest.raises(SplynxError) as no_payment:
        client.create_bank_statement_record(process_id=process_id, amount_cents=100,
                                            status="processed", payment_date=dt.date(2026, 3, 7),
                                            payment_id=999)
    assert "payment_id" in no_payment.value.message
    status, body = client.request("OPTIONS", "admin/finance/bank-statements-records")
    assert {"name": "amount", "title": "Amount", "type": "decimal", "required": True} in body
    with pytest.raises(SplynxError) as unknown:
        client.get_bank_statement(12345)
    assert unknown.value.status == 404
    with pytest.raises(SplynxError) as no_title:
        client.request("POST", "admin/finance/bank-statements", json={"status": "new"})
    assert no_title.value.status == 400 and "title" in no_title.value.message
    # The raw error body (splynx §1.2).
    answer = requests.get(f"{splynx_emu.url}{API}bank-statements", timeout=10)
    assert answer.status_code == 401
    assert set(answer.json()["error"]) == {"message", "code", "internal_code"}
    with pytest.raises(SplynxError) as no_delete:
        client.request("DELETE", f"admin/finance/bank-statements/{process_id}")
    assert no_delete.value.status == 405


def test_a_key_without_the_permission_is_refused(splynx_emu):
    requests.post(f"{splynx_emu.url}/_sandbox/api-keys", json={
        "key": "narrow", "secret": "narrow-secret",
        "permissions": {"api\\admin\\finance\\BankStatements": ["index", "view"]}}, timeout=5)
    narrow = SplynxClient(splynx_emu.url, "narrow", "narrow-secret")
    assert narrow.find_bank_statements(title="x") == []
    with pytest.raises(SplynxError) as refused:
        narrow.create_bank_statement(title="IPpay 03/2026", date_time=dt.datetime(2026, 3, 7))
    assert refused.value.status == 403
    with pytest.raises(SplynxError):
        narrow.find_bank_statement_records(payment_id=1)


def test_admin_pages_show_history_and_records(splynx_emu, client):
    process_id = client.create_bank_statement(title="IPpay 03/2026",
                                              date_time=dt.datetime(2026, 3, 7, 9, 0, 0))
    client.create_bank_statement_record(process_id=process_id, amount_cents=6000,
                                        status="processed", payment_date=dt.date(2026, 3, 7),
                                        customer_id=1, invoice_id=1, payment_id=1,
                                        comment="IPpay TXN1", pairing_1="1")
    client.create_bank_statement_record(process_id=process_id, amount_cents=100, status="error",
                                        payment_date=dt.date(2026, 3, 7), comment="IPpay TXN2")
    session = requests.Session()
    session.post(f"{splynx_emu.url}/admin/login", data={"login": "admin",
                                                        "password": "admin-pass"}, timeout=10)
    history = session.get(f"{splynx_emu.url}/admin/finance/bank-statements", timeout=10).text
    for text in ("Payment Statements", "History", "Title", "Date &amp; Time", "Status", "Records",
                 "IPpay 03/2026", "2026-03-07 09:00:00", "Success"):
        assert text in history
    assert "<td class=\"num\">2</td><td class=\"num\">1</td><td class=\"num\">1</td>" in history
    page = session.get(f"{splynx_emu.url}/admin/finance/bank-statements/view?id={process_id}",
                       timeout=10).text
    for text in ("IPpay TXN1", "IPpay TXN2", "60.00", "Processed", "Alice Anderson",
                 "202401000001", "Pairing #1"):
        assert text in page
    assert session.get(f"{splynx_emu.url}/admin/finance/bank-statements/view?id=999",
                       timeout=10).status_code == 404
