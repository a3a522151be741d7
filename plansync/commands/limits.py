"""The guardrails a run sets: `guardrails` in plansync.yaml, each overridden by its flag.

One evaluation for two commands: `plan` shows every breach (so a pull request fails its
check before merge), `apply` refuses the plan on it. They cannot disagree on a limit or
on the words for where it was set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import click

from plansync.commands.options import FiniteRange
from plansync.config import MAX_CHARGE_WINDOW_HOURS
from plansync.errors import ConfigError

if TYPE_CHECKING:  # the engine is imported when a command runs, not when the CLI starts
    from plansync.engine.guardrails import Guardrails, Violation
    from plansync.engine.plan import Plan

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Limits:
    guardrails: Guardrails
    flagged: frozenset[str] = frozenset()  # the limits a flag set (the rest: the settings)

    def source(self, limit: str) -> str:
        """Where a limit was set, as the user set it."""
        return _source(limit, self.flagged)

    def breaches(self, plan: Plan) -> list[Violation]:
        """Every limit the plan exceeds, each with where that limit was set."""
        from plansync.engine.guardrails import violations

        return [replace(found, source=self.source(found.limit))
                for found in violations(plan, self.guardrails)]


def resolve(settings: Mapping[str, float], *, max_changes: int | None = None,
            max_cancels: int | None = None, max_amount_increase: float | None = None,
            max_mrr_decrease: float | None = None, max_charged_within: int | None = None,
            charge_window: float | None = None) -> Limits:
    """The settings file's guardrails (``settings.guardrails``) under the flags given."""
    from plansync.engine.guardrails import Guardrails

    flags: dict[str, float | None] = {
        "max_changes": max_changes, "max_cancels": max_cancels,
        "max_amount_increase": max_amount_increase, "max_mrr_decrease": max_mrr_decrease,
        "max_charged_within": max_charged_within, "charge_window_hours": charge_window}
    merged = {**settings, **{k: v for k, v in flags.items() if v is not None}}
    flagged = frozenset(k for k, v in flags.items() if v is not None)
    for limit, value in merged.items():
        if isinstance(value, float) and not math.isfinite(value):  # nan, .inf: no limit
            raise ConfigError(f"{_source(limit, flagged)} is {value}, not a number",
                              "give a number >= 0, or leave the limit out for none")
    return Limits(Guardrails(
        max_changes=_int(merged.get("max_changes")),
        max_cancels=_int(merged.get("max_cancels")),
        max_amount_increase=_decimal(merged.get("max_amount_increase")),
        max_mrr_decrease=_decimal(merged.get("max_mrr_decrease")),
        max_charged_within=_int(merged.get("max_charged_within")),
        charge_window_hours=float(merged.get("charge_window_hours", 24))), flagged)


def _source(limit: str, flagged: frozenset[str]) -> str:
    return "--" + limit.replace("_", "-") if limit in flagged else \
        f"guardrails.{limit} in the settings"


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def checking(command: F) -> F:
    """`plan`'s guardrail flags: apply's, to show what apply would refuse."""
    for option in reversed([
        click.option("--max-changes", type=click.IntRange(0), metavar="N",
                     help="Show a breach when the plan changes more plans."),
        click.option("--max-cancels", type=click.IntRange(0), metavar="N",
                     help="Show a breach when the plan cancels more plans."),
        click.option("--max-amount-increase", type=click.FloatRange(0), metavar="PERCENT",
                     help="Show a breach when the plan raises any amount by more."),
        click.option("--max-mrr-decrease", type=click.FloatRange(0), metavar="PERCENT",
                     help="Show a breach when the plan lowers any currency's monthly "
                          "recurring revenue by more."),
        click.option("--max-charged-within", type=click.IntRange(0), metavar="N",
                     help="Show a breach when the plan changes more than N plans that "
                          "charge within the charge window."),
        click.option("--charge-window", type=FiniteRange(0, MAX_CHARGE_WINDOW_HOURS),
                     metavar="HOURS",
                     help="The charge window of --max-charged-within (default 24)."),
    ]):
        command = option(command)
    return command
