"""Card decisions by the penny table (§7), AVS and CVV2 rules (§5.3, §10), expiry, FORCE and tokens (§6)."""

import datetime
import re

import pytest
import requests

from sandbox.ippay.rules import APPROVING_CENTS
from tests.sandbox.ippay.sim_helpers import (
    CARD, AMEX, BAD_LUHN, NEXT_YEAR, CARD_FIELDS, doc, sale, call, configure, control, ledger, enq, tokenize,
    assert_error, assert_token_format,
)


# -- decisions (§7) -------------------------------------------------------------


def test_cents_table_matches_the_spec():
    approving = {0, 8, 9, 10, 11, 16, 17, 18, 20, 56, 60, 64, 79, 95, 97, 98, 99,
                 *range(22, 28), *range(45, 51), *range(66, 75), *range(86, 90)}
    declining = {*range(1, 8), *range(12, 16), 19, 21, *range(28, 45), *range(51, 56),
                 *range(57, 60), *range(61, 64), 65, *range(75, 79), *range(80, 86),
                 *range(90, 95), 96}
    assert APPROVING_CENTS == approving
    assert approving | declining == set(range(100)) and not approving & declining


@pytest.mark.parametrize("amount", [300, 4995, 8799, 9900, 8, 1250, 1116, 2074])
def test_approving_cents(ippay_sim, amount):
    reply = call(ippay_sim, sale("CENT00000000000001", amount))
    assert reply["ActionCode"] == "000" and reply["ResponseText"] == "APPROVED"
    assert reply["Approval"] == f"TEST{amount % 100:02d}"
    assert re.fullmatch(r"\d{26}", reply["ipTransID"])


@pytest.mark.parametrize("amount, code", [(5205, "005"), (1105, "005"), (101, "001"),
                                          (151, "051"), (1396, "096"), (2033, "033")])
def test_declining_cents(ippay_sim, amount, code):
    reply = call(ippay_sim, sale("CENT00000000000002", amount, CVV2="123",
                                 BillingAddress="1 Main St"))
    assert reply["ActionCode"] == code and reply["ResponseText"] == "DECLINED"
    assert not {"Approval", "AVS", "CVV2", "ErrMsg"} & reply.keys()
    assert ledger(ippay_sim)["transactions"][0]["status"] == "declined"


def test_avs_and_cvv2_on_approvals(ippay_sim):
    bare = call(ippay_sim, sale("AVS000000000000001", 100))
    assert bare["AVS"] == "U" and "CVV2" not in bare
    with_zip = call(ippay_sim, sale("AVS000000000000002", 100, BillingPostalCode="60527",
                                    CVV2="123"))
    assert with_zip["AVS"] == "Y" and with_zip["CVV2"] == "P"
    assert call(ippay_sim, sale("AVS000000000000003", 100,
                                BillingAddress="1 Main St"))["AVS"] == "Y"


def test_authonly_is_decided_like_sale(ippay_sim):
    assert call(ippay_sim, sale("AUTH00000000000001", 1000, "AUTHONLY"))["Approval"] == "TEST00"
    assert call(ippay_sim, sale("AUTH00000000000002", 1005, "AUTHONLY"))["ActionCode"] == "005"
    assert ledger(ippay_sim)["transactions"][0]["status"] == "authorized"


def test_expired_card_override(ippay_sim):
    # decline_expired is on by default now (the strict answer, README); off, an expired card passes.
    expired = {"CardExpMonth": "01", "CardExpYear": "20"}
    configure(ippay_sim, decline_expired=False)
    assert call(ippay_sim, sale("EXPD00000000000001", 100, **expired))["ActionCode"] == "000"
    configure(ippay_sim, decline_expired=True)
    reply = call(ippay_sim, sale("EXPD00000000000002", 100, **expired))
    assert reply["ActionCode"] == "054" and reply["ResponseText"] == "DECLINED"
    assert call(ippay_sim, sale("EXPD00000000000003", 100))["ActionCode"] == "000"


def test_cvv_000_override(ippay_sim):
    # decline_cvv_000 is on by default now (README); off, "000" is approved (with CVV2 result N).
    configure(ippay_sim, decline_cvv_000=False)
    assert call(ippay_sim, sale("CVV000000000000001", 100, CVV2="000"))["ActionCode"] == "000"
    configure(ippay_sim, decline_cvv_000=True)
    assert call(ippay_sim, sale("CVV000000000000002", 100, CVV2="000"))["ActionCode"] == "806"
    assert call(ippay_sim, sale("CVV000000000000003", 100, CVV2="123"))["ActionCode"] == "000"


def test_expired_cards_and_cvv_000_are_declined_by_default(ippay_sim):
    config = requests.get(ippay_sim.url + "/_sim/config", timeout=5).json()
    assert config["decline_expired"] is True and config["decline_cvv_000"] is True
    expired = call(ippay_sim, sale("DEFS00000000000001", 100, CardExpMonth="01", CardExpYear="20"))
    assert expired["ActionCode"] == "054" and "Approval" not in expired
    refused = call(ippay_sim, sale("DEFS00000000000002", 100, "AUTHONLY", CVV2="000"))
    assert refused == {"TransactionID": "DEFS00000000000002", "ActionCode": "806", "ResponseText": "DECLINED",
                       "CVV2": "N", "ipTransID": refused["ipTransID"]}
    assert ledger(ippay_sim)["transactions"][-1]["status"] == "declined"


def test_a_card_is_good_through_the_last_day_of_its_expiry_month(ippay_sim):
    control(ippay_sim, "clock", {"today": "2030-09-30"})
    assert call(ippay_sim, sale("EXPC00000000000001", 100, CardExpMonth="09", CardExpYear="30"))[
        "ActionCode"] == "000"
    control(ippay_sim, "clock", {"advance_days": 1})
    assert call(ippay_sim, sale("EXPC00000000000002", 100, CardExpMonth="09", CardExpYear="30"))[
        "ActionCode"] == "054"


def test_an_expired_saved_card_is_declined_until_its_expiry_is_updated(ippay_sim):
    token = tokenize(ippay_sim, month="12", year="30")["Token"]
    control(ippay_sim, "clock", {"today": "2031-01-02"})
    by_token = doc("SALE", TransactionID="EXPT00000000000001", Token=token, TotalAmount="100")
    assert call(ippay_sim, by_token)["ActionCode"] == "054"
    call(ippay_sim, doc("TOKENIZE", Token=token, CardExpMonth="12", CardExpYear="33"))
    assert call(ippay_sim, by_token.replace("EXPT00000000000001", "EXPT00000000000002"))["ActionCode"] == "000"


# -- CVV2 (§2.2 row 10, §5.3, §10; issue 8) ------------------------------------------------

@pytest.mark.parametrize("cvv2,result_switch,expected", [
    ("123", "P", "P"), ("1234", "P", "P"), ("123", "M", "M"), ("000", "M", "N"),
])
def test_cvv2_results_on_approvals(ippay_sim, cvv2, result_switch, expected):
    configure(ippay_sim, cvv2_result=result_switch, decline_cvv_000=False)
    reply = call(ippay_sim, sale("CVVR00000000000001", 100, CVV2=cvv2))
    assert reply["ActionCode"] == "000" and reply["CVV2"] == expected


def test_a_cvv_refusal_saves_no_token(ippay_sim):
    reply = call(ippay_sim, sale("CVVT00000000000001", 100, CardNum=(CARD, {"Tokenize": "true"}), CVV2="000"))
    assert reply["ActionCode"] == "806" and "Token" not in reply
    assert ledger(ippay_sim)["tokens"] == []


@pytest.mark.parametrize("cvv2", ["12", "12345", "12a", "&#65297;&#65298;&#65299;"])  # the last: "１２３"
@pytest.mark.parametrize("switch,code", [("900", "900"), ("933", "933")])
def test_a_cvv2_that_is_not_3_or_4_digits(ippay_sim, cvv2, switch, code):
    configure(ippay_sim, cvv_format_error=switch)
    for body in (sale("CVVF00000000000001", 100, CVV2=cvv2), doc("TOKENIZE", CVV2=cvv2, **CARD_FIELDS)):
        reply = call(ippay_sim, body)
        assert (reply["ActionCode"], reply["ResponseText"], reply["ErrMsg"]) == (code, "DECLINED", "Invalid CVV2.")
    assert ledger(ippay_sim) == {"transactions": [], "tokens": []}


def test_whether_tokenize_checks_the_cvv_is_a_switch(ippay_sim):
    with_000 = doc("TOKENIZE", CVV2="000", **CARD_FIELDS)
    assert call(ippay_sim, with_000)["ResponseText"] == "TOKENIZED"  # default: not checked
    configure(ippay_sim, tokenize_checks_cvv=True)
    refused = call(ippay_sim, with_000)
    assert (refused["ActionCode"], refused["CVV2"]) == ("806", "N") and "Token" not in refused
    assert call(ippay_sim, doc("TOKENIZE", CVV2="123", **CARD_FIELDS))["ResponseText"] == "TOKENIZED"
    assert len(ledger(ippay_sim)["tokens"]) == 1


def test_generated_transaction_id_and_counter(ippay_sim):
    fields = dict(CARD_FIELDS, TotalAmount="100")
    first = call(ippay_sim, doc("SALE", **fields))
    second = call(ippay_sim, doc("SALE", **fields))
    assert re.fullmatch(r"[A-Z]\d{17}", first["TransactionID"])  # §2.2 [C] AGR
    stamp = datetime.datetime.strptime(first["TransactionID"][1:15], "%Y%m%d%H%M%S")
    assert abs((datetime.datetime.now() - stamp).total_seconds()) < 60
    assert first["TransactionID"] != second["TransactionID"]
    assert int(second["ipTransID"]) == int(first["ipTransID"]) + 1
    assert enq(ippay_sim, first["TransactionID"]) == first


def test_force_posts_with_the_given_approval(ippay_sim):
    assert_error(call(ippay_sim, sale("FORC00000000000001", 100, "FORCE")),
                 "No Approval Code supplied with FORCE Transaction.")
    reply = call(ippay_sim, sale("FORC00000000000001", 100, "FORCE", Approval="VOICE1"))
    assert reply["ActionCode"] == "000" and reply["Approval"] == "VOICE1"


# -- tokens (§6) ------------------------------------------------------------------
# -- tokens (§6) ------------------------------------------------------------------


def test_tokens_are_format_preserving_and_deterministic(ippay_sim):
    configure(ippay_sim, terminals=["TESTTERMINAL", "SECONDTERMINAL"])
    reply = tokenize(ippay_sim)
    assert reply["ActionCode"] == "000" and reply["ResponseText"] == "TOKENIZED"
    assert "TransactionID" not in reply
    token = reply["Token"]
    assert_token_format(token, CARD)
    assert tokenize(ippay_sim)["Token"] == token  # same (terminal, PAN), same token
    amex = tokenize(ippay_sim, AMEX)["Token"]
    assert_token_format(amex, AMEX)
    assert tokenize(ippay_sim, "4111111111111111")["Token"] != token
    other = tokenize(ippay_sim, terminal="SECONDTERMINAL")["Token"]
    assert other != token
    assert_token_format(other, CARD)


def test_tokenize_validates_the_card(ippay_sim):
    assert call(ippay_sim, doc("TOKENIZE", CardNum=BAD_LUHN, CardExpMonth="09",
                               CardExpYear=NEXT_YEAR))["ResponseText"] == "Invalid card number.  "
    assert_error(call(ippay_sim, doc("TOKENIZE", CardNum=CARD)),
                 "Card Expiration Date required for transactions without a TOKEN present.")


def test_sale_with_tokenize_attribute_returns_the_same_token(ippay_sim):
    token = tokenize(ippay_sim)["Token"]
    reply = call(ippay_sim, sale("TOKS00000000000001", 100, CardNum=(CARD, {"Tokenize": "true"})))
    assert reply["ActionCode"] == "000" and reply["Token"] == token
    assert "Token" not in call(ippay_sim, sale("TOKS00000000000002", 100))


def test_tokenize_ignores_transaction_id_and_amount(ippay_sim):
    """UCRM sends both (§6); the ID is not claimed (OFF-RPT shows none on tokens)."""
    reply = call(ippay_sim, doc("TOKENIZE", TransactionID="TOKT00000000000001",
                                TotalAmount="100", **CARD_FIELDS))
    assert reply["TransactionID"] == "TOKT00000000000001" and reply["Token"]
    assert call(ippay_sim, sale("TOKT00000000000001", 100))["ActionCode"] == "000"


def test_charging_a_token(ippay_sim):
    token = tokenize(ippay_sim)["Token"]
    for tx_type, text in (("SALE", "APPROVED"), ("AUTHONLY", "APPROVED"),
                          ("CREDIT", "RETURN ACCEPTED")):
        reply = call(ippay_sim, doc(tx_type, TransactionID=f"TOKC{tx_type:0>14}", Token=token,
                                    TotalAmount="2500", Origin="RECURRING"))
        assert reply["ActionCode"] == "000" and reply["ResponseText"] == text
    assert call(ippay_sim, doc("SALE", TransactionID="TOKC00000000000009", Token=token,
                               TotalAmount="2505"))["ActionCode"] == "005"
    assert_error(call(ippay_sim, doc("SALE", TransactionID="TOKC00000000000010",
                                     Token="4A1B2C3D4E5F1000", TotalAmount="100")),
                 "Invalid Token.")
    entries = ledger(ippay_sim)["transactions"]
    assert {e["token"] for e in entries} == {token}
    assert {e["last4"] for e in entries} == {"1000"}


def test_token_expiry_update(ippay_sim):
    configure(ippay_sim, decline_expired=True)
    token = tokenize(ippay_sim, month="01", year="20")["Token"]
    assert call(ippay_sim, doc("SALE", TransactionID="TOKE00000000000001", Token=token,
                               TotalAmount="100"))["ActionCode"] == "054"
    reply = call(ippay_sim, doc("TOKENIZE", Token=token, CardExpMonth="12", CardExpYear="39"))
    assert reply == {"ActionCode": "000", "ResponseText": "TOKENIZED", "Token": token}
    [vault] = ledger(ippay_sim)["tokens"]
    assert (vault["exp_month"], vault["exp_year"]) == (12, 2039)
    assert call(ippay_sim, doc("SALE", TransactionID="TOKE00000000000002", Token=token,
                               TotalAmount="100"))["ActionCode"] == "000"


def test_ip_trans_id_reuses_payment_data(ippay_sim):
    first = call(ippay_sim, sale("IPTR00000000000001", 100))
    reply = call(ippay_sim, doc("SALE", TransactionID="IPTR00000000000002",
                                ipTransID=first["ipTransID"], TotalAmount="200"))
    assert reply["ActionCode"] == "000"
    assert_error(call(ippay_sim, doc("SALE", TransactionID="IPTR00000000000003",
                                     ipTransID="999", TotalAmount="200")), "Invalid ipTransID.")
