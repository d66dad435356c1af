"""Helpers of the package suite.

On this machine: the .debs built once per run (the current version with ``make deb``, the
previous version from an earlier commit of this repository, the stdeb build) and the local
apt repository holding them. Inside the container (this file is copied there and imported
by inside.py with the container's own python3, so it needs only the standard library and
requests): what an admin and a customer do — point the add-on at the simulator, pay an
invoice through nginx — and the file list for "purge leaves nothing".
"""

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "splynx-ippay"
MODULE = "splynx_ippay_addon"
#: The previous release the upgrade tests start from: this repository at the last commit
#: before migration 0003 (payment statements), built as it was, with its own code, units,
#: maintainer scripts and migrations; only its version is set to a snapshot version below
#: the current one, as Debian names a build from a commit.
PREVIOUS_COMMIT = "39594eb605b8dc8208a9790f1cacd28476294615"
PREVIOUS_VERSION = "0.1.0~git20261126.39594eb"
PREVIOUS_PYTHON_VERSION = "0.1.0.dev20261126"  # the same, as PEP 440 spells it
CACHE = Path(os.environ.get("SPLYNX_IPPAY_TEST_CACHE", "/var/cache/splynx-ippay-tests"))


def run(argv, check=True, timeout=900, env=None, **kwargs):
    """Run a command here; its output is returned and shown when it fails."""
    full_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", **(env or {}))
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, env=full_env, stdin=subprocess.DEVNULL, **kwargs)
    if check and done.returncode != 0:
        raise AssertionError(f"{shlex.join(map(str, argv))} exited with {done.returncode}:\n"
                             f"{done.stdout[-6000:]}")
    return done


# --- building, on this machine --------------------------------------------------------------

def is_git_checkout():
    return shutil.which("git") is not None and run(
        ["git", "rev-parse", "--is-inside-work-tree"], check=False, cwd=ROOT).returncode == 0


def build_current(workdir):
    """``make deb`` into workdir (lintian is its own test); the .deb and the .changes."""
    run(["make", "--no-print-directory", "deb", f"DIST={workdir}/dist",
         f"DEB_BUILD_DIR={workdir}/build", "LINTIAN=true"], cwd=ROOT)
    dist = Path(workdir) / "dist"
    return next(dist.glob(f"{PACKAGE}_*_all.deb")), next(dist.glob(f"{PACKAGE}_*.changes"))


def build_previous(workdir):
    """The previous release (PREVIOUS_COMMIT), built once and cached by commit."""
    cached = CACHE / f"{PACKAGE}_{PREVIOUS_VERSION}_all.deb"
    if cached.exists():
        return cached
    source = Path(workdir) / "previous" / PACKAGE
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", PREVIOUS_COMMIT], cwd=ROOT,
                             stdout=subprocess.PIPE, check=True).stdout
    subprocess.run(["tar", "-xf", "-", "-C", str(source)], input=archive, check=True)
    init = source / "splynx_ippay" / "__init__.py"
    init.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{PREVIOUS_PYTHON_VERSION}"',
                           init.read_text()))
    changelog = source / "debian" / "changelog"
    changelog.write_text(
        f"{PACKAGE} ({PREVIOUS_VERSION}) bookworm; urgency=medium\n\n"
        f"  * Snapshot of commit {PREVIOUS_COMMIT[:12]}, the previous release for the\n"
        f"    package tests' upgrades.\n\n"
        f" -- splynx-ippay tests <tests@splynx-ippay.example>  "
        f"{time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\n")
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=source)
    built = next((Path(workdir) / "previous").glob(f"{PACKAGE}_{PREVIOUS_VERSION}_all.deb"))
    CACHE.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built, cached.with_suffix(".partial"))
    cached.with_suffix(".partial").rename(cached)
    return cached


def build_stdeb(workdir):
    """The same package built the other way: ``setup.py bdist_deb`` (stdeb, stdeb.cfg)."""
    run(["make", "--no-print-directory", "deb-stdeb", f"DIST={workdir}/stdeb",
         f"DEB_BUILD_DIR={workdir}/stdeb-build", "LINTIAN=true"], cwd=ROOT)
    return next((Path(workdir) / "stdeb").glob(f"{PACKAGE}_*_all.deb"))


def make_repo(directory, debs):
    """A flat apt repository holding ``debs`` (Packages, Packages.gz, Release)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        shutil.copy2(deb, directory)
    packages = run(["dpkg-scanpackages", "--multiversion", "."], cwd=directory).stdout
    (directory / "Packages").write_text("".join(
        line + "\n" for line in packages.splitlines() if not line.startswith("dpkg-scan")))
    run(["sh", "-c", "gzip -9nc Packages > Packages.gz && apt-ftparchive release . > Release"],
        cwd=directory)
    return directory


def deb_listing(deb):
    """The paths a .deb installs, and its maintainer scripts by name."""
    listing = run(["dpkg-deb", "-c", str(deb)]).stdout
    paths = sorted(line.split()[5].lstrip(".") for line in listing.splitlines())
    control = Path(tempfile.mkdtemp(prefix="deb-control-"))
    try:
        run(["dpkg-deb", "-e", str(deb), str(control)])
        scripts = {p.name: p.read_text() for p in control.iterdir()
                   if p.name in ("preinst", "postinst", "prerm", "postrm", "config",
                                 "templates", "conffiles")}
    finally:
        shutil.rmtree(control)
    return [p for p in paths if p and p != "/"], scripts


# --- an admin and a customer, inside the container ------------------------------------------

class Splynx:
    """The emulator's control plane (its whole state as JSON)."""

    def __init__(self, url):
        self.url = url

    def state(self):
        import requests

        return requests.get(f"{self.url}/_sandbox/state", timeout=10).json()

    def module_registered(self):
        return any(m["name"] == MODULE for m in self.state()["modules"])


def preseed_answers(splynx_url, key="sandbox-key", secret="sandbox-secret"):
    """debconf-set-selections input answering the package's questions."""
    return (f"{PACKAGE} {PACKAGE}/splynx_url string {splynx_url}\n"
            f"{PACKAGE} {PACKAGE}/api_key string {key}\n"
            f"{PACKAGE} {PACKAGE}/api_secret password {secret}\n")


def point_at_simulator(simulator_url, path="/etc/splynx-ippay/config.ini"):
    """What an admin does after installing: set the IPpay gateway in config.ini."""
    path = Path(path)
    text = path.read_text()
    text = re.sub(r"(?m)^url = https://testgtwy\.ippay\.com/ippay$", f"url = {simulator_url}/ippay",
                  text)
    path.write_text(text)


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


def customer_session(front, login="alice", password="alice-pass"):
    import requests

    browser = requests.Session()
    browser.post(f"{front}/portal/login", data={"login": login, "password": password},
                 timeout=10)
    return browser


def pay_an_invoice(front, emulator, login="alice"):
    """Log in as ``login`` (alice by default), save a card, pay an unpaid invoice whose cents
    approve; return its number after checking that Splynx has it Paid."""
    browser = customer_session(front, login, f"{login}-pass")
    cards = browser.get(f"{front}/ippay/cards", timeout=10)
    assert cards.status_code == 200, cards.text[:500]
    action, fields = form_fields(cards.text, "/ippay/cards")
    fields.update({"holder_name": "Alice Example", "number": "4111111111111111",
                   "expiry": "12/30", "cvv": "123"})
    saved = browser.post(front + action, data=fields, timeout=30)
    assert "1111" in saved.text, saved.text[:2000]

    state = emulator.state()
    customer = next(str(c["id"]) for c in state["customers"] if c["login"] == login)
    number = next(i["number"] for i in state["invoices"]
                  if str(i["customer_id"]) == customer and i["status"] == "not_paid"
                  and round(float(i["due"]) * 100) % 100 == 0)
    page = browser.get(f"{front}/ippay/pay-invoice", params={
        "module": MODULE, "model": "Invoices", "item_id": number}, timeout=10)
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


# --- what is on the disk (inside the container) ---------------------------------------------

SNAPSHOT_ROOTS = ("/etc", "/usr", "/var/lib", "/var/log", "/var/cache/debconf", "/opt", "/srv",
                  "/run", "/lib", "/var/www")
# Package managers' own bookkeeping changes with every install; it is not the package's.
# The journal and systemd's own state change with time; the test's own tree under /srv.
VOLATILE = re.compile(r"^/var/lib/(apt|dpkg)/|^/var/log/(apt/|dpkg\.log|alternatives\.log)"
                      r"|^/var/cache/debconf/(.*-old$|tmp\.ci)|^/etc/ld\.so\.cache$|^/var/lib/ucf/"
                      r"|^/run/adduser$"
                      r"|^/var/log/journal|^/var/lib/systemd/(timers|catalog|random-seed)"
                      r"|^/run/(nginx|systemd|user|log|udev|lock|mount|credentials)"
                      r"|^/srv/splynx-ippay-(tests|repo)|^/var/log/nginx/"
                      r"|^/etc/apt/sources\.list\.d/splynx-ippay-test|^/var/lib/nginx/")


def snapshot():
    """Every path under the roots above, except package managers' bookkeeping."""
    paths = set()
    for root in SNAPSHOT_ROOTS:
        for directory, dirnames, filenames in os.walk(root):
            if directory.startswith(("/usr/share/doc", "/usr/share/man", "/usr/share/locale",
                                     "/proc", "/sys")):
                dirnames[:] = []
            for name in dirnames + filenames:
                path = os.path.join(directory, name)
                if not VOLATILE.search(path):
                    paths.add(path)
    return paths
