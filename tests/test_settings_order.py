"""Settings resolved once, but each part where a command first needs it: a wrong settings
file is said in the command's format (a CI step reading stdout learns why), a command
that needs only the state runs with guardrails or timeouts it never uses, usage errors
and spec problems still come first, and apply reads a saved plan only once it holds the
lock. (Each broke when the settings were resolved before the command ran.)"""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

from tests.helpers import EXAMPLE, PLANSYNC, run

BAD_GUARDRAIL = "guardrails:\n  max_changes: -1\n"


@pytest.fixture
def fine(served: dict[str, str], emulator_dir: Path, tmp_path: Path) -> dict[str, str]:
    """The emulator's settings, in a file of this test's own."""
    config = tmp_path / "fine.yaml"
    config.write_text((emulator_dir / "plansync.yaml").read_text()
                      .replace("merchant_key: ", f"merchant_key: {emulator_dir}/")
                      .replace("gateway_key: ", f"gateway_key: {emulator_dir}/"))
    return served | {"PLANSYNC_CONFIG": str(config),
                     "PLANSYNC_STATE": str(tmp_path / "state" / "state.json")}


@pytest.fixture
def env(fine: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The same settings, plus a guardrail no command can accept."""
    config = tmp_path / "plansync.yaml"
    config.write_text(Path(fine["PLANSYNC_CONFIG"]).read_text() + BAD_GUARDRAIL)
    return fine | {"PLANSYNC_CONFIG": str(config)}


def test_a_wrong_settings_file_is_said_in_apply_json_and_plan_markdown(
        env: dict[str, str]) -> None:
    applied = run("apply", str(EXAMPLE), "--json", "--auto-approve", env=env)
    assert applied.returncode == 1
    document = json.loads(applied.stdout)
    assert "guardrails.max_changes" in document["error"] and document["results"] == []
    planned = run("plan", str(EXAMPLE), "--markdown", env=env)
    assert planned.returncode == 1
    assert planned.stdout.startswith("### plansync could not make a plan")
    assert "guardrails.max_changes" in planned.stdout


def test_a_guardrail_flag_that_is_no_number_is_said_in_apply_json(
        fine: dict[str, str]) -> None:
    applied = run("apply", str(EXAMPLE), "--json", "--auto-approve",
                  "--max-mrr-decrease", "nan", env=fine)
    assert applied.returncode == 1
    assert json.loads(applied.stdout)["error"] == "--max-mrr-decrease is nan, not a number"


@pytest.mark.parametrize("command", [["state", "list"], ["workspace", "list"],
                                     ["force-unlock", "some-id"]])
def test_state_commands_need_only_the_state_settings(env: dict[str, str],
                                                     command: list[str]) -> None:
    result = run(*command, env=env)
    assert "guardrails" not in result.stderr, result.stderr
    assert result.returncode in (0, 1)
    assert "no state" in result.stderr or "* default" in result.stdout \
        or "not locked" in result.stderr, result.stdout + result.stderr


def test_usage_errors_and_spec_problems_come_before_the_settings(
        env: dict[str, str], tmp_path: Path) -> None:
    no_paths = run("apply", "--json", env=env)
    assert no_paths.returncode == 64 and "name the spec PATHs" in no_paths.stderr
    no_ids = run("import", env=env)
    assert no_ids.returncode == 64 and "name the plan IDs" in no_ids.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: plansync/v1\nkind: RecurringPlans\nplans:\n"
                   "  - {id: '156142', amount: 'lots'}\n")
    planned = run("plan", str(bad), env=env)
    assert planned.returncode == 1 and "problem(s) in the specs" in planned.stderr
    assert "guardrails" not in planned.stderr


def test_a_saved_plan_is_read_after_the_state_and_the_gateways_settings(
        fine: dict[str, str], tmp_path: Path) -> None:
    garbage = tmp_path / "plan.json"
    garbage.write_text("garbage")
    wrong_id = run("apply", "--plan", str(garbage), "--auto-approve",
                   env=fine | {"PLANSYNC_MERCHANT_ID": "bad-id"})
    assert wrong_id.returncode == 1 and "merchant_id" in wrong_id.stderr, wrong_id.stderr
    wrong_workspace = run("apply", "--plan", str(garbage), "--auto-approve",
                          "--workspace", "bad name", env=fine)
    assert wrong_workspace.returncode == 1 and "workspace" in wrong_workspace.stderr
    read = run("apply", "--plan", str(garbage), "--auto-approve", env=fine)
    assert read.returncode == 1 and "plan file" in read.stderr


def test_apply_shows_its_progress_on_a_terminal(fine: dict[str, str]) -> None:
    """Inquiring the spec's plans draws a progress bar on stderr when it is a terminal."""
    main, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [*PLANSYNC, "apply", str(EXAMPLE), "--dry-run"], stdout=subprocess.PIPE,
            stderr=secondary, stdin=subprocess.DEVNULL, timeout=60,
            env={**os.environ, **fine})
        os.close(secondary)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
    assert done.returncode == 0, shown
    assert b"Inquiring" in shown
