"""``splynx-ippay doctor``: check everything the add-on needs and say plainly what is wrong."""

from dataclasses import dataclass

from ..config import ConfigError, load_config
from ..splynx import (SplynxAuthError, SplynxError, SplynxForbiddenError, SplynxNotFoundError,
                      SplynxUnavailableError)

#: What the add-on reads or writes in Splynx, and a harmless call proving the key may.
PERMISSION_PROBES = (
    ("read customers", "GET", "admin/customers/customer", {"limit": 1}),
    ("read invoices", "GET", "admin/finance/invoices", {"limit": 1}),
    ("read payments", "GET", "admin/finance/payments", {"limit": 1}),
    ("read payment methods", "GET", "admin/finance/payment-methods", None),
    # Payments are logged in payment statements (statements.py): the key needs
    # BankStatements (index, view, add) and BankStatementsRecords (index, view, add, update).
    ("read payment statements", "GET", "admin/finance/bank-statements", {"limit": 1}),
    ("read payment statement records", "GET", "admin/finance/bank-statements-records",
     {"limit": 1}),
    ("read the add-on's module config", "GET", "admin/config/config",
     {"module": "add-on", "path": "splynx_ippay_addon"}),
)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False


def run_checks(config_path=None, settings=None):
    """Every check in order; later checks that depend on a failed one are skipped."""
    checks = []
    if settings is None:
        try:
            settings = load_config(config_path)
        except ConfigError as exc:
            return [Check("configuration", False, f"config.ini is not valid: {exc}")]
    checks.append(Check("configuration", True, f"read {settings.get('CONFIG_PATH', '(given)')}"))
    if not settings.get("SPLYNX_API_KEY") or not settings.get("SPLYNX_API_SECRET"):
        checks.append(Check("configuration", False, "[splynx] api_key or api_secret is empty: "
                            "run `splynx-ippay register` or fill them in config.ini"))
    from .. import db

    try:
        revision = db.current_revision(settings["DATABASE_URL"])
        head = "0003"
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

    from . import build_addon
    from .staff_settings import effective_gateway

    addon = build_addon(settings, pool_size=2)
    splynx_ok = False
    try:
        addon.splynx.check_api()
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
        for label, method, path, params in PERMISSION_PROBES:
            try:
                addon.splynx.request(method, path, params=params)
                checks.append(Check(f"permission: {label}", True, "allowed"))
            except SplynxForbiddenError:
                checks.append(Check(f"permission: {label}", False, "the API key may not "
                                    f"{label}: grant it in Administration → API keys"))
            except SplynxNotFoundError:
                checks.append(Check(f"permission: {label}", False, "not found: the add-on is "
                                    "not registered; run `splynx-ippay register`"))
            except SplynxError as exc:
                checks.append(Check(f"permission: {label}", False, str(exc)))
    values = addon.module_settings.get()
    url, terminal, source = effective_gateway(values, settings)
    try:
        result = addon.gateway.ping()
        if result.approved:
            checks.append(Check("gateway", True, f"{url} answers PING for terminal {terminal} "
                                f"(from {source})"))
        else:
            checks.append(Check("gateway", False, f"{url} refused terminal {terminal} "
                                f"({result.action_code} {result.response_text} "
                                f"{result.err_msg or ''}): wrong Terminal ID, or this server's "
                                "IP address is not whitelisted at IPpay"))
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("gateway", False, f"{url} did not answer PING: {exc}"))
    return checks
