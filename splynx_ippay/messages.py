"""Sentences for people, written in English in the code and translated where they are shown
(standard library only, so that services and clients can use them without Flask).

A service that must tell a customer or admin something raises an error carrying a
:class:`Sentence` (or a :class:`Plural`, when a count decides the wording); the page renders it
in its language (i18n.py). :func:`N_` marks a literal for the catalogue without translating it.
Babel finds all three (babel.cfg).
"""

import gettext

#: The sentences as written (no catalogue).
ENGLISH = gettext.NullTranslations()


def N_(text):
    """Mark ``text`` for translation without translating it here (gettext_noop)."""
    return text


class Sentence(str):
    """An English sentence with named values (``{card}``): as a ``str`` it is the English
    text; :meth:`render` gives it in another language (a value that is itself a Sentence is
    translated too)."""

    def __new__(cls, msgid, **values):
        english = msgid.format(**values) if values else msgid
        self = super().__new__(cls, english)
        self.msgid = msgid
        self.values = values
        return self

    def _lookup(self, translations):
        return translations.gettext(self.msgid) if self.msgid else self.msgid

    def render(self, translations=ENGLISH):
        """The sentence in the language of ``translations`` (a :mod:`gettext` catalogue)."""
        values = {k: v.render(translations) if isinstance(v, Sentence) else v
                  for k, v in self.values.items()}
        text = self._lookup(translations)
        return text.format(**values) if values else text

    def __repr__(self):
        return f"{type(self).__name__}({self.msgid!r})"


class Plural(Sentence):
    """A sentence whose wording depends on the count ``n`` (ngettext): ``singular`` and
    ``plural`` are the English forms; ``{count}`` is ``n`` unless ``values`` name it."""

    def __new__(cls, singular, plural, n, **values):
        values = {"count": n, **values}
        self = str.__new__(cls, (singular if n == 1 else plural).format(**values))
        self.msgid = singular
        self.plural = plural
        self.n = n
        self.values = values
        return self

    def _lookup(self, translations):
        return translations.ngettext(self.msgid, self.plural, self.n)


class UserError(Exception):
    """Something a person must be told, as a :class:`Sentence` (``str()`` is English)."""

    def __init__(self, msgid, **values):
        self.sentence = msgid if isinstance(msgid, Sentence) else Sentence(msgid, **values)
        super().__init__(str(self.sentence))
