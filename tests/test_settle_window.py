"""The settle window and the durations apply takes, end to end: real processes, the
emulator, real state files."""

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from tests.helpers import EXAMPLE, HEAD, accepted_writes, faults, quick_reads, run


@pytest.mark.parametrize("flag", ["--settle-window", "--lock-timeout"])
@pytest.mark.parametrize("value", ["-5", "nan", "inf", "1e3", "1.5s", "30 s", "5d",
                                   "\uff11\uff10"])  # the last: fullwidth digits
def test_a_duration_is_digits_and_an_optional_unit(env: dict[str, str], flag: str,
                                                   value: str) -> None:
    result = run("apply", str(EXAMPLE), "--auto-approve", flag, value, env=env)
    assert result.returncode == 64, result.stdout + result.stderr
    assert f"Invalid value for {flag}: {value!r} is not a duration: whole seconds, " \
           "minutes or hours, such as 30s, 5m or 1h" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flag", ["--settle-window", "--lock-timeout"])
def test_no_duration_is_longer_than_a_day(env: dict[str, str], flag: str) -> None:
    result = run("apply", str(EXAMPLE), "--auto-approve", flag, "86401", env=env)
    assert result.returncode == 64
    assert f"Invalid value for {flag}: 86401 is longer than a day (24h)" in result.stderr
    huge = run("apply", str(EXAMPLE), "--auto-approve", flag, "9" * 400 + "h", env=env)
    assert huge.returncode == 64 and "is longer than a day" in huge.stderr


@pytest.mark.parametrize("value", ["0", "0s", "1s", "29s"])
def test_a_settle_window_shorter_than_the_read_timeout_is_refused_with_the_minimum(
        env: dict[str, str], emulator: Emulator, value: str) -> None:
    result = run("apply", str(EXAMPLE), "--auto-approve", "--settle-window", value, env=env)
    assert result.returncode == 64, result.stdout + result.stderr
    assert (f"Invalid value for --settle-window: {value} is shorter than the read timeout "
            "(30 seconds)") in result.stderr
    assert "it must be from 30 seconds (the read timeout) to 86400 seconds (24h); for a " \
           "shorter window, lower read_timeout in the settings file first" in result.stderr
    assert sum(accepted_writes(emulator).values()) == 0  # refused before anything was sent


def test_the_read_timeout_and_a_day_bound_the_settle_window(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    quick = quick_reads(env, tmp_path)  # read_timeout: 1
    assert run("apply", str(EXAMPLE), "--auto-approve", "--settle-window", "1s",
               env=quick).returncode == 0
    for allowed in ("30s", "24h"):
        result = run("apply", str(EXAMPLE), "--auto-approve", "--settle-window", allowed,
                     env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    config = Path(quick["PLANSYNC_CONFIG"])
    config.write_text(config.read_text() + "settle_window: 0.5\n")
    refused = run("apply", str(EXAMPLE), "--auto-approve", env=quick)
    assert refused.returncode == 1
    assert (f"error: config file {config}: settle_window 0.5 is shorter than the read "
            "timeout (1 second)") in refused.stderr


def test_plan_and_apply_say_when_a_write_is_still_pending(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - id: '156142'\n    amount: '50.00'\n")
    faults(emulator, late_commit_rate=1.0, late_commit_ms=60_000)  # lands after the test
    first = run("apply", str(spec), "--auto-approve", env=env)
    assert first.returncode == 1 and "pending" in first.stdout, first.stdout + first.stderr
    faults(emulator)

    as_json = run("plan", str(spec), "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    [write] = json.loads(as_json.stdout)["pending"]
    assert (write["id"], write["action"]) == ("156142", "update")
    sent, until = (datetime.fromisoformat(write[k]) for k in ("sent_at", "until"))
    assert until - sent == timedelta(seconds=90)  # the default: three read timeouts
    moment = f"{until:%Y-%m-%d %H:%M:%S} UTC"
    said = (f"plan 156142: an update sent at {sent:%Y-%m-%d %H:%M:%S} UTC may still land; "
            f"apply will not write this plan again before {moment}")
    as_text = run("plan", str(spec), env=env)
    assert f"  # {said}\n" in as_text.stdout
    assert f"> - {said}\n" in run("plan", str(spec), "--markdown", env=env).stdout

    again = run("apply", str(spec), "--auto-approve", env=env)  # the preview says it too
    assert f"  # {said}\n" in again.stdout
    assert "plan 156142: pending: it may still land" in again.stdout
    assert accepted_writes(emulator)[("156142", "U")] == 0
