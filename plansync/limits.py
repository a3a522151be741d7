"""The guardrails of a run (`engine.guardrails.Guardrails`), with where each was set: a
flag, or `guardrails:` in plansync.yaml. One evaluation for two commands: `plan` shows
every breach, `apply` refuses the plan on it; they cannot disagree on a limit or on the
words for where it was set."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from plansync.engine.guardrails import LIMITS, Guardrails, Violation, violations
from plansync.errors import ConfigError

if TYPE_CHECKING:
    from plansync.engine.plan import Plan

# A guardrail's flag is its settings key with dashes; the charge window's is shorter.
_SHORTER = {"charge_window_hours": "--charge-window"}


def flag_of(limit: str) -> str:
    return _SHORTER.get(limit, "--" + limit.replace("_", "-"))


@dataclass(frozen=True)
class Limits:
    guardrails: Guardrails = field(default_factory=Guardrails)
    flagged: frozenset[str] = frozenset()  # the limits a flag set (the rest: the settings)

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
    return flag_of(limit) if limit in flagged else f"guardrails.{limit} in the settings"


def _as(kind: type, value: float) -> Any:
    return Decimal(str(value)) if kind is Decimal else kind(value)
