"""Crash test: SIGKILL a real `plansync apply` at 30+ random points over 100 plans while
the emulator drops answers, resets connections, answers 5xx, breaks XML and commits
late. Re-runs alone must converge; the emulator's log must show no plan accepting the
same write twice; no cancellation may ever be forgotten.
"""

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from plansync.engine.backends.local import LocalBackend
from plansync.engine.state import Intent, Outcome
from tests.helpers import HEAD, PLANSYNC, accepted_writes, admin, quick_reads, run, seed_file

N = 150
KILLS = 40
FAULTS = {"drop_rate": 0.08, "reset_rate": 0.05, "error_rate": 0.05, "malformed_rate": 0.04,
          "late_commit_rate": 0.05, "late_commit_ms": 300, "latency_ms": 15, "jitter_ms": 25}
WINDOW = "1s"  # longer than the late commits; the read timeout is no longer (quick_reads)


def cancelled(i: int) -> bool:
    return i % 7 == 3


@pytest.fixture
def hundred(emulator_dir: Path, tmp_path: Path) -> Iterator[tuple[Emulator, dict[str, str]]]:
    seed = seed_file(tmp_path / "seed.yaml", range(800000, 800000 + N))
    with Emulator.start(emulator_dir, seed=seed) as running:
        # A one-second read timeout, so that WINDOW is not shorter than it.
        yield running, quick_reads({"PLANSYNC_CONFIG": str(emulator_dir / "plansync.yaml"),
                                    "PLANSYNC_ENDPOINT": running.url,
                                    "PLANSYNC_STATE": str(tmp_path / ".plansync" /
                                                          "state.json")}, tmp_path)


def spec_file(tmp_path: Path, reactivate: bool = False) -> Path:
    path = tmp_path / ("reactivate.yaml" if reactivate else "spec.yaml")
    lines = []
    for i in range(N):
        if cancelled(i):
            status = "active" if reactivate else "cancelled"
            lines.append(f"  - {{id: '{800000 + i}', status: {status}}}\n")
        else:
            lines.append(f"  - {{id: '{800000 + i}', amount: '{20 + i}.00'}}\n")
    path.write_text(HEAD + "plans:\n" + "".join(lines))
    return path


def assert_nothing_written_twice_or_forgotten(emulator: Emulator, state: Path) -> None:
    writes = accepted_writes(emulator)
    assert all(count == 1 for count in writes.values()), \
        {k: v for k, v in writes.items() if v > 1}
    known = _folded(state)
    for (plan_id, kind), _count in writes.items():
        if kind == "C":  # the gateway cancelled it: plansync knows, or knows it may have
            entry = known["plans"].get(plan_id, {})
            assert entry.get("cancelled") or plan_id in known["pending"], plan_id


def _folded(state: Path) -> dict[str, dict[str, object]]:
    """What the next run starts from (state file plus journal), by plan id."""
    document = json.loads(state.read_text()) if state.exists() else {}
    plans = dict(document.get("plans", {}))
    pending = {i["plan"] for i in document.get("pending", [])}
    for record in LocalBackend(state).records():
        if isinstance(record, Intent):
            pending.add(record.plan)
        elif isinstance(record, Outcome) and record.entry is not None:
            plans[record.plan] = {"cancelled": record.entry.cancelled}
    return {"plans": plans, "pending": pending}


def apply(env: dict[str, str], spec: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*PLANSYNC, "apply", str(spec), "--auto-approve",
                             "--settle-window", WINDOW, "--lock-timeout", "10s"],
                            env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _journal_bytes(log: Path) -> bytes:
    """The journal as it is now; the run under test may clear it at any moment."""
    try:
        return log.read_bytes()
    except FileNotFoundError:
        return b""


def test_sigkill_anywhere_then_reruns_converge_with_no_double_write(
        hundred: tuple[Emulator, dict[str, str]], tmp_path: Path) -> None:
    emulator, env = hundred
    state = Path(env["PLANSYNC_STATE"])
    spec = spec_file(tmp_path)
    admin(emulator, "PUT", "/_emulator/faults", {**FAULTS, "seed": 7})
    rng = random.Random(20261127)
    log = state.with_name(state.name + ".journal")  # the local backend's journal file
    points: Counter[str] = Counter()
    for kill in range(KILLS):
        before = _journal_bytes(log)
        done = sum(accepted_writes(emulator).values())
        victim = apply(env, spec)
        point = ("planning", "after an outcome", "mid-writes", "mid-writes")[kill % 4]
        deadline = time.monotonic() + 10
        while victim.poll() is None and time.monotonic() < deadline:
            if point == "planning":
                time.sleep(rng.uniform(0.2, 0.8))
                break
            if point == "after an outcome":  # between it and the state write
                now = _journal_bytes(log)
                if now != before and b'"kind":"outcome"' in now:
                    break
            elif sum(accepted_writes(emulator).values()) >= done + rng.randint(1, 3):
                time.sleep(rng.uniform(0, 0.05))
                break
            time.sleep(0.002)
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=10)
        if victim.returncode == -signal.SIGKILL:
            points[point] += 1
        assert_nothing_written_twice_or_forgotten(emulator, state)
    assert sum(points.values()) >= 30 and min(points.values()) >= 5, points

    codes = []
    for _ in range(20):  # re-runs alone, faults still on
        result = run("apply", str(spec), "--auto-approve", "--settle-window", WINDOW, env=env)
        codes.append(result.returncode)
        assert result.returncode in (0, 1), result.stdout + result.stderr
        assert_nothing_written_twice_or_forgotten(emulator, state)
        if result.returncode == 0:
            break
        time.sleep(1.1)  # past the settle window of what is pending
    assert codes[-1] == 0, codes

    admin(emulator, "PUT", "/_emulator/faults", {})
    live = {p["recurringUniqueID"]: p for p in admin(emulator, "GET", "/_emulator/plans")}
    writes = accepted_writes(emulator)
    for i in range(N):
        plan_id = str(800000 + i)
        if cancelled(i):
            assert live[plan_id]["cancelled"] and writes[(plan_id, "C")] == 1, plan_id
            shown = run("state", "show", plan_id, env=env)
            assert json.loads(shown.stdout)["cancelled"] is True, plan_id
        else:
            assert live[plan_id]["amount"] == f"{(20 + i) * 100:012d}", plan_id
            assert writes[(plan_id, "U")] == 1, plan_id
    assert sum(writes.values()) == N  # one accepted write per plan, no more
    # Every write the gateway accepted is in the audit trail, killed runs' ones included.
    history = json.loads(run("state", "history", "--json", env=env).stdout)
    audited = {(record["plan"], record["process_type"]) for record in history}
    assert set(writes) <= audited, set(writes) - audited
    reactivate = run("plan", str(spec_file(tmp_path, reactivate=True)), env=env)
    assert reactivate.returncode == 1
    assert reactivate.stdout.count("cancellation is final") == sum(map(cancelled, range(N)))
    assert run("plan", str(spec), "--detailed-exitcode", env=env).returncode == 0
