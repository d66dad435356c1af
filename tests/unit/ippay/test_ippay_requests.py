"""The IPpay client's requests, without a server: each operation's fields, their order and
encoding, and every argument refused locally before anything is sent (ippay §2, §3, §9.5)."""

import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from splynx_ippay.ippay import (
    BankAccount, GatewayError, GatewayRequestError, GatewayUnknownOutcomeError, IPpayClient,
    new_transaction_id,
)
from splynx_ippay.ippay.xml import FIELD_ORDER, Node, build_request
from tests.unit.ippay.fakes import (
    ACCOUNT, CVV, PAN, SOFTWARE, TID, TOKEN, FakeSession, card, children, fields_of, make_client, reply_xml, sent,
)

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
                                                  "ACH": Node(attrs={"Type": 'a"b&<'},
                                                              children=[("CheckNumber", "1")])})
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


def test_tokenize_sends_card_and_its_cvv_without_transaction_id_or_amount():
    # Issue 8 item 3: the CVV typed goes to IPpay on the card's first call (UCRM sends it on TOKENIZE too).
    result, root, _ = sent("tokenize", card(cvv=CVV, holder="Pat"))
    f = fields_of(root)
    assert f["TransactionType"] == "TOKENIZE" and f["CardNum"] == PAN and f["CardName"] == "Pat"
    assert f["CVV2"] == CVV
    for absent in ("TransactionID", "TotalAmount"):
        assert absent not in f
    _, root, _ = sent("tokenize", card(holder="Pat"))
    assert "CVV2" not in fields_of(root)  # no CVV typed, none sent
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
    assert [(c.tag, c.text) for c in ach] == [("AccountNumber", "11111999"), ("ABA", "071025661"),
                                              ("CheckNumber", "15")]
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
    # added with the card-verification and ACH operations
    lambda c: c.check(TID, 100, "Pat", account=BankAccount("12345", "111000026")),   # ABA checksum
    lambda c: c.check(TID, 100, "Pat", account=BankAccount("12a45", "111000025")),
    lambda c: c.check(TID, 100, "Pat", account=BankAccount("1" * 18, "111000025")),
    lambda c: c.check(TID, 100, "Pat", token=TOKEN, tokenize=True),
    lambda c: c.tokenize_bank_account(BankAccount("12345", "１１１０００２５")),
    lambda c: c.sale(TID, 100, card=card(number="４０００３０００２０００１０００")),
    lambda c: c.sale(TID, 100, card=card(cvv="１２３")),
    lambda c: c.sale(TID, 100, card=card(exp_month="０９")),
    lambda c: c.authorize(TID, 100, card=None),
    lambda c: c.authorize(TID, 0, card=card(cvv=CVV)),
    lambda c: c.capture(TID, 0),
    lambda c: c.capture("SHORT"),
    lambda c: c.reverse_authorization(TID, 100),
    lambda c: c.reverse_authorization(TID, 100, token=TOKEN, card=card()),
    lambda c: c.release_authorization(TID, "TEST00", 100),
    lambda c: c.ach_reversal(TID, 100, "Pat"),
    lambda c: c.ach_reversal(TID, 100, "", token=TOKEN),
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



# --------------------------------------------------------------------------- the card's first use (issue 8)


def test_sale_of_a_new_card_carries_its_cvv_and_asks_for_a_token():
    session = FakeSession(successful_tokenizing_sale_reply())
    result = make_client(session).sale(TID, 1250, card=card(cvv=CVV, holder="Pat"), tokenize=True)
    root = ET.fromstring(session.bodies[0])
    assert root.find("CardNum").get("Tokenize") == "true" and root.find("CardNum").text == PAN
    assert root.find("CVV2").text == CVV
    assert result.approved and result.token == TOKEN and result.cvv2 == "M"


def test_authorize_is_authonly_with_cvv_and_tokenize_by_default():
    result, root, _ = sent("authorize", TID, 100, card=card(cvv=CVV))
    f = fields_of(root)
    assert (f["TransactionType"], f["TransactionID"], f["TotalAmount"], f["CVV2"]) == ("AUTHONLY", TID, "100", CVV)
    assert root.find("CardNum").get("Tokenize") == "true" and f["Origin"] == "INTERNET"
    assert result.approved and result.transaction_type == "AUTHONLY"
    assert result.message == "The payment was authorised."
    _, root, _ = sent("authorize", TID, 100, card=card(), tokenize=False, origin="MAIL ORDER")
    assert root.find("CardNum").attrib == {} and root.find("Origin").text == "MAIL ORDER"
    assert root.find("CVV2") is None


def test_capture_with_and_without_an_amount():
    _, root, _ = sent("capture", TID, 700)
    assert fields_of(root) == {"TransactionType": "CAPT", "TerminalID": "TESTTERMINAL", "TransactionID": TID,
                               "TotalAmount": "700", "UDField3": SOFTWARE}
    _, root, _ = sent("capture", TID)
    assert "TotalAmount" not in fields_of(root)  # BOP: the whole authorisation


def test_reverse_authorization_sends_the_card_without_its_cvv_or_a_token():
    _, root, _ = sent("reverse_authorization", TID, 100, card=card(cvv=CVV))
    f = fields_of(root)
    assert (f["TransactionType"], f["TransactionID"], f["TotalAmount"], f["CardNum"]) == (
        "REVERSEAUTH", TID, "100", PAN)
    assert "CVV2" not in f and f["CardExpMonth"] == "09"
    _, root, _ = sent("reverse_authorization", TID, 100, token=TOKEN)
    assert fields_of(root)["Token"] == TOKEN and "CardNum" not in fields_of(root)


def test_reverse_authorization_accepts_400_reversal_accepted():
    session = FakeSession(reply_xml(TransactionID=TID, ActionCode="400", ResponseText="REVERSAL ACCEPTED"))
    assert make_client(session).reverse_authorization(TID, 100, token=TOKEN).approved
    session = FakeSession(reply_xml(TransactionID=TID, ActionCode="400"))
    assert not make_client(session).sale(TID, 100, token=TOKEN).approved  # 400 is no sale


def test_release_authorization_is_one_reverseauth_when_the_terminal_offers_it():
    session = FakeSession()
    assert make_client(session).release_authorization(TID, "TEST00", 100, token=TOKEN).approved
    assert [ET.fromstring(b).find("TransactionType").text for b in session.bodies] == ["REVERSEAUTH"]


@pytest.mark.parametrize("refusal", [
    reply_xml(TransactionID=TID, ActionCode="900", ResponseText="DECLINED",
              ErrMsg="The transaction type is not a valid transaction type."),
    reply_xml(TransactionID=TID, ErrMsg="The transaction type is not a valid transaction type."),  # ErrMsg only
])
def test_release_authorization_falls_back_to_void_where_reverseauth_is_not_offered(refusal):
    session = FakeSession(refusal, reply_xml(TransactionID=TID, ActionCode="000", Approval="TEST00",
                                             ResponseText="VOID PROCESSED"))
    result = make_client(session).release_authorization(TID, "TEST00", 100, card=card(cvv=CVV))
    assert result.approved and result.transaction_type == "VOID" and result.response_text == "VOID PROCESSED"
    first, second = (fields_of(ET.fromstring(b)) for b in session.bodies)
    assert first["TransactionType"] == "REVERSEAUTH" and second["TransactionType"] == "VOID"
    assert second["Approval"] == "TEST00" and second["TotalAmount"] == "100" and "CVV2" not in second


def test_release_authorization_passes_other_failures_on():
    declined = reply_xml(TransactionID=TID, ActionCode="025", ResponseText="Transaction Not Found")
    session = FakeSession(declined)
    result = make_client(session).release_authorization(TID, "TEST00", 100, token=TOKEN)
    assert result.not_found and len(session.calls) == 1
    with pytest.raises(GatewayUnknownOutcomeError):
        make_client(FakeSession(reply_xml(ErrMsg="Something else."))).release_authorization(
            TID, "TEST00", 100, token=TOKEN)


@pytest.mark.parametrize("call", [
    lambda c: c.credit(100, transaction_id=TID, card=card(cvv=CVV)),
    lambda c: c.void(TID, "TEST00", 100, card=card(cvv=CVV)),
    lambda c: c.reverse_authorization(TID, 100, card=card(cvv=CVV)),
])
def test_the_cvv_never_travels_with_a_refund_void_or_reversal(call):
    session = FakeSession()
    call(make_client(session))
    assert "<CVV2>" not in session.bodies[0] and PAN in session.bodies[0]


# --------------------------------------------------------------------------- bank accounts


def test_check_can_tokenize_the_account_it_debits():
    _, root, _ = sent("check", TID, 2500, "Pat", account=ACCOUNT, tokenize=True)
    number = root.find("ACH/AccountNumber")
    assert number.get("Tokenize") == "true" and number.text == "1234567890"
    assert [c.tag for c in root.find("ACH")] == ["AccountNumber", "ABA", "CheckNumber"]


def test_ach_reversal_is_a_reversal_with_the_ach_container():
    _, root, _ = sent("ach_reversal", TID, 500, "Pat Example", account=BankAccount("11111999", "071025661",
                                                                                   "SAVINGS", "PPD"))
    f = fields_of(root)
    assert (f["TransactionType"], f["TransactionID"], f["TotalAmount"], f["CardName"]) == (
        "REVERSAL", TID, "500", "Pat Example")
    assert root.find("ACH").attrib == {"Type": "SAVINGS", "SEC": "PPD"}
    _, root, _ = sent("ach_reversal", TID, 500, "Pat", token="F7F2F12346K3267", sec="ccd")
    assert root.find("ACH").attrib == {"Type": "CHECKING", "SEC": "CCD"}
    assert [(c.tag, c.text) for c in root.find("ACH")] == [("Token", "F7F2F12346K3267"), ("CheckNumber", "100")]


def test_a_bad_routing_number_is_refused_with_words_the_customer_can_act_on():
    with pytest.raises(GatewayRequestError) as info:
        make_client(FakeSession()).tokenize_bank_account(BankAccount("12345", "111000026"))
    assert info.value.field == "account.routing_number"
    assert str(info.value) == "The routing number is not valid: please check its 9 digits."


# --------------------------------------------------------------------------- canned replies


def successful_tokenizing_sale_reply():
    return f"""
    <ippayResponse>
      <TransactionID>{TID}</TransactionID>
      <ActionCode>000</ActionCode>
      <Approval>TEST50</Approval>
      <ResponseText>APPROVED</ResponseText>
      <AVS>Y</AVS>
      <CVV2>M</CVV2>
      <Token>{TOKEN}</Token>
      <ipTransID>00000000000000000000000007</ipTransID>
    </ippayResponse>
    """.encode()
