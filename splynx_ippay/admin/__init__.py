"""Staff pages under /ippay/admin: module settings, charge runs, the transaction log."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/ippay/admin")

from . import views  # noqa: E402,F401  (routes register on bp)
