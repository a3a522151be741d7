from decimal import Decimal
from pathlib import Path

import pytest

from plansync import config
from plansync.errors import ConfigError

FULL = {"endpoint": "sandbox", "merchant_id": "JT01", "merchant_key": "m.pem",
        "gateway_key": "g.cer"}


def load(flags: dict[str, str | None], environ: dict[str, str], path: Path | None = None
         ) -> config.Settings:
    """Every setting, as a command gets them (flags by setting name)."""
    return config.load(config.Flags(config_file=path, **flags), environ)


def resolve(flags: dict[str, str | None], environ: dict[str, str], path: Path | None = None
            ) -> config.Gateway:
    """The gateway's settings (checked on first use)."""
    return load(flags, environ, path).gateway


def write_config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plansync.yaml"
    path.write_text(text)
    return path


def test_flags_over_environment_over_file(tmp_path: Path) -> None:
    path = write_config(tmp_path / "conf", "endpoint: production\nmerchant_id: FILE01\n"
                        "merchant_key: keys/m.pem\ngateway_key: keys/g.cer\n")
    env = {"PLANSYNC_MERCHANT_ID": "ENV01", "PLANSYNC_GATEWAY_KEY": "env.cer"}
    settings = resolve({"merchant_id": "FLAG01"}, env, path)
    assert settings.merchant_id == "FLAG01"
    assert settings.endpoint == "https://t.2c2p.com/PaymentAction/2.0/action"
    assert settings.gateway_key == Path("env.cer")  # from the environment: relative to cwd
    assert settings.merchant_key == tmp_path / "conf" / "keys/m.pem"  # relative to the file


def test_config_file_from_environment_or_cwd(tmp_path: Path) -> None:
    path = write_config(tmp_path / "elsewhere", "merchant_id: ELSE\n")
    settings = resolve(FULL | {"merchant_id": None}, {"PLANSYNC_CONFIG": str(path)})
    assert settings.merchant_id == "ELSE"
    write_config(tmp_path, "merchant_id: HERE\n")  # tests run in tmp_path
    assert resolve(FULL | {"merchant_id": None}, {}).merchant_id == "HERE"


def test_missing_setting_names_flag_and_variable() -> None:
    with pytest.raises(ConfigError) as info:
        resolve(FULL | {"gateway_key": None}, {})
    assert str(info.value) == ("gateway_key is not set (no plansync.yaml in this folder or "
                               "any folder above it)\n  hint: pass --gateway-key, set "
                               "PLANSYNC_GATEWAY_KEY, or add 'gateway_key:' to plansync.yaml")


def test_password_only_from_the_environment(tmp_path: Path) -> None:
    settings = resolve(FULL, {"PLANSYNC_MERCHANT_KEY_PASSWORD": "pw"})
    assert settings.merchant_key_password == "pw"
    assert "pw" not in repr(settings)
    path = write_config(tmp_path, "merchant_key_password: pw\n")
    with pytest.raises(ConfigError, match="holds a password"):
        resolve(FULL, {}, path)


@pytest.mark.parametrize(("text", "message"), [
    ("endpoint: [", "not valid YAML"),
    ("- a\n- b\n", "must be a mapping"),
    ("endpiont: sandbox\n", "unknown setting"),
    ("currency_exponents: {SGD: two}\n", "currency_exponents must map"),
    ("read_timeout: -1\n", "read_timeout must be a positive number"),
    ("read_timeout: .inf\n", "read_timeout must be a positive number"),
    ("read_timeout: .nan\n", "read_timeout must be a positive number"),
    ("read_timeout: 86401\n", "read_timeout must be a positive number of seconds, at "
                               "most 3600 \\(an hour\\), not 86401"),
    ("settle_window: 0\n", "settle_window must be a positive number"),
    ("settle_window: -5\n", "settle_window must be a positive number"),
    ("settle_window: .inf\n", "settle_window must be a positive number"),
    ("settle_window: .nan\n", "settle_window must be a positive number"),
    ("settle_window: 10\n", r"settle_window 10 is shorter than the read timeout \(30 seconds"),
    ("read_timeout: 5\nsettle_window: 4.5\n", "settle_window 4.5 is shorter than the read"),
    ("settle_window: 86401\n", "settle_window 86401 is longer than a day"),
    # numbers by the one rule (issue 20): True is an int in Python, 7.5 is not a count
    ("currency_exponents: {SGD: true}\n", "currency_exponents must map"),
    ("currency_exponents: {SGD: 2.0}\n", "currency_exponents must map"),
    ("guardrails: {max_changes: 7.5}\n", "guardrails.max_changes must be a whole number"),
    ("guardrails: {max_cancels: 1.0e+2}\n", "guardrails.max_cancels must be a whole number"),
    ("guardrails: {max_charged_within: '5'}\n", "guardrails.max_charged_within must be"),
    # issue 21: each crashed (exit 70), or failed in a thread and ran on without a deadline
    ("connect_timeout: 99999999999999999999\n", "connect_timeout must be a positive number "
     "of seconds, at most 3600 \\(an hour\\), not 99999999999999999999"),
    ("request_deadline: 99999999999999999999\n", "request_deadline must be a positive"),
    ("retry_after_max: 3601\n", "retry_after_max must be a positive number of seconds, at "
                                "most 3600"),
    ("plan_budget: 0\n", "plan_budget must be a positive number of seconds"),
    ("plan_budget: .inf\n", "plan_budget must be a positive number of seconds"),
    ("plan_budget: 3601\n", "plan_budget must be a positive number of seconds, at most 3600"),
    ("read_timeout: 0\n", "read_timeout must be a positive number"),
    ("connect_timeout: [1]\n", "connect_timeout must be .* not a list"),
    ("guardrails: {charge_window_hours: 1" + "0" * 300 + "}\n",
     "guardrails.charge_window_hours must be a number from 0 to 8784"),
    ("guardrails: {max_amount_increase: {a: 1}}\n",
     "guardrails.max_amount_increase must be a number from 0 to .*, not a mapping"),
    # YAML 1.2, as specs are read: 5_0 is text (YAML 1.1 read 50), .inf too
    ("read_timeout: 5_0\n", "read_timeout must be a positive number of seconds, .* not '5_0'"),
    ("read_timeout: 1e3\n", "read_timeout must be a positive number"),
    ("read_timeout: 5\nread_timeout: 6\n", r"plansync.yaml:2:1: duplicate key 'read_timeout'"),
    ("a: 1\n---\nb: 2\n", "holds 2 YAML documents"),
    ("read_timeout: \"\\0\"\n", r"read_timeout must be .*, not '\\x00'"),
])
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        resolve(FULL, {}, path)
    assert str(path) in str(info.value)


def test_a_settle_window_too_short_says_the_range_and_how_to_allow_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, "settle_window: 1\n")
    with pytest.raises(ConfigError) as info:
        resolve(FULL, {}, path)
    assert info.value.hint == ("settle_window must be from 30 seconds (the read timeout) to "
                               "86400 seconds (24h); for a shorter window, lower read_timeout "
                               "in the settings file first")


@pytest.mark.parametrize(("text", "window"), [
    ("", 90.0),  # three read timeouts
    ("read_timeout: 1\nsettle_window: 1\n", 1.0),  # as short as the read timeout
    ("settle_window: 86400\n", 86400.0),
    ("read_timeout: 3600\n", 10800.0),  # three read timeouts
])
def test_settle_windows_allowed(tmp_path: Path, text: str, window: float) -> None:
    assert load(FULL, {}, write_config(tmp_path, text)).settle_window == window


def test_number_settings_keep_their_values(tmp_path: Path) -> None:
    path = write_config(tmp_path, "guardrails: {max_changes: 10, max_amount_increase: 12.5}\n"
                                  "currency_exponents: {BHD: 3}\nrequest_deadline: 20\n"
                                  "plan_budget: 90\n")
    loaded = load(FULL, {}, path)
    settings = loaded.gateway
    assert settings.plan_budget == 90.0
    empty = write_config(tmp_path / "empty", "merchant_id: JT01\n")
    assert resolve(FULL, {}, empty).plan_budget == 60.0  # the default
    assert loaded.limits.guardrails.max_changes == 10
    assert type(loaded.limits.guardrails.max_changes) is int
    assert loaded.limits.guardrails.max_amount_increase == Decimal("12.5")
    assert settings.currency_exponents == {"BHD": 3} and settings.request_deadline == 20.0


def test_the_settings_file_is_read_by_yaml_1_2_rules(tmp_path: Path) -> None:
    # YAML 1.1 read 0712 as the octal 458 and a merchant id "no" as false.
    path = write_config(tmp_path, "merchant_id: 0712\nrequest_deadline: 2.5\n"
                                  "guardrails: {max_amount_increase: 12.5}\n")
    loaded = load(FULL | {"merchant_id": None}, {}, path)
    assert loaded.gateway.merchant_id == "0712"
    assert loaded.gateway.request_deadline == 2.5
    assert loaded.limits.guardrails.max_amount_increase == Decimal("12.5")
    path = write_config(tmp_path, "merchant_id: 12345\n")
    assert resolve(FULL | {"merchant_id": None}, {}, path).merchant_id == "12345"


@pytest.mark.parametrize(("text", "message"), [
    ("merchant_key: [1]\n", "merchant_key must be text, not a list"),
    ("endpoint: {a: 1}\n", "endpoint must be text, not a mapping"),
    ("merchant_id: 1.5\n", "merchant_id must be text, not 1.5"),
])
def test_settings_that_are_no_text_are_refused(tmp_path: Path, text: str, message: str
                                               ) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=f"config file {path}: {message}"):
        resolve({k: v for k, v in FULL.items() if not text.startswith(k)}, {}, path)


@pytest.mark.parametrize("value", ["[1]", "5", "{a: b}", "true"])
def test_a_workspace_that_is_no_name_is_refused(tmp_path: Path, value: str) -> None:
    path = write_config(tmp_path, f"workspace: {value}\n")
    with pytest.raises(ConfigError, match=f"config file {path}: workspace must be a name"):
        load({}, {}, path).workspace  # noqa: B018 - read when used


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve(FULL, {}, tmp_path / "nope.yaml")


def test_file_only_settings(tmp_path: Path) -> None:
    path = write_config(tmp_path, "currency_exponents: {jpy: 2}\nread_timeout: 60\n")
    settings = resolve(FULL, {}, path)
    assert settings.currency_exponents == {"JPY": 2}
    assert settings.read_timeout == 60.0


@pytest.mark.parametrize(("value", "url"), [
    ("sandbox", "https://demo2.2c2p.com/2C2PFrontend/PaymentAction/2.0/action"),
    ("production", "https://t.2c2p.com/PaymentAction/2.0/action"),
    ("https://gateway.example/action", "https://gateway.example/action"),
    ("http://127.0.0.1:8700/x", "http://127.0.0.1:8700/x"),
    ("http://127.9.9.9/x", "http://127.9.9.9/x"),
    ("http://localhost:1/x", "http://localhost:1/x"),
    ("http://[::1]:8700/x", "http://[::1]:8700/x"),
])
def test_endpoints(value: str, url: str) -> None:
    assert config.endpoint_url(value) == url


@pytest.mark.parametrize(("value", "message"), [
    ("http://gateway.example/action", "plain http to a host that is not loopback"),
    ("http://10.0.0.1/action", "plain http"),
    ("ftp://x/y", "not 'sandbox', 'production' or an https URL"),
    ("staging", "not 'sandbox', 'production' or an https URL"),
])
def test_bad_endpoints(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.endpoint_url(value)


def test_bad_merchant_id() -> None:
    with pytest.raises(ConfigError, match="not 1-15 letters and digits"):
        resolve(FULL | {"merchant_id": "JT01; DROP"}, {})
