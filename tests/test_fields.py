"""The field table (plansync/fields.py) and every place derived from it or checked
against it: the records, the wire, the spec loader and writer, the live renderer, the
JSON Schemas (generated: python -m plansync.schema_gen), the README's field table and the
emulator's names."""

import dataclasses
import json
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from plansync import fields, schema_files, schema_gen
from plansync.emulator import gateway as emulated
from plansync.fields import FIELDS, NAMES, SPEC_FIELDS, UPDATABLE, Kind, LivePlan, PlanFields
from plansync.gateway import messages
from plansync.render.live import as_dict
from plansync.spec import loader, writer

ROOT = Path(__file__).parents[1]
EVERY = LivePlan(id="156142", status="active", amount=Decimal("99.90"), currency="SGD",
                 allow_accumulate=True, max_accumulate_amount=Decimal("10.00"),
                 recurring_interval=30, recurring_count=99999, current_count=3,
                 charge_next_date=date(2027, 1, 7), charge_on_date="0701",
                 invoice_prefix="030321135205", masked_card_no="411111XXXXXX1111")


def schema(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((ROOT / "schemas" / name).read_text())  # type: ignore[no-any-return]


# --- the records -------------------------------------------------------------------------

def test_the_records_hold_exactly_the_tables_fields() -> None:
    assert tuple(f.name for f in dataclasses.fields(PlanFields)) == NAMES
    assert tuple(f.name for f in dataclasses.fields(LivePlan)) == ("id", *(f.name for f in FIELDS))
    # What an answer may leave out defaults to None: a new field changes no LivePlan(...).
    assert {f.name for f in dataclasses.fields(LivePlan) if f.default is dataclasses.MISSING} \
        == {"id", *(f.name for f in FIELDS if f.required)}


# --- codecs, per kind --------------------------------------------------------------------

@pytest.mark.parametrize(("name", "value", "wire"), [
    ("status", "active", "Y"), ("status", "inactive", "N"),
    ("amount", Decimal("99.90"), "000000009990"),
    ("allow_accumulate", True, "Y"), ("allow_accumulate", False, "N"),
    ("recurring_interval", 365, "365"), ("recurring_count", 99999, "99999"),
    ("recurring_count", 0, "0"),
    ("charge_next_date", date(2027, 1, 7), "07012027"),
    ("charge_on_date", "2902", "2902"),
])
def test_wire_codec_round_trips(name: str, value: object, wire: str) -> None:
    field = fields.BY_NAME[name]
    assert field.to_wire(value, 2) == wire
    assert field.from_wire(wire, 2) == value


@pytest.mark.parametrize(("name", "value"), [
    ("recurring_interval", 0), ("recurring_interval", 366), ("recurring_count", 100000),
    ("amount", Decimal("1.001")), ("charge_on_date", "3102"),
])
def test_values_outside_the_documented_limits_are_not_encoded(name: str, value: object) -> None:
    with pytest.raises(ValueError):
        fields.BY_NAME[name].to_wire(value, 2)


@pytest.mark.parametrize(("name", "text"), [
    ("recurring_count", "100000"), ("recurring_interval", "0"), ("status", "A"),
    ("allow_accumulate", "yes"), ("current_count", "-1"),
])
def test_answers_outside_the_documented_limits_are_refused(name: str, text: str) -> None:
    with pytest.raises(ValueError):
        fields.BY_NAME[name].from_wire(text, 2)


def test_json_codec_round_trips_every_field() -> None:
    for field in FIELDS:
        value = getattr(EVERY, field.name)
        encoded = fields.to_json(value)
        assert json.loads(json.dumps(encoded)) == encoded  # plain JSON, no floats
        assert not isinstance(encoded, float)
        assert fields.from_json(field.name, encoded) == value


# --- places derived from the table ----------------------------------------------------

def test_the_wire_carries_the_updatable_fields_in_table_order() -> None:
    items = messages.fields_to_wire(EVERY.fields, 2)
    assert [tag for tag, _ in items] == [f.tag for f in UPDATABLE]
    answer = messages.Response("00", "", EVERY.id, {
        f.tag: f.to_wire(getattr(EVERY, f.name), 2) if f.updatable else
        {"currency": "702", "current_count": "3"}.get(f.name, getattr(EVERY, f.name))
        for f in FIELDS})
    assert messages.live_plan(answer) == EVERY


def test_the_renderer_shows_every_field() -> None:
    assert list(as_dict(EVERY)) == ["id", *(f.name for f in FIELDS)]


def test_the_writer_declares_every_spec_field_and_the_loader_reads_them_back(
        tmp_path: Path) -> None:
    spec = tmp_path / "imported.yaml"
    spec.write_text(writer.spec_text([EVERY]))
    [desired], problems = loader.load([spec])
    assert problems == []
    # Declared, but ignored by default: it moves with every charge.
    assert desired.ignore_changes == {"charge_next_date"}
    assert desired.fields == dataclasses.replace(EVERY.fields, charge_next_date=None)
    assert f"charge_next_date: {EVERY.charge_next_date}" in spec.read_text()
    assert desired.currency == "SGD"


def test_the_committed_schemas_are_generated_from_the_table() -> None:
    checked = subprocess.run([sys.executable, "-m", "plansync.schema_gen", "--check"],
                             capture_output=True, text=True, cwd=ROOT)
    assert checked.returncode == 0, checked.stderr


def test_the_generator_rewrites_a_schema_that_drifted(tmp_path: Path) -> None:
    for name in schema_gen.fragments():
        shutil.copy(ROOT / "schemas" / name, tmp_path / name)
    drifted = schema("plan.schema.json")
    del drifted["$defs"]["values"]["properties"]["charge_on_date"]
    (tmp_path / "plan.schema.json").write_text(json.dumps(drifted))
    assert schema_gen.main(["--check"], tmp_path) == 1
    assert schema_gen.main([], tmp_path) == 0
    assert schema_gen.drifted(tmp_path) == {}
    assert (tmp_path / "plan.schema.json").read_text() == \
        (ROOT / "schemas" / "plan.schema.json").read_text()


def test_a_new_field_reaches_every_schema_that_lists_fields() -> None:
    new = fields.Field("retry_days", "retryDays", Kind.WHOLE, True, "Days between retries.",
                       low=1, high=7)
    shown = fields.Field("card_brand", "cardBrand", Kind.TEXT, False, "The card's brand.")
    spec, plan, state = (json.loads(schema_gen.generated(name, schema(name), (*FIELDS, new,
                                                                              shown)))
                         for name in ("plansync-spec.schema.json", "plan.schema.json",
                                      "state.schema.json"))
    assert spec["$defs"]["field"]["enum"][-1] == "retry_days"
    assert spec["$defs"]["fields"]["properties"]["retry_days"] == {
        "type": "integer", "minimum": 1, "maximum": 7, "description": "Days between retries."}
    assert plan["$defs"]["values"]["properties"]["retry_days"] == {
        "type": ["integer", "null"], "minimum": 1, "maximum": 7}
    assert state["$defs"]["values"]["properties"]["retry_days"] == \
        plan["$defs"]["values"]["properties"]["retry_days"]
    assert "retry_days" in state["$defs"]["values"]["propertyNames"]["enum"]
    # A field the gateway shows but a spec cannot declare is in none of them.
    assert "card_brand" not in json.dumps([spec, plan, state])


def test_the_schemas_plansync_reads_declare_exactly_the_tables_fields() -> None:
    # As the spec loader, the state and the plan readers load them (schema_files).
    spec = schema_files.load("plansync-spec.schema.json")["$defs"]
    assert tuple(spec["field"]["enum"]) == NAMES
    assert [*spec["fields"]["properties"]] == [*(f.name for f in SPEC_FIELDS), "lifecycle"]
    state = schema_files.load("state.schema.json")["$defs"]["values"]
    assert tuple(state["propertyNames"]["enum"]) == tuple(f.name for f in SPEC_FIELDS)
    plan = schema_files.load("plan.schema.json")["$defs"]["values"]
    assert tuple(plan["properties"]) == NAMES


def test_the_readme_field_table_follows_the_table() -> None:
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- spec-fields:", 1)[1].split("\n\n", 1)[0]
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines()
            if line.startswith("| `")}
    assert set(NAMES) | {"currency"} <= set(rows)
    for field in UPDATABLE:
        if field.kind is Kind.WHOLE:
            assert str(field.high) in rows[field.name], field.name


def test_the_emulator_names_the_same_fields() -> None:
    # Its own checks (as its own JOSE), the table's names; its seed file holds any of them.
    assert set(emulated.UPDATABLE) == {f.tag for f in UPDATABLE}
    assert set(emulated._RECORD_ORDER) == {f.tag for f in FIELDS}
    seed = schema("emulator-seed.schema.json")["$defs"]["plan"]["properties"]
    assert {f.tag for f in FIELDS} <= set(seed)


# --- the state's, the journal's and a saved plan's values: the one rule (issue 20) --------

@pytest.mark.parametrize(("name", "value", "message"), [
    ("amount", "1E+2", "amount: \"1E\\+2\" is not an amount"),
    ("amount", "1.e-999999999", "no exponent"),
    ("amount", "NaN", "no exponent"), ("amount", "-1.00", "sign"),
    ("amount", "0.000001", "more than 4 decimals"),
    ("amount", 100, "write it as text"), ("amount", 99.9, "write it as text"),
    ("max_accumulate_amount", "1e3", "max_accumulate_amount: "),
    ("recurring_interval", 7.0, "recurring_interval: 7.0 is not a whole number from 1 to 365"),
    ("recurring_interval", "7", "whole number"), ("recurring_interval", True, "whole number"),
    ("recurring_interval", 0, "whole number"), ("recurring_interval", 366, "whole number"),
    ("recurring_count", 7.5, "from 0 to 99999"), ("recurring_count", 100000, "from 0 to"),
    ("recurring_count", False, "recurring_count: false is not a whole number"),
])
def test_json_values_are_read_by_the_one_rule(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fields.from_json(name, value)


@pytest.mark.parametrize(("name", "value"), [
    ("recurring_interval", 7.0), ("recurring_interval", True), ("recurring_count", 7.5),
    ("recurring_interval", Decimal("7.0")), ("amount", Decimal("1E-999999999")),
])
def test_only_whole_ints_and_exact_amounts_are_encoded(name: str, value: object) -> None:
    # recurring_interval 7.0 was sent as "7.0" (the gateway answered 11).
    with pytest.raises(ValueError, match=name):
        fields.BY_NAME[name].to_wire(value, 2)


@pytest.mark.parametrize(("name", "text"), [
    ("amount", "1.e-999999999"), ("amount", " 99.90"), ("max_accumulate_amount", "1_0.00"),
    ("recurring_interval", "7.0"), ("recurring_count", "+7"), ("recurring_count", "0000012"),
])
def test_answers_are_read_by_the_one_rule(name: str, text: str) -> None:
    with pytest.raises(ValueError):
        fields.BY_NAME[name].from_wire(text, 2)
