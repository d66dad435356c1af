"""The Splynx REST API v2 client (splynx §1, §2, §3.3-3.4, §4).

One :class:`SplynxClient` per Splynx server, shared by every thread of the
add-on. Generic calls (:meth:`~SplynxClient.request`, :meth:`~SplynxClient.search`,
:meth:`~SplynxClient.iter_search`, :meth:`~SplynxClient.count`) take paths relative
to ``/api/2.0/`` and return Splynx's JSON; the resource methods return the
dataclasses of :mod:`.records`, with ids, money and dates already converted, and send
bodies typed as the official API blueprint types them ("Payment Base",
"Transaction Base", ...: ids and amounts as numbers or strings exactly where it says so,
booleans as booleans, required fields always present, nothing it does not name).

Which calls are retried is decided in :mod:`.retry` alone (reads only).
"""

from __future__ import annotations

import datetime
import logging
import time
from decimal import Decimal
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union
from urllib.parse import quote

import requests

import splynx_ippay

from .auth import (TOKENS_PATH, SignatureAuth, TokenAuth, identity_from_session_answer,
                   key_refused, nonce_source)
from .errors import (SplynxAuthError, SplynxConnectionError, SplynxError, SplynxNotFoundError,
                     SplynxUnavailableError, error_from_response)
from .records import (Administrator, BankStatement, BankStatementRecord, CompanyInfo, Customer,
                      CustomerBilling, EntryPoint, Identity, Invoice, Partner, Payment,
                      PaymentAccount, PaymentAccountDefinition, PaymentMethod, Proforma,
                      Transaction, TransactionCategory, cents_to_money, cents_to_number,
                      parse_id)
from .retry import RetryPolicy
from .search import build_params

log = logging.getLogger(__name__)

_INVOICES = "admin/finance/invoices"
_PROFORMAS = "admin/finance/proforma-invoices"
_PAYMENTS = "admin/finance/payments"
_PAYMENT_ACCOUNTS = "admin/customers/customer-payment-accounts"
_STATEMENTS = "admin/finance/bank-statements"
_STATEMENT_RECORDS = "admin/finance/bank-statements-records"
_MODULES = "admin/config/modules"
_ENTRY_POINTS = "admin/config/entry-points"
_CONFIG = "admin/config/config"
_PAYMENT_METHODS = "admin/finance/payment-methods"
_TRANSACTIONS = "admin/finance/transactions"
_CATEGORIES = "admin/finance/transaction-categories"
_ADMINISTRATORS = "admin/administration/administrators"
_PARTNERS = "admin/administration/partners"
_COMPANY_INFO = "admin/config/company-info"

#: Harmless reads proving the API key may read what the add-on reads (doctor, §1.3):
#: name → (path, query). A name, not a path, is what callers pass to :meth:`probe_read`.
READ_PROBES: Dict[str, Tuple[str, Optional[Dict[str, Any]]]] = {
    "customers": ("admin/customers/customer", {"limit": 1}),
    "invoices": (_INVOICES, {"limit": 1}),
    "proformas": (_PROFORMAS, {"limit": 1}),
    "payments": (_PAYMENTS, {"limit": 1}),
    "payment methods": (_PAYMENT_METHODS, None),
    "transactions": (_TRANSACTIONS, {"limit": 1}),
    "transaction categories": (_CATEGORIES, None),
    "payment statements": (_STATEMENTS, {"limit": 1}),
    "payment statement records": (_STATEMENT_RECORDS, {"limit": 1}),
    "payment accounts": (_PAYMENT_ACCOUNTS, None),
    "administrators": (_ADMINISTRATORS, {"limit": 1}),
    "partners": (_PARTNERS, None),
    "company info": (_COMPANY_INFO, None),
    "modules": (_MODULES, None),
    "entry points": (_ENTRY_POINTS, {"limit": 1}),
}


def _convert(model, data):
    """Build ``model`` from a Splynx record; a record that cannot be read is a
    :class:`SplynxError`, not a stray ``KeyError`` deep in a view."""
    try:
        return model.from_api(data)
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        raise SplynxError(f"Splynx returned a {model.__name__} record the client cannot read: "
                          f"{exc!r}") from exc


def _document_filters(customer_id, status, date_from, date_to, main_attributes):
    """The search filters shared by invoice and proforma listings; the date range
    applies to ``date_created`` and includes both ends."""
    filters = dict(main_attributes or {})
    if customer_id is not None:
        filters["customer_id"] = parse_id(customer_id)
    if status is not None:
        filters["status"] = status
    if date_from is not None and date_to is not None:
        filters["date_created"] = ("BETWEEN", (date_from, date_to))
    elif date_from is not None:
        filters["date_created"] = (">=", date_from)
    elif date_to is not None:
        filters["date_created"] = ("<=", date_to)
    return filters


def _new_id(body) -> int:
    """The id in a create answer ``{"id": N}`` (splynx §1.1)."""
    try:
        return parse_id(body["id"])
    except (KeyError, TypeError, ValueError):
        raise SplynxError(f"Splynx answered a create without an id: {body!r}") from None


def _texts(**values: Optional[str]) -> Dict[str, str]:
    """The string fields that were given (``None`` = not sent)."""
    return {k: str(v) for k, v in values.items() if v is not None}


def _number(value) -> Union[int, float]:
    """A quantity or percentage as a JSON number (the blueprint's ``number``)."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError(f"expected an int or Decimal, not {value!r}")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _same_name(a: str, b: str) -> bool:
    """Names as a Splynx admin sees them: case and surrounding blanks do not count."""
    return a.strip().casefold() == b.strip().casefold()


class SplynxClient:
    """A client of one Splynx server's REST API v2.

    ``base_url`` is the Splynx address (``https://splynx.example/``); ``auth`` is
    ``"token"`` (access tokens, the default, splynx §1.3b) or ``"signature"``
    (every request signed, §1.3a). Every call goes through ``session`` (a
    ``requests.Session``) with ``(connect_timeout, read_timeout)``.

    ``nonce_dir`` is a directory where every process on the host shares the nonces of
    the key (:class:`~.auth.FileNonceSource`; the package passes ``/run/splynx-ippay``);
    without one the process counts its own. ``retry`` decides which reads are tried
    again (:class:`~.retry.RetryPolicy`; writes never are).

    Failures raise :class:`~.errors.SplynxError` subclasses; see :mod:`.errors`.
    """

    def __init__(self, base_url: str, api_key: str, api_secret: str, *,
                 session: Optional[requests.Session] = None, auth: str = "token",
                 connect_timeout: float = 5.0, read_timeout: float = 20.0,
                 nonce_dir: Optional[str] = None, retry: Optional[RetryPolicy] = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.api_url = base_url.rstrip("/") + "/api/2.0/"
        self.api_key = api_key
        self._session = session if session is not None else requests.Session()
        self._timeout = (connect_timeout, read_timeout)
        self._retry = retry if retry is not None else RetryPolicy()
        self._sleep = sleep
        # Tokens are bound to the caller's User-Agent (splynx §1.3b): keep it fixed.
        self._user_agent = f"splynx-ippay/{splynx_ippay.__version__}"
        nonces = nonce_source(api_key, nonce_dir)
        if auth == "token":
            self._auth = TokenAuth(api_key, api_secret, self._send, nonces=nonces)
        elif auth == "signature":
            self._auth = SignatureAuth(api_key, api_secret, nonces=nonces)
        else:
            raise ValueError(f"auth must be 'token' or 'signature', not {auth!r}")

    # -- transport ---------------------------------------------------------

    def _send(self, method: str, path: str, *, params=None, json=None,
              authorization: Optional[str] = None) -> Tuple[int, Mapping[str, str], Any]:
        """One HTTP exchange. Returns ``(status, headers, body)`` whatever the status;
        raises :class:`SplynxUnavailableError` only when no usable answer came."""
        url = self.api_url + path.lstrip("/")
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        if authorization:
            headers["Authorization"] = authorization
        try:
            response = self._session.request(method, url, params=params, json=json,
                                             headers=headers, timeout=self._timeout,
                                             allow_redirects=False)
        except requests.Timeout as exc:
            # A connect timeout never reached Splynx; a read timeout may have.
            cls = (SplynxConnectionError if isinstance(exc, requests.ConnectTimeout)
                   else SplynxUnavailableError)
            raise cls(
                f"Splynx at {self.api_url} did not answer {method} {path} in time "
                f"(connect {self._timeout[0]} s, read {self._timeout[1]} s): {exc}") from exc
        except requests.ConnectionError as exc:
            raise SplynxConnectionError(f"cannot reach Splynx at {self.api_url}: {exc}") from exc
        except requests.RequestException as exc:
            raise SplynxUnavailableError(f"cannot reach Splynx at {self.api_url}: {exc}") from exc
        status = response.status_code
        log.debug("%s %s -> %s", method, path, status)
        if 300 <= status < 400:
            # A redirect means the base URL is wrong (http→https, a login page); following
            # it would turn a POST into a GET.
            raise SplynxUnavailableError(
                f"Splynx redirected {method} {path} to {response.headers.get('Location')!r}; "
                f"check the Splynx address", status)
        if method == "HEAD" or not response.content:
            return status, response.headers, None
        try:
            body = response.json()
        except ValueError:
            raise SplynxUnavailableError(
                f"{self.api_url} answered {method} {path} with HTTP {status} and a body that is "
                f"not JSON; is it a Splynx API?", status) from None
        return status, response.headers, body

    def _call(self, method: str, path: str, *, params=None, json=None):
        """An authenticated exchange, retried as :mod:`.retry` decides; raises the fitting
        :class:`SplynxError` on 4xx/5xx."""
        method = method.upper()
        attempt = 0
        while True:
            try:
                status, headers, body = self._authenticated(method, path, params, json)
            except SplynxUnavailableError as exc:
                if not self._retry.should_retry(
                        method, attempt, status=exc.status,
                        connection_failed=isinstance(exc, SplynxConnectionError)):
                    raise
            else:
                if status < 400:
                    return status, headers, body
                if not self._retry.should_retry(method, attempt, status=status):
                    raise error_from_response(status, body)
            log.info("Splynx %s %s failed; trying again (%d)", method, path, attempt + 1)
            self._sleep(self._retry.delay(attempt))
            attempt += 1

    def _authenticated(self, method: str, path: str, params, json):
        """One exchange with credentials: ``(status, headers, body)`` whatever the status."""
        if isinstance(self._auth, SignatureAuth):
            status, headers, body = self._auth.send(self._send, method, path, params=params,
                                                    json=json)
            if status == 401:
                raise key_refused(self.api_key, status, body)
        else:
            header = self._auth.header()
            status, headers, body = self._send(method, path, params=params, json=json,
                                               authorization=header)
            if status == 401:
                # The token died before its time: EXPIRED_ACCESS_TOKEN after clock skew
                # (splynx §1.3b), or unknown/banned/IP_CHANGED after a Splynx restore or
                # an admin's revocation. Keeping it would fail every call until it
                # expired. Splynx refused the call before acting on it, so one retry
                # with a fresh token is safe for any method.
                self._auth.expired(header)
                header = self._auth.header()
                status, headers, body = self._send(method, path, params=params, json=json,
                                                   authorization=header)
        return status, headers, body

    # -- generic -----------------------------------------------------------

    def request(self, method: str, path: str, *, params=None, json=None) -> Tuple[int, Any]:
        """Call ``method`` on ``path`` (relative to ``/api/2.0/``) and return
        ``(status, body)``; ``body`` is the decoded JSON or ``None`` when empty."""
        status, _, body = self._call(method, path, params=params, json=json)
        return status, body

    def _get_list(self, path: str, params=None) -> List[Any]:
        _, _, body = self._call("GET", path, params=params)
        if not isinstance(body, list):
            raise SplynxError(f"Splynx answered GET {path} with {type(body).__name__}, not a list")
        return body

    def _get_object(self, path: str, params=None) -> Dict[str, Any]:
        _, _, body = self._call("GET", path, params=params)
        if not isinstance(body, dict):
            raise SplynxError(f"Splynx answered GET {path} with {type(body).__name__}, "
                              f"not an object")
        return body

    def search(self, path: str, *, main_attributes=None, additional_attributes=None,
               order=None, limit=None, offset=None) -> List[Dict[str, Any]]:
        """One page of a Splynx search (splynx §1.4); filters as in :mod:`.search`."""
        return self._get_list(path, build_params(
            main_attributes=main_attributes, additional_attributes=additional_attributes,
            order=order, limit=limit, offset=offset))

    def iter_search(self, path: str, *, page_size: int = 100, main_attributes=None,
                    additional_attributes=None, order=None) -> Iterator[Dict[str, Any]]:
        """Every record matching the filters, fetched ``page_size`` at a time with
        ``limit``/``offset`` and yielded as they come.

        Without ``order`` records go by ``id`` so pages do not overlap. Offsets count
        matching records: if the caller changes records so that they stop matching
        while iterating (pays the unpaid invoices it is walking), later ones get
        skipped; collect the ids first in that case.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        offset = 0
        while True:
            page = self.search(path, main_attributes=main_attributes,
                               additional_attributes=additional_attributes,
                               order=order or {"id": "ASC"}, limit=page_size, offset=offset)
            yield from page
            # A short page is the last; a long one means the server ignored `limit`
            # and sent everything, so asking again would repeat it.
            if len(page) != page_size:
                return
            offset += page_size

    def count(self, path: str, *, main_attributes=None, additional_attributes=None) -> int:
        """How many records match, from ``HEAD`` and ``X-total-count`` (splynx §1.1, §1.4)."""
        _, headers, _ = self._call("HEAD", path, params=build_params(
            main_attributes=main_attributes, additional_attributes=additional_attributes))
        try:
            return int(headers["X-total-count"])
        except (KeyError, ValueError):
            raise SplynxError(f"Splynx answered HEAD {path} without X-total-count") from None

    def check_api(self) -> Dict[str, Any]:
        """``GET admin/api/check``: ``{"status": "ok", "message": "API is valid", ...}``
        when the address, key and secret work (splynx §1.5)."""
        return self._get_object("admin/api/check")

    # -- who is logged in --------------------------------------------------

    def session_identity(self, session_id: str) -> Identity:
        """Who owns the Splynx session ``session_id`` (the session cookie's value).

        Exchanges the session for a token (``auth_type=session``, splynx §1.3b, §4)
        and reads the token's payload. A missing, unknown or expired session is
        :class:`SplynxAuthError`.
        """
        if not session_id or not isinstance(session_id, str):
            raise SplynxAuthError("no Splynx session")
        # The session is the credential here: no Authorization header.
        status, _, body = self._send("POST", TOKENS_PATH,
                                     json={"auth_type": "session", "session_id": session_id})
        if status == 201:
            return identity_from_session_answer(body)
        error = error_from_response(status, body, context="Splynx did not accept the session")
        if status >= 500:
            raise error
        raise SplynxAuthError(error.message, error.status, error.internal_code)

    # -- customers ---------------------------------------------------------

    def get_customer(self, customer_id) -> Customer:
        """``GET admin/customers/customer/<id>`` (splynx §2.1)."""
        return _convert(Customer, self._get_object(
            f"admin/customers/customer/{parse_id(customer_id)}"))

    def find_customers(self, customer_ids) -> List[Customer]:
        """The customers with these ids, in one search (``id IN (…)``), e.g. to show
        staff their names; ids Splynx does not know are simply not in the answer."""
        ids = sorted({parse_id(i) for i in customer_ids})
        if not ids:
            return []
        return [_convert(Customer, record) for record in self.iter_search(
            "admin/customers/customer", main_attributes={"id": ("IN", ids)})]

    def get_customer_billing(self, customer_id) -> CustomerBilling:
        """``GET admin/customers/customer-billing/<id>``: balance (``deposit_cents``) and
        billing settings (splynx §2.1)."""
        return _convert(CustomerBilling, self._get_object(
            f"admin/customers/customer-billing/{parse_id(customer_id)}"))

    # -- invoices and proformas --------------------------------------------

    def get_invoice(self, invoice_id) -> Invoice:
        """``GET admin/finance/invoices/<id>`` (splynx §2.2)."""
        return _convert(Invoice, self._get_object(f"{_INVOICES}/{parse_id(invoice_id)}"))

    def find_invoice_by_number(self, number) -> Optional[Invoice]:
        """The invoice whose ``number`` (what customers see, e.g. ``"202310000231"``) is
        ``number``, or ``None``."""
        found = self.search(_INVOICES, main_attributes={"number": str(number)}, limit=1)
        return _convert(Invoice, found[0]) if found else None

    def iter_invoices(self, *, customer_id=None, status=None,
                      date_from: Optional[datetime.date] = None,
                      date_to: Optional[datetime.date] = None,
                      main_attributes=None, page_size: int = 100) -> Iterator[Invoice]:
        """Invoices matching the filters, page by page, oldest id first. ``status`` may be
        one status or a list; ``date_from``/``date_to`` bound ``date_created``
        (inclusive); ``main_attributes`` adds any other filter."""
        filters = _document_filters(customer_id, status, date_from, date_to, main_attributes)
        for record in self.iter_search(_INVOICES, main_attributes=filters, page_size=page_size):
            yield _convert(Invoice, record)

    def list_invoices(self, **filters) -> List[Invoice]:
        """All invoices matching the filters of :meth:`iter_invoices`, as a list."""
        return list(self.iter_invoices(**filters))

    def invoice_page(self, *, after_id: int = 0, limit: int = 100, customer_id=None,
                     status=None, date_from: Optional[datetime.date] = None,
                     date_to: Optional[datetime.date] = None,
                     main_attributes=None) -> List[Invoice]:
        """Up to ``limit`` invoices with an id above ``after_id``, by ascending id: keyset
        paging, which invoices turning paid meanwhile cannot shift (a charge run walks
        unpaid invoices while paying them). Filters as :meth:`iter_invoices`.

        Splynx takes one condition per field, so an ``id`` filter in ``main_attributes``
        (``("IN", ids)``) cannot be combined with ``id > after_id``: it is refused, and the
        caller pages by leaving out of its list the ids already read."""
        filters = _document_filters(customer_id, status, date_from, date_to, main_attributes)
        if after_id:
            if "id" in filters:
                raise ValueError("invoice_page: an id filter and after_id cannot be combined")
            filters["id"] = (">", parse_id(after_id))
        return [_convert(Invoice, record) for record in self.search(
            _INVOICES, main_attributes=filters, order={"id": "ASC"}, limit=limit)]

    def get_proforma(self, proforma_id) -> Proforma:
        """``GET admin/finance/proforma-invoices/<id>`` (splynx §2.3)."""
        return _convert(Proforma, self._get_object(f"{_PROFORMAS}/{parse_id(proforma_id)}"))

    def find_proforma_by_number(self, number) -> Optional[Proforma]:
        """The proforma invoice numbered ``number``, or ``None``."""
        found = self.search(_PROFORMAS, main_attributes={"number": str(number)}, limit=1)
        return _convert(Proforma, found[0]) if found else None

    def iter_proformas(self, *, customer_id=None, status=None,
                       date_from: Optional[datetime.date] = None,
                       date_to: Optional[datetime.date] = None,
                       main_attributes=None, page_size: int = 100) -> Iterator[Proforma]:
        """Proforma invoices matching the filters; same filters as :meth:`iter_invoices`."""
        filters = _document_filters(customer_id, status, date_from, date_to, main_attributes)
        for record in self.iter_search(_PROFORMAS, main_attributes=filters, page_size=page_size):
            yield _convert(Proforma, record)

    def list_proformas(self, **filters) -> List[Proforma]:
        """All proforma invoices matching the filters of :meth:`iter_proformas`, as a list."""
        return list(self.iter_proformas(**filters))

    # -- payments ----------------------------------------------------------

    def create_payment(self, *, customer_id, amount_cents: int, payment_type,
                       date: datetime.date, receipt_number: str, invoice_id=None,
                       request_id=None, comment: Optional[str] = None,
                       note: Optional[str] = None, field_1: Optional[str] = None,
                       field_2: Optional[str] = None, field_3: Optional[str] = None,
                       field_4: Optional[str] = None, field_5: Optional[str] = None) -> int:
        """Record a payment and return its id (``POST admin/finance/payments``, splynx §2.4).

        ``payment_type`` is a payment method id; ``invoice_id`` or ``request_id`` links
        the payment to the invoice or proforma it pays, which Splynx then marks paid.
        The body is the blueprint's "Payment Base": ``payment_type`` and ``amount`` as
        strings, ids as numbers, ``field_1``..``field_5`` always sent (the blueprint marks
        them required; an unused one is ``""``).
        """
        body: Dict[str, Any] = {
            "customer_id": parse_id(customer_id),
            "payment_type": str(parse_id(payment_type)),
            "receipt_number": str(receipt_number),
            "date": date.isoformat(),
            "amount": cents_to_money(amount_cents),
        }
        optional = {"invoice_id": invoice_id, "request_id": request_id}
        body.update({k: parse_id(v) for k, v in optional.items() if v is not None})
        body.update(_texts(comment=comment, note=note))
        fields = (field_1, field_2, field_3, field_4, field_5)
        body.update({f"field_{n}": "" if v is None else str(v) for n, v in enumerate(fields, 1)})
        _, _, answer = self._call("POST", _PAYMENTS, json=body)
        return _new_id(answer)

    def get_payment(self, payment_id) -> Payment:
        """``GET admin/finance/payments/<id>``."""
        return _convert(Payment, self._get_object(f"{_PAYMENTS}/{parse_id(payment_id)}"))

    def find_payments(self, **main_attributes) -> List[Payment]:
        """Payments matching the filters, e.g. ``find_payments(field_1="5F2A91")``.

        At least one filter is required: an unfiltered call would walk every payment
        Splynx has ever recorded.
        """
        if not main_attributes:
            raise ValueError("find_payments needs at least one filter")
        return [_convert(Payment, record)
                for record in self.iter_search(_PAYMENTS, main_attributes=main_attributes)]

    def delete_payment(self, payment_id) -> None:
        """Delete a payment (``DELETE admin/finance/payments/<id>``): Splynx takes back its
        credit and reopens the invoice it paid (a void)."""
        self._call("DELETE", f"{_PAYMENTS}/{parse_id(payment_id)}")

    # -- payment methods (splynx §2.5; blueprint "PaymentMethods Base") -----

    def list_payment_methods(self) -> List[PaymentMethod]:
        """Every payment method of *Config → Finance → Payment methods* (splynx §2.5)."""
        return [_convert(PaymentMethod, record)
                for record in self._get_list(_PAYMENT_METHODS)]

    def get_payment_method(self, method_id) -> PaymentMethod:
        """``GET admin/finance/payment-methods/<id>``."""
        return _convert(PaymentMethod,
                        self._get_object(f"{_PAYMENT_METHODS}/{parse_id(method_id)}"))

    def find_payment_method(self, name: str) -> Optional[PaymentMethod]:
        """The payment method called ``name`` (case and blanks aside; the lowest id when
        several are), or ``None``."""
        found = [m for m in self.list_payment_methods() if _same_name(m.name, name)]
        return min(found, key=lambda m: m.id) if found else None

    def create_payment_method(self, name: str, *, is_active: bool = True,
                              field_names: Tuple[Optional[str], ...] = ()) -> int:
        """Add a payment method and return its id (``POST admin/finance/payment-methods``).
        ``is_active`` is sent as a JSON boolean, as the blueprint types it;
        ``field_names`` label a payment's ``field_1``.. (``name_1``..``name_5``)."""
        body: Dict[str, Any] = {"name": str(name), "is_active": bool(is_active)}
        body.update(self._method_field_names(field_names))
        _, _, answer = self._call("POST", _PAYMENT_METHODS, json=body)
        return _new_id(answer)

    def update_payment_method(self, method_id, *, name: Optional[str] = None,
                              is_active: Optional[bool] = None,
                              field_names: Tuple[Optional[str], ...] = ()) -> None:
        """Change a payment method (``PUT .../payment-methods/<id>``); what is ``None`` stays."""
        body: Dict[str, Any] = _texts(name=name)
        if is_active is not None:
            body["is_active"] = bool(is_active)
        body.update(self._method_field_names(field_names))
        if body:
            self._call("PUT", f"{_PAYMENT_METHODS}/{parse_id(method_id)}", json=body)

    @staticmethod
    def _method_field_names(field_names) -> Dict[str, str]:
        if len(field_names) > 5:
            raise ValueError("a payment method labels at most five fields")
        return {f"name_{n}": str(v) for n, v in enumerate(field_names, 1) if v is not None}

    # -- transactions and their categories (splynx §2.6) ---------------------

    def list_transaction_categories(self) -> List[TransactionCategory]:
        """Every category of *Config → Finance → Transaction categories*."""
        return [_convert(TransactionCategory, record) for record in self._get_list(_CATEGORIES)]

    def find_transaction_category(self, name: str) -> Optional[TransactionCategory]:
        """The category called ``name`` (case and blanks aside; the lowest id when several
        are), or ``None``: categories are found by name, their ids differ between Splynx
        installations."""
        found = [c for c in self.list_transaction_categories() if _same_name(c.name, name)]
        return min(found, key=lambda c: c.id) if found else None

    def create_transaction_category(self, name: str) -> int:
        """Add a category and return its id (``POST admin/finance/transaction-categories``,
        blueprint "TransactionCategories Base")."""
        _, _, answer = self._call("POST", _CATEGORIES, json={"name": str(name)})
        return _new_id(answer)

    def ensure_transaction_category(self, name: str) -> int:
        """The id of the category called ``name``, created when there is none. Two processes
        creating it at once both settle on the oldest of the two afterwards."""
        found = self.find_transaction_category(name)
        if found is not None:
            return found.id
        created = self.create_transaction_category(name)
        found = self.find_transaction_category(name)
        return found.id if found is not None else created

    def create_transaction(self, *, customer_id, kind: str, price_cents: int,
                           date: datetime.date, category_id, tax_percent: Union[int, Decimal] = 0,
                           quantity: Union[int, Decimal] = 1, description: Optional[str] = None,
                           comment: Optional[str] = None, invoice_id=None,
                           payment_id=None) -> int:
        """Add a transaction and return its id (``POST admin/finance/transactions``).

        ``kind`` is ``debit`` (a charge: lowers the balance) or ``credit`` (the body's
        ``type``); the body is the
        blueprint's "Transaction Base": ``price``, ``quantity`` and ``tax_percent`` (required)
        as numbers, ``category`` (required) as the category id in a string, no ``total``
        (Splynx computes it; it is a field of the answer only).
        """
        if kind not in ("debit", "credit"):
            raise ValueError(f"kind must be 'debit' or 'credit', not {kind!r}")
        body: Dict[str, Any] = {
            "type": kind,
            "customer_id": parse_id(customer_id),
            "quantity": _number(quantity),
            "price": cents_to_number(price_cents),
            "tax_percent": _number(tax_percent),
            "date": date.isoformat(),
            "category": str(parse_id(category_id)),
        }
        body.update(_texts(description=description, comment=comment))
        links = {"invoice_id": invoice_id, "payment_id": payment_id}
        body.update({k: parse_id(v) for k, v in links.items() if v is not None})
        _, _, answer = self._call("POST", _TRANSACTIONS, json=body)
        return _new_id(answer)

    def create_refund_debit(self, *, customer_id, amount_cents: int, date: datetime.date,
                            category_id, description: str, comment: str) -> int:
        """Record money given back to a card as a debit of ``amount_cents`` (one unit, no
        tax) in the category ``category_id`` (find it with
        :meth:`ensure_transaction_category`, never assume an id); ``comment`` is the key
        :meth:`find_transactions` finds it by again."""
        if amount_cents <= 0:
            raise ValueError("a refund debit must be a positive amount")
        return self.create_transaction(customer_id=customer_id, kind="debit",
                                       price_cents=amount_cents, date=date,
                                       category_id=category_id, tax_percent=0, quantity=1,
                                       description=description, comment=comment)

    def get_transaction(self, transaction_id) -> Transaction:
        """``GET admin/finance/transactions/<id>``."""
        return _convert(Transaction,
                        self._get_object(f"{_TRANSACTIONS}/{parse_id(transaction_id)}"))

    def find_transactions(self, **main_attributes) -> List[Transaction]:
        """Transactions matching the filters, e.g.
        ``find_transactions(customer_id=7, comment="IPPAY-REFUND-...")``; at least one."""
        if not main_attributes:
            raise ValueError("find_transactions needs at least one filter")
        return [_convert(Transaction, record)
                for record in self.iter_search(_TRANSACTIONS, main_attributes=main_attributes)]

    # -- payment statements ("bank statements", splynx §2.7) ---------------

    def find_bank_statements(self, **main_attributes) -> List[BankStatement]:
        """Payment statement processes matching the filters, e.g.
        ``find_bank_statements(title="IPpay 10/2023")``; oldest first."""
        if not main_attributes:
            raise ValueError("find_bank_statements needs at least one filter")
        return [_convert(BankStatement, record)
                for record in self.iter_search(_STATEMENTS, main_attributes=main_attributes)]

    def get_bank_statement(self, statement_id) -> BankStatement:
        """``GET admin/finance/bank-statements/<id>``."""
        return _convert(BankStatement, self._get_object(f"{_STATEMENTS}/{parse_id(statement_id)}"))

    def create_bank_statement(self, *, title: str, date_time: datetime.datetime,
                              payment_type=None, status: str = "success",
                              handler: Optional[str] = None) -> int:
        """Open a payment statement process and return its id
        (``POST admin/finance/bank-statements``); ``payment_type`` is a payment method id."""
        body: Dict[str, Any] = {"title": title, "status": status,
                                "date_time": date_time.strftime("%Y-%m-%d %H:%M:%S")}
        if payment_type is not None:
            body["payment_type"] = parse_id(payment_type)
        if handler is not None:
            body["handler"] = handler
        _, _, answer = self._call("POST", _STATEMENTS, json=body)
        return _new_id(answer)

    def update_bank_statement(self, statement_id, fields: Mapping[str, Any]) -> None:
        """Change fields of a payment statement process (``PUT .../bank-statements/<id>``)."""
        self._call("PUT", f"{_STATEMENTS}/{parse_id(statement_id)}", json=dict(fields))

    def find_bank_statement_records(self, **main_attributes) -> List[BankStatementRecord]:
        """Payment statement records matching the filters, e.g.
        ``find_bank_statement_records(customer_id=7, payment_id=91)``."""
        if not main_attributes:
            raise ValueError("find_bank_statement_records needs at least one filter")
        return [_convert(BankStatementRecord, record) for record in
                self.iter_search(_STATEMENT_RECORDS, main_attributes=main_attributes)]

    def get_bank_statement_record(self, record_id) -> BankStatementRecord:
        """``GET admin/finance/bank-statements-records/<id>``."""
        return _convert(BankStatementRecord,
                        self._get_object(f"{_STATEMENT_RECORDS}/{parse_id(record_id)}"))

    def create_bank_statement_record(self, *, process_id, amount_cents: int, status: str,
                                     payment_date: datetime.date,
                                     datetime_: Optional[datetime.datetime] = None,
                                     customer_id=None, payment_id=None, invoice_id=None,
                                     request_id=None, comment: Optional[str] = None,
                                     pairing_1: Optional[str] = None,
                                     pairing_2: Optional[str] = None,
                                     pairing_3: Optional[str] = None,
                                     additional_1: Optional[str] = None) -> int:
        """Add a record to the payment statement ``process_id`` and return its id
        (``POST admin/finance/bank-statements-records``, splynx §2.7)."""
        body: Dict[str, Any] = {
            "bank_statements_process_id": parse_id(process_id),
            "amount": cents_to_money(amount_cents),
            "status": status,
            "payment_date": payment_date.isoformat(),
        }
        if datetime_ is not None:
            body["datetime"] = datetime_.strftime("%Y-%m-%d %H:%M:%S")
        links = {"customer_id": customer_id, "payment_id": payment_id, "invoice_id": invoice_id,
                 "request_id": request_id}
        body.update({k: parse_id(v) for k, v in links.items() if v is not None})
        texts = {"comment": comment, "pairing_1": pairing_1, "pairing_2": pairing_2,
                 "pairing_3": pairing_3, "additional_1": additional_1}
        body.update({k: v for k, v in texts.items() if v is not None})
        _, _, answer = self._call("POST", _STATEMENT_RECORDS, json=body)
        return _new_id(answer)

    def update_bank_statement_record(self, record_id, fields: Mapping[str, Any]) -> None:
        """Change fields of a record, e.g. ``{"status": "processed", "payment_id": 91}``."""
        self._call("PUT", f"{_STATEMENT_RECORDS}/{parse_id(record_id)}", json=dict(fields))

    # -- customer payment accounts -----------------------------------------

    def get_payment_accounts(self, customer_id) -> List[PaymentAccount]:
        """A customer's stored payment-account data, one per account definition
        (``GET ...customer-payment-accounts?id=<cid>``, splynx §2.1)."""
        return [_convert(PaymentAccount, record) for record in
                self._get_list(_PAYMENT_ACCOUNTS, {"id": parse_id(customer_id)})]

    def get_payment_account(self, customer_id, account_id) -> Optional[PaymentAccount]:
        """The customer's data for one account definition, or ``None`` when none is stored.
        The blueprint answers ``?id=<cid>--<aid>`` with a list; one object is read too."""
        try:
            _, _, body = self._call("GET", _PAYMENT_ACCOUNTS, params={
                "id": f"{parse_id(customer_id)}--{parse_id(account_id)}"})
        except SplynxNotFoundError:
            return None
        if isinstance(body, list):
            if not body:
                return None
            body = body[0]
        if not isinstance(body, dict):
            raise SplynxError(f"Splynx answered GET {_PAYMENT_ACCOUNTS} with "
                              f"{type(body).__name__}, not an object")
        return _convert(PaymentAccount, body)

    def put_payment_account(self, customer_id, account_id, fields: Mapping[str, str]) -> None:
        """Create or replace the customer's data for one account definition: Splynx
        documents no POST here, PUT on ``?id=<cid>--<aid>`` creates the row (splynx §2.1)."""
        self._call("PUT", _PAYMENT_ACCOUNTS,
                   params={"id": f"{parse_id(customer_id)}--{parse_id(account_id)}"},
                   json=dict(fields))

    def delete_payment_account(self, customer_id, account_id) -> None:
        """Forget the customer's data for one account definition."""
        self._call("DELETE", _PAYMENT_ACCOUNTS,
                   params={"id": f"{parse_id(customer_id)}--{parse_id(account_id)}"})

    def list_payment_account_definitions(self) -> List[PaymentAccountDefinition]:
        """The payment accounts of *Config → Finance → Payment accounts* with their field
        labels (``GET admin/customers/customer-payment-accounts`` without ``id``, blueprint
        "Payment accounts Response"). Creating one is not documented: see
        :mod:`.registrar`."""
        return [_convert(PaymentAccountDefinition, record)
                for record in self._get_list(_PAYMENT_ACCOUNTS)]

    def find_payment_account_definition(self, title: str) -> Optional[PaymentAccountDefinition]:
        """The payment account titled ``title`` (case and blanks aside), or ``None``."""
        found = [d for d in self.list_payment_account_definitions() if _same_name(d.title, title)]
        return min(found, key=lambda d: d.id) if found else None

    def create_payment_account_definition(self, title: str, labels: Mapping[str, str]) -> int:
        """Add a payment account definition (undocumented: ``POST`` on the collection whose
        ``GET`` lists them; see :mod:`.registrar`) and return its id."""
        body = {"title": str(title), **{k: str(v) for k, v in labels.items()}}
        _, _, answer = self._call("POST", _PAYMENT_ACCOUNTS, json=body)
        return _new_id(answer)

    # -- administrators, partners, company info (blueprint "Administration", "Config") --

    def get_administrator(self, admin_id) -> Administrator:
        """``GET admin/administration/administrators/<id>``: login, name, e-mail,
        ``role_name`` and partner, to name and authorise the staff member behind a session."""
        return _convert(Administrator, self._get_object(f"{_ADMINISTRATORS}/{parse_id(admin_id)}"))

    def list_administrators(self) -> List[Administrator]:
        """Every administrator (e.g. to show names in a run's history)."""
        return [_convert(Administrator, r) for r in self.iter_search(_ADMINISTRATORS)]

    def list_partners(self) -> List[Partner]:
        """Every partner (``GET admin/administration/partners``): what per-partner settings
        are kept for."""
        return [_convert(Partner, record) for record in self._get_list(_PARTNERS)]

    def get_partner(self, partner_id) -> Partner:
        """``GET admin/administration/partners/<id>``."""
        return _convert(Partner, self._get_object(f"{_PARTNERS}/{parse_id(partner_id)}"))

    def get_company_info(self, partner_id) -> CompanyInfo:
        """The ISP's name, e-mail, phone and address for one partner
        (``GET admin/config/company-info/<partner id>``), for the direct pay page and the
        From/Reply-To of mails."""
        return _convert(CompanyInfo, self._get_object(f"{_COMPANY_INFO}/{parse_id(partner_id)}"))

    def list_company_info(self) -> List[CompanyInfo]:
        """The company info of every partner (``GET admin/config/company-info``)."""
        return [_convert(CompanyInfo, record) for record in self._get_list(_COMPANY_INFO)]

    def probe_read(self, name: str) -> None:
        """Make a harmless read of the resource ``name`` (a key of :data:`READ_PROBES`, e.g.
        ``"payments"``), raising what Splynx answers: :class:`SplynxForbiddenError` says the
        API key lacks the permission."""
        path, params = READ_PROBES[name]
        self._call("GET", path, params=params)

    # -- add-on configuration (splynx §1.5, §3.3) --------------------------

    @staticmethod
    def _config_params(module: str, partner_id) -> Dict[str, Any]:
        params: Dict[str, Any] = {"module": "add-on", "path": module}
        if partner_id is not None:
            params["partner_id"] = parse_id(partner_id)
        return params

    def get_module_config(self, module: str, *, partner_id=None) -> Dict[str, Any]:
        """The add-on settings of ``module`` (``GET admin/config/config?module=add-on&path=..``),
        for one partner when ``partner_id`` is given."""
        return self._get_object(_CONFIG, self._config_params(module, partner_id))

    def put_module_config(self, module: str, values: Mapping[str, Any], *,
                          partner_id=None) -> None:
        """Write add-on settings of ``module``; keys not in ``values`` stay as they are."""
        self._call("PUT", _CONFIG, params=self._config_params(module, partner_id),
                   json=dict(values))

    def list_modules(self) -> List[Dict[str, Any]]:
        """The *Modules list* (``GET admin/config/modules``): ``{name, title, root, type, ...}``."""
        return self._get_list(_MODULES)

    def get_module(self, name: str) -> Dict[str, Any]:
        """One module record by name."""
        return self._get_object(f"{_MODULES}/{quote(name, safe='')}")

    def create_module(self, fields: Mapping[str, Any]) -> None:
        """Add a module record; ``fields`` holds at least ``name``, ``title``, ``root``
        and ``type`` (splynx §1.5 "Module Base")."""
        self._call("POST", _MODULES, json=dict(fields))

    def update_module(self, name: str, fields: Mapping[str, Any]) -> None:
        """Change fields of the module record ``name``."""
        self._call("PUT", f"{_MODULES}/{quote(name, safe='')}", json=dict(fields))

    def delete_module(self, name: str) -> None:
        """Remove the module record ``name``."""
        self._call("DELETE", f"{_MODULES}/{quote(name, safe='')}")

    # -- entry points (splynx §3.4) ----------------------------------------
    # The API blueprint documents only the GETs. POST/PUT/DELETE below are undocumented: a
    # real Splynx may refuse them (405), so only the registration adapter (.registrar) calls
    # them, after the add-on CLI and before asking the admin (docs/interfaces.md).

    def list_entry_points(self, **main_attributes) -> List[Dict[str, Any]]:
        """Entry points, optionally filtered:
        ``list_entry_points(module="splynx_ippay_addon")``."""
        return list(self.iter_search(_ENTRY_POINTS, main_attributes=main_attributes or None))

    def find_entry_points(self, module: str) -> List[EntryPoint]:
        """The entry points of ``module``, typed."""
        return [_convert(EntryPoint, record) for record in self.list_entry_points(module=module)
                if record.get("module") == module]

    def get_entry_point(self, entry_point_id) -> Dict[str, Any]:
        """One entry point by id."""
        return self._get_object(f"{_ENTRY_POINTS}/{parse_id(entry_point_id)}")

    def create_entry_point(self, fields: Mapping[str, Any]) -> int:
        """Add an entry point and return its id (undocumented; see :mod:`.registrar`)."""
        _, _, answer = self._call("POST", _ENTRY_POINTS, json=dict(fields))
        return _new_id(answer)

    def update_entry_point(self, entry_point_id, fields: Mapping[str, Any]) -> None:
        """Change fields of an entry point (undocumented; see :mod:`.registrar`)."""
        self._call("PUT", f"{_ENTRY_POINTS}/{parse_id(entry_point_id)}", json=dict(fields))

    def delete_entry_point(self, entry_point_id) -> None:
        """Remove an entry point (undocumented; see :mod:`.registrar`)."""
        self._call("DELETE", f"{_ENTRY_POINTS}/{parse_id(entry_point_id)}")
