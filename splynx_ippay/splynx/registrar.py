"""The registration steps Splynx's API blueprint does not document, each behind one adapter.

The blueprint documents entry points as read-only (``GET admin/config/entry-points`` and
``/<id>``) and documents no way to create a payment-account definition (its list is
``GET admin/customers/customer-payment-accounts``). Real add-ons do both from their install
command through Splynx internals no public source shows. So each step is tried in order:

1. **the add-on CLI**, when its usage text lists a sub-command for the step
   (:data:`.addon_cli.REGISTRATION_COMMANDS`);
2. **the API**, with the undocumented ``POST``/``PUT``/``DELETE``; a Splynx that refuses
   them (404, 405, or 403 for a method the key cannot be granted) moves on;
3. **the admin**: the outcome lists, in words, what to enter in *Edit entry points* or
   *Config → Finance → Payment accounts*.

What is already in place is found by the documented ``GET`` first, so each step is
idempotent and says which path it took (docs/interfaces.md, "Registration steps").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .addon_cli import AddonCli, AddonCliError
from .errors import SplynxError

log = logging.getLogger(__name__)

#: Answers of a Splynx that does not offer an undocumented call (or not to this key).
_NOT_OFFERED = (403, 404, 405)

#: How the admin's "Edit entry points" form names the fields (splynx-platform §3.4).
_FORM_LABELS = (("place", "Place"), ("type", "Type"), ("model", "Model"), ("size", "Size"),
                ("root", "Root"), ("location", "Location"), ("title", "Title"),
                ("icon", "Icon"), ("url", "Add-on URL"), ("code", "Code"))


@dataclass(frozen=True)
class StepOutcome:
    """What one step did. ``path`` is ``"none"`` (already in place), ``"cli"``, ``"api"``
    or ``"manual"`` (the admin must do what ``instructions`` say); ``value`` is the id a
    step produced (the payment account's) when known."""

    step: str
    path: str
    changes: Tuple[str, ...] = ()
    instructions: Tuple[str, ...] = ()
    value: Optional[int] = None
    notes: Tuple[str, ...] = field(default=(), compare=False)

    @property
    def done(self) -> bool:
        """Whether Splynx now has what the step wanted."""
        return self.path != "manual"


def _differs(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    def same(a, b):
        if isinstance(b, bool):
            return str(a).lower() in (("1", "true") if b else ("0", "false", ""))
        return str("" if a is None else a) == str(b)
    return any(not same(current.get(k), v) for k, v in wanted.items())


class Registrar:
    """The undocumented registration steps of the add-on ``module`` in Splynx.

    ``cli`` is the add-on CLI (``None`` where Splynx runs on another host).
    """

    def __init__(self, splynx, cli: Optional[AddonCli], *, module: str):
        self.splynx = splynx
        self.cli = cli
        self.module = module

    def _cli_offers(self, command: str) -> bool:
        return self.cli is not None and self.cli.available() and self.cli.has_subcommand(command)

    # -- entry points ----------------------------------------------------------------

    def ensure_entry_points(self, points: Sequence[Mapping[str, Any]]) -> StepOutcome:
        """Create the entry points ``points`` (each a dict with at least ``name``, ``place``,
        ``type``) that Splynx lacks and update those that differ; an admin's choice of
        ``enabled`` is left alone."""
        current = {p.get("name"): p for p in self.splynx.list_entry_points(module=self.module)
                   if p.get("module") == self.module}
        todo: List[Tuple[Dict[str, Any], Optional[Mapping[str, Any]]]] = []
        for point in points:
            wanted = {"module": self.module, "enabled": True, **point}
            existing = current.get(point["name"])
            if existing is None or _differs(existing, {k: v for k, v in wanted.items()
                                                        if k != "enabled"}):
                todo.append((wanted, existing))
        if not todo:
            return StepOutcome("entry points", "none")
        notes: List[str] = []
        if self._cli_offers("add-or-update-entry-point"):
            try:
                changes = []
                for wanted, existing in todo:
                    self.cli.add_or_update_entry_point(self.module, wanted["name"], wanted)
                    changes.append(_change("entry point", wanted["name"], existing))
                return StepOutcome("entry points", "cli", tuple(changes))
            except AddonCliError as exc:
                log.warning("the add-on CLI could not register the entry points: %s", exc)
                notes.append(f"add-on CLI: {exc}")
        changes = []
        for n, (wanted, existing) in enumerate(todo):
            try:
                if existing is None:
                    self.splynx.create_entry_point(wanted)
                else:
                    self.splynx.update_entry_point(existing["id"], wanted)
            except SplynxError as exc:
                if exc.status not in _NOT_OFFERED:
                    raise
                notes.append(f"API: {exc}")
                return StepOutcome("entry points", "manual", tuple(changes),
                                   tuple(self._entry_point_instructions(todo[n:])),
                                   notes=tuple(notes))
            changes.append(_change("entry point", wanted["name"], existing))
        return StepOutcome("entry points", "api", tuple(changes), notes=tuple(notes))

    def remove_entry_points(self) -> StepOutcome:
        """Remove every entry point of the module."""
        points = [p for p in self.splynx.list_entry_points(module=self.module)
                  if p.get("module") == self.module]
        if not points:
            return StepOutcome("entry points", "none")
        notes: List[str] = []
        if self._cli_offers("delete-entry-point"):
            try:
                for point in points:
                    self.cli.delete_entry_point(self.module, point["name"])
                return StepOutcome("entry points", "cli",
                                   tuple(f"entry point {p['name']} removed" for p in points))
            except AddonCliError as exc:
                log.warning("the add-on CLI could not remove the entry points: %s", exc)
                notes.append(f"add-on CLI: {exc}")
        changes = []
        for n, point in enumerate(points):
            try:
                self.splynx.delete_entry_point(point["id"])
            except SplynxError as exc:
                if exc.status not in _NOT_OFFERED:
                    raise
                notes.append(f"API: {exc}")
                left = ", ".join(p["name"] for p in points[n:])
                return StepOutcome("entry points", "manual", tuple(changes), (
                    f"In Splynx, Config → Integrations → Modules list → {self.module} → "
                    f"Edit entry points: delete {left}.",), notes=tuple(notes))
            changes.append(f"entry point {point['name']} removed")
        return StepOutcome("entry points", "api", tuple(changes), notes=tuple(notes))

    def _entry_point_instructions(self, todo) -> List[str]:
        lines = [f"In Splynx, open Config → Integrations → Modules list → {self.module} → "
                 "Edit entry points, and enter:"]
        for wanted, existing in todo:
            verb = "add" if existing is None else "change"
            parts = [f"{label} {wanted[key]}" for key, label in _FORM_LABELS
                     if key in wanted and key != "code" and wanted[key] not in ("", None)]
            line = f"- {verb} {wanted['name']}: " + ", ".join(parts) + ", Enabled"
            if wanted.get("code"):
                line += f"; Code: {wanted['code']}"
            lines.append(line)
        return lines

    # -- the payment-account definition ------------------------------------------------

    def ensure_payment_account(self, title: str, labels: Mapping[str, str]) -> StepOutcome:
        """The payment-account definition titled ``title`` with field labels ``labels``
        (``{"field_1": "Token", ...}``): found, else created; ``value`` is its id."""
        found = self.splynx.find_payment_account_definition(title)
        if found is not None:
            return StepOutcome("payment account", "none", value=found.id)
        notes: List[str] = []
        if self._cli_offers("add-or-get-payment-account"):
            try:
                new_id = self.cli.add_or_get_payment_account(title, labels)
                return StepOutcome("payment account", "cli",
                                   (f"payment account {title} created",), value=new_id)
            except AddonCliError as exc:
                log.warning("the add-on CLI could not create the payment account: %s", exc)
                notes.append(f"add-on CLI: {exc}")
        try:
            new_id = self.splynx.create_payment_account_definition(title, labels)
        except SplynxError as exc:
            if exc.status not in _NOT_OFFERED:
                raise
            notes.append(f"API: {exc}")
            fields = ", ".join(f"Field #{k.split('_', 1)[1]} \"{v}\""
                               for k, v in sorted(labels.items(),
                                                  key=lambda kv: int(kv[0].split("_", 1)[1])))
            return StepOutcome("payment account", "manual", instructions=(
                f"In Splynx, open Config → Finance → Payment accounts → Add: Title \"{title}\""
                + (f", {fields}" if fields else "") + "; then choose it as the add-on's "
                "payment account in its settings.",), notes=tuple(notes))
        return StepOutcome("payment account", "api", (f"payment account {title} created",),
                           value=new_id, notes=tuple(notes))


def _change(kind: str, name: str, existing) -> str:
    return f"{kind} {name} {'created' if existing is None else 'updated'}"
