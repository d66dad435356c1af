"""Customer views: Finance → Credit card, the Pay modals of invoices and proforma invoices,
the dashboard widget, the balance refill page and the direct pay links (docs/portal.md)."""

import logging
from urllib.parse import quote

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from ..i18n import _, current_language
from ..identity import current_identity, customer_required
from ..models import AttemptStatus as S
from ..money import format_cents
from ..pages import error_page
from ..services import cards as card_service
from ..services import payments
from ..services.payments import INVOICE, PROFORMA
from ..splynx import SplynxError
from . import bp
from .cache import ReadCache
from .forms import NEW_CARD, CardForm, PayForm, RefillForm, new_request_key

log = logging.getLogger(__name__)

_NAMES = {INVOICE: "Invoice", PROFORMA: "Proforma invoice"}
_MODELS = {INVOICE: "Invoices", PROFORMA: "Requests"}
_ENTRY_NAMES = {INVOICE: "ippay_pay_invoice", PROFORMA: "ippay_pay_proforma"}


def _addon():
    return current_app.extensions["splynx_ippay"]


def _name(kind):
    """"Invoice" or "Proforma invoice" in the page's language."""
    return _(_NAMES[kind])


def _settings():
    return _addon().module_settings.get()


@bp.app_context_processor
def _portal_context():
    """Currency of every page: the module settings ``currency_sign`` and ``currency``."""
    def currency():
        try:
            settings = _settings()
        except Exception:  # noqa: BLE001 - a page must render even without settings
            return {"sign": "$", "code": "USD"}
        return {"sign": settings.get("currency_sign", "$"), "code": settings.get("currency", "USD")}

    def amount(cents):
        """Cents as the customer reads them: ``$75.50``."""
        return format_cents(cents, currency()["sign"])

    return {"currency": currency, "amount": amount, "NEW_CARD": NEW_CARD}


def _sign():
    return _settings().get("currency_sign", "$")


def _usable(cards):
    return [c for c in cards if not c.is_expired()]


def _prepare_paying_form(form, saved):
    """Fill in a fresh payment form: a one-time key and the default card (or a new card)."""
    usable = _usable(saved)
    form.allowed_cards = frozenset(c.id for c in usable)
    if request.method == "GET":
        form.request_key.data = new_request_key()
        default = next((c for c in usable if c.is_default), usable[0] if usable else None)
        form.card_id.data = str(default.id) if default else NEW_CARD
    return usable


def _new_card_of(form, may_save):
    if not form.wants_new_card():
        return None
    return form.new_card(save=bool(may_save and form.save_card.data))


def _cached(customer_id, key, loader):
    """A read-only answer kept briefly; any payment attempt of the customer drops it."""
    marker = payments.activity_marker(_addon(), customer_id)
    reads = current_app.extensions.get("ippay_reads")
    if reads is None:
        reads = current_app.extensions.setdefault("ippay_reads", ReadCache())
    return reads.get_or_load((key, customer_id, marker), loader)


# --- Finance → Credit card ----------------------------------------------------------------

def _save_card_from(form, customer_id, replaces=None):
    month, year = form.expiry_parts
    return card_service.save_card(
        _addon(), customer_id, number=form.card_number, exp_month=month, exp_year=year,
        holder_name=form.holder_name.data.strip(), cvv=form.cvv.data.strip(),
        postal_code=(form.postal_code.data or "").strip() or None,
        make_default=form.make_default.data, replaces=replaces)


@bp.route("/cards", methods=["GET", "POST"])
@customer_required
def cards(customer_id):
    """List the customer's saved cards and add one."""
    form = CardForm()
    status = 200
    if form.validate_on_submit():
        try:
            _save_card_from(form, customer_id)
        except card_service.CardError as exc:
            form.form_errors.append(str(exc))
            status = 422
        else:
            flash(_("Your card was saved."), "success")
            return redirect(url_for("portal.cards"))
    elif form.is_submitted():
        status = 422
    saved = card_service.list_cards(_addon(), customer_id)
    return render_template("portal/cards.html", form=form, cards=saved), status


@bp.route("/cards/<int:card_id>/replace", methods=["GET", "POST"])
@customer_required
def replace_card(customer_id, card_id):
    """Put a new card in the place of a saved one (a new number or expiry)."""
    old = card_service.get_card(_addon(), customer_id, card_id)
    if old is None:
        abort(404)
    form = CardForm()
    status = 200
    if request.method == "GET":
        form.holder_name.data = old.holder_name
    if form.validate_on_submit():
        try:
            row = _save_card_from(form, customer_id, replaces=card_id)
        except card_service.CardError as exc:
            form.form_errors.append(str(exc))
            status = 422
        else:
            flash(_("Your card {old} was replaced by {new}.", old=old.masked, new=row.masked),
                  "success")
            return redirect(url_for("portal.cards"))
    elif form.is_submitted():
        status = 422
    return render_template("portal/replace_card.html", form=form, card=old), status


@bp.route("/cards/<int:card_id>/remove", methods=["POST"])
@customer_required
def remove_card(customer_id, card_id):
    """Forget a saved card."""
    card = card_service.get_card(_addon(), customer_id, card_id)
    if card is None or not card_service.remove_card(_addon(), customer_id, card_id):
        abort(404)
    flash(_("The card {card} was removed.", card=card.masked), "success")
    return redirect(url_for("portal.cards"))


@bp.route("/cards/<int:card_id>/default", methods=["POST"])
@customer_required
def default_card(customer_id, card_id):
    """Make a saved card the default one."""
    card = card_service.get_card(_addon(), customer_id, card_id)
    if card is None or not card_service.set_default_card(_addon(), customer_id, card_id):
        abort(404)
    flash(_("{card} is now your default card.", card=card.masked), "success")
    return redirect(url_for("portal.cards"))


# --- the Pay modal (action links) ---------------------------------------------------------

def _not_found(kind):
    return error_page(404, _("{name} not found", name=_name(kind)),
                      str(payments.DocumentNotFound(kind)))


def _pay_page(kind, customer_id):
    addon = _addon()
    number = request.values.get("item_id", "")
    try:
        if request.method == "GET":
            document = _cached(customer_id, (kind, number),
                               lambda: payments.find_document(addon, kind, customer_id, number))
        else:
            document = payments.find_document(addon, kind, customer_id, number)
    except payments.DocumentNotFound:
        return _not_found(kind)
    except payments.PaymentError as exc:
        return error_page(503, _("Billing system unavailable"), str(exc))
    saved = card_service.list_cards(addon, customer_id)
    form = PayForm()
    usable = _prepare_paying_form(form, saved)
    paid = document.status == "paid" or document.due_cents <= 0
    if request.method == "POST" and form.validate_on_submit():
        try:
            attempt = payments.pay_document(
                addon, kind, customer_id, document.number, card_id=form.saved_card_id,
                new_card=_new_card_of(form, may_save=True), request_key=form.request_key.data,
                document=document)
        except payments.PaymentError as exc:
            form.form_errors.append(str(exc))
        else:
            return _result(kind, document, attempt, retry=request.url)
    status = 422 if form.errors or form.form_errors else 200
    return render_template("portal/pay.html", kind=kind, name=_name(kind), document=document,
                           cards=saved, usable=usable, form=form, paid=paid, direct=False,
                           action=url_for(request.endpoint, item_id=document.number)), status


def _result(kind, document, attempt, retry, direct=False):
    return render_template("portal/pay_result.html", kind=kind, name=_name(kind),
                           document=document, attempt=attempt, S=S, retry=retry, direct=direct)


@bp.route("/pay-invoice", methods=["GET", "POST"])
@customer_required
def pay_invoice(customer_id):
    """The Pay modal of an invoice (``item_id`` is the invoice number, as Splynx sends it)."""
    return _pay_page(INVOICE, customer_id)


@bp.route("/pay-proforma", methods=["GET", "POST"])
@customer_required
def pay_proforma(customer_id):
    """The Pay modal of a proforma invoice (``item_id`` is its number)."""
    return _pay_page(PROFORMA, customer_id)


# --- direct pay links (no login) ----------------------------------------------------------

def _link_unusable():
    """One answer for every link that cannot be used: missing, paid, deleted, unsigned,
    another kind of document. It says nothing about whether the document exists."""
    return error_page(404, _("This payment link cannot be used"),
                      _("There is nothing to pay with this link: it may be incomplete, or the "
                        "document may already be paid. Log in to the customer portal to see "
                        "your invoices and pay them."))


def _direct_page(kind, by):
    addon = _addon()
    item = request.values.get("item_id", "")
    signature = request.values.get("sig", "")
    try:
        mode = _settings().get("direct_links", "signed")
        if mode == "off":
            raise payments.DocumentNotFound(kind)
        if by == "id":
            document = payments.find_document_by_id(addon, kind, item)
        else:
            document = payments.find_document(addon, kind, None, item)
        if mode != "open" and not payments.link_signature_valid(addon, kind, document.id,
                                                                 signature):
            raise payments.DocumentNotFound(kind)
        if document.status == "paid" or document.due_cents <= 0:
            raise payments.DocumentNotFound(kind)
    except payments.DocumentNotFound:
        return _link_unusable()
    except payments.PaymentError as exc:
        return error_page(503, _("Billing system unavailable"), str(exc))
    form = PayForm()
    form.allowed_cards = frozenset()
    if request.method == "GET":
        form.request_key.data = new_request_key()
    form.card_id.data = NEW_CARD  # only a card typed in here; saved cards after logging in
    if request.method == "POST" and form.validate_on_submit():
        try:
            attempt = payments.pay_document(
                addon, kind, None, document.number, new_card=_new_card_of(form, may_save=False),
                request_key=form.request_key.data, channel="direct", document=document)
        except payments.PaymentError as exc:
            form.form_errors.append(str(exc))
        else:
            return _result(kind, document, attempt, retry=request.url, direct=True)
    login = "/portal/login/?return=" + quote(
        url_for(f"portal.pay_{kind}", item_id=document.number), safe="")
    status = 422 if form.errors or form.form_errors else 200
    query = {"item_id": item, **({"sig": signature} if signature else {})}
    return render_template("portal/pay.html", kind=kind, name=_name(kind), document=document,
                           cards=[], usable=[], form=form, paid=False, direct=True, login=login,
                           action=url_for(request.endpoint, **query)), status


@bp.route("/direct-pay-invoice-by-id", methods=["GET", "POST"])
def direct_pay_invoice_by_id():
    """Pay an invoice from a link (``item_id`` = its Splynx id), without logging in."""
    return _direct_page(INVOICE, "id")


@bp.route("/direct-pay-invoice", methods=["GET", "POST"])
def direct_pay_invoice():
    """Pay an invoice from a link (``item_id`` = its number), without logging in."""
    return _direct_page(INVOICE, "number")


@bp.route("/direct-pay-proforma-by-id", methods=["GET", "POST"])
def direct_pay_proforma_by_id():
    """Pay a proforma invoice from a link (``item_id`` = its Splynx id)."""
    return _direct_page(PROFORMA, "id")


@bp.route("/direct-pay-proforma", methods=["GET", "POST"])
def direct_pay_proforma():
    """Pay a proforma invoice from a link (``item_id`` = its number)."""
    return _direct_page(PROFORMA, "number")


# --- dashboard widget ---------------------------------------------------------------------

@bp.route("/widget")
def widget():
    """Unpaid invoices with a Pay button each and the total owed (framed by the dashboard's
    ``code`` entry point)."""
    addon = _addon()
    try:
        identity = current_identity()
    except SplynxError:
        return render_template("portal/widget.html", problem="unavailable"), 503
    if identity is None or identity.kind != "customer":
        return render_template("portal/widget.html", problem="login"), 200
    def render_widget():
        invoices = payments.unpaid_invoices(addon, identity.id)
        return render_template("portal/widget.html", problem=None, invoices=invoices,
                               total=sum(i.due_cents for i in invoices),
                               module=addon_module(), entry=_ENTRY_NAMES[INVOICE])

    try:
        # The page itself is kept: the dashboard shows it on every visit.
        return _cached(identity.id, ("widget", current_language()), render_widget)
    except payments.PaymentError:
        return render_template("portal/widget.html", problem="unavailable"), 503


def addon_module():
    from ..services.settings import MODULE_NAME

    return MODULE_NAME


# --- balance refill -----------------------------------------------------------------------

@bp.route("/", methods=["GET", "POST"])
@customer_required
def refill(customer_id):
    """Add money to the balance: amount and card → Add. The payment is linked to no
    document; Splynx raises the balance."""
    addon = _addon()
    low, high = payments.refill_limits(addon)
    saved = card_service.list_cards(addon, customer_id)
    form = RefillForm()
    form.limits, form.sign = (low, high), _sign()
    usable = _prepare_paying_form(form, saved)
    if request.method == "POST" and form.validate_on_submit():
        try:
            attempt = payments.refill(
                addon, customer_id, form.amount.cents, card_id=form.saved_card_id,
                new_card=_new_card_of(form, may_save=True), request_key=form.request_key.data)
        except payments.PaymentError as exc:
            form.form_errors.append(str(exc))
        else:
            balance = _balance(customer_id, fresh=True)
            return render_template("portal/refill_result.html", attempt=attempt, S=S,
                                   balance=balance)
    balance = _balance(customer_id)
    status = 422 if form.errors or form.form_errors else 200
    return render_template("portal/refill.html", form=form, cards=saved, usable=usable,
                           low=low, high=high, balance=balance), status


def _balance(customer_id, fresh=False):
    """The balance in cents, or None when Splynx cannot say (the page still works)."""
    try:
        if fresh:
            return payments.balance_cents(_addon(), customer_id)
        return _cached(customer_id, "balance",
                       lambda: payments.balance_cents(_addon(), customer_id))
    except payments.PaymentError:
        return None
