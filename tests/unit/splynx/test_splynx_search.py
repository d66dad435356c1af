"""The Splynx search syntax as PHP's http_build_query writes it (splynx-platform §1.4)."""

import datetime
from decimal import Decimal

import pytest
import requests

from splynx_ippay.splynx.search import OPERATORS, build_params


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

