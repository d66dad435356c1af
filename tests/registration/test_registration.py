"""``splynx-ippay register`` / ``unregister``: the API key made through Splynx's local add-on
CLI with nothing typed, what Splynx gets through each path (the CLI, the API, the admin by
hand), idempotence, and the pending record that lets a failed registration complete later
(docs/packaging.md)."""

import configparser
import json

import pytest
import requests

from sandbox.splynx.addon_cli import install
from splynx_ippay import __version__
from splynx_ippay.cli import EXIT_PENDING, main
from splynx_ippay.services.registration import API_PERMISSIONS, ENTRY_POINTS
from splynx_ippay.splynx import SplynxClient

MODULE = "splynx_ippay_addon"


@pytest.fixture
def configure(monkeypatch, tmp_path):
    """Point the command at a Splynx; ``key=False`` leaves the API key unset (a fresh
    install), ``cli`` installs the add-on CLI stand-in (``"registration"``: with the
    entry-point and payment-account sub-commands)."""
    def configure(splynx_url, key=True, cli=None):
        (tmp_path / "config.ini").write_text("")
        monkeypatch.setenv("SPLYNX_IPPAY_CONFIG", str(tmp_path / "config.ini"))
        monkeypatch.setenv("SPLYNX_IPPAY_SPLYNX_URL", splynx_url)
        for name in ("API_KEY", "API_SECRET"):
            monkeypatch.delenv(f"SPLYNX_IPPAY_SPLYNX_{name}", raising=False)
        if key:
            monkeypatch.setenv("SPLYNX_IPPAY_SPLYNX_API_KEY", "sandbox-key")
            monkeypatch.setenv("SPLYNX_IPPAY_SPLYNX_API_SECRET", "sandbox-secret")
        monkeypatch.setenv("SPLYNX_IPPAY_DATABASE_URL", f"sqlite:///{tmp_path}/r.db")
        monkeypatch.setenv("SPLYNX_IPPAY_SPLYNX_NONCE_DIR", str(tmp_path))
        path = tmp_path / "addon"
        if cli:
            install(str(path), splynx_url, registration_commands=cli == "registration")
        monkeypatch.setenv("SPLYNX_IPPAY_SPLYNX_ADDON_CLI", str(path))
        state = tmp_path / "state"
        state.mkdir(exist_ok=True)
        return state
    return configure


def _state(directory):
    return json.loads((directory / "registration.json").read_text())


def emulator(splynx_emu):
    return requests.get(f"{splynx_emu.url}/_sandbox/state", timeout=10).json()


def admin_client(splynx_emu):
    return SplynxClient(splynx_emu.url, "sandbox-key", "sandbox-secret")


def test_nothing_typed_on_a_splynx_host_the_add_on_cli_makes_the_key(configure, splynx_emu,
                                                                      tmp_path, capsys):
    state = configure(splynx_emu.url, key=False, cli="registration")
    assert main(["register", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    [key] = [k for k in emulator(splynx_emu)["api_keys"]
             if k["title"] == "Splynx Ippay Billing Add-On"]
    # The key and secret are in secrets.ini, beside config.ini, for every process.
    secrets = configparser.ConfigParser()
    secrets.read(tmp_path / "secrets.ini")
    assert secrets["splynx"]["api_key"] == key["key"] and secrets["splynx"]["api_secret"]
    assert "API key stored in" in out and secrets["splynx"]["api_secret"] not in out
    # Exactly the permissions the add-on uses, from this host only.
    assert key["permissions"] == {c: sorted(a) for c, a in API_PERMISSIONS} or \
        {c: sorted(a) for c, a in key["permissions"].items()} == \
        {c: sorted(a) for c, a in API_PERMISSIONS}
    assert "127.0.0.1" in key["allowed_ips"]
    config = admin_client(splynx_emu).get_module_config(MODULE)
    assert config["api_key"] == key["key"] and config["api_domain"].startswith("http://")
    # Entry points and the payment account through the CLI; the settings default to them.
    names = {p["name"] for p in emulator(splynx_emu)["entry_points"] if p["module"] == MODULE}
    assert names == {p["name"] for p in ENTRY_POINTS}
    account = next(a for a in admin_client(splynx_emu).list_payment_account_definitions()
                   if a.title == "IPpay")
    assert int(config["payment_account_id"]) == account.id
    assert "Refund" in {c["name"] for c in emulator(splynx_emu)["transaction_categories"]}
    assert _state(state)["status"] == "registered" and _state(state)["manual_steps"] == []
    # Twice: the same key, nothing changed.
    assert main(["register", "--state-dir", str(state)]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert len([k for k in emulator(splynx_emu)["api_keys"]
                if k["title"] == "Splynx Ippay Billing Add-On"]) == 1


def test_register_creates_module_payment_method_settings_and_entry_points(configure, splynx_emu,
                                                                         capsys):
    """Splynx elsewhere (a key given, no add-on CLI) and a Splynx that takes the
    undocumented entry-point calls: the API path."""
    requests.post(f"{splynx_emu.url}/_sandbox/settings", json={"undocumented_methods": "allow"},
                  timeout=10).raise_for_status()
    state = configure(splynx_emu.url)
    assert main(["register", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert "payment method IPpay created" in out
    splynx = admin_client(splynx_emu)
    method = next(m for m in splynx.list_payment_methods() if m.name == "IPpay")
    assert method.is_active
    settings = splynx.get_module_config(MODULE)
    assert int(settings["payment_method_id"]) == method.id
    assert {p["name"] for p in splynx.list_entry_points(module=MODULE)} >= {
        "ippay_credit_card", "ippay_pay_invoice"}
    assert _state(state)["status"] == "registered" and _state(state)["version"] == __version__

    assert main(["register", "--state-dir", str(state)]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert main(["register", "--if-needed", "--state-dir", str(state)]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_a_splynx_refusing_the_undocumented_calls_gets_instructions(configure, splynx_emu,
                                                                   capsys):
    """No CLI sub-command and no API for entry points: what the admin enters is printed
    and kept with the registration state."""
    state = configure(splynx_emu.url, cli="plain")
    assert main(["register", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert "Edit entry points" in out and "ippay_pay_invoice" in out and "/ippay/pay-invoice" in out
    assert "Payment accounts" in out
    assert any("Edit entry points" in line for line in _state(state)["manual_steps"])
    assert not admin_client(splynx_emu).list_entry_points(module=MODULE)


def test_no_key_and_no_add_on_cli_says_what_to_do(configure, splynx_emu, capsys):
    state = configure(splynx_emu.url, key=False)
    assert main(["register", "--state-dir", str(state)]) == 1
    err = capsys.readouterr().err
    assert "--api-key" in err and "not on this host" in err


def test_a_key_given_on_the_command_line_is_stored(configure, splynx_emu, tmp_path, capsys):
    state = configure(splynx_emu.url, key=False)
    assert main(["register", "--api-key", "sandbox-key", "--api-secret", "sandbox-secret",
                 "--state-dir", str(state)]) == 0
    secrets = configparser.ConfigParser()
    secrets.read(tmp_path / "secrets.ini")
    assert secrets["splynx"]["api_key"] == "sandbox-key"
    assert (tmp_path / "secrets.ini").stat().st_mode & 0o777 == 0o640
    assert "sandbox-secret" not in capsys.readouterr().out


def test_an_admin_choice_of_payment_method_is_kept(configure, splynx_emu, capsys):
    state = configure(splynx_emu.url)
    splynx = admin_client(splynx_emu)
    main(["register", "--state-dir", str(state)])
    splynx.put_module_config(MODULE, {"payment_method_id": 3})
    main(["register", "--state-dir", str(state)])
    assert int(splynx.get_module_config(MODULE)["payment_method_id"]) == 3


def test_unreachable_splynx_records_pending_and_a_later_run_completes(configure, splynx_emu,
                                                                     capsys):
    state = configure("http://127.0.0.1:9")
    # EX_TEMPFAIL: the package's register timer tries again.
    assert main(["register", "--state-dir", str(state)]) == EXIT_PENDING
    assert "registration is pending" in capsys.readouterr().err
    assert _state(state)["status"] == "pending" and "error" in _state(state)

    configure(splynx_emu.url)
    assert main(["register", "--if-needed", "--state-dir", str(state)]) == 0
    assert "module splynx_ippay_addon created" in capsys.readouterr().out
    assert _state(state)["status"] == "registered"


def test_nothing_is_recorded_without_a_state_directory(configure, tmp_path, capsys):
    configure("http://127.0.0.1:9")
    missing = tmp_path / "absent"
    assert main(["register", "--state-dir", str(missing)]) == EXIT_PENDING
    assert not missing.exists() and "pending" not in capsys.readouterr().err


def test_unregister_removes_module_and_deactivates_the_payment_method(configure, splynx_emu,
                                                                     capsys):
    state = configure(splynx_emu.url, cli="registration")
    main(["register", "--state-dir", str(state)])
    assert main(["unregister", "--state-dir", str(state)]) == 0
    splynx = admin_client(splynx_emu)
    assert MODULE not in {m["name"] for m in splynx.list_modules()}
    assert not splynx.list_entry_points(module=MODULE)
    assert not next(m for m in splynx.list_payment_methods() if m.name == "IPpay").is_active
    assert not (state / "registration.json").exists()
    capsys.readouterr()
    assert main(["unregister", "--state-dir", str(state)]) == 0
    assert "nothing changed" in capsys.readouterr().out
    # Registering again brings the same payment method back.
    main(["register", "--state-dir", str(state)])
    assert "payment method IPpay re-activated" in capsys.readouterr().out
