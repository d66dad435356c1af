"""The emulator's search syntax (splynx-platform §1.4), order, paging, HEAD counts, and the
loose wire types of its answers (§1.1)."""

import pytest
import requests

from tests.sandbox.splynx.emulator_helpers import (api, assert_error, deposit, ea, invoice)


# ---------------------------------------------------------------- search
@pytest.mark.parametrize("query, expected", [
    ("main_attributes[customer_id]=1", [1, 3, 5, 8, 10]),
    ("main_attributes[customer_id][0]==&main_attributes[customer_id][1]=2", [2, 6, 9, 11]),
    ("main_attributes[status][0]=!=&main_attributes[status][1]=not_paid", [1, 2, 12]),
    ("main_attributes[status][0]=<>&main_attributes[status][1]=not_paid", [1, 2, 12]),
    ("main_attributes[total][0]=>&main_attributes[total][1]=99.99", [3, 8]),
    ("main_attributes[total][0]=>=&main_attributes[total][1]=99.99", [3, 7, 8]),
    ("main_attributes[total][0]=<&main_attributes[total][1]=15.45", [11, 12]),
    ("main_attributes[total][0]=<=&main_attributes[total][1]=15.45", [4, 11, 12]),
    ("main_attributes[total][0]=BETWEEN&main_attributes[total][1][0]=25&main_attributes[total][1][1]=60",
     [1, 2, 6, 9]),
    ("main_attributes[id][0]=IN&main_attributes[id][1][0]=2&main_attributes[id][1][1]=5"
     "&main_attributes[id][1][2]=7", [2, 5, 7]),
    ("main_attributes[number][0]=LIKE&main_attributes[number][1]=202403", [5, 6, 7]),
    ("main_attributes[number][0]=REGEXP&main_attributes[number][1]=^20240[45]", [8, 9, 10, 11, 12]),
    ("main_attributes[customer_id]=1&main_attributes[status]=not_paid", [3, 5, 8, 10]),
    ("main_attributes[date_payment][0]=IS&main_attributes[date_payment][1]=NULL", []),
])
def test_search_operators_on_invoices(seeded_emu, query, expected):
    r = api(seeded_emu, "GET", f"admin/finance/invoices?{query}")
    assert r.status_code == 200, r.text
    assert [int(i["id"]) for i in r.json()] == expected


def test_search_is_find_in_set_and_additional_attributes(lenient_emu):
    splynx_emu = lenient_emu  # labels by name: outside the blueprint's array[number]
    assert api(splynx_emu, "PUT", "admin/customers/customer/2", json={
        "customer_labels": ["vip", "fibre"], "additional_attributes": {"region": "north"}}).status_code == 202
    ids = lambda q: [int(c["id"]) for c in api(splynx_emu, "GET", f"admin/customers/customer?{q}").json()]  # noqa: E731
    assert ids("main_attributes[gps][0]=IS&main_attributes[gps][1]=NULL") == [1, 2, 3]
    assert ids("main_attributes[gps][0]=IS&main_attributes[gps][1]=NOT NULL") == []
    assert ids("main_attributes[customer_labels][0]=FIND_IN_SET&main_attributes[customer_labels][1]=vip") == [2]
    assert ids("additional_attributes[region]=north") == [2]
    assert ids("additional_attributes[region][0]=LIKE&additional_attributes[region][1]=NOR") == [2]
    assert ids("main_attributes[name][0]=LIKE&main_attributes[name][1]=ar") == [3]
    r = api(splynx_emu, "GET", "admin/customers/customer?main_attributes[nosuch]=1")
    assert_error(r, 400, "INVALID_INPUT_DATA")
    assert "nosuch" in r.json()["error"]["message"]
    assert_error(api(splynx_emu, "GET",
                     "admin/customers/customer?main_attributes[id][0]=NEAR&main_attributes[id][1]=1"),
                 400, "INVALID_INPUT_DATA")


def test_order_paging_and_head_count(seeded_emu):
    r = api(seeded_emu, "GET", "admin/finance/invoices?order[total]=DESC&limit=3")
    assert [i["id"] for i in r.json()] == ["8", "3", "7"]
    r = api(seeded_emu, "GET", "admin/finance/invoices?order[customer_id]=ASC&order[id]=DESC&limit=2&offset=1")
    assert [i["id"] for i in r.json()] == ["8", "5"]
    r = api(seeded_emu, "HEAD", "admin/finance/invoices?main_attributes[status]=not_paid")
    assert r.status_code == 204
    assert r.headers["X-total-count"] == "9"
    assert "X-total-count" in r.headers["Access-Control-Expose-Headers"]
    # the count ignores limit/offset
    r = api(seeded_emu, "HEAD", "admin/finance/invoices?limit=2")
    assert r.headers["X-total-count"] == "12"


def test_value_types_are_loose_like_splynx(seeded_emu):
    inv = invoice(seeded_emu, 3)
    assert inv["id"] == "3" and inv["customer_id"] == "1"
    assert inv["total"] == 100.1 and inv["due"] == 60.1
    assert inv["number"] == "202402000003" and inv["date_payment"] == "0000-00-00"
    assert inv["items"][0]["price"] == "100.1000"
    assert inv["payment_id"] == "0" and inv["payd_from_deposit"] == "0"
    customer = api(seeded_emu, "GET", "admin/customers/customer/1").json()
    assert customer["partner_id"] == "1" and customer["gps"] is None and "password" not in customer
    assert deposit(seeded_emu, 1) == "-274.6500"
    info = api(seeded_emu, "GET", "admin/customers/billing-info/1?format_values=true").json()
    assert info["deposit"] == "-274.65"
    methods = api(seeded_emu, "GET", "admin/finance/payment-methods").json()
    assert [m["name"] for m in methods] == ["Cash", "Bank transfer", "Credit card", "PayPal", "Other", "Refill card"]
    assert methods[0]["id"] == "1"
    payment = api(seeded_emu, "GET", "admin/finance/payments/1").json()
    assert payment["amount"] == "60.0000" and payment["invoice_id"] == "1"
    options = requests.options(f"{seeded_emu.url}/api/2.0/admin/finance/payments", headers=ea(), timeout=5)
    assert options.status_code == 200
    attrs = {a["name"]: a for a in options.json()}
    assert attrs["customer_id"]["required"] is True and attrs["amount"]["type"] == "decimal"
    assert_error(api(seeded_emu, "GET", "admin/finance/invoices/999"), 404, "NOT_FOUND")
    assert_error(api(seeded_emu, "GET", "admin/no/such"), 404, "NOT_FOUND")
    assert_error(api(seeded_emu, "PUT", "admin/finance/transactions/1", json={}), 405, "METHOD_NOT_ALLOWED")



def test_paged_searches_answer_what_a_full_search_sliced_would(seeded_emu):
    """A page in id order is read from the first id allowed and stops when full (the
    emulator's index, for 100,000 invoices); it must be the same page as the slow way."""
    def ids(query):
        r = api(seeded_emu, "GET", f"admin/finance/invoices?{query}")
        assert r.status_code == 200, r.text
        return [int(i["id"]) for i in r.json()]

    filters = ["", "main_attributes[status]=not_paid", "main_attributes[customer_id]=1",
               "main_attributes[total][0]=>&main_attributes[total][1]=20"]
    for extra in filters:
        for after, op in ((0, ">"), (3, ">"), (5, ">="), (11, ">"), (40, ">")):
            base = f"{extra}&main_attributes[id][0]={op}&main_attributes[id][1]={after}"
            everything = ids(base)
            for limit, offset in ((1, 0), (2, 0), (3, 1), (100, 0), (2, 5)):
                page = ids(f"{base}&limit={limit}&offset={offset}")
                assert page == everything[offset:offset + limit], (base, limit, offset)
                assert page == ids(f"{base}&order[id]=ASC&limit={limit}&offset={offset}")
            # Another order still sorts every match first.
            assert ids(f"{base}&order[id]=DESC&limit=2") == everything[::-1][:2]
