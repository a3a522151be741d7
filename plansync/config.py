"""Settings: command-line flags over environment variables over ``plansync.yaml``.

The file is ``--config FILE``, else ``$PLANSYNC_CONFIG``, else ``./plansync.yaml`` when it
exists. Paths in the file are relative to the file. The key password is read only from
the environment, never from a file or a flag.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from plansync.errors import ConfigError
from plansync.gateway import assumptions

if TYPE_CHECKING:  # the crypto and YAML stacks load only when used: `--help` stays fast
    from plansync.gateway.envelope import Envelope

DEFAULT_FILE = "plansync.yaml"
CONFIG_ENV = "PLANSYNC_CONFIG"
PASSWORD_ENV = "PLANSYNC_MERCHANT_KEY_PASSWORD"

# setting name → (flag, environment variable); the file uses the setting name itself.
SETTINGS = {
    "endpoint": ("--endpoint", "PLANSYNC_ENDPOINT"),
    "merchant_id": ("--merchant-id", "PLANSYNC_MERCHANT_ID"),
    "merchant_key": ("--merchant-key", "PLANSYNC_MERCHANT_KEY"),
    "gateway_key": ("--gateway-key", "PLANSYNC_GATEWAY_KEY"),
}
_FILE_ONLY = {"currency_exponents", "connect_timeout", "read_timeout", "request_deadline",
              "retry_after_max", "settle_window", "guardrails", "state", "workspace"}
DEFAULT_STATE = ".plansync/state.json"
GUARDRAILS = {"max_changes": int, "max_cancels": int, "max_amount_increase": float,
              "max_mrr_decrease": float, "max_charged_within": int,
              "charge_window_hours": float}
MAX_COUNT = 10**9  # a count guardrail: any whole number of plans
_MERCHANT_ID_RE = re.compile(r"[A-Za-z0-9]{1,15}")
# The settle window's bounds. At least the read timeout: a write's answer may arrive that
# late, so a shorter window would call a write not applied while it can still land. At
# most a day: a plan is not written again within the window, and a gateway that commits
# a day late is down, not slow.
MAX_SETTLE_WINDOW = 24 * 3600.0


@dataclass(frozen=True)
class Settings:
    endpoint: str
    merchant_id: str
    merchant_key: Path
    gateway_key: Path
    merchant_key_password: str | None = field(default=None, repr=False)
    currency_exponents: Mapping[str, int] = field(default_factory=dict)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0  # one read from the socket
    request_deadline: float = 40.0  # the whole request: connect, send, the whole answer
    retry_after_max: float = 300.0  # the longest Retry-After wait honoured (then: give up)
    settle_window: float = 90.0  # how long a write whose answer was lost may still land
    guardrails: Mapping[str, float] = field(default_factory=dict)

    def envelope(self) -> Envelope:
        """Load both keys (once per run) into the envelope that talks to 2C2P."""
        from plansync import keys
        from plansync.gateway.envelope import Envelope

        own = keys.load_private_key(self.merchant_key, self.merchant_key_password)
        peer = keys.load_public_key(self.gateway_key)
        return Envelope(own, peer)


def resolve(flags: Mapping[str, str | None], environ: Mapping[str, str],
            config_file: Path | None = None) -> Settings:
    """Merge the three sources. Raises ConfigError naming flag and variable of a gap."""
    path = config_file or _default_config_file(environ)
    from_file = _read_file(path) if path else {}
    base = path.parent if path else Path.cwd()

    missing = [name for name, (_flag, env) in SETTINGS.items()
               if not (flags.get(name) or environ.get(env) or from_file.get(name))]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set",
            "; ".join(f"pass {SETTINGS[name][0]}, set {SETTINGS[name][1]}, or add '{name}:' "
                      f"to {DEFAULT_FILE}" for name in missing))

    def pick(name: str) -> str:
        return str(flags.get(name) or environ.get(SETTINGS[name][1]) or from_file.get(name))

    def key_path(name: str) -> Path:
        raw = pick(name)
        # A path from the file is relative to the file; from a flag or variable, to cwd.
        from_flag_or_env = flags.get(name) or environ.get(SETTINGS[name][1])
        return Path(raw) if from_flag_or_env else base / raw

    read_timeout = _positive(from_file, "read_timeout", 30.0, path)
    merchant_id = pick("merchant_id")
    if not _MERCHANT_ID_RE.fullmatch(merchant_id):
        raise ConfigError(f"merchant_id {merchant_id!r} is not 1-15 letters and digits")
    return Settings(
        endpoint=endpoint_url(pick("endpoint")),
        merchant_id=merchant_id,
        merchant_key=key_path("merchant_key"),
        gateway_key=key_path("gateway_key"),
        merchant_key_password=environ.get(PASSWORD_ENV),
        currency_exponents=_exponents(from_file.get("currency_exponents", {}), path),
        connect_timeout=_positive(from_file, "connect_timeout", 5.0, path),
        read_timeout=read_timeout,
        request_deadline=_positive(from_file, "request_deadline", 40.0, path),
        retry_after_max=_positive(from_file, "retry_after_max", 300.0, path),
        settle_window=_settle_window(from_file, read_timeout, path),
        guardrails=_guardrails(from_file.get("guardrails") or {}, path),
    )


def state_setting(state: str | None, workspace: str | None, environ: Mapping[str, str],
                  config_file: Path | None = None) -> tuple[str, str | None]:
    """Where the state lives and which workspace: flag or variable (PLANSYNC_STATE,
    PLANSYNC_WORKSPACE) over ``state:``/``workspace:`` in the settings file over the
    default. A path in the file is relative to the file."""
    path = config_file or _default_config_file(environ)
    from_file = _read_file(path) if path else {}
    workspace = workspace or from_file.get("workspace")
    if state:
        return state, workspace
    value = from_file.get("state")
    if value is None:
        return DEFAULT_STATE, workspace
    if not isinstance(value, str) or not value:
        raise ConfigError(f"config file {path}: state must be a path or a postgres:// or "
                          "s3:// URL")
    if "://" not in value and path is not None:
        value = str(path.parent / value)
    return value, workspace


def endpoint_url(value: str) -> str:
    """``sandbox``, ``production`` or a full URL; plain http only to this machine."""
    if value in assumptions.ENDPOINTS:
        return assumptions.ENDPOINTS[value]
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - refuses a port that is not a number, here
    except ValueError as exc:
        raise ConfigError(f"endpoint is not a URL: {exc}") from None
    if parts.username is not None or parts.password is not None:
        # Never echo the value: it holds a secret.
        raise ConfigError("the endpoint URL holds credentials (user:password@)",
                          "remove them: the gateway authenticates requests by their "
                          "signature, and a URL is printed, saved in plans and logged")
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return value
    if parts.scheme == "http":
        raise ConfigError(f"endpoint {value} uses plain http to a host that is not loopback",
                          "use https; plain http is accepted only for a local emulator")
    raise ConfigError(f"endpoint {value!r} is not 'sandbox', 'production' or an https URL")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _default_config_file(environ: Mapping[str, str]) -> Path | None:
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    candidate = Path(DEFAULT_FILE)
    return candidate if candidate.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of settings")
    if "merchant_key_password" in data or "password" in data:
        raise ConfigError(f"config file {path} holds a password",
                          f"remove it; the key password is read only from {PASSWORD_ENV}")
    unknown = set(data) - set(SETTINGS) - _FILE_ONLY
    if unknown:
        known = ", ".join(sorted(set(SETTINGS) | _FILE_ONLY))
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(sorted(unknown))}",
                          f"known settings: {known}")
    return data


def _exponents(raw: Any, path: Path | None) -> dict[str, int]:
    from plansync.formats import MAX_DECIMALS

    if not isinstance(raw, dict) or not all(
            isinstance(k, str) and _whole(v, MAX_DECIMALS) for k, v in raw.items()):
        raise ConfigError(f"config file {path}: currency_exponents must map currency codes "
                          f"to a number of decimal places (0-{MAX_DECIMALS}), e.g. {{SGD: 2}}")
    return {k.upper(): v for k, v in raw.items()}


def _whole(value: Any, high: int) -> bool:
    """The one rule for whole numbers (formats.parse_whole): an int, never True or 7.5."""
    from plansync.formats import parse_whole

    try:
        parse_whole(value, 0, high)
    except ValueError:
        return False
    return True


def _finite(value: Any) -> bool:
    """A number of seconds, hours or percent: int or float, never a bool, NaN or inf."""
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


def _guardrails(raw: Any, path: Path | None) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: guardrails must be a mapping")
    unknown = set(raw) - set(GUARDRAILS)
    if unknown:
        raise ConfigError(f"config file {path}: unknown guardrail(s) {', '.join(sorted(unknown))}",
                          f"known: {', '.join(GUARDRAILS)}")
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"config file {path}: guardrails.{name} must be a number >= 0")
        # (NaN and infinity are refused with the flags' values, in commands/limits.py.)
        if GUARDRAILS[name] is int and math.isfinite(value) and not _whole(value, MAX_COUNT):
            raise ConfigError(f"config file {path}: guardrails.{name} must be a whole "
                              f"number >= 0, not {value!r}")
    return dict(raw)


def _positive(data: Mapping[str, Any], name: str, default: float, path: Path | None) -> float:
    value = data.get(name, default)
    if not _finite(value) or value <= 0:
        raise ConfigError(f"config file {path}: {name} must be a positive number of seconds")
    return float(value)


def _settle_window(data: Mapping[str, Any], read_timeout: float, path: Path | None) -> float:
    """The file's settle_window, else three read timeouts (at most a day)."""
    if read_timeout > MAX_SETTLE_WINDOW:
        raise ConfigError(f"config file {path}: read_timeout {read_timeout:g} is longer than "
                          "a day", "the settle window is at least the read timeout and at "
                                   f"most {_seconds(MAX_SETTLE_WINDOW)}: lower read_timeout")
    if "settle_window" not in data:
        return min(3 * read_timeout, MAX_SETTLE_WINDOW)
    window = _positive(data, "settle_window", 0, path)
    wrong = settle_window_problem(window, read_timeout)
    if wrong:
        raise ConfigError(f"config file {path}: settle_window {window:g} {wrong}",
                          settle_window_hint(read_timeout, "settle_window"))
    return window


def settle_window_problem(seconds: float, read_timeout: float) -> str | None:
    """What is wrong with a settle window of ``seconds``, or None if it is allowed."""
    if seconds < read_timeout:
        return (f"is shorter than the read timeout ({_seconds(read_timeout)}): a write's "
                "answer may arrive that late, so the write could still land after the "
                "window has called it not applied")
    if seconds > MAX_SETTLE_WINDOW:
        return f"is longer than a day ({_seconds(MAX_SETTLE_WINDOW)})"
    return None


def settle_window_hint(read_timeout: float, setting: str) -> str:
    """The allowed range, and how to allow a shorter window."""
    return (f"{setting} must be from {_seconds(read_timeout)} (the read timeout) to "
            f"{_seconds(MAX_SETTLE_WINDOW)} (24h); for a shorter window, lower read_timeout "
            "in the settings file first")


def _seconds(value: float) -> str:
    return f"{value:g} second{'' if value == 1 else 's'}"

