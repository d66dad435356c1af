"""Faults and latency (§9, §10), concurrency, and the control plane (/_sim/...)."""

import concurrent.futures
import datetime
import time

import pytest
import requests
from defusedxml.ElementTree import fromstring

from sandbox.ippay import create_app
from tests.sandbox.ippay.sim_helpers import (
    CARD, doc, sale, post, call, control, configure, add_faults, ledger, enq, credit,
)


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
    with pytest.raises(Exception):  # noqa: B017 - any parse error: the body is not XML
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


def test_stats_count_the_calls_in_flight_per_terminal_and_their_peak(ippay_sim):
    configure(ippay_sim, latency_ms=300, terminals=["TESTTERMINAL", "OTHERTERMINAL"])
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        during = pool.submit(lambda: (time.sleep(0.15), control(ippay_sim, "stats").json())[1])
        calls = [pool.submit(call, ippay_sim, doc("PING")) for _ in range(5)]
        calls += [pool.submit(call, ippay_sim, doc("PING", terminal="OTHERTERMINAL"))
                  for _ in range(2)]
        seen = during.result()["terminals"]
        assert all(c.result()["ResponseText"] == "PING" for c in calls)
    assert seen["TESTTERMINAL"]["in_flight"] == 5 and seen["OTHERTERMINAL"]["in_flight"] == 2
    # One more call alone: the peak stays what it was, the calls are counted.
    call(ippay_sim, doc("PING"))
    post(ippay_sim, "garbage")  # no terminal to count it under
    stats = control(ippay_sim, "stats").json()["terminals"]
    assert stats == {"OTHERTERMINAL": {"in_flight": 0, "peak_in_flight": 2, "calls": 2},
                     "TESTTERMINAL": {"in_flight": 0, "peak_in_flight": 5, "calls": 6}}
    assert control(ippay_sim, "stats", {"reset": True}).json() == {"terminals": {}}
    assert control(ippay_sim, "stats", {"reset": "yes"}).status_code == 400
    call(ippay_sim, doc("PING"))
    assert control(ippay_sim, "stats").json()["terminals"]["TESTTERMINAL"] == {
        "in_flight": 0, "peak_in_flight": 1, "calls": 1}
    control(ippay_sim, "reset", {})
    assert control(ippay_sim, "stats").json() == {"terminals": {}}


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


def test_the_clock(ippay_sim):
    today = datetime.date.today()
    assert control(ippay_sim, "clock").json() == {"today": today.isoformat(), "offset_days": 0}
    moved = control(ippay_sim, "clock", {"advance_days": 30}).json()
    assert moved == {"today": (today + datetime.timedelta(days=30)).isoformat(), "offset_days": 30}
    assert control(ippay_sim, "clock", {"today": "2031-02-03"}).json()["today"] == "2031-02-03"
    for bad in ({"advance_days": -1}, {"advance_days": True}, {"today": "soon"}, {},
                {"advance_days": 1, "today": "2031-01-01"}):
        response = control(ippay_sim, "clock", bad)
        assert response.status_code == 400 and response.json()["error"]
    assert control(ippay_sim, "clock").json()["today"] == "2031-02-03"


def test_reset_forgets_returns_and_the_clock(ippay_sim):
    call(ippay_sim, doc("CHECK", TransactionID="RSTR00000000000001", CardName="Pat", TotalAmount="90100",
                        ACH=("<AccountNumber>12345</AccountNumber><ABA>111000025</ABA><CheckNumber>1</CheckNumber>",
                             {"Type": "CHECKING", "SEC": "WEB"})))
    control(ippay_sim, "clock", {"advance_days": 5})
    assert len(control(ippay_sim, "ach/returns").json()["returns"]) == 1
    control(ippay_sim, "reset", {})
    assert control(ippay_sim, "clock").json()["offset_days"] == 0
    assert control(ippay_sim, "ach/returns").json() == {
        "today": datetime.date.today().isoformat(), "returns": [], "scheduled": []}


def test_new_switches_are_validated(ippay_sim):
    config = control(ippay_sim, "config").json()
    assert (config["cvv2_result"], config["cvv_format_error"], config["tokenize_checks_cvv"]) == ("P", "900", False)
    assert (config["ach_cents_rule"], config["ach_return_trigger"], config["ach_return_days"],
            config["ach_returns_amount"]) == (True, True, 2, "cents")
    for bad in ({"cvv2_result": "Y"}, {"cvv_format_error": "912"}, {"tokenize_checks_cvv": 1},
                {"ach_return_days": -2}, {"ach_returns_amount": "euros"}, {"ach_cents_rule": "on"}):
        response = control(ippay_sim, "config", bad)
        assert response.status_code == 400 and response.json()["error"]


def test_requests_log_keeps_each_reply_as_sent(ippay_sim):
    add_faults(ippay_sim, {"kind": "http_500", "types": ["SALE"]})
    post(ippay_sim, doc("PING"))
    post(ippay_sim, sale("LOGY00000000000001", 100))
    ping, faulted = control(ippay_sim, "requests").json()["requests"]
    assert ping["reply_status"] == 200 and "<ResponseText>PING</ResponseText>" in ping["reply"]
    assert (faulted["reply_status"], faulted["reply"]) == (500, "Internal Server Error")
