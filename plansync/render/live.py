"""Live plans (inquiry answers) as a table, and each as the dict the JSON view prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plansync.fields import FIELDS, LivePlan, to_json


def as_dict(plan: LivePlan) -> dict[str, Any]:
    """The documented JSON shape of one live plan: amounts as strings, dates as ISO."""
    return {"id": plan.id, **{field.name: to_json(getattr(plan, field.name))
                              for field in FIELDS}}


def as_table(plans: Sequence[LivePlan]) -> str:
    header = ("PLAN", "STATUS", "AMOUNT", "EVERY", "CHARGES", "NEXT CHARGE", "CARD")
    rows = [header] + [
        (
            plan.id,
            plan.status,
            f"{plan.amount} {plan.currency}",
            f"{plan.recurring_interval} days" if plan.recurring_interval else "-",
            f"{plan.current_count or 0} of {_count(plan.recurring_count)}",
            _text(plan.charge_next_date) or "-",
            plan.masked_card_no or "-",
        )
        for plan in plans
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows)


def _count(total: int | None) -> str:
    if total is None:
        return "?"
    return "unlimited" if total == 0 else str(total)


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
