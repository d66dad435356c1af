"""Bootstrap settings: file, secrets file, environment, warnings, validation."""

import warnings

import pytest

from splynx_ippay.config import ConfigError, ConfigWarning, load_config, validate


def write(path, text):
    path.write_text(text)
    return str(path)


def test_defaults_when_no_file(tmp_path):
    values = load_config(str(tmp_path / "missing.ini"), environ={})
    assert values["IPPAY_URL"] == "https://testgtwy.ippay.com/ippay"
    assert values["IPPAY_TERMINAL_ID"] == "TESTTERMINAL"
    assert values["SPLYNX_SESSION_COOKIE"] == "PHPSESSID"
    assert values["DATABASE_URL"].startswith("sqlite:////var/lib/splynx-ippay/")
    assert values["IPPAY_READ_TIMEOUT"] == 45.0


def test_file_then_secrets_then_environment(tmp_path):
    path = write(tmp_path / "config.ini",
                 "[splynx]\nurl = https://splynx.example/\napi_key = from-file\n"
                 "[ippay]\nterminal_id = FILETERM\n")
    write(tmp_path / "secrets.ini", "[splynx]\napi_key = from-secrets\napi_secret = s3\n")
    values = load_config(path, environ={"SPLYNX_IPPAY_IPPAY_TERMINAL_ID": "ENVTERM"})
    assert values["SPLYNX_URL"] == "https://splynx.example"  # trailing slash dropped
    assert values["SPLYNX_API_KEY"] == "from-secrets"
    assert values["SPLYNX_API_SECRET"] == "s3"
    assert values["IPPAY_TERMINAL_ID"] == "ENVTERM"


def test_path_from_environment(tmp_path):
    path = write(tmp_path / "other.ini", "[database]\nurl = postgresql+psycopg2://u@h/db\n")
    values = load_config(environ={"SPLYNX_IPPAY_CONFIG": path})
    assert values["DATABASE_URL"] == "postgresql+psycopg2://u@h/db"
    assert values["CONFIG_PATH"] == path


def test_unknown_keys_warn_and_are_ignored(tmp_path):
    path = write(tmp_path / "config.ini", "[ippay]\nterminal = TYPO\n[extra]\nx = 1\n")
    with pytest.warns(ConfigWarning) as caught:
        values = load_config(path, environ={"SPLYNX_IPPAY_IPPAY_TERMINALID": "x"})
    messages = " ".join(str(w.message) for w in caught)
    assert "[ippay] terminal" in messages and "[extra] x" in messages
    assert "SPLYNX_IPPAY_IPPAY_TERMINALID" in messages
    assert values["IPPAY_TERMINAL_ID"] == "TESTTERMINAL"


@pytest.mark.parametrize("section,key,value,words", [
    ("ippay", "url", "ftp://gateway", "http:// or https://"),
    ("splynx", "url", "splynx.example", "http:// or https://"),
    ("ippay", "terminal_id", "bad id!", "letters or digits"),
    ("ippay", "read_timeout", "soon", "seconds"),
    ("ippay", "read_timeout", "-1", "seconds"),
    ("database", "url", "/var/lib/db.sqlite", "database URL"),
    ("splynx", "session_cookie", "a b", "cookie name"),
    ("worker", "lease", "2", "at least 5 seconds"),
])
def test_invalid_value_names_the_key(tmp_path, section, key, value, words):
    path = write(tmp_path / "config.ini", f"[{section}]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert f"[{section}] {key}" in str(error.value)
    assert words in str(error.value)


def test_invalid_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="SPLYNX_IPPAY_IPPAY_URL"):
        load_config(str(tmp_path / "none.ini"), environ={"SPLYNX_IPPAY_IPPAY_URL": "nope"})


def test_unreadable_file_is_a_config_error(tmp_path):
    path = write(tmp_path / "config.ini", "this is not ini\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(path, environ={})


def test_validate_parses_strings_and_keeps_extras():
    values = validate({"IPPAY_READ_TIMEOUT": "2.5", "TESTING": True})
    assert values["IPPAY_READ_TIMEOUT"] == 2.5 and values["TESTING"] is True
    with pytest.raises(ConfigError):
        validate({"IPPAY_URL": "gopher://x"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate({})


# --- which gateway: IPpay's endpoints, or the one config.ini names ---------------------------

def _directory(url):
    from splynx_ippay.config import validate
    from splynx_ippay.context import GatewayDirectory

    return GatewayDirectory(validate({"IPPAY_URL": url}), http_session=None)


def test_an_unusable_gateway_mode_sends_nothing_anywhere():
    from splynx_ippay.context import GatewayUnavailable
    from splynx_ippay.services.settings import PartnerSettings

    gateways = _directory("test")
    with pytest.raises(GatewayUnavailable):
        gateways.terminal_for(PartnerSettings(terminal_id="T1", gateway_mode=None))
    with pytest.raises(GatewayUnavailable):
        gateways.terminal_for(PartnerSettings(terminal_id="T1"), read_ok=False)
    live = gateways.terminal_for(PartnerSettings(terminal_id="T1", gateway_mode="live"))
    assert gateways.client(live).url == "https://gtwy.ippay.com/ippay"


def test_only_ippays_endpoints_or_config_ini_s_are_ever_allowed():
    from splynx_ippay.context import GatewayUnavailable

    for url in ("https://testgtwy.ippay.com/ippay", "https://gtwy.ippay.com/ippay"):
        _directory("test").check_url(url)
    with pytest.raises(GatewayUnavailable):
        _directory("test").check_url("https://relay.example/ippay")
    custom = _directory("https://staging.example/ippay")
    custom.check_url("https://staging.example/ippay")
    with pytest.raises(GatewayUnavailable):
        custom.check_url("http://127.0.0.1:9/ippay")


@pytest.mark.parametrize("url, words", [
    ("http://gateway.example/ippay", "must use https"),
    ("https://user:pw@gateway.example/ippay", "user name or password"),
    ("ftp://gateway.example/", "http:// or https://"),
])
def test_a_custom_gateway_in_config_ini_must_be_https(tmp_path, url, words):
    path = write(tmp_path / "config.ini", f"[ippay]\nurl = {url}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert words in str(error.value)
