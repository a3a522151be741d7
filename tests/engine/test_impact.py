"""The impact arithmetic, with literal values: what a change does to revenue and to the
next charges (plansync/engine/impact.py states the rules)."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from plansync.engine.impact import (
    Terms,
    for_display,
    monthly,
    outlook,
    plan_impact,
    summarize,
)

NEXT = date(2027, 1, 8)


def terms(amount: str = "99.90", currency: str = "SGD", interval: int | None = 30,
          count: int | None = 12, current: int | None = 3, active: bool = True,
          next_date: date | None = NEXT) -> Terms:
    return Terms(active, Decimal(amount), currency, interval, count, current, next_date)


@pytest.mark.parametrize(("amount", "interval", "exponent", "shown"), [
    ("99.90", 30, 2, "99.90"),  # monthly: as charged
    ("99.90", 7, 2, "428.14"),  # 30/7 charges a month: 428.142857…
    ("1200.00", 365, 2, "98.63"),  # yearly: 30/365 of it
    ("10.00", 1, 2, "300.00"),  # daily
    ("1500", 30, 0, "1500"),  # JPY: no minor unit
    ("1500", 7, 0, "6429"),  # 6428.57… rounds to whole yen
    ("12.345", 7, 3, "52.907"),  # BHD: three decimals, 52.90714…
])
def test_monthly_recurring_revenue_is_amount_times_30_over_the_interval(
        amount: str, interval: int, exponent: int, shown: str) -> None:
    exact = monthly(Decimal(amount), interval)
    assert abs(exact * interval - Decimal(amount) * 30) < Decimal("1e-25")  # 34 digits
    assert str(for_display(exact, exponent)) == shown


def test_an_active_plan_with_charges_left() -> None:
    seen = outlook(terms())
    assert seen.charges and (seen.next_date, seen.next_amount) == (NEXT, Decimal("99.90"))
    assert (seen.remaining, seen.remaining_total) == (9, Decimal("899.10"))
    assert seen.mrr == Decimal("99.90")


def test_an_open_ended_plan_has_no_total() -> None:
    seen = outlook(terms(count=0, current=40))
    assert seen.charges and seen.remaining is None and seen.remaining_total is None
    assert seen.mrr == Decimal("99.90")


def test_a_used_up_count_means_no_further_charges() -> None:
    seen = outlook(terms(count=12, current=12))
    assert not seen.charges and seen.next_date is None and seen.next_amount is None
    assert (seen.remaining, seen.remaining_total, seen.mrr) == (0, 0, 0)


def test_an_unsaid_current_count_counts_as_none_made() -> None:
    assert outlook(terms(count=12, current=None)).remaining == 12


def test_an_unsaid_count_reads_as_open_ended() -> None:
    seen = outlook(terms(count=None))
    assert seen.charges and seen.remaining is None


def test_an_amount_change() -> None:
    change = plan_impact(terms(), terms(amount="120.00"))
    assert change.mrr_change == Decimal("20.10")
    assert change.after.next_amount == Decimal("120.00") and not change.stops
    assert change.after.remaining_total - change.before.remaining_total == Decimal("180.90")


def test_a_cancel_stops_the_revenue_and_the_remaining_contract() -> None:
    change = plan_impact(terms(), terms(active=False))
    assert change.stops and change.mrr_change == Decimal("-99.90")
    assert change.after.next_date is None and change.after.remaining_total == 0
    assert change.before.remaining_total == Decimal("899.10")  # the contract value removed


def test_a_pause_and_a_resume() -> None:
    paused = plan_impact(terms(amount="1500", currency="JPY"),
                         terms(amount="1500", currency="JPY", active=False))
    assert paused.stops and paused.mrr_change == Decimal(-1500)
    resumed = plan_impact(terms(active=False), terms())
    assert not resumed.stops and resumed.mrr_change == Decimal("99.90")
    assert resumed.after.next_date == NEXT


def test_an_interval_change_moves_the_monthly_revenue() -> None:
    change = plan_impact(terms(amount="12.345", currency="BHD", interval=30),
                         terms(amount="12.345", currency="BHD", interval=365))
    assert for_display(change.mrr_change, 3) == Decimal("-11.330")  # 12.345 -> 1.01465…


def test_the_summary_is_per_currency_over_the_whole_book() -> None:
    made_at = datetime(2027, 1, 7, 12, 0, tzinfo=UTC)
    impacts = [
        plan_impact(terms(), terms(amount="120.00")),  # charges 2027-01-08: within 24 h
        plan_impact(terms(next_date=date(2027, 1, 12)), terms(active=False,
                    next_date=date(2027, 1, 12)), "cancel"),
        plan_impact(terms(amount="50.00", next_date=date(2027, 2, 1)),
                    terms(amount="50.00", active=False, next_date=date(2027, 2, 1)), "pause"),
        plan_impact(terms(amount="10.00"), terms(amount="10.00"), "unchanged"),
        plan_impact(terms(amount="1500", currency="JPY", count=0, next_date=date(2027, 1, 10)),
                    terms(amount="2000", currency="JPY", count=0,
                          next_date=date(2027, 1, 10))),
    ]
    jpy, sgd = summarize(impacts, made_at)
    assert (sgd.currency, sgd.mrr_before, sgd.mrr_after) == (
        "SGD", Decimal("259.80"), Decimal("130.00"))  # 99.90 x 2 + 50 + 10 -> 120 + 10
    assert sgd.mrr_change == Decimal("-129.80")
    assert for_display(sgd.percent or Decimal(0), 2) == Decimal("-49.96")
    assert (sgd.stopped_by_cancels, sgd.paused_by_pauses) == (Decimal("99.90"), Decimal(50))
    assert sgd.contract_added == Decimal("180.90")  # 9 charges x 20.10 more
    assert sgd.contract_removed == Decimal("899.10") + Decimal("450.00")
    assert sgd.customers == 3  # the unchanged plan is no customer affected
    # After the change: only the updated plan charges, on 2027-01-08 (12 h away).
    assert (sgd.charging_within_day, sgd.charging_within_week) == (1, 1)
    assert (jpy.currency, jpy.mrr_before, jpy.mrr_after) == ("JPY", 1500, 2000)
    assert jpy.contract_added == jpy.contract_removed == 0  # open-ended: no contract value
    assert (jpy.charging_within_day, jpy.charging_within_week) == (0, 1)


def test_no_percentage_from_nothing() -> None:
    [only] = summarize([plan_impact(terms(active=False), terms(), "resume")],
                       datetime(2027, 1, 1, tzinfo=UTC))
    assert only.mrr_before == 0 and only.percent is None and only.mrr_after == Decimal("99.90")
