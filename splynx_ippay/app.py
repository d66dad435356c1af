"""The application factory's parts: settings, the context, extensions, blueprints, error
pages and the headers every page carries."""

import logging
import os
from dataclasses import dataclass, field

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter, ValidationError

from . import __version__
from .cache import TTLCache
from .config import load_config, validate
from .extensions import csrf
from .i18n import _, init_app as init_i18n
from .identity import Identities
from .money import format_cents
from .pages import BlankParts, error_page

log = logging.getLogger(__name__)

#: Where templates and static files are: beside the package in a source checkout, under
#: /usr/share when installed by the Debian package.
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SHARE_ROOT = "/usr/share/splynx-ippay"
#: Read-only answers kept for pages that are only looked at (widget, balance), seconds.
READ_TTL = 15.0


@dataclass
class WebState:
    """What the web layer of one process keeps between requests."""

    #: Who owns which Splynx session (identity.py).
    identities: Identities = field(default_factory=Identities)
    #: Read-only answers, keyed with the customer's payment activity (portal/views.py).
    reads: TTLCache = field(default_factory=lambda: TTLCache(READ_TTL, max_entries=5000))
    #: The Splynx client used for session exchanges (its own short timeout).
    session_checker: object = None


class IdConverter(BaseConverter):
    """``<id:name>``: a positive database id; anything else (``0``, ``-1``, twenty digits)
    is simply not found (404), never a database error."""

    regex = r"[1-9][0-9]{0,9}"

    def to_python(self, value):
        number = int(value)
        if number >= 2**31:
            raise ValidationError()
        return number

    def to_url(self, value):
        return str(int(value))


class SessionInterface(SecureCookieSessionInterface):
    """The add-on's own cookie (flash messages, form tokens) is ``Secure`` whenever the
    request came over https (nginx says so in ``X-Forwarded-Proto``)."""

    def get_cookie_secure(self, app):
        return request.is_secure

    #: (the keys, the serializer made with them).
    _serializer = (None, None)

    def get_signing_serializer(self, app):
        # Made once per key rather than for every request: making one costs as much as the
        # rest of opening the session (itsdangerous tries its serializer on an empty dict).
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        if self._serializer[0] != keys:
            self._serializer = (keys, super().get_signing_serializer(app))
        return self._serializer[1]


def _asset_root():
    if os.path.isdir(os.path.join(_SOURCE_ROOT, "templates")):
        return _SOURCE_ROOT
    return _SHARE_ROOT


def build_app(config=None, context=None):
    """See :func:`splynx_ippay.create_app`."""
    from .context import build_context, session_checker

    settings = load_config() if config is None else validate(config)
    root = settings.get("ASSET_ROOT") or _asset_root()
    app = Flask("splynx_ippay", template_folder=os.path.join(root, "templates"),
                static_folder=os.path.join(root, "static"), static_url_path="/ippay/static")
    app.config.update(settings)
    ctx = context or build_context(settings)
    app.config.update(
        SECRET_KEY=ctx.secret,
        SESSION_COOKIE_NAME="ippay_session",
        SESSION_COOKIE_PATH="/ippay",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.session_interface = SessionInterface()
    app.url_map.converters["id"] = IdConverter
    # nginx is the one proxy in front: trust its X-Forwarded-For and -Proto, one hop.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
    logging.getLogger("splynx_ippay").setLevel(app.config["WEB_LOG_LEVEL"])

    app.extensions["splynx_ippay"] = ctx
    app.extensions["splynx_ippay_web"] = WebState(session_checker=session_checker(settings))
    csrf.init_app(app)
    _register_blueprints(app)
    _register_error_pages(app)
    _register_headers(app)
    _register_template_helpers(app)
    return app


def _register_blueprints(app):
    from .admin import bp as admin_bp
    from .portal import bp as portal_bp

    app.register_blueprint(portal_bp)
    app.register_blueprint(admin_bp)


def _register_error_pages(app):
    @app.errorhandler(CSRFError)
    def csrf_error(_error):
        return error_page(400, _("The form has expired"),
                          _("For your security the form could not be sent. "
                            "Please go back, reload the page and try again."))

    @app.errorhandler(404)
    def not_found(_error):
        return error_page(404, _("Not found"),
                          _("The page or document you asked for was not found."))

    @app.errorhandler(405)
    def method_not_allowed(_error):
        return error_page(405, _("Not allowed"), _("This page cannot be used that way."))

    @app.errorhandler(429)
    def too_many(_error):
        return error_page(429, _("Too many requests"),
                          _("Too many requests came from your address. Please wait a minute "
                            "and try again."))

    @app.errorhandler(500)
    def internal_error(error):
        log.error("unexpected error on %s %s: %r", request.method, request.path,
                  getattr(error, "original_exception", error))
        return error_page(500, _("Something went wrong"),
                          _("The page could not be shown. If you were paying, please check your "
                            "invoices before trying again."))


def _register_headers(app):
    @app.before_request
    def follow_settings_changes():
        # A settings change saved by another process is used from this request on.
        app.extensions["splynx_ippay"].module_settings.follow_changes()

    @app.after_request
    def security_headers(response):
        # Framed only by Splynx's own pages (the same origin), never by another site.
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'self'")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Direct pay links carry their signature in the address: keep it on this site.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.path.startswith("/ippay/static/"):
            # Payment pages, card lists and staff pages are never kept by a browser or proxy.
            response.headers["Cache-Control"] = "no-store"
        return response


def _register_template_helpers(app):
    app.jinja_env.globals["version"] = __version__
    app.jinja_env.filters["money"] = format_cents
    app.jinja_env.globals["blank_once"] = BlankParts()
    init_i18n(app)
