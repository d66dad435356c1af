"""Bank accounts (ACH, §2.2 row 17, §7, §10; issue 12): CHECK, REVERSAL, VOIDACH, ACH tokens, declines
and returns scheduled after N simulated days with their CSV report."""

import csv
import datetime
import io

import pytest
import requests

from tests.sandbox.ippay.sim_helpers import ach, assert_error, call, configure, control, doc, ledger, tokenize

TODAY = datetime.date.today()


# -- ACH (§2.2 row 17, §7, §10) ---------------------------------------------------------


def test_check_accepted(ippay_sim):
    reply = call(ippay_sim, doc("CHECK", TransactionID="ACHC00000000000001", CardName="Pat",
                                TotalAmount="1000", ACH=ach()))
    assert reply["ActionCode"] == "000" and reply["ResponseText"] == "CHECK ACCEPTED"
    assert reply["Approval"] == "000000" and "Token" not in reply


@pytest.mark.parametrize("changes, code, message", [
    ({"ACH": ach(aba="11100002")}, "923", "Invalid ABA number. ABA must be 9 digits."),
    ({"ACH": ach(aba="11100002X")}, "923", "Invalid ABA number. ABA must be 9 digits."),
    ({"ACH": ach(check="")}, "900",
     "Check Number is required for all CHECK, REVERSAL, VOIDACH transactions."),
    ({"CardName": ""}, "900",
     "Customer Name is required for all CHECK, REVERSAL, VOIDACH transactions."),
    ({"ACH": (ach()[0], {"SEC": "WEB"})}, "900",
     "Account Type is required for all CHECK, REVERSAL, VOIDACH transactions."),
])
def test_check_validation(ippay_sim, changes, code, message):
    fields = {"TransactionID": "ACHV00000000000001", "CardName": "Pat", "TotalAmount": "100",
              "ACH": ach(), **changes}
    reply = call(ippay_sim, doc("CHECK", **fields))
    assert (reply["ActionCode"], reply["ErrMsg"]) == (code, message)


def test_ach_tokens(ippay_sim):
    reply = call(ippay_sim, doc("CHECK", TransactionID="ACHT00000000000001", CardName="Pat",
                                TotalAmount="1000",
                                ACH=ach(account="11111999", acct_attrs='Tokenize="true"')))
    token = reply["Token"]
    assert len(token) == 8 and token[-4:] == "1999" and token != "11111999"
    standalone = call(ippay_sim, doc("TOKENIZE", ABA="111000025", AccountNumber="11111999"))
    assert standalone["Token"] == token and standalone["ResponseText"] == "TOKENIZED"
    by_token = call(ippay_sim, doc(
        "CHECK", TransactionID="ACHT00000000000002", CardName="Pat", TotalAmount="500",
        ACH=(f"<Token>{token}</Token><CheckNumber>101</CheckNumber>",
             {"Type": "CHECKING", "SEC": "WEB"})))
    assert by_token["ActionCode"] == "000" and by_token["Approval"] == "000000"
    card_token = tokenize(ippay_sim)["Token"]
    assert_error(call(ippay_sim, doc("SALE", TransactionID="ACHT00000000000003", Token=token,
                                     TotalAmount="100")), "Invalid Token.")
    assert_error(call(ippay_sim, doc(
        "CHECK", TransactionID="ACHT00000000000004", CardName="Pat", TotalAmount="500",
        ACH=(f"<Token>{card_token}</Token><CheckNumber>1</CheckNumber>",
             {"Type": "CHECKING", "SEC": "WEB"}))), "Invalid Token.")


def test_reversal_and_voidach(ippay_sim):
    call(ippay_sim, doc("CHECK", TransactionID="ACHR00000000000001", CardName="Pat",
                        TotalAmount="1000", ACH=ach()))
    reversal = doc("REVERSAL", TransactionID="ACHR00000000000001", CardName="Pat",
                   TotalAmount="1000", ACH=ach())
    reply = call(ippay_sim, reversal)
    assert reply["ResponseText"] == "CHECK ACCEPTED" and reply["Approval"] == "000000"
    assert_error(call(ippay_sim, reversal), "Credit amount exceeds the amount available to refund.")
    unlinked = call(ippay_sim, reversal.replace("ACHR00000000000001", "ACHR00000000000002"))
    assert unlinked["ResponseText"] == "CHECK ACCEPTED"
    assert_error(call(ippay_sim, reversal.replace("REVERSAL", "VOIDACH")),
                 "VOIDACH transactions are no longer supported. Please contact support@ippay.com")


# -- routing and account numbers (§5.2, §10) -----------------------------------------------

@pytest.mark.parametrize("aba", ["111000026", "071025662", "123456789"])
def test_an_aba_whose_checksum_fails_is_923(ippay_sim, aba):
    check = doc("CHECK", TransactionID="ACHK00000000000001", CardName="Pat", TotalAmount="100", ACH=ach(aba=aba))
    tokenize_root = doc("TOKENIZE", ABA=aba, AccountNumber="11111999")
    for body in (check, tokenize_root):
        reply = call(ippay_sim, body)
        assert (reply["ActionCode"], reply["ResponseText"], reply["ErrMsg"]) == (
            "923", "DECLINED", "Invalid ABA number. The check digit does not match.")
    assert ledger(ippay_sim) == {"transactions": [], "tokens": []}


@pytest.mark.parametrize("aba", ["111000025", "071025661"])
def test_the_test_routing_numbers_are_accepted(ippay_sim, aba):
    reply = call(ippay_sim, doc("CHECK", TransactionID="ACHK00000000000002", CardName="Pat", TotalAmount="100",
                                ACH=ach(aba=aba, account="11111999", check="15")))
    assert reply["ResponseText"] == "CHECK ACCEPTED"


@pytest.mark.parametrize("account", ["123", "1" * 18, "12a45", "12-345"])
def test_an_account_number_that_is_not_4_to_17_digits_is_924(ippay_sim, account):
    for body in (doc("CHECK", TransactionID="ACHK00000000000003", CardName="Pat", TotalAmount="100",
                     ACH=ach(account=account)),
                 doc("TOKENIZE", ABA="111000025", AccountNumber=account)):
        reply = call(ippay_sim, body)
        assert (reply["ActionCode"], reply["ErrMsg"]) == ("924", "Invalid account number.")


def test_tokenize_reads_the_account_inside_an_ach_container_too(ippay_sim):
    root_level = call(ippay_sim, doc("TOKENIZE", ABA="111000025", AccountNumber="11111999"))
    nested = call(ippay_sim, doc("TOKENIZE", ACH=("<AccountNumber>11111999</AccountNumber><ABA>111000025</ABA>",
                                                  {"Type": "CHECKING", "SEC": "WEB"})))
    assert nested["Token"] == root_level["Token"] and nested["ResponseText"] == "TOKENIZED"


# -- declines (§7 [I]: the penny table decides CHECK too) -----------------------------------


def check(transaction_id, amount, **ach_fields):
    return doc("CHECK", TransactionID=transaction_id, CardName="Pat Example", TotalAmount=str(amount),
               ACH=ach(**ach_fields))


@pytest.mark.parametrize("amount,code", [(1051, "051"), (1052, "052"), (1053, "053"), (1014, "014"),
                                         (1005, "005")])
def test_a_check_is_declined_by_its_cents(ippay_sim, amount, code):
    reply = call(ippay_sim, check("ACHD00000000000001", amount))
    assert (reply["ActionCode"], reply["ResponseText"]) == (code, "DECLINED")
    assert not {"Approval", "Token", "ErrMsg"} & reply.keys()
    assert ledger(ippay_sim)["transactions"][0]["status"] == "declined"


def test_the_check_cents_rule_is_a_switch_and_refunds_are_not_decided(ippay_sim):
    configure(ippay_sim, ach_cents_rule=False)
    assert call(ippay_sim, check("ACHD00000000000002", 1051))["ActionCode"] == "000"
    configure(ippay_sim, ach_cents_rule=True)
    reversal = doc("REVERSAL", TransactionID="ACHD00000000000003", CardName="Pat", TotalAmount="5205", ACH=ach())
    assert call(ippay_sim, reversal)["ResponseText"] == "CHECK ACCEPTED"


# -- returns after N simulated days (issue 12) ------------------------------------------------


def returns(sim):
    response = control(sim, "ach/returns")
    assert response.status_code == 200, response.text
    return response.json()


def report(sim, **params):
    response = requests.get(sim.url + "/_sim/ach/returns.csv", params=params, timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    return response.text


def test_a_check_of_9nn_dollars_is_returned_rnn_two_simulated_days_later(ippay_sim):
    assert call(ippay_sim, check("ACHR00000000000011", 90100, account="11111999"))["ActionCode"] == "000"
    listed = returns(ippay_sim)
    assert listed["returns"] == [] and [r["code"] for r in listed["scheduled"]] == ["R01"]
    assert listed["scheduled"][0]["due_date"] == (TODAY + datetime.timedelta(days=2)).isoformat()
    control(ippay_sim, "clock", {"advance_days": 1})
    assert returns(ippay_sim)["returns"] == []
    assert ledger(ippay_sim)["transactions"][0]["status"] == "accepted"
    control(ippay_sim, "clock", {"advance_days": 1})
    [returned] = returns(ippay_sim)["returns"]
    assert (returned["transaction_id"], returned["code"], returned["reason"], returned["origin"]) == (
        "ACHR00000000000011", "R01", "Insufficient Funds", "amount")
    [entry] = ledger(ippay_sim)["transactions"]
    assert (entry["status"], entry["return_code"]) == ("returned", "R01")


@pytest.mark.parametrize("amount,code", [(90200, "R02"), (90300, "R03"), (90400, "R04"), (90800, "R08"),
                                         (91000, "R10"), (92900, "R29"), (90000, None), (91300, None),
                                         (100100, None), (1000, None)])
def test_the_amount_trigger(ippay_sim, amount, code):
    call(ippay_sim, check("ACHR00000000000012", amount))
    assert [r["code"] for r in returns(ippay_sim)["scheduled"]] == ([code] if code else [])


def test_returns_for_chosen_transactions(ippay_sim):
    call(ippay_sim, check("ACHR00000000000013", 2500, account="11111999"))
    call(ippay_sim, check("ACHR00000000000014", 3000))
    response = control(ippay_sim, "ach/returns", {"returns": [
        {"transaction_id": "ACHR00000000000013", "code": "R10", "after_days": 5},
        {"transaction_id": "achr00000000000014", "code": "R02", "terminal_id": "TESTTERMINAL"}]})
    assert response.status_code == 200, response.text
    assert {(r["transaction_id"], r["due_date"]) for r in response.json()["scheduled"]} == {
        ("ACHR00000000000013", (TODAY + datetime.timedelta(days=5)).isoformat()),
        ("ACHR00000000000014", (TODAY + datetime.timedelta(days=2)).isoformat())}
    control(ippay_sim, "clock", {"advance_days": 3})
    assert [r["code"] for r in returns(ippay_sim)["returns"]] == ["R02"]
    control(ippay_sim, "clock", {"today": (TODAY + datetime.timedelta(days=7)).isoformat()})
    assert [r["code"] for r in returns(ippay_sim)["returns"]] == ["R02", "R10"]


@pytest.mark.parametrize("spec", [
    {"transaction_id": "NOSUCH000000000001", "code": "R01"},
    {"transaction_id": "ACHR00000000000015", "code": "R99"},
    {"transaction_id": "ACHR00000000000015", "code": "R01", "after_days": -1},
    {"transaction_id": "ACHR00000000000016", "code": "R01"},   # a declined CHECK
    {"code": "R01"},
])
def test_returns_that_cannot_be_scheduled(ippay_sim, spec):
    call(ippay_sim, check("ACHR00000000000015", 1000))
    call(ippay_sim, check("ACHR00000000000016", 1051))
    response = control(ippay_sim, "ach/returns", {"returns": [spec]})
    assert response.status_code == 400 and response.json()["error"]
    assert returns(ippay_sim)["scheduled"] == []


def test_one_return_per_check_and_none_once_switched_off(ippay_sim):
    call(ippay_sim, check("ACHR00000000000017", 90100))
    again = control(ippay_sim, "ach/returns", {"returns": [{"transaction_id": "ACHR00000000000017", "code": "R02"}]})
    assert again.status_code == 400
    configure(ippay_sim, ach_return_trigger=False)
    call(ippay_sim, check("ACHR00000000000018", 90100))
    assert [r["transaction_id"] for r in returns(ippay_sim)["scheduled"]] == ["ACHR00000000000017"]


def test_the_returns_report_csv(ippay_sim):
    configure(ippay_sim, ach_return_days=0)
    call(ippay_sim, check("ACHR00000000000019", 90300, account="11111999"))
    control(ippay_sim, "clock", {"advance_days": 3})
    call(ippay_sim, check("ACHR00000000000020", 91000))
    text = report(ippay_sim)
    assert text.startswith("return_date,terminal_id,transaction_id,ip_trans_id,check_date,return_code,"
                           "return_reason,amount_cents,account_last4,account_type,sec_code,account_holder\r\n")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["transaction_id"], r["return_code"]) for r in rows] == [
        ("ACHR00000000000019", "R03"), ("ACHR00000000000020", "R10")]
    first = rows[0]
    assert (first["return_date"], first["check_date"]) == (TODAY.isoformat(), TODAY.isoformat())
    assert (first["amount_cents"], first["account_last4"], first["account_type"], first["sec_code"]) == (
        "90300", "1999", "CHECKING", "WEB")
    assert first["account_holder"] == "Pat Example" and first["return_reason"].startswith("No Account")
    assert len(first["ip_trans_id"]) == 26 and "11111999" not in text  # never the account number
    later = (TODAY + datetime.timedelta(days=1)).isoformat()
    assert [r["transaction_id"] for r in csv.DictReader(io.StringIO(report(ippay_sim, since=later)))] == [
        "ACHR00000000000020"]
    assert len(list(csv.DictReader(io.StringIO(report(ippay_sim, terminal_id="OTHER"))))) == 0
    configure(ippay_sim, ach_returns_amount="dollars")
    dollars = list(csv.DictReader(io.StringIO(report(ippay_sim))))
    assert dollars[0]["amount"] == "903.00" and "amount_cents" not in dollars[0]
    bad = requests.get(ippay_sim.url + "/_sim/ach/returns.csv", params={"since": "yesterday"}, timeout=5)
    assert bad.status_code == 400


def test_a_returned_check_cannot_be_reversed(ippay_sim):
    configure(ippay_sim, ach_return_days=0)
    call(ippay_sim, check("ACHR00000000000021", 90100))
    reversal = doc("REVERSAL", TransactionID="ACHR00000000000021", CardName="Pat", TotalAmount="1000", ACH=ach())
    assert_error(call(ippay_sim, reversal), "The transaction was returned by the bank; nothing is left to refund.")



def test_listed_test_accounts_are_returned_after_their_days(ippay_sim):
    # By last four digits and by the whole number; a token of the whole number matches too.
    configure(ippay_sim, ach_returns={"6789": {"code": "R01", "after_days": 3},
                                      "55512345": {"code": "R02"}})
    call(ippay_sim, check("ACHL00000000000001", 2500, account="000123456789"))
    call(ippay_sim, check("ACHL00000000000002", 2600, account="55512345",
                          acct_attrs='Tokenize="true"'))
    call(ippay_sim, check("ACHL00000000000003", 2700, account="11111999"))   # not listed
    call(ippay_sim, check("ACHL00000000000004", 2800, account="99512345"))   # same last four, other number
    token = ledger(ippay_sim, transaction_id="ACHL00000000000002")["transactions"][0]["token"]
    assert call(ippay_sim, doc("CHECK", TransactionID="ACHL00000000000005", CardName="Pat", TotalAmount="2900",
                               ACH=(f"<Token>{token}</Token><CheckNumber>100</CheckNumber>",
                                    {"Type": "CHECKING", "SEC": "WEB"})))["ActionCode"] == "000"
    scheduled = returns(ippay_sim)["scheduled"]
    assert {(r["transaction_id"], r["code"], r["due_date"], r["origin"]) for r in scheduled} == {
        ("ACHL00000000000001", "R01", (TODAY + datetime.timedelta(days=3)).isoformat(), "account"),
        ("ACHL00000000000002", "R02", (TODAY + datetime.timedelta(days=2)).isoformat(), "account"),
        ("ACHL00000000000005", "R02", (TODAY + datetime.timedelta(days=2)).isoformat(), "account")}
    control(ippay_sim, "clock", {"advance_days": 2})
    assert {r["transaction_id"] for r in csv.DictReader(io.StringIO(report(ippay_sim)))} == {
        "ACHL00000000000002", "ACHL00000000000005"}
    control(ippay_sim, "clock", {"advance_days": 1})
    rows = list(csv.DictReader(io.StringIO(report(ippay_sim))))
    assert [r["transaction_id"] for r in rows].count("ACHL00000000000001") == 1
    assert len(rows) == 3, "each return is listed once"
    configure(ippay_sim, ach_returns={})
    call(ippay_sim, check("ACHL00000000000006", 2500, account="000123456789"))
    assert [r for r in returns(ippay_sim)["scheduled"]] == []


@pytest.mark.parametrize("value", [{"12": {"code": "R01"}}, {"6789": {"code": "R99"}},
                                   {"6789": {"code": "R01", "after_days": -1}}, {"6789": "R01"},
                                   ["6789"], {"67a9": {"code": "R01"}},
                                   {"6789": {"code": "R01", "days": 3}}])
def test_listed_accounts_that_are_refused(ippay_sim, value):
    response = control(ippay_sim, "config", {"ach_returns": value})
    assert response.status_code == 400 and "ach_returns" in response.json()["error"]
