"""The IPpay client reading replies, without a server: parsing (ippay §4, §9.3), replies that are
not answers, and what a result says (approved, declined, its message and decline category).

Canned replies at the bottom, as ActiveMerchant's JetPay test keeps them; the first is the only
real test-gateway reply in public sources (ippay §4.3, AGR)."""

import pytest

from splynx_ippay.ippay import GatewayResult, GatewayUnknownOutcomeError
from splynx_ippay.ippay.xml import ResponseFormatError, parse_response
from tests.unit.ippay.fakes import (
    CVV, PAN, TID, TOKEN, FakeResponse, FakeSession, card, decline, make_client, reply_xml,
)

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
    ({"ActionCode": "051", "ResponseText": "DECLINED"},
     "There are not enough funds on the card. Please use another card."),
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



# --------------------------------------------------------------------------- canned replies, read end to end


def test_the_recorded_test_gateway_approval():
    result = make_client(FakeSession(agr_sale_reply())).sale("B20191106095946460", 8, card=card())
    assert result.approved and result.approval == "TEST01" and result.transaction_id == "B20191106095946460"
    assert result.decline_category is None and result.avs is None and result.cvv2 is None


def test_a_do_not_honour_decline_is_soft():
    result = make_client(FakeSession(do_not_honour_reply())).sale(TID, 1005, token=TOKEN)
    assert not result.approved and result.action_code == "005" and result.decline_category == "soft"


def test_a_cvv_refusal_is_hard_and_says_so():
    result = make_client(FakeSession(cvv_refused_reply())).sale(TID, 1000, card=card(cvv="000"), tokenize=True)
    assert not result.approved and result.action_code == "806" and result.cvv2 == "N"
    assert result.token is None and result.decline_category == "hard"
    assert result.message == "The security code (CVV) is not valid. Please check it and try again."


def test_a_luhn_failure_is_hard_although_it_is_a_900():
    result = make_client(FakeSession(invalid_card_reply())).sale(TID, 1000, card=card())
    assert result.action_code == "900" and result.response_text == "Invalid card number."
    assert result.decline_category == "hard" and result.message == "The card number is not valid."


def test_an_unknown_terminal_is_an_error_not_a_decline_of_the_card():
    result = make_client(FakeSession(unknown_terminal_reply())).ping()
    assert not result.approved and result.decline_category == "error"
    assert result.err_msg == "Cannot determine the URL for the processor."


def test_reverseauth_not_offered_is_recognised():
    result = make_client(FakeSession(reverseauth_not_offered_reply())).reverse_authorization(TID, 100, token=TOKEN)
    assert result.not_offered and not result.approved and result.decline_category == "error"
    assert not decline(ActionCode="900", ErrMsg="Invalid CVV2.").not_offered


def test_tokenized_capture_void_credit_and_check_replies():
    client = make_client(FakeSession(tokenized_reply(), capture_reply(), void_reply(), credit_reply(),
                                     check_reply()))
    saved = client.tokenize(card(cvv=CVV))
    assert saved.approved and saved.token == TOKEN and saved.response_text == "TOKENIZED"
    captured = client.capture(TID, 700)
    assert captured.approved and captured.approval == "TEST00" and captured.message == "The payment was captured."
    voided = client.void(TID, "TEST00", 700, token=TOKEN)
    assert voided.approved and voided.response_text == "VOID PROCESSED"
    refunded = client.credit(300, transaction_id=TID, token=TOKEN)
    assert refunded.approved and refunded.approval == "000042" and refunded.message == "The refund was accepted."
    debited = client.check(TID, 2500, "Pat", token="F7F2F12346K3267")
    assert debited.approved and debited.approval == "000000" and debited.additional_info == "Verified"


def test_a_tokenize_without_token_is_an_error_category():
    result = make_client(FakeSession(reply_xml(root="IPPayResponse", ActionCode="000"))).tokenize(card())
    assert not result.approved and result.decline_category == "error"


def test_an_approval_carries_no_decline_category_and_results_are_values():
    result = make_client(FakeSession(agr_sale_reply())).sale("B20191106095946460", 8, token=TOKEN)
    assert isinstance(result, GatewayResult) and result.decline_category is None
    with pytest.raises(AttributeError):
        result.approved = False  # frozen
    assert PAN not in repr(result) and CVV not in repr(result)


def agr_sale_reply():
    return b"""
    <ippayResponse>
      <TransactionID>B20191106095946460</TransactionID>
      <ActionCode>000</ActionCode>
      <Approval>TEST01</Approval>
      <ResponseText>APPROVED</ResponseText>
    </ippayResponse>
    """


def do_not_honour_reply():
    return f"""
    <ippayResponse>
      <TransactionID>{TID}</TransactionID>
      <ActionCode>005</ActionCode>
      <ResponseText>DECLINED</ResponseText>
    </ippayResponse>
    """.encode()


def cvv_refused_reply():
    return f"""
    <ippayResponse>
      <TransactionID>{TID}</TransactionID>
      <ActionCode>806</ActionCode>
      <ResponseText>DECLINED</ResponseText>
      <CVV2>N</CVV2>
      <ipTransID>00000000000000000000000003</ipTransID>
    </ippayResponse>
    """.encode()


def invalid_card_reply():
    return f"""
    <ippayResponse>
      <TransactionID>{TID}</TransactionID>
      <ActionCode>900</ActionCode>
      <ResponseText>Invalid card number.  </ResponseText>
    </ippayResponse>
    """.encode()


def unknown_terminal_reply():
    return b"""
    <ippayResponse>
      <ActionCode>900</ActionCode>
      <ResponseText>DECLINED</ResponseText>
      <ErrMsg>Cannot determine the URL for the processor.</ErrMsg>
    </ippayResponse>
    """


def reverseauth_not_offered_reply():
    return f"""
    <ippayResponse>
      <TransactionID>{TID}</TransactionID>
      <ActionCode>900</ActionCode>
      <ResponseText>DECLINED</ResponseText>
      <ErrMsg>The transaction type is not a valid transaction type.</ErrMsg>
    </ippayResponse>
    """.encode()


def tokenized_reply():
    return f"""
    <IPPayResponse>
      <ActionCode>000</ActionCode>
      <ResponseText>TOKENIZED</ResponseText>
      <Token>{TOKEN}</Token>
    </IPPayResponse>
    """.encode()


def capture_reply():
    return f"""
    <ippayResponse>
      <TransactionID>{TID}</TransactionID>
      <ActionCode>000</ActionCode>
      <Approval>TEST00</Approval>
      <ResponseText>APPROVED</ResponseText>
    </ippayResponse>
    """.encode()


def void_reply():
    return f"""
    <ippayResponse>
      <TransactionID>{TID}</TransactionID>
      <ActionCode>000</ActionCode>
      <Approval>TEST00</Approval>
      <ResponseText>VOID PROCESSED</ResponseText>
    </ippayResponse>
    """.encode()


def credit_reply():
    return f"""
    <ippayResponse>
      <TransactionID>{TID}</TransactionID>
      <ActionCode>000</ActionCode>
      <Approval>000042</Approval>
      <ResponseText>RETURN ACCEPTED</ResponseText>
    </ippayResponse>
    """.encode()


def check_reply():
    return f"""
    <ippayResponse>
      <TransactionID>{TID}</TransactionID>
      <ActionCode>000</ActionCode>
      <Approval>000000</Approval>
      <ResponseText>CHECK ACCEPTED</ResponseText>
      <AdditionalInfo>Verified</AdditionalInfo>
    </ippayResponse>
    """.encode()
