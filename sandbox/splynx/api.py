"""REST API v2 under ``/api/2.0/`` (splynx §1, §2, §3.4).

Success codes follow splynx §1.1: GET/OPTIONS 200, POST 201 ``{"id": N}``,
PUT 202 (empty body), DELETE 204, HEAD 204 with ``X-total-count``.
Validation failures are 400 ``INVALID_INPUT_DATA`` with a message that starts
with the field name [I: splynx §1.2 leaves the detail open].

Strict mode (setting ``strict``, README "Strict mode") holds every request body to the API
blueprint first (:mod:`.blueprint`); setting ``undocumented_methods`` = ``refuse`` answers
405 to the methods the blueprint does not document (entry point writes, creating payment
account definitions).
"""

import bisect
import functools
import itertools
import re

from flask import Blueprint, current_app, g, jsonify, request

from . import auth, blueprint
from .errors import ApiError, error_response
from .schema import FIELD_SETS, FIELDS_BY_NAME, SEARCH_TYPES, serialize, wire_value
from .search import build_conditions, parse_paging, parse_php_pairs, parse_php_query, sort_rows
from .store import EMPTY_DATE, Table, now_datetime, parse_date, parse_flag, parse_int, parse_money

bp = Blueprint("splynx_api", __name__, url_prefix="/api/2.0")

_MODULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_NO_AUTH_ENDPOINTS = {"splynx_api.create_tokens", "splynx_api.token"}


def get_store():
    """The emulator state of the running app."""
    return current_app.extensions["splynx_store"]


def locked(view):
    """Run a view under the store lock: one request sees one consistent state."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        with get_store().lock:
            return view(*args, **kwargs)
    return wrapper


@bp.errorhandler(ApiError)
def _api_error(err):
    return error_response(err.status, err.internal_code, err.message)


@bp.before_request
def _authenticate():
    if request.endpoint in _NO_AUTH_ENDPOINTS:
        return
    store = get_store()
    with store.lock:
        g.principal = auth.authenticate(store, request)


def request_body(structure=None, *, creating=False, documented=True):
    """The body as a dict: JSON, or a PHP-style form (``items[0][price]=..``).

    In strict mode it is first held to the blueprint's ``structure`` (required fields on
    ``creating``, unless the call is not ``documented`` at all); form values are all
    strings, so only JSON bodies have their types checked."""
    if request.is_json:
        body = request.get_json(silent=True)
        if body is None and request.get_data():
            raise ApiError(400, "BAD_REQUEST", "Request body is not valid JSON")
        body = body or {}
    else:
        body = parse_php_pairs(request.form.items(multi=True))
    if not isinstance(body, dict):
        raise ApiError(400, "BAD_REQUEST", "Request body must be an object")
    if get_store().settings["strict"]:
        blueprint.check_body(structure, body, creating=creating, typed=request.is_json,
                             required=documented)
    return body


def refuse_undocumented(path):
    """405 for a method the API blueprint does not document, unless the emulator offers
    them (setting ``undocumented_methods``)."""
    if get_store().settings["undocumented_methods"] == "refuse":
        raise ApiError(405, "METHOD_NOT_ALLOWED",
                       f"{request.method} {path} is not in the Splynx API blueprint "
                       f"(undocumented methods are refused)")


def _empty(status):
    response = current_app.response_class(status=status)
    response.headers.pop("Content-Type", None)
    return response


def _created(row_id):
    response = jsonify({"id": row_id})
    response.status_code = 201
    return response


# ------------------------------------------------------------------ tokens
@bp.route("/admin/auth/tokens", methods=["POST"])
@locked
def create_tokens():
    """``POST admin/auth/tokens`` — no Authorization header (splynx §1.3b)."""
    response = jsonify(auth.create_tokens(get_store(), request_body(
        blueprint.TOKEN_REQUEST, creating=True), request))
    response.status_code = 201
    return response


@bp.route("/admin/auth/tokens/<refresh>", methods=["GET", "DELETE"])
@locked
def token(refresh):
    """Renew (GET) or log out (DELETE) by refresh token."""
    store = get_store()
    if request.method == "DELETE":
        auth.delete_tokens(store, refresh)
        return _empty(204)
    return jsonify(auth.renew_tokens(store, refresh, request))


@bp.route("/admin/api/check", methods=["GET"])
def api_check():
    """Health check (splynx §1.5)."""
    return jsonify({"status": "ok", "message": "API is valid", "same_server": False})


# ------------------------------------------------------- generic resources
def coerce_fields(set_name, data, *, creating, skip=()):
    """Validate the writable fields of ``data`` against the attribute list.

    Unknown attributes are ignored, as Yii models ignore unsafe attributes.
    """
    fields = FIELDS_BY_NAME[set_name]
    out = {}
    for name, field in fields.items():
        if name in ("id",) or name in skip:
            continue
        if name not in data:
            if creating and field.required:
                raise ApiError(400, "INVALID_INPUT_DATA", f"{name}: cannot be blank")
            continue
        value = data[name]
        if field.required and value in (None, ""):
            raise ApiError(400, "INVALID_INPUT_DATA", f"{name}: cannot be blank")
        if field.type == "integer":
            value = parse_int(value or 0, name)
        elif field.type == "decimal":
            value = parse_money(value, name, allow_negative=True)
        elif field.type == "date":
            value = parse_date(value, name, allow_empty=True)
        elif field.type == "boolean":
            value = parse_flag(value, name)
        elif field.type == "array":
            if isinstance(value, dict):
                value = list(value.values())
            if not isinstance(value, list):
                raise ApiError(400, "INVALID_INPUT_DATA", f"{name}: must be an array")
        elif field.type == "object":
            if not isinstance(value, dict):
                raise ApiError(400, "INVALID_INPUT_DATA", f"{name}: must be an object")
        else:
            value = "" if value is None else str(value)
            if field.choices and value not in field.choices:
                raise ApiError(400, "INVALID_INPUT_DATA",
                               f"{name}: must be one of {', '.join(field.choices)}")
        out[name] = value
    return out


class _DictRows:
    """A ``{id: row}`` dict seen as a read-only :class:`Table`."""

    def __init__(self, rows):
        self.rows = rows

    def get(self, row_id):
        return self.rows.get(row_id)

    def all(self):
        return [self.rows[k] for k in sorted(self.rows)]

    def of_customer(self, customer_id):
        return [r for r in self.all() if r.get("customer_id") == customer_id]


class Resource:
    """A collection under ``/api/2.0/admin/<path>``: list/search/count/options,
    one record, and the write operations it supports.

    ``spec`` is the blueprint structure of its request bodies; ``undocumented`` the write
    methods the blueprint does not document for it."""

    def __init__(self, path, set_name, controller, table, *, owner="customer_id",
                 customer_readable=True, create=None, update=None, delete=None,
                 plain_filters=(), spec=None, undocumented=()):
        self.path, self.set_name, self.controller, self.table = path, set_name, controller, table
        self.owner, self.customer_readable = owner, customer_readable
        self.create, self.update, self.delete = create, update, delete
        self.plain_filters = plain_filters
        self.spec, self.undocumented = spec, frozenset(undocumented)

    def rows(self, store):
        """The Table behind this resource."""
        table = getattr(store, self.table)
        return table if isinstance(table, Table) else _DictRows(table)

    def check_method(self):
        """405 when this method is undocumented and undocumented methods are refused."""
        if request.method in self.undocumented:
            refuse_undocumented(f"admin/{self.path}")

    def body(self, creating):
        """The request body, held to :attr:`spec` in strict mode."""
        return request_body(self.spec, creating=creating,
                            documented=request.method not in self.undocumented)

    def check_customer(self, principal, row=None):
        """Customer tokens only see their own records (splynx §1.3b)."""
        if principal.customer_id is None:
            return
        if not self.customer_readable:
            raise ApiError(403, "FORBIDDEN", "Not available to customers")
        if row is not None and self.owner and row.get(self.owner) != principal.customer_id:
            raise ApiError(403, "NOT_ALLOWED_BY_USER_RESTRICTION",
                           "This record belongs to another customer")


def _candidates(resource, table, principal, main):
    """Rows worth filtering; uses the customer index when the search pins one."""
    if principal.customer_id is not None and resource.owner:
        if resource.owner == "id":
            row = table.get(principal.customer_id)
            return [row] if row else []
        return table.of_customer(principal.customer_id)
    pinned = main.get("customer_id") if isinstance(main, dict) and resource.owner == "customer_id" else None
    if isinstance(pinned, str) and pinned.strip().isdigit():
        return table.of_customer(int(pinned))
    return table.by_id() if hasattr(table, "by_id") else table.all()


def _by_id(order):
    """Whether a search's ``order`` is the default, id ascending."""
    return order in (None, "") or (isinstance(order, dict) and len(order) == 1
                                   and str(order.get("id", "")).upper() == "ASC")


def _first_matches(rows, conditions, offset, limit):
    """The page of ``rows`` (by id) that match, read the way a database reads its primary
    key index: from the first id an ``id >``/``id >=`` condition allows, stopping once the
    page is full (keyset paging through 100,000 invoices stays linear overall)."""
    start = 0
    for condition in conditions:
        if condition.field == "id" and condition.op in (">", ">=") \
                and str(condition.value).strip().isdigit():
            bound = int(condition.value)
            find = bisect.bisect_right if condition.op == ">" else bisect.bisect_left
            start = max(start, find(rows, bound, key=lambda r: r["id"]))
    page, skip = [], offset
    for row in itertools.islice(rows, start, None):
        if all(c.matches(row) for c in conditions):
            if skip:
                skip -= 1
                continue
            page.append(row)
            if len(page) == limit:
                break
    return page


def list_view(resource):
    """GET (list/search), HEAD (count) and OPTIONS (attributes) on a collection."""
    principal = g.principal
    principal.require(resource.controller, "index")
    resource.check_customer(principal)
    if request.method == "OPTIONS":
        return jsonify([f.option() for f in FIELD_SETS[resource.set_name]])
    store = get_store()
    params = parse_php_query(request.query_string)
    main = params.get("main_attributes")
    types = SEARCH_TYPES[resource.set_name]
    conditions = build_conditions(main, types, "main_attributes")
    conditions += build_conditions(params.get("additional_attributes"), types,
                                   "additional_attributes", additional=True)
    for name in resource.plain_filters:
        if params.get(name) not in (None, ""):
            conditions += build_conditions({name: params[name]}, types, name)
    limit, offset = parse_paging(params)
    candidates = _candidates(resource, resource.rows(store), principal, main or {})
    if request.method != "HEAD" and limit is not None and _by_id(params.get("order")):
        rows = _first_matches(candidates, conditions, offset or 0, limit)
        return jsonify([serialize(resource.set_name, r) for r in rows])
    rows = [r for r in candidates if all(c.matches(r) for c in conditions)]
    if request.method == "HEAD":
        response = _empty(204)
        response.headers["X-total-count"] = str(len(rows))
        response.headers["Access-Control-Expose-Headers"] = "X-total-count"
        return response
    rows = sort_rows(rows, params.get("order"), types)
    start = offset or 0
    rows = rows[start:start + limit] if limit is not None else rows[start:]
    return jsonify([serialize(resource.set_name, r) for r in rows])


def _load(resource, row_id):
    try:
        key = int(row_id)
    except ValueError:
        key = None
    row = resource.rows(get_store()).get(key)
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"{resource.path} {row_id} not found")
    return row


def item_view(resource, row_id):
    """GET/PUT/DELETE one record."""
    principal = g.principal
    resource.check_method()
    action = {"GET": "view", "HEAD": "view", "PUT": "update", "DELETE": "delete"}[request.method]
    principal.require(resource.controller, action)
    resource.check_customer(principal)
    row = _load(resource, row_id)
    resource.check_customer(principal, row)
    if request.method in ("GET", "HEAD"):
        return jsonify(serialize(resource.set_name, row))
    handler = resource.update if request.method == "PUT" else resource.delete
    if handler is None:
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {resource.path}")
    if request.method == "PUT":
        handler(get_store(), row, resource.body(creating=False))
        return _empty(202)
    handler(get_store(), row)
    return _empty(204)


def create_view(resource):
    """POST a new record → 201 ``{"id": N}``."""
    principal = g.principal
    resource.check_method()
    principal.require(resource.controller, "add")
    resource.check_customer(principal)
    if resource.create is None:
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"POST is not allowed on {resource.path}")
    row = resource.create(get_store(), resource.body(creating=True), principal)
    return _created(row["id"])


# --- per-resource write rules
def _create_customer(store, data, principal):
    fields = coerce_fields("customers", data, creating=True)
    if store.customer_by_login(fields["login"]):
        raise ApiError(400, "INVALID_INPUT_DATA", "login: is already taken")
    customer_id = store.add_customer(fields["login"], str(data.get("password", "")), fields["name"],
                                     fields.get("email", ""), added_by="api",
                                     added_by_id=principal.id)
    store.customers.get(customer_id).update(fields)
    return store.customers.get(customer_id)


def _update_customer(store, row, data):
    fields = coerce_fields("customers", data, creating=False, skip=("additional_attributes",))
    other = store.customer_by_login(fields.get("login"))
    if other is not None and other["id"] != row["id"]:
        raise ApiError(400, "INVALID_INPUT_DATA", "login: is already taken")
    row.update(fields)
    if "password" in data:
        row["password"] = str(data["password"])
    if isinstance(data.get("additional_attributes"), dict):
        row["additional_attributes"].update(data["additional_attributes"])


def _who(principal):
    return ("api", principal.id) if principal.kind == "api_key" else (principal.kind, principal.id)


def _create_invoice(store, data, principal):
    added_by, added_by_id = _who(principal)
    return store.create_invoice(data, added_by, added_by_id)


def _create_payment(store, data, principal):
    added_by, added_by_id = _who(principal)
    return store.add_payment({**data, "added_by": added_by, "added_by_id": added_by_id})


def _simple_create(set_name):
    def create(store, data, principal):
        table = {"payment_methods": store.payment_methods, "categories": store.categories}[set_name]
        return table.insert(coerce_fields(set_name, data, creating=True))
    return create


def _simple_update(set_name):
    def update(store, row, data):
        row.update(coerce_fields(set_name, data, creating=False))
    return update


def _entry_point_fields(store, data, current=None):
    fields = coerce_fields("entry_points", data, creating=current is None)
    merged = {**(current or {}), **fields}
    if merged["module"] not in {m["name"] for m in store.modules.rows.values()}:
        raise ApiError(400, "INVALID_INPUT_DATA", f"module: module {merged['module']!r} does not exist")
    clash = next((e for e in store.entry_points.rows.values()
                  if e["name"] == merged["name"] and e["id"] != merged.get("id")), None)
    if clash is not None:
        raise ApiError(400, "INVALID_INPUT_DATA", f"name: entry point {merged['name']!r} already exists")
    # [I] what each type needs to be shown at all (splynx §3.4 field table).
    if merged["type"] == "code" and not merged.get("code"):
        raise ApiError(400, "INVALID_INPUT_DATA", "code: cannot be blank for a code entry point")
    if merged["type"] != "code" and not merged.get("url"):
        raise ApiError(400, "INVALID_INPUT_DATA", "url: cannot be blank for this entry point type")
    if merged["type"] == "action_link" and not merged.get("model"):
        raise ApiError(400, "INVALID_INPUT_DATA", "model: cannot be blank for an action_link")
    return fields


def _create_entry_point(store, data, principal):
    fields = _entry_point_fields(store, data)
    row = {"size": "large", "root": "", "model": "", "title": "", "icon": "", "background": "",
           "url": "", "code": "", "partners": [], "location": "", "payment_type": "", "enabled": True}
    row.update(fields)
    return store.entry_points.insert(row)


def _update_entry_point(store, row, data):
    row.update(_entry_point_fields(store, data, row))


# --- payment statements (splynx §2.7) --------------------------------------------------
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def _check_datetime(fields, name):
    value = fields.get(name)
    if value in (None, ""):
        return
    if not _DATETIME.match(value):
        raise ApiError(400, "INVALID_INPUT_DATA", f"{name}: must be a datetime YYYY-MM-DD HH:MM:SS")


def _bank_statement_fields(store, data, creating):
    fields = coerce_fields("bank_statements", data, creating=creating)
    if "title" in fields and not fields["title"].strip():
        raise ApiError(400, "INVALID_INPUT_DATA", "title: cannot be blank")
    _check_datetime(fields, "date_time")
    if fields.get("payment_type") and fields["payment_type"] not in store.payment_methods.rows:
        raise ApiError(400, "INVALID_INPUT_DATA", "payment_type: unknown payment method")
    return fields


def _create_bank_statement(store, data, principal):
    row = {"title": "", "date_time": "", "handler": "", "payment_type": 0, "status": "new",
           "filename_original": "", "filename_uploaded": "", "delimiter": ""}
    row.update(_bank_statement_fields(store, data, creating=True))
    row["date_time"] = row["date_time"] or now_datetime()
    return store.bank_statements.insert(row)


def _update_bank_statement(store, row, data):
    row.update(_bank_statement_fields(store, data, creating=False))


def _statement_record_fields(store, data, current=None):
    fields = coerce_fields("bank_statement_records", data, creating=current is None)
    merged = {**(current or {}), **fields}
    process = merged.get("bank_statements_process_id")
    if process not in store.bank_statements.rows:
        raise ApiError(400, "INVALID_INPUT_DATA",
                       f"bank_statements_process_id: payment statement {process} does not exist")
    if merged.get("customer_id") and merged["customer_id"] not in store.customers.rows:
        raise ApiError(400, "INVALID_INPUT_DATA",
                       f"customer_id: customer {merged['customer_id']} does not exist")
    for link, table in (("invoice_id", store.invoices), ("request_id", store.proformas),
                        ("payment_id", store.payments), ("transaction_id", store.transactions)):
        if merged.get(link) and merged[link] not in table.rows:
            raise ApiError(400, "INVALID_INPUT_DATA", f"{link}: {merged[link]} does not exist")
    _check_datetime(fields, "datetime")
    return fields


def _create_statement_record(store, data, principal):
    row = {"bank_statements_process_id": 0, "datetime": "", "payment_date": EMPTY_DATE,
           "amount": None, "status": "new", "comment": "", "customer_id": 0, "invoice_id": 0,
           "credit_note_id": 0, "request_id": 0, "payment_id": 0, "transaction_id": 0,
           **{f"{kind}_{n}": "" for kind in ("pairing", "additional") for n in (1, 2, 3)}}
    row.update(_statement_record_fields(store, data))
    row["datetime"] = row["datetime"] or now_datetime()
    return store.bank_statement_records.insert(row)


def _update_statement_record(store, row, data):
    fields = _statement_record_fields(store, data, current=row)
    old_customer = row["customer_id"]
    row.update(fields)
    store.bank_statement_records.reindex(row, old_customer)


RESOURCES = [
    Resource("customers/customer", "customers", "api\\admin\\customers\\Customer", "customers",
             owner="id", create=_create_customer, update=_update_customer, spec=blueprint.CUSTOMER),
    Resource("finance/invoices", "invoices", "api\\admin\\finance\\Invoices", "invoices",
             create=_create_invoice, update=lambda s, r, d: s.update_invoice(r, d),
             delete=lambda s, r: s.delete_invoice(r), spec=blueprint.INVOICE),
    Resource("finance/proforma-invoices", "proformas", "api\\admin\\finance\\Requests", "proformas",
             create=lambda s, d, p: s.create_proforma(d), update=lambda s, r, d: s.update_proforma(r, d),
             delete=lambda s, r: s.delete_proforma(r), spec=blueprint.PROFORMA),
    Resource("finance/payments", "payments", "api\\admin\\finance\\Payments", "payments",
             create=_create_payment, update=lambda s, r, d: s.update_payment(r, d),
             delete=lambda s, r: s.delete_payment(r), spec=blueprint.PAYMENT),
    Resource("finance/transactions", "transactions", "api\\admin\\finance\\Transactions",
             "transactions", create=lambda s, d, p: s.add_transaction(d),
             spec=blueprint.TRANSACTION),
    Resource("finance/invoice-relations", "relations", "api\\admin\\finance\\InvoiceRelations",
             "relations", plain_filters=("invoice_id", "customer_id")),
    Resource("finance/payment-methods", "payment_methods", "api\\admin\\finance\\PaymentMethods",
             "payment_methods", owner=None, create=_simple_create("payment_methods"),
             update=_simple_update("payment_methods"), spec=blueprint.PAYMENT_METHOD),
    Resource("finance/transaction-categories", "categories",
             "api\\admin\\finance\\TransactionCategories", "categories", owner=None,
             create=_simple_create("categories"), update=_simple_update("categories"),
             spec=blueprint.TRANSACTION_CATEGORY),
    Resource("finance/bank-statements", "bank_statements", "api\\admin\\finance\\BankStatements",
             "bank_statements", owner=None, customer_readable=False,
             create=_create_bank_statement, update=_update_bank_statement,
             spec=blueprint.PAYMENT_STATEMENT),
    Resource("finance/bank-statements-records", "bank_statement_records",
             "api\\admin\\finance\\BankStatementsRecords", "bank_statement_records",
             customer_readable=False, create=_create_statement_record,
             update=_update_statement_record, spec=blueprint.PAYMENT_STATEMENT_RECORD),
    # POST/PUT/DELETE on entry points are not in the API blueprint (GET only): offered
    # only while setting undocumented_methods is "allow" (the registration adapter's API
    # path), else 405 (its CLI and manual paths).
    Resource("config/entry-points", "entry_points", "api\\admin\\config\\EntryPoints", "entry_points",
             owner=None, customer_readable=False, create=_create_entry_point,
             update=_update_entry_point, delete=lambda s, r: s.entry_points.delete(r["id"]),
             spec=blueprint.ENTRY_POINT, undocumented=("POST", "PUT", "DELETE")),
    # Read-only here; the blueprint documents writes the add-on never makes.
    Resource("administration/administrators", "administrators",
             "api\\admin\\administration\\Administrators", "admins", owner=None,
             customer_readable=False),
    Resource("administration/partners", "partners", "api\\admin\\administration\\Partners",
             "partners", owner=None, customer_readable=False),
    Resource("config/company-info", "company_info", "api\\admin\\config\\CompanyInfo",
             "company_info", owner=None, customer_readable=False),
]


def _register(resource):
    endpoint = resource.path.replace("/", "_").replace("-", "_")

    @locked
    def collection():
        if request.method == "POST":
            return create_view(resource)
        return list_view(resource)

    @locked
    def item(row_id):
        return item_view(resource, row_id)

    bp.add_url_rule(f"/admin/{resource.path}", f"{endpoint}_list", collection,
                    methods=["GET", "POST", "OPTIONS"])
    bp.add_url_rule(f"/admin/{resource.path}/<row_id>", f"{endpoint}_item", item,
                    methods=["GET", "PUT", "DELETE"])


for _resource in RESOURCES:
    _register(_resource)


# ------------------------------------------------------- customer billing
def _customer_row(customer_id):
    store = get_store()
    try:
        row = store.customers.get(int(customer_id))
    except ValueError:
        row = None
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"Customer {customer_id} not found")
    principal = g.principal
    if principal.customer_id is not None and principal.customer_id != row["id"]:
        raise ApiError(403, "NOT_ALLOWED_BY_USER_RESTRICTION", "This record belongs to another customer")
    return row


@bp.route("/admin/customers/customer-billing/<customer_id>", methods=["GET", "PUT"])
@locked
def customer_billing(customer_id):
    """Billing settings with ``deposit`` = account balance (splynx §2.1)."""
    g.principal.require("api\\admin\\customers\\CustomerBilling", "view" if request.method == "GET" else "update")
    row = _customer_row(customer_id)
    billing = get_store().billing[row["id"]]
    if request.method == "PUT":
        # The deposit moves only through transactions [I], so it is not writable.
        billing.update(coerce_fields("billing", request_body(blueprint.CUSTOMER_BILLING),
                                     creating=False, skip=("customer_id", "deposit")))
        return _empty(202)
    return jsonify(serialize("billing", billing))


@bp.route("/admin/customers/billing-info/<customer_id>", methods=["GET"])
@locked
def billing_info(customer_id):
    """Balance plus blocking forecast (splynx §2.1); the forecast fields are [I]."""
    g.principal.require("api\\admin\\customers\\BillingInfo", "view")
    row = _customer_row(customer_id)
    deposit = get_store().billing[row["id"]]["deposit"]
    formatted = request.args.get("format_values") in ("true", "1")
    return jsonify({"customer_id": str(row["id"]),
                    "deposit": f"{deposit:.2f}" if formatted else wire_value("m4", deposit),
                    "blocking_date": EMPTY_DATE, "howManyDaysLeft": None})


def _account_key():
    raw = request.args.get("id", "")
    parts = raw.split("--")
    if not raw or len(parts) > 2:
        raise ApiError(400, "INVALID_INPUT_DATA", "id: expected <customer_id> or <customer_id>--<account_id>")
    customer_id = parse_int(parts[0], "id")
    account_id = parse_int(parts[1], "id") if len(parts) == 2 else None
    return customer_id, account_id


@bp.route("/admin/customers/customer-payment-accounts", methods=["GET", "POST", "PUT", "DELETE"])
@locked
def payment_accounts():
    """Stored gateway credentials per customer (splynx §2.1); PUT upserts [I].

    Without ``id``, GET lists the payment-account *definitions* (blueprint "Payment
    accounts Response"); POST creating one is undocumented (see :func:`refuse_undocumented`).
    """
    action = {"GET": "index", "HEAD": "index", "POST": "add", "PUT": "update",
              "DELETE": "delete"}[request.method]
    if request.method == "POST":
        refuse_undocumented("admin/customers/customer-payment-accounts")
    g.principal.require("api\\admin\\customers\\CustomerPaymentAccounts", action)
    store = get_store()
    if request.method == "POST":
        _no_customers()
        return _created(_create_account_definition(store, request_body(
            blueprint.PAYMENT_ACCOUNT_DEFINITION, creating=True, documented=False))["id"])
    if request.method == "GET" and not request.args.get("id"):
        _no_customers()
        return jsonify([serialize("payment_account_definitions", r)
                        for r in store.payment_account_definitions.all()])
    customer_id, account_id = _account_key()
    _customer_row(customer_id)
    accounts = store.payment_accounts
    if request.method == "PUT":
        if account_id is None:
            raise ApiError(400, "INVALID_INPUT_DATA", "id: PUT needs <customer_id>--<account_id>")
        fields = coerce_fields("payment_accounts", request_body(blueprint.PAYMENT_ACCOUNT_DATA),
                               creating=False, skip=("account_id", "customer_id"))
        row = accounts.setdefault((customer_id, account_id), {
            "account_id": account_id, "customer_id": customer_id,
            **{f"field_{n}": "" for n in range(1, 11)}})
        row.update(fields)
        return _empty(202)
    if account_id is None:
        if request.method == "DELETE":
            raise ApiError(400, "INVALID_INPUT_DATA", "id: DELETE needs <customer_id>--<account_id>")
        rows = [r for (cid, _), r in sorted(accounts.items()) if cid == customer_id]
        return jsonify([serialize("payment_accounts", r) for r in rows])
    row = accounts.get((customer_id, account_id))
    if row is None:
        raise ApiError(404, "NOT_FOUND", "Payment account not found")
    if request.method == "DELETE":
        del accounts[(customer_id, account_id)]
        return _empty(204)
    return jsonify(serialize("payment_accounts", row))


@bp.route("/admin/customers/customer-payment-account-data", methods=["GET"])
@locked
def payment_account_data():
    """Every customer's payment-account data (blueprint "Get customer all payment accounts
    data")."""
    g.principal.require("api\\admin\\customers\\CustomerPaymentAccounts", "index")
    _no_customers()
    return jsonify([serialize("payment_accounts", r)
                    for _, r in sorted(get_store().payment_accounts.items())])


def _no_customers():
    if g.principal.customer_id is not None:
        raise ApiError(403, "FORBIDDEN", "Not available to customers")


def _create_account_definition(store, data):
    fields = coerce_fields("payment_account_definitions", data, creating=True)
    if not fields["title"].strip():
        raise ApiError(400, "INVALID_INPUT_DATA", "title: cannot be blank")
    if any(d["title"].strip().lower() == fields["title"].strip().lower()
           for d in store.payment_account_definitions.rows.values()):
        raise ApiError(400, "INVALID_INPUT_DATA", f"title: payment account {fields['title']!r} "
                       "already exists")
    return store.add_payment_account_definition(fields)


# ------------------------------------------------------------------ config
# splynx §1.5: what a customer token may read from the config store.
_CUSTOMER_CONFIG = {("main", "cap"), ("main", "cards"), ("main", "portal"), ("main", "system")}


@bp.route("/admin/config/config", methods=["GET", "PUT"])
@locked
def config():
    """``admin/config/config?module=&path=[&key=][&partner_id=]`` (splynx §1.5).

    Per-partner values [I] overlay the default set when ``partner_id`` is given.
    """
    principal = g.principal
    principal.require("api\\admin\\config\\Config", "view" if request.method == "GET" else "update")
    store = get_store()
    module, path = request.args.get("module", ""), request.args.get("path", "")
    if not module or not path:
        raise ApiError(400, "INVALID_INPUT_DATA", "module and path: cannot be blank")
    if principal.customer_id is not None:
        if request.method != "GET" or ((module, path) not in _CUSTOMER_CONFIG and
                                       (module, path, request.args.get("key"))
                                       != ("main", "preferences", "portal_logo")):
            raise ApiError(403, "FORBIDDEN", "Customers may not read this configuration")
    if module == "add-on" and path not in {m["name"] for m in store.modules.rows.values()}:
        raise ApiError(404, "NOT_FOUND", f"Module {path!r} not found")
    partner = request.args.get("partner_id") or None
    values = store.config_values
    if request.method == "PUT":
        body = request_body()
        values.setdefault((module, path, partner), {}).update(body)
        return _empty(202)
    merged = dict(values.get((module, path, None), {}))
    if partner:
        merged.update(values.get((module, path, partner), {}))
    key = request.args.get("key")
    if key:
        if key not in merged:
            raise ApiError(404, "NOT_FOUND", f"Config key {key!r} not found")
        return jsonify({key: merged[key]})
    return jsonify(merged)


def _module_or_404(name):
    row = next((m for m in get_store().modules.rows.values() if m["name"] == name), None)
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"Module {name!r} not found")
    return row


def _module_fields(data, creating):
    fields = coerce_fields("modules", data, creating=creating)
    if "name" in fields and not _MODULE_NAME.match(fields["name"]):
        raise ApiError(400, "INVALID_INPUT_DATA",
                       "name: up to 32 characters, lower case letters, digits and _")
    if len(fields.get("title", "")) > 64:
        raise ApiError(400, "INVALID_INPUT_DATA", "title: at most 64 characters")
    return fields


# Modules are addressed by name, so only the collection view is the generic one.
MODULES = Resource("config/modules", "modules", "api\\admin\\config\\Modules", "modules",
                   owner=None, customer_readable=False)


@bp.route("/admin/config/modules", methods=["GET", "POST", "OPTIONS"])
@locked
def modules():
    """Modules list (splynx §1.5, §3.2): search like any collection, POST creates."""
    if request.method != "POST":
        return list_view(MODULES)
    g.principal.require(MODULES.controller, "add")
    MODULES.check_customer(g.principal)
    store = get_store()
    fields = _module_fields(request_body(blueprint.MODULE, creating=True), creating=True)
    if any(m["name"] == fields["name"] for m in store.modules.rows.values()):
        raise ApiError(400, "INVALID_INPUT_DATA", f"name: module {fields['name']!r} already exists")
    row = {"root": "", "type": "simple", "status": "enabled", "entry_points_status": "enabled"}
    row.update(fields)
    return _created(store.modules.insert(row)["id"])


@bp.route("/admin/config/modules/<name>", methods=["GET", "PUT", "DELETE"])
@locked
def module(name):
    """One module by name; DELETE also drops its entry points and settings [I]."""
    action = {"GET": "view", "HEAD": "view", "PUT": "update", "DELETE": "delete"}[request.method]
    g.principal.require("api\\admin\\config\\Modules", action)
    if g.principal.customer_id is not None:
        raise ApiError(403, "FORBIDDEN", "Not available to customers")
    store = get_store()
    row = _module_or_404(name)
    if request.method == "GET":
        return jsonify(serialize("modules", row))
    if request.method == "PUT":
        fields = _module_fields(request_body(blueprint.MODULE), creating=False)
        if fields.get("name", name) != name:
            raise ApiError(400, "INVALID_INPUT_DATA", "name: cannot be changed")
        row.update(fields)
        return _empty(202)
    for point in [e for e in store.entry_points.rows.values() if e["module"] == name]:
        store.entry_points.delete(point["id"])
    for key in [k for k in store.config_values if k[0] == "add-on" and k[1] == name]:
        del store.config_values[key]
    store.modules.delete(row["id"])
    return _empty(204)
