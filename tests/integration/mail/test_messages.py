"""Messages to customers and staff as they arrive at a real SMTP server: headers, both
parts, the language, the sender of the customer's partner, the links, and never a card
number (issue 11 item 4)."""

import datetime as dt
import re

import requests
from sqlalchemy import select

from splynx_ippay.models import AttemptKind, AttemptStatus, ChargeRun, MessageStatus, \
    OutboxMessage, PaymentAttempt
from splynx_ippay.services import notices

from tests.integration.mail.mail_helpers import add_card, use_relay

#: 13 or more digits in a row, spaces or dashes allowed between them, not inside a longer
#: word (a hex signature): what a card number would look like in a message.
DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,}(?![0-9A-Za-z])")


def no_card_numbers(received):
    for message in received:
        for text in (message.raw, message.text, message.html or "", message["Subject"]):
            assert not DIGIT_RUN.search(text), text


def unpaid_invoice(world, customer_id):
    store = world.store()
    return next(row for row in store.invoices.all()
                if row["customer_id"] == customer_id and row["status"] == "not_paid")


def declined_attempt(world, customer_id=1, card=None, invoice=None, message=None):
    """A declined attempt as the journal keeps it (a transient row: only its fields
    matter to the notice)."""
    invoice = invoice or unpaid_invoice(world, customer_id)
    return PaymentAttempt(
        id=900 + customer_id, transaction_id="TX" + "A" * 16, kind=AttemptKind.INVOICE,
        status=AttemptStatus.DECLINED, customer_id=customer_id, invoice_id=invoice["id"],
        document_number=invoice["number"], amount_cents=4217, card_brand="Visa",
        card_last4=card.last4 if card else "1111", action_code="005",
        message=message or "Your card issuer declined the payment. Please use another card "
                           "or contact your bank.")


def rows(world):
    with world.ctx.sessions() as session:
        return session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()


def test_a_decline_notice_arrives_with_both_parts_the_headers_and_a_pay_link_that_works(
        world, smtp):
    store = world.store()
    store.company_info.get(1)["splynx_url"] = world.url
    use_relay(world, smtp)
    card = add_card(world, 1)
    attempt = declined_attempt(world, 1, card)

    row = notices.decline(world.ctx, attempt, retry_on=dt.date(2026, 12, 8))
    assert row is not None and row.status == MessageStatus.QUEUED
    counts = notices.send_due(world.ctx)
    assert (counts.sent, counts.deferred, counts.failed) == (1, 0, 0)

    [got] = smtp.received
    assert got.rcpt_tos == ["alice@example.com"]
    assert got.mail_from == "billing@sandbox-isp.example"
    assert got["From"].addresses[0].display_name == "Sandbox ISP Ltd"
    assert got["From"].addresses[0].addr_spec == "billing@sandbox-isp.example"
    assert got["Reply-To"] is None  # From is the company's own address
    assert got["To"] == "alice@example.com"
    assert got["Subject"] == \
        f"Your payment for invoice {attempt.document_number} did not go through"
    assert got["Date"] and got["Message-ID"].startswith("<splynx-ippay.")
    assert got["Content-Language"] == "en"
    assert got["Auto-Submitted"] == "auto-generated"
    assert got.message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in got.message.iter_parts()] == ["text/plain", "text/html"]

    text, html = got.text, got.html
    for part in (text, html):
        assert "Sandbox ISP Ltd" in part
        assert "Visa •••• 1111" in part
        assert "$42.17" in part
        assert attempt.document_number in part
        assert "Your card issuer declined the payment" in part
        assert "December 8, 2026" in part
    assert text.startswith("Hello Alice Anderson,")
    link = re.search(r"(http://\S+/ippay/direct-pay-invoice-by-id\?\S+)", text).group(1)
    assert "&sig=" in link and f"item_id={attempt.invoice_id}" in link
    assert f'href="{link.replace("&", "&amp;")}"' in html
    assert f"{world.url}/ippay/cards" in text
    no_card_numbers(smtp.received)

    # The link opens the invoice's pay page without logging in.
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and attempt.document_number in page.text

    [stored] = rows(world)
    assert stored.status == MessageStatus.SENT and stored.sent_at is not None
    assert stored.tries == 1 and stored.object_key == f"attempt:{attempt.id}"


def test_without_a_retry_the_customer_is_told_we_will_not_try_again(world, smtp):
    use_relay(world, smtp)
    attempt = declined_attempt(world, 2, message="The card has expired. Please use another "
                                                 "card or update the expiry date.")
    notices.decline(world.ctx, attempt, retry_on=None)
    notices.send_due(world.ctx)
    [got] = smtp.received
    assert "we will not try to charge this card again" in got.text
    assert "The card has expired." in got.text
    # No public address known (no splynx_url, no public_url setting): no links at all.
    assert "http" not in got.text and "href=\"http" not in got.html
    assert "in the customer portal" in got.text


def test_in_spanish_when_the_module_language_is_spanish(world, smtp):
    world.set_module_settings({"language": "es"})
    use_relay(world, smtp)
    card = add_card(world, 1)
    attempt = declined_attempt(world, 1, card)
    notices.decline(world.ctx, attempt, retry_on=dt.date(2026, 12, 8))
    notices.card_added(world.ctx, card)
    notices.send_due(world.ctx)
    decline, added = smtp.received
    assert decline["Content-Language"] == "es"
    assert decline["Subject"] == f"No se pudo cobrar su factura {attempt.document_number}"
    assert decline.text.startswith("Hola Alice Anderson:")
    # The reason in the customer's language, from the portal's catalogue.
    assert "Motivo: El emisor de su tarjeta rechazó el pago." in decline.text
    assert "Your card issuer" not in decline.text
    assert "8 de diciembre de 2026" in decline.text
    assert '<html lang="es">' in decline.html
    assert added["Subject"] == "Se agregó una tarjeta a su cuenta"
    assert "Este mensaje se envió automáticamente." in added.text
    no_card_numbers(smtp.received)


def test_the_sender_is_the_customers_partner_or_the_configured_from(world, smtp):
    use_relay(world, smtp)
    carol_card = add_card(world, 3, last4="4242")
    notices.card_added(world.ctx, carol_card)
    notices.send_due(world.ctx)
    [got] = smtp.received
    assert got["From"].addresses[0].addr_spec == "accounts@second-partner.example"
    assert got["From"].addresses[0].display_name == "Second Partner Networks"
    assert "Second Partner Networks" in got.text and "+1 555 0200" in got.text

    use_relay(world, smtp, MAIL_FROM="noreply@mailer.example", MAIL_REPLY_TO="")
    notices.card_removed(world.ctx, carol_card)
    notices.send_due(world.ctx)
    got = smtp.received[-1]
    assert got.mail_from == "noreply@mailer.example"
    assert str(got["From"]) == "Second Partner Networks <noreply@mailer.example>"
    # Replies still reach the partner.
    assert got["Reply-To"].addresses[0].addr_spec == "accounts@second-partner.example"

    use_relay(world, smtp, MAIL_FROM="Billing <billing@mailer.example>",
              MAIL_REPLY_TO="help@isp.example")
    notices.expiring_cards(world.ctx, dt.date(2030, 12, 10))
    notices.send_due(world.ctx)
    got = smtp.received[-1]
    assert str(got["From"]) == "Billing <billing@mailer.example>"
    assert str(got["Reply-To"]) == "help@isp.example"


def test_the_billing_email_first_else_the_email_else_nothing(world, smtp, caplog):
    use_relay(world, smtp)
    store = world.store()
    store.customers.get(1)["billing_email"] = "accounts@alice.example, alice.two@example.com"
    store.customers.get(2)["billing_email"] = ""
    store.customers.get(3).update(billing_email="", email="")
    for customer_id, last4 in ((1, "1111"), (2, "2222"), (3, "3333")):
        notices.card_added(world.ctx, add_card(world, customer_id, last4=last4))
    notices.send_due(world.ctx)
    assert sorted(tuple(m.rcpt_tos) for m in smtp.received) == [
        ("accounts@alice.example", "alice.two@example.com"), ("bob@example.com",)]
    assert "customer 3 has no e-mail address" in caplog.text
    assert len(rows(world)) == 2


def test_names_are_escaped_in_html_and_lines_cannot_be_injected(world, smtp):
    use_relay(world, smtp)
    store = world.store()
    store.customers.get(1)["name"] = "Alice <script>alert(1)</script>"
    store.customers.get(2)["billing_email"] = "bob@example.com\r\nBcc: victim@example.com"
    notices.card_added(world.ctx, add_card(world, 1))
    assert notices.card_added(world.ctx, add_card(world, 2, last4="2222")) is None
    notices.send_due(world.ctx)
    [got] = smtp.received
    assert "<script>" not in got.html and "&lt;script&gt;" in got.html
    assert got.rcpt_tos == ["alice@example.com"]


def test_every_message_arrives_once_whatever_calls_it_twice(world, smtp):
    use_relay(world, smtp)
    card = add_card(world, 1)
    assert notices.card_added(world.ctx, card) is not None
    assert notices.card_added(world.ctx, card) is None
    assert notices.queue(world.ctx, "card_added", f"card:{card.id}", customer_id=1,
                         values={"card": card}) is None
    notices.send_due(world.ctx)
    notices.send_due(world.ctx)
    assert notices.card_added(world.ctx, card) is None
    notices.send_due(world.ctx)
    assert len(smtp.received) == 1


def test_expiring_cards_are_told_once_per_card_and_expiry(world, smtp):
    use_relay(world, smtp)
    expiring = add_card(world, 1, last4="1111", exp_month=12, exp_year=2026)
    next_month = add_card(world, 2, last4="2222", exp_month=1, exp_year=2027)
    later = add_card(world, 1, last4="3333", exp_month=3, exp_year=2027, default=False)
    expired = add_card(world, 2, last4="4444", exp_month=11, exp_year=2026, default=False)
    world.store().customers.get(3)["status"] = "disabled"
    add_card(world, 3, last4="5555", exp_month=12, exp_year=2026)

    ctx = world.ctx
    assert notices.expiring_cards(ctx, dt.date(2026, 12, 1)) == 1   # Dec 31 is 30 days off
    assert notices.expiring_cards(ctx, dt.date(2026, 12, 1)) == 0
    assert notices.expiring_cards(ctx, dt.date(2027, 1, 2)) == 1    # Jan 31 is 29 days off
    assert notices.expiring_cards(ctx, dt.date(2027, 1, 3)) == 0
    notices.send_due(ctx)
    keys = sorted(r.object_key for r in rows(world))
    assert keys == [f"card:{expiring.id}:2026-12", f"card:{next_month.id}:2027-01"]
    first = smtp.received[0]
    assert first["Subject"] == "Your card Visa •••• 1111 expires soon"
    assert "expires at the end of December 2026 (12/26)" in first.text
    assert later.id and expired.id  # neither was told

    # A new expiry on the same card is a new notice, once.
    with ctx.sessions() as session:
        row = session.get(type(expiring), expiring.id)
        row.exp_year = 2027
        row.exp_month = 1
        session.commit()
    assert notices.expiring_cards(ctx, dt.date(2027, 1, 5)) == 1
    assert notices.expiring_cards(ctx, dt.date(2027, 1, 6)) == 0
    no_card_numbers(smtp.received)


def test_reminder_receipt_and_autopay_stopped(world, smtp):
    use_relay(world, smtp)
    world.today.set(dt.date(2026, 12, 5))
    card = add_card(world, 1)
    invoice = unpaid_invoice(world, 1)
    notices.reminder(world.ctx, customer_id=1, card=card, amount_cents=7500,
                     charge_on=dt.date(2026, 12, 8), invoice_id=invoice["id"],
                     invoice_number=invoice["number"])
    notices.autopay_stopped(world.ctx, card, declines=3, reason="The card has expired.")
    attempt = declined_attempt(world, 1, card)
    attempt.status, attempt.approval = AttemptStatus.POSTED, "A1B2C3"
    attempt.updated_at = dt.datetime(2026, 12, 5, 9, 30)
    assert notices.receipt(world.ctx, attempt) is None  # receipts are off by default
    notices.queue(world.ctx, "receipt", f"attempt:{attempt.id}", customer_id=1, values={
        "card": card, "amount_cents": 7500, "invoice_number": invoice["number"],
        "reference": attempt.transaction_id, "approval": "A1B2C3",
        "paid_on": dt.date(2026, 12, 5)})
    notices.send_due(world.ctx)
    reminder, stopped, receipt = smtp.received
    assert reminder["Subject"] == "Automatic payment of $75.00 on December 8, 2026"
    assert "In 3 days, on December 8, 2026, we will charge $75.00 to your card Visa •••• 1111" \
        in reminder.text
    assert "switch off automatic payments" in reminder.text
    assert stopped["Subject"] == "Automatic payments with your card Visa •••• 1111 have stopped"
    assert "declined 3 times in a row" in stopped.text
    assert "Reference: " + attempt.transaction_id in receipt.text
    assert [r.object_key for r in rows(world)] == [
        f"invoice:{invoice['id']}:2026-12-08", f"card:{card.id}:2026-12-05",
        f"attempt:{attempt.id}"]
    no_card_numbers(smtp.received)


def test_the_staff_summary_goes_to_each_address_once(world, smtp):
    use_relay(world, smtp)
    world.store().company_info.get(1)["splynx_url"] = "https://splynx.example"
    run = ChargeRun(id=77, source="auto", period_from=dt.date(2026, 11, 1),
                    period_to=dt.date(2026, 11, 30), filters="{}",
                    finished_at=dt.datetime(2026, 12, 5, 6, 3))
    summary = dict(charged_count=180, charged_cents=755012,
                   declined=[("Do not honour", 12, 50400, "soft"),
                             notices.Declines("Expired card", 3, 9000, "hard")],
                   errors=["Invoice 2024000012: Splynx did not answer"], skipped_count=4,
                   findings=["Payment 881 in Splynx carries TransactionID X but no attempt"])
    staff = ["ops@isp.example", "Boss@isp.example"]
    assert len(notices.run_summary(world.ctx, run, recipients=staff, **summary)) == 2
    assert notices.run_summary(world.ctx, run, recipients=staff, **summary) == []
    notices.send_due(world.ctx)
    assert sorted(m.rcpt_tos[0] for m in smtp.received) == ["Boss@isp.example", "ops@isp.example"]
    got = smtp.received[0]
    assert got["Subject"] == "Charge run #77: 180 charged, 15 declined, 1 error, 1 to check"
    assert "Charged:  180 ($7,550.12)" in got.text
    assert "Do not honour [soft]: 12 ($504.00)" in got.text
    assert "Payment 881 in Splynx" in got.text
    assert "https://splynx.example/ippay/admin/runs/77" in got.text
    assert 'href="https://splynx.example/ippay/admin/runs/77"' in got.html


def test_an_admins_template_overrides_the_packaged_one_and_a_broken_one_does_not_lose_mail(
        world, smtp, tmp_path, caplog):
    use_relay(world, smtp)
    override = tmp_path / "overrides" / "en"
    override.mkdir(parents=True)
    (override / "card_added.txt").write_text(
        "{% set subject %}New card on file at {{ isp }}{% endset %}"
        "Dear {{ customer_name }}, card {{ card }} is on file.\n")
    (override / "card_removed.txt").write_text("{% set subject %}Oops{% endset %}{{ nope }}\n")
    card = add_card(world, 1)
    notices.card_added(world.ctx, card)
    notices.card_removed(world.ctx, card)
    notices.send_due(world.ctx)
    added, removed = smtp.received
    assert added["Subject"] == "New card on file at Sandbox ISP Ltd"
    assert added.text == "Dear Alice Anderson, card Visa •••• 1111 is on file.\n"
    assert "A card was saved to your account" in added.html  # the packaged HTML still
    assert removed["Subject"] == "A card was removed from your account"
    assert "cannot be used" in caplog.text and "card_removed" in caplog.text


def test_a_card_number_never_leaves_even_when_a_caller_passes_one(world, smtp, caplog):
    use_relay(world, smtp)
    card = add_card(world, 1)
    attempt = declined_attempt(world, 1, card)
    assert notices.decline(world.ctx, attempt, reason="Card 4111 1111 1111 1111 refused") is None
    assert "looks like a card number" in caplog.text
    assert "4111" not in caplog.text
    assert notices.queue(world.ctx, "card_added", "card:x", customer_id=1, values={
        "card": "4111111111111111", "expiry": "12/30", "added_on": dt.date(2026, 12, 1),
        "autopay": False}) is None
    assert rows(world) == []
    # The token and the Card object itself never reach a template: only the masked card.
    notices.card_added(world.ctx, card)
    notices.send_due(world.ctx)
    [got] = smtp.received
    assert card.token not in got.raw
