"""The language of the customer pages (module setting ``language``, docs/portal.md).

A small catalog, no dependency: per language a dict keyed by the English text (the text in
the code and templates is the English one). :func:`gettext` — ``_()`` in code and templates
— looks the text up in the catalog of the current language and falls back to the English
text when the language is English or the text has no entry. Named placeholders
(``_("The card {card} has expired.", card=...)``) are filled in after the lookup, so the
catalog holds the sentence with its placeholders.

The language is the module setting ``language`` (read through the cached module settings),
for customer requests only: the staff pages (``/ippay/admin/``), logs and anything outside a
request (the worker, the CLI) stay English. What is stored (an attempt's ``message``) is the
English text; customer pages translate it when they show it.
"""

from flask import current_app, g, has_request_context, request

from .i18n_es import ES

DEFAULT = "en"
#: Catalogs by language code; English needs none.
CATALOGS = {"es": ES}
LANGUAGES = (DEFAULT, *CATALOGS)


def current_language():
    """The language of this request's customer page: ``en`` or a key of :data:`CATALOGS`."""
    if not has_request_context():
        return DEFAULT
    cached = getattr(g, "_ippay_language", None)
    if cached is not None:
        return cached
    language = DEFAULT
    if not request.path.startswith("/ippay/admin"):
        try:
            addon = current_app.extensions["splynx_ippay"]
            value = str(addon.module_settings.get().get("language") or DEFAULT).strip().lower()
        except Exception:  # noqa: BLE001 - a page must render even without settings
            value = DEFAULT
        language = value if value in CATALOGS else DEFAULT
    g._ippay_language = language
    return language


def gettext(text, **values):
    """``text`` in the current language (English when it has no translation), with the
    named ``values`` filled in."""
    catalog = CATALOGS.get(current_language())
    if catalog is not None and text:
        text = catalog.get(text, text)
    return text.format(**values) if values else text


_ = gettext


def init_app(app):
    """Make ``_()`` and ``lang()`` available to every template."""
    app.jinja_env.globals.update(_=gettext, lang=current_language)
