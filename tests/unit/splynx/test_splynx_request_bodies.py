"""The bodies the client's write methods send, held to the API blueprint's structures
(sandbox/splynx/blueprint.py transcribes them): required fields present, each value of the
documented JSON type, nothing the blueprint does not name. No server: a scripted session
records what would be sent."""

import datetime
import json

import pytest
import requests

from sandbox.splynx import blueprint
from splynx_ippay.splynx import SplynxClient, SplynxError

KEY, SECRET = "sandbox-key", "sandbox-secret"


def _response(status, body=None):
    response = requests.Response()
    response.status_code = status
    response._content = b"" if body is None else json.dumps(body).encode()
    return response


class Recorder:
    """Answers every call with ``answer``; keeps (method, url, params, json)."""

    def __init__(self, answer=None):
        self.answer = answer or _response(201, {"id": 12})
        self.calls = []

    def request(self, method, url, *, params=None, json=None, **kwargs):
        self.calls.append((method, url.split("/api/2.0/", 1)[1], params, json))
        return self.answer


@pytest.fixture
def recorded():
    session = Recorder()
    return SplynxClient("http://splynx.test", KEY, SECRET, auth="signature",
                        session=session), session


def _holds(structure, body, creating=True):
    blueprint.check_body(structure, body, creating=creating)  # raises ApiError when not


def test_payment_body(recorded):
    client, session = recorded
    assert client.create_payment(customer_id="7", amount_cents=7500, payment_type=3,
                                 date=datetime.date(2023, 10, 5), receipt_number="IPPAY-5F2A91",
                                 invoice_id=231, comment="IPpay transaction 5F2A91",
                                 field_1="5F2A91", field_2="card ****1111") == 12
    method, path, _, body = session.calls[0]
    assert (method, path) == ("POST", "admin/finance/payments")
    assert body == {"customer_id": 7, "payment_type": "3", "receipt_number": "IPPAY-5F2A91",
                    "date": "2023-10-05", "amount": "75.00", "invoice_id": 231,
                    "comment": "IPpay transaction 5F2A91", "field_1": "5F2A91",
                    "field_2": "card ****1111", "field_3": "", "field_4": "", "field_5": ""}
    _holds(blueprint.PAYMENT, body)


def test_refund_debit_body(recorded):
    client, session = recorded
    client.create_refund_debit(customer_id=7, amount_cents=1005, date=datetime.date(2024, 6, 1),
                               category_id=6, description="Card refund 10.05",
                               comment="IPPAY-REFUND-X-1")
    method, path, _, body = session.calls[0]
    assert (method, path) == ("POST", "admin/finance/transactions")
    assert body == {"type": "debit", "customer_id": 7, "quantity": 1, "price": 10.05,
                    "tax_percent": 0, "date": "2024-06-01", "category": "6",
                    "description": "Card refund 10.05", "comment": "IPPAY-REFUND-X-1"}
    assert "total" not in body and json.dumps(body["price"]) == "10.05"
    _holds(blueprint.TRANSACTION, body)
    with pytest.raises(ValueError):
        client.create_refund_debit(customer_id=7, amount_cents=0, date=datetime.date(2024, 6, 1),
                                   category_id=6, description="x", comment="y")
    with pytest.raises(ValueError):
        client.create_transaction(customer_id=7, kind="refund", price_cents=1,
                                  date=datetime.date(2024, 6, 1), category_id=6)


def test_payment_method_bodies_send_is_active_as_a_boolean(recorded):
    client, session = recorded
    client.create_payment_method("IPpay", field_names=("TransactionID", "Card"))
    client.update_payment_method(7, is_active=False)
    client.update_payment_method(7, is_active=True, name="IPpay cards")
    client.update_payment_method(7)  # nothing to change: nothing sent
    bodies = [(c[0], c[1], c[3]) for c in session.calls]
    assert bodies == [
        ("POST", "admin/finance/payment-methods", {"name": "IPpay", "is_active": True,
                                                   "name_1": "TransactionID", "name_2": "Card"}),
        ("PUT", "admin/finance/payment-methods/7", {"is_active": False}),
        ("PUT", "admin/finance/payment-methods/7", {"name": "IPpay cards", "is_active": True}),
    ]
    _holds(blueprint.PAYMENT_METHOD, bodies[0][2])
    for _, _, body in bodies[1:]:
        _holds(blueprint.PAYMENT_METHOD, body, creating=False)
    with pytest.raises(ValueError):
        client.create_payment_method("x", field_names=("a",) * 6)


def test_category_statement_and_record_bodies(recorded):
    client, session = recorded
    client.create_transaction_category("Refund")
    client.create_bank_statement(title="IPpay 03/2026", date_time=datetime.datetime(2026, 3, 7),
                                 payment_type=3, handler="")
    client.create_bank_statement_record(process_id=12, amount_cents=7500, status="processed",
                                        payment_date=datetime.date(2026, 3, 7),
                                        datetime_=datetime.datetime(2026, 3, 7, 9, 0),
                                        customer_id=1, payment_id=5, invoice_id=3,
                                        comment="IPpay X", pairing_1="1", additional_1="****1111")
    category, statement, record = (c[3] for c in session.calls)
    assert category == {"name": "Refund"}
    _holds(blueprint.TRANSACTION_CATEGORY, category)
    assert statement["payment_type"] == 3 and statement["title"] == "IPpay 03/2026"
    _holds(blueprint.PAYMENT_STATEMENT, statement)
    assert record["amount"] == "75.00" and record["bank_statements_process_id"] == 12
    _holds(blueprint.PAYMENT_STATEMENT_RECORD, record)


def test_module_and_payment_account_bodies(recorded):
    client, session = recorded
    client.create_module({"name": "splynx_ippay_addon", "title": "Splynx Ippay Billing Add-On",
                          "root": "/usr/share/splynx-ippay", "type": "simple"})
    client.put_payment_account(1, 4, {"field_1": "TOKEN", "field_2": "Visa ****1111"})
    module, account = (c[3] for c in session.calls)
    _holds(blueprint.MODULE, module)
    _holds(blueprint.PAYMENT_ACCOUNT_DATA, account, creating=False)
    assert session.calls[1][2] == {"id": "1--4"}


@pytest.mark.parametrize("answer, expected", [
    ([{"account_id": "4", "customer_id": "1", "field_1": "T"}], "T"),  # the blueprint's list
    ({"account_id": "4", "customer_id": "1", "field_1": "T"}, "T"),    # one object
    ([], None),
])
def test_one_payment_account_is_read_from_a_list_or_an_object(answer, expected):
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature",
                          session=Recorder(_response(200, answer)))
    account = client.get_payment_account(1, 4)
    assert (account.fields["field_1"] if account else None) == expected


def test_invoice_page_asks_for_ids_above_the_last(recorded):
    client, session = recorded
    session.answer = _response(200, [])
    assert client.invoice_page(after_id=40, limit=25, status="not_paid",
                               date_from=datetime.date(2024, 3, 1)) == []
    _, path, params, _ = session.calls[0]
    assert path == "admin/finance/invoices"
    assert params == [("main_attributes[status]", "not_paid"),
                      ("main_attributes[date_created][0]", ">="),
                      ("main_attributes[date_created][1]", "2024-03-01"),
                      ("main_attributes[id][0]", ">"), ("main_attributes[id][1]", "40"),
                      ("order[id]", "ASC"), ("limit", "25")]


def test_probe_read_knows_its_resources_by_name(recorded):
    client, session = recorded
    session.answer = _response(200, [])
    client.probe_read("payment statements")
    assert session.calls[0][:3] == ("GET", "admin/finance/bank-statements", {"limit": 1})
    with pytest.raises(KeyError):
        client.probe_read("admin/finance/payments")


def test_a_create_answer_without_an_id_is_an_error(recorded):
    client, session = recorded
    session.answer = _response(201, {"ok": True})
    with pytest.raises(SplynxError, match="without an id"):
        client.create_transaction_category("Refund")
