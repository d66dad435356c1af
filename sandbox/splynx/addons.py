"""Config → Integrations → Add-ons (splynx-platform §3.1): the ``splynx-*`` packages apt
knows, with version, description and whether installed; Install → "OK, confirm" runs the
apt install on this machine and shows its log. The add-on's postinst then registers it,
so it appears in Config → Integrations → Modules list.

The commands are configurable (``create_app({"apt_commands": {...}})`` or the environment
variables below) so tests can substitute harmless ones:

| key | default | environment |
|---|---|---|
| ``search`` | ``apt-cache search --names-only ^splynx-`` | ``SPLYNX_SANDBOX_APT_SEARCH`` |
| ``policy`` | ``apt-cache policy`` + names | ``SPLYNX_SANDBOX_APT_POLICY`` |
| ``installed`` | ``dpkg-query -W -f=${Package}\\t${Version}\\t${db:Status-Abbrev}\\n splynx-*`` | ``SPLYNX_SANDBOX_DPKG_QUERY`` |
| ``install`` | ``apt-get install -y -q`` + name | ``SPLYNX_SANDBOX_APT_INSTALL`` |

Environment values are split like a shell command line (``shlex``). The install runs with
``DEBIAN_FRONTEND=noninteractive`` and keeps changed configuration files (``--force-confold``).
"""

import os
import re
import shlex
import subprocess
import threading

from flask import Blueprint, abort, current_app, render_template, request

from .pages import _layout_context, _session_user, _store

bp = Blueprint("splynx_addons", __name__)

DEFAULT_COMMANDS = {
    "search": ["apt-cache", "search", "--names-only", "^splynx-"],
    "policy": ["apt-cache", "policy"],
    "installed": ["dpkg-query", "-W", "-f=${Package}\\t${Version}\\t${db:Status-Abbrev}\\n",
                  "splynx-*"],
    "install": ["apt-get", "install", "-y", "-q", "-o", "Dpkg::Options::=--force-confdef",
                "-o", "Dpkg::Options::=--force-confold"],
}
_ENVIRONMENT = {"search": "SPLYNX_SANDBOX_APT_SEARCH", "policy": "SPLYNX_SANDBOX_APT_POLICY",
                "installed": "SPLYNX_SANDBOX_DPKG_QUERY", "install": "SPLYNX_SANDBOX_APT_INSTALL"}
_PACKAGE = re.compile(r"^splynx-[a-z0-9][a-z0-9.+-]*$")
#: One install at a time, as apt's own lock would insist.
_INSTALL_LOCK = threading.Lock()


def commands(config=None):
    """The command lines to use: defaults, then the environment, then ``config``."""
    result = {k: list(v) for k, v in DEFAULT_COMMANDS.items()}
    for key, variable in _ENVIRONMENT.items():
        if os.environ.get(variable):
            result[key] = shlex.split(os.environ[variable])
    result.update({k: list(v) for k, v in (config or {}).items() if k in result})
    return result


def _run(argv, timeout=60):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", str(exc)
    return done.returncode, done.stdout, done.stderr


def list_packages(cmds):
    """``[{name, description, version, installed_version, installed}]`` sorted by name."""
    _, out, _ = _run(cmds["search"])
    packages = {}
    for line in out.splitlines():
        name, _, description = line.partition(" - ")
        name = name.strip()
        if _PACKAGE.match(name):
            packages[name] = {"name": name, "description": description.strip(), "version": "",
                              "installed_version": "", "installed": False}
    if packages:
        _, out, _ = _run(cmds["policy"] + sorted(packages))
        current = None
        for line in out.splitlines():
            if line and not line[0].isspace() and line.rstrip().endswith(":"):
                current = packages.get(line.rstrip()[:-1])
            elif current is not None and line.strip().startswith("Candidate:"):
                current["version"] = line.split(":", 1)[1].strip()
    _, out, _ = _run(cmds["installed"])
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[0] in packages and fields[2].strip().startswith("ii"):
            packages[fields[0]].update(installed=True, installed_version=fields[1])
    for package in packages.values():
        package["upgradable"] = (package["installed"] and package["version"] not in ("", "(none)")
                             and package["version"] != package["installed_version"])
    return [packages[name] for name in sorted(packages)]


def install(cmds, name):
    """Run the install of ``name``; ``(exit status, log)``."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with _INSTALL_LOCK:
        try:
            done = subprocess.run(cmds["install"] + [name], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=env, timeout=900,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 127, f"{shlex.join(cmds['install'] + [name])}: {exc}\n"
    return done.returncode, done.stdout


def _admin_or_login():
    """The admin's id, or None; checked under the store lock, which is then released:
    the install must not hold it while the package's postinst calls this Splynx's API."""
    with _store().lock:
        return _session_user("admin")


def _context(admin_id):
    with _store().lock:
        return _layout_context("admin", admin_id)


@bp.route("/admin/config/integrations/addons", methods=["GET", "POST"])
def addons():
    """The list; ``?install=<name>`` asks "OK, confirm"; POST runs the install."""
    admin_id = _admin_or_login()
    if admin_id is None:
        from flask import redirect
        from urllib.parse import urlencode

        return redirect(f"/admin/login?{urlencode({'return': request.full_path})}")
    cmds = commands(current_app.config.get("APT_COMMANDS"))
    if request.method == "POST":
        name = request.form.get("package", "")
        if not _PACKAGE.match(name) or request.form.get("confirm") != "1":
            abort(400)
        status, log = install(cmds, name)
        return render_template("admin_addons.html", **_context(admin_id), packages=None,
                               confirm=None, installed_name=name, status=status, log=log)
    confirm = request.args.get("install")
    if confirm is not None and not _PACKAGE.match(confirm):
        abort(400)
    return render_template("admin_addons.html", **_context(admin_id),
                           packages=list_packages(cmds), confirm=confirm,
                           installed_name=None, status=None, log=None)
