"""Client of the IPpay XML card and bank-account gateway (see docs/interfaces.md, "IPpay client").

No Flask here: stdlib, requests and defusedxml only (design §2). A decline is
a :class:`GatewayResult`; a transport or protocol failure is a
:class:`GatewayError` (design §9). Where to read:

* :mod:`.interface` - :class:`Gateway`, every operation the add-on uses and the contract;
* :mod:`.client` - :class:`IPpayClient`, the operations, one screen;
* :mod:`.fields` - each request's fields and the local checks (ippay §9.5);
* :mod:`.transport` - the HTTP POST, the url guard, not sent versus unknown outcome;
* :mod:`.xml` - request documents and reply parsing; :mod:`.scrub` - masking transcripts;
* :mod:`.values` - :class:`Card`, :class:`BankAccount`, :class:`GatewayResult`;
* :mod:`.codes` - the ActionCode table with the hard/soft decline policy;
* :mod:`.ach` - routing-number checksum, account numbers, SEC codes, ACH return codes;
* :mod:`.errors` - the exceptions.
"""

from .client import IPpayClient
from .errors import (
    GatewayAddressRefused, GatewayError, GatewayNotSentError, GatewayRequestError, GatewayUnknownOutcomeError,
)
from .interface import Gateway
from .scrub import scrub
from .transport import may_resend
from .values import BankAccount, Card, GatewayResult, new_transaction_id

__all__ = [
    "IPpayClient",
    "Gateway",
    "GatewayResult",
    "Card",
    "BankAccount",
    "GatewayError",
    "GatewayNotSentError",
    "GatewayUnknownOutcomeError",
    "GatewayRequestError",
    "GatewayAddressRefused",
    "new_transaction_id",
    "may_resend",
    "scrub",
]
