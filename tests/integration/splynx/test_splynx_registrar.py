"""The steps the API blueprint does not document, through the registration adapter
(splynx/registrar.py) against the emulator and the add-on CLI stand-in: each of its three
paths (the CLI's sub-command, the API's undocumented methods, instructions for the admin),
idempotence, and the CLI's install sequence giving the add-on a working API key."""

import json
import shutil
from pathlib import Path

import pytest
import requests

from sandbox.serve import BackgroundServer
from sandbox.splynx import create_app
from splynx_ippay.splynx import AddonCli, Registrar, SplynxClient, SplynxForbiddenError
from tests.integration.splynx.splynx_helpers import KEY, SECRET, api_log

MODULE = "splynx_ippay_addon"
STAND_IN = Path(__file__).resolve().parents[3] / "sandbox" / "splynx" / "addon_cli.py"
POINTS = [
    {"name": "ippay_credit_card", "place": "portal", "type": "menu_link",
     "root": "controllers\\portal\\FinanceController", "title": "Credit card",
     "icon": "fa-credit-card", "url": "/ippay/cards"},
    {"name": "ippay_pay_invoice", "place": "portal", "type": "action_link", "model": "Invoices",
     "size": "large", "title": "Pay by IPpay", "icon": "fa-credit-card",
     "url": "/ippay/pay-invoice"},
    {"name": "ippay_dashboard", "place": "portal", "type": "code",
     "root": "controllers\\portal\\DashboardController", "location": "before_content",
     "title": "Pay your invoices by card", "code": "<iframe src=\"/ippay/widget\"></iframe>"},
]
LABELS = {"field_1": "Card", "field_2": "Expiry"}


@pytest.fixture
def emu():
    with BackgroundServer(create_app({"strict": True, "undocumented_methods": "refuse"})) as server:
        client = SplynxClient(server.url, KEY, SECRET)
        client.create_module({"name": MODULE, "title": "Splynx Ippay Billing Add-On",
                              "root": "/usr/share/splynx-ippay", "type": "simple"})
        server.client = client
        yield server


def install_cli(tmp_path, emu, registration_commands, url=None):
    """The stand-in installed as Splynx has it, its JSON file beside it."""
    path = tmp_path / "script" / "addon"
    path.parent.mkdir(parents=True)
    shutil.copyfile(STAND_IN, path)
    path.chmod(0o755)
    Path(f"{path}.json").write_text(json.dumps({"url": url or emu.url,
                                                "registration_commands": registration_commands}))
    return AddonCli(str(path))


def allow_undocumented(emu, allowed=True):
    requests.post(f"{emu.url}/_sandbox/settings",
                  json={"undocumented_methods": "allow" if allowed else "refuse"}, timeout=5)


def writes(emu):
    return [(e["method"], e["status"]) for e in api_log(emu, "config/entry-points")
            if e["method"] != "GET"]


def test_entry_points_through_the_cli_when_it_has_the_sub_command(tmp_path, emu):
    registrar = Registrar(emu.client, install_cli(tmp_path, emu, True), module=MODULE)
    outcome = registrar.ensure_entry_points(POINTS)
    assert (outcome.path, outcome.done) == ("cli", True)
    assert outcome.changes == tuple(f"entry point {p['name']} created" for p in POINTS)
    stored = {p.name: p for p in emu.client.find_entry_points(MODULE)}
    assert set(stored) == {p["name"] for p in POINTS}
    assert stored["ippay_pay_invoice"].raw["model"] == "Invoices" and stored["ippay_pay_invoice"].enabled
    assert writes(emu) == []  # no undocumented API call was made
    assert registrar.ensure_entry_points(POINTS).path == "none"
    changed = [dict(POINTS[0], title="Cards")] + POINTS[1:]
    assert registrar.ensure_entry_points(changed).changes == (
        "entry point ippay_credit_card updated",)
    removed = registrar.remove_entry_points()
    assert removed.path == "cli" and emu.client.find_entry_points(MODULE) == []


def test_entry_points_over_the_api_when_the_cli_lacks_the_sub_command(tmp_path, emu):
    allow_undocumented(emu)
    cli = install_cli(tmp_path, emu, False)
    assert cli.has_subcommand("add-or-get-api-key") and not cli.has_subcommand(
        "add-or-update-entry-point")
    registrar = Registrar(emu.client, cli, module=MODULE)
    outcome = registrar.ensure_entry_points(POINTS)
    assert outcome.path == "api" and len(outcome.changes) == 3
    assert writes(emu) == [("POST", 201)] * 3
    # An admin disabled one: registration leaves that alone.
    point_id = next(p.id for p in emu.client.find_entry_points(MODULE) if p.name == "ippay_dashboard")
    emu.client.update_entry_point(point_id, {"enabled": False})
    assert registrar.ensure_entry_points(POINTS).path == "none"
    assert registrar.remove_entry_points().path == "api"
    assert emu.client.find_entry_points(MODULE) == []


def test_instructions_for_the_admin_when_neither_offers_it(tmp_path, emu):
    for cli in (install_cli(tmp_path, emu, False), None):
        outcome = Registrar(emu.client, cli, module=MODULE).ensure_entry_points(POINTS)
        assert (outcome.path, outcome.done, outcome.changes) == ("manual", False, ())
        assert writes(emu)[-1] == ("POST", 405) and "405" in outcome.notes[-1]
        text = "\n".join(outcome.instructions)
        assert f"Modules list → {MODULE} → Edit entry points" in text
        assert ("- add ippay_pay_invoice: Place portal, Type action_link, Model Invoices, Size "
                "large, Title Pay by IPpay, Icon fa-credit-card, Add-on URL /ippay/pay-invoice, "
                "Enabled") in text
        assert 'Code: <iframe src="/ippay/widget"></iframe>' in text
    assert emu.client.find_entry_points(MODULE) == []


def test_a_failing_cli_falls_back_to_the_api(tmp_path, emu):
    allow_undocumented(emu)
    # It lists the sub-command but cannot reach its Splynx (exit status 2).
    cli = install_cli(tmp_path, emu, True, url="http://127.0.0.1:9")
    assert cli.has_subcommand("add-or-update-entry-point")
    outcome = Registrar(emu.client, cli, module=MODULE).ensure_entry_points(POINTS)
    assert outcome.path == "api" and len(emu.client.find_entry_points(MODULE)) == 3
    assert "add-on CLI" in outcome.notes[0] and "exit status 2" in outcome.notes[0]


def test_the_payment_account_definition_by_each_path(tmp_path, emu):
    registrar = Registrar(emu.client, install_cli(tmp_path, emu, False), module=MODULE)
    manual = registrar.ensure_payment_account("IPpay", LABELS)
    assert (manual.path, manual.value) == ("manual", None)
    assert manual.instructions == ('In Splynx, open Config → Finance → Payment accounts → Add: '
                                   'Title "IPpay", Field #1 "Card", Field #2 "Expiry"; then '
                                   "choose it as the add-on's payment account in its settings.",)
    allow_undocumented(emu)
    by_api = registrar.ensure_payment_account("IPpay", LABELS)
    assert by_api.path == "api" and by_api.value > 0
    assert registrar.ensure_payment_account("IPpay", LABELS) == Registrar(
        emu.client, None, module=MODULE).ensure_payment_account("ippay", {})
    assert registrar.ensure_payment_account("IPpay", LABELS).path == "none"

    allow_undocumented(emu, False)
    with_cli = Registrar(emu.client, install_cli(tmp_path / "2", emu, True), module=MODULE)
    by_cli = with_cli.ensure_payment_account("IPpay bank", {"field_1": "Account"})
    definition = emu.client.find_payment_account_definition("IPpay bank")
    assert by_cli.path == "cli" and by_cli.value == definition.id
    assert definition.labels["field_1"] == "Account"


def test_the_install_sequence_gives_the_add_on_a_working_key(tmp_path, emu):
    cli = install_cli(tmp_path, emu, False)
    key_id = cli.add_or_get_api_key("Splynx Ippay Billing Add-On")
    assert cli.add_or_get_api_key("Splynx Ippay Billing Add-On") == key_id
    key, secret = cli.get_api_key_and_secret(key_id)
    cli.api_key_white_list(key_id, ["192.0.2.10"])
    for action in ("index", "view"):
        cli.set_api_key_permission(key_id, "api\\admin\\finance\\Invoices", action)
    cli.config_set(MODULE, "api_key", key)
    cli.config_set(MODULE, "api_secret", secret)
    assert cli.add_or_get_additional_field("customers", "ippay_zip", "ZIP", "string") == "ippay_zip"
    addon = SplynxClient(emu.url, key, secret)
    assert addon.get_invoice(1).id == 1
    with pytest.raises(SplynxForbiddenError):
        addon.get_customer(1)
    assert emu.client.get_module_config(MODULE) == {"api_key": key, "api_secret": secret}
    state = requests.get(f"{emu.url}/_sandbox/state", timeout=5).json()
    mine = next(k for k in state["api_keys"] if k["id"] == key_id)
    assert mine["allowed_ips"] == ["127.0.0.1", "192.0.2.10"]
    assert mine["permissions"] == {"api\\admin\\finance\\Invoices": ["index", "view"]}
