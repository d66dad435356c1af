"""The staff pages as an ISP admin reads them: everyone by name (and "#id" when Splynx does
not answer), customers linked to Splynx, staff words instead of the journal's states, the
progress bar that counts charges and not skipped invoices, and the warning of a run no
worker takes."""

import datetime as dt
import re
import time

import pytest
import requests
from sqlalchemy import update

from splynx_ippay.db import session_scope
from splynx_ippay.models import CardTrial, ChargeRun, ChargeWorker, TrialOutcome, utcnow
from splynx_ippay.services.charge_runs import runs as charge_runs
from splynx_ippay.services.charge_runs.worker import Worker
from splynx_ippay.services.directory import Directory

from .conftest import build_staff_world, run_worker_until_done, save_cards, start_run
from .test_charge_run import PERIOD, post

#: The journal's states, which staff never have to read or choose.
INTERNAL = ("post_pending", "posted", "created", "claimed", "queued", "pending", "unknown",
            "expanding", "charge_run")


def options(page, select_id):
    """The (value, words) of a select's options."""
    select = page.split(f'id="{select_id}"', 1)[1].split("</select>", 1)[0]
    return re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select)


def test_filters_offer_staff_words_only(staff_world):
    admin = staff_world.login_admin()
    log = admin.get(f"{staff_world.url}/ippay/admin/transactions").text
    for select in ("outcome", "channel"):
        words = " ".join(w for _, w in options(log, select))
        assert not [w for w in INTERNAL if w in words], (select, words)
    assert ("paid", "paid") in options(log, "outcome")
    assert ("charge_run", "charge run") in options(log, "channel")
    save_cards(staff_world.ctx, [1])
    run_id = int(start_run(admin, staff_world, {**PERIOD, "customer_ids": "1"})
                 .headers["Location"].rsplit("/", 1)[1])
    page = admin.get(f"{staff_world.url}/ippay/admin/runs/{run_id}").text
    words = " ".join(w for _, w in options(page, "status"))
    assert not [w for w in INTERNAL if w in words], words
    assert 'id="p-state">waiting for a worker<' in page
    assert "Started by <span id=\"run-admin\">Sandbox Administrator</span>" in page
    assert "customers <a class=\"customer\" href=\"/admin/customers/view?id=1\"" in page
    # A charge form's partner is chosen by name.
    charge = admin.get(f"{staff_world.url}/ippay/admin/charge").text
    assert ("2", "Second Partner") in options(charge, "partner_id")


def test_progress_counts_charges_and_skipped_apart(staff_world):
    addon = staff_world.ctx
    save_cards(addon, [1, 2])  # carol's two invoices are skipped: no saved card
    admin = staff_world.login_admin()
    run_id = int(start_run(admin, staff_world, PERIOD).headers["Location"].rsplit("/", 1)[1])
    worker = Worker(addon, concurrency=1, run_ids=[run_id], poll=0)
    worker._register()
    while worker.expand_step():
        pass
    read = charge_runs.progress(addon, run_id)
    assert (read["skipped"], read["made"], read["to_make"], read["percent"]) == (2, 0, 7, 0)
    run_worker_until_done(addon)
    done = admin.get(f"{staff_world.url}/ippay/admin/runs/{run_id}/progress").json()
    assert (done["made"], done["to_make"], done["skipped"], done["percent"]) == (7, 7, 2, 100)
    assert done["state_words"] == "done" and done["warning"] is None
    page = admin.get(f"{staff_world.url}/ippay/admin/runs/{run_id}").text
    assert '<b id="p-made">7</b> of <b id="p-to-make">7</b> charges made' in page
    assert "Carol Clark" in page and "No saved card." in page
    # Declines read in staff words, not the customer's "use another card".
    assert "Do not honor: The bank declined without giving a reason." in page
    assert "use another card" not in page.lower()


def test_a_run_no_worker_takes_says_so(database_url):
    world = build_staff_world(database_url, WORKER_ALARM_AFTER="1")
    try:
        save_cards(world.ctx, [1])
        admin = world.login_admin()
        run_id = int(start_run(admin, world, {**PERIOD, "customer_ids": "1"})
                     .headers["Location"].rsplit("/", 1)[1])
        url = f"{world.url}/ippay/admin/runs/{run_id}/progress"
        assert admin.get(url).json()["warning"] is None
        time.sleep(1.3)
        warning = admin.get(url).json()["warning"]
        assert re.match(r"No worker has taken this run for \d+ s: is splynx-ippay-worker "
                        r"running\?", warning), warning
        page = admin.get(f"{world.url}/ippay/admin/runs/{run_id}").text
        assert 'role="alert" id="worker-warning">No worker has taken' in page
        # A worker that beats but is busy elsewhere is named as such, with its host.
        with session_scope(world.ctx.sessions) as session:
            session.add(ChargeWorker(token="busy", host="billing-2", pid=1))
        busy = admin.get(url).json()["warning"]
        assert "although 1 worker is running (billing-2)" in busy
        # A dead one is named as last seen.
        with session_scope(world.ctx.sessions) as session:
            session.execute(update(ChargeWorker).values(
                heartbeat_at=utcnow() - dt.timedelta(seconds=30)))
        dead = admin.get(url).json()["warning"]
        assert "is splynx-ippay-worker running?" in dead and "last worker seen was on billing-2" in dead
        # Once a worker works on it, the warning goes.
        with session_scope(world.ctx.sessions) as session:
            session.execute(update(ChargeWorker).values(heartbeat_at=utcnow()))
            session.execute(update(ChargeRun).values(updated_at=utcnow()))
        assert admin.get(url).json()["warning"] is None
        run_worker_until_done(world.ctx)
        assert admin.get(url).json()["warning"] is None
    finally:
        world.stop()


def test_names_fall_back_to_the_id_when_splynx_does_not_answer(staff_world):
    admin = staff_world.login_admin()
    staff_world.emu_call("faults", {"status": 500, "path_regex": r"customers/customer\?",
                                    "method": "GET", "count": 50})
    with session_scope(staff_world.ctx.sessions) as session:
        session.add(CardTrial(customer_id=2, purpose="save", outcome=TrialOutcome.BLOCKED,
                              reason="Too many new cards today.", card_last4="1111"))
    started = time.monotonic()
    page = admin.get(f"{staff_world.url}/ippay/admin/blocked")
    assert page.ok and time.monotonic() - started < 10
    row = page.text.split('id="blocked"', 1)[1]
    assert '<a class="customer" href="/admin/customers/view?id=2" target="_top">#2</a>' in row
    requests.delete(f"{staff_world.url}/_sandbox/faults", timeout=5)
    # Remembered briefly as not answered; a new directory asks again and gets the name.
    directory = Directory()
    assert str(directory.customer(staff_world.ctx, 2)) == "Bob Brown"
    assert str(directory.customer(staff_world.ctx, 424242)) == "#424242"  # no such customer
    assert str(directory.administrator(staff_world.ctx, 1)) == "Sandbox Administrator"
    assert {p.id: str(p) for p in directory.partners(staff_world.ctx).values()} == {
        1: "Default", 2: "Second Partner"}


def test_a_slow_splynx_holds_a_page_at_most_the_directorys_wait(staff_world):
    directory = Directory(wait=0.3)
    staff_world.emu_call("faults", {"delay_s": 2.0, "path_regex": r"customers/customer\?",
                                    "method": "GET", "count": 1})
    started = time.monotonic()
    assert str(directory.customer(staff_world.ctx, 1)) == "#1"
    assert time.monotonic() - started < 1.5
    time.sleep(2.2)  # the answer came after all, and is kept
    assert str(directory.customer(staff_world.ctx, 1, wait=0)) == "Alice Anderson"


@pytest.mark.parametrize("path", ["charge", "runs", "transactions", "blocked", "settings"])
def test_every_staff_page_is_a_wide_admin_page_with_its_tab(staff_world, path):
    admin = staff_world.login_admin()
    page = admin.get(f"{staff_world.url}/ippay/admin/{path}").text
    assert '<main class="ippay staff">' in page
    assert re.search(rf'href="/ippay/admin/{path}" aria-current="page"', page)
    assert "use another card" not in page.lower()
    # Every wide table scrolls inside its own box.
    assert page.count("<table") == page.count('<div class="table-wrap"')


def test_a_refund_is_in_the_transactions_history_with_who_asked(staff_world):
    save_cards(staff_world.ctx, [1])
    admin = staff_world.login_admin()
    start_run(admin, staff_world, {**PERIOD, "customer_ids": "1"})
    run_worker_until_done(staff_world.ctx)
    log = admin.get(f"{staff_world.url}/ippay/admin/transactions", params={"outcome": "paid"})
    attempt_id = re.search(r'href="/ippay/admin/transactions/(\d+)"', log.text).group(1)
    assert post(admin, staff_world, f"transactions/{attempt_id}/refund",
                {"amount": "5.00", "reason": "goodwill", "confirm": "yes"}).status_code == 302
    page = admin.get(f"{staff_world.url}/ippay/admin/transactions/{attempt_id}").text
    history = page.split('id="history"', 1)[1].split("</ol>", 1)[0]
    lines = re.findall(r"<li>(.*?)</li>", history, re.S)
    whats = [re.sub(r"<[^>]+>", "", line) for line in lines]
    assert any("Sent to the gateway" in w for w in whats)
    assert any("Recorded in Splynx as a payment" in w for w in whats)
    asked = next(w for w in whats if "Refund of 5.00: asked for" in w)
    assert "by Sandbox Administrator" in asked and "admin 1" not in asked
    assert whats.index(asked) > next(i for i, w in enumerate(whats) if "Recorded in Splynx" in w)
    assert any("Refund of 5.00: recorded in Splynx" in w for w in whats)
    assert "Refunded 5.00 of" in page and "Alice Anderson" in page
    refunded = admin.get(f"{staff_world.url}/ippay/admin/transactions",
                         params={"outcome": "refunded"}).text
    assert refunded.count('data-status="') == 1
