"""Runs you can follow: -v, -vv and --log-format json, and never a secret in them."""

import json
from pathlib import Path

from plansync.emulator.server import Emulator
from tests.helpers import EXAMPLE, admin, run


def test_v_logs_one_line_per_request_and_never_a_secret(
        served: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    env = served | {"PLANSYNC_STATE": str(tmp_path / "state.json")}
    quiet = run("apply", str(EXAMPLE), "--dry-run", env=env)
    assert "info:" not in quiet.stderr
    before = len(admin(emulator, "GET", "/_emulator/log"))
    result = run("-v", "apply", str(EXAMPLE), "--auto-approve", env=env)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("info: plan ")]
    sent = len(admin(emulator, "GET", "/_emulator/log")) - before
    assert len(lines) == sent  # one line per request
    assert "info: plan 156145 C attempt 1: HTTP 200 respCode 00, " in result.stderr
    assert any(line.startswith("info: plan 156142 U attempt 1: HTTP 200 respCode 00")
               for line in lines)
    assert "debug:" not in result.stderr
    for secret in ("eyJ", "PRIVATE KEY", "<RecurringMaintenance", "maskedCardNo"):
        assert secret not in result.stderr


def test_vv_adds_retry_decisions_and_json_lines_for_ci_log_search(
        served: dict[str, str], emulator: Emulator) -> None:
    admin(emulator, "PUT", "/_emulator/faults", {"error_rate": 0.5, "seed": 4})
    result = run("-vv", "--log-format", "json", "inquire", "156142", "156143", env=served)
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    requests = [r for r in records if r["level"] == "info"]
    retries = [r for r in records if r["level"] == "debug" and "retry_in_s" in r]
    assert requests and retries, result.stderr
    assert {"time", "plan", "process_type", "attempt", "http_status", "duration_ms",
            "outcome"} <= set(requests[0])
    assert all(r["time"].endswith("Z") for r in records)
    via_env = run("-v", "inquire", "156142", env={**served, "PLANSYNC_LOG_FORMAT": "json"})
    assert json.loads(via_env.stderr.splitlines()[0])["plan"] == "156142"
    assert "eyJ" not in result.stderr + via_env.stderr
