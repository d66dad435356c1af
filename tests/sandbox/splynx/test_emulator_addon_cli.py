"""The stand-in for Splynx's local add-on CLI (sandbox/splynx/addon_cli.py), run as a
program the way an install runs the real one: the sub-commands and output formats of
splynx-platform §3.2 acting on the emulator's store, the config file beside it and the
environment, the switch for the registration sub-commands, exit statuses."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from sandbox.splynx import addon_cli as stand_in
from tests.sandbox.splynx.emulator_helpers import MODULE, api, state

SOURCE = Path(stand_in.__file__)


@pytest.fixture
def installed(tmp_path, splynx_emu):
    """The stand-in copied to ``<tmp>/system/script/addon`` with its JSON file; ``run(...)``
    runs it with a clean environment (as apt runs a postinst)."""
    path = tmp_path / "system" / "script" / "addon"
    path.parent.mkdir(parents=True)
    shutil.copyfile(SOURCE, path)
    path.chmod(0o755)

    def configure(**settings):
        Path(f"{path}.json").write_text(json.dumps({"url": splynx_emu.url, **settings}))

    def run(*args, env=None):
        done = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=30,
                              env={"PATH": os.environ["PATH"], **(env or {})})
        return done.returncode, done.stdout, done.stderr

    configure()
    run.configure, run.path, run.emu = configure, path, splynx_emu
    return run


def test_it_is_a_standalone_program():
    text = SOURCE.read_text()
    assert text.startswith("#!/usr/bin/env python3\n") and os.access(SOURCE, os.X_OK)
    imported = {line.split()[1].split(".")[0] for line in text.splitlines()
                if line.startswith(("import ", "from "))}
    assert imported <= set(sys.stdlib_module_names)


def test_usage_lists_the_sub_commands(installed):
    for args in (("help",), ("--help",), ()):
        status, out, _ = installed(*args)
        assert status == 0 and "add-or-get-api-key" in out and "config-set" in out
        assert "add-or-update-entry-point" not in out


def test_the_install_sequence_and_its_output_formats(installed):
    status, out, _ = installed("add-or-get-api-key", "--title=Splynx Ippay Billing Add-On")
    assert status == 0 and out.strip().isdigit()
    key_id = out.strip()
    assert installed("add-or-get-api-key", "--title", "Splynx Ippay Billing Add-On")[1] == out
    status, out, _ = installed("get-api-key-and-secret", f"--id={key_id}")
    key, secret = out.strip().split(",")
    assert status == 0 and len(key) == 32 and len(secret) == 32 and out.count("\n") == 1
    assert installed("api-key-white-list", f"--id={key_id}", "--list=192.0.2.10,198.51.100.7") == (0, "", "")
    assert installed("set-api-key-permission", f"--id={key_id}",
                     "--controller=api\\admin\\finance\\Payments", "--action=index",
                     "--rule=allow") == (0, "", "")
    assert installed("add-or-get-additional-field", "--main_module=customers", "--name=ippay_zip",
                     "--title=ZIP", "--type=string", "--required=0", "--is_add=1") == (0, "ippay_zip\n", "")
    assert installed("config-set", f"--addon={MODULE}", "--key=api_key", f"--value={key}") == (0, "", "")
    snapshot = state(installed.emu)
    mine = next(k for k in snapshot["api_keys"] if str(k["id"]) == key_id)
    assert mine["title"] == "Splynx Ippay Billing Add-On" and mine["key"] == key
    assert mine["allowed_ips"] == ["127.0.0.1", "192.0.2.10", "198.51.100.7"]
    assert mine["permissions"] == {"api\\admin\\finance\\Payments": ["index"]}
    assert snapshot["config"][f"add-on/{MODULE}"] == {"api_key": key}
    assert snapshot["additional_fields"] == [{"main_module": "customers", "name": "ippay_zip",
                                              "title": "ZIP", "type": "string",
                                              "is_required": False, "is_add": True}]
    assert "secret" not in json.dumps(snapshot["api_keys"])  # the state never shows secrets


def test_failures_exit_non_zero_with_a_reason(installed):
    assert installed("get-api-key-and-secret", "--id=99") == (
        1, "", "get-api-key-and-secret: API key 99 not found\n")
    status, _, err = installed("add-or-get-api-key")
    assert status == 1 and "missing option --title" in err
    status, _, err = installed("add-or-get-additional-field", "--main_module=customers",
                               "--name=x", "--title=X", "--type=colour")
    assert status == 1 and err.startswith("add-or-get-additional-field: type:")
    status, _, err = installed("set-api-key-permission", "--id=1", "--controller=c",
                               "--action=index", "--rule=maybe")
    assert status == 1 and "--rule" in err
    status, _, err = installed("add-or-get-api-key", "stray")
    assert status == 1 and "unexpected argument" in err
    status, _, err = installed("no-such-command")
    assert status == 1 and "Unknown sub-command" in err


def test_where_the_emulator_is(installed, tmp_path):
    Path(f"{installed.path}.json").unlink()
    status, _, err = installed("add-or-get-api-key", "--title=T")
    assert status == 2 and "no emulator URL" in err
    status, out, _ = installed("add-or-get-api-key", "--title=T",
                               env={"SPLYNX_SANDBOX_URL": installed.emu.url})
    assert status == 0 and out.strip().isdigit()
    status, _, err = installed("add-or-get-api-key", "--title=T",
                               env={"SPLYNX_SANDBOX_URL": "http://127.0.0.1:9"})
    assert status == 2 and "cannot reach the Splynx emulator" in err


def test_registration_sub_commands_when_switched_on(installed):
    status, out, _ = installed("add-or-update-entry-point", "--module=m", "--name=n")
    assert status == 1
    installed.configure(registration_commands=True)
    assert "add-or-update-entry-point" in installed("help")[1]
    assert "add-or-update-entry-point" not in installed(
        "help", env={"SPLYNX_SANDBOX_ADDON_CLI_REGISTRATION": "0"})[1]
    assert api(installed.emu, "POST", "admin/config/modules", json={
        "name": MODULE, "title": "IPpay", "root": "/ippay", "type": "simple"}).status_code == 201
    args = [f"--module={MODULE}", "--name=ippay_pay_invoice", "--place=portal",
            "--type=action_link", "--model=Invoices", "--size=large", "--title=Pay by IPpay",
            "--url=/ippay/pay-invoice", "--enabled=1"]
    status, out, _ = installed("add-or-update-entry-point", *args)
    assert status == 0 and out.strip().isdigit()
    assert installed("add-or-update-entry-point", *args[:2], "--title=Pay by card")[1] == out
    point, = requests.get(f"{installed.emu.url}/_sandbox/state", timeout=5).json()["entry_points"]
    assert (point["id"], point["title"], point["model"], point["enabled"]) == (
        out.strip(), "Pay by card", "Invoices", True)
    status, _, err = installed("add-or-update-entry-point", f"--module={MODULE}", "--name=x",
                               "--place=portal", "--type=code")
    assert status == 1 and "code: cannot be blank" in err
    assert installed("delete-entry-point", f"--module={MODULE}", "--name=ippay_pay_invoice") == (0, "", "")
    assert state(installed.emu)["entry_points"] == []
    status, out, _ = installed("add-or-get-payment-account", "--title=IPpay", "--field_1=Card")
    assert status == 0 and installed("add-or-get-payment-account", "--title=ippay")[1] == out
    definition, = state(installed.emu)["payment_account_definitions"]
    assert (definition["id"], definition["field_1"]) == (out.strip(), "Card")


def test_run_in_process_answers_as_the_program_does(installed):
    """sandbox.world registers its worlds with the stand-in run in-process
    (``run_in_process``): every answer is the program's own, exit status included."""
    env = {"PATH": os.environ["PATH"]}
    cases = [("help",), ("no-such-command",), ("config-set", "--addon"),
             ("add-or-get-api-key", "--title=Splynx Ippay Billing Add-On"),
             ("add-or-get-api-key", "--title=Splynx Ippay Billing Add-On"),
             ("get-api-key-and-secret", "--id=999999")]
    for args in cases:
        program = installed(*args, env=env)
        done = stand_in.run_in_process([str(installed.path), *args], env=env,
                                       capture_output=True, text=True, timeout=30)
        assert (done.returncode, done.stdout, done.stderr) == program, args
    installed.configure(registration_commands=True)
    program = installed("help", env=env)
    assert "add-or-update-entry-point" in program[1]
    done = stand_in.run_in_process([str(installed.path), "help"], env=env)
    assert (done.returncode, done.stdout, done.stderr) == program
