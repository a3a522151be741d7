"""Every field of a recurring plan, described once, and the records that hold them. Pure.

Each Field gives the spec's name, the gateway's XML tag, how a value is read and written
on the wire and in JSON (state, plan files), whether an update may carry it, and its
documented limits (2C2P's parameter reference). Everything else that lists plan fields
derives from FIELDS: PlanFields and LivePlan (below), the wire encoder and the inquiry
reader, the spec loader and writer, the live renderer, the diff's JSON codec, and the
fields' parts of the JSON Schemas in schemas/ (written by python -m plansync.schema_gen; a
test fails while they differ). The README's field table is checked against it by a test.
The emulator reads names and order here but keeps its own checks, as it keeps its own
JOSE, so that one mistake cannot pass both sides.

Adding a field: one Field below (and its codec tests); PlanFields (if updatable) and
LivePlan gain the attribute of the same name (a test checks that they match the table);
then `python -m plansync.schema_gen`, the README's row, and the emulator's check of it
(emulator/gateway.py, and its seed schema's property).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from plansync import formats
from plansync.printable import printable, quoted

# Documented (parameter reference): recurringInterval and recurringCount are N 5,
# recurringInterval 1-365 days.
MAX_RECURRING_INTERVAL = 365
MAX_RECURRING_COUNT = 99999


class Kind(Enum):
    """How a field's values look: each kind has one codec per form."""

    STATUS = "status"  # active | inactive  <->  Y | N
    AMOUNT = "amount"  # Decimal in major units  <->  12 digits of minor units
    FLAG = "flag"  # bool  <->  Y | N
    WHOLE = "whole"  # int within [low, high]
    DATE = "date"  # date  <->  DDMMYYYY (answers: also yyyyMMdd)
    DAY_MONTH = "day_month"  # "ddMM", as is
    CURRENCY = "currency"  # ISO 4217 alpha  <->  numeric (or alpha) code
    TEXT = "text"  # shown as the gateway sent it
    CARD = "card"  # a masked card number: at most first 6 and last 4 digits shown


@dataclass(frozen=True)
class Field:
    name: str  # the spec's (and state's, and JSON output's) name
    tag: str  # the gateway's XML element
    kind: Kind
    updatable: bool  # an update may carry it; plansync manages it
    summary: str  # what it is: the spec schema's description of it
    low: int | None = None  # whole numbers: the documented range
    high: int | None = None
    required: bool = False  # every inquiry answer carries it

    # --- the wire: what the gateway sends and receives --------------------------------

    def to_wire(self, value: Any, exponent: int) -> str:
        """A value as an update carries it. Raises ValueError for what cannot be sent."""
        try:
            return self._to_wire(value, exponent)
        except ValueError as exc:
            raise ValueError(f"{self.name}: {exc}") from None

    def _to_wire(self, value: Any, exponent: int) -> str:
        if self.kind is Kind.STATUS:
            return {"active": "Y", "inactive": "N"}[value]
        if self.kind is Kind.AMOUNT:
            return formats.amount_to_wire(value, exponent)
        if self.kind is Kind.FLAG:
            return "Y" if value else "N"
        if self.kind is Kind.WHOLE:
            return str(formats.parse_whole(value, *self.limits))
        if self.kind is Kind.DATE:
            return formats.date_to_wire(value)
        if self.kind is Kind.DAY_MONTH:
            return formats.check_day_month(value)
        raise ValueError(f"{self.name} is never sent")

    def from_wire(self, text: str, exponent: int) -> Any:
        """A value as an inquiry answer has it. Raises ValueError if malformed."""
        if self.kind is Kind.STATUS:
            if text not in ("Y", "N"):
                raise ValueError(f"{quoted(text)} is not Y or N")
            return "active" if text == "Y" else "inactive"
        if self.kind is Kind.AMOUNT:
            return formats.amount_from_answer(text, exponent)
        if self.kind is Kind.FLAG:
            if text not in ("Y", "N"):
                raise ValueError(f"{quoted(text)} is not Y or N")
            return text == "Y"
        if self.kind is Kind.WHOLE:
            return formats.whole_from_wire(text, *self.limits)
        if self.kind is Kind.DATE:
            return formats.date_from_wire(text)
        if self.kind is Kind.DAY_MONTH:
            return formats.check_day_month(text)
        if self.kind is Kind.CURRENCY:
            return formats.currency_alpha(text)
        if self.kind is Kind.CARD:
            return printable(formats.masked_card(text))
        return printable(text)

    # --- JSON: the state, plan files, --json output ------------------------------------

    def from_json(self, value: Any) -> Any:
        """A value as the state, the journal or a saved plan holds it. Amounts and whole
        numbers by the one rule (formats.parse_amount, parse_whole): these files are
        read back and their values sent, so a hand edit is refused here, by name.
        Raises ValueError."""
        if value is None:
            return None
        try:
            if self.kind is Kind.AMOUNT:
                if not isinstance(value, str):  # JSON holds amounts as text, never numbers
                    raise ValueError(f"{quoted(value)} is not an amount: write it as text, "
                                     'such as "99.90"')
                return formats.parse_amount(value)
            if self.kind is Kind.WHOLE:
                return formats.parse_whole(value, *self.limits)
            if self.kind is Kind.DATE:
                return _iso_date(value)
        except ValueError as exc:
            raise ValueError(f"{self.name}: {exc}") from None
        return value

    # --- YAML: how `plansync import` writes a value into a spec ------------------------

    def to_yaml(self, value: Any) -> str:
        """Quoted where YAML would otherwise change it: amounts stay exact, ddMM keeps
        its leading zero."""
        if self.kind in (Kind.AMOUNT, Kind.DAY_MONTH):
            return f'"{value}"'
        if self.kind is Kind.FLAG:
            return "true" if value else "false"
        if self.kind is Kind.DATE:
            return str(value.isoformat())
        return str(value)

    @property
    def in_spec(self) -> bool:
        """A spec may declare it: the updatable fields, and the currency as an assertion (a
        plan's currency cannot be changed; a plan whose live currency differs is refused)."""
        return self.updatable or self.kind is Kind.CURRENCY

    @property
    def limits(self) -> tuple[int, int]:
        """A whole number's documented range."""
        assert self.low is not None and self.high is not None
        return self.low, self.high

    # --- JSON Schema: the fragments schemas/ holds (python -m plansync.schema_gen) -------

    def spec_schema(self) -> dict[str, Any]:
        """The spec schema's property: the values a spec may write."""
        return {**_SPEC_SCHEMA[self.kind], **self._range(), "description": self.summary}

    def json_schema(self) -> dict[str, Any]:
        """The property of saved values (state, plan files): to_json's form, or null."""
        return {**_JSON_SCHEMA[self.kind], **self._range()}

    def _range(self) -> dict[str, int]:
        if self.kind is not Kind.WHOLE:
            return {}
        low, high = self.limits
        return {"minimum": low, "maximum": high}


# In display order: specs, plans and JSON output list fields this way.
FIELDS: tuple[Field, ...] = (
    Field("status", "recurringStatus", Kind.STATUS, True,
          "active charges the card; inactive pauses; cancelled ends the plan for good.",
          required=True),
    Field("amount", "amount", Kind.AMOUNT, True,
          'Amount charged each time, in major units ("99.90").', required=True),
    Field("currency", "currency", Kind.CURRENCY, False,
          "ISO 4217 code, alpha (SGD) or numeric (702). An assertion: a plan's currency "
          "cannot be changed.", required=True),
    Field("allow_accumulate", "allowAccumulate", Kind.FLAG, True,
          "Whether failed charges accumulate into the next one."),
    Field("max_accumulate_amount", "maxAccumulateAmount", Kind.AMOUNT, True,
          "Largest accumulated amount, in major units."),
    Field("recurring_interval", "recurringInterval", Kind.WHOLE, True,
          "Days between charges.", low=1, high=MAX_RECURRING_INTERVAL),
    Field("recurring_count", "recurringCount", Kind.WHOLE, True,
          "Number of charges in all; 0 = until cancelled.", low=0, high=MAX_RECURRING_COUNT),
    Field("current_count", "currentCount", Kind.WHOLE, False,
          "Charges made so far.", low=0, high=MAX_RECURRING_COUNT),
    Field("charge_next_date", "chargeNextDate", Kind.DATE, True,
          "Next charge date, ISO (2026-12-07)."),
    Field("charge_on_date", "chargeOnDate", Kind.DAY_MONTH, True,
          'Day and month to charge on, ddMM ("0712"); quote it.'),
    Field("invoice_prefix", "invoicePrefix", Kind.TEXT, False, "The plan's invoice prefix."),
    Field("masked_card_no", "maskedCardNo", Kind.CARD, False,
          "The card, at most its first 6 and last 4 digits."),
)

BY_NAME = {field.name: field for field in FIELDS}
# The fields a spec manages and an update carries, in display order.
UPDATABLE: tuple[Field, ...] = tuple(field for field in FIELDS if field.updatable)
NAMES: tuple[str, ...] = tuple(field.name for field in UPDATABLE)
# The fields a spec may declare, in display order.
SPEC_FIELDS: tuple[Field, ...] = tuple(field for field in FIELDS if field.in_spec)

_AMOUNT_PATTERN = "^[0-9]{1,12}(\\.[0-9]{1,4})?$"  # formats.parse_amount's shape
_ISO_DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DAY_MONTH_PATTERN = "^[0-9]{4}$"  # a real day and month is checked where it is read

# Each kind's JSON Schema; a whole number adds its range, a spec property its summary.
_SPEC_SCHEMA: dict[Kind, dict[str, Any]] = {
    Kind.STATUS: {"enum": ["active", "inactive", "cancelled"]},
    Kind.AMOUNT: {"$ref": "#/$defs/decimal"},  # the spec schema's: text, or a YAML number
    Kind.CURRENCY: {"type": ["string", "integer"], "pattern": "^([A-Za-z]{3}|[0-9]{3})$"},
    Kind.FLAG: {"type": "boolean"},
    Kind.WHOLE: {"type": "integer"},
    Kind.DATE: {"type": "string", "pattern": _ISO_DATE_PATTERN},
    Kind.DAY_MONTH: {"type": "string", "pattern": _DAY_MONTH_PATTERN},
}
_JSON_SCHEMA: dict[Kind, dict[str, Any]] = {
    Kind.STATUS: {"enum": ["active", "inactive", "cancelled", None]},
    Kind.AMOUNT: {"type": ["string", "null"], "pattern": _AMOUNT_PATTERN,
                  "description": "Major units, digits with an optional fraction: no exponent "
                                 "or sign."},
    Kind.FLAG: {"type": ["boolean", "null"]},
    Kind.WHOLE: {"type": ["integer", "null"]},
    Kind.DATE: {"type": ["string", "null"], "pattern": _ISO_DATE_PATTERN},
    Kind.DAY_MONTH: {"type": ["string", "null"], "pattern": _DAY_MONTH_PATTERN},
}


# --- the records: one attribute per field, typed ---------------------------------------

@dataclass(frozen=True, slots=True)  # one per declared plan: 100,000 in a big spec
class PlanFields:
    """The updatable fields of a plan (UPDATABLE, by name). ``None`` means "not
    carried / not managed"."""

    status: str | None = None  # "active" | "inactive"
    amount: Decimal | None = None
    allow_accumulate: bool | None = None
    max_accumulate_amount: Decimal | None = None
    recurring_interval: int | None = None
    recurring_count: int | None = None
    charge_next_date: date | None = None
    charge_on_date: str | None = None  # ddMM

    def over(self, base: PlanFields) -> PlanFields:
        """These fields, with ``base`` filling in what these leave out."""
        mine = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return dataclasses.replace(base, **{k: v for k, v in mine.items() if v is not None})


@dataclass(frozen=True)
class LivePlan:
    """A plan as the gateway's inquiry reports it: every field of FIELDS. ``None``: the
    answer left it out (only the required fields are always there)."""

    id: str
    status: str
    amount: Decimal
    currency: str  # ISO 4217 alpha
    allow_accumulate: bool | None = None
    max_accumulate_amount: Decimal | None = None
    recurring_interval: int | None = None
    recurring_count: int | None = None
    current_count: int | None = None
    charge_next_date: date | None = None
    charge_on_date: str | None = None
    invoice_prefix: str | None = None
    masked_card_no: str | None = None

    @functools.cached_property  # diff and fingerprint read it field by field
    def fields(self) -> PlanFields:
        return PlanFields(**{name: getattr(self, name) for name in NAMES})


@functools.cache  # the loader asks for every plan of a spec
def of_kind(kind: Kind) -> tuple[str, ...]:
    """The names of the updatable fields of one kind: code that treats a kind alike (the
    spec loader's checks, the diff's amounts) goes by kind, so a new field needs none."""
    return tuple(field.name for field in UPDATABLE if field.kind is kind)


def _iso_date(value: Any) -> date:
    """date.fromisoformat, saying the value short (its own message quotes all of it)."""
    try:
        return date.fromisoformat(value)
    except (ValueError, TypeError):
        raise ValueError(f"{quoted(value)} is not an ISO date such as 2026-12-07") from None


def to_json(value: Any) -> Any:
    """Any field's value for JSON: amounts and dates as strings, never floats."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def from_json(name: str, value: Any) -> Any:
    """The reverse of to_json, by field name (other names' values pass as they are)."""
    field = BY_NAME.get(name)
    return field.from_json(value) if field else value


def values_from_json(values: Mapping[str, Any]) -> dict[str, Any]:
    """Field values by name, each read by from_json: a saved plan's before and after, a
    state entry's applied and seen. Raises ValueError naming the first bad field."""
    return {name: from_json(name, value) for name, value in values.items()}
