"""The flags of the settings, and the one place they become a `config.Settings`.

A command declares which settings it takes (``@settings(...)``); the decorator adds their
flags and hands the command one typed ``settings``, resolved once by `config.load` (flag
over variable over file over default: the rule lives there, not here).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from plansync import config
from plansync.errors import PlansyncError
from plansync.printable import quoted

F = TypeVar("F", bound=Callable[..., Any])

_SETTING_HELP = {
    "endpoint": "sandbox, production, or the gateway's URL",
    "merchant_id": "Your 2C2P merchant id",
    "merchant_key": "Your private key file (PEM, DER, .p12/.pfx)",
    "gateway_key": "2C2P's certificate or public key file",
}
_CONFIG_HELP = {
    True: "Settings file (default: $PLANSYNC_CONFIG, else the nearest plansync.yaml here "
          "or above).",
    False: "Settings file (default: $PLANSYNC_CONFIG, else the nearest plansync.yaml here "
           "or above), for its state:, workspace: and projects:.",
}
_PROJECT_HELP = {
    True: "The project of plansync.yaml's projects: to run for (repeatable; default: the "
          "projects of the PATHs, else the one whose folder this is, else every one).",
    False: "The project of plansync.yaml's projects: whose settings and state to use "
           "(default: the one whose folder this is, or the only one).",
}
REQUIRE_REMOTE_STATE = "PLANSYNC_REQUIRE_REMOTE_STATE"  # set by the GitHub Action


def settings(*, gateway: bool = True, state: bool = True, guardrails: str | None = None,
             settle_window: bool = False, each_project: bool = False) -> Callable[[F], F]:
    """Add the flags of these settings; pass the command ``settings: config.Settings``.

    ``gateway``: --endpoint, --merchant-id, --merchant-key, --gateway-key; ``state``:
    --state, --workspace; ``guardrails``: each guardrail's flag, its help saying what the
    command does with a breach (``"refuses"``: apply, ``"shows"``: plan);
    ``settle_window``: --settle-window. --config and --project always: the command runs
    for the one project chosen (commands/projects.py), or with ``each_project`` (plan,
    apply, drift, validate) once for each."""
    from plansync.engine.guardrails import LIMITS
    from plansync.limits import flag_of

    options = [click.option("--config", "config_file", type=click.Path(path_type=Path),
                            help=_CONFIG_HELP[gateway or state]),
               click.option("--project", "project_names", multiple=True, metavar="NAME",
                            help=_PROJECT_HELP[each_project])]
    if gateway:
        options += [click.option(flag, name, metavar="VALUE" if "key" not in name else "FILE",
                                 help=f"{_SETTING_HELP[name]} (or ${env}).")
                    for name, (flag, env) in config.SETTINGS.items()]
    if state:
        options += [
            click.option("--state", "state_location", metavar="PATH|URL",
                         help="State: a file, postgres://user@host/db or s3://bucket/prefix "
                              "(or $PLANSYNC_STATE, or state: in plansync.yaml; default "
                              f"{config.DEFAULT_STATE})."),
            click.option("--workspace", metavar="NAME",
                         help="Workspace: one state per merchant and endpoint (or "
                              "$PLANSYNC_WORKSPACE; default: default)."),
        ]
    if guardrails:
        options += [click.option(flag_of(limit.name), limit.name,
                                 type=_flag_type(limit),
                                 metavar=limit.metadata["metavar"],
                                 help=limit.metadata[guardrails]) for limit in LIMITS]
    if settle_window:
        options.append(click.option(
            "--settle-window", type=Duration(), metavar="DURATION",
            help="How long a write whose outcome is unknown may still land; the plan is not "
                 "written again before then: from the read timeout to 24h (default: "
                 "settle_window, else 3x the read timeout)."))
    names = {"config_file", *config.SETTINGS, "state_location", "workspace", "settle_window",
             *(limit.name for limit in LIMITS)}

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from plansync.commands import projects

            given = {name: kwargs.pop(name) for name in names if name in kwargs}
            named = kwargs.pop("project_names")
            loaded = _load(given)
            try:
                if each_project:
                    return projects.run_each(command, loaded, named, args, kwargs,
                                             uses_settings=gateway or state)
                return command(*args, settings=projects.one(loaded, named), **kwargs)
            except config.BadFlag as exc:  # found when the setting was first used
                window = given.get("settle_window")
                shown = getattr(window, "given", "") if exc.flag == "--settle-window" else ""
                raise click.BadParameter(f"{shown} {exc.message}".lstrip(),
                                         param_hint=exc.flag) from None

        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def _load(given: dict[str, Any]) -> config.Settings:
    from plansync.engine.guardrails import LIMITS

    return config.load(config.Flags(
        config_file=given.get("config_file"),
        **{name: given.get(name) for name in config.SETTINGS},
        state=given.get("state_location"), workspace=given.get("workspace"),
        settle_window=given.get("settle_window"),
        guardrails={limit.name: given.get(limit.name) for limit in LIMITS}), os.environ)


class FiniteRange(click.FloatRange):
    """A FloatRange that also refuses nan (which no comparison refuses)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a number", param, ctx)
        return number


def _flag_type(limit: Any) -> click.ParamType[Any, Any]:
    """A guardrail flag's type: a count, a percent (nan is refused where it is merged,
    naming the flag), or hours up to the limit's highest."""
    from decimal import Decimal

    kind = limit.metadata["kind"]
    return click.IntRange(0) if kind is int else click.FloatRange(0) if kind is Decimal \
        else FiniteRange(0, limit.metadata["high"])


class Seconds(float):
    """A duration in seconds that remembers how it was written (for messages)."""

    given: str


class Duration(click.ParamType[Any, Any]):
    """'0', '30s', '5m', '1h': digits and an optional unit, nothing else (no sign,
    fraction, exponent, inf or nan); at most a day."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, Seconds):
            return value
        try:
            seconds = Seconds(parse_duration(str(value)))
        except ValueError as exc:  # the flag named bare, as every plansync message does
            raise click.BadParameter(str(exc), ctx, param_hint=param.opts[0] if param
                                     else None) from None
        seconds.given = str(value)
        return seconds


_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
LONGEST = 24 * 3600  # no wait, for a lock or for a write to land, is longer than a day


def parse_duration(duration: str) -> float:
    """Seconds, or ValueError saying what is wrong."""
    import re

    match = re.fullmatch(r"([0-9]+)([smh]?)", duration)
    if not match:
        raise ValueError(f"{quoted(duration)} is not a duration: whole seconds, minutes or "
                         "hours, such as 30s, 5m or 1h")
    # Digits only, so that the product is exact; more than 6 are more than a day (and
    # Python refuses to read more than 4300).
    seconds = int(match[1]) * _UNITS[match[2]] if len(match[1]) <= 6 else LONGEST + 1
    if seconds > LONGEST:
        shown = duration if len(duration) <= 20 else quoted(duration)
        raise ValueError(f"{shown} is longer than a day (24h)")
    return float(seconds)


def open_state(settings: config.Settings) -> Any:
    """The state backend the settings name."""
    from plansync.engine.backends import open_backend

    backend = open_backend(settings.state, settings.workspace, os.environ)
    if os.environ.get(REQUIRE_REMOTE_STATE, "").lower() in ("1", "true", "yes") and \
            not backend.shared:
        raise PlansyncError(
            f"the state is a local file ({settings.state}), which this CI runner forgets: "
            "cancellations would be lost and two runners could both write",
            "set PLANSYNC_STATE (or state: in plansync.yaml) to an s3:// or postgres:// "
            f"URL (README: State backends); {REQUIRE_REMOTE_STATE}=false allows a local "
            "file")
    return backend
