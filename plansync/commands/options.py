"""Options and helpers shared by several commands."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from plansync import config
from plansync.commands.settings import FiniteRange
from plansync.errors import PlansyncError

F = TypeVar("F", bound=Callable[..., Any])


def load_specs(paths: Sequence[Path]) -> tuple[list[Any], str, int]:
    """Every declared plan, the spec digest and the file count; or every problem, then exit 1."""
    from plansync.spec import loader

    plans, problems, files = loader.load_counted(paths)
    report_problems(problems)
    if problems:
        raise SpecProblemsError(problems)
    return plans, loader.digest(plans), files


def report_problems(problems: Sequence[Any]) -> None:
    """Each problem on stderr; on GitHub Actions also as an annotation on its spec line."""
    from plansync.render import problems as render

    annotate = os.environ.get("GITHUB_ACTIONS") == "true"
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        click.echo(render.text(problem), err=True)
        if annotate:
            click.echo(render.github_annotation(problem), err=True)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        click.echo(f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more problem(s); "
                   "plansync validate --json lists them all", err=True)


MAX_PROBLEMS_SHOWN = 50  # on stderr: a spec of 50,000 bad plans is not 50,000 lines


class SpecProblemsError(PlansyncError):
    def __init__(self, problems: Sequence[Any]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the specs; nothing was done",
                         "fix them and run again (plansync validate checks without network)")
        self.problems = list(problems)


def errors_in_json(command: F) -> F:
    """With --json (``as_json``), an error is also a JSON document on stdout —
    ``{"error", "hint", "results": []}`` — so a CI step reading stdout learns why."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PlansyncError as exc:
            if kwargs.get("as_json"):
                click.echo(json.dumps({"error": exc.message, "hint": exc.hint,
                                       "results": []}, indent=2))
            raise

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def errors_in_markdown(fmt: str | None) -> Iterator[None]:
    """With --markdown, an error is also the Markdown on stdout: a pull-request comment
    then says what went wrong instead of being empty (the error still goes to stderr)."""
    try:
        yield
    except PlansyncError as exc:
        if fmt == "markdown":
            from plansync.render.markdown import failure

            click.echo(failure(exc, getattr(exc, "problems", ())))
        raise


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


def read_plan_file(path: Path) -> tuple[Any, str]:
    """A saved plan and its digest; a file that is no plan says how to make one."""
    from plansync.engine import planfile

    try:
        return planfile.read_with_digest(path)
    except PlansyncError as exc:
        exc.hint = exc.hint or "make one with: plansync plan --out FILE"
        raise


def gateway_client(gateway: config.Gateway, parallelism: int = 8,
                   rate_limit: float | None = None) -> Any:
    """The gateway client every command uses, from the gateway's settings."""
    from plansync.gateway.client import GatewayClient, RetryPolicy
    from plansync.gateway.ratelimit import RateLimiter

    return GatewayClient.over_http(
        gateway.endpoint, gateway.merchant_id, gateway.envelope(), pool_size=parallelism,
        connect_timeout=gateway.connect_timeout, read_timeout=gateway.read_timeout,
        request_deadline=gateway.request_deadline,
        retry=RetryPolicy(retry_after_max=gateway.retry_after_max,
                          budget=gateway.plan_budget),
        exponent_overrides=gateway.currency_exponents, rate_limiter=RateLimiter(rate_limit))


def desired(paths: Sequence[Path], target: Sequence[str], exclude: Sequence[str]) -> Any:
    """The specs to plan (engine.run.Desired), loaded and checked before any key is read
    or request sent."""
    from plansync.engine.run import Desired

    plans, digest, _files = load_specs(paths)
    return Desired(select(plans, target, exclude), digest, [str(p) for p in paths],
                   everything=not target and not exclude)


def plan_live(paths: Sequence[Path], target: Sequence[str], exclude: Sequence[str],
              parallelism: int, rate_limit: float | None, settings: config.Settings
              ) -> tuple[Any, Any]:
    """The specs planned against live, and the state they were planned with (read only,
    no lock; its journal folded in, as the next apply will fold it)."""
    from plansync.commands.settings import open_state
    from plansync.engine import backends, run

    specs = desired(paths, target, exclude)
    store = open_state(settings)
    gateway = settings.gateway
    with contextlib.closing(store):
        known = backends.current(store, gateway.merchant_id, gateway.endpoint)
    with gateway_client(gateway, parallelism, rate_limit) as client, \
            progress(len(specs.plans)) as advance:
        return run.plan(specs, client, known, parallelism, advance), known


spec_paths = click.argument("paths", metavar="PATH...", nargs=-1, required=True,
                            type=click.Path(path_type=Path))
def formats_for(json_help: str) -> Callable[[F], F]:
    """--json (its document described by ``json_help``), --markdown and --no-color."""
    options = [
        click.option("--json", "fmt", flag_value="json", help=json_help),
        click.option("--markdown", "fmt", flag_value="markdown",
                     help="Markdown for a pull-request comment."),
        click.option("--no-color", is_flag=True,
                     help="No colours (also: the NO_COLOR variable)."),
    ]

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


formats = formats_for("One JSON document (schemas/plan.schema.json).")


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

