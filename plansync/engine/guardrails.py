"""Limits a plan must stay within before anything is sent. Pure.

Payments are one-way doors: a plan that touches too many plans, cancels too many, or
raises an amount too far is refused as a whole, with the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from plansync.engine.impact import for_display, places, until
from plansync.engine.plan import Action, Plan
from plansync.errors import ConfigError


def _limit(flag: str, kind: type, metavar: str, refuses: str, shows: str) -> dict[str, Any]:
    """A guardrail, declared once: its settings-file key is the field's name; ``flag``,
    ``kind`` and ``metavar`` make the flag of `plan` (help ``shows``) and `apply` (help
    ``refuses``)."""
    return {"flag": flag, "kind": kind, "metavar": metavar, "refuses": refuses,
            "shows": shows}


@dataclass(frozen=True)
class Guardrails:
    max_changes: int | None = field(default=None, metadata=_limit(
        "--max-changes", int, "N", "Refuse plans changing more plans.",
        "Show a breach when the plan changes more plans."))
    max_cancels: int | None = field(default=None, metadata=_limit(
        "--max-cancels", int, "N", "Refuse plans cancelling more plans.",
        "Show a breach when the plan cancels more plans."))
    max_amount_increase: Decimal | None = field(default=None, metadata=_limit(  # percent
        "--max-amount-increase", Decimal, "PERCENT",
        "Refuse plans raising any amount by more than this.",
        "Show a breach when the plan raises any amount by more."))
    # percent of a currency's monthly recurring revenue
    max_mrr_decrease: Decimal | None = field(default=None, metadata=_limit(
        "--max-mrr-decrease", Decimal, "PERCENT",
        "Refuse plans lowering any currency's monthly recurring revenue by more.",
        "Show a breach when the plan lowers any currency's monthly recurring revenue by "
        "more."))
    # how many changed plans may charge within the charge window
    max_charged_within: int | None = field(default=None, metadata=_limit(
        "--max-charged-within", int, "N",
        "Refuse plans changing more than N plans that charge within the charge window.",
        "Show a breach when the plan changes more than N plans that charge within the "
        "charge window."))
    charge_window_hours: float = field(default=24.0, metadata=_limit(
        "--charge-window", float, "HOURS",
        "Plans charging sooner than this are not written (default 24).",
        "The charge window of --max-charged-within (default 24)."))


LIMITS = fields(Guardrails)  # every guardrail, in the order flags and messages list them


@dataclass(frozen=True)
class Limits:
    """The guardrails of a run, and which of them a flag set (the rest: the settings)."""

    guardrails: Guardrails = Guardrails()
    flagged: frozenset[str] = frozenset()

    @classmethod
    def merged(cls, from_file: Mapping[str, float], from_flags: Mapping[str, float | None]
               ) -> Limits:
        """The settings file's guardrails, each overridden by its flag when given."""
        given = {name: value for name, value in from_flags.items() if value is not None}
        flagged = frozenset(given)
        values = {**from_file, **given}
        for name, value in values.items():
            if isinstance(value, float) and not math.isfinite(value):  # nan: no comparison
                raise ConfigError(f"{_source(name, flagged)} is {value}, not a number",
                                  "give a number >= 0, or leave the limit out for none")
        return cls(Guardrails(**{
            limit.name: _as(limit.metadata["kind"], values[limit.name])
            for limit in LIMITS if limit.name in values}), flagged)

    def source(self, limit: str) -> str:
        """Where a limit was set, as the user set it."""
        return _source(limit, self.flagged)

    def breaches(self, plan: Plan) -> list[Violation]:
        """Every limit the plan exceeds, each with where that limit was set."""
        return [replace(found, source=self.source(found.limit))
                for found in violations(plan, self.guardrails)]


def _source(limit: str, flagged: frozenset[str]) -> str:
    flag = next(each.metadata["flag"] for each in LIMITS if each.name == limit)
    return flag if limit in flagged else f"guardrails.{limit} in the settings"


def _as(kind: type, value: float) -> Any:
    return Decimal(str(value)) if kind is Decimal else kind(value)


@dataclass(frozen=True)
class Violation:
    limit: str  # which: a field of Guardrails
    message: str  # what, with the numbers
    source: str = ""  # where the limit was set, as the user set it: the caller's word

    def __str__(self) -> str:
        return f"{self.message} ({self.source})" if self.source else self.message


def violations(plan: Plan, limits: Guardrails) -> list[Violation]:
    """Every limit the plan exceeds, each said with its numbers."""
    found = []
    changes = plan.summary["update"] + plan.summary["cancel"]
    if limits.max_changes is not None and changes > limits.max_changes:
        found.append(Violation("max_changes", f"{changes} plans would change, more than "
                                              f"{limits.max_changes}"))
    cancels = plan.summary["cancel"]
    if limits.max_cancels is not None and cancels > limits.max_cancels:
        found.append(Violation("max_cancels", f"{cancels} plans would be cancelled, more "
                                              f"than {limits.max_cancels}"))
    if limits.max_amount_increase is not None:
        for change in plan.changes:
            if change.action is not Action.UPDATE or "amount" not in change.changed_fields:
                continue
            before, after = change.before["amount"], change.after["amount"]
            if after <= before:
                continue
            increase = (after - before) / before * 100 if before else None
            if increase is None or increase > limits.max_amount_increase:
                shown = f"+{increase:.1f}%" if increase is not None else "an increase from 0"
                limit = format(limits.max_amount_increase.normalize(), "f")
                found.append(Violation("max_amount_increase", f"plan {change.id}: amount "
                                       f"{before} -> {after} is {shown}, more than {limit}%"))
    return found + _money(plan, limits)


def _money(plan: Plan, limits: Guardrails) -> list[Violation]:
    """The limits on what the plan does to revenue and to customers about to be charged."""
    found = []
    if limits.max_mrr_decrease is not None:
        for each in plan.impact:
            drop = -each.percent if each.percent is not None else Decimal(0)
            if drop > limits.max_mrr_decrease:
                limit = format(limits.max_mrr_decrease.normalize(), "f")
                shown = places(each.currency)
                found.append(Violation("max_mrr_decrease", (
                    f"{each.currency} monthly recurring revenue would fall "
                    f"{for_display(drop, 1)}% ({for_display(each.mrr_before, shown)} -> "
                    f"{for_display(each.mrr_after, shown)}), more than {limit}%")))
    if limits.max_charged_within is not None:
        window = timedelta(hours=limits.charge_window_hours)
        soon = [c.id for c in plan.changes if c.impact and c.impact.kind != "unchanged"
                and c.action in (Action.UPDATE, Action.CANCEL)
                and (due := until(c.impact.after.next_date, plan.created_at)) is not None
                and due < window]
        if len(soon) > limits.max_charged_within:
            found.append(Violation("max_charged_within", (
                f"{len(soon)} changed plans charge within {limits.charge_window_hours:g} hours "
                f"of the plan ({', '.join(soon[:5])}{', …' if len(soon) > 5 else ''}), more "
                f"than {limits.max_charged_within}")))
    return found
