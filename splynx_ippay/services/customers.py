"""Customers as the add-on needs them from Splynx: read once, kept a few minutes."""


def customer(ctx, customer_id):
    """The Splynx customer record (partner, status, name, e-mails), from the context's
    short-lived copy; raises SplynxError when Splynx cannot be asked."""
    return ctx.customers.get_or_load(customer_id, lambda: ctx.splynx.get_customer(customer_id))


def partner_of(ctx, customer_id):
    """The customer's Splynx partner id (None when Splynx has none)."""
    return customer(ctx, customer_id).partner_id
