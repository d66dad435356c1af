"""The module setting ``language`` (docs/portal.md "Languages"): the customer pages, their
field errors and the gateway's decline messages in Spanish, English by default and on the
staff pages; and no page left half in English."""

import re

import pytest
from babel.messages.pofile import read_po

from splynx_ippay import catalogues, i18n
from splynx_ippay.ippay import codes
from tests.portal.helpers import (
    add_card, csrf, new_card_fields, pay_page, refill_page, submit_pay, submit_refill, text_of,
)

MODULE = "splynx_ippay_addon"


def _spanish():
    """The Spanish catalogue's translated sentences (no plurals), English text to Spanish."""
    with open(catalogues.catalogue_paths("es")[0], "rb") as source:
        catalog = read_po(source, locale="es")
    return {m.id: m.string for m in catalog
            if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


ES = _spanish()

#: English sentences and words of the customer pages that must not survive in Spanish.
ENGLISH = (
    "Credit card", "Saved cards", "Add a card", "Name on card", "Card number", "Security code",
    "Billing ZIP code", "Use as my default card", "Make default", "Replace", "Remove",
    "Pay with", "A new card", "Save this card", "Amount due", "Pay $", "Pay by", "Total owed",
    "Pay your invoices", "Add money", "Current balance", "Your card number is sent",
    "Success!", "was received", "Thank you", "The payment was not made", "Nothing was charged",
    "Try again", "Reference", "Done", "Invoice #", "Proforma invoice", "Log in to the customer",
    "expires", "Default", "Cancel", "Enter the", "The card", "Your ", "payment", "invoice",
    "balance", "Please",
)


def es(world):
    world.set_module_settings({"language": "es"})


def assert_spanish(html, *spanish):
    """The page says ``spanish`` and none of the English phrases, and none of the catalog's
    English sentences is left untranslated."""
    assert 'lang="es"' in html
    words = text_of(html)
    for phrase in spanish:
        assert phrase in words, (phrase, words)
    for phrase in ENGLISH:
        assert not re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", words), (phrase, words)
    for english, spanish_text in ES.items():
        if "{" in english or english == spanish_text or len(english) < 12:
            continue
        assert english not in words, (english, words)


def test_pages_are_english_by_default(world):
    alice = world.login("alice")
    page = alice.get(f"{world.url}/ippay/cards", timeout=10)
    assert 'lang="en"' in page.text and "Saved cards" in page.text and "Add card" in page.text


def test_cards_page_and_its_field_errors_in_spanish(world):
    es(world)
    alice = world.login("alice")
    page = alice.get(f"{world.url}/ippay/cards", timeout=10)
    assert_spanish(page.text, "Tarjeta de crédito", "Tarjetas guardadas", "Agregar una tarjeta",
                   "Nombre en la tarjeta", "Número de tarjeta", "Vencimiento (MM/AA)",
                   "Código de seguridad (CVV)", "Usar como mi tarjeta predeterminada",
                   "Todavía no tiene ninguna tarjeta guardada")
    assert 'placeholder="MM/AA"' in page.text
    bad = alice.post(f"{world.url}/ippay/cards", data={
        "csrf_token": csrf(page.text), "holder_name": "", "number": "4111111111111112",
        "expiry": "13/30", "cvv": "12", "postal_code": "!"}, timeout=10)
    assert bad.status_code == 422
    assert_spanish(bad.text, "Ingrese el nombre tal como figura en la tarjeta.",
                   "Este número de tarjeta no es válido. Revise los dígitos.",
                   "El mes debe estar entre 01 y 12.",
                   "El código de seguridad tiene 3 dígitos.",
                   "Ingrese el código postal de la dirección de facturación")
    saved = add_card(world, alice)
    assert_spanish(saved.text if saved.status_code == 200 else
                   alice.get(f"{world.url}/ippay/cards", timeout=10).text,
                   "Su tarjeta se guardó.", "Predeterminada", "Reemplazar", "Eliminar",
                   "Sí, eliminar", "vence 12/30")
    card_id = re.search(r'data-card-id="(\d+)"', alice.get(f"{world.url}/ippay/cards").text)[1]
    replace = alice.get(f"{world.url}/ippay/cards/{card_id}/replace", timeout=10)
    assert_spanish(replace.text, "Reemplazar Visa •••• 1111", "Ingrese la nueva tarjeta.",
                   "Reemplazar tarjeta", "Cancelar")


def test_pay_modal_result_and_decline_in_spanish(world):
    es(world)
    alice = world.login("alice")
    add_card(world, alice)
    page = pay_page(world, alice, "invoice", "202402000003")
    assert_spanish(page.text, "Factura #202402000003", "Importe pendiente $60.10",
                   "Pagada parcialmente", "Pagar con", "Una tarjeta nueva", "Pagar $60.10",
                   "Guardar esta tarjeta para la próxima vez", "Pagar antes del")
    done = submit_pay(world, alice, "invoice", "202402000003", page=page)
    assert_spanish(done.text, "¡Listo!", "Recibimos su pago de $60.10. Gracias.",
                   "La factura 202402000003 ya está pagada.", "Referencia")
    declined = submit_pay(world, alice, "invoice", "202405000010")  # cents 05: declined
    assert_spanish(declined.text, "El pago no se realizó.",
                   "El emisor de su tarjeta rechazó el pago.", "No se cobró nada.",
                   "Intentar de nuevo")
    proforma = pay_page(world, alice, "proforma", "2024050001")
    assert_spanish(proforma.text, "Factura proforma #2024050001")
    paid = pay_page(world, alice, "invoice", "202402000003")
    assert_spanish(paid.text, "La factura 202402000003 ya está pagada. No queda nada pendiente.")
    missing = pay_page(world, alice, "invoice", "999999999999")
    assert missing.status_code == 404
    assert_spanish(missing.text, "Factura no encontrada", "No se encontró esta factura.")
    new = submit_pay(world, alice, "invoice", "202403000005", **new_card_fields(cvv="1"))
    assert new.status_code == 422
    assert_spanish(new.text, "El código de seguridad tiene 3 dígitos.")


def test_refill_page_and_amount_errors_in_spanish(world):
    es(world)
    alice = world.login("alice")
    add_card(world, alice)
    page = refill_page(world, alice)
    assert_spanish(page.text, "Agregar dinero a su saldo", "Saldo actual", "Importe (USD)",
                   "De $5.00 a $1,000.00, con hasta dos decimales", "Agregar")
    for amount, words in (("12,50", "Use un punto para los decimales"),
                          ("", "Ingrese un importe."), ("1", "El importe mínimo que puede "
                                                             "agregar es $5.00."),
                          ("12.345", "Use como máximo dos decimales")):
        bad = submit_refill(world, alice, amount)
        assert bad.status_code == 422
        assert_spanish(bad.text, words)
    done = submit_refill(world, alice, "20.00")
    assert_spanish(done.text, "¡Listo!", "Se agregaron $20.00 a su saldo. Gracias.",
                   "Su saldo ahora es", "Volver al portal", "Agregar más")


def test_widget_in_spanish(world):
    es(world)
    alice = world.login("alice")
    page = alice.get(f"{world.url}/ippay/widget", timeout=10)
    assert_spanish(page.text, "Pague sus facturas con tarjeta", "Número", "Pendiente",
                   "Total adeudado", "Pagar")
    count = len(re.findall(r"<tr data-number=", page.text))
    assert count > 1 and f"{count} facturas impagas</caption>" in page.text
    assert 'aria-label="Pagar la factura 202403000005, $75.00"' in page.text
    anonymous = world.login("bob")
    anonymous.cookies.clear()
    login = anonymous.get(f"{world.url}/ippay/widget", timeout=10)
    assert_spanish(login.text, "Su sesión terminó.", "Inicie sesión de nuevo")


def test_direct_link_pages_in_spanish(world):
    from splynx_ippay.services.payments import link_signature

    es(world)
    import requests

    visitor = requests.Session()
    url = (f"{world.url}/ippay/direct-pay-invoice-by-id?item_id=3"
           f"&sig={link_signature(world.ctx, 'invoice', 3)}")
    page = visitor.get(url, timeout=10)
    assert_spanish(page.text, "Factura #202402000003", "Importe pendiente $60.10",
                   "¿Tiene una cuenta?", "Inicie sesión en el portal de clientes",
                   "para pagar con una tarjeta guardada.", "Nombre en la tarjeta")
    result = visitor.post(url, data={"csrf_token": csrf(page.text),
                                     "request_key": re.search(r'name="request_key"[^>]*value="'
                                                              r'([^"]*)"', page.text)[1],
                                     "card_id": "new", **new_card_fields(holder="A Friend")},
                          timeout=30)
    assert_spanish(result.text, "¡Listo!", "Ir al portal de clientes")
    unusable = visitor.get(url, timeout=10)
    assert unusable.status_code == 404
    assert_spanish(unusable.text, "Este enlace de pago no se puede usar")
    forged = visitor.post(url, data={"csrf_token": "forged"}, timeout=10)
    assert forged.status_code == 400
    assert_spanish(forged.text, "El formulario expiró")


def test_every_gateway_and_journal_message_has_a_spanish_text():
    messages = set(codes._MESSAGES.values()) | set(codes._APPROVED_MESSAGES.values())
    messages |= set(codes._ACH_MESSAGES.values()) | {m for _, m in codes._ERRMSG_PATTERNS}
    messages |= {codes._DECLINED, codes._BANK_DECLINED, codes._REJECTED}
    for code in list(codes.MEANINGS) + ["150", "777"]:
        messages.add(codes.describe(code))
        messages.add(codes.describe(code, transaction_type="CHECK"))
    messages |= {"The payment could not be sent. Nothing was charged.",
                 "The payment gateway could not be reached. Nothing was charged.",
                 "The payment did not reach the card network. Nothing was charged.",
                 "The card details could not be saved. Please try again.",
                 # the journal's other stored messages and the skip reasons a customer reads
                 "The payment was interrupted before it was sent. Nothing was charged.",
                 "The billing system did not answer. Nothing was charged.",
                 "Paid meanwhile: another payment of it was approved.",
                 "Not charged: the document is not this customer's.",
                 "Paid meanwhile: nothing is due any more.",
                 "The amount due has just changed. Please check it and pay again.",
                 "Not sent: too many cards tried. Nothing was charged."}
    missing = sorted(m for m in messages if m not in ES)
    assert missing == []


def test_placeholders_survive_translation_and_staff_pages_stay_english(world):
    for english, spanish in ES.items():
        wanted = set(re.findall(r"{(\w+)}", english))
        got = set(re.findall(r"{(\w+)}", spanish))
        assert got <= wanted | {"lower"}, (english, spanish)
        assert wanted - {"name"} <= got, (english, spanish)
    es(world)
    app = world.front.app.addon_app
    with app.test_request_context("/ippay/cards"):
        assert i18n.current_language() == "es"
        assert i18n._("The card {card} has expired. Please add a new card.", card="Visa") == \
            "La tarjeta Visa está vencida. Agregue una tarjeta nueva."
        assert i18n._("Text without a translation") == "Text without a translation"
    with app.test_request_context("/ippay/admin/transactions"):
        assert i18n.current_language() == "en"
        assert i18n._("Not found") == "Not found"
    assert i18n._("Not found") == "Not found"  # outside a request: logs, worker, CLI


@pytest.mark.parametrize("value", ["fr", "xx", ""])
def test_an_unknown_language_falls_back_to_english(world, value):
    world.set_module_settings({"language": value})
    page = world.login("alice").get(f"{world.url}/ippay/cards", timeout=10)
    assert 'lang="en"' in page.text and "Saved cards" in page.text


def test_the_settings_page_offers_exactly_the_languages_with_a_catalog():
    from splynx_ippay.config import LANGUAGES

    assert tuple(LANGUAGES) == catalogues.LANGUAGES == ("en", "es")
