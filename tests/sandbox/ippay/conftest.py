"""One simulator for the whole package, reset through the control plane before each test."""

import pytest
import requests

from sandbox.ippay import create_app
from sandbox.serve import BackgroundServer


@pytest.fixture(scope="package")
def shared_sim():
    with BackgroundServer(create_app()) as server:
        yield server


@pytest.fixture
def ippay_sim(shared_sim):
    """Overrides tests/conftest.py's ``ippay_sim``: one server for the package, reset before
    each test (switches, ledger, faults, clock), so ~200 tests do not start ~200 servers."""
    requests.post(shared_sim.url + "/_sim/reset", timeout=5).raise_for_status()
    return shared_sim
