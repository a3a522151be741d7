"""Fencing and stopping, end to end: a real `plansync apply` frozen (SIGSTOP) while another
run takes its lock, on every state backend; and a real apply stopped by SIGINT/SIGTERM as
GitHub cancels a job. The emulator's log is the witness that nothing is written twice
and that no write leaves after the stop."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from tests.helpers import (
    MANY,
    accepted_writes,
    admin,
    assert_converged_once,
    run_in,
    seed_and_spec,
    start_in,
    state_location,
    wait_for_writes,
)

WINDOW = "2s"  # the settle window: longer than the emulator's answers here take


def client_config(emulator_dir: Path, folder: Path, read_timeout: int = 1) -> Path:
    """The emulator's client settings, with timeouts short enough for a 2 s settle window
    (or a longer read timeout)."""
    text = (emulator_dir / "plansync.yaml").read_text()
    for name in ("merchant-private.pem", "gateway-public.pem"):
        text = text.replace(f": {name}", f": {emulator_dir / name}")
    path = folder / f"plansync-{read_timeout}.yaml"
    path.write_text(text + f"connect_timeout: 1\nread_timeout: {read_timeout}\n"
                           f"request_deadline: {read_timeout + 1}\n")
    return path


@pytest.fixture
def many(emulator_dir: Path, tmp_path: Path) -> Iterator[tuple[Emulator, dict[str, str], Path]]:
    seed, spec = seed_and_spec(tmp_path)
    with Emulator.start(emulator_dir, seed=seed) as running:
        yield running, {"PLANSYNC_CONFIG": str(client_config(emulator_dir, tmp_path)),
                        "PLANSYNC_ENDPOINT": running.url}, spec


def converge(env: dict[str, str], folder: Path, spec: Path, window: int = 2) -> None:
    """Re-run apply until every plan converged (writes in flight at a stop stay pending
    for the settle window)."""
    for _ in range(6):
        rerun = run_in(env, folder, "apply", str(spec), "--auto-approve",
                       "--settle-window", f"{window}s", "--lock-timeout", "30s")
        assert rerun.returncode in (0, 1) and "Traceback" not in rerun.stderr, rerun.stderr
        if rerun.returncode == 0:
            return
        time.sleep(window + 0.1)
    raise AssertionError(rerun.stdout + rerun.stderr)


@pytest.mark.parametrize("kind", ["local", "postgres", "s3"])
def test_a_frozen_holder_whose_lock_is_taken_over_writes_nothing_more(
        kind: str, many: tuple[Emulator, dict[str, str], Path], tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    emulator, env, spec = many
    env = {**env, "PLANSYNC_STATE": state_location(kind, request, tmp_path)}
    # Slow answers: at any moment several of the first run's plans are between their
    # inquiry and their write, where a freeze hurts most.
    admin(emulator, "PUT", "/_emulator/faults", {"latency_ms": 120})
    first = start_in(env, tmp_path / "runner-a", "apply", str(spec), "--auto-approve",
                  "--parallelism", "4", "--settle-window", WINDOW)
    wait_for_writes(emulator, 3)
    first.send_signal(signal.SIGSTOP)
    try:
        if kind != "s3":  # a flock or a database session: held while frozen, so broken
            locked = run_in(env, tmp_path / "runner-b", "apply", str(spec), "--auto-approve")
            lock_id = re.search(r"force-unlock ([0-9a-f-]{36})", locked.stderr)
            assert locked.returncode == 1 and lock_id, locked.stderr
            refused = run_in(env, tmp_path / "runner-b", "force-unlock", lock_id[1])
            assert refused.returncode == 1 and "shows signs of life" in refused.stderr
            broken = run_in(env, tmp_path / "runner-b", "force-unlock", "--force", lock_id[1])
            assert broken.returncode == 0, broken.stderr
        # S3: the frozen holder's lease (2 s here) runs out and the lock is taken over.
        second = run_in(env, tmp_path / "runner-b", "apply", str(spec), "--auto-approve",
                        "--settle-window", WINDOW, "--lock-timeout", "30s")
        assert second.returncode in (0, 1), second.stdout + second.stderr
        assert "Traceback" not in second.stderr
        written_by_second = sum(accepted_writes(emulator).values())
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 1, out + err
    assert "error: this run no longer holds the lock on the state in" in err, out[-3000:]
    assert "Traceback" not in err
    # Whatever the first run had inquired before the freeze, it sent nothing after it.
    assert sum(accepted_writes(emulator).values()) == written_by_second
    admin(emulator, "PUT", "/_emulator/faults", {})
    converge(env, tmp_path / "runner-c", spec)
    assert_converged_once(emulator)


def test_after_sigint_no_write_is_sent_and_the_summary_counts_what_was_not_started(
        many: tuple[Emulator, dict[str, str], Path], tmp_path: Path) -> None:
    emulator, env, spec = many
    env = {**env, "PLANSYNC_STATE": str(tmp_path / "state.json")}
    admin(emulator, "PUT", "/_emulator/faults", {"latency_ms": 150})
    apply = start_in(env, tmp_path, "apply", str(spec), "--auto-approve", "--json",
                  "--parallelism", "3", "--settle-window", WINDOW)
    wait_for_writes(emulator, 2)
    # Slower answers from now on (within the 1 s read timeout): the writes in flight are
    # still being checked when the second signal comes.
    admin(emulator, "PUT", "/_emulator/faults", {"latency_ms": 800})
    apply.send_signal(signal.SIGINT)
    stopped_at = len(admin(emulator, "GET", "/_emulator/log"))
    time.sleep(0.3)
    apply.send_signal(signal.SIGINT)  # a second Ctrl-C: it says what it waits for
    out, err = apply.communicate(timeout=60)
    assert apply.returncode == 130, err[-3000:]
    assert "Stopping: no new writes are sent" in err
    assert "Still stopping (SIGINT): waiting for" in err
    # Requests received after the signal: the answers of inquiries and writes already in
    # flight (at most one per connection), never a write started later.
    later = admin(emulator, "GET", "/_emulator/log")[stopped_at:]
    assert sum(e["processType"] in ("U", "C") for e in later) <= 3, later
    document = json.loads(out)
    counts = {r["result"] for r in document["results"]}
    assert "not-started" in counts
    assert len(document["results"]) == MANY  # every plan is accounted for
    assert document["summary"]["not_started"] == sum(
        r["result"] == "not-started" for r in document["results"]) > 0
    assert "Stopped by SIGINT; no write was sent after it." in err
    admin(emulator, "PUT", "/_emulator/faults", {})
    converge(env, tmp_path, spec)
    assert_converged_once(emulator)


def test_githubs_cancel_sigint_sigterm_sigkill_leaves_a_journal_the_next_run_settles(
        many: tuple[Emulator, dict[str, str], Path], emulator_dir: Path,
        tmp_path: Path) -> None:
    """GitHub cancels a job with SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s
    after that. Answers here take 12 s: the run gives the writes in flight 3 s, cuts them
    off (pending, journalled) and ends by itself before GitHub's SIGTERM."""
    emulator, env, spec = many
    env = {**env, "PLANSYNC_STATE": str(tmp_path / "state.json"),
           "PLANSYNC_CONFIG": str(client_config(emulator_dir, tmp_path, 14))}
    admin(emulator, "PUT", "/_emulator/faults", {"latency_ms": 200})
    apply = start_in(env, tmp_path, "apply", str(spec), "--auto-approve",
                  "--parallelism", "4", "--settle-window", "20s")
    wait_for_writes(emulator, 2)
    admin(emulator, "PUT", "/_emulator/faults", {"latency_ms": 12_000})  # now hung
    apply.send_signal(signal.SIGINT)
    try:
        out, err = apply.communicate(timeout=7.5)
    except subprocess.TimeoutExpired:  # what GitHub would do next
        apply.send_signal(signal.SIGTERM)
        time.sleep(2.5)
        apply.kill()
        _out, err = apply.communicate(timeout=30)
        raise AssertionError(f"still running 7.5 s after SIGINT: {err[-3000:]}") from None
    assert apply.returncode == 130, err[-3000:]
    assert re.search(r"[1-9][0-9]* pending", out), out[-3000:]  # the writes cut off
    admin(emulator, "PUT", "/_emulator/faults", {})
    # Writes in flight at the stop may land up to 12 s later: a settle window longer than
    # that keeps them pending until they show.
    converge(env, tmp_path, spec, window=20)
    assert_converged_once(emulator)
