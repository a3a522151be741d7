"""What a spec says, once validated: one DesiredPlan per declared plan."""

from __future__ import annotations

from dataclasses import dataclass

from plansync.fields import NAMES, PlanFields


# slots: a 100,000-plan spec holds one DesiredPlan, PlanFields and Location per plan.
@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a spec, said as ``file:line:column: plan <id>: field: message``."""

    location: Location
    message: str
    plan_id: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = [str(self.location)]
        if self.plan_id is not None:
            parts.append(f"plan {self.plan_id}")
        if self.field is not None:
            parts.append(self.field)
        return ": ".join([*parts, self.message])


@dataclass(frozen=True, slots=True)
class DesiredPlan:
    """A plan as the spec wants it. ``fields`` holds the managed fields (declared, and not
    in ignore_changes); ``None`` means "not managed: leave it as it is"."""

    id: str
    name: str | None
    fields: PlanFields
    cancel: bool  # status: cancelled (then fields.status is None)
    currency: str | None  # ISO 4217 alpha; an assertion, never written
    prevent_cancel: bool
    ignore_changes: frozenset[str]
    location: Location

    @property
    def managed(self) -> tuple[str, ...]:
        """The spec field names this plan manages, status included when declared."""
        declared = tuple(f for f in NAMES if getattr(self.fields, f) is not None)
        return ("status", *declared) if self.cancel else declared
