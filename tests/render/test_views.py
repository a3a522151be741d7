"""The views seam (plansync/views): every format flag comes from ``views.formats``, every
view offers what its command calls, and a failure is said in the format that failed."""

import json
from typing import Any

import pytest

from plansync import views
from plansync.errors import PlansyncError, SpecProblemsError
from plansync.views import csv as csv_views
from plansync.views import json as json_views
from plansync.views import markdown as markdown_views
from plansync.views import text as text_views
from tests.helpers import cli_commands

PROTOCOLS = {"plan": views.PlanView, "drift": views.DriftView,
             "validate": views.ValidateView, "inquire": views.InquireView,
             "history": views.HistoryView, "apply": views.ApplyView,
             "projects": views.ProjectsView}


def test_every_format_flag_is_views_formats() -> None:
    """No command builds its own --json (four did): each is the ``fmt`` flag that
    ``views.formats`` adds, so that the command gets a view, not a flag."""
    offered = set()
    for name, command in cli_commands():
        flags = {opt: param for param in command.params for opt in param.opts}
        ours = all((flags[flag].name, getattr(flags[flag], "flag_value", None)) == ("fmt", value)
                   for flag, value in (("--json", "json"), ("--markdown", "markdown"))
                   if flag in flags)
        assert ours, f"{name}: its --json/--markdown are not views.formats' flags"
        if "--no-color" in flags:
            assert flags["--no-color"].help == "No colours (also: the NO_COLOR variable).", name
        if "--json" in flags:
            offered.add(name)
    assert offered == {"validate", "plan", "show", "apply", "drift", "inquire",
                       "state history", "projects"}


@pytest.mark.parametrize("module", [text_views, json_views, markdown_views, csv_views])
def test_each_view_offers_all_its_command_calls(module: Any) -> None:
    for name, view in module.VIEWS.items():
        wanted = [m for m in dir(PROTOCOLS[name]) if not m.startswith("_")]
        assert wanted and all(callable(getattr(view, m, None)) for m in wanted), name
    assert set(module.VIEWS) <= set(PROTOCOLS)


def _failing(view: Any, error: PlansyncError) -> None:
    with pytest.raises(PlansyncError) as raised, view.reporting_errors():
        raise error
    assert raised.value is error  # said, and raised on: cli.py prints `error: ...`


def test_a_failure_is_said_in_the_format_that_failed(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    _failing(views.pick("apply", "json"), PlansyncError("it broke", "do this"))
    assert json.loads(capsys.readouterr().out) == {"error": "it broke", "hint": "do this",
                                                   "results": []}
    _failing(views.pick("plan", "markdown"), SpecProblemsError([]))
    said = capsys.readouterr().out
    assert said.startswith("### plansync could not make a plan\n") and \
        "0 problem(s) in the specs" in said
    for name, fmt in (("apply", None), ("plan", None), ("plan", "json")):
        _failing(views.pick(name, fmt), PlansyncError("it broke"))
        assert capsys.readouterr() == ("", "")  # stdout is the format's: nothing to add


def test_apply_narrates_on_stderr_when_stdout_is_json(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    for fmt, out, err in ((None, "Settling\n", ""), ("json", "", "Settling\n")):
        view = views.pick("apply", fmt)
        view.line("Settling")
        view.warning("careful")
        assert capsys.readouterr() == (out, err + "warning: careful\n")
