"""The simulator's envelope (ippay §1, §2.1, §4.1), terminals (§5.4) and validation (§3, §10)."""

import re

import pytest
import requests

from tests.sandbox.ippay.sim_helpers import (
    CARD, BAD_LUHN, NEXT_YEAR, CARD_FIELDS, doc, sale, post, parse, call, configure, ledger,
    assert_error,
)


# -- transport and envelope (§1, §2.1, §4.1) ----------------------------------

@pytest.mark.parametrize("path", ["/ippay", "/ippay/"])
@pytest.mark.parametrize("content_type", [None, "text/xml", "application/xml; charset=UTF-8",
                                          "application/x-www-form-urlencoded"])
def test_post_with_any_path_variant_and_content_type(ippay_sim, path, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = requests.post(ippay_sim.url + path, data=doc("PING").encode(), headers=headers,
                             timeout=5)
    assert parse(response) == ("ippayResponse", {"ActionCode": "000", "ResponseText": "PING"})


def test_dummy_get_returns_a_fresh_transaction_id(ippay_sim):
    first = requests.get(ippay_sim.url + "/ippay", params={"dummy": 1}).text
    second = requests.get(ippay_sim.url + "/ippay/", params={"dummy": 1}).text
    assert re.fullmatch(r"[A-Z]\d{17}", first) and re.fullmatch(r"[A-Z]\d{17}", second)
    assert first != second


@pytest.mark.parametrize("root, tx_type, expected", [
    ("ippay", "SALE", "ippayResponse"),
    ("JetPay", "SALE", "JetPayResponse"),
    ("ippay", "TOKENIZE", "IPPayResponse"),
    ("JetPay", "TOKENIZE", "JetPayResponse"),
])
def test_reply_root_follows_request_root_and_type(ippay_sim, root, tx_type, expected):
    fields = dict(CARD_FIELDS, TransactionID="ROOT00000000000001", TotalAmount="100")
    tag, reply = parse(post(ippay_sim, doc(tx_type, root=root, **fields)))
    assert tag == expected
    assert reply["ActionCode"] == "000"


def test_other_root_names_are_rejected(ippay_sim):
    reply = call(ippay_sim, sale("ROOT00000000000002", 100).replace("ippay>", "IPPAY>"))
    assert_error(reply, "Invalid root element.")


def test_elements_in_any_order_and_unknown_elements_ignored(ippay_sim):
    body = ("<JetPay><TotalAmount>8799</TotalAmount><UserIPAddr>10.0.0.1</UserIPAddr>"
            f"<CardExpYear>{NEXT_YEAR}</CardExpYear><BatchID>7</BatchID>"
            f"<CardNum>{CARD}</CardNum><CardExpMonth>09</CardExpMonth>"
            "<TransactionID>ORDER0000000000001</TransactionID>"
            "<TerminalID>TESTTERMINAL</TerminalID><TransactionType>SALE</TransactionType></JetPay>")
    tag, reply = parse(post(ippay_sim, body))
    assert tag == "JetPayResponse"
    assert reply["ActionCode"] == "000" and reply["Approval"] == "TEST99"


@pytest.mark.parametrize("body", [
    "<ippay><TransactionType>PING",
    "not xml",
    "",
    # defusedxml refuses entity declarations (billion laughs, external entities).
    '<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
    "<ippay><TransactionType>PING</TransactionType><TerminalID>&b;</TerminalID></ippay>",
])
def test_unparsable_and_hostile_xml_get_a_900(ippay_sim, body):
    tag, reply = parse(post(ippay_sim, body))
    assert tag == "ippayResponse"
    assert reply["ActionCode"] == "900" and reply["ResponseText"] == "DECLINED"
    assert reply["ErrMsg"].startswith("Unable to parse the XML request")


# -- terminals (§5.4, §10) ----------------------------------------------------


def test_unknown_terminal_gets_the_processor_error(ippay_sim):
    reply = call(ippay_sim, doc("PING", terminal="NOSUCHTERMINAL"))
    assert_error(reply, "Cannot determine the URL for the processor.")


@pytest.mark.parametrize("terminal", ["", None])
def test_blank_terminal_gets_an_empty_body(ippay_sim, terminal):
    response = post(ippay_sim, doc("PING", terminal=terminal))
    assert response.status_code == 200 and response.content == b""


def test_terminal_behaviours_are_switches(ippay_sim):
    configure(ippay_sim, unknown_terminal="empty", blank_terminal="error",
              terminals=["TESTTERMINAL", "SECONDTERMINAL"])
    assert post(ippay_sim, doc("PING", terminal="NOSUCHTERMINAL")).content == b""
    assert_error(call(ippay_sim, doc("PING", terminal="")),
                 "TerminalID required for ALL transactions.")
    assert call(ippay_sim, doc("PING", terminal="SECONDTERMINAL"))["ResponseText"] == "PING"


# -- validation (§3, §10) ------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"TotalAmount": None}, "TotalAmount required for all non-TOKENIZE transactions."),
    ({"TotalAmount": "12.50"}, "Bad dollar amount. TotalAmount must be a whole number of cents."),
    ({"TotalAmount": "0"}, "Bad dollar amount. TotalAmount must be greater than 0."),
    ({"TotalAmount": "-5"}, "Bad dollar amount. TotalAmount must be greater than 0."),
    ({"CardNum": None},
     "Card Number or Token required with SALE, AUTHONLY, and FORCE Transactions."),
    ({"CardExpYear": None},
     "Card Expiration Date required for transactions without a TOKEN present."),
    ({"CardExpMonth": "13"}, "Invalid card expiration date."),
    ({"CardExpMonth": "9"}, "Invalid card expiration date."),
    ({"CardExpYear": "2030"}, "Invalid card expiration date."),
    ({"CVV2": "12"}, "Invalid CVV2."),
])
def test_sale_validation_errors(ippay_sim, changes, message):
    fields = dict(CARD_FIELDS, TransactionID="VALID0000000000001", TotalAmount="100")
    for name, value in changes.items():
        if value is None:
            del fields[name]
        else:
            fields[name] = value
    reply = call(ippay_sim, doc("SALE", **fields))
    assert_error(reply, message)
    assert reply["TransactionID"] == "VALID0000000000001"
    assert ledger(ippay_sim)["transactions"] == []  # nothing stored for a rejected request


@pytest.mark.parametrize("tx_type, message", [
    (None, "No TransactionType supplied."),
    ("sale", "The transaction type is not a valid transaction type."),
    ("INCREMENTAL", "The transaction type is not a valid transaction type."),
])
def test_transaction_type_errors(ippay_sim, tx_type, message):
    assert_error(call(ippay_sim, doc(tx_type if tx_type else None)), message)


def test_luhn_failure_is_900_invalid_card_number_with_trailing_spaces(ippay_sim):
    response = post(ippay_sim, sale("LUHN00000000000001", 100, CardNum=BAD_LUHN, CVV2="123",
                                    BillingPostalCode="60527"))
    assert b"<ResponseText>Invalid card number.  </ResponseText>" in response.content
    reply = parse(response)[1]
    assert reply["ActionCode"] == "900"
    assert not {"Approval", "AVS", "CVV2", "ErrMsg"} & reply.keys()  # §7 [S] BOP
    assert call(ippay_sim, sale("LUHN00000000000002", 100, CardNum="400030002000"))[
        "ResponseText"] == "Invalid card number.  "  # too short


def test_error_format_switch_answers_errmsg_alone(ippay_sim):
    configure(ippay_sim, error_format="errmsg_only")
    reply = call(ippay_sim, sale("ERRF00000000000001", "abc"))
    assert reply == {"TransactionID": "ERRF00000000000001",
                     "ErrMsg": "Bad dollar amount. TotalAmount must be a whole number of cents."}
