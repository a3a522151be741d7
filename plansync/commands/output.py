"""The names apply.py and demo.py import, until they take them from plansync.views (issue
22: apply.py is being rewritten); then this module goes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plansync.views import ApplyView, pick, use_color
from plansync.views.text import SIGNAL_EXIT

ApplyReport = ApplyView

__all__ = ["SIGNAL_EXIT", "ApplyReport", "Output", "use_color"]


@dataclass(frozen=True)
class Output:
    fmt: str | None  # None (text) | "json"
    no_color: bool = False

    def plan(self, made: Any, as_text: bool = True) -> str:
        """The plan as apply shows it: text, in every format."""
        from plansync.render import text

        return text.render(made, color=use_color(self.no_color))

    def apply_report(self) -> ApplyView:
        return pick("apply", self.fmt, self.no_color)  # type: ignore[no-any-return]
