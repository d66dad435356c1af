"""An outside check of the simulator: Business::OnlinePayment::IPPay against it.

Debian 12 ships Freeside's Business::OnlinePayment::IPPay 0.12
(``libbusiness-onlinepayment-ippay-perl``), which was written and tested against the real
IPpay gateway (ippay-protocol.md source BOP). It is installed if missing and used as it is:
it builds its URL from server, port 443 and path ``/ippay`` over https, so the simulator
runs here behind TLS (a throw-away self-signed certificate) on port 443 of a random loopback
address; ``test_transaction(1)`` makes the module use TESTTERMINAL and keep that server.

Every transaction goes through the module (``bop/submit.pl``), and the test checks that the
module and the simulator agree: what the module reads (is_success, result_code,
error_message, authorization, order_number, avs_code, cvv2_response) is what the simulator
answered to the module's own bytes, and both are what the spec and BOP's recorded runs say
(49.95 approved, 52.05 "Do not honor", 4111111111111112 "Invalid card number.  ", CHECK
accepted with Approval 000000, REVERSEAUTH "not a valid transaction type" when switched off).
"""

import datetime
import errno
import json
import os
import random
import re
import shutil
import ssl
import subprocess
import threading
import types
from pathlib import Path

import pytest
from defusedxml.ElementTree import fromstring
from werkzeug.serving import ThreadedWSGIServer

from sandbox.ippay import create_app

PACKAGE = "libbusiness-onlinepayment-ippay-perl"
DRIVER = Path(__file__).parent / "bop" / "submit.pl"
NEXT_YEAR = (datetime.date.today().year + 1) % 100
CARD = {
    "type": "VISA", "login": "TESTTERMINAL", "password": "", "name": "Tofu Beast",
    "address": "123 Anystreet", "city": "Anywhere", "state": "UT", "zip": "84058", "country": "US",
    "card_number": "4111111111111111", "expiration": f"12/{NEXT_YEAR:02d}", "cvv2": "123",
}
BANK = {
    "type": "CHECK", "login": "TESTTERMINAL", "password": "", "name": "Tofu Beast",
    "account_number": "12345", "routing_code": "111000025", "account_type": "Personal Checking",
}


def _install_module():
    """Install Debian's package if the module is missing; skip only where apt cannot run."""
    if subprocess.run(["perl", "-MBusiness::OnlinePayment::IPPay", "-e1"], capture_output=True).returncode == 0:
        return
    if shutil.which("apt-get") is None:
        pytest.skip(f"apt-get is not available, so {PACKAGE} cannot be installed")
    if os.geteuid() != 0:
        pytest.skip(f"apt-get needs root to install {PACKAGE}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", PACKAGE]
    result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    if result.returncode != 0:  # stale or missing package lists
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=900)
        result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, f"apt-get install {PACKAGE} failed:\n{result.stdout}\n{result.stderr}"


class _TLSServer(ThreadedWSGIServer):
    """Werkzeug's threaded server, ending each TLS connection with close_notify as a real TLS
    server does: Python's SSLSocket.shutdown() drops the TLS layer without it, and the module's
    OpenSSL 3 (Net::SSLeay) counts a bare end of stream as "900 NET OR SSL ERROR"."""

    def shutdown_request(self, request):
        try:
            request.unwrap()
        except (OSError, ValueError):
            pass
        super().shutdown_request(request)


def _tls_context(directory):
    cert, key = directory / "sim.crt", directory / "sim.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=ippay-simulator.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory):
    """The simulator behind TLS on <random loopback address>:443; ``.control`` is a Flask test
    client of the same app (the same simulator state), for the control plane."""
    _install_module()
    context = _tls_context(tmp_path_factory.mktemp("tls"))
    app = create_app()
    rng = random.Random()
    for _ in range(20):
        host = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        try:
            server = _TLSServer(host, 443, app, ssl_context=context)
            break
        except PermissionError:
            pytest.skip("the module always connects to port 443, and binding it needs root")
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    else:
        pytest.fail("no free loopback address with port 443")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield types.SimpleNamespace(host=host, control=app.test_client())
    server.shutdown()
    server.server_close()


@pytest.fixture
def sim(tls_sim):
    assert tls_sim.control.post("/_sim/reset").status_code == 200
    return tls_sim


def submit(sim, **content):
    """Run one transaction through the module; return (what it read, the simulator's records of the
    requests it posted: each body and the reply the simulator sent to it)."""
    before = len(sim.control.get("/_sim/requests").get_json()["requests"])
    proc = subprocess.run(["perl", str(DRIVER)], input=json.dumps({"server": sim.host, "content": content}),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    read = json.loads(proc.stdout)
    assert read["died"] is None, read["died"]
    return read, sim.control.get("/_sim/requests").get_json()["requests"][before:]


def agreed(sim, **content):
    """Submit through the module and check it read exactly what the simulator answered; return
    what the module read and the request it sent (parsed)."""
    read, records = submit(sim, **content)
    assert len(records) == 1 and records[0]["reply_status"] == 200
    reply = {child.tag: child.text or "" for child in fromstring(records[0]["reply"].encode())}
    code = reply.get("ActionCode", "")
    assert read["result_code"] == code
    assert read["is_success"] == ("1" if code == "000" else "0")
    assert read["authorization"] == reply.get("Approval", "")
    assert read["order_number"] == reply.get("TransactionID", "")
    assert read["avs_code"] == reply.get("AVS", "")
    assert read["cvv2_response"] == reply.get("CVV2", "")
    # BOP's rule: ResponseText when there is an ActionCode and no ErrMsg, else ErrMsg.
    assert read["error_message"] == (reply["ResponseText"] if code and "ErrMsg" not in reply
                                     else reply.get("ErrMsg"))
    return read, fromstring(records[0]["body"].encode())


def tid(n):
    return f"BOPT{n:014d}"


# -- cards -------------------------------------------------------------------------------------

def test_sales_decided_by_the_cents_as_bop_recorded(sim):
    approved, request = agreed(sim, **CARD, action="Normal Authorization", amount="49.95")
    assert approved["is_success"] == "1" and approved["authorization"] == "TEST95"
    assert (approved["avs_code"], approved["cvv2_response"]) == ("Y", "P")
    # No order_number: the module fetched a TransactionID with GET ?dummy=1 (ippay §1).
    assert re.fullmatch(r"[A-Z]\d{17}", approved["order_number"])
    assert request.findtext("TotalAmount") == "4995" and request.findtext("BillingCountry") == "USA"
    assert agreed(sim, **CARD, action="Normal Authorization", amount="3.00")[0]["is_success"] == "1"
    declined, _ = agreed(sim, **CARD, action="Normal Authorization", amount="52.05")
    assert (declined["is_success"], declined["result_code"], declined["error_message"]) == ("0", "005", "DECLINED")
    assert declined["authorization"] == ""


def test_a_card_failing_luhn_is_900_invalid_card_number(sim):
    read, _ = agreed(sim, **dict(CARD, card_number="4111111111111112"), action="Normal Authorization",
                     amount="49.95")
    assert (read["is_success"], read["result_code"]) == ("0", "900")
    assert read["error_message"] == "Invalid card number.  "  # BOP's t/card.t, trailing spaces included


def test_cvv_000_and_an_expired_card_are_declined(sim):
    cvv, _ = agreed(sim, **dict(CARD, cvv2="000"), action="Normal Authorization", amount="10.00")
    assert (cvv["result_code"], cvv["cvv2_response"], cvv["is_success"]) == ("806", "N", "0")
    expired, _ = agreed(sim, **dict(CARD, expiration="01/20"), action="Normal Authorization", amount="10.00")
    assert (expired["result_code"], expired["error_message"]) == ("054", "DECLINED")


def test_authorization_only_then_post_authorization(sim):
    auth, request = agreed(sim, **CARD, action="Authorization Only", amount="30.00", order_number=tid(1))
    assert request.findtext("TransactionType") == "AUTHONLY" and auth["authorization"] == "TEST00"
    captured, request = agreed(sim, **CARD, action="Post Authorization", amount="30.00", order_number=tid(1))
    assert request.findtext("TransactionType") == "CAPT"
    assert captured["is_success"] == "1" and captured["authorization"] == auth["authorization"]
    assert captured["order_number"] == tid(1) and captured["avs_code"] == ""
    entries = sim.control.get("/_sim/ledger", query_string={"transaction_id": tid(1)}).get_json()["transactions"]
    assert [(e["type"], e["status"]) for e in entries] == [("AUTHONLY", "captured"), ("CAPT", "captured")]


def test_sale_then_void(sim):
    sale, _ = agreed(sim, **CARD, action="Normal Authorization", amount="10.00", order_number=tid(2))
    voided, request = agreed(sim, **CARD, action="Void", amount="10.00", order_number=tid(2),
                             authorization=sale["authorization"])
    assert request.findtext("TransactionType") == "VOID" and request.findtext("Approval") == sale["authorization"]
    assert (voided["is_success"], voided["error_message"]) == ("1", "VOID PROCESSED")
    again, _ = agreed(sim, **CARD, action="Void", amount="10.00", order_number=tid(2),
                      authorization=sale["authorization"])
    assert again["is_success"] == "0" and again["error_message"] == "The transaction has already been voided."


def test_credit(sim):
    refund, request = agreed(sim, **CARD, action="Credit", amount="1.00", order_number=tid(3))
    assert request.findtext("TransactionType") == "CREDIT"
    assert (refund["is_success"], refund["error_message"]) == ("1", "RETURN ACCEPTED")
    assert re.fullmatch(r"\d{6}", refund["authorization"])  # BOP's recorded unlinked credit
    agreed(sim, **CARD, action="Normal Authorization", amount="20.00", order_number=tid(4))
    linked, _ = agreed(sim, **CARD, action="Credit", amount="5.00", order_number=tid(4))
    assert linked["is_success"] == "1" and linked["order_number"] == tid(4)


def test_reverse_authorization_and_the_test_terminals_refusal(sim):
    agreed(sim, **CARD, action="Authorization Only", amount="30.00", order_number=tid(5))
    released, request = agreed(sim, **CARD, action="Reverse Authorization", amount="30.00", order_number=tid(5))
    assert request.findtext("TransactionType") == "REVERSEAUTH" and released["is_success"] == "1"
    assert sim.control.post("/_sim/config", json={"reverseauth_enabled": False}).status_code == 200
    agreed(sim, **CARD, action="Authorization Only", amount="30.00", order_number=tid(6))
    refused, _ = agreed(sim, **CARD, action="Reverse Authorization", amount="30.00", order_number=tid(6))
    assert refused["is_success"] == "0"
    assert refused["error_message"] == "The transaction type is not a valid transaction type."  # BOP's t/card.t


# -- bank accounts (ECHECK) ----------------------------------------------------------------------

def test_check_accepted(sim):
    read, request = agreed(sim, **BANK, action="Normal Authorization", amount="49.95", order_number=tid(7))
    assert request.findtext("TransactionType") == "CHECK"
    assert request.find("ACH").attrib == {"Type": "CHECKING", "SEC": "PPD"}  # BOP's default SEC code
    assert [c.tag for c in request.find("ACH")] == ["AccountNumber", "ABA", "CheckNumber"]
    assert (read["is_success"], read["authorization"], read["error_message"]) == ("1", "000000", "CHECK ACCEPTED")
    web, request = agreed(sim, **dict(BANK, account_number="11111999", routing_code="071025661",
                                      account_type="Personal Savings", nacha_sec_code="WEB", check_number="15"),
                          action="Normal Authorization", amount="25.00", order_number=tid(8))
    assert request.find("ACH").attrib == {"Type": "SAVINGS", "SEC": "WEB"} and web["is_success"] == "1"


def test_checks_declined_and_refused(sim):
    funds, _ = agreed(sim, **BANK, action="Normal Authorization", amount="10.51", order_number=tid(9))
    assert (funds["result_code"], funds["error_message"]) == ("051", "DECLINED")
    aba, _ = agreed(sim, **dict(BANK, routing_code="111000026"), action="Normal Authorization", amount="10.00",
                    order_number=tid(10))
    assert (aba["result_code"], aba["error_message"]) == ("923", "Invalid ABA number. The check digit does not match.")
    dda, _ = agreed(sim, **dict(BANK, account_number="123"), action="Normal Authorization", amount="10.00",
                    order_number=tid(11))
    assert (dda["result_code"], dda["error_message"]) == ("924", "Invalid account number.")


def test_an_eight_digit_routing_number_never_leaves_the_module(sim):
    read, records = submit(sim, **dict(BANK, routing_code="11100002"), action="Normal Authorization",
                           amount="10.00", order_number=tid(12))
    assert records == [] and read["is_success"] == "0" and read["error_message"] == "Invalid routing code"


def test_check_credit_is_a_reversal_and_void_is_retired(sim):
    agreed(sim, **BANK, action="Normal Authorization", amount="40.00", order_number=tid(13))
    refund, request = agreed(sim, **BANK, action="Credit", amount="15.00", order_number=tid(13))
    assert request.findtext("TransactionType") == "REVERSAL"
    assert (refund["is_success"], refund["error_message"]) == ("1", "CHECK ACCEPTED")
    void, request = agreed(sim, **BANK, action="Void", amount="40.00", order_number=tid(13))
    assert request.findtext("TransactionType") == "VOIDACH" and void["is_success"] == "0"
    assert void["error_message"] == "VOIDACH transactions are no longer supported. Please contact support@ippay.com"


def test_a_check_the_bank_returns_later(sim):
    read, _ = agreed(sim, **BANK, action="Normal Authorization", amount="901.00", order_number=tid(14))
    assert read["is_success"] == "1"  # accepted now ...
    sim.control.post("/_sim/clock", json={"advance_days": 2})
    report = sim.control.get("/_sim/ach/returns.csv").get_data(as_text=True)
    assert f",{tid(14)}," in report and ",R01,Insufficient Funds,90100," in report  # ... returned later


def test_what_the_module_builds_for_a_business_account_and_a_split_name(sim):
    # 0.11 meant CCD for business accounts, but the rule tests the Type *after* the account
    # type map made "Business Checking" CHECKING: the module sends PPD unless nacha_sec_code
    # says otherwise (docs/ach.md compares it with the add-on, which sends CCD itself).
    business = dict(BANK, account_type="Business Checking", name="", first_name="Tofu",
                    last_name="Beast Inc")
    read, request = agreed(sim, **business, action="Normal Authorization", amount="12.00",
                           order_number=tid(13))
    assert request.find("ACH").attrib == {"Type": "CHECKING", "SEC": "PPD"}
    assert request.findtext("CardName") == "Tofu Beast Inc"  # 0.12: first + last name
    assert request.findtext("ACH/CheckNumber") == "100"      # made up when none is given
    assert request.findtext("TotalAmount") == "1200" and request.findtext("UDField3").startswith(
        "Business::OnlinePayment::IPPay")
    assert read["is_success"] == "1"
    ccd, request = agreed(sim, **dict(business, nacha_sec_code="CCD"), action="Normal Authorization",
                          amount="13.00", order_number=tid(14))
    assert request.find("ACH").attrib["SEC"] == "CCD" and ccd["is_success"] == "1"
