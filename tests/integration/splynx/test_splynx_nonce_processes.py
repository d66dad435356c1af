"""Nonces across processes (issue 9 item 3): processes of one API key started at one
instant all authenticate against the emulator's strict nonce rule ("greater than the last
one used") when they share a nonce directory; short CLI-like runs in loops too; and a
request refused for its nonce is signed again."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sandbox.serve import BackgroundServer
from sandbox.splynx import create_app
from splynx_ippay.splynx import SplynxClient
from splynx_ippay.splynx.auth import NonceSource, compute_signature
from tests.integration.splynx.splynx_helpers import SECRET, api_log, sandbox_call

ROOT = Path(__file__).resolve().parents[3]

WORKER = r"""
import os, sys, time
from splynx_ippay.splynx import SplynxClient
url, nonce_dir, ready, go, auth, calls = sys.argv[1:7]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.0005)
client = SplynxClient(url, "sandbox-key", "sandbox-secret", auth=auth, nonce_dir=nonce_dir or None)
for _ in range(int(calls)):
    client.check_api()
print("authenticated")
"""


@pytest.fixture
def strict_nonces():
    with BackgroundServer(create_app({"nonce_mode": "increasing"})) as emu:
        yield emu


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT))


def _start_at_one_instant(emu, tmp_path, count, auth, calls, nonce_dir):
    """``count`` processes that wait on a file, then all go at once; their results."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    go = barrier / "go"
    procs = [subprocess.Popen(
        [sys.executable, "-c", WORKER, emu.url, nonce_dir, str(barrier / f"ready-{n}"), str(go),
         auth, str(calls)], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in range(count)]
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready-*"))) < count:
        assert time.monotonic() < deadline, "the processes did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    go.touch()
    return [(p.wait(timeout=60), *p.communicate()) for p in procs]


def _nonces_in_arrival_order(emu, path_regex):
    entries = sorted(api_log(emu, path_regex), key=lambda e: e["seq"])
    nonces = []
    for entry in entries:
        if entry["json"] and "nonce" in entry["json"]:
            nonces.append((int(entry["json"]["nonce"]), entry["status"]))
        elif "nonce=" in entry["headers"].get("Authorization", ""):
            text = entry["headers"]["Authorization"].split("nonce=")[1].split("&")[0]
            nonces.append((int(text), entry["status"]))
    return nonces


@pytest.mark.parametrize("auth, calls, path, ok", [
    ("token", 1, "/auth/tokens", 201),       # one signed token request each
    ("signature", 3, "admin/api/check", 200),  # every request signed
])
def test_ten_processes_at_one_instant_all_authenticate(strict_nonces, tmp_path, auth, calls,
                                                       path, ok):
    (tmp_path / "run").mkdir()
    results = _start_at_one_instant(strict_nonces, tmp_path, 10, auth, calls,
                                    str(tmp_path / "run"))
    assert [r[0] for r in results] == [0] * 10, [r[2] for r in results]
    sent = _nonces_in_arrival_order(strict_nonces, path)
    assert [status for _, status in sent] == [ok] * 10 * calls  # none refused, none retried
    assert [n for n, _ in sent] == sorted(n for n, _ in sent)
    assert len({n for n, _ in sent}) == 10 * calls


CLI_RUN = r"""
import sys
from splynx_ippay.splynx import SplynxClient
SplynxClient(sys.argv[1], "sandbox-key", "sandbox-secret", nonce_dir=sys.argv[2]).check_api()
"""


def test_cli_like_runs_in_loops_beside_each_other(strict_nonces, tmp_path):
    nonce_dir = str(tmp_path)
    failures = []

    def loop():
        for _ in range(5):
            done = subprocess.run([sys.executable, "-c", CLI_RUN, strict_nonces.url, nonce_dir],
                                  env=_env(), capture_output=True, text=True, timeout=60)
            if done.returncode:
                failures.append(done.stderr[-500:])

    loops = [threading.Thread(target=loop) for _ in range(3)]
    for thread in loops:
        thread.start()
    for thread in loops:
        thread.join()
    assert failures == []
    sent = _nonces_in_arrival_order(strict_nonces, "/auth/tokens")
    assert len(sent) == 15 and {status for _, status in sent} == {201}


def test_a_token_request_refused_for_its_nonce_is_retried(strict_nonces, monkeypatch):
    """Another process without the shared directory took a later nonce a moment ago."""
    now = time.time()
    # This process's counter for the key, on a clock that stands still: its nonces are
    # known in advance.
    monkeypatch.setitem(NonceSource._by_key, "lonely-key", NonceSource(clock=lambda: now))
    sandbox_call(strict_nonces, "/_sandbox/api-keys", {"key": "lonely-key", "secret": SECRET})
    ahead = round(now * 100) + 1
    sandbox_call(strict_nonces, "/api/2.0/admin/auth/tokens", {
        "auth_type": "api_key", "key": "lonely-key", "nonce": ahead,
        "signature": compute_signature("lonely-key", SECRET, ahead)})
    client = SplynxClient(strict_nonces.url, "lonely-key", SECRET)
    assert client.check_api()["status"] == "ok"
    assert _nonces_in_arrival_order(strict_nonces, "/auth/tokens") == [
        (ahead, 201), (ahead - 1, 401), (ahead, 401), (ahead + 1, 201)]
