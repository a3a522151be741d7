"""No local input makes plansync crash: every bad spec, state file or journal is one
clear error naming the file (and line), exit 1 — never exit 70, never a traceback, and
never a write sent. Known crashers first, then hypothesis over all three kinds of file.
"""

import contextlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plansync.cli import main
from plansync.emulator.server import Emulator
from tests.helpers import HEAD, run, sent_writes

GOOD_STATE = {"version": 1, "serial": 1, "lineage": "l", "merchant_id": "JT01",
              "endpoint": "", "plans": {}}


def invoke(*argv: str) -> tuple[int, str]:
    """plansync in this process (as fast as hypothesis needs): exit code and all output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue() + err.getvalue()


def assert_clean(code: int, output: str) -> None:
    assert code in (0, 1), output
    assert "Traceback" not in output and "plansync crashed" not in output, output


@pytest.fixture
def env(served: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> dict[str, str]:
    full = served | {"PLANSYNC_STATE": str(tmp_path / "state" / "state.json")}
    for name, value in full.items():
        monkeypatch.setenv(name, value)
    return full


# --- inputs that crashed plansync (exit 70) before --------------------------------------

SPECS = {
    "integer over 4300 digits":
        HEAD + "plans:\n  - id: '1'\n    recurring_count: " + "1" * 5000 + "\n",
    "decimal over 28 digits": HEAD + "plans:\n  - id: '1'\n    amount: 1" + "0" * 30 + ".00\n",
    "NUL character": HEAD + "plans:\n  - id: '1'\n    name: \"a\x00b\"\n",
    "recursive alias": HEAD + "plans:\n  - &a\n    id: '1'\n    x: *a\n",
    "alias of its own list": "a: &a [*a]\n",
    "deep nesting": "a: " + "[" * 5000 + "]" * 5000 + "\n",
}


@pytest.mark.parametrize("name", SPECS)
def test_hostile_specs_are_one_clear_error(name: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPECS[name])
    result = run("validate", str(spec))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{spec}:" in result.stderr
    assert "Traceback" not in result.stderr and "plansync crashed" not in result.stderr


def test_a_utf16_spec_without_bom_says_so(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes((HEAD + "plans:\n  - id: '1'\n").encode("utf-16-le"))
    result = run("validate", str(spec))
    assert result.returncode == 1
    assert f"{spec}:1:2: contains the control character #x0000" in result.stderr
    assert "UTF-16 without a byte-order mark: save it as UTF-8" in result.stderr


@pytest.mark.parametrize(("what", "make", "message"), [
    ("state nested deeply", lambda p: p.write_text("[" * 100000),
     "nested too deeply to be a plansync state"),
    ("state a directory", lambda p: p.mkdir(), "is a directory"),
    ("state of the wrong shape", lambda p: p.write_text('{"version": 1, "plans": []}'),
     "is not a plansync state"),
    ("journal line of the wrong shape",
     lambda p: p.with_name("state.json.journal").write_text('{"kind": "intent", "x": 1}\n'),
     "state.json.journal:1: not a plansync journal record"),
    ("journal with unknown fields",
     lambda p: p.with_name("state.json.journal").write_text(
         '{"kind": "outcome", "key": "k", "plan": "1", "result": "applied", "at": "t", '
         '"entry": null, "surprise": true}\n'), "state.json.journal:1: not a plansync"),
    ("journal outcome with a number for a time",  # state list crashed (issue 21)
     lambda p: p.with_name("state.json.journal").write_text(json.dumps(
         {"kind": "outcome", "key": "k", "plan": "156142", "result": "applied",
          "at": "2026-01-01T00:00:00Z", "entry": {
              "applied": {}, "applied_at": 1.5, "seen": {}, "seen_at": None,
              "cancelled": False, "cancelled_at": None}}) + "\n"),
     "state.json.journal:1: not a plansync journal record"),
    ("journal a directory", lambda p: p.with_name("state.json.journal").mkdir(),
     "journal path"),
    ("lock a directory", lambda p: p.with_name("state.json.lock").mkdir(),
     "state.json.lock is a directory, not a regular file"),
])
def test_broken_local_files_are_one_clear_error(
        env: dict[str, str], emulator: Emulator, tmp_path: Path, what: str, make,
        message: str) -> None:
    state = Path(env["PLANSYNC_STATE"])
    state.parent.mkdir(parents=True)
    make(state)
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - id: '156142'\n    amount: '1.00'\n")
    command = ["apply", str(spec), "--auto-approve"] if "lock" in what else ["plan", str(spec)]
    result = run(*command, env=env)
    assert result.returncode == 1, what + result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert sent_writes(emulator) == {}


# --- amounts, counts and intervals: one rule wherever they enter (issue 20) -------------

REPORTED = {  # each passed validate; the first was sent as 0.00 on every apply, the last as "7.0"
    "tiny amount": "plans:\n  - id: '156142'\n    amount: 1.e-999999999\n",
    "tiny amount in SGD":
        "plans:\n  - id: '156142'\n    currency: SGD\n    amount: 1.e-999999999\n",
    "interval 7.0": "plans:\n  - id: '156142'\n    recurring_interval: 7.0\n",
}


@pytest.mark.parametrize("name", REPORTED)
def test_the_reported_numbers_are_refused_and_nothing_is_sent(
        name: str, env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + REPORTED[name])
    field = "recurring_interval" if "interval" in name else "amount"
    line = HEAD.count("\n") + REPORTED[name].count("\n")  # the last line: the number
    for argv in (["validate"], ["plan"], ["apply", "--dry-run"], ["apply", "--auto-approve"]):
        result = run(*argv, str(spec), env=env)
        assert result.returncode == 1, (argv, result.stdout, result.stderr)
        assert f"{spec}:{line}:" in result.stderr and f"plan 156142: {field}: must be" in \
            result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert sent_writes(emulator) == {}


def _after(field: str, value: object) -> Any:
    return lambda change: change["after"].update({field: value})


@pytest.mark.parametrize(("edit", "says"), [
    (_after("recurring_interval", 7.0),
     "plan 156142: after.recurring_interval: 7.0 is not a whole number from 1 to 365"),
    (_after("recurring_interval", True), "after/recurring_interval"),  # the schema: no integer
    (_after("amount", "1E+2"), "after/amount"),
    (_after("amount", "1.e-999999999"), "after/amount"),
    (lambda change: change["impact"]["after"].update(mrr="1E+2"), "impact/after/mrr"),
])
def test_a_hand_edited_number_in_a_saved_plan_is_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path, edit: Any, says: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156142', amount: '100.00', recurring_interval: 7}\n")
    saved = tmp_path / "plan.json"
    assert run("plan", str(spec), "--out", str(saved), env=env).returncode == 0
    document = json.loads(saved.read_text())
    [change] = document["changes"]
    edit(change)
    saved.write_text(json.dumps(document))
    for argv in (["apply", "--plan", str(saved), "--dry-run"],
                 ["apply", "--plan", str(saved), "--auto-approve"], ["show", str(saved)]):
        result = run(*argv, env=env)
        assert result.returncode == 1, (argv, result.stdout, result.stderr)
        assert f"plan file {saved} is not a plansync plan" in result.stderr, result.stderr
        assert says in result.stderr, result.stderr
    assert sent_writes(emulator) == {}


def test_a_state_with_an_amount_in_exponent_form_is_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    state = Path(env["PLANSYNC_STATE"])
    state.parent.mkdir(parents=True)
    entry = {"applied": {"amount": "1E+2"}, "applied_at": "2026-01-01T00:00:00Z",
             "seen": {}, "seen_at": None, "cancelled": False, "cancelled_at": None}
    state.write_text(json.dumps({**GOOD_STATE, "endpoint": env["PLANSYNC_ENDPOINT"],
                                 "plans": {"156142": entry}}))
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - id: '156142'\n    amount: '100.00'\n")
    for argv in (["state", "list"], ["plan", str(spec)], ["drift", str(spec)],
                 ["apply", str(spec), "--auto-approve"]):
        result = run(*argv, env=env)
        assert result.returncode == 1, (argv, result.stdout, result.stderr)
        assert f"{state} is not a plansync state: plans/156142/applied/amount: '1E+2' " \
            "does not match" in result.stderr, result.stderr
    assert sent_writes(emulator) == {}


def test_a_state_entry_with_a_fractional_interval_is_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    # JSON Schema takes 7.0 for an integer: only the one rule can refuse it.
    state = Path(env["PLANSYNC_STATE"])
    state.parent.mkdir(parents=True)
    entry = {"applied": {"recurring_interval": 7.0}, "applied_at": "2026-01-01T00:00:00Z",
             "seen": {}, "seen_at": None, "cancelled": False, "cancelled_at": None}
    state.write_text(json.dumps({**GOOD_STATE, "endpoint": env["PLANSYNC_ENDPOINT"],
                                 "plans": {"156142": entry}}))
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - id: '156142'\n    recurring_interval: 30\n")
    for argv in (["drift", str(spec)], ["plan", str(spec)]):
        result = run(*argv, env=env)
        assert result.returncode == 1, (argv, result.stdout, result.stderr)
        assert "plan 156142: applied.recurring_interval: 7.0 is not a whole number from 1 " \
            "to 365" in result.stderr, result.stderr


@pytest.mark.parametrize(("field", "value", "says"), [
    # the schema sees the text...
    ("amount", "1.e-999999999", "is not a plansync state: pending/0/after/amount: "
                                "'1.e-999999999' does not match"),
    # ...the one rule what JSON Schema cannot tell from an integer
    ("recurring_interval", 7.0, "holds a pending write that cannot be read: "
                                "recurring_interval: 7.0 is not a whole number from 1 to 365"),
])
def test_a_pending_write_with_such_a_number_is_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path, field: str, value: object,
        says: str) -> None:
    state = Path(env["PLANSYNC_STATE"])
    state.parent.mkdir(parents=True)
    intent = {"key": "run-1:156142", "plan": "156142", "action": "update",
              "after": {field: value}, "fingerprint": "sha256:0",
              "before_status": "active", "at": "2026-01-01T00:00:00Z"}
    state.write_text(json.dumps({**GOOD_STATE, "endpoint": env["PLANSYNC_ENDPOINT"],
                                 "pending": [intent]}))
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - id: '156142'\n    amount: '100.00'\n")
    result = run("apply", str(spec), "--auto-approve", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{state} {says}" in result.stderr, result.stderr
    assert sent_writes(emulator) == {}


# --- settings, state URLs and files that crashed plansync (issue 21) --------------------

def settings_with(env: dict[str, str], folder: Path, lines: str) -> dict[str, str]:
    """``env`` with its settings file copied to ``folder``, ``lines`` added."""
    source = Path(env["PLANSYNC_CONFIG"])
    text = (source.read_text().replace("merchant_key: ", f"merchant_key: {source.parent}/")
            .replace("gateway_key: ", f"gateway_key: {source.parent}/"))
    if "merchant_key" in lines:
        text = "\n".join(line for line in text.splitlines() if "merchant_key" not in line)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "plansync.yaml"
    config.write_text(text + "\n" + lines)
    return env | {"PLANSYNC_CONFIG": str(config)}


@pytest.mark.parametrize(("lines", "says"), [
    # exit 70; the second failed in the deadline thread, and the run went on without one
    ("connect_timeout: 99999999999999999999\n",
     "plansync.yaml: connect_timeout must be a positive number of seconds, at most 3600"),
    ("request_deadline: 99999999999999999999\n",
     "plansync.yaml: request_deadline must be a positive number of seconds, at most 3600"),
    ('merchant_key: "a\\0b"\n', "cannot be read: a path cannot hold a NUL character"),
    ("workspace: [1]\n", "plansync.yaml: workspace must be a name, not a list"),
])
def test_hostile_settings_are_one_clear_error(
        env: dict[str, str], emulator: Emulator, tmp_path: Path, lines: str, says: str
        ) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - id: '156142'\n    amount: '1.00'\n")
    changed = settings_with(env, tmp_path / "conf", lines) | {"PLANSYNC_STATE": ""}
    for argv in (["plan", str(spec)], ["apply", str(spec), "--auto-approve"]):
        result = run(*argv, env=changed)
        assert result.returncode == 1, result.stdout + result.stderr
        assert says in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert sent_writes(emulator) == {}


@pytest.mark.parametrize(("state", "environ", "says"), [
    ("postgres://u@[::1/db", {},
     "state URL postgres://... is not a URL (a host in brackets that do not close"),
    ("s3://bucket/prefix?region=%00", {},
     "the S3 state cannot be reached as set: Provided region_name"),
    ("s3://bucket/prefix", {"AWS_ENDPOINT_URL_S3": "not-a-url"},
     "the S3 state cannot be reached as set: Invalid endpoint: not-a-url\n  hint: check "),
    # part 3: an empty ?password= was dropped, and the URL accepted
    ("postgres://u@127.0.0.1:1/db?password=", {}, "the state URL holds a password"),
])
def test_hostile_state_urls_are_one_clear_error(
        state: str, environ: dict[str, str], says: str) -> None:
    result = run("state", "list", "--state", state, env=environ)
    assert result.returncode == 1, result.stdout + result.stderr
    assert says in result.stderr, result.stderr
    assert all(name in result.stderr.split("hint:")[-1] for name in environ)  # named
    assert "Traceback" not in result.stderr


def test_a_pending_write_out_of_the_calendar_in_utc_is_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    # 0001-01-01 at +14:00 is in year 0 in UTC: apply --dry-run crashed showing it
    state = Path(env["PLANSYNC_STATE"])
    state.parent.mkdir(parents=True)
    intent = {"key": "run-1:156142", "plan": "156142", "action": "update",
              "after": {"amount": "1.00"}, "fingerprint": "sha256:0",
              "before_status": "active", "at": "0001-01-01T00:00:00+14:00"}
    state.write_text(json.dumps({**GOOD_STATE, "endpoint": env["PLANSYNC_ENDPOINT"],
                                 "pending": [intent]}))
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - id: '156142'\n    amount: '1.00'\n")
    for argv in (["apply", str(spec), "--dry-run"], ["plan", str(spec)]):
        result = run(*argv, env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"{state} holds a pending write that cannot be read" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_saved_plan_goes_in_private_folders_and_a_bad_one_is_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - id: '156142'\n    amount: '1.00'\n")
    saved = tmp_path / "plans" / "pr-1" / "plan.json"
    assert run("plan", str(spec), "--out", str(saved), env=env).returncode == 0
    assert (saved.parent.stat().st_mode & 0o777, saved.parent.parent.stat().st_mode & 0o777) \
        == (0o700, 0o700)
    inside_a_file = spec / "plan.json"  # crashed with exit 70
    result = run("plan", str(spec), "--out", str(inside_a_file), env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"cannot save the plan to {inside_a_file}: Not a directory" in result.stderr
    document = json.loads(saved.read_text())
    document["pending"] = [{"id": "156142", "action": "update",
                            "sent_at": "0001-01-01T00:00:00+14:00",
                            "until": "0001-01-01T00:01:30+14:00"}]
    saved.write_text(json.dumps(document))
    for argv in (["show", str(saved)], ["show", "--markdown", str(saved)]):
        result = run(*argv, env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"plan file {saved} is not a plansync plan: plan 156142's pending write: a " \
            "time out of the calendar in UTC" in result.stderr, result.stderr


# --- hypothesis: whatever the files say -------------------------------------------------

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from(["99.90", "1e999", "2026-02-30", "0712", "active", "cancelled", "Y"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8)
FIELDS = ["id", "name", "status", "amount", "currency", "allow_accumulate",
          "max_accumulate_amount", "recurring_interval", "recurring_count",
          "charge_next_date", "charge_on_date", "lifecycle", "defaults"]
PLANS = st.lists(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6), max_size=3)
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(plans=PLANS, noise=st.text(max_size=40))
def test_any_spec_is_planned_or_refused_cleanly_and_sends_no_write(
        env: dict[str, str], emulator: Emulator, tmp_path: Path, plans: list[dict],
        noise: str) -> None:
    spec = tmp_path / "fuzz.yaml"
    body = json.dumps({"apiVersion": "plansync/v1", "kind": "RecurringPlans", "plans": plans},
                      default=str)
    for text in (body, body[: len(body) // 2] + noise + body[len(body) // 2:]):
        spec.write_text(text, encoding="utf-8", errors="surrogatepass")
        assert_clean(*invoke("plan", str(spec)))
    assert sent_writes(emulator) == {}


@FUZZ
@given(document=st.dictionaries(st.sampled_from([*GOOD_STATE, "pending", "applied_plans",
                                                "history"]),
                                VALUES, max_size=8),
       journal=st.lists(st.dictionaries(st.sampled_from(
           ["kind", "key", "plan", "action", "after", "fingerprint", "before_status", "at",
            "result", "entry"]), VALUES | st.sampled_from(["intent", "outcome"]), max_size=9),
           max_size=3),
       tail=st.binary(max_size=20))
def test_any_state_or_journal_is_read_or_refused_cleanly_and_sends_no_write(
        env: dict[str, str], emulator: Emulator, tmp_path: Path, document: dict,
        journal: list[dict], tail: bytes) -> None:
    state = Path(env["PLANSYNC_STATE"])
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({**GOOD_STATE, "endpoint": env["PLANSYNC_ENDPOINT"],
                                 **document}, default=str))
    state.with_name("state.json.journal").write_bytes(
        b"".join(json.dumps(line, default=str).encode() + b"\n" for line in journal) + tail)
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - id: '156142'\n    amount: '99.90'\n")
    for argv in (["state", "list"], ["plan", str(spec)],
                 ["apply", str(spec), "--dry-run"]):
        assert_clean(*invoke(*argv))
    assert sent_writes(emulator) == {}


@pytest.fixture(autouse=True)
def _no_traceback_env() -> Iterator[None]:
    """PLANSYNC_TRACEBACK would re-raise instead of exiting 70: keep it out."""
    saved = os.environ.pop("PLANSYNC_TRACEBACK", None)
    yield
    if saved is not None:
        os.environ["PLANSYNC_TRACEBACK"] = saved
