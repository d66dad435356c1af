"""The Gateway protocol (splynx_ippay.ippay.interface) and the client that implements it."""

import inspect

import pytest

from splynx_ippay.ippay import Gateway, IPpayClient
from splynx_ippay.ippay import interface

OPERATIONS = ["tokenize", "update_token_expiry", "tokenize_bank_account", "sale", "authorize", "capture",
              "reverse_authorization", "release_authorization", "enquire", "credit", "void", "ping", "check",
              "ach_reversal"]


def protocol_members():
    return sorted(name for name, value in vars(Gateway).items()
                  if not name.startswith("_") and inspect.isfunction(value))


def test_the_protocol_lists_every_operation_the_add_on_uses():
    assert protocol_members() == sorted(OPERATIONS)
    assert {"terminal_id", "url"} <= set(Gateway.__annotations__)


def test_the_client_implements_it_explicitly_and_at_runtime():
    client = IPpayClient("https://testgtwy.ippay.com/ippay", "TESTTERMINAL")
    assert Gateway in IPpayClient.__mro__  # explicit (issubclass() refuses protocols with data members)
    assert isinstance(client, Gateway)
    assert client.terminal_id == "TESTTERMINAL" and client.url == "https://testgtwy.ippay.com/ippay"
    client.close()


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_operation_is_the_clients_own_with_the_protocols_signature(name):
    # Subclassing a Protocol would silently inherit its "..." body: each one must be overridden.
    assert name in vars(IPpayClient), f"IPpayClient.{name} is missing"
    ours = inspect.signature(getattr(IPpayClient, name))
    theirs = inspect.signature(getattr(Gateway, name))
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in theirs.parameters.values()]


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_operation_is_documented(name):
    assert inspect.getdoc(getattr(Gateway, name)) and inspect.getdoc(getattr(IPpayClient, name))


def test_something_that_is_not_a_gateway_is_told_apart():
    class HalfGateway:
        terminal_id = "T"
        url = "https://x/ippay"

        def sale(self, *args, **kwargs):
            pass

    assert not isinstance(HalfGateway(), Gateway)
    assert interface.__doc__ and "GatewayResult" in interface.__doc__
