from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plansync import formats


@pytest.mark.parametrize(("amount", "exponent", "wire"), [
    (Decimal("99.90"), 2, "000000009990"),
    (Decimal("99.9"), 2, "000000009990"),
    (Decimal("10"), 2, "000000001000"),
    (Decimal("1500"), 0, "000000001500"),
    (Decimal("1.234"), 3, "000000001234"),
    (Decimal("0"), 2, "000000000000"),
    (Decimal("9999999999.99"), 2, "999999999999"),
])
def test_amount_to_wire(amount: Decimal, exponent: int, wire: str) -> None:
    assert formats.amount_to_wire(amount, exponent) == wire


@pytest.mark.parametrize(("amount", "exponent", "message"), [
    (Decimal("99.901"), 2, "more than 2 decimal places"),
    (Decimal("1500.5"), 0, "more than 0 decimal places"),
    (Decimal("-1"), 2, "non-negative"),
    (Decimal("10000000000.00"), 2, "does not fit"),
    (Decimal("NaN"), 2, "non-negative number"),
])
def test_amount_to_wire_refuses_what_cannot_be_sent_exactly(
        amount: Decimal, exponent: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        formats.amount_to_wire(amount, exponent)


def test_amount_from_wire_keeps_the_currency_scale() -> None:
    assert str(formats.amount_from_wire("000000009990", 2)) == "99.90"
    assert str(formats.amount_from_wire("000000001500", 0)) == "1500"
    assert str(formats.amount_from_wire("000000001234", 3)) == "1.234"
    with pytest.raises(ValueError, match="12 digits"):
        formats.amount_from_wire("99.90", 2)


def test_answers_may_carry_major_units_as_the_documented_sample_does() -> None:
    assert formats.amount_from_answer("99.90", 2) == Decimal("99.90")
    assert str(formats.amount_from_answer("99.9", 2)) == "99.90"
    assert formats.amount_from_answer("000000009990", 2) == Decimal("99.90")
    with pytest.raises(ValueError):
        formats.amount_from_answer("99.901", 2)


@given(minor=st.integers(min_value=0, max_value=10**12 - 1), exponent=st.sampled_from([0, 2, 3]))
def test_amount_round_trip(minor: int, exponent: int) -> None:
    amount = formats.amount_from_wire(str(minor).zfill(12), exponent)
    assert isinstance(amount, Decimal)
    assert amount == Decimal(minor).scaleb(-exponent)
    assert formats.amount_to_wire(amount, exponent) == str(minor).zfill(12)


@given(st.decimals(min_value=0, max_value=Decimal("9999999999.99"), places=2))
def test_any_two_place_amount_survives_the_wire(amount: Decimal) -> None:
    assert formats.amount_from_wire(formats.amount_to_wire(amount, 2), 2) == amount


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
def test_dates_read_back_from_either_format(day: date) -> None:
    assert formats.date_from_wire(formats.date_to_wire(day)) == day
    assert formats.date_from_wire(day.strftime("%Y%m%d")) == day


def test_date_formats() -> None:
    assert formats.date_to_wire(date(2021, 3, 7)) == "07032021"
    assert formats.date_from_wire("20210307") == date(2021, 3, 7)  # the sample response
    assert formats.date_from_wire("07032021") == date(2021, 3, 7)  # the specification
    # yyyyMMdd of 2001-2012 also parses as DDMMYYYY (day 20, month 01, year 0101):
    # only the plausible year counts.
    assert formats.date_from_wire("20010101") == date(2001, 1, 1)
    assert formats.date_from_wire("20121231") == date(2012, 12, 31)
    for bad in ("2021-03-07", "31022021", "7032021", "abcdefgh", "01010101"):
        with pytest.raises(ValueError):
            formats.date_from_wire(bad)


def test_day_month() -> None:
    assert formats.check_day_month("0712") == "0712"
    assert formats.check_day_month("2902") == "2902"
    for bad in ("3102", "3104", "0013", "712", "0000"):
        with pytest.raises(ValueError):
            formats.check_day_month(bad)


def test_currencies() -> None:
    assert formats.currency_alpha("702") == "SGD"
    assert formats.currency_alpha("sgd") == "SGD"
    assert formats.currency_exponent("SGD") == 2
    assert formats.currency_exponent("JPY") == 0
    assert formats.currency_exponent("BHD") == 3
    assert formats.currency_exponent("JPY", {"JPY": 2}) == 2
    with pytest.raises(ValueError, match="ISO 4217"):
        formats.currency_alpha("000")
    with pytest.raises(ValueError, match="ISO 4217"):
        formats.currency_alpha("ZZZ")


def test_timestamp_is_utc() -> None:
    from datetime import timedelta, timezone

    bangkok = timezone(timedelta(hours=7))
    assert formats.timestamp(datetime(2021, 3, 3, 22, 50, 2, tzinfo=bangkok)) == "030321155002"
    assert formats.timestamp(datetime(2021, 3, 3, 15, 50, 2, tzinfo=UTC)) == "030321155002"
