"""The emulator's control plane (not part of Splynx): faults, delays, the request log, reset,
generated invoices for benchmarks."""

import time

import requests

from sandbox.serve import BackgroundServer
from tests.sandbox.splynx.emulator_helpers import api, assert_error, deposit, payment_body, state


# --------------------------------------------------------- control plane
def test_fault_status_count_and_method(splynx_emu):
    r = requests.post(f"{splynx_emu.url}/_sandbox/faults", json={
        "status": 500, "path_regex": "finance/payments", "method": "POST", "count": 1}, timeout=5)
    assert r.status_code == 201
    assert api(splynx_emu, "GET", "admin/finance/payments").status_code == 200  # method does not match
    body = payment_body(customer_id=1, amount="1", payment_type="1", receipt_number="x")
    assert_error(api(splynx_emu, "POST", "admin/finance/payments", json=body), 500, "SERVER_ERROR")
    assert len(state(splynx_emu)["payments"]) == 5  # not processed
    assert api(splynx_emu, "POST", "admin/finance/payments", json=body).status_code == 201
    for status, code in [(401, "UNAUTHORIZED"), (403, "FORBIDDEN")]:
        requests.post(f"{splynx_emu.url}/_sandbox/faults",
                      json={"status": status, "path_regex": "api/check"}, timeout=5)
        assert_error(api(splynx_emu, "GET", "admin/api/check"), status, code)
        requests.delete(f"{splynx_emu.url}/_sandbox/faults", timeout=5)
    requests.post(f"{splynx_emu.url}/_sandbox/faults", json={
        "status": 401, "internal_code": "EXPIRED_ACCESS_TOKEN", "path_regex": "api/check", "count": 1}, timeout=5)
    assert_error(api(splynx_emu, "GET", "admin/api/check"), 401, "EXPIRED_ACCESS_TOKEN")
    assert api(splynx_emu, "GET", "admin/api/check").status_code == 200
    assert requests.post(f"{splynx_emu.url}/_sandbox/faults", json={"path_regex": "x"}, timeout=5).status_code == 400


def test_fault_delay_and_rate(splynx_emu):
    requests.post(f"{splynx_emu.url}/_sandbox/faults",
                  json={"delay_s": 0.4, "path_regex": "api/check", "count": 1}, timeout=5)
    started = time.monotonic()
    assert api(splynx_emu, "GET", "admin/api/check").status_code == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    api(splynx_emu, "GET", "admin/api/check")
    assert time.monotonic() - started < 0.4

    requests.post(f"{splynx_emu.url}/_sandbox/faults",
                  json={"rate": 0.5, "status": 500, "seed": 7, "path_regex": "^/portal/login"}, timeout=5)
    codes = [requests.get(f"{splynx_emu.url}/portal/login", timeout=5).status_code for _ in range(40)]
    assert 5 < codes.count(500) < 35 and codes.count(200) == 40 - codes.count(500)


def test_request_log_and_reset(splynx_emu):
    body = payment_body(customer_id=1, amount="1", receipt_number="x",
                        comment="card 4111111111111111")
    api(splynx_emu, "POST", "admin/finance/payments?trace=1", json=body)
    log = requests.get(f"{splynx_emu.url}/_sandbox/requests", timeout=5).json()
    entry = next(e for e in log if e["path"] == "/api/2.0/admin/finance/payments")
    assert entry["method"] == "POST" and entry["query"] == "trace=1" and entry["status"] == 201
    assert "4111111111111111" in entry["body"] and entry["headers"]["Authorization"].startswith("Splynx-EA")
    filtered = requests.get(f"{splynx_emu.url}/_sandbox/requests", params={"path_regex": "payments"}, timeout=5).json()
    assert len(filtered) == 1
    assert len(state(splynx_emu)["payments"]) == 6
    assert requests.post(f"{splynx_emu.url}/_sandbox/reset", timeout=5).status_code == 200
    snapshot = state(splynx_emu)
    assert len(snapshot["payments"]) == 5 and snapshot["customers"][0]["deposit"] == "-274.6500"
    assert requests.get(f"{splynx_emu.url}/_sandbox/requests", timeout=5).json() == []


def test_extra_invoices_for_benchmarks():
    from sandbox.splynx import create_app

    started = time.monotonic()
    app = create_app({"extra_invoices": 20000})
    assert time.monotonic() - started < 5
    with BackgroundServer(app) as emu:
        r = api(emu, "HEAD", "admin/finance/invoices?main_attributes[status]=not_paid")
        assert int(r.headers["X-total-count"]) == 9 + 20000
        customers = int(api(emu, "HEAD", "admin/customers/customer").headers["X-total-count"])
        assert customers == 3 + 2000
        mine = api(emu, "GET", "admin/finance/invoices?main_attributes[customer_id]=4").json()
        assert len(mine) == 10 and all(i["customer_id"] == "4" for i in mine)
        assert deposit(emu, 4) == "-" + f"{sum(i['total'] for i in mine):.4f}"
