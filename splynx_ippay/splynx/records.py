"""What the Splynx client hands back: frozen dataclasses with plain Python types
(this module was ``models.py``; that name still imports).

Splynx types its JSON loosely: ids and most numbers arrive as strings (``"7"``,
``"75.0000"``), some as numbers (``16.47``), an empty date is ``"0000-00-00"``
(splynx §1.1). The add-on works in ``int`` ids, ``int`` cents and ``datetime.date``
(docs/interfaces.md "Money and identifiers"), so everything is converted here, at
the edge, once. ``raw`` keeps Splynx's record as sent, for fields not modelled (not on
customers, which a charge run keeps by the thousand).
"""

from __future__ import annotations

import datetime
import decimal
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping, Optional, Tuple

_CENT = Decimal("0.01")


def parse_id(value) -> int:
    """Turn a Splynx id (``"7"`` or ``7``) into an ``int``; anything else is a ``ValueError``."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an id: {value!r}")
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise ValueError(f"not an id: {value!r}")
    elif not isinstance(value, int):
        raise ValueError(f"not an id: {value!r}")
    return int(value)


def parse_optional_id(value) -> Optional[int]:
    """Like :func:`parse_id`, but a link that is not set (``None``, ``""``, ``"0"``,
    ``0``) is ``None``: Splynx writes ``payment_id: "0"`` on an unpaid invoice (splynx §2.2)."""
    if value is None or value == "":
        return None
    number = parse_id(value)
    return number or None


def money_to_cents(value) -> int:
    """Turn a Splynx amount (``"75.0000"``, ``16.47``, ``75``, ``"-210.00"``) into
    ``int`` cents, rounding half away from zero (``ROUND_HALF_UP``).

    Floats go through ``str`` first so that ``16.47`` is 1647, not the binary
    neighbour of 16.47. ``None``, ``""``, booleans, NaN and infinities are
    ``ValueError``: a missing amount must not pass for zero.
    """
    if value is None or isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, float):
        value = str(value)
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except (decimal.InvalidOperation, TypeError):
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return int((amount * 100).quantize(Decimal(1), rounding=decimal.ROUND_HALF_UP))


def cents_to_money(cents: int) -> str:
    """Turn ``int`` cents into the decimal string Splynx takes: 7500 → ``"75.00"``."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"cents must be an int, not {cents!r}")
    return str((Decimal(cents) * _CENT).quantize(_CENT))


#: Up to 15 significant digits a decimal survives the trip through a double (DBL_DIG):
#: amounts below 10 000 000 000 000.00 keep every cent.
_EXACT_CENTS = 10 ** 15


def cents_to_number(cents: int) -> float:
    """Turn ``int`` cents into the JSON *number* where the API blueprint types an amount
    as ``number`` (a transaction's ``price``): 1005 → ``10.05``.

    ``cents / 100`` is the double nearest to the decimal amount, and JSON writes a float
    with the shortest text that reads back as that double; a decimal of at most 15
    significant digits is that text itself, so no cent is lost on the wire.
    """
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"cents must be an int, not {cents!r}")
    if abs(cents) >= _EXACT_CENTS:
        raise ValueError(f"{cents} cents is too large to send as a JSON number exactly")
    return cents / 100


def parse_date(value) -> Optional[datetime.date]:
    """Turn ``"YYYY-MM-DD"`` (or the date part of ``"YYYY-MM-DD HH:MM:SS"``) into a
    ``date``; Splynx's empty dates (``"0000-00-00"``, ``""``, ``None``) are ``None``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    text = value.strip()[:10]
    if text in ("", "0000-00-00"):
        return None
    return datetime.date.fromisoformat(text)


def parse_bool(value) -> bool:
    """Turn Splynx's flags (``"1"``/``"0"``, ``1``/``0``, ``true``/``false``) into ``bool``."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _text(value) -> str:
    """A string field; Splynx's ``null`` becomes ``""`` so callers need not test for None."""
    return "" if value is None else str(value)


def _decimal(value) -> Decimal:
    """A quantity or percentage, kept exact."""
    return Decimal(str(value).strip() or "0")


@dataclass(frozen=True)
class Identity:
    """Who owns a Splynx session (splynx §4): ``kind`` is ``"customer"`` or ``"admin"``,
    ``expires_at`` an aware UTC datetime after which the answer must be asked again."""

    kind: str
    id: int
    expires_at: datetime.datetime


@dataclass(frozen=True)
class InvoiceItem:
    """One line of an invoice or proforma; ``price_cents`` is the unit price."""

    id: Optional[int]
    description: str
    quantity: Decimal
    unit: str
    price_cents: int
    tax_percent: Decimal
    period_from: Optional[datetime.date]
    period_to: Optional[datetime.date]

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "InvoiceItem":
        """Convert one element of ``items[]`` (splynx §2.2)."""
        return cls(
            id=parse_optional_id(data.get("id")),
            description=_text(data.get("description")),
            quantity=_decimal(data.get("quantity", 1)),
            unit=_text(data.get("unit")),
            price_cents=money_to_cents(data.get("price", 0)),
            tax_percent=_decimal(data.get("tax", 0)),
            period_from=parse_date(data.get("period_from")),
            period_to=parse_date(data.get("period_to")),
        )


def _items(data) -> Tuple[InvoiceItem, ...]:
    return tuple(InvoiceItem.from_api(item) for item in data.get("items") or ())


def _document_fields(data: Mapping[str, Any]) -> dict:
    """The fields invoices and proformas share, converted."""
    return dict(
        id=parse_id(data["id"]),
        customer_id=parse_id(data["customer_id"]),
        number=_text(data.get("number")),
        status=_text(data.get("status")),
        total_cents=money_to_cents(data["total"]),
        date_created=parse_date(data.get("date_created")),
        date_till=parse_date(data.get("date_till")),
        date_payment=parse_date(data.get("date_payment")),
        payment_id=parse_optional_id(data.get("payment_id")),
        note=_text(data.get("note")),
        items=_items(data),
        raw=data,
    )


@dataclass(frozen=True)
class Invoice:
    """An invoice (splynx §2.2). ``status`` is ``not_paid``, ``paid``, ``pending`` or
    ``deleted``; ``due_cents`` is what is still owed after partial payments."""

    id: int
    customer_id: int
    number: str
    status: str
    total_cents: int
    due_cents: int
    date_created: Optional[datetime.date]
    date_till: Optional[datetime.date]
    date_payment: Optional[datetime.date]
    payment_id: Optional[int]
    note: str
    items: Tuple[InvoiceItem, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "Invoice":
        """Convert an ``admin/finance/invoices`` record."""
        return cls(due_cents=money_to_cents(data["due"]), **_document_fields(data))


@dataclass(frozen=True)
class Proforma:
    """A proforma invoice, Splynx's "request" (splynx §2.3).

    Splynx keeps no ``due`` on a proforma; :attr:`due_cents` is its total until it
    is paid and 0 after (docs/interfaces.md, a decision), so callers can treat
    invoices and proformas alike.
    """

    id: int
    customer_id: int
    number: str
    status: str
    total_cents: int
    date_created: Optional[datetime.date]
    date_till: Optional[datetime.date]
    date_payment: Optional[datetime.date]
    payment_id: Optional[int]
    note: str
    items: Tuple[InvoiceItem, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def due_cents(self) -> int:
        """What is still owed: the total until the proforma is paid."""
        return 0 if self.status == "paid" else self.total_cents

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "Proforma":
        """Convert an ``admin/finance/proforma-invoices`` record."""
        return cls(**_document_fields(data))


@dataclass(frozen=True)
class Customer:
    """A customer (splynx §2.1). ``status`` is ``new``, ``active``, ``blocked`` or
    ``disabled``; ``billing_type`` ``recurring``, ``prepaid`` or ``prepaid_monthly``."""

    id: int
    login: str
    name: str
    email: str
    status: str
    partner_id: Optional[int]
    billing_type: str
    billing_email: str
    phone: str
    street_1: str
    zip_code: str
    city: str
    # No copy of the API's whole record (``raw``, as other records keep): charge runs keep
    # every customer they charge, and at 10,000 customers the records were some 30 MB of a
    # worker's memory (docs/performance.md).

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "Customer":
        """Convert an ``admin/customers/customer`` record."""
        return cls(
            id=parse_id(data["id"]),
            login=_text(data.get("login")),
            name=_text(data.get("name")),
            email=_text(data.get("email")),
            status=_text(data.get("status")),
            partner_id=parse_optional_id(data.get("partner_id")),
            billing_type=_text(data.get("billing_type")),
            billing_email=_text(data.get("billing_email")),
            phone=_text(data.get("phone")),
            street_1=_text(data.get("street_1")),
            zip_code=_text(data.get("zip_code")),
            city=_text(data.get("city")),
        )


@dataclass(frozen=True)
class CustomerBilling:
    """A customer's billing settings (splynx §2.1). ``deposit_cents`` is the account
    balance: negative means the customer owes money. ``payment_method_id`` is the
    customer's preferred payment method (``None`` when not set)."""

    customer_id: int
    deposit_cents: int
    payment_method_id: Optional[int]
    enabled: bool
    billing_person: str
    billing_street_1: str
    billing_zip_code: str
    billing_city: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "CustomerBilling":
        """Convert an ``admin/customers/customer-billing`` record."""
        return cls(
            customer_id=parse_id(data["customer_id"]),
            deposit_cents=money_to_cents(data["deposit"]),
            payment_method_id=parse_optional_id(data.get("payment_method")),
            enabled=parse_bool(data.get("enabled", True)),
            billing_person=_text(data.get("billing_person")),
            billing_street_1=_text(data.get("billing_street_1")),
            billing_zip_code=_text(data.get("billing_zip_code")),
            billing_city=_text(data.get("billing_city")),
            raw=data,
        )


@dataclass(frozen=True)
class Payment:
    """A payment (splynx §2.4). ``payment_type`` is the id of a payment method;
    ``field_1``..``field_5`` are free fields (the add-on keeps the IPpay
    TransactionID in ``field_1``)."""

    id: int
    customer_id: int
    amount_cents: int
    payment_type: int
    date: Optional[datetime.date]
    invoice_id: Optional[int]
    request_id: Optional[int]
    receipt_number: str
    field_1: str
    field_2: str
    field_3: str
    field_4: str
    field_5: str
    comment: str
    note: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "Payment":
        """Convert an ``admin/finance/payments`` record."""
        return cls(
            id=parse_id(data["id"]),
            customer_id=parse_id(data["customer_id"]),
            amount_cents=money_to_cents(data["amount"]),
            payment_type=parse_id(data["payment_type"]),
            date=parse_date(data.get("date")),
            invoice_id=parse_optional_id(data.get("invoice_id")),
            request_id=parse_optional_id(data.get("request_id")),
            receipt_number=_text(data.get("receipt_number")),
            field_1=_text(data.get("field_1")),
            field_2=_text(data.get("field_2")),
            field_3=_text(data.get("field_3")),
            field_4=_text(data.get("field_4")),
            field_5=_text(data.get("field_5")),
            comment=_text(data.get("comment")),
            note=_text(data.get("note")),
            raw=data,
        )


@dataclass(frozen=True)
class PaymentMethod:
    """A payment method of *Config → Finance → Payment methods* (splynx §2.5)."""

    id: int
    name: str
    is_active: bool
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def field_names(self) -> Tuple[str, ...]:
        """The labels of a payment's ``field_1``..``field_5`` (``name_1``..``name_5``)."""
        return tuple(_text(self.raw.get(f"name_{n}")) for n in range(1, 6))

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "PaymentMethod":
        """Convert an ``admin/finance/payment-methods`` record."""
        return cls(
            id=parse_id(data["id"]),
            name=_text(data.get("name")),
            is_active=parse_bool(data.get("is_active", True)),
            raw=data,
        )


@dataclass(frozen=True)
class PaymentAccount:
    """A customer's stored data for one payment account definition (splynx §2.1):
    ``fields`` maps ``"field_1"``..``"field_10"`` to strings."""

    customer_id: int
    account_id: int
    fields: Mapping[str, str] = field(hash=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "PaymentAccount":
        """Convert an ``admin/customers/customer-payment-accounts`` record."""
        return cls(
            customer_id=parse_id(data["customer_id"]),
            account_id=parse_id(data["account_id"]),
            fields={k: _text(v) for k, v in data.items() if k.startswith("field_")},
        )


@dataclass(frozen=True)
class BankStatement:
    """A payment statement ("bank statement") process (splynx §2.7): the batch gateway
    add-ons log their payments under, e.g. ``"IPpay 10/2023"``. ``status`` is ``new``,
    ``fail`` or ``success``; ``date_time`` stays Splynx's ``"YYYY-MM-DD HH:MM:SS"`` text."""

    id: int
    title: str
    date_time: str
    handler: str
    payment_type: Optional[int]
    status: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "BankStatement":
        """Convert an ``admin/finance/bank-statements`` record."""
        return cls(
            id=parse_id(data["id"]),
            title=_text(data.get("title")),
            date_time=_text(data.get("date_time")),
            handler=_text(data.get("handler")),
            payment_type=parse_optional_id(data.get("payment_type")),
            status=_text(data.get("status")),
            raw=data,
        )


@dataclass(frozen=True)
class BankStatementRecord:
    """One record of a payment statement (splynx §2.7). ``status`` is ``new``,
    ``processed``, ``canceled``, ``error``, ``ignored``, ``deleted``, ``manual_paired`` or
    ``pending``; links that are not set are ``None``."""

    id: int
    process_id: int
    amount_cents: int
    status: str
    payment_date: Optional[datetime.date]
    customer_id: Optional[int]
    payment_id: Optional[int]
    invoice_id: Optional[int]
    request_id: Optional[int]
    comment: str
    pairing_1: str
    pairing_2: str
    pairing_3: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "BankStatementRecord":
        """Convert an ``admin/finance/bank-statements-records`` record."""
        return cls(
            id=parse_id(data["id"]),
            process_id=parse_id(data["bank_statements_process_id"]),
            amount_cents=money_to_cents(data["amount"]),
            status=_text(data.get("status")),
            payment_date=parse_date(data.get("payment_date")),
            customer_id=parse_optional_id(data.get("customer_id")),
            payment_id=parse_optional_id(data.get("payment_id")),
            invoice_id=parse_optional_id(data.get("invoice_id")),
            request_id=parse_optional_id(data.get("request_id")),
            comment=_text(data.get("comment")),
            pairing_1=_text(data.get("pairing_1")),
            pairing_2=_text(data.get("pairing_2")),
            pairing_3=_text(data.get("pairing_3")),
            raw=data,
        )


@dataclass(frozen=True)
class TransactionCategory:
    """A transaction category of *Config → Finance → Transaction categories* (splynx §2.6;
    API blueprint "TransactionCategories Response"). ``is_base`` marks Splynx's defaults."""

    id: int
    name: str
    is_base: bool

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "TransactionCategory":
        """Convert an ``admin/finance/transaction-categories`` record."""
        return cls(id=parse_id(data["id"]), name=_text(data.get("name")),
                   is_base=parse_bool(data.get("is_base", False)))


@dataclass(frozen=True)
class Transaction:
    """A transaction (splynx §2.6): ``type`` ``debit`` (a charge, lowers the balance) or
    ``credit`` (a payment, raises it). ``price_cents`` is the unit price, ``total_cents``
    what Splynx computed; ``category_id`` the transaction category."""

    id: int
    type: str
    customer_id: int
    quantity: Decimal
    price_cents: int
    tax_percent: Decimal
    total_cents: int
    date: Optional[datetime.date]
    category_id: Optional[int]
    description: str
    comment: str
    payment_id: Optional[int]
    invoice_id: Optional[int]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "Transaction":
        """Convert an ``admin/finance/transactions`` record."""
        return cls(
            id=parse_id(data["id"]),
            type=_text(data.get("type")),
            customer_id=parse_id(data["customer_id"]),
            quantity=_decimal(data.get("quantity", 1)),
            price_cents=money_to_cents(data.get("price", 0)),
            tax_percent=_decimal(data.get("tax_percent", 0)),
            total_cents=money_to_cents(data["total"]),
            date=parse_date(data.get("date")),
            category_id=parse_optional_id(data.get("category")),
            description=_text(data.get("description")),
            comment=_text(data.get("comment")),
            payment_id=parse_optional_id(data.get("payment_id")),
            invoice_id=parse_optional_id(data.get("invoice_id")),
            raw=data,
        )


@dataclass(frozen=True)
class Administrator:
    """A Splynx administrator (API blueprint "Administrator Response"). ``role_name`` is
    the role, e.g. ``super-administrator``, ``administrator``, ``manager``;
    ``partner_id`` is ``None`` for an administrator of every partner."""

    id: int
    login: str
    name: str
    email: str
    role_name: str
    partner_id: Optional[int]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "Administrator":
        """Convert an ``admin/administration/administrators`` record."""
        return cls(
            id=parse_id(data["id"]),
            login=_text(data.get("login")),
            name=_text(data.get("name")),
            email=_text(data.get("email")),
            role_name=_text(data.get("role_name")),
            partner_id=parse_optional_id(data.get("partner_id")),
            raw=data,
        )


@dataclass(frozen=True)
class Partner:
    """A Splynx partner (API blueprint "Partner Response"): the ISP's companies or resellers
    that customers, settings and company info belong to."""

    id: int
    name: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "Partner":
        """Convert an ``admin/administration/partners`` record."""
        return cls(id=parse_id(data["id"]), name=_text(data.get("name")))


@dataclass(frozen=True)
class CompanyInfo:
    """The ISP's company details for one partner (API blueprint "Company Info",
    ``admin/config/company-info/<partner id>``): what a customer-facing page or a mail
    shows as the sender."""

    partner_id: int
    company_name: str
    email: str
    phone: str
    street_1: str
    street_2: str
    zip: str
    city: str
    country: str
    iso_country_code: str
    splynx_url: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def address_lines(self) -> Tuple[str, ...]:
        """The postal address as printed lines, empty parts left out."""
        town = " ".join(p for p in (self.zip, self.city) if p)
        return tuple(p for p in (self.street_1, self.street_2, town, self.country) if p)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "CompanyInfo":
        """Convert an ``admin/config/company-info`` record (its ``id`` is the partner id)."""
        return cls(
            partner_id=parse_id(data["id"]),
            **{name: _text(data.get(name)) for name in (
                "company_name", "email", "phone", "street_1", "street_2", "zip", "city",
                "country", "iso_country_code", "splynx_url")},
            raw=data,
        )


@dataclass(frozen=True)
class PaymentAccountDefinition:
    """A payment account of *Config → Finance → Payment accounts* (API blueprint
    "Payment accounts Response"): a title and the labels of ``field_1``..``field_10`` that
    each customer's :class:`PaymentAccount` of this id fills."""

    id: int
    title: str
    labels: Mapping[str, str] = field(hash=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "PaymentAccountDefinition":
        """Convert an element of ``GET admin/customers/customer-payment-accounts``."""
        return cls(id=parse_id(data["id"]), title=_text(data.get("title")),
                   labels={k: _text(v) for k, v in data.items() if k.startswith("field_")})


@dataclass(frozen=True)
class EntryPoint:
    """An entry point (splynx §3.4; API blueprint "Entry Point Response"): how Splynx shows
    an add-on page. ``place`` is ``portal`` or ``admin``, ``type`` ``menu_link``,
    ``action_link``, ``code`` or ``tab``."""

    id: int
    module: str
    name: str
    place: str
    type: str
    title: str
    url: str
    enabled: bool
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "EntryPoint":
        """Convert an ``admin/config/entry-points`` record."""
        return cls(
            id=parse_id(data["id"]),
            module=_text(data.get("module")),
            name=_text(data.get("name")),
            place=_text(data.get("place")),
            type=_text(data.get("type")),
            title=_text(data.get("title")),
            url=_text(data.get("url")),
            enabled=parse_bool(data.get("enabled", True)),
            raw=data,
        )
