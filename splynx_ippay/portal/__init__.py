"""Customer pages under /ippay: saved cards and paying invoices."""

from flask import Blueprint

bp = Blueprint("portal", __name__, url_prefix="/ippay")

from . import views  # noqa: E402,F401  (routes register on bp)
