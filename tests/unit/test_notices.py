"""The messages without servers: every template in every language, what may reach a
template, the card-number guard, the backoff, the MIME message and the [mail] settings."""

import datetime as dt
import os
import re
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from splynx_ippay.config import ConfigError, LANGUAGES, load_config
from splynx_ippay.messages import Sentence
from splynx_ippay.models import Card, OutboxMessage, PaymentAttempt
from splynx_ippay.money import format_cents
from splynx_ippay.services import mail, notices

DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,}(?![0-9A-Za-z])")

COMMON = {
    "isp": "Sandbox ISP Ltd", "customer_name": "Alice Anderson", "language": "en",
    "company": {"name": "Sandbox ISP Ltd", "email": "billing@isp.example", "phone": "+1 555 0100",
                "address": ["1 Fibre Street", "12345 Springfield"]},
    "public_url": "https://splynx.example", "portal_url": "https://splynx.example/ippay/cards",
    "currency_sign": "$", "money": lambda cents: format_cents(cents, "$"),
}
CARD = "Visa •••• 1111"
VALUES = {
    "decline": dict(card=CARD, amount_cents=4217, invoice_number="202410000031",
                    reason="Your card issuer declined the payment.", retry_on=dt.date(2026, 12, 8),
                    pay_url="https://splynx.example/ippay/direct-pay-invoice-by-id?item_id=3"
                            "&sig=0a1b2c3d4e5f60718293a4b5"),
    "autopay_stopped": dict(card=CARD, declines=3, reason="The card has expired."),
    "reminder": dict(card=CARD, amount_cents=4217, charge_on=dt.date(2026, 12, 8), days=3,
                     invoice_number="202410000031"),
    "receipt": dict(card=CARD, amount_cents=4217, invoice_number="202410000031",
                    reference="ABCDEF0123456789XY", approval="123456",
                    paid_on=dt.date(2026, 12, 5)),
    "card_added": dict(card=CARD, expiry="12/26", added_on=dt.date(2026, 12, 5), autopay=True),
    "card_removed": dict(card=CARD, removed_on=dt.date(2026, 12, 5)),
    "bank_account_added": dict(account=CARD, routing="•••••0025", added_on=dt.date(2026, 12, 5),
                               autopay=True),
    "bank_account_removed": dict(account=CARD, routing="•••••0025",
                                 removed_on=dt.date(2026, 12, 5)),
    "expiring": dict(card=CARD, expiry="12/26", expires_on=dt.date(2026, 12, 31), autopay=True),
    "ach_returned": dict(account=CARD, amount_cents=4217,
                         invoice_number="202410000031", code="R03",
                         reason="No account, or the account could not be found", fee_cents=500,
                         stops_autopay=True, reference="ABCDEF0123456789XY",
                         pay_url="https://splynx.example/ippay/direct-pay-invoice-by-id?item_id=3"),
    "run_summary": dict(
        run_id=12, source="auto", period_from=dt.date(2026, 11, 1),
        period_to=dt.date(2026, 11, 30), started_at=None, finished_at=dt.datetime(2026, 12, 5),
        run_url="https://splynx.example/ippay/admin/runs/12", charged_count=180,
        charged_cents=755012, declined=[{"reason": "Do not honour", "count": 12, "cents": 50400,
                                         "category": "soft"}],
        declined_count=12, declined_cents=50400, errors=["Invoice 7: Splynx did not answer"],
        error_count=3, skipped_count=4, findings=[]),
}
#: Values a message may lack: no links known, a balance payment, no retry, no reason.
SPARSE = {"public_url": "", "portal_url": None, "customer_name": ""}
SPARSE_VALUES = {"decline": dict(pay_url=None, retry_on=None, invoice_number=""),
                 "autopay_stopped": dict(reason=""), "reminder": dict(invoice_number="", days=0),
                 "receipt": dict(invoice_number="", approval=""), "run_summary": dict(run_url=None),
                 "ach_returned": dict(invoice_number="", pay_url=None, fee_cents=0,
                                      stops_autopay=False)}


def render(purpose, language, sparse=False):
    values = dict(COMMON, language=language, **VALUES[purpose])
    if sparse:
        values.update(SPARSE, **SPARSE_VALUES.get(purpose, {}))
    return notices.render(purpose, language, values)


def test_every_purpose_has_both_templates_in_every_language():
    root = notices.packaged_templates()
    for language in LANGUAGES:
        names = {n for n in os.listdir(os.path.join(root, language)) if not n.startswith("_")}
        assert names == {f"{p}.{ext}" for p in notices.PURPOSES for ext in ("txt", "html")}


@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.parametrize("purpose", notices.PURPOSES)
@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
def test_every_message_renders_in_every_language(purpose, language, sparse):
    subject, text, html = render(purpose, language, sparse)
    assert subject and "\n" not in subject and len(subject) < 120
    assert text.endswith("\n") and "\n\n\n" not in text
    assert f'<html lang="{language}">' in html and f"<title>{subject}" in html.replace(
        "&amp;", "&")
    for part in (subject, text, html):
        assert "{{" not in part and "{%" not in part and "None" not in part
        assert not DIGIT_RUN.search(part), part
    if purpose != "run_summary":
        assert CARD in text and CARD in html
        assert "Sandbox ISP Ltd" in text and "Sandbox ISP Ltd" in html
    if language == "es":
        for english in ("Hello", "We will", "your card", "This message"):
            assert english not in text
    if sparse:  # no public address known: no links, and no empty ones
        assert "http" not in text and "http" not in html and 'href=""' not in html


def test_what_happens_next_is_said_both_ways():
    assert "we will try the card again on December 8, 2026" in render("decline", "en").text
    assert "we will not try to charge this card again" in render("decline", "en", True).text
    assert "volveremos a intentar el cobro el 8 de diciembre de 2026" in \
        render("decline", "es").text
    assert "no volveremos a intentar el cobro" in render("decline", "es", True).text


def test_an_override_is_used_and_a_broken_one_falls_back(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "card_added.txt").write_text(
        "{% set subject %}Card on file{% endset %}{{ card }} saved.\n")
    (tmp_path / "en" / "card_removed.txt").write_text("{% set subject %}x{% endset %}{{ nope }}")
    values = dict(COMMON, **VALUES["card_added"])
    added = notices.render("card_added", "en", values, override_dir=str(tmp_path))
    assert (added.subject, added.text) == ("Card on file", f"{CARD} saved.\n")
    assert "A card was saved" in added.html
    removed = notices.render("card_removed", "en", dict(COMMON, **VALUES["card_removed"]),
                             override_dir=str(tmp_path))
    assert removed.subject == "A card was removed from your account"
    # Spanish has no override here: the packaged Spanish text.
    es = notices.render("card_added", "es", dict(values, language="es"),
                        override_dir=str(tmp_path))
    assert es.subject == "Se agregó una tarjeta a su cuenta"


def test_a_template_may_not_forget_its_subject(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "card_removed.txt").write_text("no subject here\n")
    with pytest.raises(Exception, match="sets no subject"):
        notices._render_with((str(tmp_path),), "card_removed", "en",
                             dict(COMMON, **VALUES["card_removed"]))


@pytest.mark.parametrize("text,found", [
    ("4111 1111 1111 1111", True), ("card 4111-1111-1111-1111.", True),
    ("4111111111111111", True), ("378282246310005", True),
    ("invoice 202410000031", False),            # 12 digits
    ("4111111111111112", False),                # fails Luhn
    ("sig=0a1b2c4111111111111111ff", False),    # inside a longer word
    ("Visa •••• 1111", False),
])
def test_card_number_guard(text, found):
    assert notices.looks_like_card_number(text) is found


def test_only_masked_cards_and_plain_data_reach_a_template():
    card = Card(id=7, customer_id=1, token="SECRET-TOKEN", brand="Visa", last4="1111",
                exp_month=12, exp_year=2026, holder_name="Alice")
    view = notices._template_value(card, "en")
    assert str(view) == "Visa •••• 1111" and view.expiry == "12/26"
    assert "SECRET-TOKEN" not in repr(view) and not hasattr(view, "token")
    assert notices._template_value({"cards": [card]}, "en")["cards"][0].masked == str(view)
    with pytest.raises(TypeError):
        notices._template_value(PaymentAttempt(id=1), "en")
    with pytest.raises(TypeError):
        notices.card_view(object())
    link = notices.Link("/ippay/cards")
    assert notices._template_value(link, "en", "https://x.example") == \
        "https://x.example/ippay/cards"
    assert notices._template_value(link, "en", "") is None


def test_sentences_and_decline_reasons_are_written_in_the_message_language():
    reason = Sentence("Your card issuer declined the payment. Please use another card or "
                      "contact your bank.")
    assert notices._template_value(reason, "es").startswith("El emisor de su tarjeta")
    assert notices._template_value(reason, "en") == str(reason)
    es = notices.translator("es")
    assert es.gettext("No such text") == "No such text"
    assert notices.translator("en").gettext(str(reason)) == str(reason)


def test_dates_as_people_write_them():
    day = dt.date(2026, 12, 5)
    assert notices.long_date(day) == "December 5, 2026"
    assert notices.long_date(day, "es") == "5 de diciembre de 2026"
    assert notices.month_year(day, "es") == "diciembre de 2026"
    assert notices.long_date("2026-01-02") == "January 2, 2026"


def test_backoff_grows_then_stays():
    minutes = [notices.backoff(n).total_seconds() / 60 for n in range(1, 8)]
    assert minutes == [1, 5, 30, 120, 120, 120, 120]
    total = sum((notices.backoff(n) for n in range(1, notices.MAX_TRIES)), dt.timedelta())
    assert dt.timedelta(days=2) < total < dt.timedelta(days=4)


def test_expiry_date_is_the_end_of_the_month():
    card = Card(exp_month=2, exp_year=2028)
    assert notices.expiry_date(card) == dt.date(2028, 2, 29)


def test_addresses_are_checked_before_they_reach_a_header():
    assert mail.addresses("A <a@x.example>, b@y.example") == ["a@x.example", "b@y.example"]
    assert mail.addresses("root@localhost") == ["root@localhost"]
    for bad in ("", "alice", "a@b.example\r\nBcc: c@d.example", "a b@c.example", "@x.example"):
        with pytest.raises(ValueError):
            mail.addresses(bad)


def test_the_mime_message():
    message = mail.build_message(
        sender="Señal Networks <billing@isp.example>", recipient="a@x.example",
        subject="Pago   recibido\n: $1.00", text="Hola\n", html="<p>Hola</p>",
        reply_to="help@isp.example", language="es", message_id="<1.abc@isp.example>",
        date=dt.datetime(2026, 12, 5, 6, 0, tzinfo=dt.timezone.utc))
    raw = message.as_bytes()
    assert b"\r\n" in raw and not DIGIT_RUN.search(raw.decode())
    parsed = message_from_bytes(raw, policy=default_policy)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Subject"] == "Pago recibido : $1.00"
    assert parsed["From"].addresses[0].display_name == "Señal Networks"
    assert parsed["Content-Language"] == "es" and parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Message-ID"] == "<1.abc@isp.example>"
    assert parsed["Date"].datetime == dt.datetime(2026, 12, 5, 6, 0, tzinfo=dt.timezone.utc)
    text_only = mail.build_message(sender="a@x.example", recipient="b@y.example",
                                   subject="s", text="t\n")
    assert text_only.get_content_type() == "text/plain" and text_only["Date"]


def test_message_ids_are_the_same_on_every_try():
    row = OutboxMessage(id=5, purpose="decline", object_key="attempt:9",
                        sender="ISP <billing@isp.example>")
    assert notices.message_id(row) == notices.message_id(row)
    assert re.fullmatch(r"<splynx-ippay\.5\.[a-z2-7]{16}@isp\.example>", notices.message_id(row))


def test_mail_settings_defaults_and_refusals(tmp_path):
    path = tmp_path / "config.ini"
    path.write_text("")
    settings = load_config(str(path), environ={})
    assert mail.MailSettings.from_settings(settings) == mail.MailSettings(
        host="localhost", port=25, starttls="no", username="", password="", ca_file="",
        timeout=10.0)
    assert settings["MAIL_TEMPLATES"] == "/etc/splynx-ippay/mail"
    path.write_text("[mail]\nhost = relay.isp.example\nport = 587\nstarttls = Required\n"
                    "username = mailer\nfrom = Billing <billing@isp.example>\n")
    settings = load_config(str(path), environ={"SPLYNX_IPPAY_MAIL_PASSWORD": "pw"})
    assert (settings["MAIL_PORT"], settings["MAIL_STARTTLS"], settings["MAIL_PASSWORD"]) == \
        (587, "required", "pw")
    for line, words in (("starttls = maybe", "[mail] starttls"), ("port = 0", "[mail] port"),
                        ("from = billing", "[mail] from"), ("host = a b", "[mail] host"),
                        ("timeout = 0", "[mail] timeout")):
        path.write_text(f"[mail]\n{line}\n")
        with pytest.raises(ConfigError, match=re.escape(words)):
            load_config(str(path), environ={})
