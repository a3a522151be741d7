"""Spec loading: every kind of bad input, with its exact file:line:column and message."""

from decimal import Decimal
from pathlib import Path

import pytest

from plansync.spec import loader
from plansync.spec.model import DesiredPlan
from tests.helpers import HEAD


def load_text(tmp_path: Path, body: str, name: str = "spec.yaml"
              ) -> tuple[list[DesiredPlan], list[str]]:
    path = tmp_path / name
    path.write_text(HEAD + body)
    plans, problems = loader.load([path])
    return plans, [str(p).replace(str(tmp_path) + "/", "") for p in problems]


def only_problem(tmp_path: Path, body: str) -> str:
    _plans, problems = load_text(tmp_path, body)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize(("body", "expected"), [
    ("plans:\n  - id: '1'\n    recurring_interval: thirty\n",
     'spec.yaml:5:25: plan 1: recurring_interval: must be a whole number, not "thirty"'),
    ("plans:\n  - id: '1'\n    amout: '1.00'\n",
     "spec.yaml:5:5: plan 1: amout: unknown field (did you mean 'amount'?)"),
    ("plans:\n  - id: '1'\n    lifecycle: {prevent_cancel: true, prevent: 1}\n",
     "spec.yaml:5:39: plan 1: lifecycle.prevent: unknown field (did you mean "
     "'prevent_cancel'?)"),
    ("plans:\n  - name: x\n",
     "spec.yaml:4:5: missing required field 'id'"),
    ("plans:\n  - id: '1'\n    amount: '1.00'\n    amount: '2.00'\n",
     "spec.yaml:6:5: plan 1: amount: duplicate key 'amount' (first at line 5); remove one"),
    ("plans:\n  - id: '1'\n    currency: SGD\n    amount: 9.999\n",
     "spec.yaml:6:13: plan 1: amount: 9.999 has more decimals than SGD allows (2)"),
    # No currency: more decimals than any currency has, quoted or not, said as such.
    ("plans:\n  - id: '1'\n    amount: '10.12345'\n",
     'spec.yaml:5:13: plan 1: amount: 10.12345 has more than 4 decimals, more than any '
     'currency allows'),
    ("plans:\n  - id: '1'\n    max_accumulate_amount: 10.12345\n",
     "spec.yaml:5:28: plan 1: max_accumulate_amount: 10.12345 has more than 4 decimals, "
     "more than any currency allows"),
    ("plans:\n  - id: '1'\n    amount: '1234567890123'\n",
     'spec.yaml:5:13: plan 1: amount: 1234567890123 is more than the gateway\'s 12-digit '
     'amounts can carry'),
    ("plans:\n  - id: '1'\n    currency: JPY\n    amount: '1500.5'\n",
     "spec.yaml:6:13: plan 1: amount: 1500.5 has more decimals than JPY allows (0)"),
    ("plans:\n  - id: '1'\n    allow_accumulate: true\n",
     "spec.yaml:5:23: plan 1: allow_accumulate: allow_accumulate: true needs a "
     "max_accumulate_amount greater than 0 in the same plan (or its defaults)"),
    ("plans:\n  - id: '1'\n    charge_next_date: 2027-02-29\n",
     'spec.yaml:5:23: plan 1: charge_next_date: "2027-02-29" is not a real date'),
    ("plans:\n  - id: '1'\n    charge_on_date: '3104'\n",
     'spec.yaml:5:21: plan 1: charge_on_date: "3104" is not a real day and month (ddMM)'),
    ("plans:\n  - id: '1'\n    charge_on_date: 1512\n",
     'spec.yaml:5:21: plan 1: charge_on_date: must be day and month as ddMM, quoted, such '
     'as "0712", not 1512'),
    ("plans:\n  - id: '1'\n    lifecycle: {ignore_changes: [amont]}\n",
     "spec.yaml:5:34: plan 1: lifecycle.ignore_changes: must be one of status, amount, "
     "allow_accumulate, max_accumulate_amount, recurring_interval, recurring_count, "
     "charge_next_date, charge_on_date, not \"amont\" (did you mean 'amount'?)"),
    ("plans:\n  - id: '1'\n    status: cancelled\n    lifecycle: {prevent_cancel: true}\n",
     "spec.yaml:6:33: plan 1: lifecycle.prevent_cancel: the plan's status is cancelled, but "
     "prevent_cancel forbids cancelling it; remove one of the two"),
    ("plans:\n  - id: '1'\n    currency: XYZ\n",
     "spec.yaml:5:15: plan 1: currency: 'XYZ' is not an ISO 4217 currency code"),
    ("plans:\n  - id: 12ab\n",
     'spec.yaml:4:9: plan 12ab: id: must be digits: the plan\'s recurringUniqueID, not "12ab"'),
    ("plans:\n  - id: '1'\n    amount: .inf\n",
     'spec.yaml:5:13: plan 1: amount: must be an exact decimal in major units, such as '
     '"99.90", not ".inf"'),
    ("plans:\n  - id: '1'\n    recurring_interval: 0x1E\n",
     'spec.yaml:5:25: plan 1: recurring_interval: must be a whole number, not "0x1E"'),
    ("plans:\n  - id: '1'\n    status: paused\n",
     'spec.yaml:5:13: plan 1: status: must be one of active, inactive, cancelled, not "paused"'),
    ("plans:\n  - id: '1'\n    recurring_count: -1\n",
     "spec.yaml:5:22: plan 1: recurring_count: must be at least 0, not -1"),
    ("defaults:\n  recurring_interval: 400\nplans: []\n",
     "spec.yaml:4:23: defaults.recurring_interval: must be at most 365, not 400"),
    ("plans:\n  - id: '1'\n  - id: [\n",
     "spec.yaml:6:1: not valid YAML: did not find expected node content"),
])
def test_each_kind_of_problem_is_located_exactly(tmp_path: Path, body: str,
                                                 expected: str) -> None:
    assert only_problem(tmp_path, body) == expected


def test_wrong_api_version_and_kind(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("apiVersion: v2\nkind: Plans\nplans: []\nextra: 1\n")
    _plans, problems = loader.load([path])
    assert [str(p).replace(str(tmp_path) + "/", "") for p in problems] == [
        'x.yaml:1:13: apiVersion: must be plansync/v1, not "v2"',
        'x.yaml:2:7: kind: must be RecurringPlans, not "Plans"',
        "x.yaml:4:1: extra: unknown field",
    ]


def test_every_problem_is_reported_not_only_the_first(tmp_path: Path) -> None:
    _plans, problems = load_text(tmp_path, (
        "plans:\n"
        "  - id: '1'\n    amout: '1.00'\n    currency: SGD\n    amount: 1.001\n"
        "  - id: '2'\n    recurring_interval: 0\n"
        "  - id: '1'\n"))
    assert [p.split(": ", 1)[0] for p in problems] == [
        "spec.yaml:5:5", "spec.yaml:7:13", "spec.yaml:9:25", "spec.yaml:10:5"]
    assert problems[-1] == "spec.yaml:10:5: plan 1: declared twice: here and at spec.yaml:4:5"


def test_the_same_id_in_two_files_names_both(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(HEAD + "plans:\n  - id: '7'\n")
    (tmp_path / "b.yml").write_text(HEAD + "plans:\n  - id: 7\n")
    _plans, problems = loader.load([tmp_path])
    assert [str(p) for p in problems] == [
        f"{tmp_path}/b.yml:4:5: plan 7: declared twice: here and at {tmp_path}/a.yaml:4:5"]


def test_an_id_with_leading_zeros_is_the_same_plan_as_the_number(tmp_path: Path) -> None:
    """recurringUniqueID is numeric (N 20): "0156143" and 156143 name one plan, so the
    second declaration is reported, and the plan is known by one id (the state's key)."""
    (tmp_path / "a.yaml").write_text(HEAD + "plans:\n  - id: '0156143'\n    amount: '1.00'\n")
    (tmp_path / "b.yml").write_text(HEAD + "plans:\n  - id: 156143\n")
    plans, problems = loader.load([tmp_path])
    assert [str(p) for p in problems] == [
        f"{tmp_path}/b.yml:4:5: plan 156143: declared twice: here and at "
        f"{tmp_path}/a.yaml:4:5 (as 0156143: leading zeros do not count)"]
    assert [p.id for p in plans] == ["156143", "156143"]
    alone, _ = load_text(tmp_path, "plans:\n  - id: '000'\n  - id: 007\n")
    assert [p.id for p in alone] == ["0", "7"]


def test_amounts_are_exact_decimals_however_written(tmp_path: Path) -> None:
    plans, problems = load_text(tmp_path, (
        "plans:\n  - {id: '1', amount: 99.9}\n  - {id: '2', amount: 99.90}\n"
        "  - {id: '3', amount: '99.90'}\n  - {id: '4', amount: 100}\n"))
    assert problems == []
    amounts = [p.fields.amount for p in plans]
    assert all(isinstance(a, Decimal) for a in amounts)
    assert amounts[:3] == [Decimal("99.90")] * 3 and amounts[3] == Decimal("100")
    assert str(amounts[0]) == "99.9"  # the text as written, not a float's 99.90000000000000568


def test_defaults_merge_under_plans(tmp_path: Path) -> None:
    plans, problems = load_text(tmp_path, (
        "defaults:\n  recurring_interval: 30\n  currency: SGD\n"
        "  lifecycle: {prevent_cancel: true, ignore_changes: [charge_next_date]}\n"
        "plans:\n"
        "  - id: '1'\n    charge_next_date: 2027-01-01\n"
        "  - id: '2'\n    recurring_interval: 7\n    lifecycle: {prevent_cancel: false}\n"))
    assert problems == []
    first, second = plans
    assert first.fields.recurring_interval == 30 and first.currency == "SGD"
    assert first.fields.charge_next_date is None  # declared, but in ignore_changes
    assert first.prevent_cancel and first.ignore_changes == {"charge_next_date"}
    assert second.fields.recurring_interval == 7
    assert not second.prevent_cancel and second.ignore_changes == {"charge_next_date"}
    assert first.managed == ("recurring_interval",)


def test_a_problem_from_defaults_points_at_the_defaults(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, "defaults:\n  currency: JPY\nplans:\n"
                                     "  - id: '1'\n    amount: '1.50'\n")
    assert problem == "spec.yaml:7:13: plan 1: amount: 1.50 has more decimals than JPY allows (0)"
    problem = only_problem(tmp_path, "defaults:\n  allow_accumulate: true\nplans:\n"
                                     "  - id: '9'\n")
    assert problem.startswith("spec.yaml:4:21: plan 9: allow_accumulate:")


def test_folders_multi_document_files_and_what_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "a.yaml").write_text(
        HEAD + "plans: [{id: '1'}]\n---\n" + HEAD + "plans: [{id: '2'}]\n")
    (tmp_path / "b.yml").write_text(HEAD + "plans: [{id: '3', status: cancelled}]\n")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "ci.yaml").write_text("on: push\n")
    (tmp_path / "plansync.yaml").write_text("endpoint: sandbox\n")  # settings, not a spec
    (tmp_path / "notes.txt").write_text("not yaml")
    plans, problems = loader.load([tmp_path])
    assert problems == []
    assert [p.id for p in plans] == ["3", "1", "2"]
    assert plans[0].cancel and plans[0].managed == ("status",)


def test_missing_paths(tmp_path: Path) -> None:
    _plans, problems = loader.load([tmp_path / "nope.yaml", tmp_path])
    assert sorted(p.message for p in problems) == ["folder holds no *.yaml or *.yml file",
                                                  "no such file or folder"]


def test_digest_follows_meaning_not_layout(tmp_path: Path) -> None:
    one, _ = load_text(tmp_path, "plans:\n  - {id: '1', amount: 99.9}\n", "a.yaml")
    two, _ = load_text(tmp_path, "# a comment\nplans:\n  - id: 1\n    amount: '99.9'\n",
                       "b.yaml")
    three, _ = load_text(tmp_path, "plans:\n  - {id: '1', amount: 99.91}\n", "c.yaml")
    assert loader.digest(one) == loader.digest(two) != loader.digest(three)


def test_the_example_spec_is_valid() -> None:
    example = Path(__file__).parents[2] / "specs.example"
    plans, problems = loader.load([example])
    assert problems == [] and len(plans) == 4
    text = (example / "plans.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../schemas/plansync-spec.schema.json")


def test_a_long_plans_list_is_read_in_chunks_with_exact_positions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plansync.spec import yamlread

    monkeypatch.setattr(yamlread, "CHUNK_PLANS", 3)
    body = ["apiVersion: plansync/v1", "kind: RecurringPlans", "extra: 1", "plans:"]
    for i in range(10):
        body += [f"  - id: '{i}'  # plan {i}", f"    amount: {'x' if i in (4, 9) else '1.00'}"]
        if i == 7:
            body += ["    amount: '2.00'"]
        if i == 2:
            body += ["", "    # a comment between fields", "    recurring_count: 1"]
    path = tmp_path / "long.yaml"
    path.write_text("\n".join(body) + "\n")
    text = path.read_text()
    assert yamlread._split_plans(text) is not None  # the chunked path is the one tested
    _plans, problems = loader.load([path])
    lines = text.splitlines()
    twice = lines.index("    amount: '2.00'") + 1
    assert [str(p).replace(str(tmp_path) + "/", "") for p in problems] == [
        "long.yaml:3:1: extra: unknown field",  # said once, not once per chunk
        f'long.yaml:{lines.index("    amount: x") + 1}:13: plan 4: amount: must be an exact '
        'decimal in major units, such as "99.90", not "x"',
        f"long.yaml:{twice}:5: plan 7: amount: duplicate key 'amount' (first at line "
        f"{twice - 1}); remove one",
        f'long.yaml:{len(lines)}:13: plan 9: amount: must be an exact decimal in major units, '
        'such as "99.90", not "x"',
    ]


def test_layouts_that_are_not_chunked_are_read_whole() -> None:
    from plansync.spec import yamlread

    many = "".join(f"  - id: '{i}'\n" for i in range(yamlread.CHUNK_PLANS + 5))
    head = "apiVersion: plansync/v1\nkind: RecurringPlans\nplans:\n"
    assert yamlread._split_plans(head + many) is not None
    assert yamlread._split_plans(head + many + "defaults: {}\n") is None  # a key after plans
    assert yamlread._split_plans(head + many.replace("'7'", "&a '7'")) is None  # anchors
    assert yamlread._split_plans(head + many + "---\n" + head) is None  # several documents
    assert yamlread._split_plans(head + "  []\n") is None


def test_yaml_1_2_booleans_only_true_and_false(tmp_path: Path) -> None:
    """As the editors the README recommends read YAML: `name: no` is the text "no"."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - id: '1'\n    name: no\n"
                           "  - id: '2'\n    name: off\n    allow_accumulate: false\n")
    plans, problems = loader.load([spec])
    assert problems == []
    assert [(p.name, p.fields.allow_accumulate) for p in plans] == [("no", None),
                                                                     ("off", False)]
    spec.write_text(HEAD + "plans:\n  - id: '1'\n    allow_accumulate: yes\n"
                           "    max_accumulate_amount: '1.00'\n  - id: '2'\n    name: 42\n")
    _plans, problems = loader.load([spec])
    messages = sorted(p.message for p in problems)
    assert messages == ['must be text, not 42 (quote it to keep it as text)',
                        'must be true or false, not "yes" (plansync reads YAML 1.2: write '
                        'true or false)']


CHUNKED_CASES = {
    "the shipped example": (Path(__file__).parents[2] / "specs.example" / "plans.yaml"
                            ).read_text(),
    "comments and blank lines between items": HEAD + "defaults:\n  recurring_interval: 7\n"
    "plans:\n" + "".join(f"  # plan {i}\n\n  - id: '{i}'\n    amount: '{i}.00'\n"
                         for i in range(1, 12)),
    "block scalars, flow items and a bad item": HEAD + "plans:\n" + "".join(
        f"  - {{id: '{i}', amount: '{i}.50', name: \"n{i}\"}}\n" for i in range(1, 6))
    + "  - id: '6'\n    name: |\n      two\n      lines\n  - id: '7'\n    amount: lots\n"
    + "".join(f"  - id: '{i}'\n    status: paused\n" for i in range(8, 12)),
    "an indented list under plans": HEAD + "plans:\n" + "".join(
        f"    - id: '{i}'\n      amount: '1.00'\n" for i in range(1, 9)),
    "a duplicate id across chunks": HEAD + "plans:\n" + "".join(
        f"  - id: '{i % 5}'\n" for i in range(1, 12)),
}


@pytest.mark.parametrize("name", CHUNKED_CASES)
def test_chunked_reading_gives_what_a_plain_read_gives(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large specs are read in chunks of CHUNK_PLANS items (for speed); with chunks of 3
    here, every case must load to the same plans and problems, lines included."""
    from plansync.spec import yamlread

    spec = tmp_path / "spec.yaml"
    spec.write_text(CHUNKED_CASES[name])
    monkeypatch.setattr(yamlread, "CHUNK_PLANS", 3)
    assert yamlread._split_plans(CHUNKED_CASES[name]) is not None  # chunking did engage
    chunked = loader.load([spec])
    monkeypatch.setattr(yamlread, "_split_plans", lambda _text: None)
    plain = loader.load([spec])
    assert chunked == plain


# --- amounts and whole numbers: the one rule (formats.parse_amount, parse_whole) ---------

@pytest.mark.parametrize(("body", "expected"), [
    # Reported: passed validate, and was sent as 0.00 on every apply.
    ("plans:\n  - id: '1'\n    amount: 1.e-999999999\n",
     'spec.yaml:5:13: plan 1: amount: must be an exact decimal in major units, such as '
     '"99.90", not "1.e-999999999"'),
    ("plans:\n  - id: '1'\n    currency: SGD\n    amount: 1.e-999999999\n",
     'spec.yaml:6:13: plan 1: amount: must be an exact decimal in major units, such as '
     '"99.90", not "1.e-999999999"'),
    # Reported: validated when alone (jsonschema-rs takes 7.0 for an integer), sent as "7.0".
    ("plans:\n  - id: '1'\n    recurring_interval: 7.0\n",
     "spec.yaml:5:25: plan 1: recurring_interval: must be a whole number, not 7.0"),
    ("defaults:\n  recurring_count: 12.0\nplans:\n  - id: '1'\n",
     "spec.yaml:4:20: plan 1: recurring_count: must be a whole number, not 12.0"),
    ("plans:\n  - id: '1'\n    recurring_count: 1e2\n",
     'spec.yaml:5:22: plan 1: recurring_count: must be a whole number, not "1e2"'),
    ("plans:\n  - id: '1'\n    recurring_interval: +7\n",
     'spec.yaml:5:25: plan 1: recurring_interval: must be a whole number, not "+7"'),
    ("plans:\n  - id: '1'\n    max_accumulate_amount: 1E+2\n",
     "spec.yaml:5:28: plan 1: max_accumulate_amount: must be an exact decimal in major "
     'units, such as "10.00", not "1E+2"'),
    ("plans:\n  - id: '1'\n    amount: -0.0\n",
     "spec.yaml:5:13: plan 1: amount: -0.0 is negative: an amount has no sign"),
    ("plans:\n  - id: '1'\n    amount: 0.00001\n",
     "spec.yaml:5:13: plan 1: amount: 0.00001 has more than 4 decimals, more than any "
     "currency allows"),
    ("plans:\n  - id: '1'\n    currency: SGD\n    amount: '99.900'\n",
     "spec.yaml:6:13: plan 1: amount: 99.900 has more decimals than SGD allows (2)"),
    # YAML 1.1 read underscores as digit separators (7_0 was 70) and tags as types:
    # YAML 1.2 and the one rule do not.
    ("plans:\n  - id: '1'\n    recurring_interval: 7_0\n",
     'spec.yaml:5:25: plan 1: recurring_interval: must be a whole number, not "7_0"'),
    ("plans:\n  - id: '1'\n    recurring_count: !!float 7\n",
     'spec.yaml:5:22: plan 1: recurring_count: must be a whole number, not "7"'),
    ("plans:\n  - id: '1'\n    amount: 1_0.5_0\n",
     "spec.yaml:5:13: plan 1: amount: must be an exact decimal in major units, such as "
     '"99.90", not "1_0.5_0"'),
    ("plans:\n  - id: '1'\n    currency: SGD\n    amount: '10000000000.00'\n",
     "spec.yaml:6:13: plan 1: amount: 10000000000.00 is more than the gateway's 12-digit "
     "amounts can carry"),
])
def test_amounts_and_whole_numbers_follow_the_one_rule(tmp_path: Path, body: str,
                                                       expected: str) -> None:
    assert only_problem(tmp_path, body) == expected


def test_the_largest_amounts_each_currency_carries_are_read(tmp_path: Path) -> None:
    plans, problems = load_text(tmp_path, (
        "plans:\n  - {id: '1', currency: JPY, amount: '999999999999'}\n"
        "  - {id: '2', currency: SGD, amount: 9999999999.99}\n"
        "  - {id: '3', currency: BHD, amount: '999999999.999'}\n"))
    assert problems == []
    assert [str(p.fields.amount) for p in plans] == [
        "999999999999", "9999999999.99", "999999999.999"]
