"""Splynx's local add-on CLI, ``/var/www/splynx/system/script/addon`` (splynx-platform §3.2).

On the Splynx host this is how an add-on gets its own API key without anyone typing it
(the REST API cannot create the first key). The sub-commands and what they print, as a
public add-on's ``InstallController`` uses them:

| sub-command | prints |
|---|---|
| ``add-or-get-api-key --title=T`` | the key's numeric id (nothing: the install must fail) |
| ``get-api-key-and-secret --id=N`` | ``key,secret`` on one line |
| ``api-key-white-list --id=N --list=ip1,ip2`` | nothing needed |
| ``set-api-key-permission --id=N --controller=C --action=A --rule=allow`` | nothing needed |
| ``add-or-get-additional-field --main_module= --name= --title= --type= --required= --is_add=`` | something (nothing: failed) |
| ``config-set --addon=<module> --key=K --value=V`` | nothing needed |

Whether it can also create entry points or a payment-account definition is not documented;
:meth:`AddonCli.has_subcommand` reads its usage text to find out, and :mod:`.registrar`
uses the sub-commands named in :data:`REGISTRATION_COMMANDS` only when they are listed there.

Every run has a timeout; every failure is an :class:`AddonCliError` that names the
sub-command and what went wrong, and never carries the API secret. Like PHP's ``exec``, the
answer is the last non-empty line printed.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from typing import Callable, FrozenSet, Mapping, Optional, Sequence, Tuple

log = logging.getLogger(__name__)

#: Where Splynx keeps it (splynx-platform §3.2).
DEFAULT_PATH = "/var/www/splynx/system/script/addon"

#: The sub-commands a public add-on's install uses.
BASE_COMMANDS: Tuple[str, ...] = (
    "add-or-get-api-key", "get-api-key-and-secret", "api-key-white-list",
    "set-api-key-permission", "add-or-get-additional-field", "config-set",
)
#: Sub-commands for the steps the API does not document. No public source names any; these
#: are the names the sandbox's stand-in offers when switched on [decision], looked for in
#: the usage text before use.
REGISTRATION_COMMANDS: Tuple[str, ...] = (
    "add-or-update-entry-point", "delete-entry-point", "add-or-get-payment-account",
)

#: How much of the CLI's error output an error message quotes.
_QUOTE = 300


class AddonCliError(Exception):
    """The add-on CLI is missing, failed, timed out or printed nothing usable.

    ``command`` is the sub-command, ``returncode`` its exit status (``None`` when it did
    not run or was stopped).
    """

    def __init__(self, message: str, command: Optional[str] = None,
                 returncode: Optional[int] = None):
        super().__init__(message)
        self.message = message
        self.command = command
        self.returncode = returncode


Runner = Callable[..., subprocess.CompletedProcess]


class AddonCli:
    """Typed calls of the add-on CLI at ``path``, each limited to ``timeout`` seconds.

    ``env`` is the environment of the runs (default: this process's); ``runner`` is
    :func:`subprocess.run` (a parameter for tests).
    """

    def __init__(self, path: str = DEFAULT_PATH, *, timeout: float = 30.0,
                 env: Optional[Mapping[str, str]] = None,
                 runner: Runner = subprocess.run):
        self.path = path
        self.timeout = timeout
        self._env = dict(env) if env is not None else None
        self._runner = runner
        self._commands: Optional[FrozenSet[str]] = None

    # -- what there is -------------------------------------------------------

    def available(self) -> bool:
        """Whether the CLI exists here and may be run."""
        return os.path.isfile(self.path) and os.access(self.path, os.X_OK)

    def subcommands(self) -> FrozenSet[str]:
        """The known sub-commands its usage text lists (``help``, else no arguments);
        asked once. Empty when the CLI is missing or says nothing."""
        if self._commands is None:
            text = ""
            if self.available():
                for argv in (["help"], []):
                    try:
                        done = self._exec(argv)
                    except AddonCliError:
                        continue
                    text = f"{done.stdout}\n{done.stderr}"
                    if any(_mentions(text, name) for name in BASE_COMMANDS):
                        break
            self._commands = frozenset(name for name in BASE_COMMANDS + REGISTRATION_COMMANDS
                                       if _mentions(text, name))
        return self._commands

    def has_subcommand(self, name: str) -> bool:
        """Whether the usage text lists the sub-command ``name``."""
        return name in self.subcommands()

    # -- API keys --------------------------------------------------------------

    def add_or_get_api_key(self, title: str) -> int:
        """The id of the API key titled ``title``, created when there is none."""
        answer = self.run("add-or-get-api-key", {"title": title})
        if not answer.isdigit() or int(answer) == 0:
            raise AddonCliError(f"{self._name('add-or-get-api-key')} printed {answer!r}, not "
                                "the id of an API key", "add-or-get-api-key")
        return int(answer)

    def get_api_key_and_secret(self, key_id: int) -> Tuple[str, str]:
        """``(key, secret)`` of the API key ``key_id``."""
        answer = self.run("get-api-key-and-secret", {"id": _id(key_id)}, secret_output=True)
        key, comma, secret = answer.partition(",")
        if not comma or not key.strip() or not secret.strip():
            raise AddonCliError(f"{self._name('get-api-key-and-secret')} did not print "
                                f"'key,secret' for API key {key_id}", "get-api-key-and-secret")
        return key.strip(), secret.strip()

    def api_key_white_list(self, key_id: int, addresses: Sequence[str]) -> None:
        """Allow the API key ``key_id`` from ``addresses`` (the host's own)."""
        if not addresses or any("," in a or not a.strip() for a in addresses):
            raise ValueError(f"not a list of addresses: {addresses!r}")
        self.run("api-key-white-list", {"id": _id(key_id), "list": ",".join(addresses)})

    def set_api_key_permission(self, key_id: int, controller: str, action: str,
                               rule: str = "allow") -> None:
        """Set one permission of the API key, e.g.
        ``controller='api\\admin\\finance\\Payments'``, ``action='index'``."""
        if rule not in ("allow", "deny"):
            raise ValueError(f"rule must be 'allow' or 'deny', not {rule!r}")
        self.run("set-api-key-permission", {"id": _id(key_id), "controller": controller,
                                            "action": action, "rule": rule})

    # -- additional fields and settings ----------------------------------------

    def add_or_get_additional_field(self, main_module: str, name: str, title: str, type: str,
                                    required: bool = False, is_add: bool = False) -> str:
        """Create the additional field ``name`` of ``main_module`` unless it exists; returns
        what the CLI printed (the install fails when it prints nothing)."""
        return self.run("add-or-get-additional-field", {
            "main_module": main_module, "name": name, "title": title, "type": type,
            "required": "1" if required else "0", "is_add": "1" if is_add else "0"})

    def config_set(self, addon: str, key: str, value: str) -> None:
        """Store ``key = value`` in the module config of ``addon`` (its module name)."""
        self.run("config-set", {"addon": addon, "key": key, "value": str(value)},
                 secret_input=True)

    # -- registration steps (only when :meth:`has_subcommand` lists them) -------

    def add_or_update_entry_point(self, module: str, name: str,
                                  fields: Mapping[str, object]) -> int:
        """Create or update the entry point ``name`` of ``module``; returns its id."""
        options = {"module": module, "name": name}
        options.update({k: _option_value(v) for k, v in fields.items()
                        if k not in ("module", "name")})
        answer = self.run("add-or-update-entry-point", options)
        if not answer.isdigit():
            raise AddonCliError(f"{self._name('add-or-update-entry-point')} printed {answer!r}, "
                                "not the id of an entry point", "add-or-update-entry-point")
        return int(answer)

    def delete_entry_point(self, module: str, name: str) -> None:
        """Remove the entry point ``name`` of ``module`` (nothing when there is none)."""
        self.run("delete-entry-point", {"module": module, "name": name}, want_output=False)

    def add_or_get_payment_account(self, title: str, labels: Mapping[str, str]) -> int:
        """The id of the payment-account definition titled ``title``, created with the
        field labels ``{"field_1": "Token", ...}`` when there is none."""
        options = {"title": title, **{k: str(v) for k, v in labels.items()}}
        answer = self.run("add-or-get-payment-account", options)
        if not answer.isdigit():
            raise AddonCliError(f"{self._name('add-or-get-payment-account')} printed "
                                f"{answer!r}, not the id of a payment account",
                                "add-or-get-payment-account")
        return int(answer)

    # -- running ---------------------------------------------------------------

    def run(self, command: str, options: Mapping[str, str], *, secret_output: bool = False,
            secret_input: bool = False, want_output: Optional[bool] = None) -> str:
        """Run ``addon <command> --name=value ...`` and return the last non-empty line it
        printed. ``want_output`` (default: for the ``add-or-get-*`` and ``get-*``
        commands) makes an empty answer an error. ``secret_output`` keeps what it printed
        out of every message; ``secret_input`` keeps the option values out of them."""
        argv = [command] + [f"--{name}={value}" for name, value in options.items()]
        done = self._exec(argv)
        shown = "" if secret_input else " " + " ".join(
            f"--{n}={_shorten(str(v), 60)}" for n, v in options.items())
        if done.returncode != 0:
            detail = _shorten(done.stderr.strip() or ("" if secret_output else done.stdout.strip()),
                              _QUOTE) or "no message"
            raise AddonCliError(f"{self._name(command)}{shown} failed with exit status "
                                f"{done.returncode}: {detail}", command, done.returncode)
        lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        answer = lines[-1] if lines else ""
        if want_output is None:
            want_output = command.startswith(("add-or-get-", "get-", "add-or-update-"))
        if want_output and not answer:
            raise AddonCliError(f"{self._name(command)}{shown} printed nothing", command,
                                done.returncode)
        return answer

    def _exec(self, argv: Sequence[str]) -> subprocess.CompletedProcess:
        command = argv[0] if argv else "(usage)"
        try:
            return self._runner([self.path, *argv], capture_output=True, text=True,
                                timeout=self.timeout, env=self._env, stdin=subprocess.DEVNULL,
                                check=False)
        except FileNotFoundError:
            raise AddonCliError(f"the Splynx add-on CLI {self.path} does not exist",
                                command) from None
        except PermissionError:
            raise AddonCliError(f"the Splynx add-on CLI {self.path} may not be run by this user",
                                command) from None
        except subprocess.TimeoutExpired:
            raise AddonCliError(f"{self._name(command)} did not finish within "
                                f"{self.timeout:g} s", command) from None
        except OSError as exc:
            raise AddonCliError(f"cannot run {self.path}: {exc.strerror or exc}", command) from None

    def _name(self, command: str) -> str:
        return f"`{os.path.basename(self.path)} {command}`"


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def _id(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"not an id: {value!r}")
    return str(value)


def _option_value(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
