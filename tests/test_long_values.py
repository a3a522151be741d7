"""A long value in an answer, a spec or a state file makes a short error line: messages
quote values cut to about 80 characters (printable.quoted). A 5000-digit answer field once
made a 10,104-character line.
"""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from plansync.errors import MessageError
from plansync.gateway import messages
from plansync.printable import quoted
from tests.helpers import HEAD, run

LONG = "9" * 5000
SHORT_LINE = 200


def assert_short_lines(output: str, *names: str, folder: Path | None = None,
                       limit: int = SHORT_LINE) -> None:
    """Each line under ``limit`` characters, not counting the test's temporary folder."""
    lines = output.replace(f"{folder}/", "").splitlines() if folder else output.splitlines()
    assert lines, output
    assert max(map(len, lines)) < limit, [line[:300] for line in lines]
    for name in names:
        assert name in output, output
    assert "Traceback" not in output


@pytest.mark.parametrize("value", [
    "abc", "it's", "a\x1bb", "", 7, True, None, Decimal("1.00"), LONG, "\x00" * 50,
    pytest.param(10**5000, id="10**5000"), [1] * 5000])
def test_quoted_is_repr_for_short_values_and_cut_for_long_ones(value: object) -> None:
    shown = quoted(value)
    if isinstance(value, int) and value > 10**100:
        assert shown == "a number of more than 60 digits"
    elif len(repr(value)) <= 60 and not isinstance(value, Decimal):
        assert shown == repr(value)
    else:
        assert len(shown) <= 60 and "\x00" not in shown
    if value == LONG:
        assert shown == f"'{'9' * 39}…' (5000 characters)"


@pytest.mark.parametrize("tag", ["merchantID", "recurringUniqueID", "timeStamp"])
def test_an_answer_bound_to_another_request_by_a_long_member_is_a_short_error(
        tag: str) -> None:
    request = {"version": "2.4", "timeStamp": "030321155002", "merchantID": "JT01",
               "recurringUniqueID": "156142", "processType": "I"}
    answer = messages.Response("00", "", request["recurringUniqueID"],
                               {**request, "respCode": "00", tag: LONG})
    with pytest.raises(MessageError) as caught:
        messages.check_bound(answer, request)
    assert len(str(caught.value)) < SHORT_LINE and "(5000 characters)" in str(caught.value)


@pytest.mark.parametrize(("tag", "says"), [
    ("recurringInterval", "recurringInterval"), ("recurringCount", "recurringCount"),
    ("amount", "<amount>"), ("maxAccumulateAmount", "maxAccumulateAmount"),
    ("chargeNextDate", "chargeNextDate"), ("chargeOnDate", "chargeOnDate"),
    ("currency", "currency"), ("recurringStatus", "recurringStatus"),
    ("allowAccumulate", "allowAccumulate"),
])
def test_a_5000_digit_answer_field_is_a_short_error_line(
        emulator: Emulator, served: dict[str, str], tag: str, says: str) -> None:
    emulator.server.gateway.store.update("JT01", "156142", {tag: LONG})
    result = run("inquire", "156142", env=served)
    assert result.returncode == 1, result.stdout + result.stderr
    assert_short_lines(result.stderr, "plan 156142", says, "5000 characters")


@pytest.mark.parametrize(("plan", "says"), [
    (f"id: '1'\n    recurring_interval: {LONG}", "recurring_interval: must be a whole number"),
    (f"id: '1'\n    amount: '{LONG}'",
     "characters) is more than the gateway's 12-digit amounts can carry"),
    (f"id: '1'\n    amount: {LONG}.5", "amount:"),
    (f"id: '1'\n    currency: '{LONG}'", "currency:"),
    (f"id: '1'\n    charge_on_date: '{LONG}'", "charge_on_date:"),
    (f"id: '1'\n    charge_next_date: '{LONG}'", "charge_next_date:"),
    (f"id: '1'\n    status: '{LONG}'", "status: must be one of"),
    (f"id: '1'\n    name: '{LONG}'", "name: must be at most 100 characters, not 5000"),
    (f"id: '{LONG}'", "id: must be digits"),
    # YAML allows longer keys than 1024 characters only as explicit keys (``? key``)
    (f"id: '1'\n    ? x{LONG}\n    : 1", "unknown field"),
    (f"id: '1'\n    ? x{LONG}\n    : 1\n    ? x{LONG}\n    : 2", "duplicate key"),
])
def test_a_5000_character_spec_value_is_a_short_error_line(
        tmp_path: Path, plan: str, says: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + f"plans:\n  - {plan}\n")
    result = run("validate", str(spec))
    assert result.returncode == 1, result.stdout + result.stderr
    assert_short_lines(result.stderr, f"{spec}:", says, folder=tmp_path)


def test_a_5000_character_field_name_in_ignore_changes_is_cut_too(tmp_path: Path) -> None:
    """The list of what it may be is 200 characters already: the value adds 60 more."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + f"plans:\n  - id: '1'\n    lifecycle: {{ignore_changes: ['{LONG}']}}\n")
    result = run("validate", str(spec))
    assert result.returncode == 1, result.stdout + result.stderr
    assert_short_lines(result.stderr, "must be one of", "(5000 characters)", folder=tmp_path,
                       limit=SHORT_LINE + 60)


@pytest.mark.parametrize(("applied", "extra", "says"), [
    ({"amount": LONG}, {}, "plans/156142/applied/amount: '99"),  # its pattern refuses it
    ({}, {f"x{i}": 1 for i in range(5000)}, "(top): Additional properties"),  # 5000 of them
])
def test_a_state_value_its_schema_refuses_is_a_short_error_line(
        tmp_path: Path, served: dict[str, str], applied: dict[str, object],
        extra: dict[str, object], says: str) -> None:
    state = tmp_path / "state.json"
    entry = {"applied": applied, "applied_at": "2026-01-01T00:00:00Z", "seen": {},
             "seen_at": None, "cancelled": False, "cancelled_at": None, "cancelled_how": None}
    state.write_text(json.dumps({"version": 1, "serial": 1, "lineage": "l",
                                 "merchant_id": "JT01", "endpoint": "",
                                 "plans": {"156142": entry}, **extra}))
    result = run("state", "list", env=served | {"PLANSYNC_STATE": str(state)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert_short_lines(result.stderr, says, folder=tmp_path)


def test_a_5000_character_date_in_the_state_is_a_short_error_line(
        tmp_path: Path, served: dict[str, str]) -> None:
    """The state's schema does not check dates' shape; the field table's reader does."""
    state = tmp_path / "state.json"
    entry = {"applied": {"charge_next_date": LONG}, "applied_at": "2026-01-01T00:00:00Z",
             "seen": {}, "seen_at": None, "cancelled": False, "cancelled_at": None,
             "cancelled_how": None}
    state.write_text(json.dumps({"version": 1, "serial": 1, "lineage": "l",
                                 "merchant_id": "JT01", "endpoint": "",
                                 "plans": {"156142": entry}}))
    result = run("state", "list", env=served | {"PLANSYNC_STATE": str(state)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert_short_lines(result.stderr, "applied.charge_next_date", "5000 characters",
                       folder=tmp_path)
