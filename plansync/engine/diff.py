"""The difference between what the spec wants and what the gateway has. Pure.

``diff(desired, live, ...)`` decides one plan's Change (engine/plan.py): ``no-op``,
``update``, ``cancel`` or ``error``.

It runs once per plan on the thread that collects the inquiries (which shares the GIL
with the workers sealing and opening them), so each plan's work is kept to reading
fields: a Change is built once, with its impact; the fingerprint's text is written
directly, and plans alike (most of a book) share its string.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any

from plansync import formats
from plansync.engine import impact
from plansync.engine.plan import Action, Change
from plansync.fields import Kind, LivePlan, of_kind
from plansync.spec.model import DesiredPlan

_AMOUNTS = of_kind(Kind.AMOUNT)


def diff(desired: DesiredPlan, live: LivePlan | None, *, inquiry_error: str | None = None,
         known_cancelled: bool = False, exponents: Mapping[str, int] | None = None
         ) -> Change:
    """One plan's change, with its impact on charges and revenue. ``known_cancelled``:
    plansync's state recorded that it cancelled this plan (the gateway may not say so on
    inquiry)."""
    if live is None:
        return Change(desired.id, desired.name, Action.ERROR,
                      error=inquiry_error or "the plan could not be inquired")
    decided = _decide(desired, live, known_cancelled, exponents)
    if isinstance(decided, str):
        return Change(desired.id, desired.name, Action.ERROR, error=decided,
                      currency=live.currency, live_fingerprint=fingerprint(live))
    action, before, after, changed = decided
    return Change(desired.id, desired.name, action, before, after, changed,
                  currency=live.currency, live_fingerprint=fingerprint(live),
                  impact=impact.of_change(_impact_values(live), live.currency, str(action),
                                          after))


def _impact_values(live: LivePlan) -> dict[str, Any]:
    """The live fields impact.of_change reads."""
    return {"status": live.status, "amount": live.amount,
            "recurring_interval": live.recurring_interval,
            "recurring_count": live.recurring_count, "current_count": live.current_count,
            "charge_next_date": live.charge_next_date}


def _decide(desired: DesiredPlan, live: LivePlan, known_cancelled: bool,
            exponents: Mapping[str, int] | None
            ) -> str | tuple[Action, dict[str, Any], dict[str, Any], tuple[str, ...]]:
    """Why the plan cannot be planned, or (action, before, after, changed fields)."""
    if known_cancelled:
        if desired.cancel:
            return Action.NO_OP, {"status": "cancelled"}, {"status": "cancelled"}, ()
        return ("plansync cancelled this plan earlier and cancellation is final; "
                "declare status: cancelled, or remove the plan from the spec")
    if desired.currency and desired.currency != live.currency:
        return (f"the live plan is in {live.currency}, not {desired.currency} as declared; "
                "a plan's currency cannot be changed")
    if desired.cancel:
        if desired.prevent_cancel:
            return "status is cancelled but lifecycle.prevent_cancel forbids it"
        return Action.CANCEL, {"status": live.status}, {"status": "cancelled"}, ("status",)
    problem = _impossible(desired, live, exponents)
    if problem:
        return problem
    wanted = desired.fields
    managed = desired.managed
    # LivePlan and PlanFields name the updatable fields alike (fields.py).
    before = {name: getattr(live, name) for name in managed}
    after = {name: getattr(wanted, name) for name in managed}
    changed = tuple(name for name in managed if before[name] != after[name])
    if changed:
        return Action.UPDATE, before, after, changed
    if all(_alike(before[name], after[name]) for name in managed):
        after = before  # one dict for both sides: most plans of a big plan are these
    return Action.NO_OP, before, after, changed


def _alike(live: Any, wanted: Any) -> bool:
    """Equal, and written alike: 99.9 and 99.90 are equal amounts, each shown as it is."""
    return type(live) is type(wanted) and (live == wanted if type(live) is not Decimal
                                           else str(live) == str(wanted))


def _impossible(desired: DesiredPlan, live: LivePlan,
                exponents: Mapping[str, int] | None) -> str | None:
    """Why the spec cannot be applied to this live plan, if it cannot."""
    count = desired.fields.recurring_count
    if count and live.current_count and count < live.current_count:
        return (f"recurring_count {count} is below the {live.current_count} charges already "
                "made; use a larger count, or 0 for until cancelled")
    exponent = formats.currency_exponent(live.currency, exponents)
    for name in _AMOUNTS:
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
    apply time proceeds only if live still has this fingerprint.

    The SHA-256 (first 32 hex digits) of the compact JSON object of those fields by name,
    keys sorted, values as the state holds them (fields.to_json)."""
    return _fingerprint(  # in _KEYS' order; amounts and dates as fields.to_json writes them
        live.allow_accumulate, _text(live.amount), _text(live.charge_next_date),
        live.charge_on_date, live.currency, _text(live.max_accumulate_amount),
        live.recurring_count, live.recurring_interval, live.status)


def _text(value: Any) -> Any:
    """fields.to_json, for the fields of one kind."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


# The keys in sorted order, as json.dumps(sort_keys=True) writes them.
_KEYS = ("allow_accumulate", "amount", "charge_next_date", "charge_on_date", "currency",
         "max_accumulate_amount", "recurring_count", "recurring_interval", "status")


@functools.lru_cache(maxsize=4096, typed=True)  # typed: True and 1 are not alike here
def _fingerprint(*values: Any) -> str:
    blob = "{" + ",".join(f'"{key}":{_json(value)}' for key, value in zip(_KEYS, values,
                                                                           strict=True)) + "}"
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:32]


def _json(value: Any) -> str:
    """json.dumps(value) (ensure_ascii, as its default), for the values fields hold."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return int.__repr__(value)
    if type(value) is str:
        return encode_basestring_ascii(value)
    return json.dumps(value)
