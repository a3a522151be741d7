"""`plansync plan` shows the guardrails apply would refuse on, before anyone merges.

Real `plansync plan` processes against the emulator; the settings file and the flags are
the ones apply reads, and the words for each breach are apply's own.
"""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from plansync import schema_files
from plansync.engine.guardrails import Violation
from plansync.engine.plan import Action, Change, Plan
from plansync.limits import Limits
from plansync.render import markdown, text
from tests.helpers import EXAMPLE, HEAD, run

CANCELS = "1 plans would be cancelled, more than 0"
FROM_SETTINGS = f"{CANCELS} (guardrails.max_cancels in the settings)"


def with_guardrails(served: dict[str, str], emulator_dir: Path, tmp_path: Path,
                    guardrails: str) -> dict[str, str]:
    """The emulator's settings file, with these guardrails."""
    config = tmp_path / "plansync.yaml"
    config.write_text((emulator_dir / "plansync.yaml").read_text().replace(
        "merchant-private.pem", str(emulator_dir / "merchant-private.pem")).replace(
        "gateway-public.pem", str(emulator_dir / "gateway-public.pem"))
        + "guardrails:\n" + guardrails)
    return served | {"PLANSYNC_CONFIG": str(config)}


def test_a_breach_in_the_settings_shows_in_every_format_and_exits_3_on_request(
        served: dict[str, str], emulator_dir: Path, tmp_path: Path) -> None:
    env = with_guardrails(served, emulator_dir, tmp_path, "  max_cancels: 0\n")

    shown = run("plan", str(EXAMPLE), env=env)
    assert shown.returncode == 0, shown.stderr  # shown, like a change: not an error
    assert shown.stdout.splitlines()[-2:] == [
        "Guardrails: apply would refuse this plan as a whole and send nothing:",
        f"  ! {FROM_SETTINGS}"]
    assert run("plan", str(EXAMPLE), "--detailed-exitcode", env=env).returncode == 3

    as_json = run("plan", str(EXAMPLE), "--json", "--detailed-exitcode", env=env)
    assert as_json.returncode == 3
    document = json.loads(as_json.stdout)
    jsonschema.validate(document, schema_files.load("plan.schema.json"))
    assert document["guardrails"] == [{"limit": "max_cancels", "message": CANCELS,
                                       "source": "guardrails.max_cancels in the settings"}]

    comment = run("plan", str(EXAMPLE), "--markdown", "--detailed-exitcode", env=env)
    assert comment.returncode == 3
    lines = comment.stdout.splitlines()
    assert lines[4:7] == [
        "> [!CAUTION]",
        "> **Guardrails: apply would refuse this plan as a whole and send nothing:**",
        f"> - {CANCELS} (`guardrails.max_cancels` in the settings)"]
    assert comment.stdout.index("[!CAUTION]") < comment.stdout.index("**Impact**")


def test_within_the_limits_nothing_changes(served: dict[str, str], emulator_dir: Path,
                                           tmp_path: Path) -> None:
    env = with_guardrails(served, emulator_dir, tmp_path,
                          "  max_cancels: 1\n  max_changes: 3\n  max_amount_increase: 25\n")
    for fmt in ((), ("--json",), ("--markdown",)):
        plain = run("plan", str(EXAMPLE), *fmt, env=served)
        limited = run("plan", str(EXAMPLE), "--detailed-exitcode", *fmt, env=env)
        assert limited.returncode == 2, limited.stderr
        assert _undated(limited.stdout) == _undated(plain.stdout)
        assert "Guardrails" not in limited.stdout and '"guardrails"' not in limited.stdout


def _undated(output: str) -> str:
    """Two runs a minute apart differ in created_at only."""
    return "\n".join(line for line in output.splitlines()
                     if "created_at" not in line and "made 20" not in line)


def test_plan_takes_apply_s_flags_and_says_them_as_apply_does(
        served: dict[str, str], tmp_path: Path) -> None:
    env = served | {"PLANSYNC_STATE": str(tmp_path / "state" / "state.json")}
    raised = ("plan 156142: amount 99.90 -> 120.00 is +20.1%, more than 10% "
              "(--max-amount-increase)")
    planned = run("plan", str(EXAMPLE), "--max-amount-increase", "10", "--detailed-exitcode",
                  env=env)
    assert planned.returncode == 3 and f"  ! {raised}" in planned.stdout.splitlines()
    applied = run("apply", str(EXAMPLE), "--auto-approve", "--max-amount-increase", "10",
                  env=env)
    assert applied.returncode == 3 and raised in applied.stderr  # the very same words
    assert "Guardrails:" not in applied.stdout  # apply says it once, as its error


def test_a_flag_overrides_the_settings_and_is_named(
        served: dict[str, str], emulator_dir: Path, tmp_path: Path) -> None:
    env = with_guardrails(served, emulator_dir, tmp_path, "  max_cancels: 0\n")
    loosened = run("plan", str(EXAMPLE), "--max-cancels", "1", "--detailed-exitcode", env=env)
    assert loosened.returncode == 2 and "Guardrails" not in loosened.stdout
    both = run("plan", str(EXAMPLE), "--max-cancels", "0", "--max-changes", "2", "--json",
               env=env)
    assert [(g["limit"], g["source"]) for g in json.loads(both.stdout)["guardrails"]] == [
        ("max_changes", "--max-changes"), ("max_cancels", "--max-cancels")]


def test_an_error_outranks_a_breach(served: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156145', status: cancelled}\n"
                           "  - {id: '999', amount: 1}\n")
    result = run("plan", str(spec), "--max-cancels", "0", "--detailed-exitcode", env=served)
    assert result.returncode == 1
    assert f"  ! {CANCELS} (--max-cancels)" in result.stdout  # still shown


# --- the shared evaluation and the renderers, in process --------------------------------

def test_limits_merge_the_settings_under_the_flags() -> None:
    merged = Limits.merged({"max_cancels": 5, "max_amount_increase": 20.5,
                            "charge_window_hours": 48}, {"max_cancels": 0, "max_changes": 7})
    assert merged.guardrails.max_cancels == 0 and merged.guardrails.max_changes == 7
    assert merged.guardrails.max_amount_increase == Decimal("20.5")
    assert merged.guardrails.charge_window_hours == 48.0
    assert merged.source("max_cancels") == "--max-cancels"
    assert merged.source("max_amount_increase") == \
        "guardrails.max_amount_increase in the settings"
    assert Limits.merged({}, {}).guardrails.charge_window_hours == 24.0


def _raises(plans: int) -> Plan:
    return Plan(datetime(2026, 11, 26, 9, 30, tzinfo=UTC), "JT01", "https://x", "sha256:0",
                "k", "0.1.0", tuple(
                    Change(str(100000 + i), None, Action.UPDATE, {"amount": Decimal("1.00")},
                           {"amount": Decimal("2.00")}, ("amount",), currency="SGD",
                           live_fingerprint="x") for i in range(plans)))


def test_one_breach_per_plan_stays_within_the_markdown_budget() -> None:
    big = _raises(3000)
    breaches = Limits.merged({"max_amount_increase": 10}, {}).breaches(big)
    assert len(breaches) == 3000
    rendered = markdown.render(big, budget=20_000, breaches=breaches)
    assert len(rendered) <= 20_000
    caution = rendered.split("> [!CAUTION]", 1)[1].split("\n\n", 1)[0]
    assert len(caution) <= 20_000 // 4
    assert caution.splitlines()[-1].startswith("> - _and ")
    assert "more; run `plansync plan` to see them all_" in caution
    assert "\n".join(text.render(big, breaches=breaches).splitlines()[-3000:]).count(
        "  ! plan ") == 3000  # a terminal shows them all


def test_a_breach_is_said_safely_in_markdown() -> None:
    odd = Violation("max_changes", "a | b <script>\n`x`", "--max-changes")
    rendered = markdown.render(_raises(1), breaches=[odd])
    assert "> - a \\| b &lt;script&gt; 'x' (`--max-changes`)" in rendered


def test_without_breaches_the_renderers_are_unchanged() -> None:
    plan = _raises(2)
    assert markdown.render(plan, breaches=[]) == markdown.render(plan)
    assert text.render(plan, breaches=()) == text.render(plan)


@pytest.mark.parametrize("source", ["--max-cancels", "guardrails.max_cancels in the settings"])
def test_a_violation_reads_with_its_source(source: str) -> None:
    assert str(Violation("max_cancels", CANCELS, source)) == f"{CANCELS} ({source})"
    assert str(Violation("max_cancels", CANCELS)) == CANCELS


@pytest.mark.parametrize("where, setting, flags, says", [
    ("settings", "  max_amount_increase: .nan\n", (),
     "guardrails.max_amount_increase in the settings is nan, not a number"),
    ("settings", "  max_changes: .inf\n", (),
     "guardrails.max_changes in the settings is inf, not a number"),
    ("flag", "  max_cancels: 5\n", ("--max-mrr-decrease", "nan"),
     "--max-mrr-decrease is nan, not a number"),
])
def test_a_limit_that_is_no_number_is_one_clear_error(
        served: dict[str, str], emulator_dir: Path, tmp_path: Path, where: str,
        setting: str, flags: tuple[str, ...], says: str) -> None:
    env = with_guardrails(served, emulator_dir, tmp_path, setting)
    for command in (("plan", str(EXAMPLE)), ("apply", str(EXAMPLE), "--dry-run")):
        result = run(*command, *flags, env=env)
        assert result.returncode == 1, result.stderr
        assert says in result.stderr and "Traceback" not in result.stderr
