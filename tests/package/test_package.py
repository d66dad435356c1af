"""The Debian package, installed, upgraded and purged in a Debian 12 container booted with
its own systemd (container.py), in order:

build → lintian → the .deb's contents → ``apt-get install splynx-ippay`` with Splynx up →
both units active, gunicorn's READY=1, the socket only nginx can use, registration by the
oneshot unit → the sandbox of both units → restart, and a customer pays through nginx →
SIGKILL and systemd's restart → nginx's rate limit → dpkg-reconfigure → remove (units
stopped, /ippay/ gone, data kept) → purge (once; nothing left) → installed while Splynx is
down: serving at once, registration pending, completed by the timer once Splynx is up → a
Splynx that accepts and never answers delays nothing → a purge that cannot reach Splynx
warns → install from Splynx's Add-ons page → upgrade from the previous release (paying works
before and after; both units stopped while the database migrates) → remove → purge leaves
nothing.

The steps share one container, so they run in file order and each relies on the one before.
"""

import json
import re
import time

import pytest

from container import EMULATOR_PORT, PATH, SIMULATOR_PORT, skip_reason
from debpkg import (MODULE, PACKAGE, PREVIOUS_COMMIT, PREVIOUS_VERSION, deb_listing,
                    preseed_answers, run)

pytestmark = [pytest.mark.package,
              pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")]

FRONT = "http://127.0.0.1"  # the container's nginx: Splynx's server block
SPLYNX_URL = FRONT           # the add-on reaches the Splynx API through it, as on a host
SIMULATOR = f"http://127.0.0.1:{SIMULATOR_PORT}"
STATE = "/var/lib/splynx-ippay"
DATABASE = f"{STATE}/splynx-ippay.db"
UNITS = ("splynx-ippay.service", "splynx-ippay-worker.service")
TIMER = "splynx-ippay-register.timer"
REGISTER = "splynx-ippay-register.service"
#: The timer retries every 5 minutes; the tests make it 3 seconds (an admin's drop-in). An
#: empty assignment resets all of a timer's triggers: OnActiveSec= is given again.
FAST_RETRY = "/etc/systemd/system/splynx-ippay-register.timer.d/tests.conf"
FAST_RETRY_TEXT = "[Timer]\nOnActiveSec=\nOnActiveSec=2s\nOnUnitInactiveSec=3s\n"

#: What the steps hand on to each other.
shared = {}


def installed_version(box):
    done = box.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", PACKAGE],
                   check=False)
    fields = done.stdout.split()
    return fields[1] if done.returncode == 0 and fields and fields[0] == "ii" else None


def preseed(box, url=SPLYNX_URL, key="sandbox-key", secret="sandbox-secret"):
    box.run(["debconf-set-selections"], input=preseed_answers(url, key, secret))


def registration(box):
    path = box.path(f"{STATE}/registration.json")
    return json.loads(path.read_text()) if path.exists() else {}


def wait_registered(box, version=None, timeout=60):
    def done():
        state = registration(box)
        return state.get("status") == "registered" and (version is None
                                                         or state.get("version") == version)
    box.wait_until(done, timeout=timeout, what=f"registration (now {registration(box)})")
    # Registered: the oneshot succeeded and stopped its timer.
    box.wait_until(lambda: box.is_active(TIMER) == "inactive", timeout=10,
                   what="the registration timer stops once registered")


def stat(box, path):
    """mode (octal string), owner, group of a path inside the container."""
    return box.run(["stat", "-c", "%a %U %G", path]).stdout.split()


def main_pid(box, unit):
    return int(box.unit_property(unit, "MainPID"))


def front_answers(box, path="/ippay/static/ippay.css"):
    return box.python("get", FRONT + path)["status"]


def wait_serving(box, timeout=60):
    box.wait_until(lambda: front_answers(box) == 200, timeout=timeout,
                   what="the add-on answers through nginx")


def timestamp(box, unit, name):
    """A unit's timestamp property in microseconds since the epoch (UTC)."""
    from datetime import datetime, timezone

    value = box.unit_property(unit, name)
    return datetime.strptime(value, "%a %Y-%m-%d %H:%M:%S.%f UTC").replace(
        tzinfo=timezone.utc).timestamp()


def assert_nothing_left(box, before):
    """Purge left no file behind: the file lists before install and after purge agree
    (the system user stays, as Debian practice wants)."""
    assert installed_version(box) is None
    left = sorted(box.snapshot() - before)
    assert not left, "left behind after purge:\n" + "\n".join(left)
    for path in ("/etc/splynx-ippay", STATE, "/var/log/splynx-ippay", "/run/splynx-ippay"):
        assert box.run(["test", "-e", path], check=False).returncode != 0, path
    assert PACKAGE not in box.run(["dpkg-statoverride", "--list"], check=False).stdout  # 1: none
    assert "splynx_url" not in box.run(["debconf-show", PACKAGE], check=False).stdout


# --- the build -------------------------------------------------------------------------------

@pytest.mark.timeout(600)
def test_lintian_reports_no_errors_and_no_warnings(built):
    done = run(["lintian", "--fail-on", "error,warning", str(built["changes"])], check=False)
    tags = [line for line in done.stdout.splitlines() if re.match(r"^[EW]: ", line)]
    assert done.returncode == 0 and not tags, done.stdout


def test_the_deb_holds_the_add_on_and_nothing_of_the_sandbox(built):
    paths, scripts = deb_listing(built["deb"])
    for wanted in ("/etc/splynx-ippay/config.ini", "/etc/splynx-ippay/gunicorn.conf.py",
                   "/etc/splynx-ippay/nginx-location.conf",
                   "/etc/nginx/sites-available/splynx-ippay.addons",
                   "/etc/nginx/conf.d/splynx-ippay.conf",
                   "/usr/share/splynx-ippay/nginx/location.conf",
                   "/lib/systemd/system/splynx-ippay.service",
                   "/lib/systemd/system/splynx-ippay-worker.service",
                   "/lib/systemd/system/splynx-ippay-register.service",
                   "/lib/systemd/system/splynx-ippay-register.timer",
                   "/usr/bin/splynx-ippay", "/usr/share/splynx-ippay/templates/base.html",
                   "/usr/share/splynx-ippay/static/ippay.css",
                   "/usr/lib/python3/dist-packages/splynx_ippay/wsgi.py",
                   "/usr/share/man/man1/splynx-ippay.1.gz"):
        assert wanted in paths, wanted
    assert not [p for p in paths if re.search(r"/(sandbox|tests|bench)(/|$)", p)]
    assert "/etc/splynx-ippay/secrets.ini" not in paths
    # The registration oneshot is never started by the maintainer scripts (they would wait
    # for it): its timer is.
    assert "start 'splynx-ippay-register.service'" not in scripts["postinst"]
    assert "splynx-ippay-register.timer" in scripts["postinst"]
    fields = run(["dpkg-deb", "-f", str(built["deb"]), "Architecture", "Depends",
                  "Recommends"]).stdout
    assert "Architecture: all" in fields and "Recommends: nginx" in fields
    for dependency in ("python3-flask", "python3-flaskext.wtf", "python3-sqlalchemy",
                       "python3-requests", "python3-alembic", "python3-defusedxml", "gunicorn",
                       "adduser"):
        assert dependency in fields


# --- installation, in the container ----------------------------------------------------------

@pytest.mark.timeout(1800)  # the first to boot the container: the root file system may be built
def test_apt_takes_everything_but_the_add_on_from_debian(box, built):
    # As on a machine where nothing is installed yet: an empty dpkg status.
    box.run(": > /tmp/empty-status")
    simulated = box.run(["apt-get", "install", "-s", "-o", "Dir::State::status=/tmp/empty-status",
                         PACKAGE]).stdout
    installs = re.findall(r"^Inst (\S+) .*?\((\S+) ([^)]*)\)", simulated, re.M)
    assert (PACKAGE, built["version"]) in [(name, version) for name, version, _ in installs]
    for name, _version, origin in installs:
        if name != PACKAGE:
            assert "Debian" in origin, (name, origin)
    assert len(installs) > 20  # python3, flask, gunicorn … all from Debian


@pytest.mark.timeout(600)
def test_apt_get_install_with_splynx_running(box, built):
    box.run(["nginx", "-t"])
    shared["before"] = box.snapshot()
    preseed(box)
    started = time.monotonic()
    done = box.apt_get("install", PACKAGE)
    shared["install_seconds"] = time.monotonic() - started
    assert installed_version(box) == built["version"], done.stdout
    assert "registering with Splynx in the background" in done.stdout, done.stdout
    assert "could not be registered" not in done.stdout
    assert "static unit" not in done.stdout, done.stdout
    wait_registered(box, version=built["version"])
    assert box.unit_property(REGISTER, "Result") == "success"


def test_both_units_are_active_and_gunicorn_told_systemd_it_is_ready(box):
    for unit in UNITS:
        assert box.is_active(unit) == "active", box.systemctl("status", unit, check=False).stdout
        assert box.systemctl("is-enabled", unit).stdout.strip() == "enabled"
    assert box.unit_property("splynx-ippay.service", "Type") == "notify"
    # gunicorn's sd_notify: READY=1 together with this status text.
    assert box.unit_property("splynx-ippay.service", "StatusText") == "Gunicorn arbiter booted"
    assert box.systemctl("is-enabled", TIMER).stdout.strip() == "enabled"
    wait_serving(box)


def test_only_nginx_can_use_the_socket_and_files_have_their_modes(box):
    assert stat(box, "/run/splynx-ippay") == ["750", PACKAGE, "www-data"]
    assert stat(box, "/run/splynx-ippay/web.sock") == ["660", PACKAGE, "www-data"]
    assert box.run(["test", "-S", "/run/splynx-ippay/web.sock"]).returncode == 0
    user = box.run(["getent", "passwd", PACKAGE]).stdout.strip().split(":")
    assert int(user[2]) < 1000 and user[5] == STATE and user[6] in ("/usr/sbin/nologin",
                                                                   "/bin/false")
    assert stat(box, "/etc/splynx-ippay") == ["750", "root", PACKAGE]
    assert stat(box, "/etc/splynx-ippay/secrets.ini") == ["640", "root", PACKAGE]
    assert stat(box, STATE) == ["750", PACKAGE, PACKAGE]
    assert stat(box, DATABASE)[1] == PACKAGE
    # Written by the register unit (root, group splynx-ippay): the add-on's services read it.
    assert stat(box, f"{STATE}/registration.json") == ["640", "root", PACKAGE]
    secrets = box.path("/etc/splynx-ippay/secrets.ini").read_text()
    assert "api_key = sandbox-key" in secrets and "api_secret = sandbox-secret" in secrets
    assert re.search(r"(?m)^secret_key = [0-9a-f]{64}$", secrets)
    conffiles = box.run(["dpkg-query", "-W", "-f=${Conffiles}", PACKAGE]).stdout
    for path in ("/etc/splynx-ippay/config.ini", "/etc/splynx-ippay/gunicorn.conf.py",
                 "/etc/splynx-ippay/nginx-location.conf",
                 "/etc/nginx/sites-available/splynx-ippay.addons",
                 "/etc/nginx/conf.d/splynx-ippay.conf"):
        assert path in conffiles
    owned = box.run(["dpkg", "-L", PACKAGE]).stdout.splitlines()
    assert "/etc/splynx-ippay/secrets.ini" not in owned
    assert box.python("revision", DATABASE)["revision"]


def test_the_register_unit_registered_the_add_on_in_splynx(box):
    state = box.python("state")
    assert [m for m in state["modules"] if m["name"] == MODULE]
    points = [p for p in state["entry_points"] if p["module"] == MODULE]
    assert {"ippay_credit_card", "ippay_pay_invoice"} <= {p["name"] for p in points}
    # The module's settings, with the payment method registration created as a default.
    settings = next(value for key, value in state["config"].items() if key.endswith(MODULE))
    assert settings.get("payment_method_id"), settings
    assert box.unit_property(REGISTER, "ExecMainStatus") == "0"
    # Nothing is left to do: the oneshot is quick and changes nothing.
    again = box.run([PACKAGE, "register", "--if-needed"])
    assert "nothing" in again.stdout


def test_both_units_are_sandboxed_to_an_exposure_of_2_or_less(box):
    report = box.run(["systemd-analyze", "security", "--no-pager", *UNITS, REGISTER]).stdout
    exposures = dict(re.findall(r"Overall exposure level for (\S+): (\d+\.\d+)", report))
    assert set(exposures) == {*UNITS, REGISTER}, report
    print(f"systemd-analyze security: {exposures}")
    for unit in UNITS:  # the register oneshot runs as root, sandboxed as far as that allows
        assert float(exposures[unit]) <= 2.0, (unit, report)


#: Run inside each unit's sandbox (test below): what the add-on's processes must still do.
SANDBOX_PROBE = """
import socket, sys, threading
for path in ("/run/mysqld/mysqld.sock", "/run/postgresql/.s.PGSQL.5432"):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        assert sock.recv(5) == b"hello", path
with socket.create_connection(("127.0.0.1", %d), timeout=5):
    pass
with socket.socket(socket.AF_INET6) as sock:
    pass
done = []
worker = threading.Thread(target=lambda: done.append(1))
worker.start(); worker.join()
assert done
open("/var/lib/splynx-ippay/.sandbox-probe", "w").write("ok")
print("sandbox ok")
""" % SIMULATOR_PORT

#: Servers standing in for MariaDB's and PostgreSQL's local sockets.
SOCKET_SERVERS = """
import os, socket, threading
def serve(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.chmod(os.path.dirname(path), 0o755)
    server = socket.socket(socket.AF_UNIX)
    server.bind(path); os.chmod(path, 0o777); server.listen()
    while True:
        connection, _ = server.accept(); connection.sendall(b"hello"); connection.close()
for path in ("/run/mysqld/mysqld.sock", "/run/postgresql/.s.PGSQL.5432"):
    threading.Thread(target=serve, args=(path,)).start()
"""


@pytest.mark.parametrize("unit", UNITS)
def test_the_sandbox_still_lets_the_service_reach_databases_and_the_network(box, unit):
    """The unit's own [Service] settings (User, groups, sandbox), applied to a probe that
    connects to local database sockets (as MariaDB and PostgreSQL have them), to TCP on
    loopback, starts a thread and writes its state directory."""
    box.start_service("db-sockets", ["/usr/bin/python3", "-c", SOCKET_SERVERS])
    box.wait_until(lambda: box.run(["test", "-S", "/run/postgresql/.s.PGSQL.5432"],
                                   check=False).returncode == 0, what="socket servers")
    skipped = ("Type", "ExecStart", "ExecReload", "KillMode", "Restart", "RestartSec",
               "TimeoutStartSec", "TimeoutStopSec", "RuntimeDirectory", "RuntimeDirectoryMode")
    unit_file = box.path(f"/lib/systemd/system/{unit}").read_text()
    service = unit_file.split("[Service]", 1)[1].split("\n[", 1)[0]
    properties = [line for line in service.splitlines()
                  if "=" in line and not line.startswith("#")
                  and line.split("=", 1)[0] not in skipped]
    probe = f"sandbox-probe-{unit.split('.')[0]}"
    box.run(["systemd-run", f"--unit={probe}", "--quiet", "--remain-after-exit",
             *[f"--property={p}" for p in properties],
             "/usr/bin/python3", "-c", SANDBOX_PROBE])
    box.wait_until(lambda: box.unit_property(probe, "ActiveState") in ("active", "failed"),
                   what="the probe ran")
    status = box.unit_property(probe, "ExecMainStatus")

    def output():
        return box.run(["journalctl", "-u", probe, "-o", "cat", "--no-pager"]).stdout
    if status == "0":  # its output reaches the journal a moment later
        box.wait_until(lambda: "sandbox ok" in output(), timeout=10, what="the probe's output")
    output = output()
    box.systemctl("stop", probe, "db-sockets.service")
    box.systemctl("reset-failed", check=False)
    box.run(["rm", "-rf", "/var/lib/splynx-ippay/.sandbox-probe", "/run/mysqld",
             "/run/postgresql"])
    assert status == "0" and "sandbox ok" in output, output


@pytest.mark.timeout(300)
def test_restart_and_a_customer_pays_an_invoice_through_nginx(box):
    box.python("simulator", SIMULATOR)  # the admin's own change to the conffile
    before = {unit: main_pid(box, unit) for unit in UNITS}
    box.systemctl("restart", *UNITS)
    for unit in UNITS:
        assert box.is_active(unit) == "active"
        assert main_pid(box, unit) != before[unit]
    wait_serving(box)
    shared["paid_invoice"] = box.python("pay")["invoice"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("unit", UNITS)
def test_a_killed_service_is_restarted_by_systemd(box, unit):
    pid = main_pid(box, unit)
    restarts = int(box.unit_property(unit, "NRestarts"))
    box.run(["kill", "-KILL", str(pid)])
    box.wait_until(lambda: box.is_active(unit) == "active" and main_pid(box, unit) not in (0, pid),
                   timeout=60, what=f"{unit} restarted after SIGKILL")
    assert int(box.unit_property(unit, "NRestarts")) == restarts + 1
    wait_serving(box)


def test_nginx_limits_a_burst_of_posts_with_429(box):
    answer = box.python("burst", "100")
    posts, gets = answer["posts"], answer["gets"]
    allowed = [s for s in posts if s != 429]
    # The burst of 20 passes, and then 10 a second: the rest is refused with 429.
    assert len(allowed) >= 20, answer
    assert len(allowed) <= 21 + 10 * answer["seconds"] + 1, answer
    assert 429 in posts, answer
    assert 429 not in gets, gets  # GETs are not counted


@pytest.mark.timeout(300)
def test_dpkg_reconfigure_applies_new_answers_to_the_running_services(box):
    before = {unit: main_pid(box, unit) for unit in UNITS}
    preseed(box, url="http://localhost")
    box.run(["dpkg-reconfigure", "-fnoninteractive", PACKAGE])
    secrets = box.path("/etc/splynx-ippay/secrets.ini").read_text()
    assert "url = http://localhost" in secrets and "api_secret = sandbox-secret" in secrets
    for unit in UNITS:  # restarted with the new secrets
        assert box.is_active(unit) == "active" and main_pid(box, unit) != before[unit]
    box.wait_until(lambda: registration(box).get("splynx_url") == "http://localhost"
                   and registration(box)["status"] == "registered",
                   timeout=60, what="registered again with the new address")
    wait_serving(box)


@pytest.mark.timeout(600)
def test_remove_stops_the_units_takes_ippay_out_of_nginx_and_keeps_data(box):
    box.apt_get("remove", PACKAGE)
    assert installed_version(box) is None
    for unit in (*UNITS, TIMER):
        assert box.is_active(unit) in ("inactive", "unknown"), unit
    # /ippay/ is Splynx's again (the emulator's 404), not a 502 from a socket that is gone.
    answer = box.python("get", f"{FRONT}/ippay/cards")
    assert answer["status"] == 404, answer
    box.run(["nginx", "-t"])
    for path in ("/etc/splynx-ippay/config.ini", "/etc/splynx-ippay/secrets.ini",
                 "/etc/splynx-ippay/nginx-location.conf",
                 "/etc/nginx/sites-available/splynx-ippay.addons", DATABASE):
        assert box.path(path).exists(), path
    assert registration(box)["status"] == "registered"
    assert box.python("registered")["registered"]
    assert not box.path("/usr/bin/splynx-ippay").exists()


@pytest.mark.timeout(600)
def test_purge_after_remove_runs_once_and_leaves_nothing(box):
    done = box.apt_get("purge", PACKAGE)
    assert done.stdout.count("splynx-ippay: purging") == 1, done.stdout
    assert "warning" not in done.stdout, done.stdout
    assert not box.python("registered")["registered"]
    assert_nothing_left(box, shared["before"])


@pytest.mark.timeout(600)
def test_installed_while_splynx_is_down_registration_completes_once_it_is_up(box):
    box.path(FAST_RETRY).parent.mkdir(parents=True, exist_ok=True)
    box.path(FAST_RETRY).write_text(FAST_RETRY_TEXT)
    box.systemctl("daemon-reload")
    box.stop_emulator()
    try:
        preseed(box)
        done = box.apt_get("install", PACKAGE)
        assert installed_version(box) is not None, done.stdout
        box.wait_until(lambda: registration(box).get("status") == "pending", timeout=60,
                       what="registration pending while Splynx is down")
        # The web service does not wait for Splynx: it serves, pending or not.
        for unit in UNITS:
            assert box.is_active(unit) == "active"
        wait_serving(box)
        assert box.is_active(TIMER) == "active"  # retrying
        assert box.unit_property(REGISTER, "Result") != "success"
        first_try = registration(box)["time"]
        box.wait_until(lambda: registration(box)["time"] != first_try, timeout=30,
                       what="the timer tried again")
        assert registration(box).get("status") == "pending"
    finally:
        box.start_emulator()  # Splynx is back (a fresh one: nothing registered)
    wait_registered(box, timeout=30)  # by the timer, no one asked
    assert box.python("registered")["registered"]
    box.path(FAST_RETRY).unlink()
    box.path(FAST_RETRY).parent.rmdir()
    box.systemctl("daemon-reload")


BLACK_HOLE = """
import socket, time
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 8099)); server.listen(64)
held = []
while True:
    held.append(server.accept()[0])  # accepted, never answered
"""
SLOW_TIMEOUT = "/etc/systemd/system/splynx-ippay-register.service.d/tests.conf"


@pytest.mark.timeout(600)
def test_a_splynx_that_never_answers_delays_nothing(box):
    """The issue this layout fixes: a Splynx that accepts connections and never answers,
    with the add-on's Splynx timeout at 100 s, kept the web service from ever starting. Now
    the web service starts at once; the oneshot is cut off at its own TimeoutStartSec (made
    5 s here instead of 300) and retried by the timer."""
    box.start_service("splynx-black-hole", ["/usr/bin/python3", "-c", BLACK_HOLE])
    for path, text in ((FAST_RETRY, FAST_RETRY_TEXT),
                       (SLOW_TIMEOUT, "[Service]\nTimeoutStartSec=5s\n")):
        box.path(path).parent.mkdir(parents=True, exist_ok=True)
        box.path(path).write_text(text)
    box.systemctl("daemon-reload")
    config = box.path("/etc/splynx-ippay/config.ini")
    original = config.read_text()
    config.write_text(original.replace("\ntimeout = 20\n", "\ntimeout = 100\n", 1))
    try:
        preseed(box, url="http://127.0.0.1:8099")
        started = time.monotonic()
        box.run(["dpkg-reconfigure", "-fnoninteractive", PACKAGE])
        wait_serving(box, timeout=30)  # restarted with the new address, serving
        assert time.monotonic() - started < 30
        box.wait_until(lambda: box.unit_property(REGISTER, "Result") == "timeout", timeout=60,
                       what="the oneshot cut off at its TimeoutStartSec")
        for unit in UNITS:
            assert box.is_active(unit) == "active"
        assert box.is_active(TIMER) == "active"  # and retried
    finally:
        # First, so that the worker's own call to it fails now, not at its 100 s timeout:
        # the worker finishes what it is doing before it stops for the restart.
        box.systemctl("stop", "splynx-black-hole.service", check=False)
        config.write_text(original)
        preseed(box)
        box.run(["dpkg-reconfigure", "-fnoninteractive", PACKAGE])
    wait_registered(box, timeout=60)
    for path in (FAST_RETRY, SLOW_TIMEOUT):
        box.path(path).unlink()
        box.path(path).parent.rmdir()
    box.systemctl("daemon-reload")
    box.systemctl("reset-failed", check=False)


@pytest.mark.timeout(600)
def test_a_purge_that_cannot_reach_splynx_warns(box):
    box.stop_emulator()
    try:
        done = box.apt_get("purge", PACKAGE)
        assert done.stdout.count("splynx-ippay: purging") == 1, done.stdout
        assert done.stdout.count("warning: the add-on's registration could not be removed") == 1, \
            done.stdout
        assert installed_version(box) is None
    finally:
        box.start_emulator()
    assert_nothing_left(box, shared["before"])


@pytest.mark.timeout(600)
def test_install_from_the_add_ons_page(box, built):
    preseed(box)
    page = box.run(["python3", "-c", f"""
import re, requests
admin = requests.Session()
base = "http://127.0.0.1:{EMULATOR_PORT}"
admin.post(base + "/admin/login", data={{"login": "admin", "password": "admin-pass"}}, timeout=10)
listed = admin.get(base + "/admin/config/integrations/addons", timeout=60).text
row = re.search(r"<tr><td>{PACKAGE}</td>.*?</tr>", listed, re.S)
assert row and "{built['version']}" in row.group(0) and "Not installed" in row.group(0), listed
assert "OK, confirm" in admin.get(base + "/admin/config/integrations/addons",
                                  params={{"install": "{PACKAGE}"}}, timeout=30).text
print(admin.post(base + "/admin/config/integrations/addons",
                 data={{"package": "{PACKAGE}", "confirm": "1"}}, timeout=600).text)
"""], timeout=900).stdout
    assert f"Setting up {PACKAGE}" in page, page
    assert installed_version(box) == built["version"]
    wait_registered(box)
    for unit in UNITS:
        assert box.is_active(unit) == "active"
    done = box.apt_get("purge", PACKAGE)
    assert done.stdout.count("splynx-ippay: purging") == 1, done.stdout
    assert not box.python("registered")["registered"]


PROBE = """\
#!/bin/sh
# The package tests' migration probe: postinst runs `splynx-ippay db upgrade` by name, so
# this one in /usr/local/bin (first in PATH) runs instead and records how many gunicorn and
# worker processes were running then, before it runs the real command.
if [ "$1 $2" = "db upgrade" ]; then
	{ date +%s.%N; pgrep -c -f "^/usr/bin/python3 /usr/bin/gunicorn" || true;
	pgrep -c -f "/usr/bin/splynx-ippay worker" || true; } > /var/tmp/migration-probe
fi
exec /usr/bin/splynx-ippay "$@"
"""


@pytest.mark.timeout(900)
def test_upgrade_from_the_previous_release_stops_both_units_while_migrating(box, built):
    if built["previous"] is None:
        pytest.skip(f"not a git checkout: the previous release is built from {PREVIOUS_COMMIT}")
    preseed(box)
    box.apt_get("install", f"{PACKAGE}={PREVIOUS_VERSION}")
    assert installed_version(box) == PREVIOUS_VERSION
    box.wait_until(lambda: box.python("registered")["registered"], timeout=60,
                   what="the previous release registered")
    # The previous release is a consistent build: paying works while it is installed.
    box.python("simulator", SIMULATOR)
    box.systemctl("restart", *UNITS)
    wait_serving(box)
    box.python("pay")
    old_revision = box.python("revision", DATABASE)["revision"]
    box.python("add-sentinel-card", DATABASE)
    config_before = box.path("/etc/splynx-ippay/config.ini").read_text()
    secrets_before = box.path("/etc/splynx-ippay/secrets.ini").read_text()
    for unit in UNITS:
        assert box.is_active(unit) == "active"

    probe = box.path("/usr/local/bin/splynx-ippay")
    probe.write_text(PROBE)
    probe.chmod(0o755)
    try:
        # Literally: the newer one from the repository. apt runs dpkg with DPkg::Path, which
        # leaves out /usr/local: put it first for the probe.
        done = box.apt_get("-o", f"DPkg::Path={PATH}", "install", PACKAGE)
    finally:
        probe.unlink()
    assert installed_version(box) == built["version"], done.stdout
    when, web_processes, worker_processes = box.run(
        ["cat", "/var/tmp/migration-probe"]).stdout.split()
    box.run(["rm", "-f", "/var/tmp/migration-probe"])
    assert (web_processes, worker_processes) == ("0", "0"), done.stdout
    replaced = float(box.run(["stat", "-c", "%Z",
                              "/usr/lib/python3/dist-packages/splynx_ippay/__init__.py"]
                             ).stdout.strip())
    for unit in UNITS:
        stopped = timestamp(box, unit, "InactiveEnterTimestamp")
        started = timestamp(box, unit, "ActiveEnterTimestamp")
        # stopped (preinst) ≤ files replaced (unpack) ≤ migrated (postinst) ≤ started again
        assert stopped <= replaced + 1 and stopped < float(when) < started, \
            (unit, stopped, replaced, when, started)
        assert box.is_active(unit) == "active"

    assert box.path("/etc/splynx-ippay/config.ini").read_text() == config_before
    assert box.path("/etc/splynx-ippay/secrets.ini").read_text() == secrets_before
    assert box.python("revision", DATABASE)["revision"] != old_revision
    sentinel = box.python("find-sentinel-card", DATABASE)
    assert sentinel["holder_name"] == "Upgrade Sentinel"
    wait_registered(box, version=built["version"])
    wait_serving(box)
    box.python("pay", "bob")  # and paying works after it (alice has no approving invoice left)


@pytest.mark.timeout(600)
def test_remove_keeps_configuration_data_and_registration(box):
    box.apt_get("remove", PACKAGE)
    assert installed_version(box) is None
    assert box.path("/etc/splynx-ippay/config.ini").exists()
    assert box.path("/etc/splynx-ippay/secrets.ini").exists()
    assert box.path(DATABASE).exists() and registration(box)["status"] == "registered"
    assert box.python("registered")["registered"]


@pytest.mark.timeout(600)
def test_purge_leaves_nothing(box):
    done = box.apt_get("purge", PACKAGE)
    assert done.stdout.count("splynx-ippay: purging") == 1, done.stdout
    assert not box.python("registered")["registered"]
    assert_nothing_left(box, shared["before"])
