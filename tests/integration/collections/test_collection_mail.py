"""What collections tell people, end to end through a real SMTP server on loopback: the
customer each decline with the next try, the stop of a card's automatic use, the reminder
before a charge, the receipt; staff the summary of each automatic run. Each once."""

import datetime as dt

import pytest
from sqlalchemy import select

from splynx_ippay.db import session_scope
from splynx_ippay.models import OutboxMessage
from splynx_ippay.services import autopay, notices
from splynx_ippay.services.charge_runs.worker import Worker
from tests.integration.collections.conftest import DAY
from tests.integration.collections.test_autopay import DUE_DAY, charge_due, day_at
from tests.integration.mail.mail_helpers import SmtpServer


@pytest.fixture
def smtp(collections):
    server = SmtpServer().start()
    collections.ctx.settings.update(server.settings())
    yield server
    server.stop()


def outbox(ctx, purpose=None):
    with session_scope(ctx.sessions) as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if purpose:
            query = query.where(OutboxMessage.purpose == purpose)
        return session.execute(query).scalars().all()


def sent_to(smtp, address):
    return [m for m in smtp.received if address in m.rcpt_tos]


def test_declines_stops_and_the_staff_summary_are_mailed_once(collections, smtp):
    ctx = collections.ctx
    soft, [(_, soft_card)] = collections.customer()
    hard, [(_, hard_card)] = collections.customer()
    paid, _ = collections.customer()
    collections.script({soft_card: ["051", "000"], hard_card: ["054", "054"]})
    invoices = {who: collections.invoice(who, total="40.00", due=DAY)
                for who in (soft, hard, paid)}
    second_hard = collections.invoice(hard, total="12.00", due=DAY + dt.timedelta(days=1))
    collections.schedules(DUE_DAY, staff_emails="billing@isp.example, noc@isp.example",
                          autopay_hard_declines=2, public_url="https://billing.isp.example")

    charge_due(collections, DAY)
    notices.send_due(ctx)
    [decline] = sent_to(smtp, _address(ctx, soft))
    assert decline["Subject"] == f"Your payment for invoice {_number(ctx, invoices[soft])} did not go through"
    assert soft_card in decline.text and "$40.00" in decline.text
    # The next try (retry_days 1,3,7: tomorrow) and a link to pay now.
    assert f"we will try the card again on {notices.long_date(DAY + dt.timedelta(days=1))}" \
        in decline.text
    assert "Pay now, with this card or another one:\nhttps://billing.isp.example/ippay/" \
        in decline.text
    [hard_decline] = sent_to(smtp, _address(ctx, hard))
    assert "we will not try to charge this card again" in hard_decline.text  # hard: stopped
    assert sent_to(smtp, _address(ctx, paid)) == []  # receipts are off by default
    [summary] = sent_to(smtp, "billing@isp.example")
    assert len(sent_to(smtp, "noc@isp.example")) == 1
    assert summary["Subject"].endswith(": 1 charged, 2 declined")
    assert "Charged:  1 ($40.00)" in summary.text and "Declined: 2 ($80.00)" in summary.text
    assert "[soft]" in summary.text and "[hard]" in summary.text
    # Sending again sends nothing more.
    before = len(smtp.received)
    assert notices.send_due(ctx).sent == 0 and len(smtp.received) == before

    charge_due(collections, DAY + dt.timedelta(days=1))  # the soft one recovers
    notices.send_due(ctx)
    stopped = [m for m in sent_to(smtp, _address(ctx, hard)) if "stopped" in m["Subject"]]
    assert len(stopped) == 1 and hard_card in stopped[0].text
    assert "declined 2 times in a row" in stopped[0].text
    # Runs that day: the schedule's and the retries'; a summary of each to each address.
    assert len(sent_to(smtp, "billing@isp.example")) == 3
    assert len(outbox(ctx, "decline")) == 3  # soft once, hard twice (two invoices)
    assert {collections.status(invoices[soft]), collections.status(invoices[paid])} == {"paid"}
    assert collections.status(second_hard) == "not_paid"
    assert not any(notices.looks_like_card_number(m.raw) for m in smtp.received)


def test_customers_who_asked_are_reminded_days_before_the_charge(collections, smtp):
    ctx = collections.ctx
    asked, [(_, asked_card)] = collections.customer()
    silent, _ = collections.customer()
    opted_out, _ = collections.customer()
    autopay.set_preferences(ctx, asked, reminders=True)
    autopay.set_preferences(ctx, opted_out, autopay=False, reminders=True)
    due_on = DAY + dt.timedelta(days=3)
    invoice = collections.invoice(asked, total="25.50", due=due_on)
    for who in (silent, opted_out):
        collections.invoice(who, due=due_on)
    collections.schedules(DUE_DAY, reminder_days=3)

    day_at(collections, DAY)
    assert autopay.remind(ctx) == 1
    assert autopay.remind(ctx) == 0  # the same day again: written once
    notices.send_due(ctx)
    [reminder] = smtp.received
    assert reminder.rcpt_tos == [_address(ctx, asked)]
    assert "$25.50" in reminder.text and asked_card in reminder.text
    assert notices.long_date(due_on) in reminder.text
    assert outbox(ctx, "reminder")[0].object_key == f"invoice:{invoice}:{due_on.isoformat()}"


def test_a_receipt_follows_each_payment_when_asked_for(collections, smtp):
    ctx = collections.ctx
    who, [(_, last4)] = collections.customer()
    invoice = collections.invoice(who, total="19.99", due=DAY)
    collections.schedules(DUE_DAY, receipts="1")
    charge_due(collections, DAY)
    charge_due(collections, DAY)  # nothing more to charge, nothing more to tell
    notices.send_due(ctx)
    [receipt] = smtp.received
    [sale] = collections.sales(approved=True)
    assert receipt.rcpt_tos == [_address(ctx, who)]
    assert "$19.99" in receipt.text and last4 in receipt.text
    assert sale["transaction_id"] in receipt.text and _number(ctx, invoice) in receipt.text


def test_the_worker_sends_mail_and_the_daily_notices_by_itself(collections, smtp):
    """A worker as the service runs it (automatic): each pass sends what is queued, and once
    a day queues the expiring-card notices and the reminders."""
    ctx = collections.ctx
    asked, _ = collections.customer()
    autopay.set_preferences(ctx, asked, reminders=True)
    collections.invoice(asked, due=DAY + dt.timedelta(days=3))
    collections.schedules(DUE_DAY, reminder_days=3)
    day_at(collections, DAY)
    worker = Worker(ctx, poll=0.05)
    worker.collect()
    assert [m.rcpt_tos for m in smtp.received] == [[_address(ctx, asked)]]
    worker.collect()  # the same day: nothing twice
    assert len(smtp.received) == 1


def _number(ctx, invoice_id):
    return ctx.splynx.get_invoice(invoice_id).number


def _address(ctx, customer_id):
    return ctx.splynx.get_customer(customer_id).email
