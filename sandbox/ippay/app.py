"""The Flask application: the gateway endpoint (ippay-protocol.md §1, §10), the
fault and latency pipeline around it, and the JSON control plane under /_sim/
(not part of IPpay; used by tests, the demo and benchmarks).
"""

import datetime
import time

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from . import returns
from .clock import Clock, ClockError
from .config import ConfigError, Settings
from .faults import FaultError, FaultPlan
from .gateway import Processor, unreadable
from .stats import InFlight
from .store import Store
from .xml import RequestXMLError, parse_request

_EXTENSION = "ippay_sim"


class Simulator:
    """The simulator's state (switches, ledger, faults) and its request pipeline."""

    def __init__(self, switches=None):
        self.settings = Settings(switches)
        self.store = Store()
        self.faults = FaultPlan()
        self.clock = Clock()
        #: Calls in flight per terminal and their peak (``GET /_sim/stats``).
        self.in_flight = InFlight()

    def reset(self):
        """Forget transactions, tokens, requests, faults and statistics; restore start-up
        switches and the real date."""
        self.store.reset()
        self.in_flight.reset()
        self.faults.clear()
        self.settings.reset()
        self.clock.reset()

    def today(self):
        """The simulated date, after producing the ACH returns that are due by it."""
        today = self.clock.today()
        self.store.produce_returns(today)
        return today

    def handle(self, body, path, content_type):
        """Answer one gateway POST. Returns ``(status, body, mimetype)``.

        No lock is held while sleeping (latency, fault delays), so concurrent
        calls overlap as they would on a real gateway.
        """
        record = self.store.log_request(path, content_type, body)
        try:
            parsed, problem = parse_request(body), None
        except RequestXMLError as exc:
            parsed, problem = None, str(exc)
        with self.in_flight.call(parsed.body.get("TerminalID") if parsed else None):
            status, reply, mimetype = self._answer(body, parsed, problem,
                                                   cfg=self.settings.snapshot())
        self.store.log_reply(record, status, reply)
        return status, reply, mimetype

    def _answer(self, body, parsed, problem, cfg):
        """Decide and commit under the store's lock, then misbehave as a queued fault says."""
        if cfg["latency_ms"]:
            time.sleep(cfg["latency_ms"] / 1000)
        fault = self.faults.pick(parsed.body.get("TransactionType") if parsed else None)
        with self.store.lock:
            if parsed is None:
                outcome = unreadable(problem, cfg)
            else:
                outcome = Processor(self.store, cfg, parsed, self.today()).run()
            if fault is None or fault.commit:
                self.store.commit(outcome.entry, outcome.updates, outcome.tokens, outcome.index,
                                  outcome.returns)
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
@control_bp.errorhandler(ClockError)
@control_bp.errorhandler(returns.ReturnError)
def _bad_request(exc):
    return jsonify(error=str(exc)), 400


@control_bp.get("/health")
def health():
    """``{"status": "ok", "transactions": n, "tokens": n, "requests": n}``."""
    return jsonify(status="ok", **_sim().store.counts())


@control_bp.route("/stats", methods=["GET", "POST"])
def stats():
    """Gateway calls per terminal: ``{"terminals": {id: {"in_flight", "peak_in_flight",
    "calls"}}}`` (stats.py); POST ``{"reset": true}`` starts the counters again."""
    counters = _sim().in_flight
    if request.method == "POST":
        if _json_body().get("reset") is not True:
            raise ConfigError('POST {"reset": true} to start the counters again')
        counters.reset()
    return jsonify(counters.snapshot())


@control_bp.get("/ledger")
def ledger():
    """``{"transactions": [...], "tokens": [...]}``; filter with ?terminal_id=&transaction_id=."""
    _sim().today()  # returns that are due change their CHECK's status
    return jsonify(_sim().store.ledger(request.args.get("terminal_id"),
                                       request.args.get("transaction_id")))


@control_bp.get("/requests")
def requests_log():
    """Every gateway POST in order: its raw body and the reply sent to it."""
    return jsonify(requests=_sim().store.requests())


@control_bp.route("/config", methods=["GET", "POST"])
def config():
    """GET: every switch; POST: update some (validated first), answer all."""
    settings = _sim().settings
    if request.method == "GET":
        return jsonify(settings.snapshot())
    return jsonify(settings.update(_json_body()))


@control_bp.route("/faults", methods=["GET", "POST"])
def faults():
    """GET: the fault plan; POST: queue faults or set the random share (faults.py)."""
    plan = _sim().faults
    if request.method == "GET":
        return jsonify(plan.snapshot())
    return jsonify(plan.configure(_json_body()))


@control_bp.route("/card-rules", methods=["GET", "POST"])
def card_rules():
    """Scripted outcomes of cards' next SALEs by last four digits (a test's customers whose
    cards decline softly, then recover): POST ``{"rules": [{"last4", "codes"}]}``."""
    store = _sim().store
    if request.method == "POST":
        try:
            store.set_card_rules(_json_body().get("rules") or [])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return jsonify(rules=[{"last4": k, "codes": v} for k, v in sorted(store.card_rules.items())])


@control_bp.post("/reset")
def reset():
    """Forget everything; switches, faults and the clock back to their start."""
    _sim().reset()
    return jsonify(status="ok")


@control_bp.post("/settle")
def settle():
    """Close the batch (§8: VOID applies only before settlement)."""
    body = _json_body(required=False)
    count = _sim().store.settle(body.get("terminal_id"), body.get("transaction_id"))
    return jsonify(settled=count)


@control_bp.route("/clock", methods=["GET", "POST"])
def clock():
    """The simulated date: ``{"advance_days": n}`` or ``{"today": "YYYY-MM-DD"}`` (clock.py)."""
    sim = _sim()
    if request.method == "POST":
        sim.clock.change(_json_body())
    sim.today()
    return jsonify(sim.clock.snapshot())


@control_bp.route("/ach/returns", methods=["GET", "POST"])
def ach_returns():
    """ACH returns (returns.py): GET lists them; POST schedules
    ``{"returns": [{"transaction_id", "code", "after_days"?, "terminal_id"?}]}`` for accepted CHECKs."""
    sim = _sim()
    if request.method == "POST":
        specs = _json_body().get("returns")
        if not isinstance(specs, list) or not specs:
            raise returns.ReturnError("returns must be a non-empty list")
        cfg = sim.settings.snapshot()
        with sim.store.lock:
            today = sim.today()
            records = [_return_for(sim, spec, cfg, today) for spec in specs]  # all checked first
            for record in records:
                sim.store.schedule_return(record)
    today = sim.today()
    return jsonify(today=today.isoformat(),
                   returns=[r.to_json() for r in sim.store.returns(produced=True)],
                   scheduled=[r.to_json() for r in sim.store.returns(produced=False)])


def _return_for(sim, spec, cfg, today):
    if not isinstance(spec, dict) or not isinstance(spec.get("transaction_id"), str):
        raise returns.ReturnError("each return needs a transaction_id")
    terminal = spec.get("terminal_id") or cfg["terminals"][0]
    checks = [e for e in sim.store.lookup(terminal, spec["transaction_id"]) if e.type == "CHECK"]
    if not checks or checks[0].status != "accepted":
        raise returns.ReturnError(f"no accepted CHECK {spec['transaction_id']} on {terminal}")
    return returns.schedule(checks[0], spec.get("code"), spec.get("after_days", cfg["ach_return_days"]), today)


@control_bp.get("/ach/returns.csv")
def ach_returns_csv():
    """The returns report as CSV (format in returns.py); ``?since=YYYY-MM-DD&terminal_id=``."""
    sim = _sim()
    sim.today()
    since, terminal = request.args.get("since"), request.args.get("terminal_id")
    try:
        since = datetime.date.fromisoformat(since).isoformat() if since else None
    except ValueError:
        raise returns.ReturnError("since must be a date YYYY-MM-DD") from None
    chosen = [r for r in sim.store.returns(produced=True)
              if (not since or r.due_date >= since) and (not terminal or r.terminal_id == terminal)]
    body = returns.report_csv(chosen, sim.settings.snapshot()["ach_returns_amount"])
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="ach-returns.csv"'})


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
