"""The automatic payments page (schedules, the decline policy, messages) and the collections
overview: what is saved, what is refused and said, who may change it, and that the plots and
the reconciliation's findings are on the page."""

import json
import re

import pytest

from splynx_ippay.models import PaymentAttempt
from splynx_ippay.services import autopay, reconciliation
from tests.staff.conftest import run_worker_until_done, save_cards, start_run

PAGE = "/ippay/admin/autopay"
POLICY = {"autopay_catch_up_days": "3", "retry_at": "06:00", "retry_days": "1,3,7",
          "retry_max_tries": "4", "autopay_hard_declines": "2", "reminder_days": "3",
          "staff_emails": "billing@isp.example", "public_url": ""}


def schedule_row(n, **fields):
    row = {"id": "", "name": "", "trigger": "due_day", "days": "", "at": "06:00", "mode": "due",
           "min_total": "", "max_total": "", "partner_id": "", "statuses": ["active"],
           "enabled": "y"}
    row.update(fields)
    return {f"schedules-{n}-{key}": value for key, value in row.items()}


def stored(world):
    return world.ctx.splynx.get_module_config("splynx_ippay_addon")


def test_a_schedule_is_added_shown_and_removed(staff_world):
    admin = staff_world.login_admin()
    page = admin.get(staff_world.url + PAGE)
    assert page.ok and 'name="schedules-0-name"' in page.text  # the empty row for a new one
    data = {**POLICY, **schedule_row(0, name="Three days after the due date",
                                     trigger="after_due", days="3", at="07:30",
                                     max_total="500.00", statuses=["active", "blocked"])}
    saved = admin.post(staff_world.url + PAGE, data=data, allow_redirects=False)
    assert saved.status_code == 302, saved.text[:3000]
    [schedule] = json.loads(stored(staff_world)["autopay_schedules"])
    assert schedule["id"] == "three-days-after-the-due-date" and schedule["days"] == 3
    assert schedule["at"] == "07:30" and schedule["max_total"] == "500.00"
    assert schedule["statuses"] == ["active", "blocked"]
    page = admin.get(staff_world.url + PAGE)
    assert "Three days after the due date: 3 days after the due date at 07:30" in page.text
    assert 'data-schedule="three-days-after-the-due-date"' in page.text
    # Removing it (and leaving the new row empty) leaves none.
    data = {**POLICY, **schedule_row(0, id="three-days-after-the-due-date", name="x",
                                     trigger="after_due", days="3", remove="y"),
            **schedule_row(1)}
    assert admin.post(staff_world.url + PAGE, data=data, allow_redirects=False).status_code == 302
    assert json.loads(stored(staff_world)["autopay_schedules"]) == []
    assert staff_world.ctx.module_settings.current().autopay_schedules == ()


@pytest.mark.parametrize("changes, words", [
    (schedule_row(0, name="Late", trigger="after_due", days="0"), "from 1 to 60"),
    (schedule_row(0, name="Late", trigger="after_due", days="x"), "whole number"),
    (schedule_row(0, name="Early", at="25:00"), "HH:MM"),
    (schedule_row(0, name="Big", min_total="900", max_total="100"), "above the maximum"),
    (schedule_row(0, name="Retry", id="retry"), "choose another"),
    (schedule_row(0, name="Nobody", statuses=[]), "at least one customer status"),
    ({"retry_days": "7,3"}, "increasing numbers of days"),
    ({"retry_days": "one"}, "increasing numbers of days"),
    ({"retry_at": "6 am"}, "time of day"),
    ({"reminder_days": "31"}, "from 0 to 30"),
    ({"staff_emails": "billing at isp"}, "e-mail addresses"),
    ({"public_url": "billing.isp.example"}, "such as https://"),
])
def test_what_cannot_be_used_is_refused_in_words_and_kept(staff_world, changes, words):
    admin = staff_world.login_admin()
    before = stored(staff_world)
    data = {**POLICY, **schedule_row(0), **changes}
    page = admin.post(staff_world.url + PAGE, data=data)
    assert page.status_code == 400 and words in page.text, page.text[-3000:]
    assert "Nothing was saved" in page.text and stored(staff_world) == before
    for key, value in changes.items():  # what was typed is still there
        if isinstance(value, str) and value and key.endswith(("name", "retry_days", "at")):
            assert f'value="{value}"' in page.text


def test_only_allowed_roles_change_automatic_payments(staff_world):
    staff_world.set_module_settings({"staff_roles": "super-administrator"})
    manager = staff_world.login("manager", place="admin")
    assert manager.get(staff_world.url + PAGE).status_code == 403
    assert manager.post(staff_world.url + PAGE, data=POLICY).status_code == 403
    assert manager.get(staff_world.url + "/ippay/admin/collections").status_code == 200


def test_the_overview_plots_the_days_and_lists_what_to_check(staff_world):
    world, ctx = staff_world, staff_world.ctx
    admin = world.login_admin()
    save_cards(ctx, [1, 2, 3])
    assert start_run(admin, world, {"date_from": "2024-01-01", "date_to": "2024-12-31"}
                     ).status_code == 302
    run_worker_until_done(ctx)
    empty = admin.get(world.url + "/ippay/admin/collections")
    assert empty.ok and 'id="no-findings"' in empty.text
    content = empty.text.split("<main", 1)[1].split("</main>", 1)[0]
    assert content.count("<svg") == 5 and "<script" not in content and "style=" not in content
    assert re.search(r"Collected per day, by channel.*staff run", empty.text, re.S)
    # A payment deleted by hand in Splynx is found, listed, and linked to its transaction.
    with ctx.sessions() as session:
        attempt = session.query(PaymentAttempt).filter_by(status="posted").first()
    ctx.splynx.delete_payment(attempt.splynx_payment_id)
    assert [f.kind for f in reconciliation.run(ctx).findings] == ["missing_payment"]
    page = admin.get(world.url + "/ippay/admin/collections")
    assert 'data-kind="missing_payment"' in page.text and attempt.transaction_id in page.text
    assert f"/ippay/admin/transactions/{attempt.id}" in page.text


def test_the_schedules_page_says_when_each_runs(staff_world):
    staff_world.set_module_settings({"autopay_schedules": autopay.schedules_json(
        [autopay.parse_schedule({"id": "due", "name": "Due", "trigger": "due_day",
                                 "at": "06:00"})])})
    page = staff_world.login_admin().get(staff_world.url + PAGE)
    assert 'data-schedule="due"' in page.text and "not yet" in page.text
