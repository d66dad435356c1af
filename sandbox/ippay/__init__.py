"""IPpay gateway simulator: a stand-in for IPpay's test gateway, held to
``ippay-protocol.md`` (§10 is its behaviour contract).

``create_app(config=None)`` builds the Flask app; ``python -m sandbox.ippay
--port N`` serves it. The gateway listens at ``/ippay``; the JSON control plane
(ledger, request log, switches, faults) at ``/_sim/``.
"""

from .app import create_app

__all__ = ["create_app"]
