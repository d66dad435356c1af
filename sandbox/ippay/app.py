"""The Flask application: the gateway endpoint (ippay-protocol.md §1, §10), the
fault and latency pipeline around it, and the JSON control plane under /_sim/
(not part of IPpay; used by tests, the demo and benchmarks).
"""

import time

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from .config import ConfigError, Settings
from .faults import FaultError, FaultPlan
from .gateway import Processor, unreadable
from .store import Store
from .xml import RequestXMLError, parse_request

_EXTENSION = "ippay_sim"


class Simulator:
    """The simulator's state (switches, ledger, faults) and its request pipeline."""

    def __init__(self, switches=None):
        self.settings = Settings(switches)
        self.store = Store()
        self.faults = FaultPlan()

    def reset(self):
        """Forget transactions, tokens, requests and faults; restore start-up switches."""
        self.store.reset()
        self.faults.clear()
        self.settings.reset()

    def handle(self, body, path, content_type):
        """Answer one gateway POST. Returns ``(status, body, mimetype)``.

        No lock is held while sleeping (latency, fault delays), so concurrent
        calls overlap as they would on a real gateway.
        """
        self.store.log_request(path, content_type, body)
        cfg = self.settings.snapshot()
        if cfg["latency_ms"]:
            time.sleep(cfg["latency_ms"] / 1000)
        try:
            parsed = parse_request(body)
        except RequestXMLError as exc:
            parsed, problem = None, str(exc)
        fault = self.faults.pick(parsed.body.get("TransactionType") if parsed else None)
        with self.store.lock:
            if parsed is None:
                outcome = unreadable(problem, cfg)
            else:
                outcome = Processor(self.store, cfg, parsed).run()
            if fault is None or fault.commit:
                self.store.commit(outcome.entry, outcome.updates, outcome.tokens, outcome.index)
        reply = outcome.body()
        if fault is None:
            return 200, reply, "text/xml"
        time.sleep(fault.delay_s)
        if fault.kind == "http_500":
            return 500, b"Internal Server Error", "text/plain"
        if fault.kind == "malformed":
            # Cut the reply in half: whatever the reply was, the result is not
            # well-formed XML (a lone fragment when the true reply was empty).
            return 200, reply[: len(reply) // 2] or b"<ippayResponse><ActionCo", "text/xml"
        if fault.kind == "empty":
            return 200, b"", "text/xml"
        if fault.kind == "echo":
            # §9.4 [S] BOP: in one failure mode IPpay echoes the request, card number included.
            return 200, body, "text/xml"
        # timeout_commit / timeout_no_commit: the normal reply, too late for the client.
        return 200, reply, "text/xml"


def _sim():
    return current_app.extensions[_EXTENSION]


def _json_body(required=True):
    data = request.get_json(force=True, silent=True)
    if data is None and not required and not request.get_data():
        return {}
    if not isinstance(data, dict):
        raise ConfigError("the body must be a JSON object")
    return data


gateway_bp = Blueprint("gateway", __name__)
control_bp = Blueprint("control", __name__, url_prefix="/_sim")


@gateway_bp.route("/ippay", methods=["GET", "POST"])
@gateway_bp.route("/ippay/", methods=["GET", "POST"])
def gateway():
    """§1: the raw XML document is the POST body, whatever the Content-Type.
    ``GET ?dummy=1`` returns a fresh 18-character TransactionID (legacy BOP)."""
    sim = _sim()
    if request.method == "GET":
        if request.args.get("dummy"):
            return Response(sim.store.new_transaction_id(), mimetype="text/plain")
        return Response("", status=405, headers={"Allow": "POST"})
    status, body, mimetype = sim.handle(request.get_data(), request.path, request.content_type)
    return Response(body, status=status, mimetype=mimetype)


@control_bp.errorhandler(ConfigError)
@control_bp.errorhandler(FaultError)
def _bad_request(exc):
    return jsonify(error=str(exc)), 400


@control_bp.get("/health")
def health():
    return jsonify(status="ok", **_sim().store.counts())


@control_bp.get("/ledger")
def ledger():
    """``{"transactions": [...], "tokens": [...]}``; filter with ?terminal_id=&transaction_id=."""
    return jsonify(_sim().store.ledger(request.args.get("terminal_id"),
                                       request.args.get("transaction_id")))


@control_bp.get("/requests")
def requests_log():
    return jsonify(requests=_sim().store.requests())


@control_bp.route("/config", methods=["GET", "POST"])
def config():
    settings = _sim().settings
    if request.method == "GET":
        return jsonify(settings.snapshot())
    return jsonify(settings.update(_json_body()))


@control_bp.route("/faults", methods=["GET", "POST"])
def faults():
    plan = _sim().faults
    if request.method == "GET":
        return jsonify(plan.snapshot())
    return jsonify(plan.configure(_json_body()))


@control_bp.post("/reset")
def reset():
    _sim().reset()
    return jsonify(status="ok")


@control_bp.post("/settle")
def settle():
    """Close the batch (§8: VOID applies only before settlement)."""
    body = _json_body(required=False)
    count = _sim().store.settle(body.get("terminal_id"), body.get("transaction_id"))
    return jsonify(settled=count)


def create_app(config=None):
    """Build the simulator app.

    ``config`` maps simulator switches (lower-case names, see config.DEFAULTS)
    to values; UPPER-CASE keys go to Flask's ``app.config``. The switches start
    from their defaults, then ``IPPAY_SIM_*`` environment variables, then
    ``config``.
    """
    config = dict(config or {})
    flask_config = {k: config.pop(k) for k in list(config) if k.isupper()}
    app = Flask(__name__)
    app.config.update(flask_config)
    app.extensions[_EXTENSION] = Simulator(config)
    app.register_blueprint(gateway_bp)
    app.register_blueprint(control_bp)
    return app
