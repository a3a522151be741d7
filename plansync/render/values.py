"""How field values read in plans: one place, shared by the text and Markdown views."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from plansync.printable import printable


def show(value: object) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return f'"{printable(str(value))}"'


def label(plan_id: str, name: str | None) -> str:
    """How a plan is named in output: its label, if it has one, and its id."""
    return f'"{printable(name)}" ({plan_id})' if name else plan_id


def html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cell(text: str) -> str:
    """Safe inside a Markdown table cell: no pipes, no HTML, no line breaks."""
    return printable(html(text).replace("\n", " ")).replace("|", "\\|").replace("`", "'")
