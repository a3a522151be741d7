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
from decimal import Decimal, InvalidOperation
from functools import cache

from iso4217 import Currency

AMOUNT_DIGITS = 12
AMOUNT_LIMIT = Decimal(10) ** AMOUNT_DIGITS  # in major units, even with no minor unit
_AMOUNT_RE = re.compile(r"[0-9]{12}")
_DATE_RE = re.compile(r"[0-9]{8}")
_PLAUSIBLE_YEARS = (1970, 2199)
_DAY_MONTH_RE = re.compile(r"(0[1-9]|[12][0-9]|3[01])(0[1-9]|1[0-2])")


@cache
def currency_alpha(code: str) -> str:
    """The alpha code (``SGD``) of an ISO 4217 currency given as alpha or numeric (``702``)."""
    code = code.strip().upper()
    if code.isdigit():
        for currency in Currency:
            if currency.number == int(code):
                return currency.code
        raise ValueError(f"{code!r} is not an ISO 4217 numeric currency code")
    try:
        return Currency(code).code
    except ValueError:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code") from None


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


def fits_minor_unit(amount: Decimal, exponent: int) -> bool:
    """Whether ``amount`` has no more decimal places than the currency's minor unit:
    the one rule for decimals, used by the spec loader, the diff and the encoder."""
    minor = amount.scaleb(exponent)
    return minor == minor.to_integral_value()


def amount_to_wire(amount: Decimal, exponent: int) -> str:
    """99.90 with exponent 2 → ``000000009990``. Refuses what cannot be sent exactly."""
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"amount {amount} must be a non-negative number")
    minor = amount.scaleb(exponent)
    if not fits_minor_unit(amount, exponent):
        raise ValueError(f"amount {amount} has more than {exponent} decimal places")
    text = str(int(minor))
    if len(text) > AMOUNT_DIGITS:
        raise ValueError(f"amount {amount} does not fit in {AMOUNT_DIGITS} digits")
    return text.zfill(AMOUNT_DIGITS)


def amount_from_wire(text: str, exponent: int) -> Decimal:
    """``000000009990`` with exponent 2 → Decimal('99.90')."""
    if not _AMOUNT_RE.fullmatch(text):
        raise ValueError(f"amount {text!r} is not {AMOUNT_DIGITS} digits")
    return Decimal(int(text)).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def amount_from_answer(text: str, exponent: int) -> Decimal:
    """An amount in an answer: 12 digits of minor units, as specified, or a decimal in
    major units (``99.90``). The guide's inquiry *request* sample writes one that way
    (its answer sample uses 12 digits): accepting it in answers too is harmless, and
    safe should a gateway echo the form."""
    if "." not in text:
        return amount_from_wire(text, exponent)
    value = parse_decimal(text)
    amount_to_wire(value, exponent)  # refuses more decimals than the currency has
    return value.quantize(Decimal(1).scaleb(-exponent))


def parse_decimal(text: str) -> Decimal:
    """Exact decimal from text (never through float)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    return value


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
        raise ValueError(f"date {text!r} is not 8 digits (DDMMYYYY or yyyyMMdd)")
    readings = set()
    for pattern in ("%d%m%Y", "%Y%m%d"):
        try:
            parsed = datetime.strptime(text, pattern).date()
        except ValueError:
            continue
        if _PLAUSIBLE_YEARS[0] <= parsed.year <= _PLAUSIBLE_YEARS[1]:
            readings.add(parsed)
    if len(readings) != 1:
        raise ValueError(f"date {text!r} is neither DDMMYYYY nor yyyyMMdd "
                         f"with a year from {_PLAUSIBLE_YEARS[0]} to {_PLAUSIBLE_YEARS[1]}")
    return readings.pop()


def check_day_month(text: str) -> str:
    """chargeOnDate is ``ddMM``; 2902 is allowed (it recurs in leap years)."""
    if not _DAY_MONTH_RE.fullmatch(text):
        raise ValueError(f"{text!r} is not a day and month as ddMM")
    day, month = int(text[:2]), int(text[2:])
    datetime(2000, month, day)  # raises ValueError for 3102, 3004, …
    return text


def timestamp(now: datetime) -> str:
    """timeStamp ``ddMMyyHHmmss``, in UTC."""
    return now.astimezone(UTC).strftime("%d%m%y%H%M%S")


def masked_card(text: str) -> str:
    """A card number as PCI DSS 3.4 allows it to be shown: at most the first 6 and the
    last 4 digits, whatever the gateway sent. Too short for a card number: the last 4."""
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
