"""The language of the customer pages (module setting ``language``, docs/portal.md "Languages").

gettext catalogues: the English text in the code and templates is the msgid; Babel extracts
it (``babel.cfg``) to ``translations/messages.pot``; each language has
``translations/<lang>/LC_MESSAGES/messages.po``, compiled to ``messages.mo`` when the package
is built. At run time the standard library's :mod:`gettext` reads the ``.mo`` (once per
language and process). Where a ``.po`` has no ``.mo``, or a newer one (a source checkout being
edited), it is compiled in memory with ``babel.messages`` when Babel is installed; without
either the language is unavailable and its pages are English (``lang="en"``).

:func:`gettext` (``_()`` in code and templates) and :func:`ngettext` translate into the
language of the request and fill in the named placeholders after the lookup, so the catalogue
holds the sentence with its placeholders (``_("The card {card} has expired.", card=...)``).
:func:`say` renders a :class:`~splynx_ippay.messages.Sentence` or
:class:`~splynx_ippay.messages.UserError` that a service raised.

The language is the module setting ``language`` (read through the cached module settings),
for customer requests only: the staff pages (``/ippay/admin/``), logs and anything outside a
request (the worker, the CLI) stay English. What is stored (an attempt's ``message``) is the
English text; customer pages translate it when they show it.
"""

from flask import current_app, g, has_request_context, request

from .catalogues import DEFAULT, catalogue
from .messages import ENGLISH, Sentence, UserError


def current_language():
    """The language of this request's customer page: ``en`` or a language with a catalogue."""
    if not has_request_context():
        return DEFAULT
    cached = getattr(g, "_ippay_language", None)
    if cached is not None:
        return cached
    language = DEFAULT
    if not request.path.startswith("/ippay/admin"):
        try:
            value = current_app.extensions["splynx_ippay"].module_settings.current().language
        except Exception:  # noqa: BLE001 - a page must render even without settings
            value = DEFAULT
        language = value if catalogue(value) is not None else DEFAULT
    g._ippay_language = language
    return language


def translations():
    """The catalogue of this request's language (:data:`ENGLISH` when it is English)."""
    return catalogue(current_language()) or ENGLISH


def gettext(text, **values):
    """``text`` in the current language (English when it has no translation), with the
    named ``values`` filled in."""
    if text:  # gettext("") would be the catalogue's header
        text = translations().gettext(text)
    return text.format(**values) if values else text


_ = gettext


def ngettext(singular, plural, n, **values):
    """The form of ``singular``/``plural`` for the count ``n`` in the current language (its
    plural rule: Spanish has two forms, other languages more), with ``values`` filled in;
    ``{count}`` is ``n`` unless ``values`` name it."""
    return translations().ngettext(singular, plural, n).format(**{"count": n, **values})


def say(message):
    """A :class:`~splynx_ippay.messages.Sentence`, a :class:`~splynx_ippay.messages.UserError`
    or an English text, in the current language."""
    if isinstance(message, UserError):
        message = message.sentence
    if isinstance(message, Sentence):
        return message.render(translations())
    return gettext(str(message))


def init_app(app):
    """Make ``_()``, ``ngettext()``, ``say()`` and ``lang()`` available to every template."""
    app.jinja_env.globals.update(_=gettext, ngettext=ngettext, say=say, lang=current_language)


def extract_python(fileobj, keywords, comment_tags, options):
    """Babel's Python extractor, also finding the calls named in the ``babel.cfg`` section
    (``keywords = Sentence Plural:1,2 CardError ...``). Used by ``pybabel extract`` only
    (babel.cfg ``[extractors]``), never at run time.

    Babel 2.10 (Debian 12's) takes keywords only on the command line and applies each
    keyword's argument spec from there, after the extractor: so each call found here is
    passed on under the default keyword with the same spec (``_`` for the first argument,
    ``ngettext`` for the first two).
    """
    from babel.messages.extract import extract_python as babel_python
    from babel.messages.frontend import parse_keywords

    same_spec = {None: "_", (1,): "_", (1, 2): "ngettext"}
    extra = parse_keywords(options.get("keywords", "").split())
    unknown = {name: spec for name, spec in extra.items() if spec not in same_spec}
    if unknown:
        raise ValueError(f"babel.cfg: only the first argument or the first two: {unknown}")
    alias = {name: same_spec[spec] for name, spec in extra.items()}
    for lineno, funcname, messages, comments in babel_python(
            fileobj, [*keywords, *extra], comment_tags, options):
        yield lineno, alias.get(funcname, funcname), messages, comments
