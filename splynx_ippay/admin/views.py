"""Views of the staff pages. Every one needs a Splynx administrator session
(:func:`~splynx_ippay.identity.admin_required`); settings, void and refund also need an
allowed Splynx role. Every action is recorded with the administrator's id (services/audit.py).
Views call services only.

Every action that moves money is asked twice: the first POST renders a confirmation step
(what will happen, to whom, how much) whose "Yes" button sends the same form again with
``confirm=yes``; only that second POST acts. It needs no JavaScript, and the server is what
checks it. A charge run's confirmation is its preview: the Confirm button carries the count
and total previewed, and a run starts only if they are still what Splynx says.
"""

import csv
import datetime
import io

from flask import (Response, abort, current_app, flash, jsonify, redirect, render_template,
                   request, stream_with_context, url_for)

from ..identity import admin_required
from ..ippay import GatewayError
from ..ippay.ach import RETURN_CODES
from ..messages import UserError
from ..models import Channel, RefundKind
from ..money import format_cents
from ..services import (ach_returns, audit, bank_accounts, cards as card_service, documents,
                        fees, journal, limits, payments)
from ..services import refunds, request_keys, transactions as transaction_log
from ..services.charge_runs import runs as charge_runs, selection
from ..services.settings import CONCURRENCY_RANGE, FEE_CATEGORY_NAME, PARTNER_KEYS
from ..splynx import SplynxError
from . import bp
from .forms import (GATEWAY_MODES, LIMIT_FIELDS, ChargeForm, PartnerSettingsForm, RefundForm,
                    SettingsForm, TransactionFilterForm, VoidForm, partner_data, settings_data,
                    FEE_FIELDS)

#: Rows per page of the long lists.
PAGE_SIZE = 100
MAX_PAGE = 10_000
#: Where a customer is in Splynx's admin pages.
CUSTOMER_PAGE = "/admin/customers/view?id={id}"


def _ctx():
    return current_app.extensions["splynx_ippay"]


def _directory():
    return current_app.extensions["splynx_ippay_directory"]


def _page():
    return min(MAX_PAGE, max(1, request.args.get("page", 1, type=int)))


def _confirmed():
    """True on the second POST of a money action (the confirmation's "Yes")."""
    return request.form.get("confirm") == "yes"


def _names(customers=(), admins=()):
    """``(customer names, administrator names)``: ``{id: Name}`` each, ``#id`` where Splynx
    did not say in time."""
    ctx, directory = _ctx(), _directory()
    return (directory.customers(ctx, customers) if customers else {},
            directory.administrators(ctx, admins) if admins else {})


@bp.app_template_global()
def customer_url(customer_id):
    """The customer's page in Splynx's admin area."""
    return CUSTOMER_PAGE.format(id=int(customer_id))


def _confirm_page(*, title, rows, question, yes, action, back, hidden=(), modal=False):
    """The confirmation step of a money action (see the module's docstring)."""
    return render_template("admin/confirm.html", title=title, rows=rows, question=question,
                           yes=yes, action=action, back=back, hidden=list(hidden), modal=modal)


@bp.route("/")
@admin_required
def index(admin_id):
    return redirect(url_for("admin.runs"))


# --- module settings --------------------------------------------------------------------

def _gateway_status(ctx, partner_settings=None):
    """(ok, words, (url, terminal)) of the gateway a partner (default: the default) uses
    now: a PING of its terminal."""
    config = ctx.module_settings.current()
    try:
        terminal = ctx.gateways.terminal_for(partner_settings or config.default, config.read_ok)
        client = ctx.gateways.client(terminal)
        result = client.ping()
    except GatewayError as exc:
        return False, f"The gateway did not answer: {exc}", None
    where = (client.url, terminal.terminal_id)
    if result.approved:
        return True, f"The gateway answers PING for terminal {terminal.terminal_id}.", where
    return False, (f"The gateway refused terminal {terminal.terminal_id}: {result.action_code} "
                   f"{result.response_text} {result.err_msg or ''}".strip()), where


def _splynx_status(ctx):
    try:
        ctx.splynx.check_api()
        return True, "Splynx answers and accepts the add-on's API key."
    except SplynxError as exc:
        return False, f"Splynx does not answer as it should: {exc}"


def _choices(ctx, form):
    """Fill the selects from Splynx; False when Splynx could not be read."""
    account = getattr(form, "payment_account_id", None)
    category = getattr(form, "fee_category_id", None)
    try:
        methods = ctx.splynx.list_payment_methods()
        accounts = ctx.splynx.list_payment_account_definitions() if account else []
        categories = ctx.splynx.list_transaction_categories() if category else []
    except SplynxError:
        for select_ in (form.payment_method_id, form.bank_payment_method_id, account, category):
            if select_ is not None:
                select_.choices = [(select_.data or 0, "(Splynx is not answering)")]
        return False
    form.payment_method_id.choices = [(m.id, m.name) for m in methods if m.is_active]
    form.bank_payment_method_id.choices = list(form.payment_method_id.choices)
    if account:
        account.choices = [(0, "(do not show saved cards in Splynx)")] + [
            (a.id, a.title) for a in accounts]
    if category:
        category.choices = [(0, f'(the category named "{FEE_CATEGORY_NAME}")')] + [
            (c.id, c.name) for c in categories]
    return True


def _settings_partner(ctx):
    """``(partner id or None, {id: Name} of every partner or None)`` of the settings page."""
    partners = _directory().partners(ctx)
    partner_id = request.args.get("partner", type=int) or None
    if partner_id is not None and not 0 < partner_id < 2**31:
        abort(404)
    if partner_id is not None and partners is not None and partner_id not in partners:
        abort(404)
    return partner_id, partners


@bp.route("/settings", methods=["GET", "POST"])
@admin_required(allowed_role=True)
def settings(admin_id):
    """The module settings: the Default's, or with ``?partner=<id>`` what one Splynx partner
    sets apart from them (terminal, gateway, payment method: ``per_partner_options``)."""
    ctx = _ctx()
    config = ctx.module_settings.current()
    partner_id, partners = _settings_partner(ctx)
    own = config.for_partner(partner_id)
    if partner_id is None:
        form = SettingsForm(data=None if request.method == "POST" else settings_data(config))
    else:
        form = PartnerSettingsForm(data=None if request.method == "POST" else partner_data(own))
    splynx_ok = _choices(ctx, form)
    error = None
    if request.method == "POST" and form.validate_on_submit():
        if not splynx_ok:
            error = "Splynx is not answering, so nothing was saved. Try again in a moment."
        else:
            values = form.values()
            try:
                ctx.module_settings.save(values, partner_id=partner_id)
            except SplynxError as exc:
                error = f"Splynx did not store the settings: {exc}. Nothing was saved."
            else:
                target = "module config" + (f", partner {partner_id}" if partner_id else "")
                audit.record(ctx, admin_id, "settings_saved", target, **values)
                whose = f" for {partners[partner_id]}" if partner_id and partners else ""
                flash(f"Settings saved{whose}. Every add-on process uses them from now on.",
                      "success")
                return redirect(url_for("admin.settings", partner=partner_id))
    ok, words, where = _gateway_status(ctx, own)
    status = {"splynx": _splynx_status(ctx), "gateway": (ok, words)}
    # Fields of a partner whose stored value is not the Default's are marked, as in Splynx.
    differs = {key for key in PARTNER_KEYS
               if partner_id and getattr(own, key) != getattr(config.default, key)}
    failed = request.method == "POST" and (form.errors or error)
    return render_template("admin/settings.html", form=form, error=error, status=status,
                           where=where, custom_url=ctx.gateways.custom_url,
                           problems=config.problems, modes=GATEWAY_MODES,
                           limit_fields=LIMIT_FIELDS, concurrency_range=CONCURRENCY_RANGE,
                           fee_fields=FEE_FIELDS,
                           partner_id=partner_id, partners=partners, differs=differs,
                           own_partners=set(config.partners),
                           bootstrap_terminal=ctx.settings["IPPAY_TERMINAL_ID"],
                           default=partner_data(config.default)), 400 if failed else 200


@bp.route("/settings/test-gateway", methods=["POST"])
@admin_required(allowed_role=True)
def test_gateway(admin_id):
    """PING the gateway the add-on is configured to use for the Default or ``?partner=``
    (never an address from the form)."""
    ctx = _ctx()
    partner_id = request.args.get("partner", type=int) or None
    config = ctx.module_settings.current()
    ok, message, where = _gateway_status(ctx, config.for_partner(partner_id))
    audit.record(ctx, admin_id, "gateway_tested", where[0] if where else "configured", ok=ok,
                 partner=partner_id)
    return jsonify(ok=ok, message=message)


@bp.route("/blocked")
@admin_required
def blocked(admin_id):
    """Card tries the card-testing limits refused, newest first."""
    rows = limits.blocked(_ctx())
    customers, _ = _names(customers={t.customer_id for t in rows if t.customer_id})
    return render_template("admin/blocked.html", rows=rows, customers=customers)


# --- charge runs ------------------------------------------------------------------------

def _charge_form(formdata=None, **kwargs):
    form = ChargeForm(formdata, **kwargs) if formdata is not None else ChargeForm(**kwargs)
    form.partner_choices(_directory().partners(_ctx()))
    return form


def _charge_page(form, summary=None, error=None, status=200, **extra):
    customers = {}
    if summary and summary.get("without_card"):
        customers, _ = _names(customers={row["customer_id"] for row in summary["without_card"]})
    return render_template("admin/charge.html", form=form, preview=summary, error=error,
                           customers=customers, fee=_ctx().module_settings.current().fees,
                           fee_rate=fees.format_rate, **extra), status


@bp.route("/charge", methods=["GET"])
@admin_required
def charge(admin_id):
    return _charge_page(_charge_form(request.args, meta={"csrf": False}))


def _previewed(ctx, form):
    """(summary, None) of the posted period, or (None, the page that says why there is none)."""
    if not form.validate_on_submit():
        return None, _charge_page(form, error=_errors_in_words(form), status=400)
    try:
        return selection.preview(ctx, form.date_from.data, form.date_to.data,
                                 form.filters()), None
    except SplynxError as exc:
        return None, _charge_page(form, error=f"Splynx did not answer: {exc}", status=503)


def _errors_in_words(form):
    """Every field error of ``form`` as one sentence list (the first error of each field)."""
    seen = []
    for errors in form.errors.values():
        for error in errors:
            if error not in seen:
                seen.append(error)
    return " ".join(seen) or "Some fields need attention."


def _nothing_to_charge(form, summary):
    if not summary["invoices"]:
        return (f"There are no unpaid invoices dated {form.date_from.data} to "
                f"{form.date_to.data}{' matching the filters' if form.filters().as_json() else ''}. "
                "Nothing to charge; no run was started.")
    if not summary["chargeable"]:
        return "None of these customers has a saved card. Nothing to charge; no run was started."
    return None


@bp.route("/charge/preview", methods=["POST"])
@admin_required
def charge_preview(admin_id):
    form = _charge_form()
    summary, refusal = _previewed(_ctx(), form)
    if refusal:
        return refusal
    return _charge_page(form, summary, error=_nothing_to_charge(form, summary))


@bp.route("/charge/confirm", methods=["POST"])
@admin_required
def charge_confirm(admin_id):
    """Start the run previewed, if the invoices are still those previewed (count, total)."""
    ctx = _ctx()
    form = _charge_form()
    summary, refusal = _previewed(ctx, form)
    if refusal:
        return refusal
    if not summary["chargeable"]:
        return _charge_page(form, summary, error=_nothing_to_charge(form, summary), status=400)
    expected = (request.form.get("expect_invoices", type=int),
                request.form.get("expect_cents", type=int))
    if expected != (summary["chargeable"], summary["chargeable_cents"]):
        words = ("Check the preview, then confirm the charge." if expected == (None, None) else
                 "The invoices changed since the preview: check the new preview and confirm "
                 "again. No run was started.")
        return _charge_page(form, summary, error=words, status=409)
    filters = form.filters()
    try:
        run = charge_runs.create_run(ctx, admin_id=admin_id, period_from=form.date_from.data,
                                     period_to=form.date_to.data, filters=filters,
                                     summary=summary, with_fees=bool(form.with_fees.data))
    except charge_runs.RunRefused as exc:
        return _charge_page(form, summary, error=str(exc), status=409, existing=exc.run)
    audit.record(ctx, admin_id, "run_started", f"run {run.id}", period_from=run.period_from,
                 period_to=run.period_to, filters=filters.as_json(),
                 invoices=summary["chargeable"], total_cents=summary["chargeable_cents"],
                 with_fees=run.with_fees)
    return redirect(url_for("admin.run", run_id=run.id))


@bp.route("/runs")
@admin_required
def runs(admin_id):
    ctx = _ctx()
    listed = charge_runs.list_runs(ctx)
    rows = [(run, charge_runs.progress(ctx, run.id)) for run in listed]
    _, admins = _names(admins={run.admin_id for run in listed if run.admin_id})
    return render_template("admin/runs.html", rows=rows, admins=admins,
                           state_words=charge_runs.STATE_WORDS)


@bp.route("/runs/<id:run_id>")
@admin_required
def run(admin_id, run_id):
    ctx = _ctx()
    the_run = charge_runs.get_run(ctx, run_id)
    if the_run is None:
        abort(404)
    show = request.args.get("status") or None
    if show not in charge_runs.ITEM_FILTERS:
        show = None
    page = _page()
    size = 200
    rows = charge_runs.items(ctx, run_id, statuses=charge_runs.ITEM_FILTERS[show][1] if show
                             else None, offset=(page - 1) * size, limit=size + 1)
    filters = charge_runs.filters_of(the_run)
    customers, admins = _names(customers={i.customer_id for i in rows[:size]}
                               | set(filters.customer_ids),
                               admins={the_run.admin_id} - {None})
    return render_template("admin/run.html", run=the_run,
                           progress=charge_runs.progress(ctx, run_id), items=rows[:size],
                           more=len(rows) > size, page=page, status=show,
                           item_filters=charge_runs.ITEM_FILTERS,
                           item_words=charge_runs.ITEM_WORDS, filters=filters,
                           customers=customers, admins=admins,
                           partners=_directory().partners(ctx) or {},
                           gateway_words=transaction_log.gateway_words)


@bp.route("/runs/<id:run_id>/progress")
@admin_required
def run_progress(admin_id, run_id):
    data = charge_runs.progress(_ctx(), run_id)
    if data is None:
        return jsonify(error="no such run"), 404
    return jsonify(data)


@bp.route("/runs/<id:run_id>/csv")
@admin_required
def run_csv(admin_id, run_id):
    """The run's items as CSV: UTF-8 with a byte-order mark, so that a spreadsheet reads
    "Visa •••• 1111" and accented names as they are."""
    ctx = _ctx()
    if charge_runs.get_run(ctx, run_id) is None:
        abort(404)
    audit.record(ctx, admin_id, "run_downloaded", f"run {run_id}")
    directory = _directory()

    def names(customer_ids):
        return directory.customers(ctx, customer_ids, wait=10.0)

    def generate():
        yield "\ufeff"
        for row in charge_runs.csv_rows(ctx, run_id, names=names):
            buffer = io.StringIO()
            csv.writer(buffer).writerow(row)
            yield buffer.getvalue()

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="ippay-charge-run-{run_id}.csv"'})


@bp.route("/runs/<id:run_id>/rerun", methods=["POST"])
@admin_required
def run_rerun(admin_id, run_id):
    """A new run of the run's declined and failed invoices, once confirmed."""
    ctx = _ctx()
    the_run = charge_runs.get_run(ctx, run_id)
    if the_run is None:
        abort(404)
    if not _confirmed():
        counts = charge_runs.counts(ctx, run_id)
        again = [counts[s] for s in ("declined", "error")]
        number, cents = sum(c["count"] for c in again), sum(c["cents"] for c in again)
        if number and the_run.state.value in ("done", "cancelled"):
            return _confirm_page(
                title=f"Charge again: run #{run_id}",
                rows=[("Invoices", f"{number} declined or failed"),
                      ("Amount, at most", format_cents(cents)),
                      ("Invoices dated", f"{the_run.period_from} – {the_run.period_to}")],
                question=(f"Charge the {number} declined and failed invoices of run #{run_id} "
                          "again, to the customers' saved cards? Each invoice is read again "
                          "from Splynx first: one paid meanwhile is skipped."),
                yes=f"Yes, charge {number} invoices again",
                action=url_for("admin.run_rerun", run_id=run_id),
                back=url_for("admin.run", run_id=run_id))
    try:
        new = charge_runs.rerun(ctx, run_id, admin_id)
    except charge_runs.RunRefused as exc:
        flash(str(exc), "danger")
        return redirect(url_for("admin.run", run_id=run_id))
    audit.record(ctx, admin_id, "run_rerun", f"run {new.id}", parent=run_id,
                 invoices=new.preview_invoices)
    return redirect(url_for("admin.run", run_id=new.id))


# --- the transaction log ----------------------------------------------------------------

@bp.route("/transactions")
@admin_required
def transactions(admin_id):
    form = TransactionFilterForm(request.args)
    error = None
    filters = {}
    if request.args and not form.validate():
        error = _errors_in_words(form)
    else:
        filters = form.filters()
    page = _page()
    rows, more, refunded = transaction_log.search(_ctx(), offset=(page - 1) * PAGE_SIZE,
                                                  limit=PAGE_SIZE, **filters)
    customers, admins = _names(customers={a.customer_id for a in rows},
                               admins={a.admin_id for a in rows if a.admin_id})
    return render_template("admin/transactions.html", rows=rows, more=more, page=page,
                           refunded=refunded, form=form, error=error, customers=customers,
                           admins=admins, outcome_words=transaction_log.OUTCOME_WORDS,
                           channel_words=transaction_log.CHANNEL_WORDS,
                           kind_words=transaction_log.KIND_WORDS,
                           gateway_words=transaction_log.gateway_words)


def _attempt_or_404(ctx, attempt_id):
    attempt = journal.load(ctx, attempt_id)
    if attempt is None:
        abort(404)
    return attempt


def _about(attempt, customers):
    """The rows a confirmation of a void or refund shows about the payment."""
    return [("Transaction", attempt.transaction_id),
            ("Customer", f"{customers[attempt.customer_id]} (#{attempt.customer_id})"),
            ("Paid", f"{format_cents(attempt.charged_cents)} on "
                     f"{attempt.created_at:%Y-%m-%d %H:%M} UTC"
                     + (f" ({format_cents(attempt.amount_cents)} and a service fee of "
                        f"{format_cents(attempt.fee_total_cents)})"
                        if attempt.fee_total_cents else "")),
            ("Card", attempt.masked_card)]


@bp.route("/transactions/<id:attempt_id>")
@admin_required
def transaction(admin_id, attempt_id):
    ctx = _ctx()
    attempt = _attempt_or_404(ctx, attempt_id)
    refund_rows = refunds.refunds_of(ctx, attempt_id)
    refundable = refunds.refundable_cents(ctx, attempt)
    can_void = refunds.can_void(ctx, attempt)
    customers, admins = _names(customers=[attempt.customer_id],
                               admins={attempt.admin_id} | {r.admin_id for r in refund_rows})
    return render_template(
        "admin/transaction.html", attempt=attempt, refunds=refund_rows, refundable=refundable,
        can_void=can_void, form=RefundForm(), void_form=VoidForm(), customers=customers,
        admins=admins, history=transaction_log.history(attempt, refund_rows),
        money_state=transaction_log.money_state(attempt, refund_rows, refundable, can_void),
        outcome_words=transaction_log.OUTCOME_WORDS, channel_words=transaction_log.CHANNEL_WORDS,
        kind_words=transaction_log.KIND_WORDS, refund_words=transaction_log.REFUND_WORDS,
        gateway_words=transaction_log.gateway_words, return_codes=RETURN_CODES)


@bp.route("/transactions/<id:attempt_id>/return", methods=["POST"])
@admin_required(allowed_role=True)
def transaction_return(admin_id, attempt_id):
    """Record that the customer's bank returned a bank debit (R01 …): the Splynx payment is
    deleted, the invoice due again, the customer told (services/ach_returns.py)."""
    ctx = _ctx()
    attempt = _attempt_or_404(ctx, attempt_id)
    code = request.form.get("code", "")
    try:
        day = datetime.date.fromisoformat(request.form.get("returned_on") or "")
    except ValueError:
        day = ctx.today()
    try:
        row = ach_returns.record_return(ctx, attempt.id, code, returned_on=day,
                                        note=f"recorded by admin {admin_id}")
    except UserError as exc:
        flash(str(exc), "danger")
    else:
        audit.record(ctx, admin_id, "ach_return", f"attempt {attempt.id}", code=code,
                     status=row.status.value)
        if row.status.value == "returned":
            flash(f"Return {code} recorded: the Splynx payment was deleted and the customer "
                  "told.", "success")
        else:
            flash(f"Return {code} recorded; Splynx did not answer, so the payment will be "
                  "deleted by the next reconciliation.", "warning")
    return redirect(url_for("admin.transaction", attempt_id=attempt.id))


@bp.route("/ach-returns", methods=["GET", "POST"])
@admin_required(allowed_role=True)
def ach_returns_import(admin_id):
    """Import IPpay's returns report (CSV, docs/ach.md); the column mapping may be given."""
    ctx = _ctx()
    result = error = None
    columns_text = request.form.get("columns", "")
    if request.method == "POST":
        upload = request.files.get("report")
        try:
            columns = ach_returns.parse_columns(columns_text)
            text = upload.read().decode("utf-8") if upload else ""
        except (ValueError, UnicodeDecodeError) as exc:
            error = f"The report could not be read: {exc}"
        else:
            if not text.strip():
                error = "Choose the returns report (a CSV file)."
            else:
                result = ach_returns.import_csv(ctx, text, columns)
                audit.record(ctx, admin_id, "ach_returns_import", "returns report",
                             recorded=len(result.recorded), problems=len(result.problems))
    return render_template("admin/ach_returns.html", result=result, error=error,
                           columns=columns_text, defaults=ach_returns.DEFAULT_COLUMNS), \
        400 if error else 200


@bp.route("/customers/<id:customer_id>/bank-accounts/written", methods=["POST"])
@admin_required(allowed_role=True)
def record_written_authorisation(admin_id, customer_id):
    """Staff record a written (signed) debit authorisation of a customer's bank account:
    debits under it use SEC PPD (a consumer) or CCD (a business)."""
    ctx = _ctx()
    reference = (request.form.get("reference") or "").strip()
    account_id = request.form.get("account_id", type=int)
    if not reference:
        flash("Enter the signed form's reference (its date or number).", "danger")
    else:
        auth = bank_accounts.record_written(
            ctx, customer_id, account_id, admin_id=admin_id,
            business=request.form.get("business") == "1", reference=reference)
        if auth is None:
            abort(404)
        audit.record(ctx, admin_id, "ach_written_authorisation", f"customer {customer_id}",
                     account=account_id, sec=auth.sec_code)
        flash(f"Written authorisation recorded (SEC {auth.sec_code}).", "success")
    return redirect(url_for("admin.customer_bank_accounts", customer_id=customer_id))


@bp.route("/customers/<id:customer_id>/bank-accounts")
@admin_required
def customer_bank_accounts(admin_id, customer_id):
    """A customer's bank accounts and every debit authorisation they gave (what was
    accepted, when, from where)."""
    ctx = _ctx()
    customers, _ = _names(customers=[customer_id])
    auths = bank_accounts.authorizations_of(ctx, customer_id)
    _, admins = _names(admins={a.admin_id for a in auths if a.admin_id})
    return render_template("admin/bank_accounts.html", customer_id=customer_id,
                           customers=customers, admins=admins,
                           accounts=bank_accounts.list_accounts(ctx, customer_id),
                           authorizations=auths)


def _money_form(attempt_id, form_class):
    """``(ctx, attempt, form, the transaction's page)`` of a void or refund POST."""
    ctx = _ctx()
    return (ctx, _attempt_or_404(ctx, attempt_id), form_class(),
            url_for("admin.transaction", attempt_id=attempt_id))


@bp.route("/transactions/<id:attempt_id>/void", methods=["POST"])
@admin_required(allowed_role=True)
def transaction_void(admin_id, attempt_id):
    ctx, attempt, form, back = _money_form(attempt_id, VoidForm)
    if not form.validate_on_submit():
        flash(_errors_in_words(form), "danger")
        return redirect(back)
    if not _confirmed() and refunds.can_void(ctx, attempt):
        customers, _ = _names(customers=[attempt.customer_id])
        payment = (f" and deletes the Splynx payment #{attempt.splynx_payment_id}"
                   if attempt.splynx_payment_id else " and deletes its Splynx payment")
        return _confirm_page(
            title=f"Void transaction {attempt.transaction_id}",
            rows=_about(attempt, customers) + [("Reason", form.reason.data or "(none given)")],
            question=(f"Void this payment of {format_cents(attempt.charged_cents)}? The void "
                      f"cancels the sale at the gateway (no money moves){payment}, so "
                      + ("the customer's balance goes back down." if attempt.kind == "refill"
                         else f"the {attempt.kind.value} is unpaid again.")),
            yes=f"Yes, void {format_cents(attempt.charged_cents)}",
            action=url_for("admin.transaction_void", attempt_id=attempt_id), back=back,
            hidden=[("reason", form.reason.data or "")])
    return _give_back(ctx, admin_id, attempt_id, "void", lambda: refunds.void(
        ctx, attempt_id, admin_id, form.reason.data))


@bp.route("/transactions/<id:attempt_id>/refund", methods=["POST"])
@admin_required(allowed_role=True)
def transaction_refund(admin_id, attempt_id):
    ctx, attempt, form, back = _money_form(attempt_id, RefundForm)
    if not form.validate_on_submit():
        flash(_errors_in_words(form), "danger")
        return redirect(back)
    cents = form.amount.cents
    # More than is left is refused by refunds.refund with the amount that is left: no
    # confirmation for what cannot be done.
    if not _confirmed() and cents <= refunds.refundable_cents(ctx, attempt):
        customers, _ = _names(customers=[attempt.customer_id])
        share = refunds.fee_share_of(ctx, attempt, cents)
        fee_words = (f" and {format_cents(share.total_cents)} of the service fee"
                     if share.total_cents else "")
        return _confirm_page(
            title=f"Refund transaction {attempt.transaction_id}",
            rows=_about(attempt, customers) + [("Refund", format_cents(cents) + fee_words),
                                               ("Reason", form.reason.data or "(none given)")],
            question=(f"Give {format_cents(cents + share.total_cents)} back to "
                      f"{attempt.masked_card}? The gateway "
                      "credits the card, and Splynx books the refund on the customer's "
                      "account (the payment stays)."),
            yes=f"Yes, refund {format_cents(cents)}",
            action=url_for("admin.transaction_refund", attempt_id=attempt_id), back=back,
            hidden=[("amount", form.amount.data), ("reason", form.reason.data or "")])
    return _give_back(ctx, admin_id, attempt_id, "refund", lambda: refunds.refund(
        ctx, attempt_id, cents, admin_id, form.reason.data))


def _give_back(ctx, admin_id, attempt_id, action, call):
    """Run a confirmed void or refund, record it, and say how it went on the transaction."""
    back = url_for("admin.transaction", attempt_id=attempt_id)
    try:
        row = call()
    except refunds.RefundError as exc:
        flash(str(exc), "danger")
        return redirect(back)
    audit.record(ctx, admin_id, action, f"attempt {attempt_id}", refund=row.id,
                 status=row.status.value, amount_cents=row.amount_cents)
    _flash_result(row)
    return redirect(back)


def _flash_result(row):
    what = ("Void" if row.kind == RefundKind.VOID
            else f"Refund of {format_cents(row.amount_cents)}")
    status = row.status.value
    if status == "posted":
        flash(f"{what} done and recorded in Splynx.", "success")
    elif status in ("approved", "post_pending"):
        flash(f"{what} approved by the gateway; recording it in Splynx will be retried.",
              "warning")
    elif status == "declined":
        flash(f"{what} refused by the gateway: "
              f"{transaction_log.gateway_words(row.action_code, row.response_text)}", "danger")
    elif status == "unknown":
        flash(f"{what}: the gateway's answer is not known yet; it will be asked again.", "warning")
    else:
        flash(f"{what} failed: {row.message or row.last_error}", "danger")


# --- one invoice, from Splynx's admin invoice lists (action link) -----------------------------

def _usable_card(ctx, customer_id):
    """``(card, problem)``: the customer's default card (or bank account) if it can be
    charged now, else the reason in staff words (none, expired, debit authorisation
    revoked, saved on another terminal)."""
    methods = bank_accounts.allowed_methods(ctx.module_settings.current())
    # The default payment method comes first.
    saved = [c for c in card_service.list_cards(ctx, customer_id, method=None)
             if c.method.value in methods]
    if not saved:
        return None, "The customer has no saved card. Send them a pay link below."
    if saved[0].is_bank and not saved[0].authorization_id:
        return None, (f"The debit authorisation of the customer's bank account "
                      f"{saved[0].masked} was revoked. Record a written authorisation on "
                      "the customer's bank accounts page, or send them a pay link below.")
    fresh = [c for c in saved if not c.is_expired(ctx.today())]
    if not fresh:
        return None, (f"The customer's saved card {saved[0].masked} has expired. Send them a "
                      "pay link below.")
    card = fresh[0]
    try:
        _, terminal = card_service.customer_terminal(ctx, customer_id)
    except (SplynxError, GatewayError):
        return card, None  # paying says why it cannot (Splynx or the gateway unavailable)
    if not card_service.on_terminal(card, terminal):
        return None, (f"The customer's saved card {card.masked} was saved on IPpay terminal "
                      f"{card.terminal_id}, and their partner's payments now go to terminal "
                      f"{terminal.terminal_id}: a card token works only on the terminal that "
                      "made it. Send the customer a pay link below (they enter the card again).")
    return card, None


def _result_words(attempt):
    """The outcome of a staff payment as staff read it (not the customer's message)."""
    if attempt.action_code and attempt.action_code != "000":
        return transaction_log.gateway_words(attempt.action_code, attempt.response_text)
    return attempt.message or "Nothing was charged."


@bp.route("/invoice", methods=["GET", "POST"])
@admin_required
def invoice(admin_id):
    """An invoice as staff see it from Splynx: pay it with the customer's saved card (the
    customer asked by phone, say), once confirmed; and the direct pay links to send the
    customer, with which to send."""
    ctx = _ctx()
    try:
        document = documents.find_by_number(ctx, documents.INVOICE, None,
                                            request.values.get("item_id"))
    except documents.DocumentNotFound:
        return render_template("admin/invoice.html", problem=None, document=None), 404
    except documents.DocumentError as exc:
        return render_template("admin/invoice.html", problem=str(exc)), 503
    customer_id = document.customer_id
    customers, _ = _names(customers=[customer_id])
    card, card_problem = _usable_card(ctx, customer_id)
    result = error = None
    confirming = False
    posted_key = request.form.get("request_key")
    if request.method == "POST" and card is not None:
        try:
            key = request_keys.accept(ctx, posted_key, channel=Channel.ADMIN,
                                      customer_id=customer_id, kind=documents.INVOICE,
                                      document_id=document.id)
            if not _confirmed():
                confirming = True
            else:
                bank = payments.BankChoice(account_id=card.id) if card.is_bank else None
                outcome = payments.pay_document(ctx, documents.INVOICE, document,
                                                request_key=key, channel=Channel.ADMIN,
                                                card_id=card.id, admin_id=admin_id, bank=bank)
        except UserError as exc:
            error = str(exc)
        else:
            if not confirming:
                result = outcome.attempt
                audit.record(ctx, admin_id, "invoice_paid", f"invoice {document.number}",
                             attempt=result.id, status=result.status.value)
                try:
                    document = documents.read(ctx.splynx, documents.INVOICE, document.id)
                except SplynxError:
                    pass  # the page shows the invoice as it was read before paying
    links = {by: request.host_url.rstrip("/") + payments.direct_link(
        ctx, documents.INVOICE, document, by=by) for by in ("number", "id")}
    key = posted_key if confirming else request_keys.issue(
        ctx, channel=Channel.ADMIN, customer_id=customer_id, kind=documents.INVOICE,
        document_id=document.id)
    return render_template("admin/invoice.html", problem=None, document=document, card=card,
                           card_problem=card_problem, result=result, error=error, links=links,
                           request_key=key, confirming=confirming,
                           customer=customers[customer_id],
                           link_mode=ctx.module_settings.current().direct_links,
                           result_words=_result_words(result) if result else None)
