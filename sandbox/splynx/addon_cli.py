#!/usr/bin/env python3
"""Stand-in for Splynx's local add-on CLI, ``/var/www/splynx/system/script/addon``
(splynx-platform §3.2), acting on the Splynx emulator's store.

    addon add-or-get-api-key --title="Splynx Ippay Billing Add-On"     -> prints the key's id
    addon get-api-key-and-secret --id=N                                -> prints key,secret
    addon api-key-white-list --id=N --list=ip1,ip2
    addon set-api-key-permission --id=N --controller='api\\admin\\finance\\Payments' \\
          --action=index --rule=allow
    addon add-or-get-additional-field --main_module=customers --name=.. --title=.. \\
          --type=string --required=0 --is_add=1                        -> prints the name
    addon config-set --addon=splynx_ippay_addon --key=.. --value=..
    addon help                                                         -> this usage

Switched on, it also offers the sub-commands for the steps Splynx's API does not document
(their names are this stand-in's own: no public source names any):

    addon add-or-update-entry-point --module=M --name=N --place=portal --type=menu_link ...
                                                                       -> prints the id
    addon delete-entry-point --module=M --name=N
    addon add-or-get-payment-account --title=T --field_1=Label ...    -> prints the id

Standard library only, so it runs wherever Python 3 does (a package test's container).
Where the emulator is, and the switch, come from a JSON file next to the program (its path
plus ``.json``, e.g. ``/var/www/splynx/system/script/addon.json``):
``{"url": "http://127.0.0.1:8001", "registration_commands": false}``; the environment
variables ``SPLYNX_SANDBOX_URL`` and ``SPLYNX_SANDBOX_ADDON_CLI_REGISTRATION`` (``1``/``0``)
take precedence. A failed sub-command prints why on stderr and exits 1; an unreachable
emulator exits 2.
"""

import json
import os
import sys
import urllib.error
import urllib.request

BASE_COMMANDS = ("add-or-get-api-key", "get-api-key-and-secret", "api-key-white-list",
                 "set-api-key-permission", "add-or-get-additional-field", "config-set")
REGISTRATION_COMMANDS = ("add-or-update-entry-point", "delete-entry-point",
                         "add-or-get-payment-account")


MARKER = "Stand-in for Splynx's local add-on CLI"


def install(target, splynx_url, registration_commands=True):
    """Put this stand-in at ``target`` (the path the add-on runs), pointed at the emulator
    at ``splynx_url`` by the JSON file beside it. Never overwrites a program that is not
    the stand-in (a real Splynx's CLI). Returns ``target``."""
    import shutil

    if os.path.exists(target):
        with open(target, encoding="utf-8", errors="replace") as handle:
            if MARKER not in handle.read(400):
                raise RuntimeError(f"{target} exists and is not the sandbox's stand-in: not "
                                   "replacing it (pass another path)")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(__file__, target)
    os.chmod(target, 0o755)
    with open(f"{target}.json", "w", encoding="utf-8") as handle:
        json.dump({"url": splynx_url, "registration_commands": registration_commands},
                  handle, indent=1)
        handle.write("\n")
    return target


def settings(program, environ=os.environ):
    """``(emulator URL or None, registration commands on?)``."""
    config = {}
    try:
        with open(program + ".json", encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        config = {}
    url = environ.get("SPLYNX_SANDBOX_URL") or config.get("url")
    switch = environ.get("SPLYNX_SANDBOX_ADDON_CLI_REGISTRATION")
    registration = (switch.strip().lower() in ("1", "true", "yes", "on") if switch is not None
                    else bool(config.get("registration_commands")))
    return (url.rstrip("/") if url else None), registration


def usage(commands):
    lines = ["Usage: addon <sub-command> [--option=value ...]", "", "Sub-commands:"]
    lines += [f"  {name}" for name in commands]
    return "\n".join(lines) + "\n"


def parse_options(args):
    """``--name=value`` or ``--name value`` pairs into a dict; anything else is an error."""
    options, n = {}, 0
    while n < len(args):
        arg = args[n]
        if not arg.startswith("--") or len(arg) == 2:
            raise ValueError(f"unexpected argument {arg!r}")
        name, equals, value = arg[2:].partition("=")
        if not equals:
            if n + 1 >= len(args) or args[n + 1].startswith("--"):
                raise ValueError(f"option --{name} needs a value")
            n += 1
            value = args[n]
        options[name] = value
        n += 1
    return options


def main(argv, program=None, stdout=None, stderr=None, environ=os.environ):
    """Run one sub-command (``argv`` without the program) as the program at ``program``
    (default: this one); returns the exit status."""
    program = os.path.abspath(program or sys.argv[0])
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    url, registration = settings(program, environ)
    commands = BASE_COMMANDS + (REGISTRATION_COMMANDS if registration else ())
    if not argv or argv[0] in ("help", "--help", "-h"):
        stdout.write(usage(commands))
        return 0
    command = argv[0]
    if command not in commands:
        stderr.write(f"Unknown sub-command {command!r}.\n\n{usage(commands)}")
        return 1
    try:
        options = parse_options(argv[1:])
    except ValueError as exc:
        stderr.write(f"{command}: {exc}\n")
        return 1
    if not url:
        stderr.write(f"{command}: no emulator URL: set SPLYNX_SANDBOX_URL or write "
                     f"{{\"url\": ...}} in {program}.json\n")
        return 2
    request = urllib.request.Request(
        f"{url}/_sandbox/addon-cli", method="POST",
        data=json.dumps({"command": command, "options": options}).encode("utf-8"),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            output = json.load(response)["output"]
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code}"
        stderr.write(f"{command}: {message}\n")
        return 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        stderr.write(f"{command}: cannot reach the Splynx emulator at {url}: {exc}\n")
        return 2
    if output:
        stdout.write(f"{output}\n")
    return 0


def run_in_process(argv, *, env=None, **_ignored):
    """:func:`subprocess.run` of the stand-in, in this process: ``argv[0]`` is where it was
    installed (:func:`install`), the answer a :class:`subprocess.CompletedProcess`.

    ``sandbox.world`` registers every test world through it (``AddonCli(runner=...)``): the
    same sub-commands and answers, without starting a Python for each of the fourteen
    (four seconds a world). The package and registration suites run the program itself."""
    import io
    import subprocess

    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(list(argv[1:]), program=argv[0], stdout=stdout, stderr=stderr,
                environ=os.environ if env is None else env)
    return subprocess.CompletedProcess(list(argv), code, stdout.getvalue(), stderr.getvalue())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
