"""``splynx-ippay doctor``: check everything the add-on needs and say plainly what is wrong."""

from dataclasses import dataclass

from ..config import ConfigError, load_config
from ..splynx import (SplynxAuthError, SplynxError, SplynxForbiddenError, SplynxNotFoundError,
                      SplynxUnavailableError)

#: What the add-on reads in Splynx (splynx.client.READ_PROBES names), each proven by a
#: harmless read; registration grants the key exactly what it needs (API_PERMISSIONS).
PERMISSION_PROBES = ("customers", "invoices", "proformas", "payments", "payment methods",
                     "transactions", "transaction categories", "payment statements",
                     "payment statement records", "payment accounts", "administrators",
                     "partners")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False


def run_checks(config_path=None, settings=None, context_factory=None):
    """Every check in order; later checks that depend on a failed one are skipped.

    ``context_factory(settings)`` builds the context to check with (the composition root's
    ``build_context``; the CLI passes it, services never import it).
    """
    import os

    checks = []
    if settings is None:
        try:
            settings = load_config(config_path)
        except ConfigError as exc:
            return [Check("configuration", False, f"config.ini is not valid: {exc}")]
    path = settings.get("CONFIG_PATH")
    if path and os.path.exists(path):
        checks.append(Check("configuration", True, f"read {path}"))
    elif path:
        checks.append(Check("configuration", True, f"{path} does not exist: the defaults and "
                            "the SPLYNX_IPPAY_* environment apply", warning=True))
    else:
        checks.append(Check("configuration", True, "settings given by the caller"))
    if not settings.get("SPLYNX_API_KEY") or not settings.get("SPLYNX_API_SECRET"):
        checks.append(Check("configuration", False, "[splynx] api_key or api_secret is empty: "
                            "run `splynx-ippay register` or fill them in config.ini"))
    from .. import db

    try:
        revision = db.current_revision(settings["DATABASE_URL"])
        head = db.head_revision()
        if revision is None:
            checks.append(Check("database", False, "the database is empty: run "
                                "`splynx-ippay db upgrade`"))
        elif revision < head:
            checks.append(Check("database", False, f"the database is at revision {revision}, "
                                f"the add-on needs {head}: run `splynx-ippay db upgrade`"))
        else:
            checks.append(Check("database", True, f"reachable, at revision {revision}"))
    except Exception as exc:  # noqa: BLE001 - any driver error is the answer here
        checks.append(Check("database", False, f"cannot open {settings['DATABASE_URL']}: {exc}"))

    ctx = context_factory(settings)
    splynx_ok = False
    try:
        ctx.splynx.check_api()
        splynx_ok = True
        checks.append(Check("Splynx API", True, f"{settings['SPLYNX_URL']} accepts the API key"))
    except SplynxAuthError as exc:
        checks.append(Check("Splynx API", False, f"Splynx at {settings['SPLYNX_URL']} refused the "
                            f"API key or secret ({exc}): wrong API key, or the key is disabled "
                            "or not allowed from this address"))
    except SplynxUnavailableError as exc:
        checks.append(Check("Splynx API", False, f"Splynx is down or unreachable at "
                            f"{settings['SPLYNX_URL']}: {exc}"))
    except SplynxError as exc:
        checks.append(Check("Splynx API", False, f"Splynx answered with an error: {exc}"))
    if splynx_ok:
        for label in PERMISSION_PROBES:
            try:
                ctx.splynx.probe_read(label)
                checks.append(Check(f"permission: read {label}", True, "allowed"))
            except SplynxForbiddenError:
                checks.append(Check(f"permission: read {label}", False, "the API key may not "
                                    f"read {label}: grant it in Administration → API keys "
                                    "(or run `splynx-ippay register` as root on the Splynx "
                                    "host)"))
            except SplynxNotFoundError:
                checks.append(Check(f"permission: read {label}", False, "not found: the add-on is "
                                    "not registered; run `splynx-ippay register`"))
            except SplynxError as exc:
                checks.append(Check(f"permission: read {label}", False, str(exc)))
    if not splynx_ok:
        checks.append(Check("gateway", False, "not checked: the gateway settings are read "
                            "from Splynx, which did not accept the add-on (see above)"))
        return checks
    config = ctx.module_settings.current()
    for problem in config.problems:
        checks.append(Check("module settings", False, problem))
    try:
        terminal = ctx.gateways.terminal_for(config.default, config.read_ok)
        client = ctx.gateways.client(terminal)
        result = client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure is the answer here
        checks.append(Check("gateway", False, f"the gateway did not answer PING: {exc}"))
        return checks
    if result.approved:
        checks.append(Check("gateway", True, f"{client.url} answers PING for terminal "
                            f"{terminal.terminal_id}"))
    else:
        checks.append(Check("gateway", False, f"{client.url} refused terminal "
                            f"{terminal.terminal_id} ({result.action_code} "
                            f"{result.response_text} {result.err_msg or ''}): wrong Terminal "
                            "ID, or this server's IP address is not whitelisted at IPpay"))
    return checks
