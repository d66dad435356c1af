"""What the stand-in for Splynx's local add-on CLI does to the emulator's store
(``sandbox/splynx/addon_cli.py`` posts each run to ``POST /_sandbox/addon-cli``).

The sub-commands and their output follow splynx-platform §3.2 and a public add-on's
``InstallController`` (:data:`BASE`); :data:`REGISTRATION` are the stand-in's own [decision]
sub-commands for the steps the API does not document, offered only when the stand-in is
switched to list them (README "The add-on CLI stand-in").
"""

from .errors import ApiError


class CommandFailed(Exception):
    """The sub-command failed: the stand-in prints ``message`` on stderr and exits 1."""


def _option(options, name, required=True):
    value = options.get(name)
    if value is None or (required and str(value).strip() == ""):
        if required:
            raise CommandFailed(f"missing option --{name}")
        return None
    return str(value)


def _key(store, options):
    text = _option(options, "id")
    if not text.isdigit():
        raise CommandFailed(f"--id must be the numeric id of an API key, not {text!r}")
    record = store.api_key_by_id(int(text))
    if record is None:
        raise CommandFailed(f"API key {text} not found")
    return record


def add_or_get_api_key(store, options):
    """Prints the numeric id of the key titled ``--title`` (created if need be)."""
    return str(store.add_or_get_api_key(_option(options, "title"))["id"])


def get_api_key_and_secret(store, options):
    """Prints ``key,secret``."""
    record = _key(store, options)
    return f"{record['key']},{record['secret']}"


def api_key_white_list(store, options):
    """Allows the key from the listed addresses (127.0.0.1 stays allowed)."""
    record = _key(store, options)
    addresses = [a.strip() for a in _option(options, "list").split(",") if a.strip()]
    record["allowed_ips"] = sorted(set(addresses) | {"127.0.0.1"})
    return ""


def set_api_key_permission(store, options):
    """``--rule=allow`` grants, ``deny`` withdraws one action of one controller."""
    record = _key(store, options)
    controller, action = _option(options, "controller"), _option(options, "action")
    rule = _option(options, "rule")
    if rule not in ("allow", "deny"):
        raise CommandFailed(f"--rule must be allow or deny, not {rule!r}")
    permissions = record["permissions"]
    if permissions is None:  # a key with every right: deny makes the list explicit
        if rule == "allow":
            return ""
        from .auth import CONTROLLERS
        permissions = record["permissions"] = {
            c: ["index", "view", "add", "update", "delete"] for c in CONTROLLERS}
    actions = set(permissions.get(controller, ()))
    actions = actions | {action} if rule == "allow" else actions - {action}
    permissions[controller] = sorted(actions)
    return ""


def add_or_get_additional_field(store, options):
    """Prints the field's name (a public add-on fails its install when nothing is printed)."""
    field = store.add_or_get_additional_field(
        _option(options, "main_module"), _option(options, "name"), _option(options, "title"),
        _option(options, "type"), _option(options, "required", False) in ("1", "true"),
        _option(options, "is_add", False) in ("1", "true"))
    return field["name"]


def config_set(store, options):
    """Stores one value of the add-on's module config (the module need not exist yet:
    an install sets its key and secret before it registers the module)."""
    values = store.config_values.setdefault(("add-on", _option(options, "addon"), None), {})
    values[_option(options, "key")] = _option(options, "value", required=False) or ""
    return ""


def add_or_update_entry_point(store, options):
    """Prints the id of the entry point ``--name`` of ``--module``, created or updated
    with the other options (``--partners=1,2``; ``--enabled=0|1``)."""
    from .api import _entry_point_fields, _create_entry_point

    data = {k: v for k, v in options.items()}
    for name in ("partners", "location_geo"):
        if isinstance(data.get(name), str):
            data[name] = [v for v in data[name].split(",") if v]
    _option(options, "module")
    _option(options, "name")
    current = next((e for e in store.entry_points.rows.values()
                    if e["module"] == data["module"] and e["name"] == data["name"]), None)
    if current is None:
        return str(_create_entry_point(store, data, None)["id"])
    current.update(_entry_point_fields(store, data, current))
    return str(current["id"])


def delete_entry_point(store, options):
    """Removes the entry point ``--name`` of ``--module`` if there is one."""
    module, name = _option(options, "module"), _option(options, "name")
    for point in [e for e in store.entry_points.rows.values()
                  if e["module"] == module and e["name"] == name]:
        store.entry_points.delete(point["id"])
    return ""


def add_or_get_payment_account(store, options):
    """Prints the id of the payment-account definition ``--title`` (created with the
    ``--field_N`` labels if need be)."""
    title = _option(options, "title")
    found = next((d for d in store.payment_account_definitions.all()
                  if d["title"].strip().lower() == title.strip().lower()), None)
    if found is None:
        labels = {k: str(v) for k, v in options.items()
                  if k.startswith("field_") and k[6:].isdigit() and 1 <= int(k[6:]) <= 10}
        found = store.add_payment_account_definition({"title": title, **labels})
    return str(found["id"])


BASE = {
    "add-or-get-api-key": add_or_get_api_key,
    "get-api-key-and-secret": get_api_key_and_secret,
    "api-key-white-list": api_key_white_list,
    "set-api-key-permission": set_api_key_permission,
    "add-or-get-additional-field": add_or_get_additional_field,
    "config-set": config_set,
}
REGISTRATION = {
    "add-or-update-entry-point": add_or_update_entry_point,
    "delete-entry-point": delete_entry_point,
    "add-or-get-payment-account": add_or_get_payment_account,
}


def run(store, command, options):
    """The output of ``command`` (a line, possibly empty); :class:`CommandFailed` else."""
    handler = BASE.get(command) or REGISTRATION.get(command)
    if handler is None:
        raise CommandFailed(f"unknown sub-command {command!r}")
    try:
        return handler(store, options)
    except ApiError as exc:
        raise CommandFailed(exc.message) from None
