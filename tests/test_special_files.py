"""Something other than a regular file where the local backend keeps one (a FIFO, a
device, a directory) is refused with one clear error naming it: never a run blocked for
ever on a FIFO's open or read, never a journal "written" to /dev/null.

Real FIFOs (os.mkfifo) and real `plansync apply` processes, each given a deadline: a
process still running at it is a run that would have blocked for ever."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from tests.helpers import EXAMPLE, PLANSYNC, accepted_writes

DEADLINE = 30  # seconds; the refusal takes well under one


def _fifo(path: Path) -> str:
    os.mkfifo(path, 0o600)
    return "a named pipe (FIFO)"


def _dev_null(path: Path) -> str:
    os.symlink("/dev/null", path)
    return "a device"


def _folder(path: Path) -> str:
    path.mkdir()
    return "a directory"


@pytest.mark.parametrize(("name", "make"), [
    ("state.json.journal", _fifo), ("state.json", _fifo), ("state.json.lock", _fifo),
    ("state.json.fence", _fifo), ("state.json.journal", _dev_null),
    ("state.json", _dev_null), ("state.json.journal", _folder), ("state.json", _folder)])
def test_apply_refuses_what_is_not_a_regular_file_and_never_blocks(
        name: str, make: Callable[[Path], str], served: dict[str, str], emulator: Emulator,
        tmp_path: Path) -> None:
    folder = tmp_path / ".plansync"
    folder.mkdir()
    kind = make(folder / name)
    try:
        result = subprocess.run([*PLANSYNC, "apply", str(EXAMPLE), "--auto-approve"],
                                capture_output=True, text=True, timeout=DEADLINE,
                                stdin=subprocess.DEVNULL,
                                env={**os.environ, **served,
                                     "PLANSYNC_STATE": str(folder / "state.json")})
    except subprocess.TimeoutExpired:
        pytest.fail(f"apply blocked on {kind} at {name}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"path {folder / name} is {kind}, not a regular file" in result.stderr, \
        result.stderr
    assert "move it away" in result.stderr and "Traceback" not in result.stderr
    assert accepted_writes(emulator) == {}  # refused before anything was sent
