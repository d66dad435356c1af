"""Client of the Splynx REST API v2 (splynx-platform.md §1-§4).

No Flask here: the add-on, its CLI and its worker all use the same client.
"""

from .client import SplynxClient
from .errors import (SplynxAuthError, SplynxError, SplynxForbiddenError, SplynxNotFoundError,
                     SplynxServerError, SplynxUnavailableError, SplynxValidationError)
from .models import (BankStatement, BankStatementRecord, Customer, CustomerBilling, Identity,
                     Invoice, InvoiceItem, Payment, PaymentAccount, PaymentMethod, Proforma,
                     cents_to_money, money_to_cents)

__all__ = [
    "SplynxClient",
    "SplynxError", "SplynxAuthError", "SplynxForbiddenError", "SplynxNotFoundError",
    "SplynxValidationError", "SplynxServerError", "SplynxUnavailableError",
    "Customer", "CustomerBilling", "Identity", "Invoice", "InvoiceItem", "Payment",
    "PaymentAccount", "PaymentMethod", "Proforma", "BankStatement", "BankStatementRecord",
    "cents_to_money", "money_to_cents",
]
