"""Settings: command-line flags over environment variables over ``plansync.yaml``.

The file is ``--config FILE``, else ``$PLANSYNC_CONFIG``, else the nearest ``plansync.yaml``
in this folder or above it. Paths in the file are relative to the file. A file may declare
``projects:`` (projects.py): each project's settings over the file's. The key password
is read only from the environment, never from a file or a flag.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from plansync.errors import ConfigError
from plansync.folders import read_regular
from plansync.gateway import assumptions
from plansync.printable import quoted
from plansync.redact import safe_url

if TYPE_CHECKING:  # the crypto and YAML stacks load only when used: `--help` stays fast
    from plansync.gateway.envelope import Envelope
    from plansync.limits import Limits
    from plansync.projects import Project

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
              "retry_after_max", "plan_budget", "settle_window", "guardrails", "state", "workspace"}
_FILE_LAYOUT = {"projects"}  # what the file declares besides settings (projects.py)
DEFAULT_STATE = ".plansync/state.json"
# The longest timeout, request deadline or Retry-After wait: an hour. A gateway that takes
# longer to answer one request is down, and a longer wait only holds the state's lock.
MAX_TIMEOUT = 3600.0
TIMEOUTS = {"connect_timeout": 5.0, "read_timeout": 30.0, "request_deadline": 40.0,
            "retry_after_max": 300.0, "plan_budget": 60.0}
_MERCHANT_ID_RE = re.compile(r"[A-Za-z0-9]{1,15}")
# The settle window's bounds. At least the read timeout: a write's answer may arrive that
# late, so a shorter window would call a write not applied while it can still land. At
# most a day: a plan is not written again within the window, and a gateway that commits
# a day late is down, not slow.
MAX_SETTLE_WINDOW = 24 * 3600.0


@dataclass(frozen=True)
class Gateway:
    """Who talks to which gateway, and how patiently: what a gateway client needs."""

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
    plan_budget: float = 60.0  # one request's attempts and waits together, per plan

    def envelope(self) -> Envelope:
        """Load both keys (once per run) into the envelope that talks to 2C2P."""
        from plansync import keys
        from plansync.gateway.envelope import Envelope

        own = keys.load_private_key(self.merchant_key, self.merchant_key_password)
        peer = keys.load_public_key(self.gateway_key)
        return Envelope(own, peer)


@dataclass(frozen=True)
class Flags:
    """What a command's flags said (None: not given): the first of the sources."""

    config_file: Path | None = None
    endpoint: str | None = None
    merchant_id: str | None = None
    merchant_key: str | None = None
    gateway_key: str | None = None
    state: str | None = None
    workspace: str | None = None
    settle_window: float | None = None  # seconds
    guardrails: Mapping[str, float | None] = field(default_factory=dict)


class BadFlag(ValueError):
    """A flag's value that the settings do not allow: the CLI says it as a usage error,
    after the value as given (commands/settings.py)."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(message)
        self.flag = flag
        self.message = message


class Settings:
    """Every setting of a run, by the one precedence rule: a flag, else its PLANSYNC_*
    variable, else the settings file (``--config``, else ``$PLANSYNC_CONFIG``, else the
    nearest ``plansync.yaml``; a project's settings over the file's), else the default.
    Each part is resolved when first used, once (the file read once): a command meets a
    setting's error where it first needs that setting, and one that needs no gateway, or
    no guardrails, runs without them."""

    def __init__(self, flags: Flags, environ: Mapping[str, str],
                 project: str | None = None) -> None:
        self._environ = environ
        self.project = project  # the project of plansync.yaml's projects: these are
        self.flags = flags

    def of_project(self, name: str) -> Settings:
        """The settings of the project ``name`` (one of ``projects``): its own over the
        file's defaults, under the same flags and variables."""
        chosen = Settings(self.flags, self._environ, name)
        chosen.__dict__.update(config_file=self.config_file, _file=self._file,
                               projects=self.projects)  # the file is read once
        return chosen

    @functools.cached_property
    def config_file(self) -> Path | None:
        return self.flags.config_file or _default_config_file(self._environ)

    @functools.cached_property
    def _file(self) -> dict[str, Any]:
        return _read_file(self.config_file) if self.config_file else {}

    @functools.cached_property
    def projects(self) -> dict[str, Project]:
        """The file's projects, by name (none: the file is one merchant's)."""
        from plansync import projects

        raw = self._file.get("projects")
        if "projects" not in self._file or self.config_file is None:
            return {}
        if "workspace" in self._file:
            raise ConfigError(f"config file {self.config_file}: a workspace: beside "
                              "projects: would put every project in one state",
                              "leave it out (each project's workspace is its name), or "
                              "set workspace: in a project")
        declared = projects.parse(raw, self.config_file, [*SETTINGS, *_FILE_ONLY])
        self._apart(declared)
        return declared

    def _apart(self, declared: dict[str, Project]) -> None:
        """Two projects in one state and workspace would share a state and its lock,
        however their paths or URLs are spelled."""
        seen: dict[tuple[Any, ...], str] = {}
        for name, (state, workspace) in self._placed(declared).items():
            where = _one_place(state, workspace, self.config_file)
            if where in seen:
                raise ConfigError(f"config file {self.config_file}: projects {seen[where]} "
                                  f"and {name} share one state (workspace {workspace})",
                                  "give each project its own workspace:")
            seen[where] = name

    def project_workspaces(self) -> dict[str, str]:
        """Each project's workspace, as the file says (no --workspace or variable)."""
        return {name: place[1] for name, place in self._placed(self.projects).items()}

    def _placed(self, declared: dict[str, Project]) -> dict[str, tuple[str, str]]:
        """Each project's state and workspace, as the file says them, under a state
        given as a flag or variable (which every project's run uses) but no workspace
        given so (one project's run refuses another's: ``_where``)."""
        flags = Flags(config_file=self.flags.config_file, state=self.flags.state)
        environ = {k: v for k, v in self._environ.items() if k != "PLANSYNC_WORKSPACE"}
        places = {}
        for name in declared:
            chosen = Settings(flags, environ, name)
            chosen.__dict__.update(config_file=self.config_file, _file=self._file,
                                   projects=declared)
            places[name] = (chosen.state,
                            chosen.workspace or _url_workspace(chosen.state) or "default")
        return places

    @functools.cached_property
    def _from_file(self) -> dict[str, Any]:
        """The file's settings for this run: a project's over the defaults."""
        if self.project is None:
            return {k: v for k, v in self._file.items() if k != "projects"}
        from plansync import projects

        return projects.merged(self._file, self.projects[self.project])

    @functools.cached_property
    def _where(self) -> tuple[str, str | None]:
        state, workspace = _state(self.flags, self._environ, self._from_file,
                                  self.config_file)
        given = self.flags.workspace or self._environ.get("PLANSYNC_WORKSPACE")
        if self.project is not None and given:
            own = self.project_workspaces()[self.project]
            if given != own:  # another project's state, or one of nobody's
                source = "--workspace" if self.flags.workspace else "PLANSYNC_WORKSPACE"
                raise ConfigError(f"{source} says workspace {given}, but project "
                                  f"{self.project}'s is {own}",
                                  f"leave the workspace to the project (remove {source}), "
                                  "or set workspace: in its settings")
        if not (self.flags.state or self._environ.get("PLANSYNC_STATE")
                or "state" in self._from_file):
            # The default state is beside the settings file that was found above, not in
            # whichever folder below it the command runs in: one state, one lock.
            state = str(self.folder / DEFAULT_STATE)
        if workspace is not None:
            return state, workspace
        if self.project is None:
            from plansync import workspaces

            # Lowest of all, below the state URL's ?workspace=: the folder's selection.
            selected = None if workspaces.in_url(state) else \
                workspaces.selected_workspace(self.folder)
            return state, selected
        own_state = "state" in self.projects[self.project].own
        uses_own = own_state and not (self.flags.state or self._environ.get("PLANSYNC_STATE"))
        # The repository's backend, in the project's workspace.
        return state, None if uses_own else self.project

    @property
    def folder(self) -> Path:
        """Where ``plansync workspace select`` keeps its choice: the folder in which the
        nearest plansync.yaml was found (so that it holds in every folder below), else
        the current one. (A file named by --config or $PLANSYNC_CONFIG may be shared, as
        an emulator's is: the choice stays where the commands run.)"""
        named = self.flags.config_file or self._environ.get(CONFIG_ENV)
        found = None if named else self.config_file
        return found.parent if found else Path.cwd()

    @property
    def state(self) -> str:
        """A path or a postgres:// or s3:// URL (a path in the file: relative to it)."""
        return self._where[0]

    @property
    def workspace(self) -> str | None:
        return self._where[1]

    @functools.cached_property
    def gateway(self) -> Gateway:
        """Who talks to which gateway; checks with it the rest of the file's settings."""
        gateway = _gateway(self.flags, self._environ, self._from_file, self.config_file)
        if self.project is not None:
            self._not_contradicted(gateway)
        self._file_window  # noqa: B018 - a wrong file is said at once, whole
        self._file_guardrails  # noqa: B018
        return gateway

    def _not_contradicted(self, gateway: Gateway) -> None:
        """A project that names its merchant or endpoint is not sent elsewhere by a flag
        or a variable meant for another (in CI, a repository-wide variable reaches every
        project's job): the two are refused, not ranked."""
        own = self.projects[str(self.project)].own
        for name, used in (("merchant_id", gateway.merchant_id),
                           ("endpoint", gateway.endpoint)):
            if name not in own:
                continue
            mine = str(own[name])
            mine = endpoint_url(mine) if name == "endpoint" else mine
            if used != mine:
                flag, variable = SETTINGS[name]
                source = flag if getattr(self.flags, name) else variable
                show = (lambda v: v) if name == "merchant_id" else safe_url
                raise ConfigError(
                    f"{source} says {name} {show(used)}, but project {self.project} in "
                    f"{self.config_file} says {show(mine)}",
                    f"leave {name} to the project (remove {source} for this run; in CI, "
                    "a repository variable reaches every project's job), or change the "
                    "project's")

    @functools.cached_property
    def read_timeout(self) -> float:
        return _timeout(self._from_file, "read_timeout", TIMEOUTS["read_timeout"],
                        self.config_file)

    @functools.cached_property
    def _file_window(self) -> float:
        return _settle_window(self._from_file, self.read_timeout, self.config_file)

    @functools.cached_property
    def _file_guardrails(self) -> dict[str, float]:
        return _guardrails(self._from_file.get("guardrails") or {}, self.config_file)

    @functools.cached_property
    def limits(self) -> Limits:
        """The guardrails: each flag over its key under ``guardrails:`` in the file."""
        from plansync.limits import Limits

        return Limits.merged(self._file_guardrails, self.flags.guardrails)

    @functools.cached_property
    def settle_window(self) -> float:
        """Seconds: the flag (which the read timeout bounds), else the file's, else three
        read timeouts."""
        window = self._file_window
        given = self.flags.settle_window
        if given is None:
            return window
        wrong = settle_window_problem(given, self.read_timeout)
        if wrong:
            raise BadFlag("--settle-window",
                          f"{wrong}; " + settle_window_hint(self.read_timeout, "it"))
        return given


def load(flags: Flags, environ: Mapping[str, str]) -> Settings:
    """The settings of a run: nothing is read until a part of them is used."""
    return Settings(flags, environ)


def _gateway(flags: Flags, environ: Mapping[str, str], from_file: Mapping[str, Any],
             path: Path | None) -> Gateway:
    """Raises ConfigError naming flag and variable of a gap."""
    base = path.parent if path else Path.cwd()

    def given(name: str) -> str | None:
        flag: str | None = getattr(flags, name)
        return flag or environ.get(SETTINGS[name][1])

    missing = [name for name in SETTINGS if not (given(name) or from_file.get(name))]
    if missing:
        where = f"config file {path}" if path else (
            f"no {DEFAULT_FILE} in this folder or any folder above it")
        raise ConfigError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set ({where})",
            "; ".join(f"pass {SETTINGS[name][0]}, set {SETTINGS[name][1]}, or add '{name}:' "
                      f"to {DEFAULT_FILE}" for name in missing))

    def pick(name: str) -> str:
        value = given(name)
        if value:
            return value
        found = from_file[name]
        # (A merchant id of digits alone is a number in YAML.)
        if not isinstance(found, str) and not (name == "merchant_id" and _integer(found)):
            raise ConfigError(f"config file {path}: {name} must be text, not "
                              f"{_kind(found)}", f"write it as {name}: VALUE")
        return str(found)

    def key_path(name: str) -> Path:
        # A path from the file is relative to the file; from a flag or variable, to cwd.
        return Path(pick(name)) if given(name) else base / pick(name)

    timeouts = {name: _timeout(from_file, name, default, path)
                for name, default in TIMEOUTS.items()}
    merchant_id = pick("merchant_id")
    if not _MERCHANT_ID_RE.fullmatch(merchant_id):
        raise ConfigError(f"merchant_id {quoted(merchant_id)} is not 1-15 letters and digits")
    return Gateway(
        endpoint=endpoint_url(pick("endpoint")),
        merchant_id=merchant_id,
        merchant_key=key_path("merchant_key"),
        gateway_key=key_path("gateway_key"),
        merchant_key_password=environ.get(PASSWORD_ENV),
        currency_exponents=_exponents(from_file.get("currency_exponents", {}), path),
        **timeouts,
    )


def _state(flags: Flags, environ: Mapping[str, str], from_file: Mapping[str, Any],
           path: Path | None) -> tuple[str, str | None]:
    """Where the state lives and which workspace. A path in the file is relative to the
    file."""
    workspace = flags.workspace or environ.get("PLANSYNC_WORKSPACE") or None
    if not workspace and from_file.get("workspace") is not None:
        workspace = from_file["workspace"]
        if not isinstance(workspace, str):  # a name is checked where the state is opened
            raise ConfigError(f"config file {path}: workspace must be a name, not "
                              f"{_kind(workspace)}", "write it as workspace: NAME")
    state = flags.state or environ.get("PLANSYNC_STATE")
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


def _one_place(state: str, workspace: str, path: Path | None) -> tuple[Any, ...]:
    """Where a state and workspace are stored, one spelling for each place: a local
    workspace's own file; a database or bucket by scheme, host, port and path (not the
    user, who may differ for one database)."""
    from urllib.parse import urlsplit

    try:
        if "://" not in state:
            file = Path(state)
            if workspace != "default":
                file = file.parent / "workspaces" / workspace / file.name
            return ("file", str(file.resolve()))
        parts = urlsplit(state)
        scheme = {"postgresql": "postgres"}.get(parts.scheme.lower(), parts.scheme.lower())
        port = parts.port or {"postgres": 5432}.get(scheme)
        return (scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/"),
                workspace)
    except ValueError:  # a NUL in a path, a port that is not a number
        raise ConfigError(f"config file {path}: a project's state {quoted(state)} is not a "
                          "path or URL", "use a path, postgres://user@host/db or "
                          "s3://bucket/prefix") from None


def _url_workspace(location: str) -> str | None:
    from plansync import workspaces

    return workspaces.in_url(location)


def endpoint_url(value: str) -> str:
    """``sandbox``, ``production`` or a full URL; plain http only to this machine."""
    if value in assumptions.ENDPOINTS:
        return assumptions.ENDPOINTS[value]
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - refuses a port that is not a number, here
    except ValueError:  # its words quote the URL's parts, maybe a password: not echoed
        raise ConfigError("endpoint is not a URL (a host in brackets that do not close, or "
                          "a port that is not a number)",
                          "set it to sandbox, production or https://HOST/PATH") from None
    if parts.username is not None or parts.password is not None or parts.fragment \
            or "***" in safe_url(value):
        # Never echo the value: it holds a secret.
        raise ConfigError("the endpoint URL holds credentials (user:password@, a token or "
                          "key parameter, or a #fragment)",
                          "remove them: the gateway authenticates requests by their "
                          "signature, and a URL is printed, saved in plans and logged")
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return value
    if parts.scheme == "http":
        raise ConfigError(f"endpoint {value} uses plain http to a host that is not loopback",
                          "use https; plain http is accepted only for a local emulator")
    raise ConfigError(f"endpoint {quoted(value)} is not 'sandbox', 'production' or an https URL")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        import ipaddress

        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _default_config_file(environ: Mapping[str, str]) -> Path | None:
    """$PLANSYNC_CONFIG, else plansync.yaml in this folder or the nearest folder above
    it that has one (as git finds .git): a command run in specs/sg/ finds the
    repository's settings."""
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    here = Path.cwd()
    for folder in (here, *here.parents):
        candidate = folder / DEFAULT_FILE
        if candidate.is_file():
            return candidate if folder != here else Path(DEFAULT_FILE)
    return None


def _read_file(path: Path) -> dict[str, Any]:
    """The settings file, read by the same YAML 1.2 rules as specs (spec/yamlread.py):
    ``5_0`` and ``0712`` are text, not YAML 1.1's 50 and 458; ``no`` is text, not false;
    a number with a fraction is exact; a key given twice is an error."""
    from plansync.spec import yamlread

    try:
        text = read_regular(path).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    try:
        documents = list(yamlread.read_documents(text))
    except yamlread.YamlError as exc:
        raise ConfigError(f"config file {path}:{exc.mark.line}:{exc.mark.column}: "
                          f"{exc.message}") from None
    if not documents:
        return {}
    if len(documents) > 1:
        raise ConfigError(f"config file {path} holds {len(documents)} YAML documents",
                          "keep one mapping of settings (remove the '---' lines)")
    document = documents[0]
    for mark, _where, problem in document.problems:  # a key given twice
        raise ConfigError(f"config file {path}:{mark.line}:{mark.column}: {problem}")
    data = document.data
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of settings")
    if "merchant_key_password" in data or "password" in data:
        raise ConfigError(f"config file {path} holds a password",
                          f"remove it; the key password is read only from {PASSWORD_ENV}")
    unknown = set(data) - set(SETTINGS) - _FILE_ONLY - _FILE_LAYOUT
    if unknown:
        known = ", ".join(sorted(set(SETTINGS) | _FILE_ONLY | _FILE_LAYOUT))
        raise ConfigError(f"config file {path}: unknown setting(s) "
                          f"{', '.join(repr(name) for name in sorted(unknown))}",
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


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """A value of the wrong kind, said in a few characters (it may be long, or hold a
    control character: repr escapes it)."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None or isinstance(value, bool):
        return repr(value).lower()
    if isinstance(value, int) and value.bit_length() > 128:
        return "a number with too many digits"
    text = str(value) if isinstance(value, int | Decimal | float) else repr(value)
    return text if len(text) <= 40 else f"{text[:40]}..."


def _number(value: Any, high: float) -> float | None:
    """A number of seconds, hours or percent from 0 to ``high`` (the YAML reader gives
    ints and exact Decimals), as a float; None for anything else: a bool, text (``.inf``
    and ``.nan`` are text to YAML 1.2), a number out of range."""
    if not (_integer(value) or isinstance(value, Decimal | float)):
        return None
    if isinstance(value, Decimal | float) and not math.isfinite(value):
        return None
    return float(value) if 0 <= value <= high else None


# YAML's infinity and not-a-number, which the YAML 1.2 reader leaves as text.
_NOT_FINITE = re.compile(r"([-+]?)\.(?:(inf|Inf|INF)|nan|NaN|NAN)")


def _not_finite(value: Any) -> str | None:
    """'inf', '-inf' or 'nan' for YAML's .inf, -.inf and .nan; else None."""
    found = _NOT_FINITE.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        return None
    return f"{'-' if found[1] == '-' else ''}inf" if found[2] else "nan"


def _guardrails(raw: Any, path: Path | None) -> dict[str, float]:
    from plansync.engine.guardrails import LIMITS

    kinds = {limit.name: limit.metadata["kind"] for limit in LIMITS}
    highs = {limit.name: limit.metadata["high"] for limit in LIMITS}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: guardrails must be a mapping")
    unknown = set(raw) - set(kinds)
    if unknown:
        raise ConfigError(f"config file {path}: unknown guardrail(s) "
                          f"{', '.join(repr(name) for name in sorted(unknown))}",
                          f"known: {', '.join(kinds)}")
    limits: dict[str, float] = {}
    for name, value in raw.items():
        special = _not_finite(value)
        if special:
            raise ConfigError(f"config file {path}: guardrails.{name} in the settings is "
                              f"{special}, not a number",
                              "give a number >= 0, or leave the limit out for none")
        if kinds[name] is int:
            if not _whole(value, highs[name]):
                raise ConfigError(f"config file {path}: guardrails.{name} must be a whole "
                                  f"number from 0 to {highs[name]}, not {_kind(value)}")
            limits[name] = value
            continue
        high = highs[name]
        number = _number(value, high)
        if number is None:
            raise ConfigError(f"config file {path}: guardrails.{name} must be a number from "
                              f"0 to {high:g}, not {_kind(value)}")
        limits[name] = number
    return limits


def _timeout(data: Mapping[str, Any], name: str, default: float, path: Path | None) -> float:
    """A timeout or deadline in seconds: more than 0, at most an hour."""
    value = data.get(name, default)
    seconds = _number(value, MAX_TIMEOUT)
    if seconds is None or seconds <= 0:
        raise ConfigError(f"config file {path}: {name} must be a positive number of seconds, "
                          f"at most {MAX_TIMEOUT:g} (an hour), not {_kind(value)}",
                          f"for example {name}: {default:g}")
    return seconds


def _settle_window(data: Mapping[str, Any], read_timeout: float, path: Path | None) -> float:
    """The file's settle_window, else three read timeouts."""
    if "settle_window" not in data:
        return min(3 * read_timeout, MAX_SETTLE_WINDOW)
    value = data["settle_window"]
    window = _number(value, math.inf)
    if window is None or window <= 0:
        raise ConfigError(f"config file {path}: settle_window must be a positive number of "
                          f"seconds, not {_kind(value)}",
                          settle_window_hint(read_timeout, "settle_window"))
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

