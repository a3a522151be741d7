"""The difference between what the spec wants and what the gateway has. Pure.

``diff(desired, live, ...)`` decides one plan's Change (engine/plan.py): ``no-op``,
``update``, ``cancel`` or ``error``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping

from plansync import formats
from plansync.engine import impact
from plansync.engine.plan import Action, Change
from plansync.fields import NAMES, Kind, LivePlan, of_kind, to_json
from plansync.spec.model import DesiredPlan


def diff(desired: DesiredPlan, live: LivePlan | None, *, inquiry_error: str | None = None,
         known_cancelled: bool = False, exponents: Mapping[str, int] | None = None
         ) -> Change:
    """One plan's change, with its impact on charges and revenue. ``known_cancelled``:
    plansync's state recorded that it cancelled this plan (the gateway may not say so on
    inquiry)."""
    change = _decide(desired, live, inquiry_error, known_cancelled, exponents)
    if live is None or change.action is Action.ERROR:
        return change
    values = {name: getattr(live, name) for name in (*NAMES, "current_count")}
    return dataclasses.replace(change, impact=impact.of_change(
        values, live.currency, str(change.action), change.after))


def _decide(desired: DesiredPlan, live: LivePlan | None, inquiry_error: str | None,
            known_cancelled: bool, exponents: Mapping[str, int] | None) -> Change:

    def error(message: str) -> Change:
        return Change(desired.id, desired.name, Action.ERROR, error=message,
                      currency=live.currency if live else None,
                      live_fingerprint=fingerprint(live) if live else None)

    if live is None:
        return error(inquiry_error or "the plan could not be inquired")
    if known_cancelled:
        if desired.cancel:
            return Change(desired.id, desired.name, Action.NO_OP, {"status": "cancelled"},
                          {"status": "cancelled"}, currency=live.currency,
                          live_fingerprint=fingerprint(live))
        return error("plansync cancelled this plan earlier and cancellation is final; "
                     "declare status: cancelled, or remove the plan from the spec")
    if desired.currency and desired.currency != live.currency:
        return error(f"the live plan is in {live.currency}, not {desired.currency} as declared; "
                     "a plan's currency cannot be changed")
    if desired.cancel:
        if desired.prevent_cancel:
            return error("status is cancelled but lifecycle.prevent_cancel forbids it")
        return Change(desired.id, desired.name, Action.CANCEL, {"status": live.status},
                      {"status": "cancelled"}, ("status",), currency=live.currency,
                      live_fingerprint=fingerprint(live))
    problem = _impossible(desired, live, exponents)
    if problem:
        return error(problem)
    before = {name: getattr(live.fields, name) for name in desired.managed}
    after = {name: getattr(desired.fields, name) for name in desired.managed}
    changed = tuple(name for name in desired.managed if before[name] != after[name])
    return Change(desired.id, desired.name, Action.UPDATE if changed else Action.NO_OP,
                  before, after, changed, currency=live.currency,
                  live_fingerprint=fingerprint(live))


def _impossible(desired: DesiredPlan, live: LivePlan,
                exponents: Mapping[str, int] | None) -> str | None:
    """Why the spec cannot be applied to this live plan, if it cannot."""
    count = desired.fields.recurring_count
    if count and live.current_count and count < live.current_count:
        return (f"recurring_count {count} is below the {live.current_count} charges already "
                "made; use a larger count, or 0 for until cancelled")
    exponent = formats.currency_exponent(live.currency, exponents)
    for name in of_kind(Kind.AMOUNT):
        value = getattr(desired.fields, name)
        if value is None:
            continue
        try:  # the one rule: decimals of the live currency, digits of the wire field
            formats.minor_units(value, exponent, live.currency)
        except ValueError as exc:
            return f"{name} {exc}, in the live plan's currency {live.currency}"
    return None


def fingerprint(live: LivePlan) -> str:
    """What the plan was made from: every updatable field and the currency. A write at
    apply time proceeds only if live still has this fingerprint."""
    values = {name: to_json(getattr(live.fields, name)) for name in NAMES}
    values["currency"] = live.currency
    blob = json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()[:32]
