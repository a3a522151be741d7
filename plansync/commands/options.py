"""Options and helpers shared by several commands."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from plansync import config
from plansync.errors import PlansyncError, SpecProblemsError
from plansync.gateway.breaker import NOT_TRIED

F = TypeVar("F", bound=Callable[..., Any])


_SETTING_HELP = {
    "endpoint": "sandbox, production, or the gateway's URL",
    "merchant_id": "Your 2C2P merchant id",
    "merchant_key": "Your private key file (PEM, DER, .p12/.pfx)",
    "gateway_key": "2C2P's certificate or public key file",
}


def gateway_options(command: F) -> F:
    """The settings every command that talks to the gateway accepts."""
    for name, (flag, env) in reversed(config.SETTINGS.items()):
        command = click.option(flag, name, metavar="VALUE" if "key" not in name else "FILE",
                               help=f"{_SETTING_HELP[name]} (or ${env}).")(command)
    return click.option("--config", "config_file", type=click.Path(path_type=Path),
                        help="Settings file (default: $PLANSYNC_CONFIG or ./plansync.yaml).")(
        command)


def settings_from(options: dict[str, Any]) -> config.Settings:
    flags = {name: options.pop(name) for name in config.SETTINGS}
    return config.resolve(flags, os.environ, options.pop("config_file"))


def load_specs(paths: Sequence[Path]) -> tuple[list[Any], str, int]:
    """Every declared plan, the spec digest and the file count; or every problem, then exit 1."""
    from plansync.spec import loader
    from plansync.views.text import report_problems

    plans, problems, files = loader.load_counted(paths)
    report_problems(problems)
    if problems:
        raise SpecProblemsError(problems)
    return plans, loader.digest(plans), files


def errors_in_json(command: F) -> F:
    """With --json (``as_json``), an error is also apply's JSON document on stdout.
    Until apply takes its view from ``views.formats`` (then this goes)."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from plansync.views import pick

        with pick("apply", "json" if kwargs.get("as_json") else None).reporting_errors():
            return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def state_options(command: F) -> F:
    """Where the state lives: --state PATH or URL, --workspace NAME (and --config, for
    commands that take no gateway settings)."""
    command = click.option(
        "--workspace", envvar="PLANSYNC_WORKSPACE", metavar="NAME",
        help="Workspace: one state per merchant and endpoint (or $PLANSYNC_WORKSPACE; "
             "default: default).")(command)
    return click.option(
        "--state", "state_location", envvar="PLANSYNC_STATE", metavar="PATH|URL",
        help="State: a file, postgres://user@host/db or s3://bucket/prefix (or "
             f"$PLANSYNC_STATE, or state: in plansync.yaml; default {config.DEFAULT_STATE})."
    )(command)


def open_state(options: dict[str, Any], config_file: Path | None = None) -> Any:
    """The state backend the options (and settings file) name. Pops its options."""
    from plansync.engine.backends import open_backend

    location, workspace = config.state_setting(
        options.pop("state_location"), options.pop("workspace"), os.environ,
        config_file or options.get("config_file"))
    backend = open_backend(location, workspace, os.environ)
    if os.environ.get(REQUIRE_REMOTE_STATE, "").lower() in ("1", "true", "yes") and \
            type(backend).__name__ == "LocalBackend":
        raise PlansyncError(
            f"the state is a local file ({location}), which this CI runner forgets: "
            "cancellations would be lost and two runners could both write",
            "set PLANSYNC_STATE (or state: in plansync.yaml) to an s3:// or postgres:// "
            f"URL (README: State backends); {REQUIRE_REMOTE_STATE}=false allows a local "
            "file")
    return backend


REQUIRE_REMOTE_STATE = "PLANSYNC_REQUIRE_REMOTE_STATE"  # set by the GitHub Action


class FiniteRange(click.FloatRange):
    """A FloatRange that also refuses nan (which no comparison refuses)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a number", param, ctx)
        return number


fanout = [
    click.option("--parallelism", type=click.IntRange(1, 64), default=8, show_default=True,
                 help="Requests in flight at once."),
    click.option("--rate-limit", type=FiniteRange(0.01, 10_000), metavar="R",
                 help="At most R requests per second, 0.01 to 10000 (default: no limit)."),
]
selection = [
    click.option("--target", multiple=True, metavar="ID", help="Only these plans (repeatable)."),
    click.option("--exclude", multiple=True, metavar="ID",
                 help="Leave these plans out (repeatable)."),
    *fanout,
]


def selecting(command: F) -> F:
    """--target, --exclude, --parallelism, --rate-limit: plan, apply, drift."""
    for option in reversed(selection):
        command = option(command)
    return command


def fanning_out(command: F) -> F:
    """--parallelism, --rate-limit: every command that sends many requests."""
    for option in reversed(fanout):
        command = option(command)
    return command


class Specs:
    """The specs to plan, loaded and checked before any key is read or request sent."""

    def __init__(self, paths: Sequence[Path], target: Sequence[str],
                 exclude: Sequence[str]) -> None:
        desired, self.digest, _files = load_specs(paths)
        self.paths = [str(p) for p in paths]
        self.everything = not target and not exclude
        self.desired = select(desired, target, exclude)

    def plan(self, client: Any, state: Any, parallelism: int) -> Any:
        """Plan them against live, remembering what the state knows."""
        from plansync.engine.planner import make_plan

        with progress(len(self.desired)) as advance:
            made = make_plan(self.desired, client, spec_digest=self.digest,
                             parallelism=parallelism,
                             known_cancelled=state.cancelled,
                             managed_before=set(state.plans) if self.everything else set(),
                             spec_paths=self.paths, on_progress=advance)
        stop_if_systemic(client, len(self.desired), sum(
            1 for change in made.changes if change.error and NOT_TRIED in change.error))
        return made


def stop_if_systemic(client: Any, total: int, not_tried: int) -> None:
    """One error, said once, when every request failed the same systemic way."""
    cause = client.breaker.tripped
    if cause is not None:
        raise PlansyncError(
            f"{cause.message} — {client.breaker.threshold} requests in a row failed alike, "
            f"so plansync stopped: {_how_many_not_tried(not_tried, total)}", cause.hint)


def _how_many_not_tried(not_tried: int, total: int) -> str:
    plans = "plan" if total == 1 else "plans"
    if not_tried == 0:  # every plan was tried, and failed: it stopped only the retries
        return f"each of the {total} {plans} was tried" if total > 1 else "its plan was tried"
    return f"{not_tried} of the {total} {plans} {'was' if not_tried == 1 else 'were'} not tried"


def read_plan_file(path: Path) -> tuple[Any, str]:
    """A saved plan and its digest; a file that is no plan says how to make one."""
    from plansync.engine import planfile

    try:
        return planfile.read_with_digest(path)
    except PlansyncError as exc:
        exc.hint = exc.hint or "make one with: plansync plan --out FILE"
        raise


def gateway_client(settings: Any, parallelism: int = 8, rate_limit: float | None = None
                   ) -> Any:
    """The gateway client every command uses, from the settings."""
    from plansync.gateway.client import GatewayClient, RetryPolicy
    from plansync.gateway.ratelimit import RateLimiter

    return GatewayClient.over_http(
        settings.endpoint, settings.merchant_id, settings.envelope(), pool_size=parallelism,
        connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
        request_deadline=settings.request_deadline,
        retry=RetryPolicy(retry_after_max=settings.retry_after_max,
                          budget=settings.plan_budget),
        exponent_overrides=settings.currency_exponents, rate_limiter=RateLimiter(rate_limit))


def plan_live(paths: Sequence[Path], target: Sequence[str], exclude: Sequence[str],
              parallelism: int, rate_limit: float | None, options: dict[str, Any]
              ) -> tuple[Any, Any, config.Settings]:
    """The specs planned against live, the state they were planned with (read only, no
    lock; its journal folded in, as the next apply will fold it), and the settings."""
    from plansync.engine import backends

    specs = Specs(paths, target, exclude)
    store = open_state(options)
    settings = settings_from(options)
    with contextlib.closing(store):
        known = backends.current(store, settings.merchant_id, settings.endpoint)
    with gateway_client(settings, parallelism, rate_limit) as client:
        return specs.plan(client, known, parallelism), known, settings


spec_paths = click.argument("paths", metavar="PATH...", nargs=-1, required=True,
                            type=click.Path(path_type=Path))


def select(desired: list[Any], target: Sequence[str], exclude: Sequence[str]) -> list[Any]:
    known = {plan.id for plan in desired}
    unknown = [plan_id for plan_id in (*target, *exclude) if plan_id not in known]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} names no plan in the specs",
                                 param_hint="--target/--exclude")
    return [plan for plan in desired
            if (not target or plan.id in target) and plan.id not in exclude]


@contextlib.contextmanager
def progress(total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr when it is a terminal; silence otherwise."""
    if not sys.stderr.isatty() or total < 2:
        yield lambda: None
        return
    with click.progressbar(length=total, label="Inquiring", file=sys.stderr) as bar:
        yield lambda: bar.update(1)

