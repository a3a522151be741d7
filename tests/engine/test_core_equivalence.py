"""The plan core's cheaper implementations (issue 23) against the ones they replaced, on
random inputs: the same fingerprints, digests, changes, outlooks and errors, written
alike (99.9 and 99.90 are equal Decimals, shown differently; so values are compared by
their text and type, not by ==).

The reference implementations below are the replaced code, kept here as it was."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from plansync import formats
from plansync.engine import impact
from plansync.engine.diff import diff, fingerprint
from plansync.engine.plan import Action, Change
from plansync.fields import NAMES, Kind, LivePlan, PlanFields, of_kind, to_json
from plansync.render import money
from plansync.spec import loader
from plansync.spec.model import DesiredPlan, Location

# --- the replaced code ----------------------------------------------------------------


def old_fingerprint(live: LivePlan) -> str:
    values = {name: to_json(getattr(live.fields, name)) for name in NAMES}
    values["currency"] = live.currency
    blob = json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()[:32]


def old_digest(plans: list[DesiredPlan]) -> str:
    canonical = [
        {"id": p.id, "name": p.name, "cancel": p.cancel, "currency": p.currency,
         "prevent_cancel": p.prevent_cancel, "ignore_changes": sorted(p.ignore_changes),
         **{f: to_json(getattr(p.fields, f)) for f in NAMES}}
        for p in sorted(plans, key=lambda p: p.id)
    ]
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def old_minor_units(amount: Decimal, exponent: int | None, currency: str | None = None) -> int:
    sign, digits, power = amount.as_tuple()
    shown = formats._quoted(amount)
    if not isinstance(power, int):
        raise ValueError(f"amount {shown} is not a number")
    if sign:
        raise ValueError(f"{shown} is negative: an amount has no sign")
    decimals = max(-power, 0)
    if exponent is None:
        if decimals > formats.MAX_DECIMALS:
            raise ValueError(f"{shown} has more than {formats.MAX_DECIMALS} decimals, more "
                             "than any currency allows")
        exponent = decimals
    elif decimals > exponent:
        raise ValueError(f"{shown} has more decimals than {currency or 'the currency'} "
                         f"allows ({exponent})")
    significant = "".join(map(str, digits)).lstrip("0")
    if len(significant) + power + exponent > formats.AMOUNT_DIGITS:
        raise ValueError(f"{shown} is more than the gateway's {formats.AMOUNT_DIGITS}-digit "
                         "amounts can carry")
    return int((significant or "0") + "0" * (power + exponent))


def old_masked_card(text: str) -> str:
    positions = sum(char.isdigit() or char in "Xx*" for char in text)
    first = 6 if positions >= 13 else 0
    shown, position = [], 0
    for char in text:
        if char.isdigit() or char in "Xx*":
            keep = position < first or position >= positions - 4
            shown.append(char if keep or not char.isdigit() else "X")
            position += 1
        else:
            shown.append(char)
    return "".join(shown)


def old_outlook(terms: impact.Terms) -> impact.Outlook:
    made = terms.current or 0
    left = None if not terms.count else max(terms.count - made, 0)
    charges = terms.active and (left is None or left > 0)
    if not charges:
        return impact.NO_CHARGES
    total = None if left is None else terms.amount * left
    return impact.Outlook(True, terms.next_date, terms.amount, left, total,
                          impact.monthly(terms.amount, terms.interval))


def old_diff(desired: DesiredPlan, live: LivePlan | None, *, inquiry_error: str | None = None,
             known_cancelled: bool = False, exponents: dict[str, int] | None = None
             ) -> Change:
    def error(message: str) -> Change:
        return Change(desired.id, desired.name, Action.ERROR, error=message,
                      currency=live.currency if live else None,
                      live_fingerprint=old_fingerprint(live) if live else None)

    def decide() -> Change:
        if live is None:
            return error(inquiry_error or "the plan could not be inquired")
        if known_cancelled:
            if desired.cancel:
                return Change(desired.id, desired.name, Action.NO_OP, {"status": "cancelled"},
                              {"status": "cancelled"}, currency=live.currency,
                              live_fingerprint=old_fingerprint(live))
            return error("plansync cancelled this plan earlier and cancellation is final; "
                         "declare status: cancelled, or remove the plan from the spec")
        if desired.currency and desired.currency != live.currency:
            return error(f"the live plan is in {live.currency}, not {desired.currency} as "
                         "declared; a plan's currency cannot be changed")
        if desired.cancel:
            if desired.prevent_cancel:
                return error("status is cancelled but lifecycle.prevent_cancel forbids it")
            return Change(desired.id, desired.name, Action.CANCEL, {"status": live.status},
                          {"status": "cancelled"}, ("status",), currency=live.currency,
                          live_fingerprint=old_fingerprint(live))
        count = desired.fields.recurring_count
        if count and live.current_count and count < live.current_count:
            return error(f"recurring_count {count} is below the {live.current_count} charges "
                         "already made; use a larger count, or 0 for until cancelled")
        exponent = formats.currency_exponent(live.currency, exponents)
        for name in of_kind(Kind.AMOUNT):
            value = getattr(desired.fields, name)
            if value is None:
                continue
            try:
                old_minor_units(value, exponent, live.currency)
            except ValueError as exc:
                return error(f"{name} {exc}, in the live plan's currency {live.currency}")
        before = {name: getattr(live.fields, name) for name in desired.managed}
        after = {name: getattr(desired.fields, name) for name in desired.managed}
        changed = tuple(name for name in desired.managed if before[name] != after[name])
        return Change(desired.id, desired.name, Action.UPDATE if changed else Action.NO_OP,
                      before, after, changed, currency=live.currency,
                      live_fingerprint=old_fingerprint(live))

    change = decide()
    if live is None or change.action is Action.ERROR:
        return change
    values = {name: getattr(live, name) for name in (*NAMES, "current_count")}
    before_terms = impact.terms_of(values, live.currency)
    if change.action == "no-op":
        seen = old_outlook(before_terms)
        planned = impact.PlanImpact(live.currency, seen, seen, "unchanged")
    else:
        target = impact.terms_of({**values, **change.after}, live.currency)
        kind = ("cancel" if change.action == "cancel" else
                ("pause" if before_terms.active else "resume")
                if before_terms.active != target.active else "update")
        planned = impact.PlanImpact(live.currency, old_outlook(before_terms),
                                    old_outlook(target), kind)
    return dataclasses.replace(change, impact=planned)


# --- comparing, value by value, as written --------------------------------------------


def written(value: Any) -> Any:
    """A value with its type and text: equal Decimals written differently differ."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, tuple(written(getattr(value, f.name))
                                            for f in dataclasses.fields(value)))
    if isinstance(value, dict):
        return ("dict", tuple((k, written(v)) for k, v in value.items()))
    if isinstance(value, tuple | list):
        return ("tuple", tuple(written(v) for v in value))
    return (type(value).__name__, str(value))


# --- random plans ---------------------------------------------------------------------

CURRENCIES = st.sampled_from(["SGD", "JPY", "BHD", "THB", "CLF"])
AMOUNTS = st.one_of(
    *(st.decimals(min_value=0, max_value=Decimal("99999999.9999"), places=places)
      for places in (0, 1, 2, 3, 4)),
    st.sampled_from([Decimal("10"), Decimal("10.0"), Decimal("10.00"), Decimal("10.000"),
                     Decimal("0"), Decimal("0.00"), Decimal("1E+2"), Decimal("-1.5"),
                     Decimal("999999999999"), Decimal("9999999999.99"), Decimal("12.3456"),
                     Decimal("12.34567"), Decimal("NaN")]),
)
WHOLE = st.one_of(st.none(), st.integers(0, 99999))
DATES = st.one_of(st.none(), st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31)))
DAY_MONTH = st.one_of(st.none(), st.sampled_from(["0712", "2902", "3112"]))


@st.composite
def live_plans(draw: Any, plan_id: str = "1") -> LivePlan:
    return LivePlan(
        id=plan_id, status=draw(st.sampled_from(["active", "inactive"])),
        amount=draw(AMOUNTS.filter(lambda d: d.is_finite() and d >= 0)),
        currency=draw(CURRENCIES), allow_accumulate=draw(st.one_of(st.none(), st.booleans())),
        max_accumulate_amount=draw(st.one_of(st.none(), AMOUNTS.filter(Decimal.is_finite))),
        recurring_interval=draw(st.one_of(st.none(), st.integers(1, 365))),
        recurring_count=draw(WHOLE), current_count=draw(WHOLE),
        charge_next_date=draw(DATES), charge_on_date=draw(DAY_MONTH),
        invoice_prefix=draw(st.one_of(st.none(), st.text(max_size=5))),
        masked_card_no=None)


@st.composite
def desired_plans(draw: Any, plan_id: str = "1") -> DesiredPlan:
    fields = PlanFields(
        status=draw(st.sampled_from([None, "active", "inactive"])),
        amount=draw(st.one_of(st.none(), AMOUNTS)),
        allow_accumulate=draw(st.one_of(st.none(), st.booleans())),
        max_accumulate_amount=draw(st.one_of(st.none(), AMOUNTS)),
        recurring_interval=draw(st.one_of(st.none(), st.integers(1, 365))),
        recurring_count=draw(WHOLE), charge_next_date=draw(DATES),
        charge_on_date=draw(DAY_MONTH))
    return DesiredPlan(
        id=plan_id, name=draw(st.one_of(st.none(), st.text(max_size=5))), fields=fields,
        cancel=draw(st.booleans()), currency=draw(st.one_of(st.none(), CURRENCIES)),
        prevent_cancel=draw(st.booleans()),
        ignore_changes=frozenset(draw(st.lists(st.sampled_from(NAMES), max_size=2))),
        location=Location("spec.yaml", 1, 1))


def like_live(desired: DesiredPlan, live: LivePlan, respell: bool) -> LivePlan:
    """``live`` with the spec's values where it has them: the no-op plans of a real book;
    ``respell``: its amounts equal, but written with more decimals (10.0 as 10.00)."""
    wanted = {name: getattr(desired.fields, name) for name in NAMES
              if getattr(desired.fields, name) is not None}
    if respell:
        wanted = {name: value + Decimal("0.00") if isinstance(value, Decimal) else value
                  for name, value in wanted.items()}
    return dataclasses.replace(live, **wanted)


# --- the properties -------------------------------------------------------------------


@settings(max_examples=400)
@given(live=live_plans())
def test_fingerprint_as_before(live: LivePlan) -> None:
    assert fingerprint(live) == old_fingerprint(live)


@settings(max_examples=400)
@given(amount=AMOUNTS, exponent=st.sampled_from([None, 0, 2, 3, 4]),
       currency=st.one_of(st.none(), CURRENCIES))
def test_minor_units_as_before(amount: Decimal, exponent: int | None,
                               currency: str | None) -> None:
    def outcome(function: Any) -> Any:
        try:
            return function(amount, exponent, currency)
        except ValueError as exc:
            return str(exc)

    assert outcome(formats.minor_units) == outcome(old_minor_units)


@settings(max_examples=400)
@given(desired=desired_plans(), live=st.one_of(st.none(), live_plans()),
       alike=st.booleans(), respell=st.booleans(), known_cancelled=st.booleans(),
       exponents=st.sampled_from([None, {}, {"SGD": 3}, {"JPY": 2}]))
def test_diff_as_before(desired: DesiredPlan, live: LivePlan | None, alike: bool,
                        respell: bool, known_cancelled: bool,
                        exponents: dict[str, int] | None) -> None:
    if live is not None and alike:
        live = like_live(desired, live, respell)
    kwargs: dict[str, Any] = {"inquiry_error": "inquiry failed: x" if live is None else None,
                              "known_cancelled": known_cancelled, "exponents": exponents}
    # Twice: the second time from the caches.
    for _ in range(2):
        new, old = diff(desired, live, **kwargs), old_diff(desired, live, **kwargs)
        assert written(new) == written(old)
        assert new == old


@settings(max_examples=200)
@given(plans=st.lists(desired_plans(), max_size=8), ids=st.lists(
    st.text(min_size=1, max_size=4), min_size=8, max_size=8, unique=True))
def test_digest_as_before(plans: list[DesiredPlan], ids: list[str]) -> None:
    plans = [dataclasses.replace(plan, id=plan_id)
             for plan, plan_id in zip(plans, ids[:len(plans)], strict=True)]
    assert loader.digest(plans) == old_digest(plans)


@settings(max_examples=400)
@given(active=st.booleans(), amount=AMOUNTS.filter(Decimal.is_finite),
       interval=st.one_of(st.none(), st.integers(0, 365)), count=WHOLE, current=WHOLE,
       next_date=DATES)
def test_outlook_as_before(active: bool, amount: Decimal, interval: int | None,
                           count: int | None, current: int | None,
                           next_date: date | None) -> None:
    terms = impact.Terms(active, amount, "SGD", interval, count, current, next_date)
    for _ in range(2):  # the second time from the caches
        assert written(impact.outlook(terms)) == written(old_outlook(terms))


@settings(max_examples=500)
@given(st.one_of(st.text(alphabet="0123456789Xx*", max_size=24),
                 st.text(alphabet="0123456789Xx*- \u0663\u00b2a", max_size=24)))
def test_masked_card_as_before(text: str) -> None:
    assert formats.masked_card(text) == old_masked_card(text)


def old_number(amount: Decimal, currency: str, sign: bool = False) -> str:
    shown = impact.for_display(amount, impact.places(currency))
    return f"{shown:+f}" if sign else f"{shown:f}"


@settings(max_examples=400)
@given(amount=st.one_of(AMOUNTS.filter(Decimal.is_finite), st.decimals(
    allow_nan=False, allow_infinity=False, places=34, max_value=10**6, min_value=-10**6)),
       currency=CURRENCIES, sign=st.booleans())
def test_money_number_as_before(amount: Decimal, currency: str, sign: bool) -> None:
    for _ in range(2):  # the second time from the cache
        assert money.number(amount, currency, sign) == old_number(amount, currency, sign)
