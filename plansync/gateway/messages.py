"""RecurringMaintenanceRequest / RecurringMaintenanceResponse ⇄ typed records.

Both messages are one flat XML element of text children. Requests are built with lxml;
answers are read with a parser that refuses DTDs, entities, network access and size
beyond a cap, because the bytes come from the network.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree

from plansync import fields as plan_fields
from plansync import formats
from plansync.errors import MessageError
from plansync.fields import LivePlan, PlanFields
from plansync.gateway import assumptions
from plansync.printable import printable, quoted

REQUEST_ROOT = "RecurringMaintenanceRequest"
RESPONSE_ROOT = "RecurringMaintenanceResponse"

INQUIRY, UPDATE, CANCEL = "I", "U", "C"


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
    return [(field.tag, field.to_wire(value, exponent)) for field in plan_fields.UPDATABLE
            if (value := getattr(fields, field.name)) is not None]


@dataclass(frozen=True)
class Write:
    """An update or a cancel, encoded once: what dry-run shows, the audit records and the
    client sends are these same items."""

    plan_id: str
    process_type: str  # UPDATE | CANCEL
    carried: tuple[tuple[str, str], ...]  # the fields it carries, wire form, in order

    @property
    def sent(self) -> tuple[tuple[str, str], ...]:
        return (("processType", self.process_type), *self.carried)


def update_write(plan_id: str, fields: PlanFields, exponent: int) -> Write:
    """Raises ValueError for a value the gateway's documentation does not allow."""
    return Write(plan_id, UPDATE, tuple(fields_to_wire(fields, exponent)))


def cancel_write(plan_id: str, live: LivePlan | None, exponent: int) -> Write:
    """A cancel carries what assumptions.CANCEL_CARRIES names, from the live record
    (nothing more without one)."""
    if live is None:
        return Write(plan_id, CANCEL, ())
    carried = {field.name: getattr(live, field.name) for field in plan_fields.UPDATABLE
               if field.tag in assumptions.CANCEL_CARRIES}
    return Write(plan_id, CANCEL, tuple(fields_to_wire(PlanFields(**carried), exponent)))


def request_items(merchant_id: str, plan_id: str, process_type: str, now: datetime,
                  carried: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """The compulsory fields, then what the request carries (an update's fields)."""
    return [
        ("version", assumptions.REQUEST_VERSION),
        ("timeStamp", formats.timestamp(now)),
        ("merchantID", merchant_id),
        ("recurringUniqueID", plan_id),
        ("processType", process_type),
        *carried,
    ]


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
            raise MessageError(f"the answer's {what} {quoted(theirs)} is not the request's "
                               f"{quoted(request[tag])}")


def live_plan(response: Response, exponent_overrides: Mapping[str, int] | None = None
              ) -> LivePlan:
    """The plan an inquiry answer describes, typed. Malformed fields are a MessageError."""
    values = response.values
    try:
        currency = _read(plan_fields.BY_NAME["currency"], values, 0)
        exponent = formats.currency_exponent(currency, exponent_overrides)
        return LivePlan(id=response.plan_id, **{
            field.name: _read(field, values, exponent) for field in plan_fields.FIELDS})
    except ValueError as exc:
        raise MessageError(f"inquiry answer for plan {printable(response.plan_id)} is "
                           f"malformed: {exc}"
                           ) from None


def _read(field: plan_fields.Field, values: Mapping[str, str], exponent: int) -> Any:
    text = values.get(field.tag, "")
    if not text:
        if field.required:
            raise ValueError(f"<{field.tag}> is missing")
        return None
    try:
        return field.from_wire(text, exponent)
    except ValueError as exc:
        raise ValueError(f"<{field.tag}>: {exc}") from None  # exc quotes the value
