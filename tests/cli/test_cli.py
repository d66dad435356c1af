"""The ``splynx-ippay`` command: database, registration, reconcile, configuration errors."""

import subprocess
import sys

import pytest

from splynx_ippay import db
from splynx_ippay.cli import EXIT_PENDING, main


@pytest.fixture
def env_for(monkeypatch, tmp_path):
    """Point the command at a config file in tmp_path and the given servers."""

    def configure(splynx_url="http://127.0.0.1:9", key="sandbox-key", secret="sandbox-secret",
                  ippay_url="http://127.0.0.1:9/ippay"):
        monkeypatch.setenv("SPLYNX_IPPAY_CONFIG", str(tmp_path / "config.ini"))
        monkeypatch.setenv("SPLYNX_IPPAY_SPLYNX_URL", splynx_url)
        monkeypatch.setenv("SPLYNX_IPPAY_SPLYNX_API_KEY", key)
        monkeypatch.setenv("SPLYNX_IPPAY_SPLYNX_API_SECRET", secret)
        monkeypatch.setenv("SPLYNX_IPPAY_IPPAY_URL", ippay_url)
        url = f"sqlite:///{tmp_path}/cli.db"
        monkeypatch.setenv("SPLYNX_IPPAY_DATABASE_URL", url)
        return url

    return configure


def test_db_upgrade_is_idempotent(env_for, capsys):
    url = env_for()
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade"]) == 0
    assert db.current_revision(url) is not None
    assert "database at revision" in capsys.readouterr().out


def test_register_twice_changes_nothing_the_second_time(env_for, splynx_emu, capsys):
    env_for(splynx_url=splynx_emu.url)
    assert main(["register"]) == 0
    first = capsys.readouterr().out
    assert "module splynx_ippay_addon created" in first
    assert main(["register"]) == 0
    assert "nothing changed" in capsys.readouterr().out


def test_wrong_api_key_is_reported_plainly(env_for, splynx_emu, capsys):
    env_for(splynx_url=splynx_emu.url, key="wrong-key")
    assert main(["register"]) == 1
    err = capsys.readouterr().err
    assert "registration with Splynx" in err and "refused the API key 'wrong-key'" in err


def test_splynx_down_is_reported_plainly(env_for, capsys):
    env_for(splynx_url="http://127.0.0.1:9")
    assert main(["register"]) == EXIT_PENDING  # tried again later by the package's timer
    assert "registration with Splynx at http://127.0.0.1:9 failed" in capsys.readouterr().err


def test_invalid_setting_stops_with_the_key_named(env_for, monkeypatch, capsys):
    env_for()
    monkeypatch.setenv("SPLYNX_IPPAY_IPPAY_TERMINAL_ID", "no spaces allowed")
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "[ippay] terminal_id" in err


def test_reconcile_with_nothing_to_do(env_for, splynx_emu, ippay_sim, capsys):
    env_for(splynx_url=splynx_emu.url, ippay_url=ippay_sim.url + "/ippay")
    main(["db", "upgrade"])
    capsys.readouterr()
    assert main(["reconcile"]) == 0
    assert "nothing to reconcile" in capsys.readouterr().out


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "splynx_ippay.cli", "--help"],
                            capture_output=True, text=True, check=True)
    for command in ("db", "register", "reconcile"):
        assert command in result.stdout
