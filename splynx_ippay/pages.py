"""Pages shared by every blueprint."""

from flask import render_template

from .i18n import _, current_language


def error_page(status, title, message):
    """A page that says what happened and what to do, with ``status``."""
    return render_template("error.html", title=title, message=message), status


def splynx_unavailable_page():
    """Splynx could not be asked; nothing was done."""
    return error_page(503, _("Billing system unavailable"),
                      _("The billing system is not answering right now. "
                        "Please try again in a few minutes."))


class BlankParts:
    """``blank_once(part, form, names, render)`` in templates: ``render(form)``, the HTML of
    the fields ``names`` of ``form``. While none of them holds a value or an error (the form
    as first shown) that HTML depends only on the form's class, its prefix and the language,
    so it is made once per application and kept: the card and bank fields were a third of
    the pay modal's time (docs/performance.md)."""

    def __init__(self):
        self._kept = {}

    def __call__(self, part, form, names, render):
        if any(form[name].data or form[name].errors for name in names):
            return render(form)
        key = (part, type(form), form._prefix, current_language())
        html = self._kept.get(key)
        if html is None:
            html = self._kept[key] = render(form)
        return html
