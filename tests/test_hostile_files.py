"""What an attack on issue 21's promises found after the first fixes, each a real
subprocess: files plansync reads that are no files (a FIFO hung for ever, /dev/zero ran
out of memory: exit 70), state paths that name folders, numbers Python will not read,
and URLs whose credentials a library's message quoted."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from plansync.redact import safe_url
from tests.helpers import PLANSYNC

NINES = "9" * 4301  # more digits than int() reads


def plansync(*args: str, cwd: Path, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PLANSYNC, *args], capture_output=True, text=True, timeout=30,
                          cwd=cwd, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def clean(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == code, output[-2000:]
    assert "Traceback" not in output and "plansync crashed" not in output
    return output


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
@pytest.mark.parametrize("command", [
    ["inquire", "1", "--config", "{}"],
    ["show", "{}"],
    ["apply", "--plan", "{}", "--auto-approve", "--merchant-id", "JT01", "--endpoint",
     "http://127.0.0.1:1/x", "--merchant-key", "{keys}/merchant-private.pem",
     "--gateway-key", "{keys}/gateway-public.pem"],
    ["import", "--ids-from", "{}", "--endpoint", "http://127.0.0.1:1/x"],
    ["state", "push", "{}"],
    ["inquire", "1", "--merchant-id", "JT01", "--endpoint", "http://127.0.0.1:1/x",
     "--merchant-key", "{}", "--gateway-key", "{}"],
])
def test_a_file_plansync_reads_that_is_a_fifo_or_a_device_is_refused_at_once(
        tmp_path: Path, emulator_dir: Path, special: str, command: list[str]) -> None:
    if special == "fifo":
        os.mkfifo(tmp_path / "fifo")
    path = str(tmp_path / "fifo") if special == "fifo" else special
    result = plansync(*[part.replace("{}", path).replace("{keys}", str(emulator_dir))
                        for part in command], cwd=tmp_path)
    assert "not a regular file" in clean(result)


@pytest.mark.parametrize("state", [".", "/", "..", "a/", "a/.."])
def test_a_state_path_that_names_a_folder_is_one_error(tmp_path: Path, state: str) -> None:
    result = plansync("state", "list", "--state", state, cwd=tmp_path)
    assert "names a folder, not a file" in clean(result)


def test_a_postgres_host_no_dns_name_can_be_is_one_error(tmp_path: Path) -> None:
    result = plansync("state", "list", "--state", f"postgres://{'a' * 64}/db", cwd=tmp_path)
    assert "not a valid DNS name" in clean(result)


@pytest.mark.parametrize("args", [["apply", "x.yaml", "--lock-timeout", NINES + "s"],
                                  ["apply", "x.yaml", "--settle-window", NINES],
                                  ["ci", "report", "--pull", NINES]])
def test_numbers_of_thousands_of_digits_are_usage_errors_quoted_short(
        tmp_path: Path, args: list[str]) -> None:
    output = clean(plansync(*args, cwd=tmp_path), code=64)
    assert "(4301 characters)" in output or "(4302 characters)" in output
    assert max(len(line) for line in output.splitlines()) < 300


@pytest.mark.parametrize("location", ["postgres://admin:PLANT4/x@127.0.0.1:1/db",
                                      "postgres://admin:Sec#PLANT3@127.0.0.1:1/db"])
def test_a_password_that_breaks_the_url_is_not_quoted_by_the_parsers_words(
        tmp_path: Path, location: str) -> None:
    output = clean(plansync("state", "list", "--state", location, cwd=tmp_path))
    assert "PLANT" not in output


def test_the_s3_endpoint_s_credentials_are_not_quoted_from_botocore(tmp_path: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SECRET_ACCESS_KEY": "y",
           "AWS_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1",
           "AWS_ENDPOINT_URL_S3": "http://PLANTUSER:PLANTSECRET@127.0.0.1:9"}
    output = clean(plansync("state", "list", "--state", "s3://bkt/p", cwd=tmp_path, env=env))
    assert "PLANTSECRET" not in output and "PLANTUSER" not in output
    assert "http://***@127.0.0.1:9" in output


def test_a_scheme_relative_url_in_a_query_value_loses_its_credentials() -> None:
    shown = safe_url("https://jenkins.invalid/job/1/?next=//PU:PLANTB1@x.invalid/")
    assert "PLANTB1" not in shown and "PU" not in shown
    assert "PLANT" not in safe_url("https://ci.invalid/?owner=PU:PLANT@x.invalid")


def test_a_spec_path_too_long_for_the_file_system_is_a_problem_not_a_crash(
        tmp_path: Path) -> None:
    """A saved plan's spec_paths are read back by apply --plan: one too long crashed."""
    output = clean(plansync("validate", "x" * 300, cwd=tmp_path))
    assert "cannot be read: File name too long" in output
