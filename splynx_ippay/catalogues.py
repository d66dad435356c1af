"""The translation catalogues, without Flask (the customer pages through i18n.py, the e-mails
through services/notices.py): ``translations/<lang>/LC_MESSAGES/messages.mo`` read once per
language and process with the standard library's :mod:`gettext`; a ``.po`` with no ``.mo``,
or newer than it (a source checkout being edited), compiled in memory when Babel is installed
(docs/portal.md "Languages")."""

import functools
import gettext as _gettext
import io
import logging
from pathlib import Path

from . import config
from .messages import ENGLISH

log = logging.getLogger(__name__)

DEFAULT = "en"
#: The languages the settings page offers (config.LANGUAGES); each but English has a catalogue.
LANGUAGES = tuple(config.LANGUAGES)
DOMAIN = "messages"
TRANSLATIONS = Path(__file__).resolve().with_name("translations")


def catalogue_paths(language):
    """``(po, mo)``: where the catalogue of ``language`` is kept and compiled."""
    folder = TRANSLATIONS / language / "LC_MESSAGES"
    return folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"


def compile_po(po, language):
    """The ``.po`` file ``po`` compiled in memory (fuzzy entries left out, as ``pybabel
    compile`` does), or None when Babel is not installed."""
    try:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po
    except ImportError:
        return None
    with open(po, "rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


@functools.lru_cache(maxsize=None)
def catalogue(language):
    """The :class:`gettext.GNUTranslations` of ``language``, or None (English, or no catalogue
    can be had). Read once per process."""
    if language == DEFAULT or language not in LANGUAGES:
        return None
    po, mo = catalogue_paths(language)
    if po.exists() and (not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime):
        compiled = compile_po(po, language)
        if compiled is not None:
            return compiled
    if mo.exists():
        with open(mo, "rb") as source:
            return _gettext.GNUTranslations(source)
    log.warning("no compiled catalogue %s (and Babel is not installed to compile %s): "
                "the customer pages and e-mails are in English", mo, po.name)
    return None


def translations(language):
    """The catalogue of ``language``, or :data:`~splynx_ippay.messages.ENGLISH` (the text as
    written) when it is English or has none."""
    return catalogue(language) or ENGLISH
