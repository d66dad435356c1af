"""The emulator's switches (README "Switches"): the latency of every API call (issue 13),
set by the control plane, by create_app and on the command line; the request log's decoded
bodies for outside checkers; what the settings call accepts."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sandbox.serve import BackgroundServer
from sandbox.splynx.__main__ import parse_switches
from tests.sandbox.splynx.emulator_helpers import api, payment_body

ROOT = Path(__file__).resolve().parents[3]


def _timed(emu, path="admin/api/check"):
    started = time.monotonic()
    assert api(emu, "GET", path).status_code == 200
    return time.monotonic() - started


def test_latency_per_api_call(splynx_emu):
    assert _timed(splynx_emu) < 0.08
    r = requests.post(f"{splynx_emu.url}/_sandbox/settings", json={"latency_ms": 80}, timeout=5)
    assert r.status_code == 200 and r.json()["latency_ms"] == 80
    assert 0.08 <= _timed(splynx_emu) < 1
    # pages and the control plane answer at once
    started = time.monotonic()
    requests.get(f"{splynx_emu.url}/portal/login", timeout=5)
    requests.get(f"{splynx_emu.url}/_sandbox/settings", timeout=5)
    assert time.monotonic() - started < 0.08
    requests.post(f"{splynx_emu.url}/_sandbox/settings", json={"latency_ms": 0}, timeout=5)
    assert _timed(splynx_emu) < 0.08


def test_latency_does_not_serialise_parallel_calls():
    import threading

    from sandbox.splynx import create_app

    # Signed calls in parallel arrive in any order: "unique" nonces, not "increasing".
    with BackgroundServer(create_app({"latency_ms": 200, "nonce_mode": "unique"})) as emu:
        took = []
        threads = [threading.Thread(target=lambda: took.append(_timed(emu))) for _ in range(5)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(took) == 5 and min(took) >= 0.2
        assert time.monotonic() - started < 0.9


def test_command_line_switches():
    config, rest = parse_switches(["--port", "9", "--latency-ms", "80", "--lenient",
                                   "--undocumented", "allow", "--refund-category"])
    assert config == {"latency_ms": 80.0, "strict": False, "undocumented_methods": "allow",
                      "refund_category": True}
    assert rest == ["--port", "9"]
    assert parse_switches(["--extra-invoices", "50", "--extra-customers", "5"])[0] == {
        "extra_invoices": 50, "extra_customers": 5}
    assert parse_switches(["--host", "127.0.0.1"]) == ({}, ["--host", "127.0.0.1"])
    with pytest.raises(SystemExit):
        parse_switches(["--latency-ms", "-1"])


def test_the_server_takes_the_latency_on_its_command_line():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "sandbox.splynx", "--port", str(port),
                               "--latency-ms", "80"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                settings = requests.get(f"{url}/_sandbox/settings", timeout=2).json()
                break
            except requests.RequestException:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        assert settings["latency_ms"] == 80 and settings["strict"] in (True, False)
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize("body", [{"latency_ms": -5}, {"latency_ms": True}, {"strict": "yes"},
                                  {"undocumented_methods": "maybe"}, {"refund_category": True},
                                  {"colour": "blue"}])
def test_settings_refuse_what_they_do_not_know(splynx_emu, body):
    r = requests.post(f"{splynx_emu.url}/_sandbox/settings", json=body, timeout=5)
    assert r.status_code == 400


def test_the_request_log_decodes_json_bodies_and_pages_by_seq(splynx_emu):
    api(splynx_emu, "GET", "admin/api/check")
    body = payment_body(customer_id=1, amount="1.00", receipt_number="LOG-1")
    api(splynx_emu, "POST", "admin/finance/payments", json=body)
    log = requests.get(f"{splynx_emu.url}/_sandbox/requests", timeout=5).json()
    posted = next(e for e in log if e["method"] == "POST")
    assert posted["json"] == body and posted["status"] == 201
    assert next(e for e in log if e["method"] == "GET")["json"] is None
    later = requests.get(f"{splynx_emu.url}/_sandbox/requests",
                         params={"since": posted["seq"] - 1}, timeout=5).json()
    assert [e["seq"] for e in later] == [posted["seq"]]
    assert requests.get(f"{splynx_emu.url}/_sandbox/requests", params={"since": "x"},
                        timeout=5).status_code == 400
