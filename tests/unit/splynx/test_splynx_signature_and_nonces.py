"""Splynx signatures and nonces without a server: the HMAC, the header, the in-process
nonce counter and the host-wide nonce file (splynx-platform §1.3a; issue 9 item 3)."""

import hmac
import logging
import os
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qsl

import pytest

from splynx_ippay.splynx import SplynxUnavailableError, auth
from splynx_ippay.splynx.auth import (FileNonceSource, NonceSource, SignatureAuth,
                                      compute_signature, is_nonce_refusal, nonce_source,
                                      signature_header)

KEY, SECRET = "sandbox-key", "sandbox-secret"


# --------------------------------------------------------------------------
# signature (splynx §1.3a)

def test_signature_matches_an_openssl_computed_value():
    # printf '%s' "1700000000sandbox-key" | openssl dgst -sha256 -hmac "sandbox-secret"
    assert compute_signature(KEY, SECRET, 1700000000) == (
        "BD298AF09EC182FF687C9D427BE021B43F9EE705D994C2C191742E87924ADDF1")


def test_signature_is_upper_hex_hmac_of_nonce_then_key():
    expected = hmac.digest(b"s3cr\xc3\xa9t", b"42" + b"k\xc3\xa9y", "sha256").hex().upper()
    assert compute_signature("kéy", "s3crét", 42) == expected


def test_signature_header_is_query_encoded():
    header = signature_header("a key&x", SECRET, 17)
    assert header.startswith("Splynx-EA (") and header.endswith(")")
    inner = header[len("Splynx-EA ("):-1]
    assert "a+key%26x" in inner
    assert parse_qsl(inner) == [("key", "a key&x"), ("nonce", "17"),
                                ("signature", compute_signature("a key&x", SECRET, 17))]


def test_nonces_start_at_centiseconds_and_increase_by_one():
    source = NonceSource(clock=lambda: 1700000000.004)
    assert [source.next() for _ in range(3)] == [170000000000, 170000000001, 170000000002]


def test_nonces_catch_up_with_the_clock():
    now = [1000.0]
    source = NonceSource(clock=lambda: now[0])
    assert source.next() == 100000
    now[0] = 2000.0
    assert source.next() == 200000


def test_nonces_are_unique_across_threads_and_shared_per_key():
    source = NonceSource(clock=lambda: 5.0)
    seen = []

    def take():
        seen.extend(source.next() for _ in range(200))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(500, 500 + 1600))
    assert NonceSource.for_key("k1") is NonceSource.for_key("k1")
    assert NonceSource.for_key("k1") is not NonceSource.for_key("k2")



# --------------------------------------------------------------------------
# nonces shared by every process on the host (splynx/auth.py FileNonceSource)

def test_file_nonces_increase_across_sources_sharing_the_file(tmp_path):
    first = FileNonceSource(KEY, str(tmp_path), clock=lambda: 1700000000.0)
    second = FileNonceSource(KEY, str(tmp_path), clock=lambda: 1700000000.0)  # "another process"
    taken = [first.next(), second.next(), first.next(), second.next()]
    assert taken == [170000000000, 170000000001, 170000000002, 170000000003]
    assert first.path == second.path and open(first.path).read() == "170000000003\n"
    later = FileNonceSource(KEY, str(tmp_path), clock=lambda: 1700000100.0)
    assert later.next() == 170000010000  # never behind the clock
    other_key = FileNonceSource("another-key", str(tmp_path), clock=lambda: 1.0)
    assert other_key.path != first.path and other_key.next() == 100


def test_file_nonce_lock_is_held_until_the_block_ends(tmp_path):
    holder = FileNonceSource(KEY, str(tmp_path))
    waiter = FileNonceSource(KEY, str(tmp_path))
    order = []
    with holder.hold() as held:
        thread = threading.Thread(target=lambda: order.append(("waiter", waiter.next())))
        thread.start()
        time.sleep(0.2)
        order.append(("holder done", held))
    thread.join(5)
    assert [o[0] for o in order] == ["holder done", "waiter"]
    assert order[1][1] > order[0][1]


def test_file_nonce_lock_gives_up_after_its_timeout(tmp_path):
    holder = FileNonceSource(KEY, str(tmp_path))
    impatient = FileNonceSource(KEY, str(tmp_path), lock_timeout=0.1)
    with holder.hold():
        with pytest.raises(SplynxUnavailableError, match="nonce lock"):
            impatient.next()


_TAKER = """
import sys
from splynx_ippay.splynx.auth import FileNonceSource
source = FileNonceSource("sandbox-key", sys.argv[1])
print(" ".join(str(source.next()) for _ in range(50)))
"""


def test_file_nonces_are_unique_and_increasing_across_processes(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    procs = [subprocess.Popen([sys.executable, "-c", _TAKER, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(6)]
    runs = [[int(n) for n in p.communicate(timeout=60)[0].split()] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert all(run == sorted(run) and len(run) == 50 for run in runs)
    every = [n for run in runs for n in run]
    assert len(set(every)) == 300


def test_nonce_source_is_host_wide_only_with_a_usable_directory(tmp_path, caplog):
    assert nonce_source(KEY) is NonceSource.for_key(KEY)
    shared = nonce_source(KEY, str(tmp_path))
    assert isinstance(shared, FileNonceSource) and nonce_source(KEY, str(tmp_path)) is shared
    missing = str(tmp_path / "no" / "such" / "dir")
    with caplog.at_level(logging.WARNING, logger="splynx_ippay.splynx.auth"):
        assert nonce_source(KEY, missing) is NonceSource.for_key(KEY)
        assert nonce_source(KEY, missing) is NonceSource.for_key(KEY)
    warnings = [r for r in caplog.records if "cannot keep Splynx nonces" in r.getMessage()]
    assert len(warnings) == 1 and missing in warnings[0].getMessage()


def test_the_nonce_file_is_not_world_readable(tmp_path):
    source = FileNonceSource(KEY, str(tmp_path))
    source.next()
    assert os.stat(source.path).st_mode & 0o007 == 0


@pytest.mark.parametrize("status, body, refused", [
    (401, {"error": {"message": "Nonce must be greater than the last one used"}}, True),
    (401, {"error": {"message": "Nonce was already used"}}, True),
    (401, {"error": {"message": "Invalid signature"}}, False),
    (403, {"error": {"message": "nonce"}}, False),
    (401, None, False),
    (401, {"error": "nonce"}, False),
])
def test_a_nonce_refusal_is_told_from_other_refusals(status, body, refused):
    assert is_nonce_refusal(status, body) is refused


def _nonce_of(authorization):
    return int(dict(parse_qsl(authorization[len("Splynx-EA ("):-1]))["nonce"])


def test_a_request_refused_for_its_nonce_is_signed_again(monkeypatch):
    monkeypatch.setattr(auth.time, "sleep", lambda s: None)
    refusal = (401, {}, {"error": {"message": "Nonce must be greater than the last one used"}})
    answers = [refusal, refusal, (200, {}, {"ok": True})]
    sent = []

    def send(method, path, *, authorization=None, **kwargs):
        sent.append(_nonce_of(authorization))
        return answers.pop(0)

    signer = SignatureAuth(KEY, SECRET, nonces=NonceSource(clock=lambda: 10.0))
    assert signer.send(send, "GET", "admin/api/check") == (200, {}, {"ok": True})
    assert sent == [1000, 1001, 1002]


def test_nonce_retries_are_bounded(monkeypatch):
    monkeypatch.setattr(auth.time, "sleep", lambda s: None)
    refusal = (401, {}, {"error": {"message": "Nonce must be greater than the last one used"}})
    calls = []

    def send(method, path, **kwargs):
        calls.append(path)
        return refusal

    signer = SignatureAuth(KEY, SECRET, nonces=NonceSource(clock=lambda: 10.0))
    assert signer.send(send, "POST", "admin/finance/payments") == refusal
    assert len(calls) == auth.NONCE_RETRIES + 1
