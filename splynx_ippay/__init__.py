"""splynx-ippay: pay Splynx invoices and top up balances by card through IPpay."""

__version__ = "0.2.0"


def create_app(config=None, context=None):
    """Build the add-on's Flask application.

    ``config`` is a mapping of settings (``SPLYNX_URL``, ``DATABASE_URL`` …) for tests and
    tools; without it the settings come from ``/etc/splynx-ippay/config.ini`` and the
    environment (see :mod:`splynx_ippay.config`). ``context`` is a ready
    :class:`~splynx_ippay.context.Context` to use instead of building one from ``config``
    (tests that share one between the app and the worker).
    """
    from .app import build_app

    return build_app(config, context)
