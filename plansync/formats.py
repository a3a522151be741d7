"""The gateway's wire formats for money, dates and currencies. Pure functions.

Here, not in the gateway package, because the field table (fields.py) describes each
field's wire codec with them, and the gateway's messages are built from that table.

Amounts travel as 12 digits of minor units (``000000009990`` is 99.90 SGD), so the
currency's ISO 4217 exponent decides where the decimal point goes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache, lru_cache

from iso4217 import Currency

from plansync.printable import cut, quoted

AMOUNT_DIGITS = 12
_AMOUNT_RE = re.compile(r"[0-9]{12}")
_DATE_RE = re.compile(r"[0-9]{8}")
_PLAUSIBLE_YEARS = (1970, 2199)
_DAY_MONTH_RE = re.compile(r"(0[1-9]|[12][0-9]|3[01])(0[1-9]|1[0-2])")


@cache
def currency_alpha(code: str) -> str:
    """The alpha code (``SGD``) of an ISO 4217 currency given as alpha or numeric (``702``)."""
    code = code.strip().upper()
    if code.isdigit():
        number = int(code) if len(code) <= 3 else None  # int() refuses 4300 digits
        for currency in Currency:
            if currency.number == number:
                return currency.code
        raise ValueError(f"{quoted(code)} is not an ISO 4217 numeric currency code")
    try:
        return Currency(code).code
    except ValueError:
        raise ValueError(f"{quoted(code)} is not an ISO 4217 currency code") from None


def currency_exponent(alpha: str, overrides: Mapping[str, int] | None = None) -> int:
    """Digits after the decimal point in the currency's minor unit (SGD 2, JPY 0, BHD 3)."""
    if overrides and alpha in overrides:
        return overrides[alpha]
    return _iso_exponent(alpha)


@cache
def _iso_exponent(alpha: str) -> int:
    exponent = Currency(alpha).exponent
    if exponent is None:
        raise ValueError(f"{alpha} has no minor unit in ISO 4217; set an exponent for it")
    return int(exponent)


def plan_id(value: object) -> str:
    """A plan's id as plansync knows it: recurringUniqueID is a number (N 20), so
    "0156143" and 156143 are one plan, 156143. Anything but ASCII digits is left as it
    is (the spec's schema refuses it)."""
    text = str(value)
    if text.isascii() and text.isdigit():
        return text.lstrip("0") or "0"
    return text


# --- the one rule for amounts and whole numbers ------------------------------------------
#
# Every amount, count and interval that enters plansync (spec, saved plan, state and
# journal, settings, gateway answers) is read by parse_amount / parse_whole /
# whole_from_wire below, and every amount leaves through amount_to_wire. Exactness is
# integer arithmetic on the digits: Decimal.scaleb underflowed to 0 for 1E-999999999,
# which was then sent as 000000000000.

MAX_DECIMALS = 4  # ISO 4217's largest minor unit (CLF, UYW): the bound with no currency
_AMOUNT_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")
_WHOLE_TEXT = re.compile(r"[0-9]{1,5}")  # recurringInterval and recurringCount are N 5


def parse_amount(value: object, exponent: int | None = None,
                 currency: str | None = None) -> Decimal:
    """An amount in major units, as it may be written anywhere: ASCII digits with an
    optional fraction (``"99.90"``), or a number YAML read from such text (Decimal, int).
    No exponent (``1e2``), sign, NaN or Infinity, spaces or separators; at most
    ``exponent`` decimals (``MAX_DECIMALS`` when the currency is not known); within the
    wire's 12 digits. Raises ValueError saying which rule the value breaks."""
    if isinstance(value, str):
        if not _AMOUNT_TEXT.fullmatch(value):
            raise ValueError(f"{_quoted(value)} is not an amount: write digits with an "
                             'optional fraction, such as "99.90" (no exponent, sign, '
                             "spaces or separators)")
        amount = Decimal(value)
    elif isinstance(value, int | Decimal) and not isinstance(value, bool):
        amount = Decimal(value)  # a plain YAML number, read exactly from its text
    else:
        raise ValueError(f"{_quoted(value)} is not an amount: write digits with an optional "
                         'fraction, such as "99.90"')
    power = amount.as_tuple().exponent
    if isinstance(power, int) and power > 0:  # only an exponent writes 1E+2
        raise ValueError(f"{cut(str(amount))} is not an amount: write it out, with no "
                         "exponent")
    minor_units(amount, exponent, currency)
    return amount


def minor_units(amount: Decimal, exponent: int | None, currency: str | None = None) -> int:
    """``amount`` in minor units, exactly (99.90 with exponent 2 → 9990), from its digits:
    no context, no rounding. ``exponent`` None: the amount's own decimals, up to
    MAX_DECIMALS. Raises ValueError for what cannot be sent exactly."""
    sign, digits, power = amount.as_tuple()
    if not isinstance(power, int):  # NaN, sNaN, Infinity
        raise ValueError(f"amount {_quoted(amount)} is not a number")
    if sign:
        raise ValueError(f"{_quoted(amount)} is negative: an amount has no sign")
    decimals = max(-power, 0)
    if exponent is None:
        if decimals > MAX_DECIMALS:
            raise ValueError(f"{_quoted(amount)} has more than {MAX_DECIMALS} decimals, more "
                             "than any currency allows")
        exponent = decimals
    elif decimals > exponent:
        raise ValueError(f"{_quoted(amount)} has more decimals than "
                         f"{currency or 'the currency'} allows ({exponent})")
    significant = "".join(map(str, digits)).lstrip("0")
    if len(significant) + power + exponent > AMOUNT_DIGITS:
        raise ValueError(f"{_quoted(amount)} is more than the gateway's {AMOUNT_DIGITS}-digit "
                         "amounts can carry")
    return int((significant or "0") + "0" * (power + exponent))


def fits_minor_unit(amount: Decimal, exponent: int) -> bool:
    """Whether ``amount`` is written with no more decimal places than the currency's minor
    unit (99.90 and 99.9 fit SGD; 99.901 and 99.900 do not): minor_units' rule for
    decimals, alone, for the diff's check against the live plan's currency."""
    power = amount.as_tuple().exponent
    return isinstance(power, int) and max(-power, 0) <= exponent


def amount_to_wire(amount: Decimal, exponent: int) -> str:
    """99.90 with exponent 2 → ``000000009990``. Refuses what cannot be sent exactly."""
    return str(minor_units(amount, exponent)).zfill(AMOUNT_DIGITS)


@lru_cache(maxsize=4096)  # a book's few prices: its plans share their Decimals
def amount_from_wire(text: str, exponent: int) -> Decimal:
    """``000000009990`` with exponent 2 → Decimal('99.90')."""
    if not _AMOUNT_RE.fullmatch(text):
        raise ValueError(f"amount {quoted(text)} is not {AMOUNT_DIGITS} digits")
    return Decimal(int(text)).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def amount_from_answer(text: str, exponent: int) -> Decimal:
    """An amount in an answer: 12 digits of minor units, as specified, or a decimal in
    major units (``99.90``). The guide's inquiry *request* sample writes one that way
    (its answer sample uses 12 digits): accepting it in answers too is harmless, and
    safe should a gateway echo the form. Either way, by the rules above."""
    if "." not in text:
        return amount_from_wire(text, exponent)
    value = parse_amount(text, exponent)
    return value.quantize(Decimal(1).scaleb(-exponent))


def parse_whole(value: object, low: int, high: int) -> int:
    """A count or interval as JSON or YAML holds it: an int from ``low`` to ``high``.
    Not a bool (Python's True is 1), a float or Decimal (7.0), or text ("7")."""
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{_quoted(value)} is not a whole number from {low} to {high}")
    return value


def whole_from_wire(text: str, low: int, high: int) -> int:
    """A count or interval on the wire (N 5): ASCII digits only."""
    if not _WHOLE_TEXT.fullmatch(text) or not low <= int(text) <= high:
        raise ValueError(f"{_quoted(text)} is not a whole number from {low} to {high}")
    return int(text)


def _quoted(value: object) -> str:
    """An amount or count for a message, as the spec or file wrote it (text in double
    quotes, 0.0000001 not 1E-7, true not True), cut short: never a 5000-digit number."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and abs(value) >= 10**20:
        return "a number of more than 20 digits"
    if isinstance(value, Decimal):  # as written: 0.0000001, not 1E-7 (unless it was)
        power = value.as_tuple().exponent
        shown = f"{value:f}" if isinstance(power, int) and abs(power) < 40 else str(value)
    else:
        shown = f'"{value}"' if isinstance(value, str) else str(value)
    return cut(shown)


def date_to_wire(value: date) -> str:
    """chargeNextDate as the specification writes it: DDMMYYYY."""
    return value.strftime("%d%m%Y")


def date_from_wire(text: str) -> date:
    """Read DDMMYYYY (the specification) or yyyyMMdd (the sample response).

    Both can parse: yyyyMMdd of 2001-2012 read as DDMMYYYY is a date in the years
    0101-1231 ("20010101" is 20 January 0101). Only a reading whose year is plausible
    for a payment plan counts, and for real dates exactly one reading is.
    """
    if not _DATE_RE.fullmatch(text):
        raise ValueError(f"date {quoted(text)} is not 8 digits (DDMMYYYY or yyyyMMdd)")
    readings = set()
    for pattern in ("%d%m%Y", "%Y%m%d"):
        try:
            parsed = datetime.strptime(text, pattern).date()
        except ValueError:
            continue
        if _PLAUSIBLE_YEARS[0] <= parsed.year <= _PLAUSIBLE_YEARS[1]:
            readings.add(parsed)
    if len(readings) != 1:
        raise ValueError(f"date {quoted(text)} is neither DDMMYYYY nor yyyyMMdd "
                         f"with a year from {_PLAUSIBLE_YEARS[0]} to {_PLAUSIBLE_YEARS[1]}")
    return readings.pop()


def check_day_month(text: str) -> str:
    """chargeOnDate is ``ddMM``; 2902 is allowed (it recurs in leap years)."""
    if not _DAY_MONTH_RE.fullmatch(text):
        raise ValueError(f"{quoted(text)} is not a day and month as ddMM")
    day, month = int(text[:2]), int(text[2:])
    try:
        datetime(2000, month, day)  # a leap year: 2902 recurs
    except ValueError:  # 3102, 3004, …
        raise ValueError(f"{quoted(text)} is not a real day and month") from None
    return text


def timestamp(now: datetime) -> str:
    """timeStamp ``ddMMyyHHmmss``, in UTC."""
    return now.astimezone(UTC).strftime("%d%m%y%H%M%S")


_PLAIN_CARD = re.compile(r"[0-9Xx*]*")
_HIDE_DIGITS = str.maketrans("0123456789", "X" * 10)


def masked_card(text: str) -> str:
    """A card number as PCI DSS 3.4 allows it to be shown: at most the first 6 and the
    last 4 digits, whatever the gateway sent. Too short for a card number: the last 4."""
    if _PLAIN_CARD.fullmatch(text):  # ASCII digits and masks only, as answers write it
        count = len(text)
        first = 6 if count >= 13 else 0
        last = max(count - 4, first)  # from here on, shown (the last 4)
        return text[:first] + text[first:last].translate(_HIDE_DIGITS) + text[last:]
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
