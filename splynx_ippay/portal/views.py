"""Customer views: Finance → Credit card, and the Pay modal of Finance → Invoices."""

import logging

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from ..identity import customer_required
from ..models import AttemptStatus as S
from ..pages import error_page
from ..services import cards as card_service
from ..services import payments
from . import bp
from .forms import CardForm, PayForm, new_request_key

log = logging.getLogger(__name__)


def _addon():
    return current_app.extensions["splynx_ippay"]


def _card_choices(cards):
    return [(c.id, c.masked) for c in cards if not c.is_expired()]


@bp.route("/cards", methods=["GET", "POST"])
@customer_required
def cards(customer_id):
    """List the customer's saved cards and add one."""
    form = CardForm()
    status = 200
    if form.validate_on_submit():
        month, year = form.expiry_parts
        try:
            card_service.save_card(
                _addon(), customer_id, number=form.card_number, exp_month=month, exp_year=year,
                holder_name=form.holder_name.data.strip(), cvv=form.cvv.data.strip(),
                make_default=form.make_default.data)
        except card_service.CardError as exc:
            form.form_errors.append(str(exc))
            status = 422
        else:
            flash("Your card was saved.", "success")
            return redirect(url_for("portal.cards"))
    elif form.is_submitted():
        status = 422
    saved = card_service.list_cards(_addon(), customer_id)
    return render_template("portal/cards.html", form=form, cards=saved), status


@bp.route("/cards/<int:card_id>/remove", methods=["POST"])
@customer_required
def remove_card(customer_id, card_id):
    """Forget a saved card."""
    if not card_service.remove_card(_addon(), customer_id, card_id):
        abort(404)
    flash("The card was removed.", "success")
    return redirect(url_for("portal.cards"))


@bp.route("/cards/<int:card_id>/default", methods=["POST"])
@customer_required
def default_card(customer_id, card_id):
    """Make a saved card the default one."""
    if not card_service.set_default_card(_addon(), customer_id, card_id):
        abort(404)
    flash("Your default card was changed.", "success")
    return redirect(url_for("portal.cards"))


@bp.route("/pay-invoice", methods=["GET", "POST"])
@customer_required
def pay_invoice(customer_id):
    """The Pay modal of an invoice (``item_id`` is the invoice number, as Splynx sends it)."""
    number = request.values.get("item_id", "")
    try:
        invoice = payments.find_invoice(_addon(), customer_id, number)
    except payments.DocumentNotFound as exc:
        return error_page(404, "Invoice not found", str(exc))
    except payments.PaymentError as exc:
        return error_page(503, "Billing system unavailable", str(exc))
    saved = card_service.list_cards(_addon(), customer_id)
    form = PayForm()
    form.card_id.choices = _card_choices(saved)
    if request.method == "GET":
        form.request_key.data = new_request_key()
        default = next((c for c in saved if c.is_default and not c.is_expired()), None)
        form.card_id.data = default.id if default else None
    paid = invoice.due_cents <= 0 or invoice.status == "paid"
    if request.method == "POST" and form.validate_on_submit():
        try:
            attempt = payments.pay_invoice(_addon(), customer_id, invoice.number,
                                           form.card_id.data, request_key=form.request_key.data)
        except payments.PaymentError as exc:
            form.form_errors.append(str(exc))
        else:
            return render_template("portal/pay_result.html", invoice=invoice, attempt=attempt,
                                   S=S)
    status = 422 if form.errors or form.form_errors else 200
    return render_template("portal/pay_invoice.html", invoice=invoice, cards=saved, form=form,
                           paid=paid), status
