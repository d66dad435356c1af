"""``splynx-ippay register`` / ``unregister``: what Splynx gets, idempotence, and the
pending record that lets a failed registration complete later (docs/packaging.md)."""

import json

import pytest

from splynx_ippay import __version__
from splynx_ippay.cli import main
from splynx_ippay.splynx import SplynxClient


@pytest.fixture
def configure(monkeypatch, tmp_path):
    def configure(splynx_url):
        monkeypatch.setenv("SPLYNX_IPPAY_CONFIG", str(tmp_path / "config.ini"))
        monkeypatch.setenv("SPLYNX_IPPAY_SPLYNX_URL", splynx_url)
        monkeypatch.setenv("SPLYNX_IPPAY_SPLYNX_API_KEY", "sandbox-key")
        monkeypatch.setenv("SPLYNX_IPPAY_SPLYNX_API_SECRET", "sandbox-secret")
        monkeypatch.setenv("SPLYNX_IPPAY_DATABASE_URL", f"sqlite:///{tmp_path}/r.db")
        state = tmp_path / "state"
        state.mkdir(exist_ok=True)
        return state
    return configure


def _state(directory):
    return json.loads((directory / "registration.json").read_text())


def test_register_creates_module_payment_method_settings_and_entry_points(configure, splynx_emu,
                                                                         capsys):
    state = configure(splynx_emu.url)
    assert main(["register", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert "payment method IPpay created" in out
    splynx = SplynxClient(splynx_emu.url, "sandbox-key", "sandbox-secret")
    method = next(m for m in splynx.list_payment_methods() if m.name == "IPpay")
    assert method.is_active
    settings = splynx.get_module_config("splynx_ippay_addon")
    assert int(settings["payment_method_id"]) == method.id
    assert {p["name"] for p in splynx.list_entry_points(module="splynx_ippay_addon")} >= {
        "ippay_credit_card", "ippay_pay_invoice"}
    assert _state(state)["status"] == "registered" and _state(state)["version"] == __version__

    assert main(["register", "--state-dir", str(state)]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert main(["register", "--if-needed", "--state-dir", str(state)]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_an_admin_choice_of_payment_method_is_kept(configure, splynx_emu, capsys):
    state = configure(splynx_emu.url)
    splynx = SplynxClient(splynx_emu.url, "sandbox-key", "sandbox-secret")
    main(["register", "--state-dir", str(state)])
    splynx.put_module_config("splynx_ippay_addon", {"payment_method_id": 3})
    main(["register", "--state-dir", str(state)])
    assert int(splynx.get_module_config("splynx_ippay_addon")["payment_method_id"]) == 3


def test_unreachable_splynx_records_pending_and_a_later_run_completes(configure, splynx_emu,
                                                                     capsys):
    state = configure("http://127.0.0.1:9")
    assert main(["register", "--state-dir", str(state)]) == 1
    assert "registration is pending" in capsys.readouterr().err
    assert _state(state)["status"] == "pending" and "error" in _state(state)

    configure(splynx_emu.url)
    assert main(["register", "--if-needed", "--state-dir", str(state)]) == 0
    assert "module splynx_ippay_addon created" in capsys.readouterr().out
    assert _state(state)["status"] == "registered"


def test_nothing_is_recorded_without_a_state_directory(configure, tmp_path, capsys):
    configure("http://127.0.0.1:9")
    missing = tmp_path / "absent"
    assert main(["register", "--state-dir", str(missing)]) == 1
    assert not missing.exists() and "pending" not in capsys.readouterr().err


def test_unregister_removes_module_and_deactivates_the_payment_method(configure, splynx_emu,
                                                                     capsys):
    state = configure(splynx_emu.url)
    main(["register", "--state-dir", str(state)])
    assert main(["unregister", "--state-dir", str(state)]) == 0
    splynx = SplynxClient(splynx_emu.url, "sandbox-key", "sandbox-secret")
    assert "splynx_ippay_addon" not in {m["name"] for m in splynx.list_modules()}
    assert not splynx.list_entry_points(module="splynx_ippay_addon")
    assert not next(m for m in splynx.list_payment_methods() if m.name == "IPpay").is_active
    assert not (state / "registration.json").exists()
    capsys.readouterr()
    assert main(["unregister", "--state-dir", str(state)]) == 0
    assert "nothing changed" in capsys.readouterr().out
    # Registering again brings the same payment method back.
    main(["register", "--state-dir", str(state)])
    assert "payment method IPpay re-activated" in capsys.readouterr().out
