"""A run killed between its state write and its journal clear: the next run finds the
journal again beside a state that already holds it, and must not fold it twice.

Real `plansync apply` processes, real SIGKILL, real state backends (files, PostgreSQL,
S3); the emulator's request log counts the writes sent. The one thing added to the
process is where it stops: no signal sent from outside can land in the microseconds
between the state write and the clear, so the process is started through LAUNCHER, which
makes `checkpoint` stop the process (SIGSTOP) right after the state write. The test then
sees the state written and the journal still there, and kills it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from plansync.engine.backends import open_backend
from tests.helpers import (
    MANY,
    assert_converged_once,
    quick_reads,
    run,
    seed_and_spec,
    sent_writes,
    state_location,
)

LAUNCHER = """
import os, signal, sys
from plansync.cli import main
from plansync.engine import backends

def checkpoint(backend, state):
    backend.write(state)
    os.kill(os.getpid(), signal.SIGSTOP)  # the state is written, the journal not cleared
    raise AssertionError("a stopped run is killed, never continued")

backends.checkpoint = checkpoint
sys.exit(main())
"""


def killed_after_the_state_write(env: dict[str, str], *args: str) -> tuple[int, int]:
    """Run apply until its first state write, then SIGKILL it. Returns the state's serial
    and the journal's length, as the kill left them."""
    process = subprocess.Popen([sys.executable, "-c", LAUNCHER, "apply", *args],
                               env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, status = os.waitpid(process.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), process.communicate(timeout=30)
        store = open_backend(env["PLANSYNC_STATE"], None, os.environ)
        try:
            written, journal = store.read(), store.records()
        finally:
            store.close()
    finally:
        process.kill()
        process.communicate(timeout=30)
    assert written is not None
    return written.serial, len(journal)


@pytest.mark.parametrize("kind", ["local", "postgres", "s3"])
def test_a_journal_kept_beside_the_state_holding_it_is_folded_once(
        emulator_dir: Path, tmp_path: Path, request: pytest.FixtureRequest,
        kind: str) -> None:
    seed, spec = seed_and_spec(tmp_path)
    with Emulator.start(emulator_dir, seed=seed) as emulator:
        env = quick_reads({"PLANSYNC_CONFIG": str(emulator_dir / "plansync.yaml"),
               "PLANSYNC_ENDPOINT": emulator.url,
               "PLANSYNC_STATE": state_location(kind, request, tmp_path)}, tmp_path / "cfg")
        # Every write sent and journalled, the state holding them written, the journal
        # (an intent and an outcome per write) not cleared.
        # (S3 takes over a killed run's lock when its lease ends: hence --lock-timeout.)
        args = (str(spec), "--auto-approve", "--lock-timeout", "30s")
        first, records = killed_after_the_state_write(env, *args)
        assert records == 2 * 24
        # The next run folds that journal and writes the state: killed again there.
        second, records = killed_after_the_state_write(env, *args)
        assert second > first and records == 2 * 24

        again = run("apply", *args, env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.splitlines()[-1] == (
            "Apply complete: 0 updated, 0 cancelled, 24 unchanged, 0 failed.")
        assert_converged_once(emulator)
        history = json.loads(run("state", "history", "--json", env=env).stdout)
        audited = Counter((a["plan"], a["process_type"]) for a in history)
        assert audited == sent_writes(emulator)  # one audit per write sent, no more
        assert len(history) == MANY
        show = json.loads(run("state", "pull", env=env).stdout)
        assert "pending" not in show
