"""The application factory's parts: settings, extensions, blueprints, error pages."""

import logging
import os
import secrets

from flask import Flask, request
from flask_wtf.csrf import CSRFError, CSRFProtect

from . import __version__
from .config import load_config, validate
from .i18n import _, init_app as init_i18n
from .money import format_cents
from .pages import error_page
from .services import build_addon

log = logging.getLogger(__name__)

csrf = CSRFProtect()

#: Where templates and static files are: beside the package in a source checkout, under
#: /usr/share when installed by the Debian package.
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SHARE_ROOT = "/usr/share/splynx-ippay"


def _asset_root():
    if os.path.isdir(os.path.join(_SOURCE_ROOT, "templates")):
        return _SOURCE_ROOT
    return _SHARE_ROOT


def build_app(config=None):
    """See :func:`splynx_ippay.create_app`."""
    settings = load_config() if config is None else validate(config)
    root = settings.get("ASSET_ROOT") or _asset_root()
    app = Flask("splynx_ippay", template_folder=os.path.join(root, "templates"),
                static_folder=os.path.join(root, "static"), static_url_path="/ippay/static")
    app.config.update(settings)
    if not app.config.get("WEB_SECRET_KEY"):
        log.warning("[web] secret_key is not set: form tokens will not survive a restart "
                    "and will not work across several web workers")
    app.config.update(
        SECRET_KEY=app.config.get("WEB_SECRET_KEY") or secrets.token_hex(32),
        SESSION_COOKIE_NAME="ippay_session",
        SESSION_COOKIE_PATH="/ippay",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
    )
    logging.getLogger("splynx_ippay").setLevel(app.config["WEB_LOG_LEVEL"])

    app.extensions["splynx_ippay"] = settings.get("ADDON") or build_addon(settings)
    csrf.init_app(app)
    _register_blueprints(app)
    _register_error_pages(app)
    _register_template_helpers(app)
    return app


def _register_blueprints(app):
    from .portal import bp as portal_bp

    app.register_blueprint(portal_bp)
    from .admin import bp as admin_bp

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

    @app.errorhandler(500)
    def internal_error(error):
        log.error("unexpected error on %s %s: %r", request.method, request.path,
                  getattr(error, "original_exception", error))
        return error_page(500, _("Something went wrong"),
                          _("The page could not be shown. If you were paying, please check your "
                            "invoices before trying again."))


def _register_template_helpers(app):
    app.jinja_env.globals["version"] = __version__
    app.jinja_env.filters["money"] = format_cents
    init_i18n(app)
