"""Tests of the IPpay gateway client (splynx_ippay.ippay).

Three layers:
* unit tests of XML building, reply parsing, codes and scrubbing, with a fake
  ``requests.Session`` that records what would be sent;
* transport tests against a tiny raw HTTP stub on loopback (timeouts, HTTP
  errors, cut connections, TLS against a plain port, a refused port);
* integration tests against the IPpay simulator (``ippay_sim`` fixture).
"""

import json
import logging
import re
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import urllib3.exceptions
from http.client import RemoteDisconnected

from splynx_ippay.ippay import (
    BankAccount,
    Card,
    GatewayError,
    GatewayNotSentError,
    GatewayRequestError,
    GatewayResult,
    GatewayUnknownOutcomeError,
    IPpayClient,
    new_transaction_id,
    scrub,
)
from splynx_ippay.ippay import codes
from splynx_ippay.ippay.xml import FIELD_ORDER, Node, ResponseFormatError, build_request, parse_response

PAN = "4000300020001000"
CVV = "737"
TID = "ABCDEFGHIJ12345678"
TOKEN = "4B3J7E7D7K2A1000"
ACCOUNT = BankAccount("1234567890", "111000025")
SOFTWARE = "splynx-ippay/test"


# --------------------------------------------------------------------------- helpers


class FakeResponse:
    """Just enough of requests.Response for the client (stream=True reading)."""

    def __init__(self, body=b"", status=200, exc=None):
        self.status_code = status
        self._body = body.encode() if isinstance(body, str) else body
        self._exc = exc

    def iter_content(self, chunk_size=1):
        if self._exc:
            raise self._exc
        for i in range(0, len(self._body), chunk_size):
            yield self._body[i:i + chunk_size]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeSession:
    """Records every POST and answers from a queue of replies (bytes, FakeResponse or exception)."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.calls = []

    def post(self, url, **kwargs):
        self.calls.append(dict(kwargs, url=url))
        reply = self.replies.pop(0) if self.replies else ok_reply(kwargs["data"])
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, FakeResponse):
            return reply
        return FakeResponse(reply)

    @property
    def bodies(self):
        return [c["data"].decode("ascii") for c in self.calls]

    def close(self):
        pass


def ok_reply(request_body=b"", **extra):
    """A 000 reply echoing the request's TransactionID (as IPpay does, ippay §4.2)."""
    match = re.search(rb"<TransactionID>([^<]*)<", request_body or b"")
    fields = {"ActionCode": "000", "ResponseText": "APPROVED"}
    if match:
        fields = {"TransactionID": match.group(1).decode(), **fields}
    if b"TOKENIZE" in (request_body or b""):
        fields.update(ResponseText="TOKENIZED", Token=TOKEN)
    fields.update(extra)
    return reply_xml(**fields)


def reply_xml(root="ippayResponse", **fields):
    return ("<%s>" % root + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()) + "</%s>" % root).encode()


def make_client(session, **kwargs):
    kwargs.setdefault("software", SOFTWARE)
    return IPpayClient("https://testgtwy.example/ippay", "TESTTERMINAL", session=session, **kwargs)


def children(body):
    root = ET.fromstring(body)
    return root, [(c.tag, c.text) for c in root]


def card(**kw):
    kw.setdefault("number", PAN)
    kw.setdefault("exp_month", 9)
    kw.setdefault("exp_year", 2030)
    return Card(**kw)


# --------------------------------------------------------------------------- identifiers


def test_new_transaction_id_is_18_uppercase_alphanumerics_and_unique():
    ids = {new_transaction_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[A-Z0-9]{18}", i) for i in ids)


# --------------------------------------------------------------------------- XML building


def test_build_request_emits_fields_in_spec_order_whatever_the_input_order():
    fields = {"UDField3": "x", "TotalAmount": "1250", "CardName": "Pat", "CardExpYear": "30",
              "CardExpMonth": "09", "CVV2": "123", "CardNum": PAN, "OrderNumber": "INV-1",
              "Origin": "INTERNET", "TransactionID": TID, "BillingPostalCode": "60527",
              "Email": "a@b.c", "UserIPAddress": "10.0.0.1", "Token": None}
    root, kids = children(build_request("SALE", "TESTTERMINAL", fields))
    assert root.tag == "ippay"
    tags = [t for t, _ in kids]
    assert tags == ["TransactionType", "TerminalID", "TransactionID", "Origin", "OrderNumber", "CardNum",
                    "CVV2", "CardExpMonth", "CardExpYear", "CardName", "TotalAmount", "BillingPostalCode",
                    "Email", "UserIPAddress", "UDField3"]
    assert tags == sorted(tags, key=FIELD_ORDER.index)
    assert "Token" not in tags  # None means "not sent", never an empty element


def test_build_request_escapes_and_is_pure_ascii():
    text = build_request("SALE", "TESTTERMINAL", {"CardName": "Zoë <O'Brien> & \"Sons\" — 東京",
                                                  "ACH": Node(attrs={"Type": 'a"b&<'}, children=[("CheckNumber", "1")])})
    text.encode("ascii")  # no UnicodeEncodeError
    assert "&amp;" in text and "&lt;O'Brien&gt;" in text and "&#235;" in text
    root = ET.fromstring(text)
    assert root.find("CardName").text == "Zoë <O'Brien> & \"Sons\" — 東京"
    assert root.find("ACH").get("Type") == 'a"b&<'


def test_build_request_refuses_unknown_elements_and_control_characters():
    with pytest.raises(ValueError, match="unknown"):
        build_request("SALE", "T", {"Bogus": "1"})
    with pytest.raises(ValueError, match="CardName") as info:
        build_request("SALE", "T", {"CardName": "bad\x01name"})
    assert "bad" not in str(info.value)


def test_build_request_nested_ach_keeps_child_order():
    node = Node(attrs={"Type": "CHECKING", "SEC": "WEB"},
                children=[("AccountNumber", "123"), ("ABA", "111000025"), ("CheckNumber", "100")])
    root = ET.fromstring(build_request("CHECK", "T", {"ACH": node, "CardName": "Pat", "TotalAmount": "5"}))
    ach = root.find("ACH")
    assert ach.attrib == {"Type": "CHECKING", "SEC": "WEB"}
    assert [c.tag for c in ach] == ["AccountNumber", "ABA", "CheckNumber"]
    assert [c.tag for c in root] == ["TransactionType", "TerminalID", "ACH", "CardName", "TotalAmount"]


def sent(call, *args, **kwargs):
    """Run ``call`` on a client with a fake session; return (result, parsed request root)."""
    session = FakeSession()
    client = make_client(session)
    result = getattr(client, call)(*args, **kwargs)
    assert len(session.calls) == 1
    return result, ET.fromstring(session.bodies[0]), session.calls[0]


def fields_of(root):
    return {c.tag: c.text for c in root}


def test_sale_with_card_sends_card_fields_and_ud_field3():
    result, root, call = sent("sale", TID, 1250, card=card(cvv=CVV, holder="Pat Example", postal_code="60527"),
                              order_number="INV-1001", email="pat@example.com", user_ip="192.0.2.1")
    f = fields_of(root)
    assert f["TransactionType"] == "SALE" and f["TerminalID"] == "TESTTERMINAL"
    assert f["TransactionID"] == TID and f["TotalAmount"] == "1250" and f["Origin"] == "INTERNET"
    assert f["CardNum"] == PAN and f["CVV2"] == CVV and f["CardExpMonth"] == "09" and f["CardExpYear"] == "30"
    assert f["CardName"] == "Pat Example" and f["BillingPostalCode"] == "60527"
    assert f["OrderNumber"] == "INV-1001" and f["Email"] == "pat@example.com"
    assert f["UserIPAddress"] == "192.0.2.1" and f["UDField3"] == SOFTWARE
    assert "Token" not in f and root.find("CardNum").attrib == {}
    assert call["timeout"] == (10.0, 45.0) and call["allow_redirects"] is False
    assert call["headers"]["Content-Type"].startswith("text/xml")
    assert result.approved and result.transaction_id == TID and result.transaction_type == "SALE"
    assert result.message == "The payment was approved."


def test_sale_with_token_sends_no_card_data_and_recurring_origin():
    _, root, _ = sent("sale", TID, 500, token=TOKEN, origin="RECURRING")
    f = fields_of(root)
    assert f["Token"] == TOKEN and f["Origin"] == "RECURRING"
    for absent in ("CardNum", "CVV2", "CardExpMonth", "CardExpYear"):
        assert absent not in f


def test_sale_tokenize_sets_the_cardnum_attribute():
    _, root, _ = sent("sale", TID, 500, card=card(), tokenize=True)
    assert root.find("CardNum").get("Tokenize") == "true"


@pytest.mark.parametrize("origin", ["INTERNET", "RECURRING", "POS", "PHONE ORDER", "MAIL ORDER", "recurring"])
def test_every_documented_origin_is_accepted(origin):
    _, root, _ = sent("sale", TID, 500, token=TOKEN, origin=origin)
    assert root.find("Origin").text == origin.upper()


@pytest.mark.parametrize("year,expected", [(2031, "31"), (31, "31"), ("2031", "31"), ("07", "07"), (2000, "00")])
def test_expiry_year_is_sent_as_two_digits(year, expected):
    _, root, _ = sent("tokenize", card(exp_month=3, exp_year=year))
    assert root.find("CardExpYear").text == expected and root.find("CardExpMonth").text == "03"


def test_tokenize_sends_card_without_transaction_id_amount_or_cvv():
    result, root, _ = sent("tokenize", card(cvv=CVV, holder="Pat"))
    f = fields_of(root)
    assert f["TransactionType"] == "TOKENIZE" and f["CardNum"] == PAN and f["CardName"] == "Pat"
    for absent in ("TransactionID", "TotalAmount", "CVV2"):
        assert absent not in f
    assert result.approved and result.token == TOKEN and result.message == "The card was saved."


def test_update_token_expiry_sends_token_and_new_expiry():
    session = FakeSession(reply_xml(root="IPPayResponse", ActionCode="000", ResponseText="TOKENIZED"))
    result = make_client(session).update_token_expiry(TOKEN, 12, 2033)
    f = fields_of(ET.fromstring(session.bodies[0]))
    assert (f["TransactionType"], f["Token"], f["CardExpMonth"], f["CardExpYear"]) == ("TOKENIZE", TOKEN, "12", "33")
    assert "CardNum" not in f
    assert result.approved and result.token == TOKEN  # the reply had none: keep ours


def test_tokenize_bank_account_sends_root_level_account_and_aba():
    _, root, _ = sent("tokenize_bank_account", ACCOUNT)
    f = fields_of(root)
    assert f["TransactionType"] == "TOKENIZE" and f["AccountNumber"] == "1234567890" and f["ABA"] == "111000025"


def test_enquire_sends_only_the_transaction_id():
    _, root, _ = sent("enquire", TID)
    assert [c.tag for c in root] == ["TransactionType", "TerminalID", "TransactionID", "UDField3"]
    assert root.find("TransactionType").text == "ENQ"


def test_ping_sends_nothing_but_type_terminal_and_software():
    result, root, _ = sent("ping")
    assert [c.tag for c in root] == ["TransactionType", "TerminalID", "UDField3"]
    assert result.approved


def test_credit_linked_and_unlinked():
    _, root, _ = sent("credit", 300, transaction_id=TID, token=TOKEN)
    f = fields_of(root)
    assert (f["TransactionType"], f["TransactionID"], f["TotalAmount"], f["Token"]) == ("CREDIT", TID, "300", TOKEN)
    new_id = new_transaction_id()
    _, root, _ = sent("credit", 300, transaction_id=new_id, card=card(cvv=CVV))
    f = fields_of(root)
    assert f["TransactionID"] == new_id and f["CardNum"] == PAN and f["CardExpYear"] == "30"
    assert "CVV2" not in f  # a refund does not need (and must not spread) the CVV


def test_void_sends_approval_amount_and_token():
    _, root, _ = sent("void", TID, "TEST01", 1000, token=TOKEN)
    f = fields_of(root)
    assert (f["TransactionType"], f["TransactionID"], f["Approval"], f["TotalAmount"], f["Token"]) == (
        "VOID", TID, "TEST01", "1000", TOKEN)


def test_check_with_account_and_with_token():
    _, root, _ = sent("check", TID, 2500, "Pat Example", account=BankAccount("11111999", "071025661", "SAVINGS", "PPD"),
                      check_number="15")
    ach = root.find("ACH")
    assert ach.attrib == {"Type": "SAVINGS", "SEC": "PPD"}
    assert [(c.tag, c.text) for c in ach] == [("AccountNumber", "11111999"), ("ABA", "071025661"), ("CheckNumber", "15")]
    assert root.find("CardName").text == "Pat Example" and root.find("TotalAmount").text == "2500"
    _, root, _ = sent("check", TID, 2500, "Pat", token="F7F2F12346K3267")
    ach = root.find("ACH")
    assert ach.attrib == {"Type": "CHECKING", "SEC": "WEB"}
    assert [(c.tag, c.text) for c in ach] == [("Token", "F7F2F12346K3267"), ("CheckNumber", "100")]


def test_every_request_carries_ud_field3():
    session = FakeSession()
    client = make_client(session)
    client.ping()
    client.enquire(TID)
    client.tokenize(card())
    client.update_token_expiry(TOKEN, 1, 30)
    client.tokenize_bank_account(ACCOUNT)
    client.sale(TID, 100, token=TOKEN)
    client.credit(100, transaction_id=TID, token=TOKEN)
    client.void(TID, "TEST01", 100, token=TOKEN)
    client.check(TID, 100, "Pat", token=TOKEN)
    assert len(session.bodies) == 9
    assert all(ET.fromstring(b).find("UDField3").text == SOFTWARE for b in session.bodies)


def test_default_software_names_the_package_version():
    import splynx_ippay

    client = IPpayClient("http://127.0.0.1:9/ippay", "TESTTERMINAL")
    assert client.software == f"splynx-ippay/{splynx_ippay.__version__}"
    client.close()


@pytest.mark.parametrize("call", [
    lambda c: c.sale(TID, 0, token=TOKEN),
    lambda c: c.sale(TID, -5, token=TOKEN),
    lambda c: c.sale(TID, 10.5, token=TOKEN),
    lambda c: c.sale(TID, Decimal("10"), token=TOKEN),
    lambda c: c.sale(TID, True, token=TOKEN),
    lambda c: c.sale(TID, "1000", token=TOKEN),
    lambda c: c.sale("SHORT", 100, token=TOKEN),
    lambda c: c.sale(TID + "X", 100, token=TOKEN),
    lambda c: c.sale("ABCDEFGHIJ1234567-", 100, token=TOKEN),
    lambda c: c.sale(TID, 100),
    lambda c: c.sale(TID, 100, token=TOKEN, card=card()),
    lambda c: c.sale(TID, 100, token=TOKEN, tokenize=True),
    lambda c: c.sale(TID, 100, token=TOKEN, origin="WEB"),
    lambda c: c.sale(TID, 100, token=TOKEN, email="not an email"),
    lambda c: c.sale(TID, 100, token=TOKEN, user_ip="999.1.1.1"),
    lambda c: c.sale(TID, 100, token=" "),
    lambda c: c.sale(TID, 100, card=card(exp_month=13)),
    lambda c: c.sale(TID, 100, card=card(exp_month=0)),
    lambda c: c.sale(TID, 100, card=card(exp_year=1999)),
    lambda c: c.sale(TID, 100, card=card(exp_year=100)),
    lambda c: c.sale(TID, 100, card=card(exp_year="2x")),
    lambda c: c.sale(TID, 100, card=card(number="4111")),
    lambda c: c.sale(TID, 100, card=card(number="4111a11111111111")),
    lambda c: c.sale(TID, 100, card=card(cvv="12")),
    lambda c: c.sale(TID, 100, card=card(holder="bad\x00name")),
    lambda c: c.tokenize("4111111111111111"),
    lambda c: c.void(TID, "", 100, token=TOKEN),
    lambda c: c.void(TID, None, 100, token=TOKEN),
    lambda c: c.credit(100, transaction_id=TID),
    lambda c: c.check(TID, 100, "", token=TOKEN),
    lambda c: c.check(TID, 100, "Pat"),
    lambda c: c.check(TID, 100, "Pat", token=TOKEN, account=ACCOUNT),
    lambda c: c.check(TID, 100, "Pat", token=TOKEN, check_number="abc"),
    lambda c: c.check(TID, 100, "Pat", token=TOKEN, sec="XYZ"),
    lambda c: c.check(TID, 100, "Pat", account=BankAccount("123", "111000025")),
    lambda c: c.check(TID, 100, "Pat", account=BankAccount("12345", "11100002")),
    lambda c: c.tokenize_bank_account(BankAccount("12345", "111000025", account_type="BROKERAGE")),
    lambda c: c.enquire(None),
])
def test_invalid_requests_are_refused_locally_and_nothing_is_sent(call):
    session = FakeSession()
    with pytest.raises(GatewayRequestError) as info:
        call(make_client(session))
    assert session.calls == []
    assert isinstance(info.value, ValueError) and isinstance(info.value, GatewayError)
    assert "4000300020001000" not in str(info.value) and "4111" not in str(info.value)


def test_client_constructor_validates_its_settings():
    for url in ("", "ftp://x/ippay", "testgtwy.ippay.com/ippay"):
        with pytest.raises(GatewayRequestError):
            IPpayClient(url, "TESTTERMINAL")
    with pytest.raises(GatewayRequestError):
        IPpayClient("https://x/ippay", " ")
    with pytest.raises(GatewayRequestError):
        IPpayClient("https://x/ippay", "T", read_timeout=0)


def test_card_and_account_reprs_hide_the_numbers():
    text = repr(card(cvv=CVV)) + repr(ACCOUNT)
    assert PAN not in text and CVV not in text and "1234567890" not in text
    assert "1000" in text and card().last4 == "1000"


# --------------------------------------------------------------------------- reply parsing


@pytest.mark.parametrize("root", ["ippayResponse", "IPPayResponse", "JetPayResponse", "IPPAYRESPONSE",
                                  "IPPayresponse", "response"])
def test_parse_response_ignores_the_root_name_and_case(root):
    fields = parse_response(reply_xml(root=root, TransactionID=TID, ActionCode="000", Approval="TEST01",
                                      ResponseText="APPROVED"))
    assert fields == {"TransactionID": TID, "ActionCode": "000", "Approval": "TEST01", "ResponseText": "APPROVED"}


def test_parse_response_strips_whitespace_and_normalises_tag_case():
    body = (b"<?xml version='1.0'?>\n<ippayresponse>\n  <actioncode> 900 </actioncode>\n"
            b"  <RESPONSETEXT>Invalid card number.  </RESPONSETEXT>\n  <errmsg>\n Invalid card number.  \n</errmsg>\n"
            b"  <IPTRANSID>00000000000000000084112376</IPTRANSID><Approval></Approval>\n</ippayresponse>\n")
    fields = parse_response(body)
    assert fields == {"ActionCode": "900", "ResponseText": "Invalid card number.",
                      "ErrMsg": "Invalid card number.", "ipTransID": "00000000000000000084112376"}


def test_parse_response_reads_latin1_with_or_without_a_declaration():
    declared = '<?xml version="1.0" encoding="ISO-8859-1"?><ippayResponse><ActionCode>000</ActionCode>' \
               '<ResponseText>APPROVED Café</ResponseText></ippayResponse>'.encode("latin-1")
    assert parse_response(declared)["ResponseText"] == "APPROVED Café"
    undeclared = declared.split(b"?>", 1)[1]
    assert parse_response(undeclared)["ResponseText"] == "APPROVED Café"


def test_parse_response_pads_a_short_action_code():
    assert parse_response(reply_xml(ActionCode="5"))["ActionCode"] == "005"


@pytest.mark.parametrize("body,kind", [
    (b"", "empty_body"),
    (b"  \r\n ", "empty_body"),
    (b"<ippayResponse><ActionCode>000</ActionCode>", "malformed"),
    (b"<html><body>502 Bad Gateway</body></html>", "no_action_code"),
    (b"Internal error", "malformed"),
    (reply_xml(ResponseText="APPROVED"), "no_action_code"),
    (reply_xml(ActionCode="  "), "no_action_code"),
    (reply_xml(ErrMsg="Cannot determine the URL for the processor."), "no_action_code"),
    (reply_xml(ActionCode="OK"), "bad_action_code"),
    (b"<ippayResponse><ActionCode>000</ActionCode><ActionCode>005</ActionCode></ippayResponse>", "bad_action_code"),
    (b"<ippay><TransactionType>SALE</TransactionType><CardNum>4000300020001000</CardNum></ippay>", "echo"),
    (b"<JetPay><TransactionType>SALE</TransactionType></JetPay>", "echo"),
    (b"<ippayResponse><ActionCode>000</ActionCode><TransactionType>SALE</TransactionType></ippayResponse>", "echo"),
    (b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><ippayResponse><ActionCode>&b;</ActionCode>'
     b'</ippayResponse>', "malformed"),
    (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><ippayResponse><ActionCode>&e;</ActionCode>'
     b'</ippayResponse>', "malformed"),
])
def test_parse_response_rejects_replies_that_are_not_answers(body, kind):
    with pytest.raises(ResponseFormatError) as info:
        parse_response(body)
    assert info.value.kind == kind
    assert PAN not in str(info.value)


@pytest.mark.parametrize("body,reason", [
    (b"", "empty_body"),
    (b"<ippayResponse><ActionCode>00", "malformed"),
    (reply_xml(ResponseText="APPROVED"), "no_action_code"),
    (b"<ippay><TransactionType>SALE</TransactionType><CardNum>4000300020001000</CardNum><CVV2>737</CVV2></ippay>",
     "echo"),
])
def test_unusable_replies_raise_unknown_outcome(body, reason):
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        make_client(FakeSession(body)).sale(TID, 1000, card=card(cvv=CVV))
    assert info.value.reason == reason
    assert info.value.transaction_type == "SALE" and info.value.transaction_id == TID
    assert PAN not in str(info.value) and "<CVV2>737" not in str(info.value)


def test_reply_without_action_code_keeps_the_scrubbed_err_msg():
    body = reply_xml(ErrMsg=f"  Cannot determine the URL for the processor. Card {PAN}  ")
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        make_client(FakeSession(body)).ping()
    assert info.value.err_msg.startswith("Cannot determine the URL for the processor.")
    assert PAN not in info.value.err_msg and info.value.err_msg.endswith("1000")


def test_reply_about_another_transaction_is_an_unknown_outcome():
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        make_client(FakeSession(reply_xml(TransactionID="ZZZZZZZZZZZZZZZZZZ", ActionCode="000"))).sale(
            TID, 100, token=TOKEN)
    assert info.value.reason == "transaction_id_mismatch"


def test_reply_transaction_id_is_compared_case_insensitively():
    result = make_client(FakeSession(reply_xml(TransactionID=TID.lower(), ActionCode="000"))).enquire(TID)
    assert result.approved


def test_http_status_other_than_200_is_an_unknown_outcome_and_the_body_is_not_parsed():
    for status in (500, 302, 404):
        with pytest.raises(GatewayUnknownOutcomeError) as info:
            make_client(FakeSession(FakeResponse(reply_xml(ActionCode="000"), status=status))).ping()
        assert info.value.reason == "http_status" and info.value.status_code == status


def test_oversized_reply_is_an_unknown_outcome():
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        make_client(FakeSession(b"<a>" + b"x" * (1 << 20) + b"</a>")).ping()
    assert info.value.reason == "oversized_body"


# --------------------------------------------------------------------------- results and codes


def decline(**fields):
    return make_client(FakeSession(reply_xml(TransactionID=TID, **fields))).sale(TID, 1005, token=TOKEN)


def test_a_decline_is_a_result_with_plain_words():
    result = decline(ActionCode="005", ResponseText="DECLINED")
    assert isinstance(result, GatewayResult)
    assert not result.approved and result.declined and result.action_code == "005"
    assert result.response_text == "DECLINED"
    assert result.message == "Your card issuer declined the payment. Please use another card or contact your bank."
    assert not result.not_found


@pytest.mark.parametrize("fields,message", [
    ({"ActionCode": "900", "ResponseText": "DECLINED", "ErrMsg": "Invalid card number.  "},
     "The card number is not valid."),
    ({"ActionCode": "900", "ResponseText": "Invalid card number.  "}, "The card number is not valid."),
    ({"ActionCode": "900", "ErrMsg": "Bad dollar amount. TotalAmount must be greater than 0."},
     "The payment amount was not accepted."),
    ({"ActionCode": "900", "ErrMsg": "Cannot determine the URL for the processor."},
     "Card payments are not set up correctly on our side. Please contact us."),
    ({"ActionCode": "900", "ErrMsg": "Something new"},
     "The payment gateway rejected the request. Please check the details and try again."),
    ({"ActionCode": "051", "ResponseText": "DECLINED"}, "There are not enough funds on the card. Please use another card."),
    ({"ActionCode": "054"}, "The card has expired. Please use another card or update the expiry date."),
    ({"ActionCode": "917"}, "The card has expired. Please use another card or update the expiry date."),
    ({"ActionCode": "806"}, "The security code (CVV) is not valid. Please check it and try again."),
    ({"ActionCode": "933"}, "The security code (CVV) is not valid. Please check it and try again."),
    ({"ActionCode": "094", "ErrMsg": "Duplicate"}, "This payment was already submitted, so it was not charged again."),
    ({"ActionCode": "043"}, "Your card issuer declined the payment. Please use another card or contact your bank."),
    ({"ActionCode": "777"}, "Your card issuer declined the payment. Please use another card or contact your bank."),
])
def test_decline_messages(fields, message):
    assert decline(**fields).message == message


def test_not_found_flag():
    result = make_client(FakeSession(reply_xml(TransactionID=TID, ActionCode="025",
                                               ResponseText="Transaction Not Found"))).enquire(TID)
    assert result.not_found and not result.approved


def test_codes_table_covers_the_spec_codes():
    for code in ("000", "005", "025", "051", "054", "094", "806", "900", "917", "923", "933", "999"):
        assert codes.meaning(code) != "Unknown code"
    assert codes.meaning("150") == "Deny (Amex)"
    assert codes.describe("000", transaction_type="CREDIT") == "The refund was accepted."
    assert codes.describe("051", transaction_type="CHECK") == "There are not enough funds in the bank account."
    assert codes.describe("005", transaction_type="CHECK").startswith("Your bank declined")


def test_tokenize_without_a_token_is_not_approved():
    result = make_client(FakeSession(reply_xml(root="IPPayResponse", ActionCode="000",
                                               ResponseText="TOKENIZED"))).tokenize(card())
    assert result.action_code == "000" and not result.approved and result.token is None


def test_sale_asking_for_a_token_is_approved_even_without_one():
    # The money moved: a missing Token must not turn an approved charge into a "decline".
    result = make_client(FakeSession(reply_xml(TransactionID=TID, ActionCode="000", Approval="TEST00"))).sale(
        TID, 1000, card=card(), tokenize=True)
    assert result.approved and result.token is None and result.approval == "TEST00"


def test_result_carries_every_reply_field():
    result = decline(ActionCode="000", ResponseText="APPROVED", Approval="TEST10", AVS="Y", CVV2="P",
                     Token=TOKEN, ipTransID="00000000000000000000000042", AdditionalInfo="note")
    assert (result.approval, result.avs, result.cvv2, result.token, result.ip_trans_id, result.additional_info) == (
        "TEST10", "Y", "P", TOKEN, "00000000000000000000000042", "note")
    assert result.err_msg is None


# --------------------------------------------------------------------------- scrubbing


REQUEST_WITH_SECRETS = (
    '<ippay><TransactionType>SALE</TransactionType><TransactionID>B20191106095946460</TransactionID>'
    f'<CardNum Tokenize="true">{PAN}</CardNum><CVV2>{CVV}</CVV2><Token>{TOKEN}</Token>'
    '<Track1>%B4000300020001000^PAT/EXAMPLE^30091010000000000000?</Track1><Track2>;4000300020001000=3009?</Track2>'
    '<ACH Type="CHECKING" SEC="WEB"><AccountNumber Tokenize="true">1234567890</AccountNumber><ABA>111000025</ABA>'
    '<CheckNumber>100</CheckNumber></ACH><Password>s3cret</Password>'
    '<ipTransID>00000000000000000084112376</ipTransID></ippay>'
)


def test_scrub_masks_every_secret_and_keeps_last_four():
    text = scrub(REQUEST_WITH_SECRETS)
    assert PAN not in text and CVV not in text and TOKEN not in text and "1234567890" not in text
    assert "PAT/EXAMPLE" not in text and "=3009" not in text and "s3cret" not in text
    assert '<CardNum Tokenize="true">XXXXXXXXXXXX1000</CardNum>' in text
    assert "<CVV2>XXX</CVV2>" in text
    assert "<Token>XXXXXXXXXXXX1000</Token>" in text
    assert '<AccountNumber Tokenize="true">XXXXXX7890</AccountNumber>' in text
    # Not secret, kept as is.
    assert "B20191106095946460" in text and "00000000000000000084112376" in text and "111000025" in text


@pytest.mark.parametrize("text", [
    f"<cardnum>{PAN}</cardnum>",
    f"<CARDNUM >{PAN}</CARDNUM>",
    f"<CardNum\n  Tokenize='true'\n>{PAN}</CardNum>",
    f"<ns:CardNum xmlns:ns='x'>{PAN}</ns:CardNum>",
    f"<CardNum><![CDATA[{PAN}]]></CardNum>",
    f"<ippay><CardNum>{PAN}",                      # truncated mid-value
    f"<ippay><CardNum>{PAN[:10]}",                 # truncated mid-number
    f"ErrMsg: card {PAN} rejected",                # free text
    f"card 4000 3000 2000 1000 rejected",          # grouped digits
    f'<x CardNum="{PAN}"/>',                        # attribute form
])
def test_scrub_is_tolerant_of_case_attributes_and_broken_xml(text):
    masked = scrub(text)
    assert PAN not in masked and PAN[:10] not in masked
    assert "4000 3000 2000" not in masked


def test_scrub_masks_cvv_fully_but_keeps_a_reply_cvv_result_letter():
    assert scrub("<cvv2>1234</cvv2>") == "<cvv2>XXX</cvv2>"
    assert scrub("<CVV2>P</CVV2>") == "<CVV2>P</CVV2>"


def test_scrub_accepts_bytes_and_none():
    assert PAN.encode() not in scrub(f"<CardNum>{PAN}</CardNum>".encode()).encode()
    assert scrub(None) == ""


def test_exception_messages_are_scrubbed():
    err = GatewayError(f"boom <CardNum>{PAN}</CardNum> {PAN}", transaction_type="SALE")
    assert PAN not in str(err) and PAN not in repr(err) and PAN not in err.args[0]


def test_debug_transcripts_are_scrubbed_even_for_an_echoed_request(caplog):
    # BOP's failure mode: IPpay echoes the whole request, card number included (ippay §9.4).
    echo = ("<ippay><TransactionType>SALE</TransactionType><TerminalID>TESTTERMINAL</TerminalID>"
            f"<CardNum>{PAN}</CardNum><CVV2>{CVV}</CVV2><CardExpMonth>09</CardExpMonth></ippay>").encode()
    caplog.set_level(logging.DEBUG, logger="splynx_ippay.ippay")
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        make_client(FakeSession(echo)).sale(TID, 1000, card=card(cvv=CVV, holder="Pat"))
    assert info.value.reason == "echo"
    assert "request" in caplog.text and "reply" in caplog.text  # both transcripts were logged...
    assert "XXXXXXXXXXXX1000" in caplog.text
    assert PAN not in caplog.text and f">{CVV}<" not in caplog.text  # ...but masked
    assert PAN not in str(info.value) and CVV not in str(info.value)
    for record in caplog.records:
        assert record.name.startswith("splynx_ippay.ippay")


def test_transcripts_are_debug_only(caplog):
    caplog.set_level(logging.INFO, logger="splynx_ippay.ippay")
    make_client(FakeSession()).sale(TID, 1000, card=card(cvv=CVV))
    assert "<ippay>" not in caplog.text and "SALE" in caplog.text
    assert PAN not in caplog.text


def test_custom_logger_is_used(caplog):
    logger = logging.getLogger("custom.ippay")
    caplog.set_level(logging.DEBUG, logger="custom.ippay")
    make_client(FakeSession(), logger=logger).ping()
    assert any(r.name == "custom.ippay" and "<TransactionType>PING" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- transport classification


def refused_error():
    conn_err = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/ippay", conn_err))


def dns_error():
    inner = urllib3.exceptions.NewConnectionError(None, "Name or service not known")
    inner.__cause__ = socket.gaierror(-2, "Name or service not known")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/ippay", inner))


@pytest.mark.parametrize("exc,cls,reason", [
    (refused_error(), GatewayNotSentError, "connect_failed"),
    (dns_error(), GatewayNotSentError, "connect_failed"),
    (requests.exceptions.ConnectTimeout("connect timed out"), GatewayNotSentError, "connect_timeout"),
    (requests.exceptions.ReadTimeout("read timed out"), GatewayUnknownOutcomeError, "read_timeout"),
    (requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", RemoteDisconnected("Remote end closed connection without response"))),
     GatewayUnknownOutcomeError, "connection_lost"),
    (requests.exceptions.SSLError("EOF occurred in violation of protocol"), GatewayUnknownOutcomeError,
     "connection_lost"),
    (ConnectionResetError(104, "Connection reset by peer"), GatewayUnknownOutcomeError, "connection_lost"),
])
def test_transport_errors_are_classified(exc, cls, reason):
    with pytest.raises(cls) as info:
        make_client(FakeSession(exc)).sale(TID, 1000, card=card())
    assert type(info.value) is cls and info.value.reason == reason
    assert info.value.transaction_id == TID and info.value.transaction_type == "SALE"
    assert info.value.__suppress_context__  # the requests exception (which holds the body) is not chained


def test_tls_error_raised_by_the_handshake_is_not_sent_whatever_its_reason():
    # OpenSSL renames its reasons between versions; the raising frame is what counts.
    def do_handshake():
        raise ssl.SSLError(1, "[SSL] record layer failure")

    try:
        do_handshake()
    except ssl.SSLError as exc:
        during_handshake = exc
    wrapped = requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(
        None, "/ippay", urllib3.exceptions.SSLError(during_handshake)))
    with pytest.raises(GatewayNotSentError) as info:
        make_client(FakeSession(wrapped)).ping()
    assert info.value.reason == "tls_handshake"
    later = requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(
        None, "/ippay", urllib3.exceptions.SSLError(ssl.SSLError(1, "[SSL] record layer failure"))))
    with pytest.raises(GatewayUnknownOutcomeError):
        make_client(FakeSession(later)).ping()


def test_an_error_while_reading_the_body_is_an_unknown_outcome():
    # Even an SSL error: once the status line has arrived the request was certainly sent.
    for exc in (requests.exceptions.ChunkedEncodingError("cut"), requests.exceptions.SSLError("bad record mac"),
                requests.exceptions.ConnectionError(urllib3.exceptions.ReadTimeoutError(None, "/", "timed out"))):
        with pytest.raises(GatewayUnknownOutcomeError):
            make_client(FakeSession(FakeResponse(exc=exc))).ping()


def test_invalid_url_at_send_time_is_a_request_error():
    with pytest.raises(GatewayRequestError):
        make_client(FakeSession(requests.exceptions.InvalidURL("bad"))).ping()


# --------------------------------------------------------------------------- raw HTTP stub on loopback


class _StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        try:
            self._answer()
        except OSError:  # the client gave up first (read-timeout tests)
            self.close_connection = True

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        action = self.server.actions.pop(0) if self.server.actions else ("reply", 200, ok_reply())
        kind = action[0]
        if kind == "sleep":
            time.sleep(action[1])
            action = ("reply", 200, ok_reply())
            kind = "reply"
        if kind == "reply":
            _, status, body = action
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif kind == "cut":
            self.send_response(200)
            self.send_header("Content-Length", "500")
            self.end_headers()
            self.wfile.write(b"<ippayResponse><ActionCo")
            self.wfile.flush()
            self.close_connection = True
        elif kind == "drop":
            self.close_connection = True  # close without a status line

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    server.daemon_threads = True
    server.block_on_close = False
    server.actions = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}/ippay"
    yield server
    server.shutdown()
    server.server_close()


def test_stub_read_timeout_is_an_unknown_outcome(stub):
    stub.actions.append(("sleep", 1.0))
    client = IPpayClient(stub.url, "TESTTERMINAL", read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        client.sale(TID, 1000, token=TOKEN)
    assert info.value.reason == "read_timeout"
    assert time.monotonic() - started < 0.9


def test_stub_connection_cut_mid_reply_is_an_unknown_outcome(stub):
    stub.actions.append(("cut",))
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        IPpayClient(stub.url, "TESTTERMINAL").ping()
    # urllib3 1.26 does not enforce Content-Length, so the short body may also
    # reach the parser; either way the outcome is unknown.
    assert info.value.reason in ("connection_lost", "malformed")


def test_stub_connection_closed_without_reply_is_an_unknown_outcome(stub):
    stub.actions.append(("drop",))
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        IPpayClient(stub.url, "TESTTERMINAL").ping()
    assert info.value.reason == "connection_lost"


def test_stub_redirect_is_not_followed(stub):
    stub.actions.append(("reply", 302, b""))
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        IPpayClient(stub.url, "TESTTERMINAL").ping()
    assert info.value.status_code == 302


def test_tls_handshake_failure_is_not_sent(stub):
    # https:// to a plain-HTTP port: the handshake fails before any request byte is written.
    url = stub.url.replace("http://", "https://")
    with pytest.raises(GatewayNotSentError) as info:
        IPpayClient(url, "TESTTERMINAL", connect_timeout=2, read_timeout=2).ping()
    assert info.value.reason == "tls_handshake"


def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_refused_connection_is_not_sent():
    client = IPpayClient(f"http://127.0.0.1:{closed_port()}/ippay", "TESTTERMINAL", connect_timeout=2)
    with pytest.raises(GatewayNotSentError) as info:
        client.sale(TID, 1000, card=card(cvv=CVV))
    assert info.value.reason == "connect_failed" and info.value.transaction_id == TID
    assert PAN not in str(info.value)


# --------------------------------------------------------------------------- the IPpay simulator


def _simulator_available():
    try:
        from sandbox.ippay import create_app  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def sim(request):
    """The simulator (tests/conftest.py ``ippay_sim``) plus helpers; skipped until it exists."""
    if not _simulator_available():
        pytest.skip("sandbox.ippay.create_app is not available yet")
    server = request.getfixturevalue("ippay_sim")
    server.gateway = server.url + "/ippay"
    server.client = lambda **kw: IPpayClient(server.gateway, "TESTTERMINAL", **kw)

    def control(path, payload=None):
        if payload is None:
            response = requests.get(server.url + path, timeout=5)
        else:
            response = requests.post(server.url + path, json=payload, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    server.control = control

    def token():
        saved = IPpayClient(server.gateway, "TESTTERMINAL").tokenize(future_card())
        assert saved.approved
        return saved.token

    server.token = token
    return server


def future_card(number=PAN, **kw):
    return Card(number, 12, time.gmtime().tm_year + 2, **kw)


def test_sim_cents_decide_approve_and_decline(sim):
    client = sim.client()
    approved = client.sale(new_transaction_id(), 1000, card=future_card(cvv=CVV, postal_code="60527"))
    assert approved.approved and approved.action_code == "000" and approved.response_text == "APPROVED"
    assert re.fullmatch(r"TEST\d\d", approved.approval or "")
    declined = client.sale(new_transaction_id(), 1005, card=future_card())
    assert not declined.approved and declined.action_code == "005"
    assert declined.message == "Your card issuer declined the payment. Please use another card or contact your bank."


def test_sim_luhn_failure_is_900_invalid_card_number(sim):
    result = sim.client().sale(new_transaction_id(), 1000, card=future_card("4111111111111112"))
    assert result.action_code == "900" and not result.approved
    assert result.message == "The card number is not valid."


def test_sim_tokenize_then_charge_the_token(sim):
    client = sim.client()
    saved = client.tokenize(future_card(holder="Pat Example"))
    assert saved.approved and saved.token
    # ippay §6: same length as the PAN, first digit and last four kept, deterministic.
    assert len(saved.token) == len(PAN) and saved.token[0] == PAN[0] and saved.token.endswith(PAN[-4:])
    assert client.tokenize(future_card()).token == saved.token
    charged = client.sale(new_transaction_id(), 2500, token=saved.token, origin="RECURRING")
    assert charged.approved
    updated = client.update_token_expiry(saved.token, 3, time.gmtime().tm_year + 4)
    assert updated.approved and updated.token == saved.token


def test_sim_sale_can_tokenize_in_the_same_call(sim):
    result = sim.client().sale(new_transaction_id(), 1000, card=future_card(), tokenize=True)
    assert result.approved and result.token and result.token.endswith(PAN[-4:])


def test_sim_enquire_after_a_committed_timeout_finds_the_approval(sim):
    token = sim.token()
    sim.control("/_sim/faults", {"faults": [{"kind": "timeout_commit", "delay_s": 1.0, "types": ["SALE"]}]})
    client = sim.client(read_timeout=0.3)
    tid = new_transaction_id()
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        client.sale(tid, 1000, token=token)
    assert info.value.reason == "read_timeout" and info.value.transaction_id == tid
    deadline = time.monotonic() + 3
    while True:
        found = client.enquire(tid)
        if found.approved or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert found.approved and found.transaction_id == tid and found.approval


def test_sim_enquire_after_an_uncommitted_timeout_is_not_found_and_the_id_can_be_resent(sim):
    token = sim.token()
    sim.control("/_sim/faults", {"faults": [{"kind": "timeout_no_commit", "delay_s": 1.0, "types": ["SALE"]}]})
    client = sim.client(read_timeout=0.3)
    tid = new_transaction_id()
    with pytest.raises(GatewayUnknownOutcomeError):
        client.sale(tid, 1000, token=token)
    missing = client.enquire(tid)
    assert missing.not_found and missing.action_code == "025" and not missing.approved
    assert client.sale(tid, 1000, token=token).approved  # ippay §8 step 5: same ID, resent


@pytest.mark.parametrize("kind,reason", [("http_500", "http_status"), ("empty", "empty_body"),
                                         ("malformed", "malformed"), ("echo", "echo")])
def test_sim_faults_are_unknown_outcomes(sim, kind, reason, caplog):
    caplog.set_level(logging.DEBUG, logger="splynx_ippay.ippay")
    sim.control("/_sim/faults", {"faults": [{"kind": kind, "types": ["SALE"], "count": 1}]})
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        sim.client().sale(new_transaction_id(), 1000, card=future_card(cvv=CVV))
    assert info.value.reason == reason
    assert PAN not in str(info.value) and PAN not in caplog.text and f">{CVV}<" not in caplog.text


def test_sim_void_needs_the_matching_approval_and_amount(sim):
    token = sim.token()
    client = sim.client()
    tid = new_transaction_id()
    sale = client.sale(tid, 1000, token=token)
    assert sale.approved
    mismatch = client.void(tid, sale.approval, 999, token=token)
    assert not mismatch.approved
    voided = client.void(tid, sale.approval, 1000, token=token)
    assert voided.approved and voided.response_text == "VOID PROCESSED" and voided.approval == sale.approval
    ledger = sim.control("/_sim/ledger")
    assert json.dumps(ledger).count(tid) >= 1


def test_sim_void_of_an_unknown_transaction_is_not_found(sim):
    token = sim.token()
    result = sim.client().void(new_transaction_id(), "TEST00", 1000, token=token)
    assert result.not_found


def test_sim_credit_linked_and_unlinked(sim):
    token = sim.token()
    client = sim.client()
    tid = new_transaction_id()
    assert client.sale(tid, 1000, token=token).approved
    linked = client.credit(400, transaction_id=tid, token=token)
    assert linked.approved and linked.response_text == "RETURN ACCEPTED" and linked.approval
    unlinked = client.credit(300, transaction_id=new_transaction_id(), card=future_card())
    assert unlinked.approved


def test_sim_ping_and_unknown_transaction(sim):
    client = sim.client()
    pong = client.ping()
    assert pong.approved and pong.response_text == "PING"
    assert client.enquire(new_transaction_id()).not_found


def test_sim_check_with_account_and_with_bank_token(sim):
    client = sim.client()
    result = client.check(new_transaction_id(), 1500, "Pat Example", account=BankAccount("12345", "111000025"))
    assert result.approved and result.response_text == "CHECK ACCEPTED" and result.approval == "000000"
    saved = client.tokenize_bank_account(BankAccount("11111999", "071025661", sec="PPD"))
    assert saved.approved and saved.token and saved.token.endswith("1999")
    by_token = client.check(new_transaction_id(), 1500, "Pat Example", token=saved.token, check_number="15")
    assert by_token.approved


def test_sim_duplicate_transaction_id_is_094(sim):
    token = sim.token()
    client = sim.client()
    tid = new_transaction_id()
    assert client.sale(tid, 1000, token=token).approved
    again = client.sale(tid, 1000, token=token)
    assert again.action_code == "094" and not again.approved


def test_sim_unknown_terminal_is_a_setup_problem(sim):
    token = sim.token()
    result = IPpayClient(sim.gateway, "NOSUCHTERMINAL").sale(new_transaction_id(), 1000, token=token)
    assert not result.approved
    assert result.message == "Card payments are not set up correctly on our side. Please contact us."


def test_sim_error_reply_without_action_code_is_an_unknown_outcome_with_the_err_msg(sim):
    # ippay §11: the layout of error replies is unknown; the simulator can answer ErrMsg alone.
    sim.control("/_sim/config", {"error_format": "errmsg_only"})
    with pytest.raises(GatewayUnknownOutcomeError) as info:
        IPpayClient(sim.gateway, "NOSUCHTERMINAL").ping()
    assert info.value.reason == "no_action_code"
    assert info.value.err_msg == "Cannot determine the URL for the processor."


def test_sim_sees_ud_field3_and_ascii_bodies(sim):
    client = sim.client(software="splynx-ippay/9.9")
    client.ping()
    client.tokenize(future_card(holder="Zoë Ünal & Co"))
    bodies = [r["body"] for r in sim.control("/_sim/requests")["requests"]]
    assert len(bodies) == 2
    assert all("<UDField3>splynx-ippay/9.9</UDField3>" in b for b in bodies)
    assert "Zo&#235; &#220;nal &amp; Co" in bodies[1]
