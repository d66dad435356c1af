"""Client of the IPpay XML card gateway (see docs/interfaces.md, "IPpay client").

No Flask here: stdlib, requests and defusedxml only (design §2). A decline is
a :class:`GatewayResult`; a transport or protocol failure is a
:class:`GatewayError` (design §9).
"""

from .client import IPpayClient
from .errors import GatewayError, GatewayNotSentError, GatewayRequestError, GatewayUnknownOutcomeError
from .model import BankAccount, Card, GatewayResult, new_transaction_id
from .scrub import scrub

__all__ = [
    "IPpayClient",
    "GatewayResult",
    "Card",
    "BankAccount",
    "GatewayError",
    "GatewayNotSentError",
    "GatewayUnknownOutcomeError",
    "GatewayRequestError",
    "new_transaction_id",
    "scrub",
]
