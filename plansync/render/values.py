"""How field values read in plans: one place, shared by the text and Markdown views."""

from __future__ import annotations

from datetime import date
from decimal import Decimal


def show(value: object) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return f'"{value}"'


def html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cell(text: str) -> str:
    """Safe inside a Markdown table cell: no pipes, no HTML, no line breaks."""
    return html(text).replace("|", "\\|").replace("\n", " ").replace("`", "'")
