"""The parts of schemas/ that list plan fields (and guardrails), written from the field
table (and the guardrails' declaration).

    python -m plansync.schema_gen           rewrite them (in a checkout of plansync)
    python -m plansync.schema_gen --check   exit 1 naming each schema that differs

Each schema stays a committed file (it ships in the wheel, and editors point at it);
only the fragments below come from plansync/fields.py, the rest is written by hand.
tests/test_fields.py fails while a committed schema differs from what this writes.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plansync.engine.guardrails import LIMITS
from plansync.fields import FIELDS, Field, Kind

# The checkout's schemas/ (a wheel's copy is never rewritten).
FOLDER = Path(__file__).parents[1] / "schemas"

Fragments = dict[tuple[str, ...], Any]  # JSON path in the schema -> its value
# The guardrails a plan can breach: every limit but the charge window, the only one with
# a default (the limits are off until set; the window only bounds max_charged_within).
BREACHABLE = [limit for limit in LIMITS if limit.default is None]


def fragments(table: Sequence[Field] = FIELDS) -> dict[str, Fragments]:
    """Per schema file, what the table decides, by JSON path."""
    updatable = [field for field in table if field.updatable]
    declared = [field for field in table if field.in_spec]
    return {
        "plansync-spec.schema.json": {
            ("$defs", "field", "enum"): [field.name for field in updatable],
            ("$defs", "fields", "properties"): {
                **{field.name: field.spec_schema() for field in declared},
                "lifecycle": {"$ref": "#/$defs/lifecycle"},
            },
        },
        "plan.schema.json": {
            ("$defs", "values", "properties"): {
                field.name: field.json_schema() for field in updatable},
            ("properties", "guardrails", "items", "properties", "limit", "enum"): [
                limit.name for limit in BREACHABLE],
        },
        "state.schema.json": {
            # A state constrains only its amounts and whole numbers (issue 20): a rule for
            # other kinds would refuse states that plansync reads today.
            ("$defs", "values", "properties"): {
                field.name: field.json_schema() for field in declared
                if field.kind in (Kind.AMOUNT, Kind.WHOLE)},
            ("$defs", "values", "propertyNames", "enum"): [field.name for field in declared],
        },
    }


def generated(name: str, schema: dict[str, Any], table: Sequence[Field] = FIELDS) -> str:
    """``schema`` with the table's fragments in place, as the file's text."""
    schema = copy.deepcopy(schema)
    for path, value in fragments(table)[name].items():
        parent = schema
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def drifted(folder: Path = FOLDER) -> dict[str, str]:
    """The schemas whose text differs from the generated one: name -> generated text."""
    differ = {}
    for name in fragments():
        text = (folder / name).read_text(encoding="utf-8")
        wanted = generated(name, json.loads(text))
        if text != wanted:
            differ[name] = wanted
    return differ


def main(argv: Sequence[str] = (), folder: Path = FOLDER) -> int:
    if any(arg != "--check" for arg in argv):
        print("usage: python -m plansync.schema_gen [--check]", file=sys.stderr)
        return 2
    if not folder.is_dir():
        print(f"{folder} is missing: run this in a checkout of plansync", file=sys.stderr)
        return 1
    differ = drifted(folder)
    if argv:
        for name in differ:
            print(f"schemas/{name} differs from plansync/fields.py: "
                  "run python -m plansync.schema_gen", file=sys.stderr)
        return 1 if differ else 0
    for name, text in differ.items():
        (folder / name).write_text(text, encoding="utf-8")
        print(f"rewrote schemas/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
