"""What a change does to customers and revenue: the arithmetic, and its rules. Pure.

The rules (the README's "Money in the plan" says the same):
- **Monthly recurring revenue** of a plan that still charges is ``amount x 30 /
  recurring_interval``: a month is 30 days, so a 7-day plan brings 30/7 charges a month
  and a 365-day plan 30/365. In the plan's own currency, never summed across currencies;
  kept exact (Decimal, 34 digits) and rounded to the currency's minor unit only to show.
- A plan **still charges** when it is active and its count is not used up:
  ``recurring_count`` 0 means open-ended, else ``recurring_count - current_count`` charges
  remain. A ``current_count`` the gateway leaves out counts as 0 (none made yet), and a
  ``recurring_count`` it leaves out as open-ended: the readings that never hide a charge.
- **The next charge** is ``charge_next_date`` at the (new) amount, if the plan still
  charges; otherwise there are no further charges (a cancel, a pause, a used-up count).
  A plan without ``charge_next_date`` charges on a date the gateway did not say.
- **Remaining charges** and their total: ``(recurring_count - current_count) x amount``;
  open-ended plans have no total. A plan that no longer charges has none.
- **Per currency**, over every plan in the plan (unchanged ones too, so that the
  percentage is of the whole book): MRR before and after; the MRR cancels stop and
  pauses suspend; remaining contract value added and removed (open-ended plans have
  none); customers (changed plans); and how many changed plans charge within 24 hours
  and 7 days of the plan being made — a charge date counts from 00:00 UTC, as the
  apply's charge window counts it.
"""

from __future__ import annotations

import decimal
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from plansync import formats

DAYS_PER_MONTH = 30
_EXACT = decimal.Context(prec=34)  # divisions like 30/7 carry 34 digits until shown


@dataclass(frozen=True, slots=True)
class Terms:
    """What a plan is set to charge, at one moment."""

    active: bool
    amount: Decimal
    currency: str
    interval: int | None  # days between charges
    count: int | None  # charges in all; 0 = open-ended; None = not known
    current: int | None  # charges made so far; None = not said (read as 0)
    next_date: date | None


@dataclass(frozen=True, slots=True)  # one or two per plan: 100,000 in a big plan
class Outlook:
    """What the plan will charge from here on, under one set of terms."""

    charges: bool  # it still charges
    next_date: date | None  # when, if it charges and the gateway said
    next_amount: Decimal | None  # how much, if it charges
    remaining: int | None  # charges left; None = open-ended (only when it charges)
    remaining_total: Decimal | None  # their sum; None = open-ended
    mrr: Decimal  # monthly recurring revenue; 0 when it no longer charges


NO_CHARGES = Outlook(False, None, None, 0, Decimal(0), Decimal(0))


def outlook(terms: Terms) -> Outlook:
    made = terms.current or 0
    left = None if not terms.count else max(terms.count - made, 0)
    charges = terms.active and (left is None or left > 0)
    if not charges:
        return NO_CHARGES
    # A book holds a few prices and intervals: its plans share these Decimals (a big
    # plan holds one or two outlooks per plan), keyed by the amount as written.
    amount = str(terms.amount)
    total = None if left is None else _times(amount, left)
    return Outlook(True, terms.next_date, terms.amount, left, total,
                   _monthly(amount, terms.interval) if terms.interval else _ZERO)


def monthly(amount: Decimal, interval: int | None) -> Decimal:
    """amount x 30 / interval: what a plan charging every ``interval`` days brings in a
    30-day month (0 when the interval is not known)."""
    if not interval:
        return Decimal(0)
    return _EXACT.divide(_EXACT.multiply(amount, Decimal(DAYS_PER_MONTH)), Decimal(interval))


_ZERO = Decimal(0)


# Keyed by str(amount), not the amount: 10.0 and 10.00 are equal Decimals, and products
# keep their exponents. Decimal(str(amount)) is the very amount.
@functools.lru_cache(maxsize=4096)
def _monthly(amount: str, interval: int) -> Decimal:
    return monthly(Decimal(amount), interval)


@functools.lru_cache(maxsize=4096)
def _times(amount: str, count: int) -> Decimal:
    return Decimal(amount) * count


def terms_of(values: Mapping[str, Any], currency: str) -> Terms:
    """Terms from a plan's field values by spec name (a live plan's, or the spec's over
    them): status active/inactive/cancelled, amount, recurring_interval,
    recurring_count, current_count, charge_next_date."""
    return Terms(active=values.get("status") == "active", amount=values["amount"],
                 currency=currency, interval=values.get("recurring_interval"),
                 count=values.get("recurring_count"), current=values.get("current_count"),
                 next_date=values.get("charge_next_date"))


@dataclass(frozen=True, slots=True)
class PlanImpact:
    """One plan's outlook before and after its change."""

    currency: str
    before: Outlook
    after: Outlook
    kind: str = "update"  # update | cancel | pause | resume | unchanged

    @property
    def mrr_change(self) -> Decimal:
        return _EXACT.subtract(self.after.mrr, self.before.mrr)

    @property
    def stops(self) -> bool:
        """It charged, and will not any more."""
        return self.before.charges and not self.after.charges


def plan_impact(before: Terms, after: Terms, kind: str = "update") -> PlanImpact:
    return PlanImpact(before.currency, outlook(before), outlook(after), kind)


def of_change(live: Mapping[str, Any], currency: str, action: str,
              after: Mapping[str, Any]) -> PlanImpact:
    """A planned change's impact: ``live`` field values by spec name (current_count
    included), ``action`` no-op | update | cancel, ``after`` the values it sets."""
    before = terms_of(live, currency)
    if action == "no-op":  # the same terms: one outlook serves both sides
        seen = outlook(before)
        return PlanImpact(currency, seen, seen, "unchanged")
    target = terms_of({**live, **after}, currency)
    if action == "cancel":
        kind = "cancel"
    elif before.active != target.active:
        kind = "pause" if before.active else "resume"
    else:
        kind = "update"
    return plan_impact(before, target, kind)


@dataclass(frozen=True)
class CurrencyImpact:
    currency: str
    mrr_before: Decimal
    mrr_after: Decimal
    stopped_by_cancels: Decimal  # MRR
    paused_by_pauses: Decimal  # MRR
    contract_added: Decimal  # remaining charges' value
    contract_removed: Decimal
    customers: int  # changed plans
    charging_within_day: int  # changed plans whose next charge is within 24 hours
    charging_within_week: int  # … within 7 days

    @property
    def mrr_change(self) -> Decimal:
        return _EXACT.subtract(self.mrr_after, self.mrr_before)

    @property
    def percent(self) -> Decimal | None:
        """The change as a percentage of the MRR before (None when that was 0)."""
        if not self.mrr_before:
            return None
        return _EXACT.divide(self.mrr_change * 100, self.mrr_before)


def summarize(impacts: Iterable[PlanImpact], made_at: datetime) -> list[CurrencyImpact]:
    """Per currency, in alphabetical order; never summed across currencies."""
    totals: dict[str, dict[str, Any]] = {}
    for impact in impacts:
        into = totals.setdefault(impact.currency, {
            "mrr_before": Decimal(0), "mrr_after": Decimal(0),
            "stopped_by_cancels": Decimal(0), "paused_by_pauses": Decimal(0),
            "contract_added": Decimal(0), "contract_removed": Decimal(0),
            "customers": 0, "charging_within_day": 0, "charging_within_week": 0})
        into["mrr_before"] = _EXACT.add(into["mrr_before"], impact.before.mrr)
        into["mrr_after"] = _EXACT.add(into["mrr_after"], impact.after.mrr)
        if impact.kind == "unchanged":
            continue
        into["customers"] += 1
        if impact.kind in ("cancel", "pause"):
            key = "stopped_by_cancels" if impact.kind == "cancel" else "paused_by_pauses"
            into[key] = _EXACT.add(into[key], impact.before.mrr)
        before, after = impact.before.remaining_total, impact.after.remaining_total
        if before is not None and after is not None:
            into["contract_added" if after > before else "contract_removed"] += abs(after - before)
        due = until(impact.after.next_date, made_at)
        into["charging_within_day"] += due is not None and due < timedelta(hours=24)
        into["charging_within_week"] += due is not None and due < timedelta(days=7)
    return [CurrencyImpact(currency, **values) for currency, values in sorted(totals.items())]


def until(next_date: date | None, made_at: datetime) -> timedelta | None:
    """How long after ``made_at`` a charge on ``next_date`` falls (from 00:00 UTC)."""
    if next_date is None:
        return None
    return datetime.combine(next_date, time(0), tzinfo=UTC) - made_at


@functools.lru_cache(maxsize=256)  # asked for every amount shown, of a few currencies
def places(currency: str) -> int:
    """Decimal places to show amounts of ``currency`` with: its ISO 4217 minor unit (2
    for a currency ISO gives none, such as a precious metal)."""
    try:
        return formats.currency_exponent(currency)
    except (ValueError, KeyError):
        return 2


@functools.cache
def _unit(exponent: int) -> Decimal:
    """The minor unit of a currency of ``exponent`` decimals: 0.01 for 2."""
    return Decimal(1).scaleb(-exponent)


def for_display(amount: Decimal, exponent: int) -> Decimal:
    """Rounded to the currency's minor unit (half even, as money is), only to show."""
    return amount.quantize(_unit(exponent), rounding=decimal.ROUND_HALF_EVEN)


def exact_text(amount: Decimal, exponent: int) -> str:
    """An exact amount as JSON text: at the currency's minor unit when that is exact
    (``120.00``, ``0.00``), else every digit kept (``8.333333333333333333333333333333333``)."""
    shown = amount.quantize(_unit(exponent), context=_EXACT)
    return f"{shown:f}" if shown == amount else f"{amount:f}"

