"""The add-on's verbs: save a card, pay an invoice, run a charge run, refund, reconcile,
register. Each receives a :class:`~splynx_ippay.context.Context` as its first argument;
none imports Flask or the composition root."""
