"""The IPpay gateway simulator against ippay-protocol.md (§10 is the contract).

Only raw HTTP and hand-written XML are used here, never the project's own
IPpay client, so the simulator is checked against the spec rather than against
what one client happens to send.
"""

import concurrent.futures
import datetime
import re
import time

import pytest
import requests
from defusedxml.ElementTree import fromstring

from sandbox.ippay import create_app
from sandbox.ippay.rules import APPROVING_CENTS
from sandbox.serve import BackgroundServer

CARD = "4000300020001000"  # §7: the official example card
AMEX = "378282246310005"
BAD_LUHN = "4111111111111112"  # §7 [S] BOP
NEXT_YEAR = f"{(datetime.date.today().year + 1) % 100:02d}"
CARD_FIELDS = {"CardNum": CARD, "CardExpMonth": "09", "CardExpYear": NEXT_YEAR}
ACH = ("<AccountNumber>{account}</AccountNumber><ABA>{aba}</ABA>"
       "<CheckNumber>{check}</CheckNumber>")


# -- fixtures and helpers -----------------------------------------------------

@pytest.fixture(scope="module")
def shared_sim():
    with BackgroundServer(create_app()) as server:
        yield server


@pytest.fixture
def ippay_sim(shared_sim):
    """Overrides conftest's ``ippay_sim``: one server for the module, reset through
    the control plane before each test. Stopping a BackgroundServer waits out
    ``serve_forever``'s 0.5 s poll, which over ~100 tests would dominate the run."""
    requests.post(shared_sim.url + "/_sim/reset", timeout=5).raise_for_status()
    return shared_sim


def el(name, text="", **attrs):
    attributes = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f"<{name}{attributes}>{text}</{name}>"


def doc(transaction_type, root="ippay", terminal="TESTTERMINAL", **fields):
    """A request document. A field value may be ``(text, {attr: value})``; texts
    are inserted raw, so nested XML (ACH) can be passed as a string."""
    parts = []
    if transaction_type is not None:
        parts.append(el("TransactionType", transaction_type))
    if terminal is not None:
        parts.append(el("TerminalID", terminal))
    for name, value in fields.items():
        text, attrs = value if isinstance(value, tuple) else (value, {})
        parts.append(el(name, text, **attrs))
    return f"<{root}>{''.join(parts)}</{root}>"


def sale(transaction_id, amount, type_="SALE", **extra):
    fields = {"TransactionID": transaction_id, **CARD_FIELDS, "TotalAmount": str(amount)}
    fields.update(extra)
    return doc(type_, **fields)


def ach(account="12345", aba="111000025", check="100", acct_attrs=""):
    inner = ACH.format(account=account, aba=aba, check=check)
    if acct_attrs:
        inner = inner.replace("<AccountNumber>", f"<AccountNumber {acct_attrs}>")
    return (inner, {"Type": "CHECKING", "SEC": "WEB"})


def post(sim, body, timeout=5, **kwargs):
    return requests.post(sim.url + "/ippay", data=body, timeout=timeout, **kwargs)


def parse(response):
    """``(root tag, {child: raw text})`` of a 200 text/xml reply."""
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    root = fromstring(response.content)
    return root.tag, {child.tag: child.text or "" for child in root}


def call(sim, body):
    """The children of the reply to ``body``."""
    return parse(post(sim, body))[1]


def control(sim, path, payload=None):
    url = f"{sim.url}/_sim/{path}"
    response = requests.post(url, json=payload) if payload is not None else requests.get(url)
    return response


def configure(sim, **switches):
    response = control(sim, "config", switches)
    assert response.status_code == 200, response.text
    return response.json()


def add_faults(sim, *faults, **random_share):
    body = {"faults": list(faults)} if faults else random_share
    response = control(sim, "faults", body)
    assert response.status_code == 200, response.text
    return response.json()


def ledger(sim, transaction_id=None):
    params = {"transaction_id": transaction_id} if transaction_id else {}
    return requests.get(sim.url + "/_sim/ledger", params=params).json()


def enq(sim, transaction_id, root="ippay"):
    return call(sim, doc("ENQ", root=root, TransactionID=transaction_id))


def tokenize(sim, pan=CARD, terminal="TESTTERMINAL", month="09", year=NEXT_YEAR):
    return call(sim, doc("TOKENIZE", terminal=terminal, CardNum=pan, CardExpMonth=month,
                         CardExpYear=year))


def assert_error(reply, message):
    """§10: validation errors are 900 + ErrMsg + ResponseText DECLINED."""
    assert reply["ActionCode"] == "900"
    assert reply["ResponseText"] == "DECLINED"
    assert reply["ErrMsg"] == message


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
    expired = {"CardExpMonth": "01", "CardExpYear": "20"}
    assert call(ippay_sim, sale("EXPD00000000000001", 100, **expired))["ActionCode"] == "000"
    configure(ippay_sim, decline_expired=True)
    reply = call(ippay_sim, sale("EXPD00000000000002", 100, **expired))
    assert reply["ActionCode"] == "054" and reply["ResponseText"] == "DECLINED"
    assert call(ippay_sim, sale("EXPD00000000000003", 100))["ActionCode"] == "000"


def test_cvv_000_override(ippay_sim):
    assert call(ippay_sim, sale("CVV000000000000001", 100, CVV2="000"))["ActionCode"] == "000"
    configure(ippay_sim, decline_cvv_000=True)
    assert call(ippay_sim, sale("CVV000000000000002", 100, CVV2="000"))["ActionCode"] == "806"
    assert call(ippay_sim, sale("CVV000000000000003", 100, CVV2="123"))["ActionCode"] == "000"


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

def assert_token_format(token, pan):
    assert len(token) == len(pan) and token != pan
    assert token[0] == pan[0] and token[-4:] == pan[-4:]
    assert re.fullmatch(r"[A-Z0-9]+", token[1:-4]) and re.search(r"[A-Z]", token)


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


def void(transaction_id, approval, amount, **card):
    fields = card or {"CardNum": CARD, "CardExpMonth": "09", "CardExpYear": NEXT_YEAR}
    return doc("VOID", TransactionID=transaction_id, Approval=approval, TotalAmount=str(amount),
               **fields)


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


def credit(transaction_id, amount, **card):
    return doc("CREDIT", TransactionID=transaction_id, TotalAmount=str(amount),
               **(card or CARD_FIELDS))


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


# -- faults and latency (§9, §10) --------------------------------------------------------

def test_timeout_commit_is_found_by_enq(ippay_sim):
    add_faults(ippay_sim, {"kind": "timeout_commit", "delay_s": 1.0, "types": ["SALE"]})
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(ippay_sim, sale("FLTC00000000000001", 1000), timeout=(2, 0.3))
    reply = enq(ippay_sim, "FLTC00000000000001")
    assert reply["ActionCode"] == "000" and reply["Approval"] == "TEST00"


def test_timeout_no_commit_leaves_nothing(ippay_sim):
    add_faults(ippay_sim, {"kind": "timeout_no_commit", "delay_s": 1.0})
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(ippay_sim, sale("FLTN00000000000001", 1000), timeout=(2, 0.3))
    assert enq(ippay_sim, "FLTN00000000000001")["ActionCode"] == "025"
    time.sleep(max(0.0, 1.1 - (time.monotonic() - started)))  # the delayed reply is gone now
    assert enq(ippay_sim, "FLTN00000000000001")["ActionCode"] == "025"
    # §8 step 5: after a 025 the client may resend with the same ID.
    assert call(ippay_sim, sale("FLTN00000000000001", 1000))["ActionCode"] == "000"


@pytest.mark.parametrize("commit", [False, True])
def test_http_500(ippay_sim, commit):
    add_faults(ippay_sim, {"kind": "http_500", "commit": commit})
    response = post(ippay_sim, sale("FLT500000000000001", 1000))
    assert response.status_code == 500
    assert enq(ippay_sim, "FLT500000000000001")["ActionCode"] == ("000" if commit else "025")


def test_malformed_reply_is_truncated_xml(ippay_sim):
    add_faults(ippay_sim, {"kind": "malformed"})
    response = post(ippay_sim, sale("FLTM00000000000001", 1000))
    assert response.status_code == 200 and response.content.startswith(b"<ippayResponse>")
    with pytest.raises(Exception):
        fromstring(response.content)
    assert enq(ippay_sim, "FLTM00000000000001")["ActionCode"] == "000"


def test_empty_reply(ippay_sim):
    add_faults(ippay_sim, {"kind": "empty"})
    response = post(ippay_sim, sale("FLTE00000000000001", 1000))
    assert response.status_code == 200 and response.content == b""
    assert enq(ippay_sim, "FLTE00000000000001")["ActionCode"] == "025"


def test_echo_reply_carries_the_card_number(ippay_sim):
    add_faults(ippay_sim, {"kind": "echo"})
    body = sale("FLTX00000000000001", 1000, CVV2="123")
    response = post(ippay_sim, body)
    assert response.status_code == 200 and response.text == body and CARD in response.text


def test_queued_faults_match_types_and_count(ippay_sim):
    plan = add_faults(ippay_sim, {"kind": "http_500", "types": ["SALE"], "count": 2})
    assert plan["queued"][0]["count"] == 2
    assert post(ippay_sim, doc("PING")).status_code == 200
    assert post(ippay_sim, sale("FLTQ00000000000001", 100)).status_code == 500
    assert post(ippay_sim, sale("FLTQ00000000000002", 100)).status_code == 500
    assert post(ippay_sim, sale("FLTQ00000000000003", 100)).status_code == 200
    assert control(ippay_sim, "faults").json() == {"queued": [], "random": None}


def test_random_fault_share_is_seeded(ippay_sim):
    def run():
        add_faults(ippay_sim, rate=0.5, kind="http_500", types=["PING"], seed=7)
        return [post(ippay_sim, doc("PING")).status_code for _ in range(20)]

    first = run()
    assert set(first) == {200, 500}
    assert run() == first
    add_faults(ippay_sim, rate=1.0, kind="empty", types=["ENQ"])
    assert post(ippay_sim, doc("PING")).status_code in (200, 500)
    assert post(ippay_sim, doc("ENQ", TransactionID="X")).content == b""
    add_faults(ippay_sim, rate=0)
    assert control(ippay_sim, "faults").json()["random"] is None


@pytest.mark.parametrize("payload", [
    {"faults": [{"kind": "nonsense"}]},
    {"faults": [{"kind": "http_500", "count": 0}]},
    {"faults": [{"kind": "timeout_commit", "commit": False}]},
    {"rate": 2, "kind": "http_500"},
    {"faults": "http_500"},
])
def test_bad_fault_specs_are_refused(ippay_sim, payload):
    response = control(ippay_sim, "faults", payload)
    assert response.status_code == 400 and response.json()["error"]
    assert control(ippay_sim, "faults").json() == {"queued": [], "random": None}


def test_latency_lets_concurrent_calls_overlap(ippay_sim):
    configure(ippay_sim, latency_ms=300)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: call(ippay_sim, doc("PING")), range(8)))
    elapsed = time.monotonic() - started
    assert all(r["ResponseText"] == "PING" for r in replies)
    assert 0.3 <= elapsed < 1.5  # serialised calls would take 2.4 s


# -- concurrency ------------------------------------------------------------------------

def test_concurrent_sales_are_all_recorded(ippay_sim):
    ids = [f"CONC{i:014d}" for i in range(40)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda tid: call(ippay_sim, sale(tid, 1000)), ids))
    assert all(r["ActionCode"] == "000" for r in replies)
    entries = ledger(ippay_sim)["transactions"]
    assert sorted(e["transaction_id"] for e in entries) == ids
    assert len({e["ip_trans_id"] for e in entries}) == 40
    assert sorted(e["seq"] for e in entries) == list(range(1, 41))


def test_concurrent_duplicates_charge_once(ippay_sim):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: call(ippay_sim, sale("CONCDUP00000000001", 1000)),
                                range(16)))
    codes = sorted(r["ActionCode"] for r in replies)
    assert codes == ["000"] + ["094"] * 15
    assert len(ledger(ippay_sim)["transactions"]) == 1


def test_concurrent_refunds_never_exceed_the_capture(ippay_sim):
    call(ippay_sim, sale("CONCREF00000000001", 1000))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: call(ippay_sim, credit("CONCREF00000000001", 300)),
                                range(8)))
    assert sum(r["ActionCode"] == "000" for r in replies) == 3
    assert ledger(ippay_sim, "CONCREF00000000001")["transactions"][0]["refunded"] == 900


# -- control plane -------------------------------------------------------------------------

def test_requests_log_keeps_every_raw_body_in_order(ippay_sim):
    bodies = [doc("PING"), sale("LOGR00000000000001", 100), "garbage"]
    add_faults(ippay_sim, {"kind": "http_500", "types": ["SALE"]})
    for body in bodies:
        post(ippay_sim, body, headers={"Content-Type": "text/xml"})
    logged = control(ippay_sim, "requests").json()["requests"]
    assert [r["body"] for r in logged] == bodies
    assert [r["seq"] for r in logged] == [1, 2, 3]
    assert logged[1]["path"] == "/ippay" and logged[1]["content_type"] == "text/xml"
    assert CARD in logged[1]["body"]


def test_config_health_and_reset(ippay_sim):
    config = control(ippay_sim, "config").json()
    assert config["duplicate_id"] == "reject" and config["terminals"] == ["TESTTERMINAL"]
    assert config["reverseauth_enabled"] is True and config["latency_ms"] == 0
    for bad in ({"duplicate_id": "ignore"}, {"no_such_switch": 1}, {"latency_ms": -1},
                {"cents_rule_types": ["CHECK"]}, {"decline_expired": "yes"}):
        response = control(ippay_sim, "config", bad)
        assert response.status_code == 400 and response.json()["error"]
    configure(ippay_sim, duplicate_id="replay")
    call(ippay_sim, sale("RSET00000000000001", 100))
    add_faults(ippay_sim, {"kind": "empty"})
    health = control(ippay_sim, "health").json()
    assert health == {"status": "ok", "transactions": 1, "tokens": 0, "requests": 1}
    assert control(ippay_sim, "reset", {}).json() == {"status": "ok"}
    assert ledger(ippay_sim) == {"transactions": [], "tokens": []}
    assert control(ippay_sim, "requests").json() == {"requests": []}
    assert control(ippay_sim, "faults").json() == {"queued": [], "random": None}
    assert control(ippay_sim, "config").json()["duplicate_id"] == "reject"
    assert enq(ippay_sim, "RSET00000000000001")["ActionCode"] == "025"


def test_switches_from_environment_and_create_app(monkeypatch):
    monkeypatch.setenv("IPPAY_SIM_DUPLICATE_ID", "replay")
    monkeypatch.setenv("IPPAY_SIM_TERMINALS", "TESTTERMINAL, DEMOTERMINAL")
    monkeypatch.setenv("IPPAY_SIM_REVERSEAUTH_ENABLED", "false")
    client = create_app({"latency_ms": 5, "TESTING": True}).test_client()
    config = client.get("/_sim/config").get_json()
    assert config["duplicate_id"] == "replay" and config["latency_ms"] == 5
    assert config["terminals"] == ["TESTTERMINAL", "DEMOTERMINAL"]
    assert config["reverseauth_enabled"] is False
    monkeypatch.setenv("IPPAY_SIM_LATENCY_MS", "soon")
    with pytest.raises(ValueError):
        create_app()
