"""How an audit record reads (`state history` in text and CSV, and the readable parts of
its JSON): values in major units with their currency, the respCode with its meaning,
where the write came from. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from plansync.engine.state import Audit
from plansync.fields import BY_NAME, FIELDS, Kind
from plansync.gateway import assumptions, codes

ARROW = "→"
_BY_TAG = {field.tag: field for field in FIELDS}


def action(audit: Audit) -> str:
    return {"U": "update", "C": "cancel"}.get(audit.process_type, audit.process_type)


def meaning(resp_code: str) -> str:
    """What a respCode means (2C2P's result codes); "" is an answer that was lost."""
    if not resp_code:
        return "no answer (lost); inquiry decides the outcome"
    if resp_code == assumptions.SUCCESS_CODE:
        return "success"
    if resp_code.startswith("HTTP"):  # what the client keeps for an HTTP error answer
        return "an HTTP error answer, without a respCode"
    known = codes.RESULT_CODES.get(resp_code)
    return known.meaning if known else "unknown result code"


def changes(audit: Audit, currency: str | None = None) -> str:
    """What the write changed: ``amount 104.90 → 110.00 SGD, status active → inactive``.
    A record of an older plansync holds only the wire fields it sent: those, read back
    (their amounts in major units when ``currency``, the plan's as the state last saw it,
    is known)."""
    currency = audit.currency or currency
    if audit.before or audit.after:
        names = list(dict.fromkeys([*audit.before, *audit.after]))
        return ", ".join(f"{name} {_value(name, audit.before.get(name), currency)} {ARROW} "
                         f"{_value(name, audit.after.get(name), currency)}"
                         + (f" {currency}" if _is_amount(name) and currency else "")
                         for name in names)
    sent = ", ".join(_wire(tag, text, currency) for tag, text in audit.sent.items()
                     if tag != "recurringUniqueID")
    return f"sent {sent}" if sent else ""


def source(audit: Audit) -> str:
    """The plan file, or the specs, and the commit the write came from; "" if not known."""
    where = audit.origin.get("plan_file") or ", ".join(audit.origin.get("specs") or [])
    commit = audit.origin.get("commit")
    return " ".join(part for part in (where, f"@ {commit}" if commit else "") if part)


def _is_amount(name: str) -> bool:
    field = BY_NAME.get(name)
    return field is not None and field.kind is Kind.AMOUNT


def _value(name: str, value: Any, currency: str | None) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_amount(name) and currency:
        from plansync.render.money import number

        try:
            return number(Decimal(str(value)), currency)
        except ArithmeticError:  # a hand-edited value: shown as it is
            return str(value)
    return str(value)


def _wire(tag: str, text: str, currency: str | None) -> str:
    """One wire field of an older record, read back: ``amount 104.90 SGD``."""
    field = _BY_TAG.get(tag)
    if field is None:
        return f"{tag}={text}"
    if field.kind is Kind.AMOUNT:
        if not currency:
            return f"{tag}={text}"  # minor units of a currency not known
        from plansync.engine.impact import places

        try:
            value = field.from_wire(text, places(currency))
            return f"{field.name} {_value(field.name, value, currency)} {currency}"
        except (ValueError, ArithmeticError):
            return f"{tag}={text}"
    try:
        return f"{field.name} {_value(field.name, field.from_wire(text, 0), None)}"
    except (ValueError, ArithmeticError):
        return f"{tag}={text}"


COLUMNS = ("sent_at", "user", "host", "ci_url", "plan", "name", "action", "changes",
           "currency", "resp_code", "resp_meaning", "plan_file", "specs", "commit", "sent",
           "key", "id")


def row(audit: Audit, currency: str | None = None) -> dict[str, str]:
    """One record as the COLUMNS of a table (CSV): every cell text."""
    by: Mapping[str, Any] = audit.by
    return {
        "sent_at": audit.at, "user": str(by.get("user") or ""),
        "host": str(by.get("host") or ""), "ci_url": str(by.get("ci_url") or ""),
        "plan": audit.plan, "name": audit.name or "", "action": action(audit),
        "changes": changes(audit, currency), "currency": audit.currency or currency or "",
        "resp_code": audit.resp_code, "resp_meaning": meaning(audit.resp_code),
        "plan_file": str(audit.origin.get("plan_file") or ""),
        "specs": " ".join(audit.origin.get("specs") or []),
        "commit": str(audit.origin.get("commit") or ""),
        "sent": " ".join(f"{tag}={text}" for tag, text in audit.sent.items()),
        "key": audit.key, "id": audit.id,
    }
