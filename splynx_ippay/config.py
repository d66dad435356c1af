"""Bootstrap settings: where Splynx is, the API key, the gateway, the database.

They live in ``/etc/splynx-ippay/config.ini`` (path overridable by ``SPLYNX_IPPAY_CONFIG``)
and, beside it, ``secrets.ini`` written by the package's postinst (generated secrets are kept
out of the conffile so that dpkg never asks about them). Every key may be overridden by an
environment variable ``SPLYNX_IPPAY_<SECTION>_<KEY>``, e.g. ``SPLYNX_IPPAY_IPPAY_URL``.

The result is a flat mapping of upper-case names (``SPLYNX_URL``, ``IPPAY_TERMINAL_ID`` …)
ready for ``app.config``. An unknown key warns; an invalid value raises
:class:`ConfigError` naming the key, so that start-up stops with a message an admin can act on.

This module depends on the standard library only: the CLI and maintainer scripts use it.
"""

import configparser
import os
import re
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import urlsplit

DEFAULT_PATH = "/etc/splynx-ippay/config.ini"
SECRETS_NAME = "secrets.ini"
ENV_PREFIX = "SPLYNX_IPPAY_"


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the key and says why."""


class ConfigWarning(UserWarning):
    """A setting was given that the add-on does not know (probably a typo)."""


def _url(value):
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// address")
    return value.rstrip("/")


def _text(value):
    return value.strip()


#: The IPpay endpoints a terminal can be on (ippay-protocol §1). Only these two are offered
#: on the settings page; another endpoint (a staging gateway, the sandbox simulator) can be
#: named only in config.ini, by root.
GATEWAY_URLS = {
    "test": "https://testgtwy.ippay.com/ippay",
    "live": "https://gtwy.ippay.com/ippay",
}

#: The languages of the customer pages; each but English has a gettext catalogue in
#: splynx_ippay/translations/.
LANGUAGES = {"en": "English", "es": "Español"}

_TERMINAL_ID = re.compile(r"[A-Za-z0-9_-]{1,32}", re.ASCII)


def terminal_id_problem(value):
    """Why ``value`` cannot be an IPpay Terminal ID, or None (the one rule, used by
    config.ini and the settings page alike)."""
    if not value:
        return "Enter the Terminal ID assigned by IPpay."
    if not _TERMINAL_ID.fullmatch(value):
        return "A Terminal ID is 1 to 32 letters or digits ('-' and '_' too), as assigned by IPpay."
    return None


def _terminal_id(value):
    value = value.strip()
    problem = terminal_id_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def is_loopback_host(host):
    """True for ``localhost`` and loopback addresses."""
    import ipaddress

    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def gateway_url_problem(url):
    """Why ``url`` cannot be the gateway endpoint of config.ini, or None.

    IPpay's two endpoints always can. Any other must be https, without credentials; plain
    http only on a loopback host (the sandbox simulator, a local TLS proxy), where nothing
    crosses a network.
    """
    if url in GATEWAY_URLS.values():
        return None
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// address such as https://gateway.example/ippay"
    if parts.username or parts.password:
        return "may not contain a user name or password"
    if parts.scheme != "https" and not is_loopback_host(parts.hostname):
        return "must use https (plain http only on this machine, 127.0.0.1)"
    return None


def _gateway_url(value):
    value = value.strip().rstrip("/")
    if value in GATEWAY_URLS:
        return GATEWAY_URLS[value]
    problem = gateway_url_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _path(value):
    return value.strip()


def _cookie_name(value):
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value.strip()):
        raise ValueError("must be a cookie name (letters, digits, '_', '-', '.')")
    return value.strip()


def _database_url(value):
    if not re.match(r"^[a-z][a-z0-9+]*://", value.strip()):
        raise ValueError("must be a database URL such as sqlite:////var/lib/splynx-ippay/ippay.db")
    return value.strip()


def _seconds(value):
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not 0 < number <= 600:
        raise ValueError("must be a number of seconds between 0 and 600")
    return number


def _lease(value):
    # A worker beats every 2 s (services/charge_runs/worker.py): a shorter lease would take
    # a busy but living worker for dead.
    number = _seconds(value)
    if number < 5:
        raise ValueError("must be at least 5 seconds (a worker's heartbeat comes every 2 s)")
    return number


def _log_level(value):
    value = value.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
    return value


def _mail_host(value):
    value = value.strip()
    if not re.fullmatch(r"[A-Za-z0-9.:_\[\]-]{1,255}", value):
        raise ValueError("must be the host name or address of the mail relay, such as localhost")
    return value


def _port(value):
    try:
        number = int(value.strip())
    except ValueError:
        number = 0
    if not 0 < number < 65536:
        raise ValueError("must be a port number from 1 to 65535")
    return number


#: ``[mail] starttls``: never; when the relay offers it; or always (else nothing is sent).
STARTTLS_CHOICES = ("no", "yes", "required")


def _starttls(value):
    value = value.strip().lower()
    if value not in STARTTLS_CHOICES:
        raise ValueError("must be no, yes (when the relay offers it) or required")
    return value


def _mailbox(value):
    """An e-mail address, optionally with a display name (``Billing <billing@isp.example>``),
    or empty."""
    from email.utils import parseaddr

    value = value.strip()
    if not value:
        return ""
    _name, address = parseaddr(value)
    if ("\n" in value or "\r" in value or not re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+", address)):
        raise ValueError("must be an e-mail address such as billing@isp.example, optionally "
                         "with a name: Billing <billing@isp.example>")
    return value


@dataclass(frozen=True)
class Setting:
    """One key of config.ini: its section, name, default and parser."""

    section: str
    key: str
    default: str
    parse: Callable[[str], object]
    help: str

    @property
    def name(self):
        return f"{self.section}_{self.key}".upper()


#: Every setting the add-on reads, in the order config.ini documents them.
SETTINGS = (
    Setting("splynx", "url", "http://127.0.0.1", _url,
            "Address of Splynx as the add-on reaches it (the API is under /api/2.0/)."),
    Setting("splynx", "api_key", "", _text, "API key the add-on uses (created at registration)."),
    Setting("splynx", "api_secret", "", _text, "Secret of that API key."),
    Setting("splynx", "session_cookie", "PHPSESSID", _cookie_name,
            "Name of Splynx's session cookie, exchanged for the logged-in user's identity."),
    Setting("splynx", "timeout", "20", _seconds, "Seconds to wait for a Splynx API answer."),
    Setting("splynx", "session_timeout", "3", _seconds,
            "Seconds to wait for Splynx to say who a browser session belongs to."),
    Setting("splynx", "addon_cli", "/var/www/splynx/system/script/addon", _path,
            "Splynx's local add-on command, used at registration to create the API key."),
    Setting("splynx", "nonce_dir", "/run/splynx-ippay", _path,
            "Directory of the lock file that keeps API nonces unique across processes."),
    Setting("ippay", "url", "test", _gateway_url,
            "IPpay gateway: test or live chooses IPpay's endpoint (the settings page may "
            "switch between them); an https address is a custom endpoint that stays fixed "
            "whatever the settings page says."),
    Setting("ippay", "terminal_id", "TESTTERMINAL", _terminal_id, "Terminal ID assigned by IPpay."),
    Setting("ippay", "connect_timeout", "10", _seconds, "Seconds to wait for a connection."),
    Setting("ippay", "read_timeout", "45", _seconds,
            "Seconds to wait for the gateway's answer; past it the outcome is settled by ENQ."),
    Setting("database", "url", "sqlite:////var/lib/splynx-ippay/splynx-ippay.db", _database_url,
            "SQLAlchemy URL of the add-on's own database (SQLite, MariaDB or PostgreSQL)."),
    Setting("web", "secret_key", "", _text,
            "Secret that signs the add-on's form tokens (generated by the package)."),
    Setting("web", "log_level", "INFO", _log_level, "Logging level of the add-on."),
    Setting("mail", "host", "localhost", _mail_host,
            "Mail relay the add-on's e-mails go to (SMTP; docs/messages.md)."),
    Setting("mail", "port", "25", _port, "Port of the mail relay (25, or 587 for submission)."),
    Setting("mail", "starttls", "no", _starttls,
            "Encrypt with STARTTLS: no, yes (when the relay offers it) or required (nothing "
            "is sent to a relay that does not offer it)."),
    Setting("mail", "username", "", _text,
            "User name for SMTP AUTH (empty: no login). A password is sent only over "
            "STARTTLS, or to a relay on this machine."),
    Setting("mail", "password", "", _text, "Password for SMTP AUTH (keep it in secrets.ini)."),
    Setting("mail", "ca_file", "", _path,
            "CA certificates (PEM) that sign the relay's certificate, when it is not signed "
            "by one the system trusts."),
    Setting("mail", "from", "", _mailbox,
            "From address of every e-mail; empty: the e-mail address in Splynx's company "
            "information of the customer's partner."),
    Setting("mail", "reply_to", "", _mailbox,
            "Reply-To address; empty: the partner's company e-mail when it is not the From."),
    Setting("mail", "timeout", "10", _seconds, "Seconds to wait for the mail relay."),
    Setting("mail", "templates", "/etc/splynx-ippay/mail", _path,
            "Directory of the admin's own mail templates (<language>/<message>.txt and "
            ".html), used instead of the packaged ones of the same name."),
    Setting("worker", "lease", "60", _lease,
            "Seconds a charge worker on another host may go without a heartbeat before the "
            "others take it for dead and finish the items it held (by ENQ or posting, never "
            "by a second SALE)."),
    Setting("worker", "alarm_after", "60", _seconds,
            "Seconds a queued or running charge run may go without any worker working on it "
            "before its page warns that no worker seems to be running."),
)

_BY_SECTION_KEY = {(s.section, s.key): s for s in SETTINGS}
_BY_NAME = {s.name: s for s in SETTINGS}


def defaults():
    """The parsed default value of every setting, by upper-case name."""
    return {s.name: s.parse(s.default) for s in SETTINGS}


def _parse(setting, raw, origin):
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"[{setting.section}] {setting.key} ({origin}): {exc} (got {raw!r})") from None


def _read_files(paths):
    """Yield (setting, raw value, origin) from each existing ini file, in order."""
    for path in paths:
        if not os.path.exists(path):
            continue
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle)
        except (OSError, configparser.Error) as exc:
            raise ConfigError(f"{path}: cannot be read: {exc}") from None
        for section in parser.sections():
            for key, raw in parser.items(section):
                setting = _BY_SECTION_KEY.get((section, key))
                if setting is None:
                    warnings.warn(f"{path}: unknown setting [{section}] {key} is ignored",
                                  ConfigWarning, stacklevel=3)
                    continue
                yield setting, raw, path


def _read_environment(environ):
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        setting = _BY_NAME.get(name[len(ENV_PREFIX):])
        if setting is None:
            warnings.warn(f"unknown setting in environment variable {name} is ignored",
                          ConfigWarning, stacklevel=3)
            continue
        yield setting, raw, f"environment {name}"


def load_config(path=None, environ=None):
    """Read config.ini, secrets.ini beside it, then the environment; return the settings.

    ``path`` defaults to ``$SPLYNX_IPPAY_CONFIG`` or ``/etc/splynx-ippay/config.ini``.
    Raises :class:`ConfigError` naming the first invalid key.
    """
    environ = os.environ if environ is None else environ
    path = path or environ.get(ENV_PREFIX + "CONFIG") or DEFAULT_PATH
    values = defaults()
    secrets_path = os.path.join(os.path.dirname(path), SECRETS_NAME)
    for setting, raw, origin in _read_files([path, secrets_path]):
        values[setting.name] = _parse(setting, raw, origin)
    for setting, raw, origin in _read_environment(environ):
        values[setting.name] = _parse(setting, raw, origin)
    values["CONFIG_PATH"] = path
    return values


def store_secrets(config_path, section, values):
    """Write ``values`` into ``[section]`` of secrets.ini beside ``config_path`` (keeping
    its other keys), atomically and readable by the file's group only (root:splynx-ippay
    0640 as the package made it). Used by ``splynx-ippay register`` as root."""
    import tempfile

    path = os.path.join(os.path.dirname(config_path), SECRETS_NAME)
    parser = configparser.ConfigParser(interpolation=None)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
        owner = os.stat(path)
    else:
        owner = None
    if not parser.has_section(section):
        parser.add_section(section)
    for key, value in values.items():
        parser.set(section, key, str(value))
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".secrets.ini.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("# Written by splynx-ippay (register, the package's postinst). "
                         "Read after config.ini; removed on purge.\n")
            parser.write(handle)
        os.chmod(temporary, 0o640)
        if owner is not None:
            os.chown(temporary, owner.st_uid, owner.st_gid)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


def validate(overrides: Mapping):
    """Defaults updated by ``overrides`` (upper-case names), each known value parsed.

    Used by ``create_app(config)`` in tests and tools that do not read /etc. Values that
    are already parsed (not strings) are taken as they are; unknown names pass through,
    as Flask settings do.
    """
    values = defaults()
    for name, value in overrides.items():
        setting = _BY_NAME.get(name)
        if setting is not None and isinstance(value, str):
            value = _parse(setting, value, "settings")
        values[name] = value
    return values
