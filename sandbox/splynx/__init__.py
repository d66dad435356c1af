"""Splynx emulator: API v2 plus the portal and admin pages that host add-ons
(splynx-platform.md §7). ``create_app(config)`` builds a fresh, seeded server.

``config`` keys (all optional): ``extra_invoices`` / ``extra_customers``
(generated unpaid invoices for benchmarks), ``strict`` (request bodies held to the
API blueprint; default on, ``SPLYNX_SANDBOX_STRICT=0`` turns it off for a run),
``undocumented_methods`` (``refuse`` | ``allow``), ``refund_category`` (seed Splynx's
"Refund" category), ``latency_ms``, ``nonce_mode``, ``access_token_ttl``,
``refresh_token_extra``, ``bind_tokens``, ``request_log_limit``, ``apt_commands`` (the
Add-ons page's apt command lines, see :mod:`.addons`). README.md lists every switch.
"""

from flask import Flask, request

from . import addons, api, control, pages
from .errors import error_response
from .store import Store


def create_app(config=None):
    """A Flask app serving one emulated Splynx with its own in-memory state."""
    app = Flask(__name__, static_url_path="/sandbox-static")
    app.json.sort_keys = False  # keep Splynx's attribute order
    store = Store(config)
    app.extensions["splynx_store"] = store
    app.extensions["splynx_faults"] = control.FaultBoard()
    app.extensions["splynx_requests"] = control.RequestLog(store.settings["request_log_limit"])
    app.before_request(control.before_request)
    app.after_request(control.after_request)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(addons.bp)
    app.config["APT_COMMANDS"] = (config or {}).get("apt_commands")
    app.register_blueprint(control.bp)

    # Routing errors under /api/ must still use the API error body (splynx §1.2).
    @app.errorhandler(404)
    def _not_found(exc):
        if request.path.startswith("/api/"):
            return error_response(404, "NOT_FOUND", "Not found")
        return exc

    @app.errorhandler(405)
    def _not_allowed(exc):
        if request.path.startswith("/api/"):
            return error_response(405, "METHOD_NOT_ALLOWED", "Method not allowed")
        return exc

    return app
