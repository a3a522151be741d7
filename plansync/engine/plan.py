"""A plan: what would change, plan by plan, and where it was computed; and its JSON
form (schemas/plan.schema.json) for --json, --out and `plansync show`. Pure.

engine/diff.py computes Changes; the renderers, the guardrails, the applier and plan
files read them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from plansync import schema_files
from plansync.engine.impact import (
    CurrencyImpact,
    Outlook,
    PlanImpact,
    exact_text,
    places,
    summarize,
)
from plansync.errors import PlansyncError
from plansync.fields import to_json, values_from_json

SCHEMA_NAME = "plan.schema.json"


class Action(StrEnum):
    NO_OP = "no-op"
    UPDATE = "update"
    CANCEL = "cancel"
    ERROR = "error"


@dataclass(frozen=True, slots=True)  # one per plan: 100,000 in a big plan
class Change:
    """One plan's part of a Plan. ``before``/``after`` hold the managed fields, by the
    spec's names, as live has them and as the spec wants them."""

    id: str
    name: str | None
    action: Action
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    changed_fields: tuple[str, ...] = ()
    error: str | None = None
    currency: str | None = None  # the live plan's, which decides the wire format
    live_fingerprint: str | None = None
    impact: PlanImpact | None = None  # what it does to charges and revenue

    @property
    def unchanged(self) -> int:
        return len(self.after) - len(self.changed_fields)


@dataclass(frozen=True)
class PendingWrite:
    """A write an earlier run sent whose outcome is not known yet (its answer was lost,
    or the run was killed): it may still land until ``until``, the sending time plus the
    settle window, and apply does not write that plan again before then."""

    id: str
    action: str  # "update" | "cancel"
    sent_at: datetime
    until: datetime


@dataclass(frozen=True)
class Plan:
    created_at: datetime
    merchant_id: str
    endpoint: str
    spec_digest: str
    key_fingerprint: str
    tool_version: str
    changes: tuple[Change, ...]
    spec_paths: tuple[str, ...] = ()  # what `apply --plan` re-reads to see the spec is unchanged
    # In the state, not declared by this spec: apply leaves them alone and the state keeps
    # remembering them (only `state rm` forgets). Shown, never acted on.
    unmanaged: tuple[str, ...] = ()
    format_version: int = 2  # 2 adds the impact; version 1 files are still read
    pending: tuple[PendingWrite, ...] = ()  # earlier writes to these plans not settled yet

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(change.action for change in self.changes)
        return {"update": counts[Action.UPDATE], "cancel": counts[Action.CANCEL],
                "no_op": counts[Action.NO_OP], "error": counts[Action.ERROR]}

    @functools.cached_property  # read by the renderers and the guardrails alike
    def impact(self) -> list[CurrencyImpact]:
        """Per currency, what the plan does to revenue and customers."""
        return summarize((c.impact for c in self.changes if c.impact), self.created_at)

    @property
    def has_changes(self) -> bool:
        """Anything for apply to write."""
        return any(c.action in (Action.UPDATE, Action.CANCEL) for c in self.changes)


def with_pending(plan: Plan, intents: Iterable[Any], window: timedelta) -> Plan:
    """``plan`` saying which of its plans have a write still pending (``intents``: the
    state's, engine/state.py Intent), each until ``window`` after it was sent."""
    ids = {change.id for change in plan.changes}
    pending = sorted((PendingWrite(intent.plan, intent.action, intent.sent_at,
                                   intent.sent_at + window)
                      for intent in intents if intent.plan in ids),
                     key=lambda write: (write.id, write.sent_at))
    return dataclasses.replace(plan, pending=tuple(pending))


# --- the JSON form ------------------------------------------------------------------

def _time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def dump(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": plan.format_version,
        "created_at": _time(plan.created_at),
        "tool_version": plan.tool_version,
        "merchant_id": plan.merchant_id,
        "endpoint": plan.endpoint,
        "spec_digest": plan.spec_digest,
        "key_fingerprint": plan.key_fingerprint,
        "spec_paths": list(plan.spec_paths),
        "changes": [_dump_change(change) for change in plan.changes],
        "unmanaged": list(plan.unmanaged),
        "pending": [{"id": write.id, "action": write.action, "sent_at": _time(write.sent_at),
                     "until": _time(write.until)} for write in plan.pending],
        "summary": {**plan.summary,
                    "impact": [_dump_summary(impact) for impact in plan.impact]},
    }


def _dump_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_json(v) for k, v in values.items()}


def _dump_change(change: Change) -> dict[str, Any]:
    before = _dump_values(change.before)  # a no-op's after is often the very same dict
    data: dict[str, Any] = {
        "id": change.id,
        "name": change.name,
        "action": str(change.action),
        "before": before,
        "after": before if change.after is change.before else _dump_values(change.after),
        "changed_fields": list(change.changed_fields),
        "currency": change.currency,
        "live_fingerprint": change.live_fingerprint,
    }
    if change.error is not None:
        data["error"] = change.error
    if change.impact is not None:
        data["impact"] = _dump_impact(change.impact)
    return data


def _dump_impact(impact: PlanImpact) -> dict[str, Any]:
    exponent = places(impact.currency)
    before = _dump_outlook(impact.before, exponent)
    return {"kind": impact.kind, "before": before,
            "after": before if impact.after is impact.before
            else _dump_outlook(impact.after, exponent),
            "mrr_change": exact_text(impact.mrr_change, exponent)}


def _dump_outlook(seen: Outlook, exponent: int) -> dict[str, Any]:
    total = seen.remaining_total
    return {"charges": seen.charges,
            "next_charge": {"date": to_json(seen.next_date),
                            "amount": exact_text(seen.next_amount, exponent)}
            if seen.next_amount is not None else None,
            "remaining": seen.remaining,
            "remaining_total": None if total is None else exact_text(total, exponent),
            "mrr": exact_text(seen.mrr, exponent)}


def _dump_summary(impact: CurrencyImpact) -> dict[str, Any]:
    e = places(impact.currency)
    percent = impact.percent
    return {"currency": impact.currency, "mrr_before": exact_text(impact.mrr_before, e),
            "mrr_after": exact_text(impact.mrr_after, e),
            "mrr_change": exact_text(impact.mrr_change, e),
            "mrr_change_percent": None if percent is None else exact_text(percent, 2),
            "stopped_by_cancels": exact_text(impact.stopped_by_cancels, e),
            "paused_by_pauses": exact_text(impact.paused_by_pauses, e),
            "contract_added": exact_text(impact.contract_added, e),
            "contract_removed": exact_text(impact.contract_removed, e),
            "customers": impact.customers,
            "charging_within_24h": impact.charging_within_day,
            "charging_within_7d": impact.charging_within_week}


def _values(change: dict[str, Any], part: str) -> dict[str, Any]:
    """A change's before or after, by the one rule for amounts and whole numbers: a
    hand-edited 1E+2 or 7.0 is refused here, not sent."""
    try:
        return values_from_json(change[part])
    except ValueError as exc:
        raise ValueError(f"{part}.{exc}") from None


def _parse_impact(data: dict[str, Any], currency: str) -> PlanImpact:
    return PlanImpact(currency, _parse_outlook(data["before"]), _parse_outlook(data["after"]),
                      data["kind"])


def _parse_outlook(data: dict[str, Any]) -> Outlook:
    charge = data["next_charge"]
    return Outlook(
        charges=data["charges"],
        next_date=date.fromisoformat(charge["date"]) if charge and charge["date"] else None,
        next_amount=Decimal(charge["amount"]) if charge else None,
        remaining=data["remaining"],
        remaining_total=None if data["remaining_total"] is None
        else Decimal(data["remaining_total"]),
        mrr=Decimal(data["mrr"]))


def parse(data: Any, source: str) -> Plan:
    """A Plan from its JSON form, refusing anything the schema does not describe."""
    problem = schema_files.first_problem(SCHEMA_NAME, data)
    if problem is not None:
        raise PlansyncError(f"{source} is not a plansync plan: {problem}")
    # The schema cannot say that a date exists or that an impact's currency is known:
    # a value the schema lets through but that means nothing is refused here, by name.
    where = "created_at"
    try:
        created_at = _parse_time(data["created_at"])
        changes = []
        for change in data["changes"]:
            where = f"plan {change['id']}"
            changes.append(_parse_change(change))
        pending = []
        for write in data.get("pending", []):  # plans made before it was kept have none
            where = f"plan {write['id']}'s pending write"
            pending.append(PendingWrite(write["id"], write["action"],
                                        _parse_time(write["sent_at"]),
                                        _parse_time(write["until"])))
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        raise PlansyncError(f"{source} is not a plansync plan: {where}: {exc}") from None
    return Plan(
        format_version=data["format_version"],
        created_at=created_at,
        tool_version=data["tool_version"],
        merchant_id=data["merchant_id"],
        endpoint=data["endpoint"],
        spec_digest=data["spec_digest"],
        key_fingerprint=data["key_fingerprint"],
        changes=tuple(changes),
        spec_paths=tuple(data["spec_paths"]),
        unmanaged=tuple(data["unmanaged"]),
        pending=tuple(pending),
    )


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _parse_change(c: dict[str, Any]) -> Change:
    impact = c.get("impact")
    if impact and not c["currency"]:
        raise ValueError("an impact needs the plan's currency")
    return Change(id=c["id"], name=c["name"], action=Action(c["action"]),
                  before=_values(c, "before"), after=_values(c, "after"),
                  changed_fields=tuple(c["changed_fields"]), error=c.get("error"),
                  currency=c["currency"], live_fingerprint=c["live_fingerprint"],
                  impact=_parse_impact(impact, c["currency"]) if impact else None)
