"""How impact reads in plans (text and Markdown alike): amounts rounded to the currency's
minor unit only here, signs on changes, "open-ended" and "no further charges"."""

from __future__ import annotations

import functools
from decimal import Decimal

from plansync.engine.impact import CurrencyImpact, Outlook, PlanImpact, for_display, places


def number(amount: Decimal, currency: str, sign: bool = False) -> str:
    """The amount at the currency's decimal places, without its code."""
    return _number(str(amount), currency, sign)


# A plan shows the same few prices, totals and MRRs plan after plan. Keyed by the amount's
# text: Decimal(str(amount)) is the very amount (equal Decimals may be written apart).
@functools.lru_cache(maxsize=4096)
def _number(amount: str, currency: str, sign: bool) -> str:
    shown = for_display(Decimal(amount), places(currency))
    return f"{shown:+f}" if sign else f"{shown:f}"


def money(amount: Decimal, currency: str, sign: bool = False) -> str:
    return f"{number(amount, currency, sign)} {currency}"


def next_charge(seen: Outlook, currency: str) -> str:
    if not seen.charges or seen.next_amount is None:
        return "no further charges"
    when = seen.next_date.isoformat() if seen.next_date else "on a date the gateway did not say"
    return f"{when}, {money(seen.next_amount, currency)}"


def remaining(seen: Outlook, currency: str) -> str:
    if not seen.charges:
        return "none"
    if seen.remaining is None or seen.remaining_total is None:
        return "open-ended"
    plural = "charge" if seen.remaining == 1 else "charges"
    return f"{seen.remaining} {plural}, {money(seen.remaining_total, currency)}"


def plan_lines(impact: PlanImpact) -> list[str]:
    """Three lines on what one change does: next charge, remaining, MRR."""
    c = impact.currency
    lines = [f"next charge: {next_charge(impact.before, c)} -> {next_charge(impact.after, c)}",
             f"remaining:   {remaining(impact.before, c)} -> {remaining(impact.after, c)}"]
    mrr = f"MRR:         {money(impact.before.mrr, c)} -> {money(impact.after.mrr, c)}"
    if impact.mrr_change:
        mrr += f" ({money(impact.mrr_change, c, sign=True)})"
    return [*lines, mrr]


def percent(impact: CurrencyImpact) -> str:
    if impact.percent is None:
        return "new" if impact.mrr_after else "-"
    return f"{for_display(impact.percent, 1):+f}%"


def summary_line(impact: CurrencyImpact) -> str:
    c = impact.currency
    parts = [f"MRR {money(impact.mrr_before, c)} -> {money(impact.mrr_after, c)} "
             f"({money(impact.mrr_change, c, sign=True)}, {percent(impact)})"]
    if impact.stopped_by_cancels:
        parts.append(f"cancels stop {money(impact.stopped_by_cancels, c)}")
    if impact.paused_by_pauses:
        parts.append(f"pauses suspend {money(impact.paused_by_pauses, c)}")
    if impact.contract_added or impact.contract_removed:
        parts.append(f"remaining contract +{money(impact.contract_added, c)} / "
                     f"-{money(impact.contract_removed, c)}")
    parts.append(f"{impact.customers} customer{'' if impact.customers == 1 else 's'}")
    parts.append(f"{impact.charging_within_day} charged within 24 h, "
                 f"{impact.charging_within_week} within 7 days")
    return "; ".join(parts)
