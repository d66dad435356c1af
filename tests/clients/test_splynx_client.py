"""Tests of the Splynx API v2 client: signature, search syntax and conversions as
unit tests; the rest against the Splynx emulator on loopback."""

import base64
import datetime
import hmac
import json
import socket
import threading
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
import requests

from sandbox.serve import BackgroundServer
from splynx_ippay.splynx import (Invoice, Proforma, SplynxAuthError, SplynxClient, SplynxError,
                                 SplynxForbiddenError, SplynxNotFoundError, SplynxServerError,
                                 SplynxUnavailableError, SplynxValidationError, cents_to_money,
                                 money_to_cents)
from splynx_ippay.splynx.auth import (NonceSource, TokenAuth, compute_signature,
                                      decode_jwt_payload, identity_from_session_answer,
                                      signature_header)
from splynx_ippay.splynx.models import (Customer, CustomerBilling, Payment, PaymentMethod,
                                        parse_bool, parse_date, parse_id, parse_optional_id)
from splynx_ippay.splynx.search import OPERATORS, build_params

KEY, SECRET = "sandbox-key", "sandbox-secret"


# --------------------------------------------------------------------------
# signature (splynx §1.3a)

def test_signature_matches_an_openssl_computed_value():
    # printf '%s' "1700000000sandbox-key" | openssl dgst -sha256 -hmac "sandbox-secret"
    assert compute_signature(KEY, SECRET, 1700000000) == (
        "BD298AF09EC182FF687C9D427BE021B43F9EE705D994C2C191742E87924ADDF1")


def test_signature_is_upper_hex_hmac_of_nonce_then_key():
    expected = hmac.digest(b"s3cr\xc3\xa9t", b"42" + b"k\xc3\xa9y", "sha256").hex().upper()
    assert compute_signature("kéy", "s3crét", 42) == expected


def test_signature_header_is_query_encoded():
    header = signature_header("a key&x", SECRET, 17)
    assert header.startswith("Splynx-EA (") and header.endswith(")")
    inner = header[len("Splynx-EA ("):-1]
    assert "a+key%26x" in inner
    assert parse_qsl(inner) == [("key", "a key&x"), ("nonce", "17"),
                                ("signature", compute_signature("a key&x", SECRET, 17))]


def test_nonces_start_at_centiseconds_and_increase_by_one():
    source = NonceSource(clock=lambda: 1700000000.004)
    assert [source.next() for _ in range(3)] == [170000000000, 170000000001, 170000000002]


def test_nonces_catch_up_with_the_clock():
    now = [1000.0]
    source = NonceSource(clock=lambda: now[0])
    assert source.next() == 100000
    now[0] = 2000.0
    assert source.next() == 200000


def test_nonces_are_unique_across_threads_and_shared_per_key():
    source = NonceSource(clock=lambda: 5.0)
    seen = []

    def take():
        seen.extend(source.next() for _ in range(200))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(500, 500 + 1600))
    assert NonceSource.for_key("k1") is NonceSource.for_key("k1")
    assert NonceSource.for_key("k1") is not NonceSource.for_key("k2")


# --------------------------------------------------------------------------
# search syntax (splynx §1.4)

def test_equality_filters_and_value_formatting():
    assert build_params(main_attributes={
        "customer_id": 42, "status": "not_paid", "is_sent": True, "deleted": False,
        "date_created": datetime.date(2024, 1, 31),
        "updated": datetime.datetime(2024, 1, 31, 8, 5, 9), "total": Decimal("10.50"),
    }) == [
        ("main_attributes[customer_id]", "42"),
        ("main_attributes[status]", "not_paid"),
        ("main_attributes[is_sent]", "1"),
        ("main_attributes[deleted]", "0"),
        ("main_attributes[date_created]", "2024-01-31"),
        ("main_attributes[updated]", "2024-01-31 08:05:09"),
        ("main_attributes[total]", "10.50"),
    ]


@pytest.mark.parametrize("operator", sorted(OPERATORS - {"IN", "BETWEEN"}))
def test_every_scalar_operator(operator):
    assert build_params(main_attributes={"f": (operator, "v")}) == [
        ("main_attributes[f][0]", operator), ("main_attributes[f][1]", "v")]


def test_in_and_between_send_arrays():
    assert build_params(main_attributes={
        "tariff_id": ("IN", [2, 1]),
        "date_created": ("BETWEEN", (datetime.date(2024, 1, 1), datetime.date(2024, 1, 31))),
    }) == [
        ("main_attributes[tariff_id][0]", "IN"),
        ("main_attributes[tariff_id][1][0]", "2"),
        ("main_attributes[tariff_id][1][1]", "1"),
        ("main_attributes[date_created][0]", "BETWEEN"),
        ("main_attributes[date_created][1][0]", "2024-01-01"),
        ("main_attributes[date_created][1][1]", "2024-01-31"),
    ]


def test_lists_and_sets_mean_in_and_operators_are_case_insensitive():
    assert build_params(main_attributes={"id": {3, 1}, "status": ["paid", "pending"],
                                         "name": ("like", "%ann%")}) == [
        ("main_attributes[id][0]", "IN"), ("main_attributes[id][1][0]", "1"),
        ("main_attributes[id][1][1]", "3"),
        ("main_attributes[status][0]", "IN"), ("main_attributes[status][1][0]", "paid"),
        ("main_attributes[status][1][1]", "pending"),
        ("main_attributes[name][0]", "LIKE"), ("main_attributes[name][1]", "%ann%"),
    ]


def test_additional_attributes_order_and_paging():
    params = build_params(main_attributes={"status": "active"},
                          additional_attributes={"ippay_token": ("!=", "")},
                          order={"date_created": "desc", "id": "ASC"}, limit=50, offset=100)
    assert params == [
        ("main_attributes[status]", "active"),
        ("additional_attributes[ippay_token][0]", "!="),
        ("additional_attributes[ippay_token][1]", ""),
        ("order[date_created]", "DESC"), ("order[id]", "ASC"),
        ("limit", "50"), ("offset", "100"),
    ]
    assert build_params() == []
    assert build_params(limit=0, offset=0) == [("limit", "0"), ("offset", "0")]


def test_query_is_encoded_as_php_expects():
    prepared = requests.Request("GET", "http://x/api", params=build_params(
        main_attributes={"total": (">=", "10.00")})).prepare()
    assert prepared.url == ("http://x/api?main_attributes%5Btotal%5D%5B0%5D=%3E%3D"
                            "&main_attributes%5Btotal%5D%5B1%5D=10.00")


@pytest.mark.parametrize("kwargs", [
    {"main_attributes": {"customer_id": None}},
    {"main_attributes": {"f": ("NOPE", 1)}},
    {"main_attributes": {"f": ("=", 1, 2)}},
    {"main_attributes": {"f": ("BETWEEN", [1])}},
    {"main_attributes": {"f": ("BETWEEN", "ab")}},
    {"main_attributes": {"f": ("IN", [])}},
    {"main_attributes": {"f": ("IN", 5)}},
    {"order": {"id": "UP"}},
    {"limit": -1},
    {"offset": 1.5},
    {"limit": True},
])
def test_bad_search_input_is_refused(kwargs):
    with pytest.raises(ValueError):
        build_params(**kwargs)


# --------------------------------------------------------------------------
# conversions at the edge (docs/interfaces.md "Money and identifiers")

@pytest.mark.parametrize("value, cents", [
    ("75.0000", 7500), (75, 7500), (16.47, 1647), ("16.47", 1647), (Decimal("0.1"), 10),
    ("-210.00", -21000), ("0", 0), (" 12.3 ", 1230), ("0.005", 1), ("0.0049", 0),
    ("-0.005", -1), ("1.995", 200), (0.1 + 0.2, 30), ("1e2", 10000), (1.005, 101),
])
def test_money_to_cents(value, cents):
    assert money_to_cents(value) == cents


@pytest.mark.parametrize("value", [None, "", "abc", True, "NaN", "inf", [1], "1,000.00"])
def test_money_to_cents_refuses_non_amounts(value):
    with pytest.raises(ValueError):
        money_to_cents(value)


@pytest.mark.parametrize("cents, text", [(7500, "75.00"), (1, "0.01"), (0, "0.00"),
                                         (-5, "-0.05"), (123456789, "1234567.89")])
def test_cents_to_money(cents, text):
    assert cents_to_money(cents) == text
    assert money_to_cents(text) == cents


@pytest.mark.parametrize("value", [75.0, "7500", True, Decimal("1")])
def test_cents_to_money_wants_int(value):
    with pytest.raises(TypeError):
        cents_to_money(value)


@pytest.mark.parametrize("value, expected", [
    ("2023-10-05", datetime.date(2023, 10, 5)),
    ("2023-10-05 13:01:02", datetime.date(2023, 10, 5)),
    ("0000-00-00", None), ("0000-00-00 00:00:00", None), ("", None), (None, None),
])
def test_parse_date(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", ["2023-13-01", "yesterday", 20231005])
def test_parse_date_refuses_garbage(value):
    with pytest.raises(ValueError):
        parse_date(value)


def test_ids():
    assert parse_id("7") == 7 and parse_id(7) == 7 and parse_id(" 12 ") == 12
    for bad in (None, True, "7.0", "-1", "", "x", 7.0):
        with pytest.raises(ValueError):
            parse_id(bad)
    assert parse_optional_id("0") is None and parse_optional_id(0) is None
    assert parse_optional_id("") is None and parse_optional_id(None) is None
    assert parse_optional_id("231") == 231


def test_flags():
    assert [parse_bool(v) for v in ("1", "0", 1, 0, True, "true", "false", "")] == [
        True, False, True, False, True, True, False, False]


SPEC_INVOICE = {  # splynx §2.2, composed example, types as Splynx sends them
    "id": "231", "customer_id": "7", "number": "202310000231", "date_created": "2023-10-01",
    "date_till": "2023-10-15", "date_payment": "0000-00-00", "total": 75, "due": 75,
    "status": "not_paid", "payment_id": "0", "payd_from_deposit": "0", "added_by": "system",
    "note": None, "additional_attributes": {},
    "items": [{"id": "901", "description": "Internet 50M", "quantity": 1, "unit": "",
               "price": "75.0000", "tax": "0.0000", "period_from": "2023-10-01",
               "period_to": "2023-10-31"}]}


def test_invoice_from_api():
    invoice = Invoice.from_api(SPEC_INVOICE)
    assert (invoice.id, invoice.customer_id, invoice.number, invoice.status) == (
        231, 7, "202310000231", "not_paid")
    assert (invoice.total_cents, invoice.due_cents) == (7500, 7500)
    assert invoice.date_created == datetime.date(2023, 10, 1)
    assert invoice.date_till == datetime.date(2023, 10, 15)
    assert invoice.date_payment is None and invoice.payment_id is None and invoice.note == ""
    item, = invoice.items
    assert (item.id, item.description, item.quantity, item.price_cents, item.tax_percent) == (
        901, "Internet 50M", 1, 7500, 0)
    assert item.period_to == datetime.date(2023, 10, 31)
    assert invoice.raw is SPEC_INVOICE
    assert hash(invoice) == hash(Invoice.from_api(dict(SPEC_INVOICE)))


def test_proforma_due_is_total_until_paid():
    data = dict(SPEC_INVOICE, total="16.47")
    del data["due"]
    assert Proforma.from_api(data).due_cents == 1647
    assert Proforma.from_api(dict(data, status="paid", date_payment="2023-10-05")).due_cents == 0


def test_other_records_from_api():
    customer = Customer.from_api({"id": "7", "login": "alice", "name": "Alice", "email": None,
                                  "status": "active", "partner_id": "1",
                                  "billing_type": "recurring"})
    assert (customer.id, customer.email, customer.partner_id) == (7, "", 1)
    billing = CustomerBilling.from_api({"customer_id": "7", "deposit": "-210.0000",
                                        "payment_method": "3", "enabled": "1"})
    assert (billing.deposit_cents, billing.payment_method_id, billing.enabled) == (-21000, 3, True)
    payment = Payment.from_api({"id": "5", "customer_id": "7", "amount": "75.0000",
                                "payment_type": "3", "date": "2023-10-05", "invoice_id": "231",
                                "request_id": "0", "receipt_number": "IPPAY-1",
                                "field_1": "5F2A91"})
    assert (payment.amount_cents, payment.invoice_id, payment.request_id, payment.field_1,
            payment.field_2) == (7500, 231, None, "5F2A91", "")
    method = PaymentMethod.from_api({"id": "3", "name": "Credit card", "is_active": "0"})
    assert (method.id, method.name, method.is_active) == (3, "Credit card", False)


# --------------------------------------------------------------------------
# JWT payload and session identity (splynx §1.3b, §4)

def _jwt(payload):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2ln"


def test_jwt_payload_is_decoded_without_padding():
    payload = {"sub": "customer", "id": "1", "exp": 1700001800, "x": "??>"}
    assert decode_jwt_payload(_jwt(payload)) == payload
    for bad in ("nodots", "a.!!!.c", "a." + base64.urlsafe_b64encode(b"[1]").decode() + ".c"):
        with pytest.raises(SplynxError):
            decode_jwt_payload(bad)


def test_identity_from_session_answer():
    identity = identity_from_session_answer({
        "access_token": _jwt({"sub": "admin", "id": "3", "exp": 1700001800}),
        "access_token_expiration": 1700001800})
    assert identity.kind == "admin" and identity.id == 3
    assert identity.expires_at == datetime.datetime(2023, 11, 14, 22, 43, 20,
                                                    tzinfo=datetime.timezone.utc)
    with pytest.raises(SplynxAuthError):
        identity_from_session_answer({"access_token": _jwt({"sub": "api_key", "id": "6",
                                                            "exp": 1})})


# --------------------------------------------------------------------------
# token life cycle with a scripted transport

class ScriptedSplynx:
    """Stands in for the client's transport: answers token calls from a script."""

    def __init__(self):
        self.calls = []
        self.serial = 0
        self.refuse_refresh = False
        self.refuse_key = False

    def tokens(self, now):
        self.serial += 1
        return {"access_token": f"A{self.serial}", "access_token_expiration": now + 1800,
                "refresh_token": f"R{self.serial}", "refresh_token_expiration": now + 604800}

    def __call__(self, method, path, *, json=None, authorization=None):
        self.calls.append((method, path, authorization))
        if method == "POST":
            if self.refuse_key:
                return 401, {}, {"error": {"message": "Invalid API key", "code": 401,
                                           "internal_code": "UNAUTHORIZED"}}
            assert json["signature"] == compute_signature(KEY, SECRET, json["nonce"])
            return 201, {}, self.tokens(CLOCK[0])
        if self.refuse_refresh:
            return 401, {}, {"error": {"message": "Refresh token expired", "code": 401,
                                       "internal_code": "EXPIRED_REFRESH_TOKEN"}}
        return 200, {}, self.tokens(CLOCK[0])


CLOCK = [1_700_000_000.0]


@pytest.fixture
def scripted():
    CLOCK[0] = 1_700_000_000.0
    splynx = ScriptedSplynx()
    return splynx, TokenAuth(KEY, SECRET, splynx, clock=lambda: CLOCK[0])


def test_token_is_fetched_once_and_reused(scripted):
    splynx, auth = scripted
    assert auth.header() == "Splynx-EA (access_token=A1)"
    CLOCK[0] += 1794
    assert auth.header() == "Splynx-EA (access_token=A1)"
    assert [c[:2] for c in splynx.calls] == [("POST", "admin/auth/tokens")]


def test_token_is_renewed_five_seconds_before_expiry(scripted):
    splynx, auth = scripted
    auth.header()
    CLOCK[0] += 1796
    assert auth.header() == "Splynx-EA (access_token=A2)"
    assert splynx.calls[-1] == ("GET", "admin/auth/tokens/R1", "Splynx-EA (access_token=A1)")


def test_new_token_when_refresh_token_expired_or_refused(scripted):
    splynx, auth = scripted
    auth.header()
    CLOCK[0] += 604800
    assert auth.header() == "Splynx-EA (access_token=A2)"
    assert splynx.calls[-1][0] == "POST"
    splynx.refuse_refresh = True
    CLOCK[0] += 1800
    assert auth.header() == "Splynx-EA (access_token=A3)"
    assert [c[0] for c in splynx.calls] == ["POST", "POST", "GET", "POST"]


def test_expired_token_is_renewed_only_if_still_current(scripted):
    splynx, auth = scripted
    first = auth.header()
    auth.expired("Splynx-EA (access_token=stale)")
    assert auth.header() == first
    auth.expired(first)
    assert auth.header() == "Splynx-EA (access_token=A2)"
    assert splynx.calls[-1][:2] == ("GET", "admin/auth/tokens/R1")


def test_many_threads_share_one_token(scripted):
    splynx, auth = scripted
    headers = []
    threads = [threading.Thread(target=lambda: headers.append(auth.header())) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(headers) == {"Splynx-EA (access_token=A1)"} and len(splynx.calls) == 1


def test_refused_key_says_so(scripted):
    splynx, auth = scripted
    splynx.refuse_key = True
    with pytest.raises(SplynxAuthError) as caught:
        auth.header()
    assert str(caught.value).startswith("Splynx refused the API key 'sandbox-key': Invalid API key")


# --------------------------------------------------------------------------
# transport and error mapping with a scripted requests session

def _response(status, body=None, *, raw=None, headers=None):
    response = requests.Response()
    response.status_code = status
    response._content = raw if raw is not None else (b"" if body is None else
                                                     json.dumps(body).encode())
    response.headers.update(headers or {})
    return response


class ScriptedSession:
    """A ``requests.Session`` stand-in returning scripted answers in order."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _error(status, message, code):
    return _response(status, {"error": {"message": message, "code": status,
                                        "internal_code": code}})


@pytest.mark.parametrize("status, cls", [
    (400, SplynxValidationError), (422, SplynxValidationError), (403, SplynxForbiddenError),
    (404, SplynxNotFoundError), (405, SplynxError), (500, SplynxServerError),
    (503, SplynxServerError), (401, SplynxAuthError)])
def test_error_statuses_map_to_classes(status, cls):
    client = SplynxClient("http://splynx.test/", KEY, SECRET, auth="signature",
                          session=ScriptedSession(_error(status, "Nope!", "SOME_CODE")))
    with pytest.raises(cls) as caught:
        client.request("GET", "admin/finance/invoices/1")
    assert type(caught.value) is cls
    assert (caught.value.message.endswith("Nope!"), caught.value.status,
            caught.value.internal_code) == (True, status, "SOME_CODE")


def test_signature_mode_sends_signed_requests_with_timeouts():
    session = ScriptedSession(_response(200, {"status": "ok"}))
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature", session=session,
                          connect_timeout=1.5, read_timeout=7)
    assert client.check_api() == {"status": "ok"}
    method, url, kwargs = session.calls[0]
    assert (method, url) == ("GET", "http://splynx.test/api/2.0/admin/api/check")
    assert kwargs["timeout"] == (1.5, 7) and kwargs["allow_redirects"] is False
    fields = dict(parse_qsl(kwargs["headers"]["Authorization"][len("Splynx-EA ("):-1]))
    assert fields["signature"] == compute_signature(KEY, SECRET, int(fields["nonce"]))


def test_signature_mode_401_says_the_key_was_refused():
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature",
                          session=ScriptedSession(_error(401, "Wrong signature", "UNAUTHORIZED")))
    with pytest.raises(SplynxAuthError, match="Splynx refused the API key 'sandbox-key': Wrong"):
        client.check_api()


@pytest.mark.parametrize("answer, words", [
    (requests.ConnectTimeout("slow"), "did not answer"),
    (requests.ReadTimeout("slow"), "did not answer"),
    (requests.ConnectionError("refused"), "cannot reach"),
    (_response(200, raw=b"<html>login</html>"), "not JSON"),
    (_response(502, raw=b"<html>Bad gateway</html>"), "HTTP 502"),
    (_response(302, headers={"Location": "https://splynx.test/"}), "redirected"),
])
def test_no_usable_answer_is_unavailable(answer, words):
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature",
                          session=ScriptedSession(answer))
    with pytest.raises(SplynxUnavailableError, match=words):
        client.request("POST", "admin/finance/payments", json={})


def test_expired_token_is_retried_once():
    token = {"access_token": "A1", "access_token_expiration": 4102444800,
             "refresh_token": "R1", "refresh_token_expiration": 4102444800}
    session = ScriptedSession(
        _response(201, token), _error(401, "Expired", "EXPIRED_ACCESS_TOKEN"),
        _response(200, dict(token, access_token="A2")), _response(201, {"id": "9"}),
        _error(401, "Expired", "EXPIRED_ACCESS_TOKEN"),
        _response(200, dict(token, access_token="A3")),
        _error(401, "Expired", "EXPIRED_ACCESS_TOKEN"))
    client = SplynxClient("http://splynx.test", KEY, SECRET, session=session)
    assert client.request("POST", "admin/finance/payments", json={"a": 1}) == (201, {"id": "9"})
    auths = [c[2]["headers"].get("Authorization") for c in session.calls]
    assert auths == [None, "Splynx-EA (access_token=A1)", "Splynx-EA (access_token=A1)",
                     "Splynx-EA (access_token=A2)"]
    with pytest.raises(SplynxAuthError, match="Expired"):
        client.request("GET", "admin/finance/payments")
    assert len(session.calls) == 7


def test_iter_search_stops_when_the_server_ignores_limit():
    session = ScriptedSession(_response(200, [{"id": str(i)} for i in range(5)]))
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature", session=session)
    assert len(list(client.iter_search("admin/x", page_size=2))) == 5
    assert len(session.calls) == 1


def test_unreadable_record_is_a_splynx_error():
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature",
                          session=ScriptedSession(_response(200, {"id": "1", "total": "x"})))
    with pytest.raises(SplynxError, match="Invoice record"):
        client.get_invoice(1)


def test_bad_arguments_never_reach_the_network():
    client = SplynxClient("http://splynx.test", KEY, SECRET, auth="signature",
                          session=ScriptedSession())
    with pytest.raises(ValueError):
        client.get_invoice("1/../../customers")
    with pytest.raises(ValueError):
        client.find_payments()
    with pytest.raises(SplynxAuthError):
        client.session_identity("")
    with pytest.raises(ValueError):
        SplynxClient("http://splynx.test", KEY, SECRET, auth="basic")


# --------------------------------------------------------------------------
# against the Splynx emulator on loopback

def _sandbox(emu, path, body=None):
    response = requests.post(emu.url + path, json=body, timeout=5)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _api_log(emu, path_regex, method=None):
    params = {"path_regex": path_regex, **({"method": method} if method else {})}
    return requests.get(emu.url + "/_sandbox/requests", params=params, timeout=5).json()


@pytest.fixture
def splynx(splynx_emu):
    """A token-mode client of the seeded emulator."""
    return SplynxClient(splynx_emu.url, KEY, SECRET)


def test_token_auth_fetches_once_then_uses_the_token(splynx_emu, splynx):
    assert splynx.check_api()["status"] == "ok"
    assert splynx.get_invoice(1).id == 1
    assert len(_api_log(splynx_emu, "/auth/tokens")) == 1
    used = [e["headers"]["Authorization"] for e in _api_log(splynx_emu, "admin/(api|finance)")]
    assert len(used) == 2 and used[0] == used[1] and used[0].startswith("Splynx-EA (access_token=")


def test_token_is_renewed_near_expiry(splynx_emu, splynx):
    _sandbox(splynx_emu, "/_sandbox/settings", {"access_token_ttl": 3})
    splynx.check_api()
    splynx.check_api()  # the token has under 5 s left: renewed first
    log = _api_log(splynx_emu, "/auth/tokens")
    assert [e["method"] for e in log] == ["POST", "GET"] and log[1]["status"] == 200
    checks = _api_log(splynx_emu, "admin/api/check")
    assert checks[0]["headers"]["Authorization"] != checks[1]["headers"]["Authorization"]


def test_expired_token_answer_is_retried_with_a_fresh_token(splynx_emu, splynx):
    splynx.check_api()
    _sandbox(splynx_emu, "/_sandbox/faults", {
        "status": 401, "internal_code": "EXPIRED_ACCESS_TOKEN", "path_regex": "finance/invoices",
        "count": 1})
    assert splynx.get_invoice(2).id == 2
    assert [e["status"] for e in _api_log(splynx_emu, "finance/invoices")] == [401, 200]
    assert [e["method"] for e in _api_log(splynx_emu, "/auth/tokens")] == ["POST", "GET"]


def test_a_forgotten_token_is_replaced(splynx_emu, splynx):
    splynx.check_api()
    _sandbox(splynx_emu, "/_sandbox/reset")  # Splynx forgets every token
    assert splynx.get_invoice(2).id == 2
    assert [e["status"] for e in _api_log(splynx_emu, "finance/invoices")] == [401, 200]
    assert [(e["method"], e["status"]) for e in _api_log(splynx_emu, "/auth/tokens")] == [
        ("GET", 401), ("POST", 201)]


def test_signature_mode(splynx_emu):
    client = SplynxClient(splynx_emu.url, KEY, SECRET, auth="signature")
    assert client.check_api()["status"] == "ok"
    assert [i.id for i in client.list_invoices(customer_id=2)] == [2, 6, 9, 11]
    log = _api_log(splynx_emu, "/api/2.0/")
    assert not _api_log(splynx_emu, "/auth/tokens")
    nonces = [int(dict(parse_qsl(e["headers"]["Authorization"][11:-1]))["nonce"]) for e in log]
    assert len(nonces) == 2 and nonces[0] < nonces[1]


@pytest.mark.parametrize("auth", ["token", "signature"])
@pytest.mark.parametrize("key, secret", [(KEY, "wrong-secret"), ("no-such-key", SECRET)])
def test_wrong_credentials_are_reported_plainly(splynx_emu, auth, key, secret):
    client = SplynxClient(splynx_emu.url, key, secret, auth=auth)
    with pytest.raises(SplynxAuthError) as caught:
        client.check_api()
    assert str(caught.value).startswith(f"Splynx refused the API key {key!r}: ")
    assert caught.value.status == 401


def test_missing_permission_is_forbidden(splynx_emu):
    _sandbox(splynx_emu, "/_sandbox/api-keys", {
        "key": "narrow", "secret": "narrow-secret",
        "permissions": {"api\\admin\\finance\\Invoices": ["index", "view"]}})
    client = SplynxClient(splynx_emu.url, "narrow", "narrow-secret")
    assert client.get_invoice(1).id == 1
    with pytest.raises(SplynxForbiddenError, match="no permission"):
        client.get_customer(1)


def test_session_identity(splynx_emu, splynx):
    customer = _sandbox(splynx_emu, "/_sandbox/login-session", {"kind": "customer", "id": 1})
    admin = _sandbox(splynx_emu, "/_sandbox/login-session", {"kind": "admin", "id": 1})
    identity = splynx.session_identity(customer["session_id"])
    assert (identity.kind, identity.id) == ("customer", 1)
    assert identity.expires_at > datetime.datetime.now(datetime.timezone.utc)
    assert splynx.session_identity(admin["session_id"]).kind == "admin"
    sent = _api_log(splynx_emu, "/auth/tokens", "POST")
    assert all("Authorization" not in e["headers"] for e in sent)
    with pytest.raises(SplynxAuthError, match="Splynx did not accept the session"):
        splynx.session_identity("no-such-session")


def test_session_identity_from_the_portal_login(splynx_emu, splynx):
    browser = requests.Session()
    browser.post(splynx_emu.url + "/portal/login", data={"login": "bob", "password": "bob-pass"},
                 allow_redirects=False, timeout=5)
    identity = splynx.session_identity(browser.cookies["PHPSESSID"])
    assert (identity.kind, identity.id) == ("customer", 2)


def test_invoices(splynx):
    invoice = splynx.get_invoice(3)
    assert (invoice.customer_id, invoice.status, invoice.total_cents, invoice.due_cents) == (
        1, "not_paid", 10010, 6010)
    assert invoice.date_created == datetime.date(2024, 2, 5) and invoice.date_payment is None
    assert invoice.items[0].price_cents == 10010 and invoice.number == "202402000003"
    paid = splynx.get_invoice(1)
    assert (paid.status, paid.due_cents, paid.date_payment) == (
        "paid", 0, datetime.date(2024, 1, 10))
    assert paid.payment_id is not None
    assert splynx.find_invoice_by_number("202402000003") == invoice
    assert splynx.find_invoice_by_number("209912999999") is None
    with pytest.raises(SplynxNotFoundError):
        splynx.get_invoice(9999)


def test_invoice_listing_filters(splynx):
    unpaid = splynx.list_invoices(customer_id=1, status="not_paid")
    assert [i.id for i in unpaid] == [3, 5, 8, 10]
    assert all(i.customer_id == 1 and i.due_cents > 0 for i in unpaid)
    march_april = splynx.list_invoices(date_from=datetime.date(2024, 3, 1),
                                       date_to=datetime.date(2024, 4, 30))
    assert [i.id for i in march_april] == [5, 6, 7, 8, 9]
    assert [i.id for i in splynx.list_invoices(date_from=datetime.date(2024, 5, 1),
                                               customer_id=2)] == [11]
    assert [i.id for i in splynx.list_invoices(date_to=datetime.date(2024, 1, 31))] == [1, 2]
    assert [i.id for i in splynx.list_invoices(status=["paid"], customer_id=2)] == [2]
    big = splynx.search("admin/finance/invoices", main_attributes={"total": (">=", "99.99")},
                        order={"total": "DESC"})
    assert [row["id"] for row in big] == ["8", "3", "7"]


def test_iter_search_pages_through_everything():
    from sandbox.splynx import create_app

    with BackgroundServer(create_app({"extra_invoices": 30})) as emu:
        client = SplynxClient(emu.url, KEY, SECRET)
        total = client.count("admin/finance/invoices")
        pages = client.iter_search("admin/finance/invoices", page_size=7)
        first = next(pages)
        assert first["id"] == "1"
        assert len(_api_log(emu, "finance/invoices", "GET")) == 1  # streaming: one page so far
        ids = [int(first["id"])] + [int(row["id"]) for row in pages]
        assert ids == sorted(set(ids)) and len(ids) == total > 40
        queries = [e["query"] for e in _api_log(emu, "finance/invoices", "GET")]
        assert len(queries) == total // 7 + 1
        assert all("limit=7" in q for q in queries) and "offset=35" in queries[5]


def test_count(splynx):
    assert splynx.count("admin/finance/invoices", main_attributes={"customer_id": 1}) == 5
    assert splynx.count("admin/finance/invoices",
                        main_attributes={"status": "not_paid", "customer_id": ("IN", [1, 3])}) == 6
    assert splynx.count("admin/finance/payments", main_attributes={"field_1": "none"}) == 0


def test_payment_pays_the_invoice(splynx):
    before = splynx.get_customer_billing(1).deposit_cents
    payment_id = splynx.create_payment(
        customer_id=1, amount_cents=7500, payment_type=3, date=datetime.date(2024, 3, 20),
        receipt_number="IPPAY-TEST1", invoice_id=5, comment="IPpay transaction TXN1",
        field_1="TXN1ABCDEFGHIJKLMN", field_2="card ****1111")
    invoice = splynx.get_invoice(5)
    assert (invoice.status, invoice.due_cents, invoice.payment_id) == ("paid", 0, payment_id)
    assert invoice.date_payment == datetime.date(2024, 3, 20)
    assert splynx.get_customer_billing(1).deposit_cents == before + 7500
    found, = splynx.find_payments(field_1="TXN1ABCDEFGHIJKLMN")
    assert found == splynx.get_payment(payment_id)
    assert (found.id, found.customer_id, found.amount_cents, found.payment_type, found.invoice_id,
            found.request_id, found.receipt_number, found.field_2, found.comment) == (
        payment_id, 1, 7500, 3, 5, None, "IPPAY-TEST1", "card ****1111", "IPpay transaction TXN1")


def test_bad_payment_is_a_validation_error(splynx):
    with pytest.raises(SplynxValidationError, match="payment_type"):
        splynx.create_payment(customer_id=1, amount_cents=100, payment_type=99,
                              date=datetime.date(2024, 3, 20), receipt_number="R")


def test_proformas(splynx):
    unpaid = splynx.list_proformas(status="not_paid")
    assert [(p.id, p.customer_id, p.total_cents, p.due_cents) for p in unpaid] == [
        (1, 1, 4500, 4500), (2, 2, 2010, 2010)]
    paid = splynx.get_proforma(3)
    assert (paid.status, paid.due_cents, paid.total_cents) == ("paid", 0, 1200)
    assert splynx.find_proforma_by_number(unpaid[0].number) == unpaid[0]
    assert splynx.list_proformas(customer_id=3, date_from=datetime.date(2024, 5, 10),
                                 date_to=datetime.date(2024, 5, 10)) == [paid]
    splynx.create_payment(customer_id=2, amount_cents=2010, payment_type=3,
                          date=datetime.date(2024, 5, 20), receipt_number="P2", request_id=2)
    assert splynx.get_proforma(2).due_cents == 0


def test_customer_billing_and_payment_methods(splynx):
    customer = splynx.get_customer(1)
    assert (customer.id, customer.login, customer.name, customer.email) == (
        1, "alice", "Alice Anderson", "alice@example.com")
    billing = splynx.get_customer_billing(1)
    assert billing.customer_id == 1 and billing.deposit_cents == -(6010 + 7500 + 12050 + 1905)
    methods = splynx.list_payment_methods()
    assert [(m.id, m.name) for m in methods][:3] == [(1, "Cash"), (2, "Bank transfer"),
                                                     (3, "Credit card")]
    assert all(m.is_active for m in methods)


def test_payment_accounts(splynx):
    assert splynx.get_payment_accounts(1) == []
    assert splynx.get_payment_account(1, 4) is None
    splynx.put_payment_account(1, 4, {"field_1": "TOKEN123", "field_2": "Alice A",
                                      "field_3": "1111"})
    splynx.put_payment_account(1, 4, {"field_4": "12/2031"})
    account = splynx.get_payment_account(1, 4)
    assert (account.customer_id, account.account_id) == (1, 4)
    assert account.fields["field_1"] == "TOKEN123" and account.fields["field_4"] == "12/2031"
    assert splynx.get_payment_accounts(1) == [account] and splynx.get_payment_accounts(2) == []
    splynx.delete_payment_account(1, 4)
    assert splynx.get_payment_account(1, 4) is None
    with pytest.raises(SplynxNotFoundError):
        splynx.delete_payment_account(1, 4)


def test_modules_config_and_entry_points(splynx):
    module = "splynx_ippay_addon"
    splynx.create_module({"name": module, "title": "Splynx Ippay Billing Add-On",
                          "root": "/var/www/splynx/addons/splynx-ippay", "type": "simple"})
    assert splynx.get_module(module)["title"] == "Splynx Ippay Billing Add-On"
    assert module in [m["name"] for m in splynx.list_modules()]
    splynx.update_module(module, {"title": "IPpay"})
    assert splynx.get_module(module)["title"] == "IPpay"

    splynx.put_module_config(module, {"terminal_id": "TESTTERMINAL", "fee_percent": "0"})
    splynx.put_module_config(module, {"terminal_id": "PARTNER2"}, partner_id=2)
    assert splynx.get_module_config(module) == {"terminal_id": "TESTTERMINAL", "fee_percent": "0"}
    assert splynx.get_module_config(module, partner_id=2)["terminal_id"] == "PARTNER2"

    point = {"module": module, "name": "ippay_pay_invoice", "place": "portal",
             "type": "action_link", "model": "Invoices", "size": "large", "title": "Pay by Ippay",
             "icon": "fa-credit-card", "url": "/ippay/pay-invoice", "enabled": True}
    point_id = splynx.create_entry_point(point)
    assert splynx.get_entry_point(point_id)["url"] == "/ippay/pay-invoice"
    splynx.update_entry_point(point_id, {"enabled": False})
    listed, = splynx.list_entry_points(module=module)
    assert listed["id"] == str(point_id) and listed["enabled"] is False
    with pytest.raises(SplynxValidationError, match="already exists"):
        splynx.create_entry_point(point)
    splynx.delete_entry_point(point_id)
    assert splynx.list_entry_points(module=module) == []

    splynx.delete_module(module)
    with pytest.raises(SplynxNotFoundError):
        splynx.get_module(module)
    with pytest.raises(SplynxNotFoundError):
        splynx.get_module_config(module)


def test_server_fault_is_a_server_error(splynx_emu, splynx):
    _sandbox(splynx_emu, "/_sandbox/faults", {"status": 500, "path_regex": "finance/payments",
                                              "method": "POST", "count": 1})
    pay = dict(customer_id=1, amount_cents=1905, payment_type=3, date=datetime.date(2024, 5, 6),
               receipt_number="R10", invoice_id=10)
    with pytest.raises(SplynxServerError) as caught:
        splynx.create_payment(**pay)
    assert caught.value.status == 500 and caught.value.internal_code == "SERVER_ERROR"
    assert splynx.create_payment(**pay) > 0


def test_slow_answer_is_unavailable(splynx_emu):
    client = SplynxClient(splynx_emu.url, KEY, SECRET, read_timeout=0.3)
    client.check_api()
    _sandbox(splynx_emu, "/_sandbox/faults", {"delay_s": 1, "path_regex": "finance/invoices",
                                              "count": 1})
    with pytest.raises(SplynxUnavailableError, match="did not answer"):
        client.get_invoice(1)
    assert client.get_invoice(1).id == 1


def test_nothing_listening_is_unavailable():
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SplynxClient(f"http://127.0.0.1:{port}", KEY, SECRET, connect_timeout=1)
    with pytest.raises(SplynxUnavailableError, match="cannot reach"):
        client.check_api()


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_many_threads_share_one_client(splynx_emu, auth):
    client = SplynxClient(splynx_emu.url, KEY, SECRET, auth=auth)
    results, errors = [], []

    def work():
        try:
            results.extend(client.get_invoice(n).id for n in range(1, 6))
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(results) == sorted(list(range(1, 6)) * 8)
    assert len(_api_log(splynx_emu, "/auth/tokens")) == (1 if auth == "token" else 0)
