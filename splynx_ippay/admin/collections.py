"""Staff pages of collections: automatic payments (the schedules, the decline policy and the
messages; /ippay/admin/autopay) and the collections overview in plots with what the daily
reconciliation lists (/ippay/admin/collections)."""

import datetime as dt

from flask import flash, redirect, render_template, request, url_for

from .. import charts
from ..identity import admin_required
from ..money import format_cents
from ..services import audit, autopay, overview, reconciliation
from ..splynx import SplynxError
from . import bp
from .forms import AutopayForm, autopay_data
from .views import _ctx, _directory


def _partner_choices(form, partners):
    choices = [("", "Any partner")] + [(pid, str(name)) for pid, name in (partners or {}).items()]
    for entry in form.schedules:
        chosen = entry.form.partner_id.data
        if chosen and chosen not in (partners or {}):
            choices = choices + [(chosen, f"#{chosen}")]
        entry.form.partner_id.choices = choices


@bp.route("/autopay", methods=["GET", "POST"])
@admin_required(allowed_role=True)
def autopay_settings(admin_id):
    """Automatic payments: the schedules that start charge runs by themselves, how declines
    are retried, and who is told what."""
    ctx = _ctx()
    config = ctx.module_settings.current()
    form = AutopayForm(data=None if request.method == "POST" else autopay_data(config))
    _partner_choices(form, _directory().partners(ctx))
    error = None
    if request.method == "POST" and form.validate_on_submit():
        values = form.values()
        try:
            ctx.module_settings.save(values)
        except SplynxError as exc:
            error = f"Splynx did not store the settings: {exc}. Nothing was saved."
        else:
            audit.record(ctx, admin_id, "autopay_saved", "module config", **values)
            flash("Automatic payments saved. The worker uses them from its next pass "
                  "(within a minute).", "success")
            return redirect(url_for("admin.autopay_settings"))
    now = ctx.now()
    plans = [(s, autopay.last_day(ctx, s.id), _next_run(s, now)) for s in config.autopay_schedules]
    failed = request.method == "POST" and (form.errors or error)
    return render_template("admin/autopay.html", form=form, error=error, plans=plans,
                           problems=[p for p in config.problems if "autopay" in p or "retry" in p],
                           ), 400 if failed else 200


def _next_run(schedule, now):
    """When ``schedule`` next runs: today at its time, or tomorrow."""
    today = dt.datetime.combine(now.date(), schedule.at)
    return today if today > now else today + dt.timedelta(days=1)


@bp.route("/collections")
@admin_required
def collections(admin_id):
    """The collections overview: the last 90 days in plots, and what the daily
    reconciliation found for staff to check."""
    ctx = _ctx()
    figures = overview.build(ctx)
    sign = ctx.module_settings.current().currency_sign

    def money(value):
        return format_cents(round(value * 100), sign)

    def axis(value):  # round figures on the value axis: $0, $50, $1.5k
        if value >= 1000:
            return f"{sign}{value / 1000:.1f}k".replace(".0k", "k")
        return f"{sign}{value:.0f}"

    days = [d.strftime("%b %d") for d in figures.days]
    plots = [
        charts.bars("Collected per day, by channel", days,
                    [charts.Series(name, [c / 100 for c in cents])
                     for name, cents in figures.collected.items() if any(cents)]
                    or [charts.Series("collected", [0] * len(days))], fmt=money, axis_fmt=axis),
        charts.line("Success rate of the latest charge runs (charged of tried)",
                    [label for _, label, _, _ in figures.runs],
                    charts.Series("success", [100 * ok / tried if tried else 0
                                              for _, _, ok, tried in figures.runs]),
                    fmt=lambda v: f"{v:.0f}%", top=100),
        charts.hbars("Declines by reason", [reason for reason, *_ in figures.declines] or ["none"],
                     [charts.Series(category, [n if c == category else 0
                                               for _, c, n, _ in figures.declines] or [0])
                      for category in ("hard", "soft", "error")],
                     fmt=lambda v: f"{v:.0f}"),
        charts.bars("Recovered by retries, per week",
                    [w.strftime("%b %d") for w in figures.recovered_weeks],
                    [charts.Series("recovered", [c / 100 for c in figures.recovered])], fmt=money,
                    axis_fmt=axis),
        charts.bars("Saved cards expiring, per month",
                    ["expired"] + [m.strftime("%b %y") for m, _ in figures.expiring],
                    [charts.Series("cards", [figures.expired] + [n for _, n in figures.expiring])],
                    fmt=lambda v: f"{v:.0f}"),
    ]
    findings = reconciliation.open_findings(ctx)
    return render_template("admin/collections.html", figures=figures, plots=plots,
                           findings=findings, kinds=reconciliation.KINDS,
                           collected=format_cents(figures.totals["collected_cents"], sign),
                           recovered=format_cents(figures.totals["recovered_cents"], sign))
