"""CSV views (`state history --format csv`): one header row, then a row per record, for
a compliance team's spreadsheet. Written by the csv module (RFC 4180 quoting)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from plansync.views import text

if TYPE_CHECKING:
    from plansync.engine.state import Audit

# A cell a spreadsheet would take for a formula (CSV injection: a plan name or user name
# is text that someone else wrote) gets a leading apostrophe, as OWASP advises.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    """A cell as a spreadsheet may show it: no formula, and what a terminal would obey
    (escape sequences, a right-to-left override, NUL) escaped, as every plansync output
    escapes text that someone else wrote."""
    from plansync.printable import printable

    shown = "\n".join(printable(line) for line in value.split("\n"))
    return f"'{shown}" if shown.lstrip(" ").startswith(_FORMULA) else shown


class HistoryView(text.Text):
    def history(self, records: Sequence[Audit], plan_id: str | None,
                currencies: Mapping[str, str]) -> None:
        from plansync.render.history import COLUMNS, row

        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for audit in records:
            writer.writerow({name: cell(value) for name, value in
                             row(audit, currencies.get(audit.plan)).items()})
        click.echo(out.getvalue(), nl=False)


VIEWS: dict[str, Any] = {"history": HistoryView}
