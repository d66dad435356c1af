"""Control plane under ``/_sandbox/`` — not part of Splynx. Tests, the demo and
the benchmarks use it to inspect state, read the request log, inject faults, change the
switches (strict mode, undocumented methods, latency) and run the add-on CLI stand-in's
sub-commands (README).
"""

import collections
import json
import random
import re
import threading
import time

from flask import Blueprint, current_app, jsonify, request

from . import addon_commands
from .errors import DEFAULT_CODES, error_response
from .schema import serialize, wire_value

bp = Blueprint("splynx_control", __name__, url_prefix="/_sandbox")


class RequestLog:
    """Every request the emulator received (API and pages), oldest first, bounded."""

    def __init__(self, limit):
        self._lock = threading.Lock()
        self._entries = collections.deque(maxlen=limit)
        self._seq = 0

    def record(self, req):
        """Append one request and return its entry (the status is filled in later).
        ``json`` is the body decoded when it is JSON (else ``None``), for checkers."""
        body = req.get_data(cache=True, as_text=True)
        decoded = None
        if req.is_json and body:
            try:
                decoded = json.loads(body)
            except ValueError:
                decoded = None
        entry = {"method": req.method, "path": req.path,
                 "query": req.query_string.decode("latin-1"), "headers": dict(req.headers),
                 "body": body, "json": decoded, "remote_addr": req.remote_addr,
                 "time": time.time(), "status": None}
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)
        return entry

    def entries(self, path_regex=None, method=None, since=None):
        """A snapshot, optionally filtered (``since``: only entries after that ``seq``)."""
        with self._lock:
            items = list(self._entries)
        if since is not None:
            items = [e for e in items if e["seq"] > since]
        if path_regex:
            pattern = re.compile(path_regex)
            items = [e for e in items if pattern.search(e["path"])]
        if method:
            items = [e for e in items if e["method"] == method.upper()]
        return items

    def clear(self):
        """Forget all entries."""
        with self._lock:
            self._entries.clear()


class FaultBoard:
    """Queued faults. The first rule matching a request fires: it may sleep
    (``delay_s``) and/or answer ``status`` with a proper Splynx error body."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []
        self._next_id = 1

    def add(self, spec):
        """Validate and queue one rule; returns it."""
        status = spec.get("status")
        delay = spec.get("delay_s")
        if status is None and delay is None:
            raise ValueError("a fault needs status and/or delay_s")
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError("status must be an HTTP error code 400-599")
        if delay is not None and (not isinstance(delay, (int, float)) or delay < 0):
            raise ValueError("delay_s must be a non-negative number")
        rate = spec.get("rate")
        if rate is not None and not (isinstance(rate, (int, float)) and 0 <= rate <= 1):
            raise ValueError("rate must be between 0 and 1")
        count = spec.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer")
        rule = {"status": status, "delay_s": delay, "rate": rate, "seed": spec.get("seed"),
                "path_regex": spec.get("path_regex"), "method": (spec.get("method") or "").upper() or None,
                "count": count, "internal_code": spec.get("internal_code"),
                "message": spec.get("message"), "fired": 0}
        rule["_regex"] = re.compile(rule["path_regex"]) if rule["path_regex"] else None
        rule["_random"] = random.Random(rule["seed"])
        with self._lock:
            rule["id"] = self._next_id
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def take(self, method, target):
        """The rule that fires for this request (consuming one of its count), or None."""
        with self._lock:
            for rule in self._rules:
                if rule["method"] and rule["method"] != method:
                    continue
                if rule["_regex"] and not rule["_regex"].search(target):
                    continue
                if rule["rate"] is not None and rule["_random"].random() >= rule["rate"]:
                    continue
                rule["fired"] += 1
                if rule["count"] is not None:
                    rule["count"] -= 1
                    if rule["count"] == 0:
                        self._rules.remove(rule)
                return dict(rule)
        return None

    def list(self):
        """Public view of the queued rules."""
        with self._lock:
            return [{k: v for k, v in r.items() if not k.startswith("_")} for r in self._rules]

    def clear(self):
        """Drop every rule."""
        with self._lock:
            self._rules.clear()


def before_request():
    """Log the request, then apply a matching fault (app-wide hook)."""
    if request.path.startswith(("/_sandbox/", current_app.static_url_path + "/")):
        return None
    ext = current_app.extensions
    request.environ["splynx.log_entry"] = ext["splynx_requests"].record(request)
    if request.path.startswith("/api/"):
        # A real Splynx answers in tens of milliseconds (issue 13); slept before the store
        # lock is taken, so calls in parallel wait in parallel.
        latency = ext["splynx_store"].settings.get("latency_ms") or 0
        if latency > 0:
            time.sleep(latency / 1000.0)
    qs = request.query_string.decode("latin-1")
    rule = ext["splynx_faults"].take(request.method, request.path + ("?" + qs if qs else ""))
    if rule is None:
        return None
    if rule["delay_s"]:
        time.sleep(rule["delay_s"])
    if rule["status"] is None:
        return None
    code = rule["internal_code"] or DEFAULT_CODES.get(rule["status"], (None, "SERVER_ERROR"))[1]
    return error_response(rule["status"], code,
                          rule["message"])


def after_request(response):
    """Store the answered status in the request log entry."""
    entry = request.environ.get("splynx.log_entry")
    if entry is not None:
        entry["status"] = response.status_code
    return response


def _store():
    return current_app.extensions["splynx_store"]


def _bad(message):
    return error_response(400, "INVALID_INPUT_DATA", message)


@bp.route("/requests", methods=["GET", "DELETE"])
def requests_log():
    """Every request received (``?path_regex=&method=`` filter); DELETE clears."""
    log = current_app.extensions["splynx_requests"]
    if request.method == "DELETE":
        log.clear()
        return "", 204
    since = request.args.get("since")
    if since is not None and not since.isdigit():
        return _bad("since: a request's seq")
    return jsonify(log.entries(request.args.get("path_regex"), request.args.get("method"),
                               int(since) if since is not None else None))


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults():
    """Queue a fault (one object, or ``{"faults": [...]}``), list or clear them."""
    board = current_app.extensions["splynx_faults"]
    if request.method == "GET":
        return jsonify(board.list())
    if request.method == "DELETE":
        board.clear()
        return "", 204
    body = request.get_json(silent=True)
    specs = body.get("faults") if isinstance(body, dict) and "faults" in body else [body]
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        return _bad("expected a fault object or {\"faults\": [...]}")
    try:
        for spec in specs:
            if spec.get("path_regex"):
                re.compile(spec["path_regex"])
        added = [board.add(spec) for spec in specs]
    except (ValueError, re.error) as exc:
        return _bad(str(exc))
    return jsonify({"ids": [r["id"] for r in added]}), 201


@bp.route("/reset", methods=["POST"])
def reset():
    """Back to the seed (with the create_app config); forget faults and the log."""
    _store().reset()
    current_app.extensions["splynx_faults"].clear()
    current_app.extensions["splynx_requests"].clear()
    return jsonify({"status": "ok"})


#: Runtime switches and their types (README "Switches").
_SWITCHES = {"nonce_mode": (str,), "access_token_ttl": (int,), "refresh_token_extra": (int,),
             "bind_tokens": (bool,), "strict": (bool,), "undocumented_methods": (str,),
             "latency_ms": (int, float)}
_CHOICES = {"nonce_mode": ("increasing", "unique", "off"),
            "undocumented_methods": ("refuse", "allow")}


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    """Read or change runtime switches: nonce_mode, access_token_ttl, refresh_token_extra,
    bind_tokens, strict, undocumented_methods, latency_ms (``refund_category`` is a seed
    setting: shown, changed by ``create_app`` config only)."""
    store = _store()
    with store.lock:
        if request.method == "POST":
            body = request.get_json(silent=True) or {}
            for key, value in body.items():
                types = _SWITCHES.get(key)
                if types is None or isinstance(value, bool) and bool not in types \
                        or not isinstance(value, types):
                    return _bad(f"{key}: unknown setting or wrong type")
                if key in _CHOICES and value not in _CHOICES[key]:
                    return _bad(f"{key}: {' or '.join(_CHOICES[key])}")
                if key == "latency_ms" and value < 0:
                    return _bad("latency_ms: 0 or more")
            store.settings.update(body)
        return jsonify({k: store.settings[k] for k in (*_SWITCHES, "refund_category")})


@bp.route("/addon-cli", methods=["POST"])
def addon_cli():
    """One run of the add-on CLI stand-in: ``{"command": "add-or-get-api-key",
    "options": {"title": "..."}}`` → 200 ``{"output": "<line>"}``, or 400
    ``{"error": {"message": ...}}`` when the sub-command fails (it then exits 1)."""
    body = request.get_json(silent=True) or {}
    command, options = body.get("command"), body.get("options") or {}
    if not isinstance(command, str) or not isinstance(options, dict):
        return _bad("expected {\"command\": str, \"options\": {name: value}}")
    store = _store()
    with store.lock:
        try:
            output = addon_commands.run(store, command, options)
        except addon_commands.CommandFailed as exc:
            return _bad(str(exc))
    return jsonify({"output": output})


@bp.route("/login-session", methods=["POST"])
def login_session():
    """Create a portal/admin session without the login form → ``{"session_id"}``."""
    body = request.get_json(silent=True) or {}
    store = _store()
    kind, user_id = body.get("kind"), body.get("id")
    with store.lock:
        exists = ((kind == "customer" and user_id in store.customers.rows)
                  or (kind == "admin" and user_id in store.admins))
        if not exists:
            return _bad("kind must be customer or admin, id an existing one")
        return jsonify({"session_id": store.new_session(kind, user_id)}), 201


@bp.route("/api-keys", methods=["POST"])
def api_keys():
    """Add an API key: ``{key, secret, permissions?, unsecure_access?, allowed_ips?, enabled?}``."""
    body = request.get_json(silent=True) or {}
    if not body.get("key") or not body.get("secret"):
        return _bad("key and secret are required")
    permissions = body.get("permissions")
    if permissions is not None and not isinstance(permissions, dict):
        return _bad("permissions: {controller: [actions]} or null for all")
    store = _store()
    with store.lock:
        record = store.add_api_key(body["key"], body["secret"], title=body.get("title", "API key"),
                                   permissions=permissions,
                                   unsecure_access=bool(body.get("unsecure_access")),
                                   allowed_ips=body.get("allowed_ips"),
                                   enabled=body.get("enabled", True))
        return jsonify({"id": record["id"]}), 201


@bp.route("/state", methods=["GET"])
def state():
    """Everything a test may want to assert on, in API wire types."""
    store = _store()
    with store.lock:
        customers = []
        for row in store.customers.all():
            item = serialize("customers", row)
            item["deposit"] = wire_value("m4", store.billing[row["id"]]["deposit"])
            customers.append(item)
        return jsonify({
            "customers": customers,
            "invoices": [serialize("invoices", r) for r in store.invoices.all()],
            "proformas": [serialize("proformas", r) for r in store.proformas.all()],
            "payments": [serialize("payments", r) for r in store.payments.all()],
            "transactions": [serialize("transactions", r) for r in store.transactions.all()],
            "invoice_relations": [serialize("relations", r) for r in store.relations.all()],
            "payment_accounts": [serialize("payment_accounts", r)
                                 for _, r in sorted(store.payment_accounts.items())],
            "bank_statements": [serialize("bank_statements", r)
                                for r in store.bank_statements.all()],
            "bank_statement_records": [serialize("bank_statement_records", r)
                                       for r in store.bank_statement_records.all()],
            "modules": [serialize("modules", r) for r in store.modules.all()],
            "entry_points": [serialize("entry_points", r) for r in store.entry_points.all()],
            "config": {"/".join(p for p in key if p): value
                       for key, value in store.config_values.items()},
            "sessions": [{"session_id": sid, "kind": s[0], "id": s[1]}
                         for sid, s in store.sessions.items()],
            "api_keys": [{"id": k["id"], "key": k["key"], "title": k["title"],
                          "unsecure_access": k["unsecure_access"], "permissions": k["permissions"],
                          "allowed_ips": k["allowed_ips"]}
                         for k in store.api_keys.values()],
            "partners": [serialize("partners", r) for r in store.partners.all()],
            "administrators": [serialize("administrators", store.admins[k])
                               for k in sorted(store.admins)],
            "transaction_categories": [serialize("categories", r)
                                       for r in store.categories.all()],
            "payment_account_definitions": [serialize("payment_account_definitions", r)
                                            for r in store.payment_account_definitions.all()],
            "additional_fields": [dict(f) for _, f in sorted(store.additional_fields.items())],
        })
