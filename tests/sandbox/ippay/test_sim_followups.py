"""ENQ and duplicate TransactionIDs (§8), CAPT, VOID, REVERSEAUTH and CREDIT (§8, §10)."""

import re

import requests

from tests.sandbox.ippay.sim_helpers import (
    NEXT_YEAR, CARD_FIELDS, doc, sale, ach, post, parse, call, configure, ledger, enq,
    tokenize, assert_error, void, credit,
)


# -- ENQ and duplicates (§8) ---------------------------------------------------------


def test_enq_replays_the_recorded_reply(ippay_sim):
    approved = call(ippay_sim, sale("ENQA00000000000001", 4995, CVV2="123"))
    assert enq(ippay_sim, "ENQA00000000000001") == approved
    assert enq(ippay_sim, "enqa00000000000001") == approved  # OFF-WEB: case-insensitive
    declined = call(ippay_sim, sale("ENQA00000000000002", 5205))
    assert enq(ippay_sim, "ENQA00000000000002") == declined
    tag, _ = parse(post(ippay_sim, doc("ENQ", root="JetPay", TransactionID="ENQA00000000000001")))
    assert tag == "JetPayResponse"


def test_enq_unknown_id_is_025(ippay_sim):
    reply = enq(ippay_sim, "NOSUCH000000000001")
    assert reply["ActionCode"] == "025" and reply["ResponseText"] == "Transaction Not Found"
    assert_error(call(ippay_sim, doc("ENQ")), "TransactionID required with all ENQ Transactions.")


def test_enq_after_a_follow_up_replays_the_follow_up(ippay_sim):
    call(ippay_sim, sale("ENQF00000000000001", 1000, "AUTHONLY"))
    capture = call(ippay_sim, doc("CAPT", TransactionID="ENQF00000000000001", TotalAmount="1000"))
    assert enq(ippay_sim, "ENQF00000000000001") == capture


def test_duplicate_id_is_rejected_by_default(ippay_sim):
    first = call(ippay_sim, sale("DUPR00000000000001", 1000))
    for body in (sale("DUPR00000000000001", 1000), sale("DUPR00000000000001", 2000, "AUTHONLY"),
                 sale("dupr00000000000001", 1000)):
        reply = call(ippay_sim, body)
        assert reply["ActionCode"] == "094" and reply["ErrMsg"]
    assert call(ippay_sim, doc("CHECK", TransactionID="DUPR00000000000001", CardName="Pat",
                               TotalAmount="100", ACH=ach()))["ActionCode"] == "094"
    assert [e["type"] for e in ledger(ippay_sim)["transactions"]] == ["SALE"]
    assert enq(ippay_sim, "DUPR00000000000001") == first


def test_duplicate_unlinked_credit_and_check_are_rejected(ippay_sim):
    credit = doc("CREDIT", TransactionID="DUPC00000000000001", TotalAmount="100", **CARD_FIELDS)
    assert call(ippay_sim, credit)["ActionCode"] == "000"
    assert call(ippay_sim, credit)["ActionCode"] == "094"
    check = doc("CHECK", TransactionID="DUPC00000000000002", CardName="Pat", TotalAmount="100",
                ACH=ach())
    assert call(ippay_sim, check)["ActionCode"] == "000"
    assert call(ippay_sim, check)["ActionCode"] == "094"
    force = sale("DUPC00000000000002", 100, "FORCE", Approval="VOICE1")
    assert call(ippay_sim, force)["ActionCode"] == "094"


def test_duplicate_id_replay_switch(ippay_sim):
    configure(ippay_sim, duplicate_id="replay")
    first = post(ippay_sim, sale("DUPP00000000000001", 1000)).content
    again = post(ippay_sim, sale("DUPP00000000000001", 1000)).content
    assert again == first
    assert len(ledger(ippay_sim)["transactions"]) == 1


# -- CAPT, VOID, REVERSEAUTH, CREDIT (§8, §10) ----------------------------------------------


def test_capture_rules(ippay_sim):
    auth = call(ippay_sim, sale("CAPT00000000000001", 1000, "AUTHONLY"))
    over = doc("CAPT", TransactionID="CAPT00000000000001", TotalAmount="1001")
    assert call(ippay_sim, over)["ActionCode"] == "025"
    reply = call(ippay_sim, doc("CAPT", TransactionID="CAPT00000000000001", TotalAmount="700"))
    assert reply["ActionCode"] == "000" and reply["Approval"] == auth["Approval"]
    assert reply["TransactionID"] == "CAPT00000000000001"
    assert "AVS" not in reply and "CVV2" not in reply  # §7 [S] BOP
    again = call(ippay_sim, doc("CAPT", TransactionID="CAPT00000000000001", TotalAmount="700"))
    assert again["ActionCode"] == "025" and again["ResponseText"] == "Transaction Not Found"
    assert call(ippay_sim, doc("CAPT", TransactionID="NOSUCH000000000001"))["ActionCode"] == "025"
    call(ippay_sim, sale("CAPT00000000000002", 1000))
    assert call(ippay_sim, doc("CAPT", TransactionID="CAPT00000000000002"))["ActionCode"] == "025"
    call(ippay_sim, sale("CAPT00000000000003", 1000, "AUTHONLY"))
    assert call(ippay_sim, doc("CAPT", TransactionID="CAPT00000000000003"))["ActionCode"] == "000"
    [original] = [e for e in ledger(ippay_sim, "CAPT00000000000003")["transactions"]
                  if e["type"] == "AUTHONLY"]
    assert original["status"] == "captured" and original["captured"] == 1000


def test_void_rules(ippay_sim):
    approval = call(ippay_sim, sale("VOID00000000000001", 1250))["Approval"]
    assert_error(call(ippay_sim, void("VOID00000000000001", "TEST99", 1250)),
                 "Approval does not match the original transaction.")
    assert_error(call(ippay_sim, void("VOID00000000000001", approval, 1200)),
                 "TotalAmount does not match the original transaction.")
    other_card = {"CardNum": "4111111111111111", "CardExpMonth": "09", "CardExpYear": NEXT_YEAR}
    assert_error(call(ippay_sim, void("VOID00000000000001", approval, 1250, **other_card)),
                 "Card does not match the original transaction.")
    assert_error(call(ippay_sim, doc("VOID", TransactionID="VOID00000000000001",
                                     TotalAmount="1250", **CARD_FIELDS)),
                 "No Approval Code supplied with VOID Transaction.")
    assert_error(call(ippay_sim, doc("VOID", TransactionID="VOID00000000000001",
                                     Approval=approval, TotalAmount="1250")),
                 "Card Number required with all VOID Transactions.")
    assert call(ippay_sim, void("NOSUCH000000000001", approval, 1250))["ActionCode"] == "025"
    reply = call(ippay_sim, void("VOID00000000000001", approval, 1250))
    assert reply["ActionCode"] == "000" and reply["ResponseText"] == "VOID PROCESSED"
    assert reply["Approval"] == approval
    assert ledger(ippay_sim, "VOID00000000000001")["transactions"][0]["status"] == "voided"
    assert_error(call(ippay_sim, void("VOID00000000000001", approval, 1250)),
                 "The transaction has already been voided.")
    assert enq(ippay_sim, "VOID00000000000001") == reply


def test_void_by_token_and_of_capture_and_credit(ippay_sim):
    token = tokenize(ippay_sim)["Token"]
    call(ippay_sim, doc("AUTHONLY", TransactionID="VOIDC0000000000001", Token=token,
                        TotalAmount="900"))
    approval = call(ippay_sim, doc("CAPT", TransactionID="VOIDC0000000000001",
                                   TotalAmount="800"))["Approval"]
    reply = call(ippay_sim, void("VOIDC0000000000001", approval, 800, Token=token))
    assert reply["ResponseText"] == "VOID PROCESSED"
    credit = call(ippay_sim, doc("CREDIT", TransactionID="VOIDC0000000000002", TotalAmount="300",
                                 Token=token))
    reply = call(ippay_sim, void("VOIDC0000000000002", credit["Approval"], 300, Token=token))
    assert reply["ResponseText"] == "VOID PROCESSED"
    statuses = {(e["transaction_id"], e["type"]): e["status"]
                for e in ledger(ippay_sim)["transactions"]}
    assert statuses[("VOIDC0000000000001", "AUTHONLY")] == "voided"
    assert statuses[("VOIDC0000000000001", "CAPT")] == "voided"
    assert statuses[("VOIDC0000000000002", "CREDIT")] == "voided"


def test_void_refuses_settled_and_authonly(ippay_sim):
    approval = call(ippay_sim, sale("VOIDS0000000000001", 1000))["Approval"]
    assert requests.post(ippay_sim.url + "/_sim/settle").json() == {"settled": 1}
    assert_error(call(ippay_sim, void("VOIDS0000000000001", approval, 1000)),
                 "The transaction has settled; refund it with CREDIT instead.")
    auth = call(ippay_sim, sale("VOIDS0000000000002", 1000, "AUTHONLY"))["Approval"]
    assert_error(call(ippay_sim, void("VOIDS0000000000002", auth, 1000)),
                 "Only an approved SALE, CAPT or CREDIT can be voided.")
    configure(ippay_sim, void_authonly=True)
    assert call(ippay_sim, void("VOIDS0000000000002", auth, 1000))["ActionCode"] == "000"


def test_reverseauth(ippay_sim):
    auth = call(ippay_sim, sale("REVA00000000000001", 1000, "AUTHONLY"))
    reverse = doc("REVERSEAUTH", TransactionID="REVA00000000000001", TotalAmount="1000",
                  **CARD_FIELDS)
    reply = call(ippay_sim, reverse)
    assert reply["ActionCode"] == "000" and reply["Approval"] == auth["Approval"]
    assert call(ippay_sim, doc("CAPT", TransactionID="REVA00000000000001"))["ActionCode"] == "025"
    assert_error(call(ippay_sim, reverse), "Only an uncaptured AUTHONLY can be reversed.")
    configure(ippay_sim, reverseauth_enabled=False)
    call(ippay_sim, sale("REVA00000000000002", 1000, "AUTHONLY"))
    assert_error(call(ippay_sim, reverse.replace("REVA00000000000001", "REVA00000000000002")),
                 "The transaction type is not a valid transaction type.")


def test_linked_credit_is_limited_to_captured_minus_refunded(ippay_sim):
    call(ippay_sim, sale("CRED00000000000001", 1000))
    first = call(ippay_sim, credit("CRED00000000000001", 600))
    assert first["ActionCode"] == "000" and first["ResponseText"] == "RETURN ACCEPTED"
    assert re.fullmatch(r"\d{6}", first["Approval"]) and "AVS" not in first
    assert_error(call(ippay_sim, credit("CRED00000000000001", 401)),
                 "Credit amount exceeds the amount available to refund.")
    assert call(ippay_sim, credit("CRED00000000000001", 400))["ActionCode"] == "000"
    assert ledger(ippay_sim, "CRED00000000000001")["transactions"][0]["refunded"] == 1000
    other = {"CardNum": "4111111111111111", "CardExpMonth": "09", "CardExpYear": NEXT_YEAR}
    call(ippay_sim, sale("CRED00000000000002", 1000))
    assert_error(call(ippay_sim, credit("CRED00000000000002", 100, **other)),
                 "Card does not match the original transaction.")


def test_linked_credit_on_an_authorisation_needs_a_capture(ippay_sim):
    call(ippay_sim, sale("CRED00000000000003", 1000, "AUTHONLY"))
    assert_error(call(ippay_sim, credit("CRED00000000000003", 100)),
                 "Credit amount exceeds the amount available to refund.")
    call(ippay_sim, doc("CAPT", TransactionID="CRED00000000000003", TotalAmount="500"))
    assert call(ippay_sim, credit("CRED00000000000003", 500))["ActionCode"] == "000"


def test_unlinked_credit(ippay_sim):
    reply = call(ippay_sim, credit("CRED00000000000004", 5205))
    assert reply["ActionCode"] == "000" and reply["ResponseText"] == "RETURN ACCEPTED"
    [entry] = ledger(ippay_sim)["transactions"]
    assert (entry["type"], entry["status"], entry["linked"]) == ("CREDIT", "credited", False)
    configure(ippay_sim, cents_rule_types=["SALE", "AUTHONLY", "CREDIT"])
    assert call(ippay_sim, credit("CRED00000000000005", 5205))["ActionCode"] == "005"
