"""The scale-out suite's fixtures: the guard against reaching the network (tests/conftest.py)
widened to the private LAN its hosts live on (sandbox/netns.py), and a skip, saying why, on
a machine that cannot make network namespaces."""

import ipaddress
import socket

import pytest

from sandbox import netns

# Taken when the suite is collected, before any test patches it.
_real_connect = socket.socket.connect


def _on_the_lan(address):
    try:
        return ipaddress.ip_address(address[0]) in netns.SUPERNET
    except (TypeError, ValueError, IndexError):
        return False


@pytest.fixture(autouse=True)
def no_internet(no_internet, monkeypatch):
    """The suites' guard, but the hosts of the test's own LAN (10.213.0.0/16) may be reached."""
    guarded = socket.socket.connect

    def connect(sock, address):
        if sock.family == socket.AF_INET and _on_the_lan(address):
            return _real_connect(sock, address)
        return guarded(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="session")
def can_make_hosts():
    """Skip when this machine cannot make the hosts (not root, no ``ip``, no namespaces)."""
    why = netns.unavailable()
    if why:
        pytest.skip(f"the scale-out test makes hosts in network namespaces: {why}")
