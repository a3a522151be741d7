"""The plansync command as a user runs it: real subprocesses, real files, real HTTP."""

import json
import signal
import subprocess
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from tests.helpers import PLANSYNC, run, seeded_date


def test_inquire_table(served: dict[str, str]) -> None:
    result = run("inquire", "156142", "156144", env=served)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PLAN", "STATUS", "AMOUNT", "EVERY", "CHARGES", "NEXT",
                                "CHARGE", "CARD"]
    assert lines[1].split() == ["156142", "active", "99.90", "SGD", "30", "days", "3", "of",
                                "12", seeded_date(42).isoformat(), "XXXXXXXXXXXX1111"]
    assert "1500 JPY" in lines[2]
    assert result.stderr == ""


def test_inquire_json(served: dict[str, str]) -> None:
    result = run("inquire", "--json", "156142", "156145", env=served)
    assert result.returncode == 0, result.stderr
    plans = json.loads(result.stdout)
    assert plans[0] == {
        "id": "156142", "status": "active", "amount": "99.90", "currency": "SGD",
        "allow_accumulate": False, "max_accumulate_amount": "10.00", "recurring_interval": 30,
        "recurring_count": 12, "current_count": 3, "charge_next_date": seeded_date(42).isoformat(),
        "charge_on_date": None,  # left out before the field table (it is in every answer)
        "invoice_prefix": "030321135205", "masked_card_no": "XXXXXXXXXXXX1111",
    }
    assert plans[1]["status"] == "inactive" and plans[1]["charge_next_date"] is None


def test_a_failing_plan_is_one_line_and_exit_1(served: dict[str, str]) -> None:
    result = run("inquire", "--json", "156142", "999", "156143", env=served)
    assert result.returncode == 1
    assert [p["id"] for p in json.loads(result.stdout)] == ["156142", "156143"]
    assert result.stderr.splitlines()[0] == (
        "error: plan 999: gateway answered 16 transaction does not exist "
        "(Transaction does not exist)")
    assert "Traceback" not in result.stderr


def test_missing_setting_names_flag_and_variable() -> None:
    result = run("inquire", "156142", "--endpoint", "sandbox", "--merchant-id", "JT01",
                 env={"PLANSYNC_MERCHANT_KEY": "m.pem"})
    assert result.returncode == 1
    assert result.stderr == (
        "error: gateway_key is not set (no plansync.yaml in this folder or any folder above "
        "it)\n  hint: pass --gateway-key, set PLANSYNC_GATEWAY_KEY, "
        "or add 'gateway_key:' to plansync.yaml\n")
    nothing = run("inquire", "156142")
    assert nothing.stderr.startswith(
        "error: endpoint, merchant_id, merchant_key, gateway_key are not set (no ")


def test_flags_win_and_bad_keys_are_named(served: dict[str, str], tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a key")
    result = run("inquire", "156142", "--gateway-key", str(notes), env=served)
    assert result.returncode == 1
    assert f"gateway key file {notes} is neither an X.509 certificate" in result.stderr


def test_shared_private_key_warns(served: dict[str, str], emulator_dir: Path,
                                  tmp_path: Path) -> None:
    shared = tmp_path / "shared.pem"
    shared.write_bytes((emulator_dir / "merchant-private.pem").read_bytes())
    shared.chmod(0o644)
    result = run("inquire", "156142", env=served | {"PLANSYNC_MERCHANT_KEY": str(shared)})
    assert result.returncode == 0
    assert result.stderr == (f"warning: private key {shared} is readable by group or others;"
                             f" run: chmod 600 {shared}\n")


def test_secrets_never_reach_the_output(served: dict[str, str], emulator_dir: Path) -> None:
    result = run("-v", "inquire", "156142", "999", env=served)
    key_body = (emulator_dir / "merchant-private.pem").read_text().splitlines()[1]
    for stream in (result.stdout, result.stderr):
        assert key_body not in stream and "eyJ" not in stream  # no key, no token


def test_emulator_init_serve_and_stop(tmp_path: Path) -> None:
    folder = tmp_path / "emu"
    init = run("emulator", "init", str(folder), "--merchant", "SHOP42")
    assert init.returncode == 0, init.stderr
    assert sorted(p.name for p in folder.iterdir()) == [
        "gateway-private.pem", "gateway-public.pem", "merchant-private.pem",
        "merchant-public.pem", "plansync.yaml", "seed.yaml"]
    assert (folder / "merchant-private.pem").stat().st_mode & 0o077 == 0
    assert run("emulator", "init", str(folder)).returncode == 1  # never overwrites

    server = subprocess.Popen([*PLANSYNC, "emulator", "serve", "--dir", str(folder),
                               "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        first = server.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith("plansync emulator listening on http://127.0.0.1:")
        url = first.split()[-1] + "/PaymentAction/2.0/action"
        result = run("inquire", "--json", "156142",
                     env={"PLANSYNC_CONFIG": str(folder / "plansync.yaml"),
                          "PLANSYNC_ENDPOINT": url})
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)[0]["amount"] == "99.90"
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=10)
    assert server.returncode == 0
    assert err.strip() == "plansync emulator stopped"


def test_serve_refuses_a_busy_port(emulator: Emulator, emulator_dir: Path) -> None:
    port = str(emulator.server.server_address[1])
    result = run("emulator", "serve", "--dir", str(emulator_dir), "--port", port)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_emulator_exec_runs_a_command_against_a_fresh_emulator(emulator_dir: Path) -> None:
    result = run("emulator", "exec", "--dir", str(emulator_dir), "--",
                 *PLANSYNC, "inquire", "156143",
                 env={"PLANSYNC_ENDPOINT": "https://must-not-be-used.invalid/"})
    assert result.returncode == 0, result.stderr
    assert "499.00 THB" in result.stdout
    failing = run("emulator", "exec", "--dir", str(emulator_dir), "--error-rate", "1", "--",
                  *PLANSYNC, "inquire", "156143")
    assert failing.returncode == 1
    assert "answered HTTP 500" in failing.stderr


def test_bad_fault_values_are_usage_errors(emulator_dir: Path) -> None:
    result = run("emulator", "exec", "--dir", str(emulator_dir), "--drop-rate", "2", "--",
                 "true")
    assert result.returncode == 64  # EX_USAGE
    assert "drop_rate must be between 0 and 1" in result.stderr


def test_help_is_complete() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("inquire", "emulator"):
        assert command in result.stdout
    emulator_help = run("emulator", "--help").stdout
    for command in ("init", "serve", "exec"):
        assert command in emulator_help


def test_emulator_exec_without_a_folder_makes_a_throwaway_one(tmp_path: Path) -> None:
    result = run("emulator", "exec", "--", *PLANSYNC, "inquire", "--json", "156146")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["status"] == "inactive"
    assert list(tmp_path.iterdir()) == []  # nothing left behind in the working directory


@pytest.mark.parametrize("args", [["plan", "--nope"], ["drift", "specs", "--bogus"],
                                  ["apply", "--dry-run", "--lock-timeout", "soon", "x"],
                                  ["nosuchcommand"]])
def test_usage_errors_exit_64_never_2(args: list[str]) -> None:
    """2 means "changes present" or "drift found": a CI step must be able to trust it."""
    result = run(*args)
    assert result.returncode == 64, result.stderr
    assert "Usage:" in result.stderr or "Error:" in result.stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_ends_even_if_its_unwinding_waits_on_a_stuck_thread(
        signum: int, code: int) -> None:
    """A signal promises the end within 5 s. Here the command's unwinding waits on a
    thread that no cut reaches (a plan stopped by SIGINT once outlived 30 s so, in loaded
    CI runs): the process ends anyway, with the signal's exit code."""
    import subprocess
    import sys
    import time

    script = ("import os, signal, threading, time, click\n"
              "import plansync.cli as cli\n"
              "worker = threading.Thread(target=time.sleep, args=(60,))\n"
              "worker.start()\n"
              "@click.command()\n"
              "def stuck():\n"
              "    try:\n"
              "        time.sleep(60)\n"
              "    finally:\n"
              "        worker.join()\n"
              "cli.cli = stuck\n"
              f"threading.Timer(0.5, os.kill, (os.getpid(), {int(signum)})).start()\n"
              "cli.run()\n")
    started = time.monotonic()
    ended = subprocess.run([sys.executable, "-c", script], timeout=30, capture_output=True)
    assert ended.returncode == code, ended.stderr
    assert time.monotonic() - started < 20  # the stuck thread alone would hold it 60 s
