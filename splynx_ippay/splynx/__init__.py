"""Client of the Splynx REST API v2 (splynx-platform.md §1-§4) and of Splynx's local add-on
CLI (§3.2).

No Flask here: the add-on, its CLI and its worker all use the same client.

| module | role |
|---|---|
| ``client.py`` | :class:`SplynxClient`: transport, authentication, one typed method a resource |
| ``records.py`` | the frozen records it returns (ids ``int``, money ``int`` cents, dates) |
| ``auth.py`` | signatures, access tokens, nonces shared by every process on the host |
| ``retry.py`` | the one place that decides what is retried (reads only) |
| ``search.py`` | the ``main_attributes[..]`` search syntax |
| ``errors.py`` | :class:`SplynxError` and its subclasses by HTTP status |
| ``addon_cli.py`` | :class:`AddonCli`: ``/var/www/splynx/system/script/addon`` |
| ``registrar.py`` | :class:`Registrar`: the steps the API does not document (entry points, the
  payment-account definition): the CLI, else the API, else what the admin must do |
"""

from .addon_cli import AddonCli, AddonCliError
from .client import SplynxClient
from .errors import (SplynxAuthError, SplynxConnectionError, SplynxError, SplynxForbiddenError,
                     SplynxNotFoundError, SplynxServerError, SplynxUnavailableError,
                     SplynxValidationError)
from .records import (Administrator, BankStatement, BankStatementRecord, CompanyInfo, Customer,
                      CustomerBilling, EntryPoint, Identity, Invoice, InvoiceItem, Partner,
                      Payment, PaymentAccount, PaymentAccountDefinition, PaymentMethod, Proforma,
                      Transaction, TransactionCategory, cents_to_money, cents_to_number,
                      money_to_cents)
from .registrar import Registrar, StepOutcome
from .retry import NO_RETRY, RetryPolicy

__all__ = [
    "SplynxClient", "AddonCli", "AddonCliError", "Registrar", "StepOutcome",
    "RetryPolicy", "NO_RETRY",
    "SplynxError", "SplynxAuthError", "SplynxForbiddenError", "SplynxNotFoundError",
    "SplynxValidationError", "SplynxServerError", "SplynxUnavailableError",
    "SplynxConnectionError",
    "Customer", "CustomerBilling", "Identity", "Invoice", "InvoiceItem", "Payment",
    "PaymentAccount", "PaymentMethod", "Proforma", "BankStatement", "BankStatementRecord",
    "Administrator", "CompanyInfo", "EntryPoint", "Partner", "PaymentAccountDefinition",
    "Transaction", "TransactionCategory",
    "cents_to_money", "cents_to_number", "money_to_cents",
]
