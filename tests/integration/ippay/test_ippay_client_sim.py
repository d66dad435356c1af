"""The IPpay client against the IPpay simulator (``sim`` fixture, conftest.py): every operation end
to end, the ENQ algorithm after timeouts (ippay §8), faults as unknown outcomes, and the card's
first use carrying its CVV (issue 8 item 3)."""

import json
import logging
import re
import time

import pytest

from splynx_ippay.ippay import BankAccount, Card, GatewayUnknownOutcomeError, IPpayClient, new_transaction_id
from tests.integration.ippay.helpers import future_card
from tests.unit.ippay.fakes import CVV, PAN


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



# --------------------------------------------------------------------------- the card's first use (issue 8)


def test_a_new_card_pays_cvv_checked_and_is_saved_in_one_sale(sim):
    client = sim.client()
    first = client.sale(new_transaction_id(), 1250, card=future_card(cvv=CVV, postal_code="60527"), tokenize=True)
    assert first.approved and first.cvv2 == "P" and first.avs == "Y"
    assert first.token and first.token.endswith(PAN[-4:]) and first.token == client.tokenize(future_card()).token
    again = client.sale(new_transaction_id(), 2500, token=first.token, origin="RECURRING")
    assert again.approved and again.cvv2 is None
    bodies = [r["body"] for r in sim.control("/_sim/requests")["requests"]]
    assert f"<CVV2>{CVV}</CVV2>" in bodies[0] and "<CVV2>" not in bodies[2]  # the CVV once, on first use


def test_a_cvv_the_simulator_refuses_declines_hard_and_saves_nothing(sim):
    result = sim.client().sale(new_transaction_id(), 1000, card=future_card(cvv="000"), tokenize=True)
    assert not result.approved and result.action_code == "806" and result.cvv2 == "N"
    assert result.decline_category == "hard" and result.token is None
    assert result.message == "The security code (CVV) is not valid. Please check it and try again."
    assert sim.control("/_sim/ledger")["tokens"] == []


def test_verifying_a_card_without_paying_authorises_then_releases(sim):
    client = sim.client()
    tid = new_transaction_id()
    auth = client.authorize(tid, 100, card=future_card(cvv=CVV))
    assert auth.approved and auth.token and auth.cvv2 == "P" and auth.transaction_type == "AUTHONLY"
    released = client.release_authorization(tid, auth.approval, 100, token=auth.token)
    assert released.approved and released.transaction_type == "REVERSEAUTH"
    [original] = [e for e in sim.control(f"/_sim/ledger?transaction_id={tid}")["transactions"]
                  if e["type"] == "AUTHONLY"]
    assert original["status"] == "reversed"


def test_release_falls_back_to_void_when_the_terminal_has_no_reverseauth(sim):
    sim.control("/_sim/config", {"reverseauth_enabled": False, "void_authonly": True})
    client = sim.client()
    tid = new_transaction_id()
    auth = client.authorize(tid, 100, card=future_card(cvv=CVV))
    released = client.release_authorization(tid, auth.approval, 100, token=auth.token)
    assert released.approved and released.transaction_type == "VOID" and released.response_text == "VOID PROCESSED"
    # Neither accepted (the §10 contract's VOID): the hold is left to lapse, and staff see why.
    sim.control("/_sim/config", {"void_authonly": False})
    tid = new_transaction_id()
    auth = client.authorize(tid, 100, card=future_card(cvv=CVV))
    stuck = client.release_authorization(tid, auth.approval, 100, token=auth.token)
    assert not stuck.approved and stuck.transaction_type == "VOID" and stuck.decline_category == "error"


def test_authorize_then_capture(sim):
    client = sim.client()
    tid = new_transaction_id()
    auth = client.authorize(tid, 1000, card=future_card(cvv=CVV), tokenize=False)
    assert auth.approved and auth.token is None
    captured = client.capture(tid, 800)
    assert captured.approved and captured.approval == auth.approval
    assert client.capture(tid).not_found  # once only


def test_an_expired_card_is_declined_hard(sim):
    result = sim.client().sale(new_transaction_id(), 1000, card=Card(PAN, 1, 2020, cvv=CVV))
    assert result.action_code == "054" and result.decline_category == "hard"


@pytest.mark.parametrize("amount,code,category", [(1005, "005", "soft"), (1051, "051", "soft"),
                                                  (1041, "041", "hard"), (1043, "043", "hard"),
                                                  (1004, "004", "hard"), (1096, "096", "soft")])
def test_decline_categories_from_the_penny_table(sim, amount, code, category):
    result = sim.client().sale(new_transaction_id(), amount, token=sim.token())
    assert result.action_code == code and result.decline_category == category


# --------------------------------------------------------------------------- bank accounts (issue 12)


def test_a_check_that_tokenizes_then_a_reversal(sim):
    client = sim.client()
    tid = new_transaction_id()
    debit = client.check(tid, 2500, "Pat Example", account=BankAccount("11111999", "071025661"), tokenize=True)
    assert debit.approved and debit.token and debit.token.endswith("1999") and debit.token != "11111999"
    refund = client.ach_reversal(tid, 1000, "Pat Example", token=debit.token)
    assert refund.approved and refund.response_text == "CHECK ACCEPTED"
    assert client.ach_reversal(tid, 1501, "Pat Example", token=debit.token).decline_category == "error"


def test_a_check_declined_by_its_cents_speaks_of_the_bank(sim):
    result = sim.client().check(new_transaction_id(), 1051, "Pat", account=BankAccount("12345", "111000025"))
    assert result.action_code == "051" and result.decline_category == "soft"
    assert result.message == "There are not enough funds in the bank account."


def test_a_returned_check_cannot_be_refunded(sim):
    client = sim.client()
    tid = new_transaction_id()
    account = BankAccount("12345", "111000025")
    assert client.check(tid, 90100, "Pat", account=account).approved  # $901.00: returned R01
    sim.control("/_sim/clock", {"advance_days": 2})
    assert "R01" in sim.control("/_sim/ach/returns.csv")
    refused = client.ach_reversal(tid, 90100, "Pat", account=account)
    assert not refused.approved and refused.action_code == "900"
