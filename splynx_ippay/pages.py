"""Pages shared by every blueprint."""

from flask import render_template

from .i18n import _


def error_page(status, title, message):
    """A page that says what happened and what to do, with ``status``."""
    return render_template("error.html", title=title, message=message), status


def splynx_unavailable_page():
    """Splynx could not be asked; nothing was done."""
    return error_page(503, _("Billing system unavailable"),
                      _("The billing system is not answering right now. "
                        "Please try again in a few minutes."))
