"""Options and helpers shared by several commands."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from plansync import config
from plansync.commands.settings import FiniteRange
from plansync.errors import PlansyncError, SpecProblemsError

F = TypeVar("F", bound=Callable[..., Any])


def load_specs(paths: Sequence[Path]) -> tuple[list[Any], str, int]:
    """Every declared plan, the spec digest and the file count; or every problem, then exit 1."""
    from plansync.spec import loader
    from plansync.views.text import report_problems

    plans, problems, files = loader.load_counted(paths)
    report_problems(problems)
    if problems:
        raise SpecProblemsError(problems)
    return plans, loader.digest(plans), files


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


def plan_ids(_ctx: click.Context, param: click.Parameter, values: Any) -> Any:
    """Plan ids as given on the command line: digits only (recurringUniqueID is a number:
    no sign, space or other script's digits, which the gateway would be sent), without
    leading zeros ("0156143" is plan 156143); one id or a tuple, as the parameter takes."""
    from plansync.formats import plan_id
    from plansync.printable import quoted

    given = (values,) if isinstance(values, str) else tuple(values or ())
    for value in given:
        if not (value.isascii() and value.isdigit()):
            raise click.BadParameter(f"{quoted(value)} is not a plan id (recurringUniqueID: "
                                     "digits)", param=param)
    ids = tuple(dict.fromkeys(plan_id(value) for value in given))
    return ids[0] if isinstance(values, str) else None if values is None else ids


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


# Without PATHs: each project's own specs (commands/projects.py).
spec_paths = click.argument("paths", metavar="[PATH...]", nargs=-1,
                            type=click.Path(path_type=Path))


def select(desired: list[Any], target: Sequence[str], exclude: Sequence[str]) -> list[Any]:
    from plansync.formats import plan_id as canonical

    # As the specs' ids are: "0156143" is plan 156143.
    target, exclude = [canonical(i) for i in target], [canonical(i) for i in exclude]
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

