"""Helpers shared by the suites that drive the journal directly."""

from splynx_ippay.models import AttemptKind, Channel
from splynx_ippay.services import journal


def terminal_of(ctx):
    """The terminal new payments go to (the default partner's)."""
    config = ctx.module_settings.current()
    return ctx.gateways.terminal_for(config.default, config.read_ok)


def default_gateway(ctx):
    """The IPpay client of that terminal (the world's simulator)."""
    return ctx.gateways.client(terminal_of(ctx))


def source_of(card):
    return journal.PaymentSource(brand=card.brand, last4=card.last4, card=card)


def open_attempt_for(ctx, card, document, kind="invoice", channel=Channel.PORTAL, **extra):
    """Open (commit) an attempt paying ``document``'s amount due with a saved ``card``."""
    return journal.open_attempt(
        ctx, kind=AttemptKind(kind), customer_id=document.customer_id,
        amount_cents=extra.pop("amount_cents", document.due_cents), source=source_of(card),
        channel=channel, terminal=terminal_of(ctx), document_id=document.id,
        document_number=document.number, **extra).attempt


#: IPpay's test routing number (it passes the ABA checksum) and a test account number.
TEST_ROUTING, TEST_ACCOUNT = "111000025", "000123456789"


def save_bank_account(ctx, customer_id, account=TEST_ACCOUNT, holder="Alice Example",
                      account_type="CHECKING"):
    """Save a bank account for ``customer_id`` as the portal does: tokenized at the
    simulator, with the recurring authorisation accepted online (SEC WEB); the row."""
    from splynx_ippay.services import bank_accounts

    return bank_accounts.save_account(
        ctx, customer_id, bank_accounts.gateway_account(account, TEST_ROUTING, account_type),
        holder=holder, acceptance=bank_accounts.Acceptance(
            text="I authorise the test ISP to debit the bank account entered above.",
            client_address="127.0.0.1"), make_default=True)
