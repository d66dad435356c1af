"""Helpers of the package suite: the .deb built once per run (current and previous version),
a local apt repository, the Splynx emulator and IPpay simulator on fixed loopback ports,
and the means to run the installed web service without systemd, behind a nginx.

The suite installs and purges ``splynx-ippay`` on this machine for real, so it runs only as
root on Debian; anywhere else it is skipped with the reason.
"""

import configparser
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from sandbox.stack import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "splynx-ippay"
SOURCES = Path("/etc/apt/sources.list.d/splynx-ippay-test.list")
UNIT = Path("/lib/systemd/system/splynx-ippay.service")
PREVIOUS_VERSION = "0.0.9"


def skip_reason():
    """Why the package suite cannot run here, or None."""
    if os.environ.get("SPLYNX_IPPAY_SKIP_PACKAGE"):
        return "SPLYNX_IPPAY_SKIP_PACKAGE is set"
    if not Path("/etc/debian_version").exists() or shutil.which("apt-get") is None:
        return "not a Debian system (the package suite installs the .deb with apt-get)"
    if os.geteuid() != 0:
        return "not root (the package suite installs and purges the package for real)"
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return "not a git checkout (make deb copies the checkout's files)"
    return None


def run(argv, check=True, timeout=600, env=None, **kwargs):
    """Run a command; its output is returned and shown when it fails."""
    full_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", **(env or {}))
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, env=full_env, stdin=subprocess.DEVNULL, **kwargs)
    if check and done.returncode != 0:
        raise AssertionError(f"{shlex.join(map(str, argv))} exited with {done.returncode}:\n"
                             f"{done.stdout[-6000:]}")
    return done


def apt_get(*args, check=True):
    return run(["apt-get", "-q", "-y", "-o", "Dpkg::Options::=--force-confdef",
                "-o", "Dpkg::Options::=--force-confold", *args], check=check)


def apt_update_local():
    """``apt-get update`` of the local repository only (Debian's lists are already there)."""
    run(["apt-get", "-q", "update", "-o", f"Dir::Etc::sourcelist={SOURCES}",
         "-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0"])


def _clean_copy(destination):
    """The checkout's tracked and new files (what make deb packs), copied to destination."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        source = ROOT / raw.decode()
        if source.is_file():
            target = destination / raw.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _build_previous(workdir):
    """The "previous release": this tree as version 0.0.9 without its newest migration."""
    source = workdir / "previous" / PACKAGE
    _clean_copy(source)
    versions = sorted((source / "splynx_ippay" / "migrations" / "versions").glob("[0-9]*.py"))
    assert len(versions) >= 2, "the upgrade test needs at least two migrations"
    versions[-1].unlink()
    init = source / "splynx_ippay" / "__init__.py"
    init.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{PREVIOUS_VERSION}"',
                           init.read_text()))
    changelog = source / "debian" / "changelog"
    entry = (f"{PACKAGE} ({PREVIOUS_VERSION}) bookworm; urgency=medium\n\n"
             f"  * Previous release, built by the package tests.\n\n"
             f" -- splynx-ippay tests <tests@splynx-ippay.example>  "
             f"{time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\n\n")
    changelog.write_text(entry)
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=source)
    return next((workdir / "previous").glob(f"{PACKAGE}_{PREVIOUS_VERSION}_all.deb"))




# --- the world the installed package talks to ---------------------------------------------

class Emulator:
    """The Splynx emulator on a fixed port, so that it can be stopped and started again."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = None

    def start(self):
        from sandbox.serve import BackgroundServer
        from sandbox.splynx import create_app

        self.server = BackgroundServer(create_app(), port=self.port).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.stop()
            self.server = None

    def state(self):
        return requests.get(f"{self.url}/_sandbox/state", timeout=10).json()






def preseed(splynx_url, key="sandbox-key", secret="sandbox-secret"):
    """Answer the package's debconf questions before it is installed."""
    answers = (f"{PACKAGE} {PACKAGE}/splynx_url string {splynx_url}\n"
               f"{PACKAGE} {PACKAGE}/api_key string {key}\n"
               f"{PACKAGE} {PACKAGE}/api_secret password {secret}\n")
    subprocess.run(["debconf-set-selections"], input=answers, text=True, check=True)


def point_at_simulator(simulator_url):
    """What an admin does after installing: set the IPpay gateway in config.ini."""
    path = Path("/etc/splynx-ippay/config.ini")
    text = path.read_text()
    text = re.sub(r"(?m)^url = https://testgtwy\.ippay\.com/ippay$", f"url = {simulator_url}/ippay",
                  text)
    path.write_text(text)


# --- the installed web service, started as its unit would be -----------------------------

def read_unit(path=UNIT):
    """The [Service] section of a systemd unit as a dict (repeated keys: the last wins,
    ExecStartPre collected in a list)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(path)
    service = dict(parser["Service"])
    pre = [line.split("=", 1)[1] for line in path.read_text().splitlines()
           if line.startswith("ExecStartPre=")]
    service["ExecStartPre"] = pre
    return service


class WebService:
    """splynx-ippay.service without systemd: RuntimeDirectory created, ExecStartPre and
    ExecStart run as User/Group in WorkingDirectory with the unit's UMask."""

    def __init__(self, unit=UNIT):
        self.unit = read_unit(unit)
        self.process = None
        self.runtime = Path("/run") / self.unit["RuntimeDirectory"]
        self.log = tempfile.NamedTemporaryFile(prefix="splynx-ippay-web-", suffix=".log",
                                               delete=False)

    def _credentials(self):
        user = pwd.getpwnam(self.unit["User"])
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [],
                "cwd": self.unit.get("WorkingDirectory", "/"),
                "umask": int(self.unit.get("UMask", "0022"), 8),
                "env": {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                        "HOME": self.unit.get("WorkingDirectory", "/")}}

    def start(self):
        user = pwd.getpwnam(self.unit["User"])
        self.runtime.mkdir(mode=int(self.unit.get("RuntimeDirectoryMode", "0755"), 8),
                           exist_ok=True)
        os.chown(self.runtime, user.pw_uid, user.pw_gid)
        for command in self.unit["ExecStartPre"]:
            ignore_failure = command.startswith("-")
            done = subprocess.run(shlex.split(command.lstrip("-+!")), stdout=self.log,
                                  stderr=subprocess.STDOUT, **self._credentials())
            assert ignore_failure or done.returncode == 0, command
        self.process = subprocess.Popen(shlex.split(self.unit["ExecStart"]), stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        **self._credentials())
        socket_path = self.runtime / "web.sock"
        deadline = time.monotonic() + 30
        while not socket_path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the web service did not start:\n" + self.output())
            time.sleep(0.1)
        return self

    def output(self):
        return Path(self.log.name).read_text(errors="replace")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        shutil.rmtree(self.runtime, ignore_errors=True)  # as systemd removes RuntimeDirectory
        Path(self.log.name).unlink(missing_ok=True)


NGINX_CONF = """\
user www-data;
worker_processes 1;
error_log {state}/error.log warn;
pid {state}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {state}/access.log;
    client_body_temp_path {state}/tmp/body;
    proxy_temp_path {state}/tmp/proxy;
    fastcgi_temp_path {state}/tmp/fastcgi;
    uwsgi_temp_path {state}/tmp/uwsgi;
    scgi_temp_path {state}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        location / {{
            proxy_pass {splynx};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
        # As a Splynx server block includes the add-ons' nginx files.
        include /etc/nginx/sites-available/*.addons;
    }}
}}
"""


class Nginx:
    """A nginx on loopback: / to the emulator, the package's installed include for /ippay."""

    def __init__(self, splynx_url):
        self.state = Path(tempfile.mkdtemp(prefix="splynx-ippay-nginx-", dir="/tmp"))
        os.chmod(self.state, 0o755)
        (self.state / "tmp").mkdir()
        shutil.chown(self.state / "tmp", "www-data", "www-data")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.state / "nginx.conf").write_text(NGINX_CONF.format(
            state=self.state, port=self.port, splynx=splynx_url))
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["nginx", "-p", str(self.state), "-c", str(self.state / "nginx.conf"),
             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_for(f"{self.url}/portal/login", process=self.process)
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        shutil.rmtree(self.state, ignore_errors=True)


# --- a customer in a browser ------------------------------------------------------------

_INPUT = re.compile(r"<input\b[^>]*>", re.S)


def _attribute(tag, name):
    found = re.search(rf'\b{name}="([^"]*)"', tag)
    return found.group(1) if found else None


def form_fields(html, action_contains=""):
    """The fields a browser would send with the first POST form whose action contains
    ``action_contains``: hidden and text inputs with their values, the checked radio."""
    for form in re.finditer(r"<form\b([^>]*)>(.*?)</form>", html, re.S):
        attributes, body = form.groups()
        if "post" not in attributes.lower() or action_contains not in (
                _attribute(attributes, "action") or ""):
            continue
        fields, radios = {}, {}
        for tag in _INPUT.findall(body):
            name, kind = _attribute(tag, "name"), (_attribute(tag, "type") or "text")
            if not name or kind in ("submit", "button"):
                continue
            value = (_attribute(tag, "value") or "").replace("&amp;", "&")
            if kind == "radio":
                if "checked" in tag or name not in radios:
                    radios[name] = value if "checked" in tag else radios.get(name, value)
            elif kind == "checkbox":
                if "checked" in tag:
                    fields[name] = value or "y"
            else:
                fields[name] = value
        fields.update(radios)
        return (_attribute(attributes, "action") or "").replace("&amp;", "&"), fields
    raise AssertionError(f"no POST form with action containing {action_contains!r}")


def pay_an_invoice(front, emulator):
    """Log in as alice, save a card, pay an unpaid invoice whose cents approve; return its
    number after checking that Splynx has it Paid."""
    browser = requests.Session()
    browser.post(f"{front}/portal/login", data={"login": "alice", "password": "alice-pass"},
                 timeout=10)
    cards = browser.get(f"{front}/ippay/cards", timeout=10)
    assert cards.status_code == 200, cards.text[:500]
    action, fields = form_fields(cards.text, "/ippay/cards")
    fields.update({"holder_name": "Alice Example", "number": "4111111111111111",
                   "expiry": "12/30", "cvv": "123"})
    saved = browser.post(front + action, data=fields, timeout=30)
    assert "1111" in saved.text, saved.text[:2000]

    state = emulator.state()
    number = next(i["number"] for i in state["invoices"]
                  if str(i["customer_id"]) == "1" and i["status"] == "not_paid"
                  and round(float(i["due"]) * 100) % 100 == 0)
    page = browser.get(f"{front}/ippay/pay-invoice", params={
        "module": "splynx_ippay_addon", "model": "Invoices", "item_id": number}, timeout=10)
    assert page.status_code == 200, page.text[:1000]
    action, fields = form_fields(page.text)
    paid = browser.post(front + (action or f"/ippay/pay-invoice?item_id={number}"),
                        data=fields, timeout=60)
    assert paid.status_code == 200, paid.text[:2000]
    invoice = next(i for i in emulator.state()["invoices"] if i["number"] == number)
    assert invoice["status"] == "paid", (invoice, paid.text[:2000])
    portal = browser.get(f"{front}/portal/finance/invoices", timeout=10).text
    assert re.search(rf"{number}.*?Paid", portal, re.S)
    return number


# --- what is on the disk --------------------------------------------------------------------

SNAPSHOT_ROOTS = ("/etc", "/usr", "/var/lib", "/var/log", "/var/cache/debconf", "/opt", "/srv",
                  "/run", "/lib")
# Package managers' own bookkeeping changes with every install; it is not the package's.
VOLATILE = re.compile(r"^/var/lib/(apt|dpkg)/|^/var/log/(apt/|dpkg\.log|alternatives\.log)"
                      r"|^/var/cache/debconf/.*-old$|^/etc/ld\.so\.cache$|^/var/lib/ucf/"
                      r"|^/run/(nginx|sshd|user)|^/etc/apt/sources\.list\.d/splynx-ippay-test")


def snapshot():
    """Every path under the roots above, except package managers' bookkeeping."""
    paths = set()
    for root in SNAPSHOT_ROOTS:
        for directory, dirnames, filenames in os.walk(root):
            if directory.startswith(("/usr/share/doc", "/usr/share/man", "/usr/share/locale")):
                dirnames[:] = []
            for name in dirnames + filenames:
                path = os.path.join(directory, name)
                if not VOLATILE.search(path):
                    paths.add(path)
    return paths


def dependencies(deb):
    """The package names the .deb depends on (alternatives: the first)."""
    depends = run(["dpkg-deb", "-f", str(deb), "Depends"]).stdout
    return [re.split(r"[\s(|]", item.strip())[0] for item in depends.split(",") if item.strip()]
