"""The simulator's switches: one table of defaults, read from the environment and
validated on every change.

Most switches exist because ippay-protocol.md marks the behaviour as an inference
([I]): the real gateway's choice is unknown, so tests must be able to try both.
"""

import json
import os
import threading

from .returns import REASONS

#: Every switch with its default. The type of the default is the type of the switch.
DEFAULTS = {
    # §7: TESTTERMINAL is the test gateway's terminal; others get the §5.4 error.
    "terminals": ["TESTTERMINAL"],
    # §5.4/§10 [S]/[J]: an unknown terminal gets an error reply, a blank one an empty body.
    "unknown_terminal": "error",
    "blank_terminal": "empty",
    # §3/§11: the layout of error replies is unknown. "actioncode" answers
    # ActionCode 900 + ResponseText DECLINED + ErrMsg; "errmsg_only" answers ErrMsg alone.
    "error_format": "actioncode",
    # §8 [I]: a reused TransactionID on a new originating transaction.
    "duplicate_id": "reject",
    # §8 [S]: REVERSEAUTH was not enabled on the test terminal as of 2014.
    "reverseauth_enabled": True,
    # §8 [J]: JetPay voids authorisations with VOID; §10 limits VOID to SALE/CAPT/CREDIT.
    "void_authonly": False,
    # §7/§10 [I]: decline an expired card with 054 (by the simulated clock). On by default:
    # every issuer declines an expired card, and a client that copes with the strict
    # answer copes with the lenient one; the real test gateway's choice is unknown (§11).
    "decline_expired": True,
    # §10: CVV2 "000" is declined with 806 "invalid CVV2" (and CVV2 result N). On by default
    # for the same reason; off, "000" is approved with CVV2 result N (an issuer that approves
    # on a mismatch and leaves the decision to the merchant).
    "decline_cvv_000": True,
    # §5.3/§7: the CVV2 result of an approval that carried a CVV2: P (not processed, what the
    # test gateway answered in BOP's recorded runs) or M (match, as a live issuer answers).
    "cvv2_result": "P",
    # §2.2 row 10: a CVV2 that is not 3-4 digits. 900 + ErrMsg "Invalid CVV2." (default: §10
    # answers validation errors 900, and IPpay answered 900 where old JetPay hosts answered
    # 912 for a bad card number, §7) or 933 "Invalid CVV2" (the JetPay code, §5.2).
    "cvv_format_error": "900",
    # §6/§11: whether TOKENIZE checks the CVV2 it is sent (UCRM sends it) is unknown. When on,
    # TOKENIZE with CVV2 "000" is declined with 806 like a SALE.
    "tokenize_checks_cvv": False,
    # §7 [I]: the types the penny-value table (and the two overrides) decide. Refunds,
    # forced sales and ACH are not authorised by an issuer, so they are not in it by default.
    "cents_rule_types": ["SALE", "AUTHONLY"],
    # §7 [I]: CHECK is decided by the same penny table (cents 51 -> 051 insufficient funds,
    # 52 -> 052 no checking account ...), as IPpay's ACH scrutiny may decline at once.
    "ach_cents_rule": True,
    # Issue 12 [I]: an accepted CHECK of exactly $9NN.00 is returned RNN (90100 -> R01,
    # 91000 -> R10) ``ach_return_days`` simulated days later.
    "ach_return_trigger": True,
    "ach_return_days": 2,
    # The returns report's amount column: "cents" (amount_cents, integer) or "dollars"
    # (amount, "12.50"), since IPpay's real report format is not public.
    "ach_returns_amount": "cents",
    # [I] Test accounts whose accepted CHECKs are returned: account number (4 digits: its last
    # four; more: the whole number) -> {"code": "R01", "after_days": 3} (after_days defaults
    # to ach_return_days). Set through /_sim/config or IPPAY_SIM_ACH_RETURNS (JSON).
    "ach_returns": {},
    # Sleep this long on every gateway call (benchmarks).
    "latency_ms": 0,
    # Key of the HMAC that derives tokens (§6); fixed so tokens survive restarts.
    "token_key": "ippay-sim",
}

CHOICES = {
    "unknown_terminal": ("error", "empty"),
    "blank_terminal": ("empty", "error"),
    "error_format": ("actioncode", "errmsg_only"),
    "duplicate_id": ("reject", "replay"),
    "cvv2_result": ("P", "M"),
    "cvv_format_error": ("900", "933"),
    "ach_returns_amount": ("cents", "dollars"),
}

#: Types that may be listed in ``cents_rule_types``.
DECIDABLE_TYPES = ("SALE", "AUTHONLY", "FORCE", "CREDIT")

ENV_PREFIX = "IPPAY_SIM_"


class ConfigError(ValueError):
    """A switch name or value the simulator does not accept."""


def _coerce(key, value):
    """Return ``value`` checked and converted to the type of ``DEFAULTS[key]``."""
    if key not in DEFAULTS:
        raise ConfigError(f"unknown switch: {key}")
    default = DEFAULTS[key]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{key} must be a non-negative integer")
    elif isinstance(default, dict):
        value = _account_returns(key, value)
    elif isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of strings")
        value = list(value)
    elif not isinstance(value, str):
        raise ConfigError(f"{key} must be a string")
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{key} must be one of {', '.join(CHOICES[key])}")
    if key == "cents_rule_types" and not set(value) <= set(DECIDABLE_TYPES):
        raise ConfigError(f"cents_rule_types may only list {', '.join(DECIDABLE_TYPES)}")
    return value


def _account_returns(key, value):
    """``ach_returns`` checked: ``{account: {"code": Rnn, "after_days"?: n}}``, each account
    4 to 17 ASCII digits."""
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be an object of account number -> return")
    checked = {}
    for account, spec in value.items():
        if not (account.isascii() and account.isdigit() and 4 <= len(account) <= 17):
            raise ConfigError(f"{key}: {account!r} is not an account number (4 to 17 digits)")
        if not isinstance(spec, dict) or spec.get("code") not in REASONS \
                or not spec.keys() <= {"code", "after_days"}:
            raise ConfigError(f"{key}[{account}] must be {{\"code\": one of "
                              f"{', '.join(REASONS)}, \"after_days\"?: n}}")
        days = spec.get("after_days", None)
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 0):
            raise ConfigError(f"{key}[{account}].after_days must be a non-negative integer")
        checked[account] = dict(spec)
    return checked


def validate(updates):
    """Return a checked copy of the ``updates`` mapping, or raise ConfigError."""
    if not isinstance(updates, dict):
        raise ConfigError("the config must be a JSON object")
    return {key: _coerce(key, value) for key, value in updates.items()}


def from_environment(environ=None):
    """Read ``IPPAY_SIM_<SWITCH>`` variables (e.g. ``IPPAY_SIM_DUPLICATE_ID=replay``).

    Lists are comma-separated; booleans accept 1/0, true/false, yes/no, on/off.
    """
    environ = os.environ if environ is None else environ
    found = {}
    for key, default in DEFAULTS.items():
        raw = environ.get(ENV_PREFIX + key.upper())
        if raw is None:
            continue
        raw = raw.strip()
        if isinstance(default, bool):
            lowered = raw.lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ConfigError(f"{ENV_PREFIX + key.upper()} must be a boolean")
            value = lowered in ("1", "true", "yes", "on")
        elif isinstance(default, int):
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX + key.upper()} must be an integer") from None
        elif isinstance(default, list):
            value = [item.strip() for item in raw.split(",") if item.strip()]
        elif isinstance(default, dict):
            try:
                value = json.loads(raw)
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX + key.upper()} must be JSON") from None
        else:
            value = raw
        found[key] = value
    return validate(found)


def _copy(value):
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


class Settings:
    """The live switches, shared by all request threads.

    ``initial`` is what ``reset`` returns to: defaults, then the environment, then
    the mapping given to ``create_app``.
    """

    def __init__(self, overrides=None):
        self._lock = threading.Lock()
        self._initial = {**DEFAULTS, **from_environment(), **validate(overrides or {})}
        self._current = dict(self._initial)

    def snapshot(self):
        """A consistent copy of every switch, safe to read without the lock."""
        with self._lock:
            return {k: _copy(v) for k, v in self._current.items()}

    def update(self, updates):
        """Validate and apply some switches; return the full new configuration."""
        checked = validate(updates)
        with self._lock:
            self._current.update(checked)
        return self.snapshot()

    def reset(self):
        """Return every switch to its start-up value."""
        with self._lock:
            self._current = dict(self._initial)
