"""Staff pages under /ippay/admin: module settings, charge runs, the transaction log,
automatic payments and the collections overview."""

from flask import Blueprint

from ..services.directory import Directory

bp = Blueprint("admin", __name__, url_prefix="/ippay/admin")


@bp.record_once
def _keep_a_directory(state):
    # Names of customers, administrators and partners, shared by this process's requests.
    state.app.extensions.setdefault("splynx_ippay_directory", Directory())


from . import collections, views  # noqa: E402,F401  (routes register on bp)
