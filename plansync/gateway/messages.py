"""RecurringMaintenanceRequest / RecurringMaintenanceResponse ⇄ typed records.

Both messages are one flat XML element of text children. Requests are built with lxml;
answers are read with a parser that refuses DTDs, entities, network access and size
beyond a cap, because the bytes come from the network.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TypeVar

from lxml import etree

from plansync.errors import MessageError
from plansync.gateway import assumptions, formats
from plansync.printable import printable

REQUEST_ROOT = "RecurringMaintenanceRequest"
RESPONSE_ROOT = "RecurringMaintenanceResponse"

INQUIRY, UPDATE, CANCEL = "I", "U", "C"

_T = TypeVar("_T")

_STATUS_TO_WIRE = {"active": "Y", "inactive": "N"}
_STATUS_FROM_WIRE = {v: k for k, v in _STATUS_TO_WIRE.items()}


@dataclass(frozen=True)
class PlanFields:
    """The updatable fields of a plan. ``None`` means "not carried / not managed"."""

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
    """A plan as the gateway's inquiry reports it."""

    id: str
    status: str
    amount: Decimal
    currency: str  # ISO 4217 alpha
    allow_accumulate: bool | None
    max_accumulate_amount: Decimal | None
    recurring_interval: int | None
    recurring_count: int | None
    current_count: int | None
    charge_next_date: date | None
    charge_on_date: str | None
    invoice_prefix: str | None
    masked_card_no: str | None

    @functools.cached_property  # diff and fingerprint read it field by field
    def fields(self) -> PlanFields:
        return PlanFields(
            status=self.status, amount=self.amount, allow_accumulate=self.allow_accumulate,
            max_accumulate_amount=self.max_accumulate_amount,
            recurring_interval=self.recurring_interval, recurring_count=self.recurring_count,
            charge_next_date=self.charge_next_date, charge_on_date=self.charge_on_date,
        )


@dataclass(frozen=True)
class Response:
    """Any RecurringMaintenanceResponse: the code, the reason and the raw fields."""

    code: str
    reason: str
    plan_id: str
    values: Mapping[str, str]


# --- building -----------------------------------------------------------------------


def build_xml(root: str, items: Iterable[tuple[str, str]]) -> bytes:
    element = etree.Element(root)
    for tag, text in items:
        etree.SubElement(element, tag).text = text
    return bytes(etree.tostring(element, encoding="utf-8"))


def fields_to_wire(fields: PlanFields, exponent: int) -> list[tuple[str, str]]:
    """The carried fields in wire format, in the documented order."""
    items: list[tuple[str, str]] = []
    if fields.status is not None:
        items.append(("recurringStatus", _STATUS_TO_WIRE[fields.status]))
    if fields.amount is not None:
        items.append(("amount", formats.amount_to_wire(fields.amount, exponent)))
    if fields.allow_accumulate is not None:
        items.append(("allowAccumulate", "Y" if fields.allow_accumulate else "N"))
    if fields.max_accumulate_amount is not None:
        items.append(("maxAccumulateAmount",
                      formats.amount_to_wire(fields.max_accumulate_amount, exponent)))
    if fields.recurring_interval is not None:
        items.append(("recurringInterval", str(fields.recurring_interval)))
    if fields.recurring_count is not None:
        items.append(("recurringCount", str(fields.recurring_count)))
    if fields.charge_next_date is not None:
        items.append(("chargeNextDate", formats.date_to_wire(fields.charge_next_date)))
    if fields.charge_on_date is not None:
        items.append(("chargeOnDate", formats.check_day_month(fields.charge_on_date)))
    return items


def request_items(merchant_id: str, plan_id: str, process_type: str, now: datetime,
                  fields: PlanFields | None = None, exponent: int = 2) -> list[tuple[str, str]]:
    """An inquiry or cancel carries only the compulsory fields; an update adds ``fields``."""
    items = [
        ("version", assumptions.REQUEST_VERSION),
        ("timeStamp", formats.timestamp(now)),
        ("merchantID", merchant_id),
        ("recurringUniqueID", plan_id),
        ("processType", process_type),
    ]
    if fields is not None:
        items += fields_to_wire(fields, exponent)
    return items


def build_request(merchant_id: str, plan_id: str, process_type: str, now: datetime,
                  fields: PlanFields | None = None, exponent: int = 2) -> bytes:
    return build_xml(REQUEST_ROOT, request_items(merchant_id, plan_id, process_type, now,
                                                 fields, exponent))


# --- reading ------------------------------------------------------------------------

_parsers = threading.local()  # lxml parsers must not be shared between threads


def _parser() -> etree.XMLParser:
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=False, remove_comments=True, remove_pis=True,
        )
        _parsers.parser = parser
    return parser


def parse_flat(xml: bytes, root: str) -> dict[str, str]:
    """A flat message as {tag: text}. Refuses anything but plain, small, flat XML."""
    if len(xml) > assumptions.MAX_XML_BYTES:
        raise MessageError(f"message of {len(xml)} bytes is larger than the "
                           f"{assumptions.MAX_XML_BYTES}-byte limit")
    if b"<!DOCTYPE" in xml.upper() or b"<!ENTITY" in xml.upper():
        raise MessageError("message contains a DTD or entity declaration, which is refused")
    try:
        element = etree.fromstring(xml, _parser())
    except etree.XMLSyntaxError as exc:
        raise MessageError(f"message is not well-formed XML: {exc}") from None
    if element.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise MessageError("message contains a DTD, which is refused")
    if element.tag != root:
        raise MessageError(f"expected <{root}>, got <{element.tag}>")
    values: dict[str, str] = {}
    for child in element:
        if not isinstance(child.tag, str) or len(child):
            raise MessageError(f"<{root}> must hold only text fields")
        if child.tag in values:
            raise MessageError(f"field <{child.tag}> appears twice")
        values[child.tag] = (child.text or "").strip()
    return values


def read_response(xml: bytes) -> Response:
    values = parse_flat(xml, RESPONSE_ROOT)
    code = values.get("respCode", "")
    if not code:
        raise MessageError("response has no respCode")
    return Response(code=printable(code), reason=printable(values.get("respReason", "")),
                    plan_id=values.get("recurringUniqueID", ""), values=values)


def check_bound(response: Response, request: Mapping[str, str]) -> None:
    """Refuse an answer that is not the answer to ``request`` (its wire members): one
    for another merchant or plan, or a replay of an earlier answer (its timeStamp)."""
    accepted = response.code == assumptions.SUCCESS_CODE
    required = assumptions.ANSWER_MUST_NAME.get(request["processType"], ()) if accepted else ()
    for tag in assumptions.ANSWER_BINDING:
        theirs = response.values.get(tag, "")
        if not theirs and tag in required:
            raise MessageError(f"the answer does not name its {tag}, so it cannot be bound "
                               "to the request")
        if theirs and theirs != request[tag]:
            what = "timeStamp (a replayed or stale answer)" if tag == "timeStamp" else tag
            raise MessageError(f"the answer's {what} {theirs!r} is not the request's "
                               f"{request[tag]!r}")


def live_plan(response: Response, exponent_overrides: Mapping[str, int] | None = None
              ) -> LivePlan:
    """The plan an inquiry answer describes, typed. Malformed fields are a MessageError."""
    v = response.values
    try:
        currency = formats.currency_alpha(_required(v, "currency"))
        exponent = formats.currency_exponent(currency, exponent_overrides)
        status = _STATUS_FROM_WIRE.get(_required(v, "recurringStatus"))
        if status is None:
            raise ValueError(f"recurringStatus {v['recurringStatus']!r} is not Y or N")
        return LivePlan(
            id=response.plan_id,
            status=status,
            amount=formats.amount_from_answer(_required(v, "amount"), exponent),
            currency=currency,
            allow_accumulate=_optional(v, "allowAccumulate", _yes_no),
            max_accumulate_amount=_optional(
                v, "maxAccumulateAmount", lambda t: formats.amount_from_answer(t, exponent)),
            recurring_interval=_optional(
                v, "recurringInterval", _whole(1, assumptions.MAX_RECURRING_INTERVAL)),
            recurring_count=_optional(
                v, "recurringCount", _whole(0, assumptions.MAX_RECURRING_COUNT)),
            current_count=_optional(v, "currentCount", _whole(0, assumptions.MAX_RECURRING_COUNT)),
            charge_next_date=_optional(v, "chargeNextDate", formats.date_from_wire),
            charge_on_date=_optional(v, "chargeOnDate", formats.check_day_month),
            invoice_prefix=printable(v["invoicePrefix"]) if v.get("invoicePrefix") else None,
            masked_card_no=printable(formats.masked_card(v["maskedCardNo"]))
            if v.get("maskedCardNo") else None,
        )
    except ValueError as exc:
        raise MessageError(f"inquiry answer for plan {response.plan_id} is malformed: {exc}"
                           ) from None


def _required(values: Mapping[str, str], tag: str) -> str:
    text = values.get(tag, "")
    if not text:
        raise ValueError(f"<{tag}> is missing")
    return text


def _optional(values: Mapping[str, str], tag: str, convert: Callable[[str], _T]) -> _T | None:
    text = values.get(tag, "")
    if not text:
        return None
    try:
        return convert(text)
    except ValueError as exc:
        raise ValueError(f"<{tag}> {text!r}: {exc}") from None


def _whole(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return int(text)
    return convert


def _yes_no(text: str) -> bool:
    if text not in ("Y", "N"):
        raise ValueError("expected Y or N")
    return text == "Y"
