"""The adapter of Splynx's local add-on CLI (splynx/addon_cli.py) against scripted
programs: arguments, output formats, discovery of sub-commands, timeouts, and errors that
say what failed without ever carrying the API secret."""

import json
import os
import stat
import sys

import pytest

from splynx_ippay.splynx import AddonCli, AddonCliError

FAKE = """#!{python}
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
script = json.load(open(os.path.join(here, "script.json")))
with open(os.path.join(here, "calls.log"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
name = sys.argv[1] if len(sys.argv) > 1 else ""
answer = script.get(name, script.get("*", {{}}))
time.sleep(answer.get("sleep", 0))
sys.stdout.write(answer.get("stdout", ""))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("code", 0))
"""

SECRET = "s3cr3t-5ecret-value"


@pytest.fixture
def fake(tmp_path):
    """A scripted CLI: ``fake(**answers)`` returns an :class:`AddonCli` of it; ``.calls()``
    the argument lists it was run with."""
    path = tmp_path / "addon"
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(0o755)

    def make(timeout=5.0, **answers):
        (tmp_path / "script.json").write_text(json.dumps(
            {k.replace("_", "-"): v for k, v in answers.items()}))
        return AddonCli(str(path), timeout=timeout)

    def calls():
        log = tmp_path / "calls.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    make.calls = calls
    make.path = path
    return make


def test_api_key_sub_commands_and_their_output(fake):
    cli = fake(add_or_get_api_key={"stdout": "Creating...\n7\n"},
               get_api_key_and_secret={"stdout": f"abcKEY,{SECRET}\n"})
    assert cli.add_or_get_api_key("Splynx Ippay Billing Add-On") == 7
    assert cli.get_api_key_and_secret(7) == ("abcKEY", SECRET)
    cli.api_key_white_list(7, ["192.0.2.10", "127.0.0.1"])
    cli.set_api_key_permission(7, "api\\admin\\finance\\Payments", "index")
    cli.config_set("splynx_ippay_addon", "api_secret", SECRET)
    assert fake.calls() == [
        ["add-or-get-api-key", "--title=Splynx Ippay Billing Add-On"],
        ["get-api-key-and-secret", "--id=7"],
        ["api-key-white-list", "--id=7", "--list=192.0.2.10,127.0.0.1"],
        ["set-api-key-permission", "--id=7", "--controller=api\\admin\\finance\\Payments",
         "--action=index", "--rule=allow"],
        ["config-set", "--addon=splynx_ippay_addon", "--key=api_secret", f"--value={SECRET}"],
    ]


def test_additional_field_sends_flags_as_zero_or_one(fake):
    cli = fake(add_or_get_additional_field={"stdout": "ippay_token\n"})
    assert cli.add_or_get_additional_field("customers", "ippay_token", "IPpay token", "string",
                                           required=False, is_add=True) == "ippay_token"
    assert fake.calls()[0] == ["add-or-get-additional-field", "--main_module=customers",
                               "--name=ippay_token", "--title=IPpay token", "--type=string",
                               "--required=0", "--is_add=1"]


@pytest.mark.parametrize("stdout", ["", "\n\n", "Error: no key\n", "0\n"])
def test_an_install_fails_when_no_key_id_is_printed(fake, stdout):
    cli = fake(add_or_get_api_key={"stdout": stdout})
    with pytest.raises(AddonCliError, match="add-or-get-api-key") as caught:
        cli.add_or_get_api_key("T")
    assert caught.value.command == "add-or-get-api-key"


def test_an_empty_additional_field_answer_is_a_failure(fake):
    with pytest.raises(AddonCliError, match="printed nothing"):
        fake(add_or_get_additional_field={"stdout": ""}).add_or_get_additional_field(
            "customers", "x", "X", "string")


def test_errors_say_what_failed_and_never_show_the_secret(fake):
    cli = fake(get_api_key_and_secret={"stdout": f"abcKEY,{SECRET}\n", "stderr": "",
                                       "code": 3},
               config_set={"stderr": "module not found\n", "code": 1})
    with pytest.raises(AddonCliError) as caught:
        cli.get_api_key_and_secret(7)
    assert SECRET not in str(caught.value) and "exit status 3" in str(caught.value)
    assert caught.value.returncode == 3
    with pytest.raises(AddonCliError) as caught:
        cli.config_set("splynx_ippay_addon", "api_secret", SECRET)
    assert SECRET not in str(caught.value) and "module not found" in str(caught.value)
    assert "config-set" in str(caught.value)


@pytest.mark.parametrize("stdout", ["abcKEY\n", ",secret\n", "key,\n"])
def test_a_malformed_key_and_secret_line_is_refused(fake, stdout):
    with pytest.raises(AddonCliError, match="key,secret"):
        fake(get_api_key_and_secret={"stdout": stdout}).get_api_key_and_secret(7)


def test_a_hanging_cli_is_stopped(fake):
    cli = fake(timeout=0.5, add_or_get_api_key={"sleep": 5, "stdout": "7\n"})
    with pytest.raises(AddonCliError, match="did not finish within 0.5 s"):
        cli.add_or_get_api_key("T")


def test_a_missing_or_unrunnable_cli(tmp_path, fake):
    missing = AddonCli(str(tmp_path / "nowhere" / "addon"))
    assert not missing.available() and missing.subcommands() == frozenset()
    with pytest.raises(AddonCliError, match="does not exist"):
        missing.add_or_get_api_key("T")
    fake()
    fake.path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    cli = AddonCli(str(fake.path))
    assert not cli.available()
    if os.geteuid() != 0 or not os.access(fake.path, os.X_OK):
        with pytest.raises(AddonCliError, match="may not be run"):
            cli.add_or_get_api_key("T")


def test_sub_commands_are_discovered_from_the_usage_text(fake):
    base = "Usage: addon <sub-command>\n  add-or-get-api-key\n  get-api-key-and-secret\n"
    cli = fake(help={"stdout": base})
    assert cli.has_subcommand("add-or-get-api-key")
    assert not cli.has_subcommand("add-or-update-entry-point")
    cli = fake(help={"stdout": base + "  add-or-update-entry-point\n  add-or-get-payment-account\n"})
    assert cli.has_subcommand("add-or-update-entry-point")
    assert cli.has_subcommand("add-or-get-payment-account")
    assert not cli.has_subcommand("delete-entry-point")
    assert fake.calls()[-1] == ["help"]
    # A CLI without `help` prints its usage when run bare (Yii's console does).
    cli = fake(help={"stderr": "Unknown command\n", "code": 1}, **{"*": {"stdout": base}})
    assert cli.has_subcommand("get-api-key-and-secret")
    assert fake.calls()[-2:] == [["help"], []]


def test_registration_sub_commands(fake):
    cli = fake(add_or_update_entry_point={"stdout": "17\n"},
               add_or_get_payment_account={"stdout": "4\n"}, delete_entry_point={})
    assert cli.add_or_update_entry_point("splynx_ippay_addon", "ippay_pay_invoice", {
        "place": "portal", "type": "action_link", "enabled": True, "partners": [1, 2]}) == 17
    assert cli.add_or_get_payment_account("IPpay", {"field_1": "Token"}) == 4
    cli.delete_entry_point("splynx_ippay_addon", "ippay_pay_invoice")
    assert fake.calls() == [
        ["add-or-update-entry-point", "--module=splynx_ippay_addon", "--name=ippay_pay_invoice",
         "--place=portal", "--type=action_link", "--enabled=1", "--partners=1,2"],
        ["add-or-get-payment-account", "--title=IPpay", "--field_1=Token"],
        ["delete-entry-point", "--module=splynx_ippay_addon", "--name=ippay_pay_invoice"],
    ]


def test_bad_arguments_never_run_the_cli(fake):
    cli = fake()
    for call in (lambda: cli.get_api_key_and_secret(0), lambda: cli.api_key_white_list(1, []),
                 lambda: cli.api_key_white_list(1, ["a,b"]),
                 lambda: cli.set_api_key_permission(1, "c", "index", rule="maybe")):
        with pytest.raises(ValueError):
            call()
    assert fake.calls() == []
