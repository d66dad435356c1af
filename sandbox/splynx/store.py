"""In-memory Splynx data: tables, the deterministic seed and the finance rules
(splynx §2.4): payments, credit/debit transactions, deposit and allocation.

All mutation happens under ``Store.lock``; callers (the API, the pages, the
control plane) hold it for the whole request so each request sees one state.
"""

import datetime
import os
import secrets
import threading
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .errors import ApiError

ZERO = Decimal("0")
CENT = Decimal("0.01")
EMPTY_DATE = "0000-00-00"

# splynx §2.5: the payment methods a fresh Splynx ships with.
DEFAULT_PAYMENT_METHODS = ["Cash", "Bank transfer", "Credit card", "PayPal", "Other", "Refill card"]
# Splynx's default transaction categories (the Splynx wiki, Config → Finance → Transaction
# categories: "Service, Discount, Payment, Refund, and Correction are set by default"). The
# strict seed leaves "Refund" out (setting refund_category) so that an add-on has to find
# its category by name or create it, never assume an id; its id 4 stays unused.
DEFAULT_CATEGORIES = [(1, "Service"), (2, "Discount"), (3, "Payment"), (4, "Refund"),
                      (5, "Correction")]
REFUND_CATEGORY_ID = 4
# [I] two partners: Splynx's first one and a reseller with customers of its own.
DEFAULT_PARTNERS = [(1, "Default"), (2, "Second Partner")]
# [I] administrators with the roles add-on staff pages tell apart (blueprint
# "Administrator Base": role_name 'administrator', 'super-administrator', ...).
DEFAULT_ADMINS = [
    (1, "admin", "Sandbox Administrator", "super-administrator", 0),
    (2, "office", "Olivia Office", "administrator", 1),
    (3, "manager", "Manny Manager", "manager", 1),
    (4, "partner", "Pat Partner", "partner", 2),
]
# [I] blueprint "Company Info" per partner: what a customer sees as the ISP.
DEFAULT_COMPANIES = {
    1: {"company_name": "Sandbox ISP Ltd", "street_1": "1 Fibre Street", "street_2": "",
        "zip": "12345", "city": "Springfield", "country": "United States",
        "iso_country_code": "US", "email": "billing@sandbox-isp.example",
        "phone": "+1 555 0100"},
    2: {"company_name": "Second Partner Networks", "street_1": "22 Relay Road", "street_2": "Unit 4",
        "zip": "54321", "city": "Shelbyville", "country": "United States",
        "iso_country_code": "US", "email": "accounts@second-partner.example",
        "phone": "+1 555 0200"},
}
# Additional-field types (splynx §1.5).
ADDITIONAL_FIELD_TYPES = {"string", "integer", "decimal", "numeric", "date", "datetime", "boolean",
                          "select", "select_multiple", "password", "file", "relation",
                          "relation_multiple"}

# Cents the IPpay test gateway approves; generated invoices use them so a
# benchmark's payments succeed (ippay-protocol.md, test gateway rules).
_APPROVING_AMOUNTS = ["10.00", "25.16", "42.17", "33.45", "61.50", "87.66", "15.88", "50.97",
                      "70.20", "99.99", "12.24", "64.60"]


def now_datetime():
    """Wall-clock time as Splynx formats datetimes."""
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def parse_money(value, field, *, positive=False, allow_negative=False):
    """A decimal amount from a string or number; 400 naming the field otherwise."""
    if isinstance(value, bool) or value is None or value == "":
        raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: must be a number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: must be a number") from None
    if not amount.is_finite():
        raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: must be a number")
    if positive and amount <= 0:
        raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: must be greater than 0")
    if not allow_negative and amount < 0:
        raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: must not be negative")
    return amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def parse_int(value, field, *, allow_zero=True):
    """An integer from a string or number; 400 naming the field otherwise."""
    if isinstance(value, bool):
        raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: must be an integer")
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: must be an integer") from None
    if number < 0 or (number == 0 and not allow_zero):
        raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: must be a positive integer")
    return number


def parse_date(value, field, *, allow_empty=False):
    """A ``YYYY-MM-DD`` date string (``0000-00-00`` only where a date may be empty)."""
    text = str(value or "").strip()
    if allow_empty and text in ("", EMPTY_DATE):
        return EMPTY_DATE
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: must be a date YYYY-MM-DD") from None
    return text


def parse_flag(value, field):
    """A 0/1 flag from ``0``, ``1``, ``"true"``, ``True``..."""
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: must be 0 or 1")


class Table:
    """Rows by integer id with an index on ``customer_id`` (searches and
    portal pages of one customer must stay fast with many generated invoices)."""

    def __init__(self, indexed=True):
        self.rows = {}
        self.next_id = 1
        self._by_customer = defaultdict(dict) if indexed else None
        #: Every row by id, kept until a row comes or goes (a search's id order, like a
        #: primary key index: 100,000 generated invoices are not sorted on every page).
        self._by_id = None

    def insert(self, row):
        """Store ``row``, assigning the next id unless it carries one."""
        if row.get("id") is None:
            row["id"] = self.next_id
        self.next_id = max(self.next_id, row["id"] + 1)
        self.rows[row["id"]] = row
        self._by_id = None
        if self._by_customer is not None:
            self._by_customer[row.get("customer_id")][row["id"]] = row
        return row

    def get(self, row_id):
        """The row or None."""
        return self.rows.get(row_id)

    def delete(self, row_id):
        """Remove and return the row."""
        row = self.rows.pop(row_id)
        self._by_id = None
        if self._by_customer is not None:
            self._by_customer[row.get("customer_id")].pop(row_id, None)
        return row

    def reindex(self, row, old_customer_id):
        """Move ``row`` in the customer index after its customer_id changed."""
        if self._by_customer is not None and old_customer_id != row.get("customer_id"):
            self._by_customer[old_customer_id].pop(row["id"], None)
            self._by_customer[row.get("customer_id")][row["id"]] = row

    def of_customer(self, customer_id):
        """Rows of one customer, by id."""
        if self._by_customer is None:
            return [r for r in self.rows.values() if r.get("customer_id") == customer_id]
        return sorted(self._by_customer.get(customer_id, {}).values(), key=lambda r: r["id"])

    def all(self):
        """Every row, by id (a list of the caller's own)."""
        return list(self.by_id())

    def by_id(self):
        """Every row, by id: the table's own list, not to be changed."""
        if self._by_id is None:
            self._by_id = sorted(self.rows.values(), key=lambda r: r["id"])
        return self._by_id


def _strict_by_default():
    """``SPLYNX_SANDBOX_STRICT=0`` (or off/false/no) turns strict mode off for a whole run."""
    return os.environ.get("SPLYNX_SANDBOX_STRICT", "1").strip().lower() not in (
        "0", "off", "false", "no")


DEFAULT_SETTINGS = {
    # Strict mode (README "Strict mode"): request bodies held to the API blueprint.
    "strict": True,
    # "refuse": undocumented methods (POST/PUT/DELETE on entry points, creating payment
    # account definitions) answer 405; "allow": the emulator offers them.
    "undocumented_methods": "refuse",
    # Whether the seed has Splynx's default "Refund" transaction category (see above).
    "refund_category": False,
    # Added to every API call, like a real Splynx's tens of milliseconds (issue 13).
    "latency_ms": 0,
    # "increasing": nonce must exceed the last one seen per key (splynx §7.1);
    # "unique": any nonce not used before; "off": no replay check.
    "nonce_mode": "increasing",
    "access_token_ttl": 1800,          # splynx §1.3b: 30 minutes
    "refresh_token_extra": 603000,     # refresh expiry = access expiry + 603 000 s
    "bind_tokens": False,              # splynx §1.3b IP / User-Agent binding, off by default
    "request_log_limit": 20000,        # bounded so benchmarks do not grow memory without end
    "extra_invoices": 0,
    "extra_customers": None,           # default: one customer per 10 generated invoices
    "extra_invoice_date": None,        # default: spread over 180 days from 2024-06-01
}


class Store:
    """The whole emulated Splynx state. ``reset()`` rebuilds the seed."""

    def __init__(self, config=None):
        self.config = dict(config or {})
        self.lock = threading.RLock()
        self.reset()

    # ------------------------------------------------------------------ seed
    def reset(self):
        """Forget everything and load the deterministic seed again."""
        with self.lock:
            strict = bool(self.config.get("strict", _strict_by_default()))
            # Lenient mode is the emulator as it was before strict mode: undocumented
            # methods offered, the Refund category seeded.
            self.settings = {**DEFAULT_SETTINGS, "strict": strict,
                             "undocumented_methods": "refuse" if strict else "allow",
                             "refund_category": not strict,
                             **{k: v for k, v in self.config.items() if k in DEFAULT_SETTINGS}}
            self.customers = Table(indexed=False)
            self.billing = {}
            self.invoices = Table()
            self.proformas = Table()
            self.payments = Table()
            self.transactions = Table()
            self.relations = Table()
            self.payment_methods = Table(indexed=False)
            self.categories = Table(indexed=False)
            self.modules = Table(indexed=False)
            self.entry_points = Table(indexed=False)
            # splynx §2.7: payment statements (processes) and their records.
            self.bank_statements = Table(indexed=False)
            self.bank_statement_records = Table()
            self.payment_accounts = {}
            # Config → Finance → Payment accounts (blueprint "Payment accounts Response").
            self.payment_account_definitions = Table(indexed=False)
            self.partners = Table(indexed=False)
            self.company_info = Table(indexed=False)
            self.additional_fields = {}
            self.config_values = {}
            self.admins = {}
            self.api_keys = {}
            self.sessions = {}
            self.tokens = {}
            self.refresh_tokens = {}
            self._item_seq = 0
            self.jwt_secret = secrets.token_bytes(32)
            self._seed()

    def _seed(self):
        for name in DEFAULT_PAYMENT_METHODS:
            self.payment_methods.insert({"name": name, "is_active": True, "name_1": "", "name_2": "",
                                         "name_3": "", "name_4": "", "name_5": "",
                                         "accounting_bank_accounts_id": 0,
                                         "einvoicing_payment_methods_id": 0})
        for category_id, name in DEFAULT_CATEGORIES:
            if category_id != REFUND_CATEGORY_ID or self.settings["refund_category"]:
                self.categories.insert({"id": category_id, "name": name, "is_base": True})
        for partner_id, name in DEFAULT_PARTNERS:
            self.partners.insert({"id": partner_id, "name": name})
            self.company_info.insert({
                "id": partner_id, "invoice_template_id": 1, "request_template_id": 2,
                "receipt_template_id": 3, "reminder_mail_template_id": 4,
                "reminder_sms_template_id": 5, "report_statements_template_id": 6,
                **DEFAULT_COMPANIES[partner_id], "company_id": "", "company_vat": "",
                "vat_percent": ZERO, "bank_account": "", "bank_name": "", "bank_address": "",
                "splynx_url": "", "partner_percent": ZERO, "file_logo": 0})
        for admin_id, login, name, role, partner in DEFAULT_ADMINS:
            self.admins[admin_id] = {
                "id": admin_id, "login": login, "password": f"{login}-pass", "name": name,
                "email": f"{login}@sandbox-isp.example", "role_name": role,
                "partner_id": partner, "timeout": 1200, "router_access": "none", "phone": ""}
        self.add_api_key(os.environ.get("SPLYNX_SANDBOX_API_KEY", "sandbox-key"),
                         os.environ.get("SPLYNX_SANDBOX_API_SECRET", "sandbox-secret"),
                         title="Sandbox key")
        # splynx §1.5: customers may read main/{portal,...}; values are plausible defaults.
        self.config_values[("main", "portal", None)] = {"portal_title": "Sandbox ISP portal",
                                                        "currency": "USD"}
        self.config_values[("main", "system", None)] = {"currency": "USD", "timezone": "UTC"}

        alice = self.add_customer("alice", "alice-pass", "Alice Anderson", "alice@example.com", 1)
        bob = self.add_customer("bob", "bob-pass", "Bob Brown", "bob@example.com", 2)
        # Carol is a customer of the second partner (per-partner settings, company info).
        carol = self.add_customer("carol", "carol-pass", "Carol Clark", "carol@example.com", 3,
                                  partner_id=2)

        def invoice(customer, total, day, description):
            return self.add_invoice(customer, [{"description": description, "quantity": 1,
                                                "price": total}], date_created=day)

        def pay(customer, amount, day, receipt, **link):
            return self.add_payment({"customer_id": customer, "amount": amount, "date": day,
                                     "payment_type": 2, "receipt_number": receipt,
                                     "added_by": "admin", "added_by_id": 1, **link})

        # Chronological, so "oldest first" (by date, then id) follows the ids.
        paid_a = invoice(alice, "60.00", "2024-01-05", "Internet 25M, January")
        paid_b = invoice(bob, "25.00", "2024-01-05", "Internet 10M, January")
        pay(alice, "60.00", "2024-01-10", "2024-01-00001", invoice_id=paid_a["id"])
        pay(bob, "25.00", "2024-01-12", "2024-01-00002", invoice_id=paid_b["id"])
        part_a = invoice(alice, "100.10", "2024-02-05", "Internet 50M, February")
        part_c = invoice(carol, "15.45", "2024-02-05", "VoIP line, February")
        pay(alice, "40.00", "2024-02-10", "2024-02-00003", invoice_id=part_a["id"])
        pay(carol, "5.00", "2024-02-11", "2024-02-00004", invoice_id=part_c["id"])
        invoice(alice, "75.00", "2024-03-05", "Internet 50M, March")
        invoice(bob, "30.00", "2024-03-05", "Internet 10M, March")
        invoice(carol, "99.99", "2024-03-05", "Business fibre, March")
        invoice(alice, "120.50", "2024-04-05", "Internet 50M + router, April")
        invoice(bob, "55.25", "2024-04-05", "Internet 10M + TV, April")
        invoice(alice, "19.05", "2024-05-05", "Static IP, May")
        invoice(bob, "12.34", "2024-05-05", "Static IP, May")
        self.add_proforma(alice, [{"description": "Installation, June", "quantity": 1, "price": "45.00"}],
                          date_created="2024-05-10")
        self.add_proforma(bob, [{"description": "Router rental, June", "quantity": 1, "price": "20.10"}],
                          date_created="2024-05-10")
        paid_pf = self.add_proforma(carol, [{"description": "Prepaid top-up", "quantity": 1,
                                             "price": "12.00"}], date_created="2024-05-10")
        pay(carol, "12.00", "2024-05-12", "2024-05-00005", request_id=paid_pf["id"])
        self._seed_extra()

    def _seed_extra(self):
        """Generated unpaid invoices for benchmarks, written straight into the
        tables (no per-invoice allocation pass: these customers have no credit)."""
        count = int(self.settings.get("extra_invoices") or 0)
        if count <= 0:
            return
        n_customers = int(self.settings.get("extra_customers") or max(1, count // 10))
        first = self.customers.next_id
        ids = []
        for n in range(n_customers):
            cid = first + n
            self.add_customer(f"customer{cid}", f"customer{cid}-pass", f"Customer {cid}",
                              f"customer{cid}@example.com", cid)
            ids.append(cid)
        for n in range(count):
            cid = ids[n % n_customers]
            total = Decimal(_APPROVING_AMOUNTS[n % len(_APPROVING_AMOUNTS)])
            day = self.settings.get("extra_invoice_date") or (
                datetime.date(2024, 6, 1) + datetime.timedelta(days=n // n_customers % 180)).isoformat()
            row = self._new_invoice_row(cid, [{"description": "Internet service", "quantity": 1,
                                               "price": total}], day, None, "system", 0)
            self.invoices.insert(row)
            row["number"] = self._invoice_number(row)
            self._add_transaction_row("debit", cid, row["total"], day, category=1,
                                      description=f"Invoice {row['number']}", invoice_id=row["id"])

    # --------------------------------------------------------------- people
    def add_customer(self, login, password, name, email, customer_id=None, **extra):
        """Create a customer with its billing record (deposit 0)."""
        row = {"id": customer_id, "login": login, "password": password, "status": "active",
               "partner_id": 1, "location_id": 1, "parent_id": 0, "name": name, "email": email,
               "billing_email": email, "phone": "", "category": "person", "street_1": "",
               "street_2": "", "zip_code": "", "city": "", "subdivision_id": 0,
               "date_add": "2023-12-01", "billing_type": "recurring", "mrr_total": ZERO,
               "gps": None, "added_by": "admin", "added_by_id": 1,
               "last_online": "2024-05-01 09:00:00", "last_update": "2023-12-01 10:00:00",
               "daily_prepaid_cost": ZERO, "conversion_date": EMPTY_DATE, "gdpr_agreed": False,
               "customer_labels": [], "additional_attributes": {}}
        row.update(extra)
        self.customers.insert(row)
        self.billing[row["id"]] = {
            "customer_id": row["id"], "enabled": True, "type": row["billing_type"], "deposit": ZERO,
            "billing_date": 1, "billing_due": 15, "blocking_period": 0, "grace_period": 3,
            "make_invoices": True, "payment_method": 1, "min_balance": ZERO,
            "request_auto_enable": False, "reminder_enabled": True, "billing_person": name,
            "billing_street_1": "", "billing_zip_code": "", "billing_city": "",
            "sub_billing_mode": "none", "send_finance_notification": True, "partner_percent": ZERO}
        return row["id"]

    def customer_by_login(self, login):
        """The customer row with this login, or None."""
        return next((c for c in self.customers.rows.values() if c["login"] == login), None)

    def new_session(self, kind, user_id):
        """Open a portal ("customer") or admin session; returns its PHPSESSID."""
        session_id = secrets.token_hex(13)  # 26 characters, like PHP's default ids
        self.sessions[session_id] = (kind, user_id)
        return session_id

    def add_api_key(self, key, secret, *, title="API key", permissions=None, unsecure_access=False,
                    allowed_ips=None, enabled=True):
        """Register an API key. ``permissions`` None = every controller and action;
        otherwise ``{"api\\admin\\finance\\Payments": ["index", "add"], ...}``."""
        key_id = max([k["id"] for k in self.api_keys.values()], default=0) + 1
        self.api_keys[key] = {"id": key_id, "title": title, "key": key, "secret": secret,
                              "enabled": enabled, "unsecure_access": unsecure_access,
                              "allowed_ips": list(allowed_ips or []), "permissions": permissions,
                              "last_nonce": None, "used_nonces": set()}
        return self.api_keys[key]

    # ----------------------------------------- what Splynx's add-on CLI does (§3.2)
    def api_key_by_id(self, key_id):
        """The API key record with this numeric id, or None."""
        return next((k for k in self.api_keys.values() if k["id"] == key_id), None)

    def add_or_get_api_key(self, title):
        """The key titled ``title``, else a new one with random key and secret, no
        permissions and 127.0.0.1 allowed (Administration → API keys defaults, splynx §1.3)."""
        found = next((k for k in self.api_keys.values() if k["title"] == title), None)
        if found is not None:
            return found
        return self.add_api_key(secrets.token_hex(16), secrets.token_hex(16), title=title,
                                permissions={}, allowed_ips=["127.0.0.1"])

    def add_payment_account_definition(self, fields):
        """A payment-account definition (Config → Finance → Payment accounts)."""
        row = {"title": "", **{f"field_{n}": "" for n in range(1, 11)}}
        row.update(fields)
        return self.payment_account_definitions.insert(row)

    def add_or_get_additional_field(self, main_module, name, title, type_, required, is_add):
        """An additional field of ``main_module`` (splynx §1.5, §2.8), kept if it exists."""
        if type_ not in ADDITIONAL_FIELD_TYPES:
            raise ApiError(400, "INVALID_INPUT_DATA", f"type: must be one of "
                           f"{', '.join(sorted(ADDITIONAL_FIELD_TYPES))}")
        key = (main_module, name)
        if key not in self.additional_fields:
            self.additional_fields[key] = {"main_module": main_module, "name": name,
                                           "title": title, "type": type_,
                                           "is_required": bool(required), "is_add": bool(is_add)}
        return self.additional_fields[key]

    # --------------------------------------------------------------- ledger
    def _add_transaction_row(self, kind, customer_id, total, date, **extra):
        row = {"type": kind, "customer_id": customer_id, "quantity": "1", "unit": "",
               "price": total, "tax_percent": ZERO, "tax_id": 0, "total": total, "date": date,
               "category": 1, "description": "", "period_from": EMPTY_DATE,
               "period_to": EMPTY_DATE, "service_id": 0, "service_type": "", "payment_id": 0,
               "invoice_id": 0, "credit_note_id": 0, "invoiced_by_id": 0, "comment": "",
               "to_invoice": False, "source": "auto", "sub_account_id": 0, "_allocated": ZERO}
        row.update(extra)
        self.transactions.insert(row)
        # splynx §2.6: debit = charge (lowers the balance), credit = payment (raises it).
        sign = 1 if kind == "credit" else -1
        self.billing[customer_id]["deposit"] += sign * total
        return row

    def add_transaction(self, data):
        """A manual transaction (``POST admin/finance/transactions``)."""
        customer_id = self.require_customer(data.get("customer_id"), "customer_id")
        kind = data.get("type")
        if kind not in ("debit", "credit"):
            raise ApiError(400, "INVALID_INPUT_DATA", "type: must be debit or credit")
        quantity = parse_money(data.get("quantity", 1), "quantity", positive=True)
        tax_percent = parse_money(data.get("tax_percent", 0) or 0, "tax_percent")
        if not ZERO <= tax_percent <= 100:
            raise ApiError(400, "INVALID_INPUT_DATA", "tax_percent: must be from 0 to 100")
        if data.get("total") not in (None, ""):
            total = parse_money(data["total"], "total", positive=True)
            price = parse_money(data.get("price", total), "price")
        else:
            price = parse_money(data.get("price"), "price", positive=True)
            net = price * quantity
            # [I] Splynx adds the tax to price × quantity; rounded half-up to the cent.
            tax = (net * tax_percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
            total = (net + tax).quantize(Decimal("0.0001"))
        date = parse_date(data.get("date"), "date")
        category = parse_int(data.get("category", 1), "category")
        if category not in self.categories.rows:
            raise ApiError(400, "INVALID_INPUT_DATA", "category: unknown transaction category")
        row = self._add_transaction_row(
            kind, customer_id, total, date, quantity=format(quantity.normalize(), "f"), price=price,
            tax_percent=tax_percent, category=category, description=str(data.get("description", "")),
            comment=str(data.get("comment", "")), source="manual")
        self.allocate(customer_id)
        return row

    # -------------------------------------------------------------- invoices
    def _items(self, items, field="items"):
        if isinstance(items, dict):
            items = [items[k] for k in sorted(items, key=lambda k: int(k) if k.isdigit() else 0)]
        if not isinstance(items, list) or not items:
            raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: at least one item is required")
        out = []
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                raise ApiError(400, "INVALID_INPUT_DATA", f"{field}[{n}]: must be an object")
            if not str(item.get("description", "")).strip():
                raise ApiError(400, "INVALID_INPUT_DATA", f"{field}[{n}][description]: cannot be blank")
            out.append({
                "description": str(item["description"]),
                "quantity": parse_money(item.get("quantity", 1), f"{field}[{n}][quantity]", positive=True),
                "unit": str(item.get("unit", "")),
                "price": parse_money(item.get("price"), f"{field}[{n}][price]", allow_negative=True),
                "tax": parse_money(item.get("tax", 0), f"{field}[{n}][tax]"),
                "period_from": parse_date(item.get("period_from"), f"{field}[{n}][period_from]", allow_empty=True),
                "period_to": parse_date(item.get("period_to"), f"{field}[{n}][period_to]", allow_empty=True),
                "category": int(item.get("categoryIdForTransaction") or 1),
            })
        return out

    def _next_item_ids(self, items):
        for item in items:
            self._item_seq += 1
            item["id"] = self._item_seq
        return items

    @staticmethod
    def _items_total(items):
        total = ZERO
        for item in items:
            line = Decimal(item["quantity"]) * Decimal(item["price"])
            total += line * (1 + Decimal(item["tax"]) / 100)
        return total.quantize(CENT, rounding=ROUND_HALF_UP)

    def _new_invoice_row(self, customer_id, items, date_created, date_till, added_by, added_by_id):
        items = self._next_item_ids([dict(i) for i in items])
        for item in items:
            item.setdefault("unit", "")
            item.setdefault("tax", ZERO)
            item["price"] = Decimal(item["price"])
            item["quantity"] = Decimal(item["quantity"])
        total = self._items_total(items)
        due_day = date_till or (datetime.date.fromisoformat(date_created) + datetime.timedelta(days=14)).isoformat()
        return {"customer_id": customer_id, "number": "", "date_created": date_created,
                "real_create_datetime": f"{date_created} 00:05:00", "date_updated": date_created,
                "date_payment": EMPTY_DATE, "date_till": due_day, "use_transactions": True,
                "type": "one_time", "note": "", "memo": "", "total": total, "due": total,
                "payment_id": 0, "payd_from_deposit": False, "status": "not_paid",
                "is_sent": False, "added_by": added_by, "added_by_id": added_by_id,
                "additional_attributes": {}, "items": items}

    @staticmethod
    def _invoice_number(row):
        # Shape of splynx §2.2's "202101000003": YYYYMM + zero-padded id.
        return row["date_created"][:4] + row["date_created"][5:7] + f"{row['id']:06d}"

    def add_invoice(self, customer_id, items, *, date_created, date_till=None, note="", memo="",
                    added_by="system", added_by_id=0, allocate=True):
        """Issue an invoice: a debit transaction lowers the deposit (splynx §2.6),
        then money already on the balance pays it ("Paid (from account balance)")."""
        row = self._new_invoice_row(customer_id, items, date_created, date_till, added_by, added_by_id)
        row.update(note=note, memo=memo)
        self.invoices.insert(row)
        row["number"] = self._invoice_number(row)
        self._add_transaction_row("debit", customer_id, row["total"], date_created, category=1,
                                  description=f"Invoice {row['number']}", invoice_id=row["id"])
        if allocate:
            self.allocate(customer_id, from_deposit=True)
        return row

    def create_invoice(self, data, added_by="api", added_by_id=0):
        """``POST admin/finance/invoices``."""
        customer_id = self.require_customer(data.get("customer_id"), "customer_id")
        items = self._items(data.get("items"))
        date_created = parse_date(data.get("date_created") or datetime.date.today().isoformat(), "date_created")
        date_till = parse_date(data["date_till"], "date_till") if data.get("date_till") else None
        return self.add_invoice(customer_id, items, date_created=date_created, date_till=date_till,
                                note=str(data.get("note", "")), memo=str(data.get("memo", "")),
                                added_by=added_by, added_by_id=added_by_id)

    def update_invoice(self, row, data):
        """``PUT admin/finance/invoices/<id>``: document fields only. Money moves
        through payments, so a PUT of ``{status: paid, date_payment, payment_id}``
        after a payment (splynx §2.4, [S JCC]) is tolerated and changes no amount."""
        if "status" in data:
            if data["status"] not in ("not_paid", "paid", "pending", "deleted"):
                raise ApiError(400, "INVALID_INPUT_DATA", "status: must be not_paid, paid, pending or deleted")
            row["status"] = data["status"]
        for field in ("date_payment", "date_till", "date_created"):
            if field in data:
                row[field] = parse_date(data[field], field, allow_empty=field == "date_payment")
        if "payment_id" in data:
            row["payment_id"] = parse_int(data["payment_id"] or 0, "payment_id")
        for field in ("note", "memo"):
            if field in data:
                row[field] = str(data[field])
        if "is_sent" in data:
            row["is_sent"] = parse_flag(data["is_sent"], "is_sent")
        if isinstance(data.get("additional_attributes"), dict):
            row["additional_attributes"].update(data["additional_attributes"])
        row["date_updated"] = datetime.date.today().isoformat()

    def delete_invoice(self, row):
        """Delete an unpaid invoice and its debit; refused while payments point at it
        (splynx §2.4: "cannot be deleted until the payments are deleted")."""
        if any(r["invoice_id"] == row["id"] for r in self.relations.of_customer(row["customer_id"])):
            raise ApiError(400, "ENTITY_CANNOT_BE_DELETED",
                           "Invoice has payments; delete the payments first")
        self._drop_invoice(row)
        self.allocate(row["customer_id"])

    def _drop_invoice(self, row):
        for txn in self.transactions.of_customer(row["customer_id"]):
            if txn["invoice_id"] == row["id"] and txn["type"] == "debit":
                self.billing[row["customer_id"]]["deposit"] += txn["total"]
                self.transactions.delete(txn["id"])
        self.invoices.delete(row["id"])

    # ------------------------------------------------------------- proformas
    def add_proforma(self, customer_id, items, *, date_created, date_till=None, note="", memo=""):
        """A proforma ("request"); it does not touch the balance (splynx §2.3)."""
        items = self._next_item_ids([dict(i) for i in items])
        for item in items:
            item.setdefault("unit", "")
            item.setdefault("tax", ZERO)
            item["price"] = Decimal(item["price"])
            item["quantity"] = Decimal(item["quantity"])
        due_day = date_till or (datetime.date.fromisoformat(date_created) + datetime.timedelta(days=14)).isoformat()
        row = self.proformas.insert({
            "customer_id": customer_id, "number": "", "date_created": date_created,
            "date_updated": date_created, "date_till": due_day, "date_payment": EMPTY_DATE,
            "status": "not_paid", "payment_id": 0, "invoice_id": 0,
            "total": self._items_total(items), "note": note, "memo": memo,
            "additional_attributes": {}, "items": items})
        # [I] proforma numbers are YYYYMM + 4-digit id: never equal to an invoice number.
        row["number"] = date_created[:4] + date_created[5:7] + f"{row['id']:04d}"
        return row

    def create_proforma(self, data):
        """``POST admin/finance/proforma-invoices``."""
        customer_id = self.require_customer(data.get("customer_id"), "customer_id")
        items = self._items(data.get("items"))
        date_created = parse_date(data.get("date_created") or datetime.date.today().isoformat(), "date_created")
        date_till = parse_date(data["date_till"], "date_till") if data.get("date_till") else None
        return self.add_proforma(customer_id, items, date_created=date_created, date_till=date_till,
                                 note=str(data.get("note", "")), memo=str(data.get("memo", "")))

    def update_proforma(self, row, data):
        """``PUT admin/finance/proforma-invoices/<id>``: document fields only."""
        if "status" in data:
            if data["status"] not in ("not_paid", "paid", "pending"):
                raise ApiError(400, "INVALID_INPUT_DATA", "status: must be not_paid, paid or pending")
            row["status"] = data["status"]
        for field in ("date_payment", "date_till"):
            if field in data:
                row[field] = parse_date(data[field], field, allow_empty=field == "date_payment")
        if "payment_id" in data:
            row["payment_id"] = parse_int(data["payment_id"] or 0, "payment_id")
        for field in ("note", "memo"):
            if field in data:
                row[field] = str(data[field])

    def delete_proforma(self, row):
        """Delete a proforma that no payment has paid."""
        if row["status"] == "paid":
            raise ApiError(400, "ENTITY_CANNOT_BE_DELETED", "Proforma invoice is paid")
        self.proformas.delete(row["id"])

    # -------------------------------------------------------------- payments
    def require_customer(self, value, field):
        """The id of an existing customer, 400 naming ``field`` otherwise."""
        if value in (None, ""):
            raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: cannot be blank")
        customer_id = parse_int(value, field)
        if customer_id not in self.customers.rows:
            raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: customer {customer_id} does not exist")
        return customer_id

    def _payment_fields(self, data, current=None):
        """Validate a payment body (splynx §2.4 table) into internal values."""
        merged = {k: v for k, v in (current or {}).items() if not k.startswith("_")}
        merged.update({k: v for k, v in data.items() if k in _PAYMENT_WRITABLE})
        for field in ("customer_id", "payment_type", "receipt_number", "date", "amount"):
            if merged.get(field) in (None, ""):
                raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: cannot be blank")
        out = dict(merged)
        out["customer_id"] = self.require_customer(merged["customer_id"], "customer_id")
        out["payment_type"] = parse_int(merged["payment_type"], "payment_type")
        if out["payment_type"] not in self.payment_methods.rows:
            raise ApiError(400, "INVALID_INPUT_DATA", "payment_type: unknown payment method")
        out["amount"] = parse_money(merged["amount"], "amount", positive=True)
        out["date"] = parse_date(merged["date"], "date")
        out["receipt_number"] = str(merged["receipt_number"])
        for link, table in (("invoice_id", self.invoices), ("request_id", self.proformas)):
            value = merged.get(link)
            out[link] = 0 if value in (None, "", 0, "0") else parse_int(value, link)
            if out[link]:
                doc = table.get(out[link])
                if doc is None:
                    raise ApiError(400, "INVALID_INPUT_DATA", f"{link}: document {out[link]} does not exist")
                if doc["customer_id"] != out["customer_id"]:
                    raise ApiError(400, "INVALID_INPUT_DATA", f"{link}: document belongs to another customer")
        for field in ("credit_note_id", "transaction_id", "payment_statement_id", "added_by_id"):
            out[field] = parse_int(merged.get(field) or 0, field)
        out["is_sent"] = parse_flag(merged.get("is_sent", 0), "is_sent")
        for field in ("comment", "note", "memo", "field_1", "field_2", "field_3", "field_4", "field_5"):
            out[field] = "" if merged.get(field) is None else str(merged[field])
        if not isinstance(out.get("additional_attributes"), dict):
            out["additional_attributes"] = {}
        return out

    def add_payment(self, data):
        """``POST admin/finance/payments`` and its effects (splynx §2.4)."""
        row = self._payment_fields(data)
        row.update(remind_amount=ZERO, real_create_datetime=now_datetime(),
                   added_by=data.get("added_by", "api"))
        self.payments.insert(row)
        self._apply_payment(row)
        return row

    def _apply_payment(self, row):
        cid = row["customer_id"]
        credit = self._add_transaction_row(
            "credit", cid, row["amount"], row["date"], category=3, payment_id=row["id"],
            description=f"Payment {row['receipt_number']}", source="manual")
        row["_credit_txn"] = credit["id"]
        if row["invoice_id"]:
            invoice = self.invoices.get(row["invoice_id"])
            self._pay_invoice(invoice, credit, min(row["amount"], invoice["due"]), row)
        elif row["request_id"]:
            proforma = self.proformas.get(row["request_id"])
            # [I] a proforma is paid only by one payment covering its total; Splynx then
            # issues an invoice for it, which this payment pays. A smaller payment is
            # plain balance money and the proforma stays unpaid.
            if proforma["status"] != "paid" and row["amount"] >= proforma["total"]:
                invoice = self.add_invoice(cid, proforma["items"], date_created=row["date"],
                                           note=f"Proforma invoice {proforma['number']}",
                                           allocate=False)
                self._pay_invoice(invoice, credit, invoice["due"], row)
                proforma.update(status="paid", date_payment=row["date"], payment_id=row["id"],
                                invoice_id=invoice["id"])
                row["_proforma_invoice"] = invoice["id"]
        # Whatever the link left over is unlinked money: oldest invoices first.
        self.allocate(cid)

    def _pay_invoice(self, invoice, credit, amount, payment=None, from_deposit=False):
        if amount <= 0:
            return
        self.relations.insert({
            "customer_id": invoice["customer_id"], "payer_id": invoice["customer_id"],
            "type": "payment" if credit["payment_id"] else "transaction",
            "invoice_id": invoice["id"], "transaction_id": credit["id"],
            "payment_id": credit["payment_id"], "amount": amount})
        credit["_allocated"] += amount
        invoice["due"] -= amount
        if invoice["due"] <= 0:
            invoice["due"] = ZERO
            invoice["status"] = "paid"
            invoice["payment_id"] = credit["payment_id"]
            invoice["date_payment"] = payment["date"] if payment else credit["date"]
            invoice["payd_from_deposit"] = from_deposit

    def allocate(self, customer_id, from_deposit=False):
        """Spread unlinked credit over unpaid invoices, oldest first (splynx §2.4).

        Money free for invoices = deposit + what unpaid invoices still owe: that is
        credit not yet allocated, after loose debit transactions took their share.
        Invoices are never over-paid; the rest stays on the balance.
        """
        unpaid = [i for i in self.invoices.of_customer(customer_id)
                  if i["status"] in ("not_paid", "pending") and i["due"] > 0]
        if not unpaid:
            return
        available = self.billing[customer_id]["deposit"] + sum(i["due"] for i in unpaid)
        if available <= 0:
            return
        credits = [t for t in self.transactions.of_customer(customer_id)
                   if t["type"] == "credit" and t["total"] > t["_allocated"]]
        credits.sort(key=lambda t: (t["date"], t["id"]))
        unpaid.sort(key=lambda i: (i["date_created"], i["id"]))
        for invoice in unpaid:
            while available > 0 and invoice["due"] > 0 and credits:
                credit = credits[0]
                amount = min(available, invoice["due"], credit["total"] - credit["_allocated"])
                payment = self.payments.get(credit["payment_id"]) if credit["payment_id"] else None
                self._pay_invoice(invoice, credit, amount, payment, from_deposit)
                available -= amount
                if credit["_allocated"] >= credit["total"]:
                    credits.pop(0)

    def _reverse_payment(self, row):
        """Undo a payment's effects [I]: its credit, its allocations, the invoice a
        proforma payment issued; then re-spread any remaining credit."""
        cid = row["customer_id"]
        for rel in [r for r in self.relations.of_customer(cid) if r["payment_id"] == row["id"]]:
            self._unallocate(rel)
        if row.get("_proforma_invoice"):
            invoice = self.invoices.get(row["_proforma_invoice"])
            if invoice is not None:
                for rel in [r for r in self.relations.of_customer(cid) if r["invoice_id"] == invoice["id"]]:
                    self._unallocate(rel)
                self._drop_invoice(invoice)
            proforma = self.proformas.get(row["request_id"])
            if proforma is not None:
                proforma.update(status="not_paid", date_payment=EMPTY_DATE, payment_id=0, invoice_id=0)
            row.pop("_proforma_invoice")
        credit = self.transactions.get(row.pop("_credit_txn"))
        self.billing[cid]["deposit"] -= credit["total"]
        self.transactions.delete(credit["id"])
        self.allocate(cid)

    def _unallocate(self, rel):
        self.relations.delete(rel["id"])
        credit = self.transactions.get(rel["transaction_id"])
        if credit is not None:
            credit["_allocated"] -= rel["amount"]
        invoice = self.invoices.get(rel["invoice_id"])
        if invoice is None:
            return
        invoice["due"] += rel["amount"]
        if invoice["status"] == "paid":
            invoice.update(status="not_paid", date_payment=EMPTY_DATE, payd_from_deposit=False)
        others = [r for r in self.relations.of_customer(invoice["customer_id"])
                  if r["invoice_id"] == invoice["id"]]
        invoice["payment_id"] = others[-1]["payment_id"] if others else 0

    def update_payment(self, row, data):
        """``PUT admin/finance/payments/<id>``: [I] reverse the old effects, apply the new."""
        fields = self._payment_fields(data, current=row)
        self._reverse_payment(row)
        old_customer = row["customer_id"]
        row.update(fields)
        self.payments.reindex(row, old_customer)
        self._apply_payment(row)

    def delete_payment(self, row):
        """``DELETE admin/finance/payments/<id>``: [I] reverses its effects."""
        self._reverse_payment(row)
        self.payments.delete(row["id"])

    # ----------------------------------------------------------------- views
    def status_label(self, doc):
        """The derived label the Splynx UI shows (splynx §2.2)."""
        if doc["status"] == "paid":
            return "Paid (from account balance)" if doc.get("payd_from_deposit") else "Paid"
        if doc["status"] == "pending":
            return "Pending"
        if doc["status"] == "deleted":
            return "Deleted"
        due = doc.get("due", doc["total"])
        if 0 < due < doc["total"]:
            return "Partially paid"
        return "Unpaid"


_PAYMENT_WRITABLE = {
    "customer_id", "invoice_id", "request_id", "credit_note_id", "transaction_id", "payment_type",
    "receipt_number", "date", "amount", "comment", "note", "memo", "field_1", "field_2", "field_3",
    "field_4", "field_5", "is_sent", "payment_statement_id", "added_by_id", "additional_attributes",
}
