"""The simulator over https (``--tls-cert/--tls-key``), as the scale-out test runs it on a
host of its own (the add-on sends plain http only to loopback)."""

import socket
import subprocess
import sys
from pathlib import Path

import requests

from sandbox.netns import tls_certificate
from sandbox.stack import free_port, wait_for

ROOT = Path(__file__).resolve().parents[3]


def test_a_client_silent_in_its_handshake_does_not_stop_the_others(tmp_path):
    cert, key = tls_certificate(tmp_path, "127.0.0.1")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "sandbox.ippay", "--port", str(port),
                               "--tls-cert", str(cert), "--tls-key", str(key), "--quiet"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"https://127.0.0.1:{port}"
        wait_for(f"{url}/_sim/health", process=server, verify=str(cert))
        # A client that connects and then says nothing (a host lost mid-handshake).
        with socket.create_connection(("127.0.0.1", port)):
            session = requests.Session()
            session.trust_env = False
            answer = session.get(f"{url}/_sim/health", verify=str(cert), timeout=5)
            assert answer.status_code == 200 and answer.json()["status"] == "ok"
            assert session.get(f"{url}/ippay?dummy=1", verify=str(cert), timeout=5).ok
    finally:
        server.terminate()
        server.wait(timeout=10)
