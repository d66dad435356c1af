"""The gettext catalogues of the customer pages (i18n.py, babel.cfg, docs/portal.md
"Languages"): every sentence the code and templates use is extracted and translated, the
placeholders survive, the plural forms work, and the catalogue is found compiled, compiled in
memory, or not at all (English)."""

import datetime as dt
import gettext
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from splynx_ippay import catalogues, config, i18n
from splynx_ippay.messages import ENGLISH, Plural, Sentence, UserError
from splynx_ippay.services.limits import TryLater

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = catalogues.TRANSLATIONS / "messages.pot"
OTHER_LANGUAGES = [language for language in config.LANGUAGES if language != catalogues.DEFAULT]
#: The note on catalogue entries that the code shows but does not mark yet.
KEPT_BY_HAND = "kept by hand until it does"


def read(path, locale=None):
    with open(path, "rb") as source:
        return read_po(source, locale=locale)


def msgid(message):
    return message.id if isinstance(message.id, str) else message.id[0]


def entries(catalog):
    return {msgid(m): m for m in catalog if m.id}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """A fresh extraction, as docs/portal.md "Languages" runs it, to a temporary .pot."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "extract",
                    "-F", "babel.cfg", "-c", "TRANSLATORS:", "--add-location=file",
                    "-o", str(pot), "."], cwd=ROOT, check=True, timeout=120)
    return entries(read(pot))


def test_the_extraction_finds_every_kind_of_mark(extracted):
    where = {key: {path for path, _ in m.locations} for key, m in extracted.items()}
    # a template, _() in a view, N_() in a form label, Sentence() and a UserError in services,
    # codes.py's N_(), and a plural (ngettext in a template, Plural in a service)
    assert "templates/portal/cards.html" in where["Saved cards"]
    assert "splynx_ippay/app.py" in where["Not found"]
    assert "splynx_ippay/portal/forms.py" in where["Name on card"]
    assert "splynx_ippay/services/cards.py" in where["Enter the card number."]
    assert "splynx_ippay/services/payments.py" in where["Choose one of your saved cards."]
    assert "splynx_ippay/money.py" in where["Enter an amount."]
    assert "splynx_ippay/ippay/codes.py" in where[
        "Your card issuer declined the payment. Please use another card or contact your bank."]
    assert "splynx_ippay/ippay/codes.py" in where["The reversal was accepted."]
    assert extracted["{count} unpaid invoice"].id[1] == "{count} unpaid invoices"
    minutes = [m for key, m in extracted.items() if key.endswith("try again in {count} minute.")]
    assert minutes and minutes[0].id[1].endswith("{count} minutes.")
    # staff pages stay English: nothing of them in the catalogue
    assert not [key for key, paths in where.items()
                if any(p.startswith(("templates/admin/", "splynx_ippay/admin/")) for p in paths)]


def test_the_committed_template_is_the_extraction(extracted):
    committed = entries(read(TEMPLATE))
    assert sorted(set(extracted) - set(committed)) == [], "run pybabel extract (docs/portal.md)"
    assert sorted(set(committed) - set(extracted)) == [], "run pybabel extract (docs/portal.md)"


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_every_extracted_sentence_is_translated(extracted, language):
    po, _ = catalogues.catalogue_paths(language)
    translated = entries(read(po, locale=language))
    missing = sorted(key for key in extracted if key not in translated)
    fuzzy = sorted(key for key, m in translated.items() if m.fuzzy)
    empty = sorted(key for key, m in translated.items()
                   if not all(m.string if isinstance(m.string, tuple) else (m.string,)))
    plural_mismatch = sorted(key for key, m in extracted.items() if key in translated
                             and isinstance(m.id, tuple) != isinstance(translated[key].id, tuple))
    assert (missing, fuzzy, empty, plural_mismatch) == ([], [], [], [])
    # What the extraction does not find is there only as a note to the lead: a sentence shown
    # to customers whose code does not mark it yet, never a forgotten one.
    stale = sorted(key for key, m in translated.items() if key not in extracted
                   and not any(KEPT_BY_HAND in comment for comment in m.auto_comments))
    assert stale == []


def placeholders(text):
    return set(re.findall(r"{(\w*)}", text))


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_placeholders_survive_translation(language):
    po, _ = catalogues.catalogue_paths(language)
    for message in read(po, locale=language):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set().union(*map(placeholders, ids))
        for string in strings:
            got = placeholders(string)
            if ids[0].startswith("{name}"):
                # "{name} {number} is now paid.": the sentence starts with the capitalised
                # name; inside a translated sentence it may be {lower} (the same, lower case)
                got = {"name" if p == "lower" else p for p in got}
            assert got == wanted, (ids[0], string)


def test_spanish_has_two_plural_forms():
    catalog = read(catalogues.catalogue_paths("es")[0], locale="es")
    assert catalog.plural_forms == "nplurals=2; plural=(n != 1);"
    spanish = catalogues.catalogue("es")
    forms = {n: spanish.ngettext("{count} unpaid invoice", "{count} unpaid invoices", n)
             for n in (0, 1, 2, 21)}
    assert forms == {0: "{count} facturas impagas", 1: "{count} factura impaga",
                     2: "{count} facturas impagas", 21: "{count} facturas impagas"}


def test_plural_sentences_in_english_and_spanish():
    now = dt.datetime(2024, 5, 1, 12, 0)
    spanish = catalogues.catalogue("es")
    one, many = TryLater(now + dt.timedelta(seconds=30), now), TryLater(now + dt.timedelta(hours=1), now)
    assert str(one).endswith("Please try again in 1 minute.")
    assert str(many).endswith("Please try again in 60 minutes.")  # as the safety suite reads it
    assert one.sentence.render(spanish).endswith("Inténtelo de nuevo en 1 minuto.")
    assert many.sentence.render(spanish).endswith("Inténtelo de nuevo en 60 minutos.")
    hours = TryLater(now + dt.timedelta(hours=5), now).sentence
    assert hours.render(spanish).endswith("en aproximadamente 5 horas.")
    cards = Plural("You already keep {count} card, the most allowed. Remove it before adding "
                   "another.", "You already keep {count} cards, the most allowed. Remove one "
                   "before adding another.", 6)
    assert cards.startswith("You already keep 6 cards") and cards.render() == str(cards)
    assert cards.render(spanish).startswith("Ya tiene 6 tarjetas guardadas")
    assert Plural(cards.msgid, cards.plural, 1).render(spanish).startswith(
        "Ya tiene 1 tarjeta guardada")


def test_sentences_render_nested_values_and_errors():
    spanish = catalogues.catalogue("es")
    error = UserError("This {name} was not found.", name=Sentence("proforma invoice"))
    assert str(error) == "This proforma invoice was not found."
    assert error.sentence.render(spanish) == "No se encontró esta factura proforma."
    assert error.sentence.render(ENGLISH) == str(error)
    assert Sentence("Not in any catalogue").render(spanish) == "Not in any catalogue"
    assert Sentence("").render(spanish) == ""  # never the catalogue's header


@pytest.fixture
def translations_at(monkeypatch, tmp_path):
    """i18n reading the catalogues of ``tmp_path`` (a copy of the Spanish ``.po``), from a
    fresh cache."""
    folder = tmp_path / "es" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "messages.po").write_bytes(catalogues.catalogue_paths("es")[0].read_bytes())
    monkeypatch.setattr(catalogues, "TRANSLATIONS", tmp_path)
    catalogues.catalogue.cache_clear()
    yield folder
    catalogues.catalogue.cache_clear()


def pybabel_compile(directory):
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "compile",
                    "-d", str(directory)], check=True, timeout=60)


def test_a_compiled_catalogue_is_what_the_package_ships(translations_at):
    pybabel_compile(translations_at.parents[1])
    (translations_at / "messages.po").unlink()  # as installed: only the .mo
    spanish = catalogues.catalogue("es")
    assert isinstance(spanish, gettext.GNUTranslations)
    assert spanish.gettext("Saved cards") == "Tarjetas guardadas"
    assert spanish.ngettext("The security code has {count} digit.",
                            "The security code has {count} digits.", 3) \
        == "El código de seguridad tiene {count} dígitos."


def test_without_a_mo_the_po_is_compiled_in_memory(translations_at):
    assert not (translations_at / "messages.mo").exists()
    assert catalogues.catalogue("es").gettext("Saved cards") == "Tarjetas guardadas"
    assert not (translations_at / "messages.mo").exists()  # nothing written


def test_a_po_newer_than_its_mo_wins(translations_at):
    pybabel_compile(translations_at.parents[1])
    po = translations_at / "messages.po"
    po.write_text(po.read_text(encoding="utf-8").replace('"Tarjetas guardadas"', '"Tarjetas"'),
                  encoding="utf-8")
    mo = translations_at / "messages.mo"
    old = po.stat().st_mtime - 60
    os.utime(mo, (old, old))
    assert catalogues.catalogue("es").gettext("Saved cards") == "Tarjetas"


def test_without_babel_or_mo_the_pages_are_english(translations_at, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "babel.messages.pofile", None)  # import fails
    assert catalogues.compile_po(translations_at / "messages.po", "es") is None
    assert catalogues.catalogue("es") is None
    assert "are in English" in caplog.text
    assert catalogues.catalogue("en") is None and catalogues.catalogue("fr") is None


def test_each_language_offered_has_a_catalogue_and_no_other():
    on_disk = {p.name for p in catalogues.TRANSLATIONS.iterdir() if p.is_dir()}
    assert on_disk == set(OTHER_LANGUAGES) and catalogues.LANGUAGES == tuple(config.LANGUAGES)
    for language in OTHER_LANGUAGES:
        assert catalogues.catalogue_paths(language)[0].exists()
        assert catalogues.catalogue(language) is not None


def test_gettext_and_ngettext_outside_a_request_are_english():
    assert i18n.gettext("Not found") == "Not found"
    assert i18n.gettext("") == ""
    assert i18n.gettext("Pay {amount}", amount="$5.00") == "Pay $5.00"
    assert i18n.ngettext("{count} unpaid invoice", "{count} unpaid invoices", 1) == "1 unpaid invoice"
    assert i18n.ngettext("{count} unpaid invoice", "{count} unpaid invoices", 3) == "3 unpaid invoices"
    assert i18n.say(TryLater(dt.datetime(2024, 1, 1, 0, 2), dt.datetime(2024, 1, 1))) \
        .endswith("try again in 2 minutes.")
