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
    (Decimal("99.901"), 2, "more decimals than the currency allows \\(2\\)"),
    (Decimal("1500.5"), 0, "more decimals than the currency allows \\(0\\)"),
    (Decimal("-1"), 2, "negative"),
    (Decimal("10000000000.00"), 2, "12-digit"),
    (Decimal("NaN"), 2, "not a number"),
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


# --- the one rule for amounts and whole numbers, wherever they enter (issue 20) ---------

@pytest.mark.parametrize(("text", "exponent", "amount"), [
    ("99.90", 2, "99.90"), ("99.9", 2, "99.9"), ("0", 2, "0"), ("0.00", 2, "0.00"),
    ("1500", 0, "1500"), ("1.234", 3, "1.234"), ("9999999999.99", 2, "9999999999.99"),
    ("999999999999", 0, "999999999999"), ("0099.90", 2, "99.90"),
    ("99.9999", None, "99.9999"),  # no currency known: at most 4 decimals (CLF, UYW)
])
def test_parse_amount_accepts_plain_decimals(text: str, exponent: int | None,
                                             amount: str) -> None:
    parsed = formats.parse_amount(text, exponent)
    assert isinstance(parsed, Decimal) and parsed == Decimal(amount)


@pytest.mark.parametrize(("text", "exponent", "message"), [
    # exponent forms: the reported 1.e-999999999 passed, and was sent as 0.00
    ("1.e-999999999", 2, "no exponent"), ("1.e-999999999", None, "no exponent"),
    ("1e2", 2, "no exponent"), ("1E+2", 2, "no exponent"), ("1.0E2", 0, "no exponent"),
    ("NaN", 2, "no exponent"), ("Infinity", 2, "no exponent"), ("-Infinity", 2, "such as"),
    ("-1.00", 2, "sign"), ("+1.00", 2, "sign"), ("-0", 2, "sign"),
    (" 1.00", 2, "spaces"), ("1.00\n", 2, "spaces"), ("1_000.00", 2, "such as"),
    ("\u0661.00", 2, "such as"),  # an Arabic-Indic digit: Decimal() reads it, we do not
    ("1.", 2, "such as"), (".5", 2, "such as"), ("", 2, "such as"), ("1,00", 2, "such as"),
    ("99.901", 2, "more decimals than the currency allows \\(2\\)"),
    ("99.900", 2, "more decimals than the currency allows \\(2\\)"),
    ("1500.0", 0, "allows \\(0\\)"), ("0.00001", None, "more than 4 decimals"),
    ("10000000000.00", 2, "12-digit"), ("1000000000000", 0, "12-digit"),
    ("9" * 5000, None, "12-digit"),
])
def test_parse_amount_refuses_anything_else(text: str, exponent: int | None,
                                            message: str) -> None:
    with pytest.raises(ValueError, match=message):
        formats.parse_amount(text, exponent)


def test_parse_amount_names_the_currency_when_given() -> None:
    with pytest.raises(ValueError, match=r"^9\.999 has more decimals than SGD allows \(2\)$"):
        formats.parse_amount("9.999", 2, "SGD")


@pytest.mark.parametrize("value", [True, False, 1.5, 99.9, None, ["1"], Decimal("1E+2"),
                                   Decimal("NaN"), Decimal("-1"), -1])
def test_parse_amount_refuses_values_that_are_not_plain_text_or_yaml_numbers(
        value: object) -> None:
    with pytest.raises(ValueError):
        formats.parse_amount(value, 2)


def test_parse_amount_takes_yaml_numbers_as_written() -> None:
    # The spec's YAML reads a plain 99.90 as Decimal("99.90") and 100 as int.
    assert formats.parse_amount(Decimal("99.90"), 2) == Decimal("99.90")
    assert formats.parse_amount(100, 0) == Decimal(100)


@pytest.mark.parametrize(("amount", "exponent"), [
    (Decimal("1.e-999999999"), 2), (Decimal("1E-28"), 2), (Decimal("0E-5"), 2),
    (Decimal("99.900"), 2), (Decimal("1E+999999999"), 2), (Decimal("-0"), 2),
    (Decimal("sNaN"), 2), (Decimal("Infinity"), 2),
])
def test_nothing_inexact_reaches_the_wire(amount: Decimal, exponent: int) -> None:
    # scaleb underflowed: 1E-999999999 became 000000000000 and was sent as 0.00.
    with pytest.raises(ValueError):
        formats.amount_to_wire(amount, exponent)


def test_fits_minor_unit_is_exact() -> None:
    assert not formats.fits_minor_unit(Decimal("1.e-999999999"), 2)
    assert not formats.fits_minor_unit(Decimal("99.900"), 2)
    assert not formats.fits_minor_unit(Decimal("NaN"), 2)
    assert formats.fits_minor_unit(Decimal("99.9"), 2)
    assert formats.fits_minor_unit(Decimal("100"), 0)


@pytest.mark.parametrize("text", ["1.e-999999999", "1E+2", " 99.90", "99.90 ", "1_0.00",
                                  "\u0661\u0660.00", "NaN", "-1.00", "+1.00", "99.901",
                                  "99.900", "0.0000000001"])
def test_an_answer_with_such_an_amount_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        formats.amount_from_answer(text, 2)


@pytest.mark.parametrize(("value", "low", "high"), [
    (7, 1, 365), (1, 1, 365), (365, 1, 365), (0, 0, 99999), (99999, 0, 99999)])
def test_parse_whole_accepts_ints_in_range(value: int, low: int, high: int) -> None:
    assert formats.parse_whole(value, low, high) == value


@pytest.mark.parametrize("value", [7.0, 7.5, "7", True, False, Decimal("7"), Decimal("7.0"),
                                   None, 0, 366, -1,
                                   pytest.param(10**5000, id="5001 digits")])
def test_parse_whole_refuses_anything_but_an_int_in_range(value: object) -> None:
    with pytest.raises(ValueError, match="whole number from 1 to 365"):
        formats.parse_whole(value, 1, 365)


@pytest.mark.parametrize("text", ["7", "007", "365"])
def test_whole_from_wire_reads_digits(text: str) -> None:
    assert formats.whole_from_wire(text, 1, 365) == int(text)


@pytest.mark.parametrize("text", ["7.0", "1e2", "+7", "-7", " 7", "7 ", "\u0667", "", "0",
                                  "366", "000007"])
def test_whole_from_wire_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="whole number from 1 to 365"):
        formats.whole_from_wire(text, 1, 365)


AMOUNT_LIKE = st.text(alphabet="0123456789.eE+-_ ", max_size=16) | st.from_regex(
    r"\A[0-9]{1,13}(\.[0-9]{0,5})?\Z")


@given(text=AMOUNT_LIKE, exponent=st.sampled_from([0, 2, 3, 4, None]))
def test_what_parse_amount_accepts_round_trips_exactly_through_the_wire(
        text: str, exponent: int | None) -> None:
    try:
        amount = formats.parse_amount(text, exponent)
    except ValueError:
        return
    whole, _dot, fraction = text.partition(".")
    places = len(fraction) if exponent is None else exponent
    assert len(fraction) <= places
    wire = formats.amount_to_wire(amount, places)
    # The wire's digits are the text's digits, the fraction padded to the minor unit.
    assert int(wire) == int(whole + fraction.ljust(places, "0"))
    back = formats.amount_from_wire(wire, places)
    assert back == amount and str(back) == f"{int(whole)}{'.' if places else ''}" \
        f"{fraction.ljust(places, '0')}"
    assert formats.parse_amount(str(back), places) == amount
