"""Customer views: Finance → Credit card, the Pay modals of invoices and proforma invoices,
the dashboard widget, the balance refill page and the direct pay links (docs/portal.md).

Views call services only. Every payment form carries a request key the server issued for
exactly that customer, document and channel (services/request_keys.py).
"""

import logging
from urllib.parse import quote

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from ..i18n import _, current_language, say
from ..identity import current_identity, customer_required
from ..messages import N_, UserError
from ..models import AttemptStatus as S, Channel
from ..money import format_cents
from ..pages import error_page
from ..messages import Sentence
from ..services import (autopay, bank_accounts, cards as card_service, customers, documents,
                        fees, payments, request_keys)
from ..services.documents import INVOICE, PROFORMA
from ..services.settings import MODULE_NAME
from ..splynx import SplynxError
from . import bp
from .forms import (NEW_ACCOUNT, NEW_CARD, BankAccountForm, CardForm, ExpiryForm, PayForm,
                    RefillForm, parse_expiry)

log = logging.getLogger(__name__)

_NAMES = {INVOICE: N_("Invoice"), PROFORMA: N_("Proforma invoice")}
_ENTRY_NAMES = {INVOICE: "ippay_pay_invoice", PROFORMA: "ippay_pay_proforma"}


def _ctx():
    return current_app.extensions["splynx_ippay"]


def _web():
    return current_app.extensions["splynx_ippay_web"]


def _name(kind):
    """"Invoice" or "Proforma invoice" in the page's language."""
    return _(_NAMES[kind])


def _config():
    return _ctx().module_settings.current()


@bp.app_context_processor
def _portal_context():
    """Currency of every page: the module settings ``currency_sign`` and ``currency``."""
    def currency():
        try:
            config = _config()
        except Exception:  # noqa: BLE001 - a page must render even without settings
            return {"sign": "$", "code": "USD"}
        return {"sign": config.currency_sign, "code": config.currency}

    def amount(cents):
        """Cents as the customer reads them: ``$1,075.50``."""
        return format_cents(cents, currency()["sign"])

    return {"currency": currency, "amount": amount, "fee_rate": fees.format_rate}


@bp.record_once
def _template_constants(state):
    # Globals, not context values: "Pay with" (portal/_pay_with.html) is imported without
    # the page's context, so Jinja makes its module once rather than on every page.
    state.app.jinja_env.globals.update(NEW_CARD=NEW_CARD, NEW_ACCOUNT=NEW_ACCOUNT)


def _usable(cards, customer_id):
    """The saved cards that can be charged now: not expired, on the customer's terminal."""
    try:
        _, terminal = card_service.customer_terminal(_ctx(), customer_id)
    except Exception:  # noqa: BLE001 - the payment itself will say what is wrong
        terminal = None
    return [c for c in cards if not c.is_expired()
            and (terminal is None or card_service.on_terminal(c, terminal))]


def _prepare_paying_form(form, saved, customer_id, *, channel, kind=None, document_id=None,
                         accounts=()):
    """Fill in a fresh payment form: a request key for exactly this payment, the methods
    the module setting ``payment_type`` allows, and the default card or bank account (or a
    new one)."""
    usable = _usable(saved, customer_id)
    banks = _usable(accounts, customer_id)
    form.allowed_cards = frozenset(c.id for c in usable)
    form.allowed_accounts = frozenset(a.id for a in banks)
    form.methods = tuple(m for m in ("card", "bank") if bank_accounts.allows(_config(), m))
    if request.method == "GET":
        form.request_key.data = request_keys.issue(_ctx(), channel=channel,
                                                   customer_id=customer_id, kind=kind,
                                                   document_id=document_id)
        default = next((c for c in usable if c.is_default), usable[0] if usable else None)
        form.card_id.data = str(default.id) if default else NEW_CARD
        bank = next((a for a in banks if a.is_default), banks[0] if banks else None)
        form.bank_id.data = str(bank.id) if bank else NEW_ACCOUNT
        by_bank = "card" not in form.methods or (bank is not None and bank.is_default)
        form.pay_method.data = "bank" if by_bank and "bank" in form.methods else "card"
    return usable


def _accepted_key(form, customer_id, *, channel, kind=None, document_id=None):
    """The journal's key for the posted form, or None with the refusal added to the form."""
    try:
        return request_keys.accept(_ctx(), form.request_key.data, channel=channel,
                                   customer_id=customer_id, kind=kind, document_id=document_id)
    except request_keys.RequestKeyRefused as exc:
        form.form_errors.append(say(exc))
        return None


def _new_card_of(form, may_save):
    if not form.wants_new_card():
        return None
    return form.new_card(save=bool(may_save and form.save_card.data))


def _bank_of(form, debit_text):
    """The bank account a payment form chose (with the one-time authorisation as shown),
    or None when it pays by card."""
    if not form.by_bank():
        return None
    return payments.BankChoice(
        account_id=form.saved_account_id,
        new_account=form.typed_account() if form.wants_new_account() else None,
        acceptance=_acceptance(debit_text))


def _cached(customer_id, key, loader):
    """A read-only answer kept briefly; any payment attempt of the customer drops it."""
    marker = payments.activity_marker(_ctx(), customer_id)
    return _web().reads.get_or_load((key, customer_id, marker), loader)


def _client_address():
    return request.remote_addr


# --- Finance → Credit card ----------------------------------------------------------------

def _save_card_from(form, customer_id, replaces=None):
    card = form.new_card()
    typed = card_service.gateway_card(card.number, card.exp_month, card.exp_year,
                                      card.holder_name, card.cvv, card.postal_code)
    return card_service.save_card(_ctx(), customer_id, typed, client_address=_client_address(),
                                  make_default=form.make_default.data, replaces=replaces)


def _methods_page(customer_id, card_form, bank_form, status=200):
    """Finance → Credit card: saved cards and bank accounts, and the forms to add them
    (only what the module setting ``payment_type`` allows)."""
    card_form.forget_card_data()
    bank_form.forget_account_data()
    saved = card_service.list_cards(_ctx(), customer_id, method=None)
    autopay_on, reminders = autopay.preferences(_ctx(), customer_id)
    config = _config()
    return render_template(
        "portal/cards.html", form=card_form, bank_form=bank_form,
        cards=[c for c in saved if not c.is_bank], accounts=[c for c in saved if c.is_bank],
        autopay=autopay_on, reminders=reminders,
        offer_cards=bank_accounts.allows(config, "card"),
        offer_banks=bank_accounts.allows(config, "bank"),
        debit_text=_recurring_text(customer_id)), status


def _company(customer_id):
    return _company_name(customer_id) or _("your service provider")


def _recurring_text(customer_id):
    """The recurring debit authorisation, as the customer reads it (and as it is kept)."""
    return say(Sentence(bank_accounts.RECURRING_TEXT, company=_company(customer_id)))


def _single_text(customer_id, amount_cents, what):
    """The one-time debit authorisation of a payment of ``amount_cents`` for ``what``."""
    sign = _config().currency_sign
    return say(Sentence(bank_accounts.SINGLE_TEXT, company=_company(customer_id),
                        amount=format_cents(amount_cents, sign), what=what))


def _acceptance(text):
    return bank_accounts.Acceptance(text=text, language=current_language(),
                                    client_address=_client_address())


@bp.route("/cards", methods=["GET", "POST"])
@customer_required
def cards(customer_id):
    """List the customer's saved cards and bank accounts, and add a card."""
    form = CardForm()
    status = 200
    if not bank_accounts.allows(_config(), "card") and form.is_submitted():
        abort(404)
    if form.validate_on_submit():
        try:
            _save_card_from(form, customer_id)
        except UserError as exc:
            form.form_errors.append(say(exc))
            status = 422
        else:
            flash(_("Your card was saved."), "success")
            return redirect(url_for("portal.cards"))
    elif form.is_submitted():
        status = 422
    return _methods_page(customer_id, form, BankAccountForm(formdata=None, prefix="bank"), status)


@bp.route("/bank-accounts", methods=["POST"])
@customer_required
def add_bank_account(customer_id):
    """Save a bank account (IPpay TOKENIZE) with the recurring debit authorisation the
    customer accepted; the account number is never kept."""
    if not bank_accounts.allows(_config(), "bank"):
        abort(404)
    form = BankAccountForm(prefix="bank")
    status = 422
    if form.validate_on_submit():
        text = _recurring_text(customer_id)
        account = bank_accounts.gateway_account(form.account_number.data,
                                                form.routing_number.data, form.account_type.data)
        try:
            row = bank_accounts.save_account(_ctx(), customer_id, account, holder=form.holder,
                                             acceptance=_acceptance(text),
                                             make_default=form.make_default.data)
        except UserError as exc:
            form.form_errors.append(say(exc))
        else:
            flash(_("Your bank account {account} was saved.", account=row.masked), "success")
            return redirect(url_for("portal.cards"))
    return _methods_page(customer_id, CardForm(formdata=None), form, status)


def _own_account(customer_id, account_id):
    row = bank_accounts.get_account(_ctx(), customer_id, account_id)
    if row is None:
        abort(404)
    return row


@bp.route("/bank-accounts/<id:account_id>/remove", methods=["POST"])
@customer_required
def remove_bank_account(customer_id, account_id):
    """Forget a saved bank account (its authorisation ends; the record of it is kept)."""
    row = _own_account(customer_id, account_id)
    bank_accounts.remove_account(_ctx(), customer_id, account_id)
    flash(_("The bank account {account} was removed.", account=row.masked), "success")
    return redirect(url_for("portal.cards"))


@bp.route("/bank-accounts/<id:account_id>/revoke", methods=["POST"])
@customer_required
def revoke_bank_account(customer_id, account_id):
    """Revoke the debit authorisation of a saved account: no more automatic debits."""
    row = _own_account(customer_id, account_id)
    bank_accounts.revoke(_ctx(), customer_id, account_id)
    flash(_("The debit authorisation of {account} was revoked: it will not be debited "
            "automatically any more.", account=row.masked), "success")
    return redirect(url_for("portal.cards"))


@bp.route("/bank-accounts/<id:account_id>/authorize", methods=["POST"])
@customer_required
def authorize_bank_account(customer_id, account_id):
    """Give a saved account's recurring debit authorisation again (after revoking it)."""
    row = _own_account(customer_id, account_id)
    if request.form.get("accept_debit") != "y":
        flash(say(bank_accounts.NOT_ACCEPTED), "danger")
        return redirect(url_for("portal.cards"))
    bank_accounts.reauthorize(_ctx(), customer_id, account_id,
                              _acceptance(_recurring_text(customer_id)))
    flash(_("{account} may be debited again.", account=row.masked), "success")
    return redirect(url_for("portal.cards"))


@bp.route("/autopay", methods=["POST"])
@customer_required
def autopay_preferences(customer_id):
    """Automatic payments on or off, and reminders before them."""
    autopay.set_preferences(_ctx(), customer_id, autopay=request.form.get("autopay") == "1",
                            reminders=request.form.get("reminders") == "1")
    flash(_("Your choices about automatic payments were saved."), "success")
    return redirect(url_for("portal.cards"))


@bp.route("/cards/<id:card_id>/autopay", methods=["POST"])
@customer_required
def card_autopay(customer_id, card_id):
    """Use a saved card for automatic payments, or stop using it."""
    card = card_service.get_card(_ctx(), customer_id, card_id)
    on = request.form.get("on") == "1"
    if card is None or not autopay.set_card_autopay(_ctx(), customer_id, card_id, on):
        abort(404)
    if on:
        flash(_("{card} will be used for automatic payments.", card=card.masked), "success")
    else:
        flash(_("{card} will not be used for automatic payments.", card=card.masked), "success")
    return redirect(url_for("portal.cards"))


@bp.route("/cards/<id:card_id>/expiry", methods=["GET", "POST"])
@customer_required
def card_expiry(customer_id, card_id):
    """Give a saved card its new expiry date, without typing the number again."""
    card = card_service.get_card(_ctx(), customer_id, card_id)
    if card is None:
        abort(404)
    form = ExpiryForm()
    status = 200
    if form.validate_on_submit():
        month, year = parse_expiry(form.expiry.data)
        try:
            card = card_service.update_expiry(_ctx(), customer_id, card_id, month, year)
        except UserError as exc:
            form.form_errors.append(say(exc))
            status = 422
        else:
            flash(_("{card} now expires {date}.", card=card.masked, date=card.expiry), "success")
            return redirect(url_for("portal.cards"))
    elif form.is_submitted():
        status = 422
    return render_template("portal/card_expiry.html", form=form, card=card), status


@bp.route("/cards/<id:card_id>/replace", methods=["GET", "POST"])
@customer_required
def replace_card(customer_id, card_id):
    """Put a new card in the place of a saved one (a new number or expiry)."""
    old = card_service.get_card(_ctx(), customer_id, card_id)
    if old is None:
        abort(404)
    form = CardForm()
    status = 200
    if request.method == "GET":
        form.holder_name.data = old.holder_name
    if form.validate_on_submit():
        try:
            row = _save_card_from(form, customer_id, replaces=card_id)
        except UserError as exc:
            form.form_errors.append(say(exc))
            status = 422
        else:
            flash(_("Your card {old} was replaced by {new}.", old=old.masked, new=row.masked),
                  "success")
            return redirect(url_for("portal.cards"))
    elif form.is_submitted():
        status = 422
    form.forget_card_data()
    return render_template("portal/replace_card.html", form=form, card=old), status


@bp.route("/cards/<id:card_id>/remove", methods=["POST"])
@customer_required
def remove_card(customer_id, card_id):
    """Forget a saved card."""
    card = card_service.get_card(_ctx(), customer_id, card_id)
    if card is None or not card_service.remove_card(_ctx(), customer_id, card_id):
        abort(404)
    flash(_("The card {card} was removed.", card=card.masked), "success")
    return redirect(url_for("portal.cards"))


@bp.route("/cards/<id:card_id>/default", methods=["POST"])
@customer_required
def default_card(customer_id, card_id):
    """Make a saved card the default one."""
    card = card_service.get_card(_ctx(), customer_id, card_id)
    if card is None or not card_service.set_default_card(_ctx(), customer_id, card_id):
        abort(404)
    flash(_("{card} is now your default card.", card=card.masked), "success")
    return redirect(url_for("portal.cards"))


# --- the Pay modal (action links) ---------------------------------------------------------

def _not_found(kind):
    return error_page(404, _("{name} not found", name=_name(kind)),
                      say(documents.DocumentNotFound(kind)))


def _pay(kind, document, form, *, channel, customer_id, card_id=None, new_card=None,
         link_key=None, bank=None):
    """Charge ``document`` from a validated form; the outcome, or None with the reason added
    to the form."""
    key = _accepted_key(form, customer_id, channel=channel, kind=kind, document_id=document.id)
    if key is None:
        return None
    try:
        return payments.pay_document(
            _ctx(), kind, document, request_key=key, channel=channel, card_id=card_id,
            new_card=new_card, client_address=_client_address(), link_key=link_key,
            fee_terms_shown=_terms_sent(form), bank=bank)
    except UserError as exc:
        form.form_errors.append(say(exc))
        return None


def _terms_sent(form):
    """The fee terms the page showed; a form without them showed no fee."""
    return form.fee_terms.data or payments.fee_terms(None)


def _show_fee(form, amount_cents, channel):
    """The fee quote the page shows, its terms put in the form to come back."""
    quote = payments.fee_quote(_ctx(), amount_cents, channel)
    form.fee_terms.data = quote.terms
    return quote


def _pay_page(kind, customer_id):
    ctx = _ctx()
    number = request.values.get("item_id", "")
    try:
        if request.method == "GET":
            document = _cached(customer_id, (kind, number),
                               lambda: documents.find_by_number(ctx, kind, customer_id, number))
        else:
            document = documents.find_by_number(ctx, kind, customer_id, number)
    except documents.DocumentNotFound:
        return _not_found(kind)
    except documents.DocumentError as exc:
        return error_page(503, _("Billing system unavailable"), say(exc))
    saved, accounts = card_service.cards_and_accounts(ctx, customer_id)
    form = PayForm()
    usable = _prepare_paying_form(form, saved, customer_id, channel=Channel.PORTAL, kind=kind,
                                  document_id=document.id, accounts=accounts)
    paid = not documents.is_unpaid(document)
    debit_text = _single_text(customer_id, document.due_cents,
                              f"{_name(kind)} {document.number}")
    if request.method == "POST" and form.validate_on_submit():
        outcome = _pay(kind, document, form, channel=Channel.PORTAL, customer_id=customer_id,
                       card_id=form.saved_card_id, new_card=_new_card_of(form, may_save=True),
                       bank=_bank_of(form, debit_text))
        if outcome is not None:
            return _result(kind, document, outcome, retry=request.url)
    form.forget_card_data()
    status = 422 if form.errors or form.form_errors else 200
    return render_template("portal/pay.html", kind=kind, name=_name(kind), document=document,
                           cards=saved, usable=usable, accounts=accounts, form=form, paid=paid,
                           direct=False, debit_text=debit_text,
                           quote=_show_fee(form, document.due_cents, Channel.PORTAL),
                           action=url_for(request.endpoint, item_id=document.number)), status


def _result(kind, document, outcome, retry, direct=False):
    return render_template("portal/pay_result.html", kind=kind, name=_name(kind),
                           document=document, attempt=outcome.attempt, replay=outcome.replay,
                           S=S, retry=retry, direct=direct)


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
    ctx = _ctx()
    item = request.values.get("item_id", "")
    signature = request.values.get("sig", "")
    try:
        mode = _config().direct_links
        if mode == "off":
            raise documents.DocumentNotFound(kind)
        if by == "id":
            document = documents.find_by_id(ctx, kind, item)
        else:
            document = documents.find_by_number(ctx, kind, None, item)
        if mode != "open" and not payments.link_signature_valid(ctx, kind, document.id,
                                                                 signature):
            raise documents.DocumentNotFound(kind)
        if not documents.is_unpaid(document):
            raise documents.DocumentNotFound(kind)
    except documents.DocumentNotFound:
        return _link_unusable()
    except documents.DocumentError as exc:
        return error_page(503, _("Billing system unavailable"), say(exc))
    form = PayForm()
    form.allowed_cards = form.allowed_accounts = frozenset()
    form.methods = tuple(m for m in ("card", "bank") if bank_accounts.allows(_config(), m))
    customer_id = document.customer_id
    if request.method == "GET":
        form.request_key.data = request_keys.issue(ctx, channel=Channel.DIRECT,
                                                   customer_id=customer_id, kind=kind,
                                                   document_id=document.id)
        form.pay_method.data = form.methods[0] if form.methods else "card"
    # Only a card or bank account typed in here; saved ones after logging in.
    form.card_id.data = NEW_CARD
    form.bank_id.data = NEW_ACCOUNT
    debit_text = _single_text(customer_id, document.due_cents,
                              f"{_name(kind)} {document.number}")
    if request.method == "POST" and form.validate_on_submit():
        outcome = _pay(kind, document, form, channel=Channel.DIRECT, customer_id=customer_id,
                       new_card=_new_card_of(form, may_save=False),
                       link_key=f"{kind}:{document.id}", bank=_bank_of(form, debit_text))
        if outcome is not None:
            return _result(kind, document, outcome, retry=request.url, direct=True)
    form.forget_card_data()
    login = "/portal/login/?return=" + quote(
        url_for(f"portal.pay_{kind}", item_id=document.number), safe="")
    status = 422 if form.errors or form.form_errors else 200
    query = {"item_id": item, **({"sig": signature} if signature else {})}
    return render_template("portal/pay.html", kind=kind, name=_name(kind), document=document,
                           cards=[], usable=[], accounts=[], form=form, paid=False, direct=True,
                           login=login, debit_text=debit_text,
                           company=_company_name(customer_id),
                           quote=_show_fee(form, document.due_cents, Channel.DIRECT),
                           action=url_for(request.endpoint, **query)), status


def _company_name(customer_id):
    """The ISP's name from Splynx's company info (the customer's partner's), for the direct
    pay page; None when Splynx does not say."""
    ctx = _ctx()

    def load():
        partner_id = customers.partner_of(ctx, customer_id)
        return ctx.splynx.get_company_info(partner_id or 1).company_name or None

    try:
        return _web().reads.get_or_load(("company", customer_id), load)
    except SplynxError:
        return None


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
    ctx = _ctx()
    try:
        identity = current_identity()
    except SplynxError:
        return render_template("portal/widget.html", problem="unavailable"), 503
    if identity is None or identity.kind != "customer":
        return render_template("portal/widget.html", problem="login"), 200

    def render_widget():
        invoices = payments.unpaid_invoices(ctx, identity.id)
        return render_template("portal/widget.html", problem=None, invoices=invoices,
                               total=sum(i.due_cents for i in invoices),
                               module=MODULE_NAME, entry=_ENTRY_NAMES[INVOICE])

    try:
        # The page itself is kept: the dashboard shows it on every visit.
        return _cached(identity.id, ("widget", current_language()), render_widget)
    except documents.DocumentError:
        return render_template("portal/widget.html", problem="unavailable"), 503


# --- balance refill -----------------------------------------------------------------------

@bp.route("/", methods=["GET", "POST"])
@customer_required
def refill(customer_id):
    """Add money to the balance: amount and card → Add. The payment is linked to no
    document; Splynx raises the balance."""
    ctx = _ctx()
    low, high = payments.refill_limits(ctx)
    saved, accounts = card_service.cards_and_accounts(ctx, customer_id)
    form = RefillForm()
    form.limits, form.sign = (low, high), _config().currency_sign
    usable = _prepare_paying_form(form, saved, customer_id, channel=Channel.PORTAL,
                                  accounts=accounts)
    debit_text = say(Sentence(bank_accounts.SINGLE_TEXT, company=_company(customer_id),
                              amount=_("the amount entered above"),
                              what=_("money added to my balance")))
    if request.method == "POST" and form.validate_on_submit():
        key = _accepted_key(form, customer_id, channel=Channel.PORTAL)
        if key is not None:
            try:
                outcome = payments.refill(
                    ctx, customer_id, form.amount.cents, request_key=key,
                    card_id=form.saved_card_id, new_card=_new_card_of(form, may_save=True),
                    client_address=_client_address(), fee_terms_shown=_terms_sent(form),
                    bank=_bank_of(form, debit_text))
            except UserError as exc:
                form.form_errors.append(say(exc))
            else:
                return render_template("portal/refill_result.html", attempt=outcome.attempt,
                                       replay=outcome.replay, S=S,
                                       balance=_balance(customer_id, fresh=True))
    form.forget_card_data()
    balance = _balance(customer_id)
    status = 422 if form.errors or form.form_errors else 200
    return render_template("portal/refill.html", form=form, cards=saved, usable=usable,
                           accounts=accounts, debit_text=debit_text, low=low, high=high,
                           balance=balance,
                           quote=_show_fee(form, getattr(form.amount, "cents", None) or 0,
                                           Channel.PORTAL)), status


def _balance(customer_id, fresh=False):
    """The balance in cents, or None when Splynx cannot say (the page still works)."""
    try:
        if fresh:
            return payments.balance_cents(_ctx(), customer_id)
        return _cached(customer_id, "balance",
                       lambda: payments.balance_cents(_ctx(), customer_id))
    except documents.DocumentError:
        return None
