"""Masking card data in IPpay transcripts, logs and exceptions (ippay §9.4; design §3 invariant 5:
no card number or CVV is ever logged). ActiveMerchant's JetPay test has the same scrubbing test."""

import logging

import pytest

from splynx_ippay.ippay import GatewayError, GatewayUnknownOutcomeError, scrub
from tests.unit.ippay.fakes import CVV, PAN, TID, TOKEN, FakeSession, card, make_client

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
    "card 4000 3000 2000 1000 rejected",          # grouped digits
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



def test_scrub_turns_a_jetpay_style_transcript_into_its_scrubbed_form():
    assert scrub(transcript()) == scrubbed_transcript()


def test_a_new_cards_first_sale_logs_neither_its_number_nor_its_cvv(caplog):
    # The CVV goes to IPpay on the card's first use and nowhere else (issue 8 item 3).
    caplog.set_level(logging.DEBUG, logger="splynx_ippay.ippay")
    session = FakeSession()
    result = make_client(session).sale(TID, 1000, card=card(cvv="4821"), tokenize=True)
    assert "<CVV2>4821</CVV2>" in session.bodies[0]            # it was sent ...
    assert "4821" not in caplog.text and PAN not in caplog.text  # ... and not logged
    assert "<CVV2>XXX</CVV2>" in caplog.text
    assert "4821" not in repr(result) and "4821" not in repr(card(cvv="4821"))


def test_a_request_refused_locally_names_the_field_not_the_cvv():
    with pytest.raises(GatewayError) as info:
        make_client(FakeSession()).authorize(TID, 100, card=card(cvv="12345"))
    assert info.value.field == "card.cvv" and "12345" not in str(info.value)


def transcript():
    return f"""
    <ippay>
      <TransactionType>SALE</TransactionType>
      <TerminalID>TESTTERMINAL</TerminalID>
      <TransactionID>{TID}</TransactionID>
      <CardNum Tokenize="true">{PAN}</CardNum>
      <CVV2>{CVV}</CVV2>
      <CardExpMonth>09</CardExpMonth>
      <CardExpYear>30</CardExpYear>
      <CardName>Pat Example</CardName>
      <Token>{TOKEN}</Token>
    </ippay>
    """


def scrubbed_transcript():
    return f"""
    <ippay>
      <TransactionType>SALE</TransactionType>
      <TerminalID>TESTTERMINAL</TerminalID>
      <TransactionID>{TID}</TransactionID>
      <CardNum Tokenize="true">XXXXXXXXXXXX1000</CardNum>
      <CVV2>XXX</CVV2>
      <CardExpMonth>09</CardExpMonth>
      <CardExpYear>30</CardExpYear>
      <CardName>Pat Example</CardName>
      <Token>XXXXXXXXXXXX1000</Token>
    </ippay>
    """
