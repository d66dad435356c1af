"""The Debian package, installed for real on this machine (root, Debian 12), in order:

build → lintian → local repository → ``apt-get install splynx-ippay`` with the Splynx emulator
running → user, files, modes, conffiles → the web service started from the installed unit's
command line answers through nginx on /ippay and a customer pays an invoice → reinstall with
Splynx stopped (pending, completed later) → purge leaves nothing → install from Splynx's
Add-ons page → upgrade from the previous version keeps config, database and registration and
runs a migration → remove keeps data → purge leaves nothing.

The steps share one machine, so they run in file order and each relies on the one before.
"""

import grp
import json
import os
import pwd
import re
import sqlite3
import stat
from pathlib import Path

import pytest
import requests

from debpkg import (PACKAGE, PREVIOUS_VERSION, Nginx, WebService, apt_get, dependencies,
                       pay_an_invoice, point_at_simulator, preseed, run, skip_reason, snapshot)

pytestmark = [pytest.mark.package,
              pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")]

CONF = Path("/etc/splynx-ippay")
STATE = Path("/var/lib/splynx-ippay")
DATABASE = STATE / "splynx-ippay.db"
MODULE = "splynx_ippay_addon"

#: What the steps hand on to each other.
shared = {}


def installed_version():
    done = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", PACKAGE], check=False)
    fields = done.stdout.split()
    return fields[1] if done.returncode == 0 and fields and fields[0] == "ii" else None


def as_service_user(*args, check=True):
    return run(["runuser", "-u", PACKAGE, "--", PACKAGE, *args], check=check)


def registration_state():
    return json.loads((STATE / "registration.json").read_text())


def module_registered(emulator):
    return any(m["name"] == MODULE for m in emulator.state()["modules"])


def mode_owner(path):
    info = os.stat(path)
    return (stat.S_IMODE(info.st_mode), pwd.getpwuid(info.st_uid).pw_name,
            grp.getgrgid(info.st_gid).gr_name)


def assert_nothing_left(before):
    """Purge left no file behind: the file lists before install and after purge agree
    (the system user stays, as Debian practice wants)."""
    assert installed_version() is None
    assert run(["dpkg-query", "-W", PACKAGE], check=False).returncode != 0 or \
        "not-installed" in run(["dpkg-query", "-W", "-f=${db:Status-Status}", PACKAGE],
                               check=False).stdout
    left = sorted(snapshot() - before)
    assert not left, "left behind after purge:\n" + "\n".join(left)
    assert not [p for p in (CONF, STATE, Path("/var/log/splynx-ippay"), Path("/run/splynx-ippay"))
                if p.exists()]
    overrides = run(["dpkg-statoverride", "--list"]).stdout
    assert PACKAGE not in overrides
    debconf = run(["debconf-show", PACKAGE], check=False).stdout
    assert "splynx_url" not in debconf


@pytest.mark.timeout(600)
def test_lintian_reports_no_errors_and_no_warnings(built):
    done = run(["lintian", "--fail-on", "error,warning", str(built["changes"])], check=False)
    tags = [line for line in done.stdout.splitlines() if re.match(r"^[EW]: ", line)]
    assert done.returncode == 0 and not tags, done.stdout


def test_the_deb_holds_the_add_on_and_nothing_of_the_sandbox(built):
    listing = run(["dpkg-deb", "-c", str(built["deb"])]).stdout
    paths = [line.split()[-1].lstrip(".") for line in listing.splitlines()]
    for wanted in ("/etc/splynx-ippay/config.ini", "/etc/splynx-ippay/gunicorn.conf.py",
                   "/etc/nginx/sites-available/splynx-ippay.addons",
                   "/lib/systemd/system/splynx-ippay.service",
                   "/lib/systemd/system/splynx-ippay-worker.service",
                   "/usr/bin/splynx-ippay", "/usr/share/splynx-ippay/templates/base.html",
                   "/usr/share/splynx-ippay/static/ippay.css",
                   "/usr/lib/python3/dist-packages/splynx_ippay/wsgi.py",
                   "/usr/share/man/man1/splynx-ippay.1.gz"):
        assert wanted in paths, wanted
    assert not [p for p in paths if re.search(r"/(sandbox|tests|bench)(/|$)", p)]
    assert "/etc/splynx-ippay/secrets.ini" not in paths
    fields = run(["dpkg-deb", "-f", str(built["deb"]), "Architecture", "Depends",
                  "Recommends"]).stdout
    assert "Architecture: all" in fields and "Recommends: nginx" in fields
    for dependency in ("python3-flask", "python3-flaskext.wtf", "python3-sqlalchemy",
                       "python3-requests", "python3-alembic", "python3-defusedxml", "gunicorn",
                       "adduser"):
        assert dependency in fields


def test_apt_takes_everything_but_the_add_on_from_debian(built):
    if installed_version() is not None:
        apt_get("purge", PACKAGE)
    simulated = run(["apt-get", "install", "-s", PACKAGE]).stdout
    installs = re.findall(r"^Inst (\S+) .*?\((\S+) ([^)]*)\)", simulated, re.M)
    assert (PACKAGE, built["version"]) in [(name, version) for name, version, _ in installs]
    for name, _version, origin in installs:
        if name != PACKAGE:
            assert "Debian" in origin, (name, origin)


@pytest.mark.timeout(600)
def test_apt_get_install_with_splynx_running(built, emulator):
    # Dependencies first, so that the before/after file lists show only the package's files.
    apt_get("install", "--no-install-recommends", *dependencies(built["deb"]))
    run(["nginx", "-t"], check=False)  # creates nginx's own /var/lib/nginx/* on first use
    shared["before"] = snapshot()
    preseed(emulator.url)
    done = apt_get("install", PACKAGE)
    assert installed_version() == built["version"], done.stdout
    assert "could not be registered" not in done.stdout


def test_user_files_modes_and_conffiles():
    user = pwd.getpwnam(PACKAGE)
    assert user.pw_uid < 1000 and user.pw_dir == str(STATE)
    assert user.pw_shell in ("/usr/sbin/nologin", "/bin/false")
    assert mode_owner(CONF) == (0o750, "root", PACKAGE)
    assert mode_owner(CONF / "secrets.ini") == (0o640, "root", PACKAGE)
    assert mode_owner(STATE) == (0o750, PACKAGE, PACKAGE)
    assert mode_owner(DATABASE)[1] == PACKAGE
    secrets = (CONF / "secrets.ini").read_text()
    assert "api_key = sandbox-key" in secrets and "api_secret = sandbox-secret" in secrets
    assert re.search(r"(?m)^secret_key = [0-9a-f]{64}$", secrets)

    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", PACKAGE]).stdout
    for path in ("/etc/splynx-ippay/config.ini", "/etc/splynx-ippay/gunicorn.conf.py",
                 "/etc/nginx/sites-available/splynx-ippay.addons"):
        assert path in conffiles
    owned = run(["dpkg", "-L", PACKAGE]).stdout.splitlines()
    assert "/etc/splynx-ippay/secrets.ini" not in owned and "secrets.ini" not in conffiles
    assert Path("/usr/share/splynx-ippay/templates/base.html").is_file()
    # Enabled for systemd even though systemd does not run here (deb-systemd-helper).
    assert Path("/etc/systemd/system/multi-user.target.wants/splynx-ippay.service").is_symlink()
    assert run(["nginx", "-t"], check=False).returncode == 0
    revision = sqlite3.connect(DATABASE).execute("select version_num from alembic_version")
    assert revision.fetchone()


def test_postinst_registered_the_add_on_in_splynx(emulator):
    from splynx_ippay.splynx import SplynxClient

    state = emulator.state()
    assert [m for m in state["modules"] if m["name"] == MODULE]
    points = [p for p in state["entry_points"] if p["module"] == MODULE]
    assert {"ippay_credit_card", "ippay_pay_invoice"} <= {p["name"] for p in points}
    splynx = SplynxClient(emulator.url, "sandbox-key", "sandbox-secret")
    method = next(m for m in splynx.list_payment_methods() if m.name == "IPpay")
    settings = splynx.get_module_config(MODULE)
    assert int(settings["payment_method_id"]) == method.id and "refill_min_cents" in settings
    assert registration_state()["status"] == "registered"
    assert "nothing changed" in as_service_user("register").stdout  # idempotent


@pytest.mark.timeout(300)
def test_web_service_from_the_unit_answers_through_nginx_and_a_customer_pays(emulator,
                                                                            simulator):
    point_at_simulator(simulator.url)
    service = WebService().start()
    nginx = Nginx(emulator.url)
    try:
        nginx.start()
        css = requests.get(f"{nginx.url}/ippay/static/ippay.css", timeout=10)
        assert css.status_code == 200, service.output()
        assert stat.S_ISSOCK(os.stat("/run/splynx-ippay/web.sock").st_mode)
        shared["paid_invoice"] = pay_an_invoice(nginx.url, emulator)
    except BaseException:
        print(service.output())
        raise
    finally:
        nginx.stop()
        service.stop()


@pytest.mark.timeout(600)
def test_reinstall_with_splynx_stopped_leaves_registration_pending(emulator):
    emulator.stop()
    try:
        done = apt_get("install", "--reinstall", PACKAGE)
        assert "could not be registered" in done.stdout
        assert registration_state()["status"] == "pending"
    finally:
        emulator.start()  # a fresh Splynx: nothing registered
    assert not module_registered(emulator)
    # The next start of the service completes it (ExecStartPre=-… register --if-needed) …
    service = WebService().start()
    service.stop()
    assert module_registered(emulator)
    assert registration_state()["status"] == "registered"
    # … and `splynx-ippay register` then has nothing left to do.
    assert "nothing changed" in as_service_user("register").stdout


@pytest.mark.timeout(600)
def test_purge_removes_everything_and_the_registration(emulator):
    apt_get("purge", PACKAGE)
    assert not module_registered(emulator)
    assert_nothing_left(shared["before"])


@pytest.mark.timeout(600)
def test_install_from_the_add_ons_page(built, emulator):
    preseed(emulator.url)
    admin = requests.Session()
    admin.post(f"{emulator.url}/admin/login", data={"login": "admin", "password": "admin-pass"},
               timeout=10)
    page = admin.get(f"{emulator.url}/admin/config/integrations/addons", timeout=30).text
    row = re.search(rf"<tr><td>{PACKAGE}</td>.*?</tr>", page, re.S)
    assert row and built["version"] in row.group(0) and "Not installed" in row.group(0), page
    confirm = admin.get(f"{emulator.url}/admin/config/integrations/addons",
                        params={"install": PACKAGE}, timeout=30).text
    assert "OK, confirm" in confirm
    result = admin.post(f"{emulator.url}/admin/config/integrations/addons",
                        data={"package": PACKAGE, "confirm": "1"}, timeout=600).text
    assert f"Setting up {PACKAGE}" in result and "done" in result, result
    assert installed_version() == built["version"]
    modules = admin.get(f"{emulator.url}/admin/config/integrations/modules", timeout=10).text
    assert MODULE in modules
    listed = admin.get(f"{emulator.url}/admin/config/integrations/addons", timeout=30).text
    assert re.search(rf"<strong>{PACKAGE}</strong>.*?Installed", listed, re.S)
    apt_get("purge", PACKAGE)


def _add_sentinel_card():
    """A saved card in the previous version's database, to find again after the upgrade."""
    database = sqlite3.connect(DATABASE)
    columns = database.execute("pragma table_info(cards)").fetchall()
    values = {"customer_id": 1, "token": "UPGRADESENTINEL", "brand": "visa", "last4": "4242",
              "holder_name": "Upgrade Sentinel", "exp_month": 12, "exp_year": 2030,
              "is_default": 0, "created_at": "2026-01-01 00:00:00"}
    for _cid, name, kind, notnull, default, primary in columns:
        if name not in values and notnull and default is None and not primary:
            values[name] = 0 if re.search("INT|BOOL|NUM", kind.upper()) else ""
    names = [c[1] for c in columns if c[1] in values]
    database.execute(f"insert into cards ({', '.join(names)}) values "
                     f"({', '.join('?' for _ in names)})", [values[n] for n in names])
    database.commit()
    database.close()


@pytest.mark.timeout(600)
def test_upgrade_from_the_previous_version_keeps_everything_and_migrates(built, emulator,
                                                                        simulator):
    preseed(emulator.url)
    apt_get("install", f"{PACKAGE}={PREVIOUS_VERSION}")
    assert installed_version() == PREVIOUS_VERSION
    old_revision = sqlite3.connect(DATABASE).execute(
        "select version_num from alembic_version").fetchone()[0]
    _add_sentinel_card()
    point_at_simulator(simulator.url)  # the admin's own change to the conffile
    config_before = (CONF / "config.ini").read_text()
    secrets_before = (CONF / "secrets.ini").read_text()
    assert registration_state()["version"] == PREVIOUS_VERSION
    assert module_registered(emulator)

    done = apt_get("install", PACKAGE)  # literally: the newer version from the repository
    assert installed_version() == built["version"], done.stdout
    assert (CONF / "config.ini").read_text() == config_before
    assert (CONF / "secrets.ini").read_text() == secrets_before
    database = sqlite3.connect(DATABASE)
    new_revision = database.execute("select version_num from alembic_version").fetchone()[0]
    assert new_revision != old_revision
    assert database.execute("select holder_name from cards where token = 'UPGRADESENTINEL'"
                            ).fetchone() == ("Upgrade Sentinel",)
    tables = {r[0] for r in database.execute("select name from sqlite_master where type='table'")}
    assert "charge_runs" in tables or len(tables) > 3
    database.close()
    assert module_registered(emulator)
    assert registration_state()["status"] == "registered"
    assert registration_state()["version"] != PREVIOUS_VERSION


@pytest.mark.timeout(600)
def test_remove_keeps_configuration_data_and_registration(emulator):
    apt_get("remove", PACKAGE)
    assert installed_version() is None
    assert (CONF / "config.ini").exists() and (CONF / "secrets.ini").exists()
    assert DATABASE.exists() and registration_state()["status"] == "registered"
    assert module_registered(emulator)
    assert not Path("/usr/bin/splynx-ippay").exists()


@pytest.mark.timeout(600)
def test_purge_after_remove_leaves_nothing(emulator):
    apt_get("purge", PACKAGE)
    assert not module_registered(emulator)
    assert_nothing_left(shared["before"])
