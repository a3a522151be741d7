"""Spec problems for people and for CI systems: text lines and GitHub workflow-command
annotations on the spec lines (their JSON: plansync/views/json.py). No logic, no I/O but
the strings returned."""

from __future__ import annotations

from plansync.printable import printable
from plansync.spec.model import Problem


def text(problem: Problem) -> str:
    return printable(str(problem))


def github_annotation(problem: Problem) -> str:
    """``::error file=…,line=…,col=…::…``: GitHub shows it on the spec line in the pull
    request. Values are escaped as GitHub's workflow-command format requires."""
    where = problem.location
    title = " ".join(p for p in (f"plan {problem.plan_id}" if problem.plan_id else "",
                                 problem.field or "") if p)
    properties = {"file": where.file, "line": str(where.line), "col": str(where.column)}
    if title:
        properties["title"] = title
    head = ",".join(f"{key}={_property(value)}" for key, value in properties.items())
    return f"::error {head}::{_data(printable(problem.message))}"


def _data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")
