"""Attribute lists of the emulated resources (splynx §2) and how each value is
typed on the wire.

Real Splynx answers with loose types (splynx §1.1): ids and most numbers as
strings, invoice totals as JSON numbers, money in ledgers as ``"75.0000"``,
empty dates as ``"0000-00-00"``. One table here drives the OPTIONS attribute
list, the search column types and the serialisation, so the three cannot drift.
"""

from decimal import Decimal

# wire kinds: sid = int sent as a string, num = Decimal sent as a JSON number,
# m4 = Decimal sent as "0.0000", s = string as is, bool = JSON bool,
# 01 = flag sent as "0"/"1", raw = list/dict as is.


class Field:
    """One attribute: search/OPTIONS ``type`` plus wire ``kind``."""

    def __init__(self, name, type_="string", kind="s", required=False, title=None, choices=None):
        self.name, self.type, self.kind, self.required = name, type_, kind, required
        self.title = title or name.replace("_", " ").capitalize()
        self.choices = choices

    def option(self):
        """The OPTIONS entry (splynx §1.1)."""
        entry = {"name": self.name, "title": self.title, "type": self.type,
                 "required": self.required}
        if self.choices:
            entry["values"] = {c: c for c in self.choices}
        return entry


def _id(name, required=False):
    return Field(name, "integer", "sid", required)


def _money(name, kind="m4", required=False):
    return Field(name, "decimal", kind, required)


def _str(name, required=False, choices=None):
    return Field(name, "enum" if choices else "string", "s", required, choices=choices)


def _date(name, required=False):
    return Field(name, "date", "s", required)


def _flag(name):
    return Field(name, "boolean", "01")


FIELD_SETS = {
    "customers": [
        _id("id"), _str("login", True), _str("status", choices=["new", "active", "blocked", "disabled"]),
        _id("partner_id"), _id("location_id"), _id("parent_id"), _str("name", True), _str("email"),
        _str("billing_email"), _str("phone"), _str("category", choices=["person", "company"]),
        _str("street_1"), _str("street_2"), _str("zip_code"), _str("city"), _id("subdivision_id"),
        _date("date_add"), _str("billing_type", choices=["recurring", "prepaid", "prepaid_monthly"]),
        _money("mrr_total"), _str("gps"), _str("added_by"), _id("added_by_id"),
        Field("last_online", "datetime"), Field("last_update", "datetime"),
        _money("daily_prepaid_cost"), _date("conversion_date"), _flag("gdpr_agreed"),
        Field("customer_labels", "array", "raw"), Field("additional_attributes", "object", "raw"),
    ],
    "billing": [
        _id("customer_id"), _flag("enabled"), _str("type", choices=["recurring", "prepaid", "prepaid_monthly"]),
        _money("deposit"), _id("billing_date"), _id("billing_due"), _id("blocking_period"),
        _id("grace_period"), _flag("make_invoices"), _id("payment_method"), _money("min_balance"),
        _flag("request_auto_enable"), _flag("reminder_enabled"), _str("billing_person"),
        _str("billing_street_1"), _str("billing_zip_code"), _str("billing_city"),
        _str("sub_billing_mode"), _flag("send_finance_notification"), _money("partner_percent"),
    ],
    "invoices": [
        _id("id"), _id("customer_id", True), _str("number"), _date("date_created"),
        Field("real_create_datetime", "datetime"), _date("date_updated"), _date("date_payment"),
        _date("date_till"), _flag("use_transactions"), _str("type", choices=["one_time", "recurring"]),
        _str("note"), _str("memo"), _money("total", "num"), _money("due", "num"), _id("payment_id"),
        _flag("payd_from_deposit"), _str("status", choices=["not_paid", "paid", "pending", "deleted"]),
        _flag("is_sent"), _str("added_by"), _id("added_by_id"),
        Field("additional_attributes", "object", "raw"), Field("items", "array", "raw", True),
    ],
    "proformas": [
        _id("id"), _id("customer_id", True), _str("number"), _date("date_created"), _date("date_updated"),
        _date("date_till"), _date("date_payment"), _str("status", choices=["not_paid", "paid", "pending"]),
        _id("payment_id"), _id("invoice_id"), _money("total", "num"), _str("note"), _str("memo"),
        Field("additional_attributes", "object", "raw"), Field("items", "array", "raw", True),
    ],
    "payments": [
        _id("id"), _id("customer_id", True), _id("invoice_id"), _id("request_id"), _id("credit_note_id"),
        _id("transaction_id"), _id("payment_type", True), _str("receipt_number", True),
        _date("date", True), _money("amount", required=True), _str("comment"), _str("note"), _str("memo"),
        _str("field_1"), _str("field_2"), _str("field_3"), _str("field_4"), _str("field_5"),
        _flag("is_sent"), _id("payment_statement_id"), _money("remind_amount"),
        Field("real_create_datetime", "datetime"), _str("added_by"), _id("added_by_id"),
        Field("additional_attributes", "object", "raw"),
    ],
    "transactions": [
        _id("id"), _str("type", True, ["debit", "credit"]), _id("customer_id", True),
        Field("quantity", "decimal", "s"), _str("unit"), _money("price"), _money("tax_percent"),
        _id("tax_id"), _money("total", required=True), _date("date", True), _id("category"),
        _str("description"), _date("period_from"), _date("period_to"), _id("service_id"),
        _str("service_type"), _id("payment_id"), _id("invoice_id"), _id("credit_note_id"),
        _id("invoiced_by_id"), _str("comment"), _flag("to_invoice"),
        _str("source", choices=["manual", "auto", "cdr", "config"]), _id("sub_account_id"),
    ],
    "relations": [
        _id("id"), _id("customer_id"), _id("payer_id"), _str("type", choices=["payment", "transaction", "credit_note"]),
        _id("invoice_id"), _id("transaction_id"), _id("payment_id"), _money("amount"),
    ],
    "payment_methods": [
        _id("id"), _str("name", True), _flag("is_active"), _str("name_1"), _str("name_2"),
        _str("name_3"), _str("name_4"), _str("name_5"), _id("accounting_bank_accounts_id"),
        _id("einvoicing_payment_methods_id"),
    ],
    "categories": [_id("id"), _str("name", True), _flag("is_base")],
    "modules": [
        _id("id"), _str("name", True), _str("title", True), _str("root"),
        _str("type", choices=["simple", "extended"]), _str("status", choices=["enabled", "disabled"]),
        _str("entry_points_status", choices=["enabled", "disabled"]),
    ],
    "entry_points": [
        _id("id"), _str("module", True), _str("name", True), _str("place", True, ["portal", "admin"]),
        _str("type", True, ["menu_link", "action_link", "code", "tab"]),
        _str("size", choices=["extra_small", "small", "medium", "large", "extra_large"]),
        _str("root"), _str("model"), _str("title"), _str("icon"), _str("background"), _str("url"),
        _str("code"), Field("partners", "array", "raw"), _str("location"), _str("payment_type"),
        Field("enabled", "boolean", "bool"),
    ],
    "payment_accounts": [
        _id("account_id"), _id("customer_id"),
        *[_str(f"field_{n}") for n in range(1, 11)],
    ],
    # splynx §2.7: payment statements ("bank statements") and their records. [I] the
    # ``filename_*`` fields of an uploaded file are named filename_original / filename_uploaded.
    "bank_statements": [
        _id("id"), _str("title", True), Field("date_time", "datetime"), _str("handler"),
        _id("payment_type"), _str("status", choices=["new", "fail", "success"]),
        _str("filename_original"), _str("filename_uploaded"), _str("delimiter"),
    ],
    "bank_statement_records": [
        _id("id"), _id("bank_statements_process_id", True), Field("datetime", "datetime"),
        _date("payment_date"), _money("amount", required=True),
        _str("status", choices=["new", "processed", "canceled", "error", "ignored", "deleted",
                                "manual_paired", "pending"]),
        _str("pairing_1"), _str("pairing_2"), _str("pairing_3"), _str("additional_1"),
        _str("additional_2"), _str("additional_3"), _str("comment"), _id("customer_id"),
        _id("invoice_id"), _id("credit_note_id"), _id("request_id"), _id("payment_id"),
        _id("transaction_id"),
    ],
    # Blueprint "Administrator Response" (no password on the wire).
    "administrators": [
        _id("id"), _id("partner_id"), _str("role_name"), _str("login", True), _str("name", True),
        _str("email", True), _id("timeout"), _str("router_access"), _str("phone"),
    ],
    # Blueprint "Partner Response".
    "partners": [_id("id"), _str("name")],
    # Blueprint "Company Info" (id = partner id).
    "company_info": [
        _id("id"), _id("invoice_template_id"), _id("request_template_id"),
        _id("receipt_template_id"), _id("reminder_mail_template_id"),
        _id("reminder_sms_template_id"), _id("report_statements_template_id"),
        _str("company_name"), _str("street_1"), _str("street_2"), _str("zip"), _str("city"),
        _str("country"), _str("iso_country_code"), _str("email"), _str("phone"),
        _str("company_id"), _str("company_vat"), _money("vat_percent"), _str("bank_account"),
        _str("bank_name"), _str("bank_address"), _str("splynx_url"), _money("partner_percent"),
        _id("file_logo"),
    ],
    # Blueprint "Payment accounts Response": a definition and its field labels.
    "payment_account_definitions": [
        _id("id"), _str("title", True), *[_str(f"field_{n}") for n in range(1, 11)],
    ],
}

SEARCH_TYPES = {name: {f.name: f.type for f in fields} for name, fields in FIELD_SETS.items()}
FIELDS_BY_NAME = {name: {f.name: f for f in fields} for name, fields in FIELD_SETS.items()}


def wire_value(kind, value):
    """Convert one internal value to the loose type Splynx would send."""
    if value is None:
        return None
    if kind == "sid":
        return str(value)
    if kind == "m4":
        return f"{Decimal(value):.4f}"
    if kind == "num":
        value = Decimal(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if kind == "01":
        return "1" if value else "0"
    if kind == "bool":
        return bool(value)
    return value


def serialize(set_name, row):
    """A row as the API returns it: only public attributes, loose wire types."""
    out = {f.name: wire_value(f.kind, row.get(f.name)) for f in FIELD_SETS[set_name]}
    if "items" in out:
        out["items"] = [serialize_item(item) for item in row.get("items") or []]
    return out


def serialize_item(item):
    """Invoice/proforma items carry string money like ``"75.0000"`` (splynx §2.2)."""
    return {
        "id": str(item["id"]), "description": item["description"],
        "quantity": wire_value("num", item["quantity"]), "unit": item.get("unit", ""),
        "price": wire_value("m4", item["price"]), "tax": wire_value("m4", item["tax"]),
        "period_from": item.get("period_from", "0000-00-00"),
        "period_to": item.get("period_to", "0000-00-00"),
        "categoryIdForTransaction": str(item.get("category", 1)),
        "sub_account_id": "0",
    }
