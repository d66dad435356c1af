"""Request bodies as the official API Blueprint ("Splynx API v2.0", splynx-platform §0 APIB)
documents them, for the emulator's strict mode.

Each structure below is transcribed from the blueprint's "Data Structures" section it is
named after; a field's type is the blueprint's (``string``, ``number``, ``boolean``,
``enum[string]``, ``array[...]``, ``object``), ``required`` and ``nullable`` are its marks.
Additions are noted where they are made: ``additional_attributes`` (the blueprint's
"Additional fields" section: most models take them), an ``id`` where a PUT example sends
one, fields of the "... Response" structure a PUT may change.

:func:`check_body` holds a body to a structure: every field known, required fields present
on create (never on PUT: the blueprint's PUT examples send a single field), each value of
the documented JSON type. Form bodies (``x-www-form-urlencoded``) carry only strings, so for
them only the names and required fields are checked. Failures are 400 ``INVALID_INPUT_DATA``
with a message that starts with the field name, like every emulator validation error.
"""

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple, Union

from .errors import ApiError


@dataclass(frozen=True)
class F:
    """One documented field: ``type`` is ``"string"``, ``"number"``, ``"boolean"``,
    ``"object"``, ``"any"``, ``("enum", members)`` or ``("array", item)`` where ``item`` is a
    type or a :class:`Structure`."""

    type: Union[str, tuple]
    required: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Structure:
    """A named blueprint data structure: field name → :class:`F`."""

    name: str
    fields: Mapping[str, F]


def _s(required=False, nullable=False):
    return F("string", required, nullable)


def _n(required=False, nullable=False):
    return F("number", required, nullable)


def _enum(*members, required=False):
    return F(("enum", members), required)


_ZERO_ONE = ("0", "1")
_AF = {"additional_attributes": F("object")}

CUSTOMER = Structure("Customer Base (+ Customer Response: password, gps, billing_type)", {
    "login": _s(), "status": _s(), "partner_id": _n(True), "location_id": _n(True),
    "parent_id": _n(), "name": _s(True), "email": _s(), "billing_email": _s(), "phone": _s(),
    "category": _s(True), "street_1": _s(), "zip_code": _s(), "city": _s(), "date_add": _s(),
    "customer_labels": F(("array", "number")), "subdivision_id": _n(), "conversion_date": _s(),
    "daily_prepaid_cost": _n(), "password": _s(), "gps": _s(), "billing_type": _s(), **_AF,
})

CUSTOMER_BILLING = Structure("Customer Billing", {
    "customer_id": _n(), "enabled": _n(), **{name: _s() for name in (
        "type", "deposit", "billing_date", "billing_due", "blocking_period", "grace_period",
        "make_invoices", "payment_method", "min_balance", "request_auto_enable",
        "request_auto_day", "request_auto_period", "reminder_enable", "reminder_day_1",
        "reminder_day_2", "reminder_day_3", "reminder_payment", "reminder_payment_value",
        "reminder_payment_comment", "reminder_type", "billing_person", "billing_street_1",
        "billing_zip_code", "billing_city", "sub_billing_mode", "request_auto_next",
        "send_finance_notification", "partner_percent")},
    "request_auto_type": _n(),
})

_ITEM = {"description": _s(True), "quantity": _n(True), "unit": _n(True), "price": _n(),
         "tax": _n(), "period_from": _s(), "period_to": _s(), "sub_account_id": _n(),
         "id": _n()}  # id: the PUT examples name the item they change
INVOICE_ITEM = Structure("Invoice item", {**_ITEM, "categoryIdForTransaction": _n()})
PROFORMA_ITEM = Structure("Proforma Invoice item", _ITEM)

INVOICE = Structure("Invoice Base", {
    "customer_id": _n(True), "date_created": _s(), "date_updated": _s(), "date_till": _s(),
    "use_transactions": _enum(*_ZERO_ONE), "note": _s(), "memo": _s(), "date_payment": _s(),
    "status": _s(True), "number": _s(True), "payment_id": _n(),
    "type": _enum("one_time", "recurring"), "payd_from_deposit": _n(),
    "is_sent": _enum(*_ZERO_ONE), "items": F(("array", INVOICE_ITEM), True), **_AF,
})

PROFORMA = Structure("Proforma Invoice Base", {
    "customer_id": _n(True), "date_created": _s(), "date_updated": _s(), "date_till": _s(),
    "date_payment": _s(), "status": _s(True), "number": _s(True), "payment_id": _n(),
    "items": F(("array", PROFORMA_ITEM), True), **_AF,
})

PAYMENT = Structure("Payment Base", {
    "customer_id": _n(True), "invoice_id": _n(nullable=True), "credit_note_id": _n(nullable=True),
    "request_id": _n(nullable=True), "transaction_id": _n(),
    "payment_statement_id": _n(nullable=True), "payment_type": _s(True),
    "receipt_number": _s(True), "date": _s(True), "amount": _s(True), "comment": _s(),
    "is_sent": _enum(*_ZERO_ONE), **{f"field_{n}": _s(True) for n in range(1, 6)},
    "note": _s(), "memo": _s(), **_AF,
})

TRANSACTION = Structure("Transaction Base", {
    "type": _s(True), "customer_id": _n(True), "quantity": _n(), "unit": _s(), "price": _n(),
    "tax_percent": _n(True), "remind_amount": _n(), "date": _s(True), "category": _s(True),
    "description": _s(), "period_from": _s(), "period_to": _s(),
    "service_id": _n(nullable=True), "payment_id": _n(nullable=True), "credit_note_id": _n(),
    "invoice_id": _n(nullable=True), "invoiced_by_id": _n(nullable=True), "comment": _s(),
    "to_invoice": F("boolean"),
    "service_type": _enum("internet", "voice", "custom", "bundle", "one_time"),
    "source": _enum("manual", "auto", "cdr", "config"), "tax_id": _n(), "sub_account_id": _n(),
    **_AF,
})

PAYMENT_METHOD = Structure("PaymentMethods Base", {
    "name": _s(True), "is_active": F("boolean", True),
    **{f"name_{n}": _s() for n in range(1, 6)},
})

TRANSACTION_CATEGORY = Structure("TransactionCategories Base", {
    "name": _s(True), "is_base": _enum(*_ZERO_ONE),
})

PAYMENT_STATEMENT = Structure("Payment Statement Base", {
    "date_time": _s(), "title": _s(True), "handler": _s(), "payment_type": _n(), "status": _s(),
    "filename_original": _s(), "filename_uploaded": _s(), "filename_parsed": _s(),
    "delimiter": _s(), "id": _n(),  # id: the PUT example sends it
})

PAYMENT_STATEMENT_RECORD = Structure("Payment Statement Record Base", {
    "bank_statements_process_id": _n(True), "datetime": _s(), "payment_date": _s(),
    "amount": _s(), "status": _s(), "pairing_1": _s(), "pairing_2": _s(), "pairing_3": _s(),
    "additional_1": _s(), "additional_2": _s(), "additional_3": _s(), "comment": _s(),
    **{name: _n(nullable=True) for name in ("customer_id", "invoice_id", "credit_note_id",
                                            "request_id", "payment_id", "transaction_id")},
    "id": _n(),  # id: the PUT example sends it
})

MODULE = Structure("Module Base", {
    "name": _s(True), "title": _s(True), "root": _s(True), "type": _s(True),
})

#: Entry points: the blueprint documents only GET, so a POST/PUT body (when the emulator is
#: told to allow them) is held to the fields and types of "Entry Point Response", and
#: nothing is required (what a create needs is not documented).
ENTRY_POINT = Structure("Entry Point Response", {
    "module": _s(), "place": _enum("portal", "admin"),
    "type": _enum("menu_link", "code", "action_link", "tab"),
    "size": _enum("extra_small", "small", "medium", "large", "extra_large"),
    "title": _s(), "root": _s(), "model": _s(), "icon": _s(), "background": _s(), "url": _s(),
    "code": _s(), "partners": F(("array", "string")), "name": _s(),
    "location": _enum("before_content", "after_content"), "enabled": F("boolean"),
    "location_geo": F(("array", "string")), "payment_type": F(("array", "string")),
    "payment_account_id": _s(),
})

PAYMENT_ACCOUNT_DATA = Structure("Payment account data", {
    f"field_{n}": _s() for n in range(1, 11)})

#: Creating a payment-account definition is not documented at all; when allowed, the body
#: is held to "Payment accounts Response" without its id.
PAYMENT_ACCOUNT_DEFINITION = Structure("Payment accounts Response", {
    "title": _s(), **{f"field_{n}": _s() for n in range(1, 11)}})

#: The blueprint names the session field both ``session_id`` (the structure) and
#: ``session`` (its introduction); ``nonce`` and ``signature`` come from its table of
#: required fields per auth type, untyped.
TOKEN_REQUEST = Structure("Token request data", {
    "auth_type": _s(),  # blank or unknown: 400 INVALID_AUTH_TYPE, as the blueprint says
    "login": _s(), "password": _s(), "key": _s(), "secret": _s(), "session_id": _s(),
    "session": _s(), "code": _s(), "fingerprint": _s(), "signature": _s(), "nonce": F("any"),
})


def _type_name(kind) -> str:
    if isinstance(kind, tuple):
        if kind[0] == "enum":
            return "one of " + ", ".join(kind[1])
        item = kind[1].name if isinstance(kind[1], Structure) else kind[1]
        return f"an array of {item}"
    return {"string": "a string", "number": "a number", "boolean": "a boolean (true/false)",
            "object": "an object"}.get(kind, kind)


def _check_value(path: str, spec: F, value: Any, creating: bool) -> None:
    if value is None:
        if not spec.nullable:
            raise ApiError(400, "INVALID_INPUT_DATA", f"{path}: must not be null "
                           f"(the API blueprint types it as {_type_name(spec.type)})")
        return
    kind = spec.type
    if kind == "any":
        return
    if isinstance(kind, tuple) and kind[0] == "enum":
        ok = isinstance(value, str) and value in kind[1]
    elif isinstance(kind, tuple):  # array
        if not isinstance(value, list):
            ok = False
        else:
            for n, item in enumerate(value):
                if isinstance(kind[1], Structure):
                    if not isinstance(item, dict):
                        raise ApiError(400, "INVALID_INPUT_DATA",
                                       f"{path}[{n}]: must be an object ({kind[1].name})")
                    _check_fields(kind[1], item, creating, typed=True, prefix=f"{path}[{n}]")
                else:
                    _check_value(f"{path}[{n}]", F(kind[1]), item, creating)
            return
    elif kind == "string":
        ok = isinstance(value, str)
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "object":
        ok = isinstance(value, dict)
    else:  # pragma: no cover - a typo in the tables above
        raise AssertionError(f"unknown blueprint type {kind!r}")
    if not ok:
        raise ApiError(400, "INVALID_INPUT_DATA",
                       f"{path}: must be {_type_name(kind)} as the API blueprint types it, "
                       f"not {type(value).__name__} {value!r}"[:300])


def _check_fields(structure: Structure, body: Mapping[str, Any], creating: bool, *,
                  typed: bool, prefix: str = "", required: bool = True) -> None:
    for name, value in body.items():
        path = f"{prefix}[{name}]" if prefix else name
        spec = structure.fields.get(name)
        if spec is None:
            raise ApiError(400, "INVALID_INPUT_DATA",
                           f"{path}: unknown field (not in the API blueprint's {structure.name})")
        if typed:
            _check_value(path, spec, value, creating)
    if creating and required:
        for name, spec in structure.fields.items():
            if spec.required and name not in body:
                path = f"{prefix}[{name}]" if prefix else name
                raise ApiError(400, "INVALID_INPUT_DATA", f"{path}: cannot be blank "
                               f"(required by the API blueprint's {structure.name})")


def check_body(structure: Optional[Structure], body: Mapping[str, Any], *, creating: bool,
               typed: bool = True, required: bool = True) -> None:
    """Hold ``body`` to ``structure``; raise :class:`ApiError` 400 naming the field.

    ``creating`` (a POST) makes required fields required; ``typed`` is False for form
    bodies; ``required`` False for undocumented calls whose needs are unknown."""
    if structure is None:
        return
    _check_fields(structure, body, creating, typed=typed, required=required)


#: What strict mode checks, by (method, route) as :mod:`.api` names them.
BodySpec = Tuple[Structure, bool]
