"""``python -m sandbox.ippay --port N [--host H]``: serve the simulator in the foreground.

Switches may be preset with ``IPPAY_SIM_*`` environment variables, e.g.
``IPPAY_SIM_DUPLICATE_ID=replay`` or ``IPPAY_SIM_LATENCY_MS=200``.
"""

from sandbox.ippay import create_app
from sandbox.serve import run_foreground

DEFAULT_PORT = 8089


def main():
    """Serve the simulator on --host/--port until interrupted."""
    run_foreground(create_app(), "IPpay gateway simulator", DEFAULT_PORT)


if __name__ == "__main__":
    main()
