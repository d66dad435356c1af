"""Views of the staff pages. Every one needs a Splynx administrator session
(:func:`~splynx_ippay.identity.admin_required`); every action is recorded with the
administrator's id (services/audit.py)."""

import csv
import io
import json

from flask import (Response, abort, current_app, flash, jsonify, redirect, render_template,
                   request, stream_with_context, url_for)

from ..identity import admin_required
from ..ippay import GatewayError
from ..models import AttemptStatus, ItemStatus
from ..money import AmountError, format_cents, parse_amount
from ..services import audit, charging, refunds
from ..services import staff_settings as ss
from ..splynx import SplynxError
from . import bp


def _addon():
    return current_app.extensions["splynx_ippay"]


@bp.route("/")
@admin_required
def index(admin_id):
    return redirect(url_for("admin.runs"))


# --- module settings --------------------------------------------------------------------

def _status(addon):
    """Whether Splynx and the gateway answer, for the settings page."""
    status = {}
    try:
        addon.splynx.check_api()
        status["splynx"] = (True, "Splynx answers and accepts the add-on's API key.")
    except SplynxError as exc:
        status["splynx"] = (False, f"Splynx does not answer as it should: {exc}")
    status["gateway"] = _ping(addon)
    return status


def _ping(addon, url=None, terminal=None):
    client = None
    try:
        client = addon.gateway.current() if url is None else _client_for(addon, url, terminal)
        result = client.ping()
    except GatewayError as exc:
        return False, f"The gateway did not answer: {exc}"
    except Exception as exc:  # noqa: BLE001 - shown to staff, never raised
        return False, f"The gateway could not be asked: {exc}"
    finally:
        if url is not None and client is not None:
            client.close()
    if result.approved:
        return True, f"The gateway answers PING for terminal {client.terminal_id}."
    return False, (f"The gateway refused terminal {client.terminal_id}: {result.action_code} "
                   f"{result.response_text} {result.err_msg or ''}".strip())


def _client_for(addon, url, terminal):
    from ..ippay import IPpayClient

    return IPpayClient(url, terminal, connect_timeout=addon.settings["IPPAY_CONNECT_TIMEOUT"],
                       read_timeout=min(15.0, addon.settings["IPPAY_READ_TIMEOUT"]))


def _payment_methods(addon):
    try:
        return [m for m in addon.splynx.list_payment_methods()]
    except SplynxError:
        return None


@bp.route("/settings", methods=["GET", "POST"])
@admin_required
def settings(admin_id):
    addon = _addon()
    methods = _payment_methods(addon)
    errors, saved = {}, False
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in (
            "terminal_id", "gateway_mode", "gateway_url", "payment_method_id",
            "payment_account_id", "statement_grouping", "refill_min", "refill_max",
            "charge_concurrency", "language")}
        values, errors = ss.validate_form(
            form, None if methods is None else {m.id for m in methods})
        if not errors:
            try:
                ss.save(addon, values)
                audit.record(addon, admin_id, "settings_saved", "module config",
                             **{k: values[k] for k in ss.EDITABLE_KEYS})
                saved = True
                flash("Settings saved.", "success")
                return redirect(url_for("admin.settings"))
            except SplynxError as exc:
                errors["_form"] = f"Splynx did not store the settings: {exc}. Nothing was saved."
    else:
        addon.module_settings.invalidate()
        form = ss.form_defaults(addon.module_settings.get(), addon.settings)
    url, terminal, source = ss.effective_gateway(addon.module_settings.get(), addon.settings)
    return render_template("admin/settings.html", form=form, errors=errors, saved=saved,
                           methods=methods, modes=ss.GATEWAY_MODES, gateway_urls=ss.GATEWAY_URLS,
                           languages=ss.LANGUAGES, groupings=ss.STATEMENT_GROUPINGS,
                           status=_status(addon), effective=(url, terminal, source),
                           concurrency_range=ss.CONCURRENCY_RANGE), 400 if errors else 200


@bp.route("/settings/test-gateway", methods=["POST"])
@admin_required
def test_gateway(admin_id):
    """PING the gateway as typed on the form (before saving), or as saved."""
    addon = _addon()
    mode = request.form.get("gateway_mode", "")
    terminal = (request.form.get("terminal_id") or "").strip()
    url = None
    if mode in ss.GATEWAY_URLS:
        url = ss.GATEWAY_URLS[mode]
    elif mode == "custom":
        url = (request.form.get("gateway_url") or "").strip()
        problem = ss.gateway_url_problem(url)
        if problem:
            return jsonify(ok=False, message=problem)
    if url and not terminal:
        return jsonify(ok=False, message="Enter the Terminal ID first.")
    ok, message = _ping(addon, url, terminal) if url else _ping(addon)
    audit.record(addon, admin_id, "gateway_tested", url or "saved settings", ok=ok)
    return jsonify(ok=ok, message=message)


# --- charge runs ------------------------------------------------------------------------

_FILTER_KEYS = ("date_from", "date_to", "customer_ids", "partner_id", "min_total", "max_total")


@bp.route("/charge", methods=["GET"])
@admin_required
def charge(admin_id):
    form = {k: request.args.get(k, "") for k in _FILTER_KEYS}
    return render_template("admin/charge.html", form=form, preview=None, error=None)


def _previewed(addon, form):
    """(period_from, period_to, filters, summary) of the posted period, or the page that
    says why there is none."""
    try:
        period_from, period_to, filters = charging.parse_request(form)
        return (period_from, period_to, filters,
                charging.preview(addon, period_from, period_to, filters)), None
    except charging.PeriodError as exc:
        return None, (render_template("admin/charge.html", form=form, preview=None,
                                      error=str(exc)), 400)
    except SplynxError as exc:
        return None, (render_template("admin/charge.html", form=form, preview=None,
                                      error=f"Splynx did not answer: {exc}"), 503)


@bp.route("/charge/preview", methods=["POST"])
@admin_required
def charge_preview(admin_id):
    form = {k: request.form.get(k, "") for k in _FILTER_KEYS}
    previewed, refusal = _previewed(_addon(), form)
    if refusal:
        return refusal
    summary = previewed[3]
    return render_template("admin/charge.html", form=form, preview=summary,
                           error=_nothing_to_charge(*previewed))


def _nothing_to_charge(period_from, period_to, filters, summary):
    if not summary["invoices"]:
        return (f"There are no unpaid invoices dated {period_from} to {period_to}"
                f"{' matching the filters' if filters else ''}. Nothing to charge; "
                "no run was started.")
    if not summary["chargeable"]:
        return ("None of these customers has a saved card. Nothing to charge; "
                "no run was started.")
    return None


@bp.route("/charge/confirm", methods=["POST"])
@admin_required
def charge_confirm(admin_id):
    addon = _addon()
    form = {k: request.form.get(k, "") for k in _FILTER_KEYS}
    previewed, refusal = _previewed(addon, form)
    if refusal:
        return refusal
    period_from, period_to, filters, summary = previewed
    if not summary["chargeable"]:
        return render_template("admin/charge.html", form=form, preview=summary,
                               error=_nothing_to_charge(*previewed)), 400
    try:
        run = charging.create_run(addon, admin_id=admin_id, period_from=period_from,
                                  period_to=period_to, filters=filters, summary=summary)
    except charging.RunRefused as exc:
        return render_template("admin/charge.html", form=form, preview=summary, error=str(exc),
                               existing=exc.run), 409
    audit.record(addon, admin_id, "run_started", f"run {run.id}", period_from=period_from,
                 period_to=period_to, filters=filters, invoices=summary["chargeable"],
                 total_cents=summary["chargeable_cents"])
    return redirect(url_for("admin.run", run_id=run.id))


@bp.route("/runs")
@admin_required
def runs(admin_id):
    addon = _addon()
    rows = [(run, charging.progress(addon, run.id)) for run in charging.list_runs(addon)]
    return render_template("admin/runs.html", rows=rows)


@bp.route("/runs/<int:run_id>")
@admin_required
def run(admin_id, run_id):
    addon = _addon()
    the_run = charging.get_run(addon, run_id)
    if the_run is None:
        abort(404)
    status = request.args.get("status") or None
    page = max(1, request.args.get("page", 1, type=int))
    size = 200
    rows = charging.items(addon, run_id, status=status, offset=(page - 1) * size, limit=size + 1)
    return render_template("admin/run.html", run=the_run, progress=charging.progress(addon, run_id),
                           items=rows[:size], more=len(rows) > size, page=page, status=status,
                           statuses=[s.value for s in ItemStatus],
                           filters=json.loads(the_run.filters or "{}"))


@bp.route("/runs/<int:run_id>/progress")
@admin_required
def run_progress(admin_id, run_id):
    data = charging.progress(_addon(), run_id)
    if data is None:
        return jsonify(error="no such run"), 404
    response = jsonify(data)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/runs/<int:run_id>/csv")
@admin_required
def run_csv(admin_id, run_id):
    addon = _addon()
    if charging.get_run(addon, run_id) is None:
        abort(404)
    audit.record(addon, admin_id, "run_downloaded", f"run {run_id}")

    def generate():
        for row in charging.csv_rows(addon, run_id):
            buffer = io.StringIO()
            csv.writer(buffer).writerow(row)
            yield buffer.getvalue()

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="ippay-charge-run-{run_id}.csv"'})


@bp.route("/runs/<int:run_id>/rerun", methods=["POST"])
@admin_required
def run_rerun(admin_id, run_id):
    addon = _addon()
    try:
        new = charging.rerun(addon, run_id, admin_id)
    except charging.RunRefused as exc:
        flash(str(exc), "danger")
        return redirect(url_for("admin.run", run_id=run_id))
    audit.record(addon, admin_id, "run_rerun", f"run {new.id}", parent=run_id,
                 invoices=new.preview_invoices)
    return redirect(url_for("admin.run", run_id=new.id))


# --- the transaction log ----------------------------------------------------------------

@bp.route("/transactions")
@admin_required
def transactions(admin_id):
    addon = _addon()
    args = {k: request.args.get(k, "").strip() for k in ("customer_id", "date_from", "date_to",
                                                         "outcome", "channel")}
    error = None
    filters = {}
    try:
        if args["customer_id"]:
            if not args["customer_id"].isdigit():
                raise charging.PeriodError("The customer must be a customer ID (a number).")
            filters["customer_id"] = int(args["customer_id"])
        if args["date_from"]:
            filters["date_from"] = charging.parse_date(args["date_from"], "first")
        if args["date_to"]:
            filters["date_to"] = charging.parse_date(args["date_to"], "last")
        if args["outcome"]:
            filters["outcome"] = AttemptStatus(args["outcome"]).value
        if args["channel"]:
            filters["channel"] = args["channel"][:16]
    except (charging.PeriodError, ValueError) as exc:
        error = str(exc) if isinstance(exc, charging.PeriodError) else "Unknown outcome."
        filters = {}
    page = max(1, request.args.get("page", 1, type=int))
    rows, more, refunded = refunds.search_attempts(addon, offset=(page - 1) * 100, limit=100,
                                                   **filters)
    return render_template("admin/transactions.html", rows=rows, more=more, page=page,
                           refunded=refunded, args=args, error=error,
                           outcomes=[s.value for s in AttemptStatus])


@bp.route("/transactions/<int:attempt_id>")
@admin_required
def transaction(admin_id, attempt_id):
    addon = _addon()
    attempt = refunds.get_attempt(addon, attempt_id)
    if attempt is None:
        abort(404)
    return render_template("admin/transaction.html", attempt=attempt,
                           refunds=refunds.refunds_of(addon, attempt_id),
                           refundable=refunds.refundable_cents(addon, attempt),
                           can_void=refunds.can_void(addon, attempt))


@bp.route("/transactions/<int:attempt_id>/void", methods=["POST"])
@admin_required
def transaction_void(admin_id, attempt_id):
    addon = _addon()
    try:
        row = refunds.void(addon, attempt_id, admin_id, request.form.get("reason"))
    except refunds.RefundError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("admin.transaction", attempt_id=attempt_id))
    audit.record(addon, admin_id, "void", f"attempt {attempt_id}", refund=row.id,
                 status=row.status, amount_cents=row.amount_cents)
    _flash_result(row)
    return redirect(url_for("admin.transaction", attempt_id=attempt_id))


@bp.route("/transactions/<int:attempt_id>/refund", methods=["POST"])
@admin_required
def transaction_refund(admin_id, attempt_id):
    addon = _addon()
    try:
        amount = parse_amount(request.form.get("amount"))
        row = refunds.refund(addon, attempt_id, amount, admin_id, request.form.get("reason"))
    except (AmountError, refunds.RefundError) as exc:
        flash(str(exc), "danger")
        return redirect(url_for("admin.transaction", attempt_id=attempt_id))
    audit.record(addon, admin_id, "refund", f"attempt {attempt_id}", refund=row.id,
                 status=row.status, amount_cents=row.amount_cents)
    _flash_result(row)
    return redirect(url_for("admin.transaction", attempt_id=attempt_id))


def _flash_result(row):
    what = "Void" if row.kind == "void" else f"Refund of {format_cents(row.amount_cents)}"
    if row.status == "posted":
        flash(f"{what} done and recorded in Splynx.", "success")
    elif row.status in ("approved", "post_pending"):
        flash(f"{what} approved by the gateway; recording it in Splynx will be retried.",
              "warning")
    elif row.status == "declined":
        flash(f"{what} declined by the gateway: {row.action_code} {row.response_text}.", "danger")
    elif row.status == "unknown":
        flash(f"{what}: the gateway's answer is not known yet; it will be asked again.", "warning")
    else:
        flash(f"{what} failed: {row.message or row.last_error}", "danger")


# --- one invoice, from Splynx's admin invoice lists (action link) -----------------------------

def _admin_invoice(addon, number):
    """The invoice with this number, whoever's it is, or None."""
    number = (number or "").strip()
    if not number or len(number) > 40:
        return None
    invoice = addon.splynx.find_invoice_by_number(number)
    return None if invoice is None or invoice.status == "deleted" else invoice


@bp.route("/invoice", methods=["GET", "POST"])
@admin_required
def invoice(admin_id):
    """An invoice as staff see it from Splynx: pay it with the customer's saved card (the
    customer asked by phone, say), and the direct pay links to send the customer."""
    from ..portal.forms import new_request_key
    from ..services import cards as card_service, payments

    addon = _addon()
    try:
        document = _admin_invoice(addon, request.values.get("item_id"))
    except SplynxError as exc:
        return render_template("admin/invoice.html", problem=str(exc)), 503
    if document is None:
        return render_template("admin/invoice.html", problem=None, document=None), 404
    saved = [c for c in card_service.list_cards(addon, document.customer_id) if not c.is_expired()]
    card = saved[0] if saved else None  # the default card comes first
    result = error = None
    if request.method == "POST" and card is not None:
        try:
            result = payments.pay_document(
                addon, "invoice", document.customer_id, document.number, card_id=card.id,
                request_key=request.form.get("request_key") or None, channel="admin",
                admin_id=admin_id)
        except payments.PaymentError as exc:
            error = str(exc)
        else:
            audit.record(addon, admin_id, "invoice_paid", f"invoice {document.number}",
                         attempt=result.id, status=result.status)
            document = addon.splynx.get_invoice(document.id)
    links = [payments.direct_link(addon, "invoice", document, by=by) for by in ("id", "number")]
    return render_template("admin/invoice.html", problem=None, document=document, card=card,
                           result=result, error=error, links=links,
                           request_key=new_request_key())
