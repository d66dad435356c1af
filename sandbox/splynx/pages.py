"""Portal and admin pages that host add-ons (splynx §3.4, §4, §7.4).

Sessions: the ``PHPSESSID`` cookie names an entry of ``Store.sessions``
(``session_id → ("customer", id) | ("admin", id)``). [I] A session holds one
identity; logging in at the other area replaces the cookie with a new session.
"""

import functools
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from .schema import serialize

bp = Blueprint("splynx_pages", __name__)

COOKIE = "PHPSESSID"
# splynx §3.4: action_link modal widths.
MODAL_WIDTHS = {"extra_small": 300, "small": 450, "medium": 600, "large": 900, "extra_large": 1200}
ADMIN_PAGE_SIZE = 100


def _store():
    return current_app.extensions["splynx_store"]


def _session_user(kind):
    entry = _store().sessions.get(request.cookies.get(COOKIE, ""))
    if entry is None or entry[0] != kind:
        return None
    return entry[1]


def login_required(kind):
    """Redirect to the area's login with ``return`` when no session (splynx §4)."""
    login = "/portal/login" if kind == "customer" else "/admin/login"

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            store = _store()
            with store.lock:
                user_id = _session_user(kind)
                if user_id is None:
                    target = request.full_path if request.query_string else request.path
                    return redirect(f"{login}?{urlencode({'return': target})}")
                return view(user_id, *args, **kwargs)
        return wrapper
    return decorator


def safe_return(target, default):
    """Only local paths are followed after login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def money(value):
    """``75.00`` style amounts for pages."""
    return f"{Decimal(value):,.2f}"


@bp.app_template_filter("money")
def _money_filter(value):
    return money(value)


def addon_url(url, **params):
    """An add-on URL with query parameters appended."""
    return url + ("&" if "?" in url else "?") + urlencode(params)


def visible_points(place, type_, model=None):
    """Enabled entry points of enabled modules for a place/type (splynx §3.4).

    [I] For the portal the module's "Entry points status for portal" must be
    enabled too.
    """
    store = _store()
    modules = {m["name"]: m for m in store.modules.rows.values()}
    out = []
    for point in store.entry_points.all():
        module = modules.get(point["module"])
        if (not point["enabled"] or module is None or module["status"] != "enabled"
                or point["place"] != place or point["type"] != type_):
            continue
        if place == "portal" and module["entry_points_status"] != "enabled":
            continue
        if model is not None and point["model"] != model:
            continue
        out.append(dict(point, module_title=module["title"],
                        width=MODAL_WIDTHS.get(point["size"], 900)))
    return out


def action_links(place, model, item_number):
    """Buttons for one document row: each opens a modal framing the add-on URL
    with ``module``, ``model`` and ``item_id`` = document number (splynx §3.4)."""
    return [dict(point, href=addon_url(point["url"], module=point["module"], model=model,
                                       item_id=item_number))
            for point in visible_points(place, "action_link", model)]


def _layout_context(area, user_id):
    store = _store()
    if area == "portal":
        user = store.customers.get(user_id)
        menu = visible_points("portal", "menu_link")
    else:
        user = store.admins[user_id]
        menu = visible_points("admin", "menu_link")
    return {"area": area, "user": user, "menu_points": menu}


# ------------------------------------------------------------------ logins
def _login(area):
    store = _store()
    default = "/portal/" if area == "portal" else "/admin/"
    target = safe_return(request.values.get("return", ""), default)
    error = None
    if request.method == "POST":
        login, password = request.form.get("login", ""), request.form.get("password", "")
        with store.lock:
            if area == "portal":
                user = store.customer_by_login(login)
                ok = user is not None and user["password"] == password and user["status"] != "disabled"
            else:
                user = next((a for a in store.admins.values() if a["login"] == login), None)
                ok = user is not None and user["password"] == password
            if ok:
                session_id = store.new_session("customer" if area == "portal" else "admin", user["id"])
                response = redirect(target)
                response.set_cookie(COOKIE, session_id, httponly=True, path="/", samesite="Lax")
                return response
        error = "Invalid login or password"
    return render_template("login.html", area=area, error=error, return_to=target,
                           user=None, menu_points=[])


def _logout(area):
    store = _store()
    with store.lock:
        store.sessions.pop(request.cookies.get(COOKIE, ""), None)
    response = redirect(f"/{area}/login")
    response.delete_cookie(COOKIE, path="/")
    return response


@bp.route("/portal/login", methods=["GET", "POST"])
@bp.route("/portal/login/", methods=["GET", "POST"])
def portal_login():
    """Customer login form; POST sets ``PHPSESSID`` and follows ``return``."""
    return _login("portal")


@bp.route("/admin/login", methods=["GET", "POST"])
@bp.route("/admin/login/", methods=["GET", "POST"])
def admin_login():
    """Administrator login form."""
    return _login("admin")


@bp.route("/portal/logout")
def portal_logout():
    """End the customer session."""
    return _logout("portal")


@bp.route("/admin/logout")
def admin_logout():
    """End the administrator session."""
    return _logout("admin")


# ------------------------------------------------------------------ portal
class _Loader:
    """``loader`` of dashboard code widgets (splynx §3.4, [S JCC])."""

    def __init__(self, store, customer_id):
        self._store, self._customer_id = store, customer_id

    def getInvoices(self):  # noqa: N802 - Twig API name
        """The customer's invoices with number, total, due, status."""
        return [_doc_view(self._store, r) for r in self._store.invoices.of_customer(self._customer_id)]

    def getRequests(self):  # noqa: N802 - Twig API name
        """The customer's proforma invoices."""
        return [_doc_view(self._store, r) for r in self._store.proformas.of_customer(self._customer_id)]


class _App:
    """``App`` helper of dashboard code widgets."""

    @staticmethod
    def financeFormat(amount, with_currency=False):  # noqa: N802 - Twig API name
        """Format money like the portal does."""
        text = money(amount)
        return f"${text}" if with_currency else text


def _doc_view(store, row):
    view = serialize("invoices" if "due" in row else "proformas", row)
    view["due"] = row.get("due", row["total"] if row["status"] != "paid" else 0)
    view["label"] = store.status_label(row)
    return view


_CODE_ENV = SandboxedEnvironment(autoescape=True)


def _render_code(point, customer, loader):
    """A ``code`` entry point is the add-on's trusted template; Splynx renders it
    with Twig, here with a sandboxed, auto-escaping Jinja (close to Twig)."""
    try:
        return Markup(_CODE_ENV.from_string(point["code"]).render(
            customer=customer, loader=loader, App=_App()))
    except TemplateError as exc:
        return Markup('<div class="alert alert-danger">Entry point {} failed: {}</div>').format(
            point["name"], str(exc))


@bp.route("/portal")
@bp.route("/portal/")
@login_required("customer")
def portal_dashboard(customer_id):
    """Dashboard: name, balance, unpaid invoices, code widgets."""
    store = _store()
    customer = store.customers.get(customer_id)
    loader = _Loader(store, customer_id)
    widgets = {"before_content": [], "after_content": []}
    for point in visible_points("portal", "code"):
        place = "before_content" if point["location"] == "before_content" else "after_content"
        widgets[place].append(_render_code(point, serialize("customers", customer), loader))
    unpaid = [r for r in store.invoices.of_customer(customer_id) if r["status"] != "paid"]
    return render_template("portal_dashboard.html", **_layout_context("portal", customer_id),
                           deposit=store.billing[customer_id]["deposit"], unpaid=unpaid,
                           widgets=widgets, store=store)


def _documents_page(customer_id, kind):
    store = _store()
    table = store.invoices if kind == "invoices" else store.proformas
    model = "Invoices" if kind == "invoices" else "Requests"
    rows = []
    for row in table.of_customer(customer_id):
        links = action_links("portal", model, row["number"]) if row["status"] != "paid" else []
        rows.append({"row": row, "label": store.status_label(row), "links": links})
    return render_template("portal_documents.html", **_layout_context("portal", customer_id),
                           kind=kind, rows=rows)


@bp.route("/portal/finance/invoices")
@login_required("customer")
def portal_invoices(customer_id):
    """Invoices with the add-ons' action links on unpaid ones."""
    return _documents_page(customer_id, "invoices")


@bp.route("/portal/finance/requests")
@login_required("customer")
def portal_requests(customer_id):
    """Proforma invoices with the add-ons' ``Requests`` action links."""
    return _documents_page(customer_id, "requests")


def _point_or_404(place, module, point_id, type_="menu_link"):
    try:
        wanted = int(point_id)
    except (TypeError, ValueError):
        abort(404)
    for point in visible_points(place, type_):
        if point["id"] == wanted and point["module"] == module:
            return point
    abort(404)


@bp.route("/portal/add-on")
@login_required("customer")
def portal_addon(customer_id):
    """``/portal/add-on?module=&point=``: a menu_link page framed (splynx §3.4)."""
    point = _point_or_404("portal", request.args.get("module"), request.args.get("point"))
    return render_template("addon_frame.html", **_layout_context("portal", customer_id), point=point)


@bp.route("/portal/add-on--action-link-modal")
@login_required("customer")
def portal_action_link_modal(customer_id):
    """Target of the portal JS ``open_portal_dialog('add-on--action-link-modal?module=&name=&id=')``
    used by dashboard widgets: sends the modal's frame to the action link URL."""
    module, name = request.args.get("module"), request.args.get("name")
    for point in visible_points("portal", "action_link"):
        if point["module"] == module and point["name"] == name:
            return redirect(addon_url(point["url"], module=module, model=point["model"],
                                      item_id=request.args.get("id", "")))
    abort(404)


# ------------------------------------------------------------------- admin
@bp.route("/admin")
@bp.route("/admin/")
@login_required("admin")
def admin_dashboard(admin_id):
    """Overview with counts."""
    store = _store()
    unpaid = [r for r in store.invoices.rows.values() if r["status"] != "paid"]
    return render_template("admin_dashboard.html", **_layout_context("admin", admin_id),
                           customers=len(store.customers.rows), invoices=len(store.invoices.rows),
                           unpaid=len(unpaid), payments=len(store.payments.rows),
                           modules=len(store.modules.rows))


def _invoice_rows(invoices):
    store = _store()
    return [{"row": r, "customer": store.customers.get(r["customer_id"]),
             "label": store.status_label(r),
             "links": action_links("admin", "Invoices", r["number"]) if r["status"] != "paid" else []}
            for r in invoices]


@bp.route("/admin/finance/invoices")
@login_required("admin")
def admin_invoices(admin_id):
    """All invoices (paged): customer, status, due, payment date."""
    store = _store()
    page = max(1, request.args.get("page", 1, type=int))
    invoices = store.invoices.all()
    pages = max(1, -(-len(invoices) // ADMIN_PAGE_SIZE))
    chunk = invoices[(page - 1) * ADMIN_PAGE_SIZE:page * ADMIN_PAGE_SIZE]
    # [I] Finance → Invoices → Charge: Splynx hands the charge to an add-on's external
    # handler (splynx §3.5, calling convention undocumented); here an add-on's admin
    # menu_link rooted at the invoices controller is shown as a button opening its page.
    charge_points = [p for p in visible_points("admin", "menu_link")
                     if p["root"].endswith("InvoicesController")]
    return render_template("admin_invoices.html", **_layout_context("admin", admin_id),
                           rows=_invoice_rows(chunk), page=page, pages=pages,
                           charge_points=charge_points)


@bp.route("/admin/finance/payments")
@login_required("admin")
def admin_payments(admin_id):
    """All payments (paged)."""
    store = _store()
    page = max(1, request.args.get("page", 1, type=int))
    payments = store.payments.all()
    pages = max(1, -(-len(payments) // ADMIN_PAGE_SIZE))
    chunk = payments[(page - 1) * ADMIN_PAGE_SIZE:page * ADMIN_PAGE_SIZE]
    rows = [{"row": p, "customer": store.customers.get(p["customer_id"]),
             "method": store.payment_methods.get(p["payment_type"])} for p in chunk]
    return render_template("admin_payments.html", **_layout_context("admin", admin_id),
                           rows=rows, page=page, pages=pages)


@bp.route("/admin/finance/bank-statements")
@login_required("admin")
def admin_bank_statements(admin_id):
    """Finance → Payment Statements → History (splynx §2.7): ID, Title, Date & Time, Status,
    Records, Processed, Errors; newest first, paged."""
    store = _store()
    page = max(1, request.args.get("page", 1, type=int))
    processes = list(reversed(store.bank_statements.all()))
    pages = max(1, -(-len(processes) // ADMIN_PAGE_SIZE))
    chunk = processes[(page - 1) * ADMIN_PAGE_SIZE:page * ADMIN_PAGE_SIZE]
    tally = {}
    for record in store.bank_statement_records.rows.values():
        counts = tally.setdefault(record["bank_statements_process_id"], [0, 0, 0])
        counts[0] += 1
        counts[1] += record["status"] in ("processed", "manual_paired")
        counts[2] += record["status"] == "error"
    rows = [{"row": p, "records": tally.get(p["id"], [0, 0, 0])} for p in chunk]
    return render_template("admin_bank_statements.html", **_layout_context("admin", admin_id),
                           rows=rows, page=page, pages=pages)


@bp.route("/admin/finance/bank-statements/view")
@login_required("admin")
def admin_bank_statement(admin_id):
    """One payment statement's records: ID, Date, Amount, Status, Pairing #1, Comment,
    Customer, Invoice (splynx §2.7)."""
    store = _store()
    process = store.bank_statements.get(request.args.get("id", type=int))
    if process is None:
        abort(404)
    records = [r for r in store.bank_statement_records.all()
               if r["bank_statements_process_id"] == process["id"]]
    rows = [{"row": r, "customer": store.customers.get(r["customer_id"]),
             "invoice": store.invoices.get(r["invoice_id"]) if r["invoice_id"] else None,
             "proforma": store.proformas.get(r["request_id"]) if r["request_id"] else None}
            for r in records]
    return render_template("admin_bank_statement.html", **_layout_context("admin", admin_id),
                           process=process, rows=rows,
                           method=store.payment_methods.get(process["payment_type"]))


@bp.route("/admin/customers/view")
@login_required("admin")
def admin_customer(admin_id):
    """One customer: details, billing/deposit, invoices, proformas, payments, payment accounts."""
    store = _store()
    customer = store.customers.get(request.args.get("id", type=int))
    if customer is None:
        abort(404)
    cid = customer["id"]
    payments = [{"row": p, "method": store.payment_methods.get(p["payment_type"])}
                for p in store.payments.of_customer(cid)]
    proformas = [{"row": r, "label": store.status_label(r)} for r in store.proformas.of_customer(cid)]
    accounts = [r for (c, _), r in sorted(store.payment_accounts.items()) if c == cid]
    return render_template("admin_customer.html", **_layout_context("admin", admin_id),
                           customer=customer, billing=store.billing[cid],
                           invoices=_invoice_rows(store.invoices.of_customer(cid)),
                           proformas=proformas, payments=payments, accounts=accounts)


@bp.route("/admin/config/integrations/modules")
@login_required("admin")
def admin_modules(admin_id):
    """Config → Integrations → Modules list (splynx §3.2)."""
    store = _store()
    return render_template("admin_modules.html", **_layout_context("admin", admin_id),
                           modules=store.modules.all())


@bp.route("/admin/config/integrations/modules/edit", methods=["GET", "POST"])
@login_required("admin")
def admin_module_edit(admin_id):
    """Modules list → Edit: main information, add-on settings, entry point toggles (splynx §3.3)."""
    store = _store()
    name = request.args.get("name", "")
    module = next((m for m in store.modules.rows.values() if m["name"] == name), None)
    if module is None:
        abort(404)
    points = [p for p in store.entry_points.all() if p["module"] == name]
    settings = store.config_values.setdefault(("add-on", name, None), {})
    saved = False
    if request.method == "POST":
        module["title"] = request.form.get("title", module["title"])[:64] or module["title"]
        if request.form.get("entry_points_status") in ("enabled", "disabled"):
            module["entry_points_status"] = request.form["entry_points_status"]
        for key in list(settings):
            if f"setting:{key}" in request.form:
                settings[key] = request.form[f"setting:{key}"]
        for point in points:
            point["enabled"] = f"point:{point['id']}" in request.form
        saved = True
    # [I] Splynx renders an add-on's settings from its config.json (splynx §3.3); an add-on
    # with its own settings page (an admin menu_link rooted at the modules controller)
    # has that page shown here instead of the raw key/value list.
    config_page = next((p for p in visible_points("admin", "menu_link")
                        if p["module"] == name and p["root"].endswith("ModulesController")), None)
    return render_template("admin_module_edit.html", **_layout_context("admin", admin_id),
                           module=module, settings=settings, points=points, saved=saved,
                           config_page=config_page)


@bp.route("/admin/add-on")
@login_required("admin")
def admin_addon(admin_id):
    """Admin ``menu_link`` pages framed like the portal's."""
    point = _point_or_404("admin", request.args.get("module"), request.args.get("point"))
    return render_template("addon_frame.html", **_layout_context("admin", admin_id), point=point)


@bp.route("/")
def root():
    """Splynx's root sends visitors to the portal."""
    return redirect(url_for("splynx_pages.portal_dashboard"))

