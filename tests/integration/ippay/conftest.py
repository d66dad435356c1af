"""The ``sim`` fixture: tests/conftest.py's ``ippay_sim`` with a client factory and control-plane helpers."""

import pytest
import requests

from splynx_ippay.ippay import IPpayClient
from tests.integration.ippay.helpers import future_card


@pytest.fixture
def sim(ippay_sim):
    """A fresh simulator; ``.gateway`` its endpoint, ``.client(**kw)`` a client of TESTTERMINAL,
    ``.control(path, payload=None)`` a control-plane call (GET, or POST with a JSON body),
    ``.token()`` the token of a freshly tokenised test card."""
    server = ippay_sim
    server.gateway = server.url + "/ippay"
    server.client = lambda **kw: IPpayClient(server.gateway, "TESTTERMINAL", **kw)

    def control(path, payload=None):
        if payload is None:
            response = requests.get(server.url + path, timeout=5)
        else:
            response = requests.post(server.url + path, json=payload, timeout=5)
        assert response.status_code == 200, response.text
        return response.json() if "json" in response.headers.get("Content-Type", "") else response.text

    server.control = control

    def token():
        saved = IPpayClient(server.gateway, "TESTTERMINAL").tokenize(future_card())
        assert saved.approved
        return saved.token

    server.token = token
    return server
