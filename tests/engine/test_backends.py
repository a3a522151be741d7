"""The one contract every state backend must keep, run against each: local files, a real
PostgreSQL server and a real S3-compatible server (tests/servers.py). Modelled on
Terraform's backend.TestBackendStates / TestBackendStateLocks: one suite, every backend.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from plansync.engine import backends
from plansync.engine.backends import StaleStateError, StateBackend, open_backend
from plansync.engine.backends.groupcommit import GroupCommit
from plansync.engine.state import Entry, Intent, Outcome, State
from plansync.errors import LockError
from tests.helpers import state_location

URL = "http://127.0.0.1:1/action"
AT = "2026-11-27T10:00:00.000Z"
KINDS = ["local", "postgres", "s3"]


@pytest.fixture(params=KINDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return state_location(request.param, request, tmp_path)


@pytest.fixture
def make(location: str) -> Iterator[Callable[..., StateBackend]]:
    """Backends on the test's state (each like a separate run), closed afterwards."""
    made: list[StateBackend] = []

    def open_one(workspace: str | None = None) -> StateBackend:
        backend = open_backend(location, workspace, os.environ)
        made.append(backend)
        return backend

    yield open_one
    for backend in made:
        backend.close()


HOLDER = """
import os, sys
from plansync.engine.backends import open_backend
backend = open_backend(sys.argv[1], None, os.environ)
with backend.lock("apply", 0, None) as note:
    print(note.id, flush=True)
    sys.stdin.read()
"""


@contextmanager
def hold_elsewhere(location: str, folder: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Another process, in another working directory, holding the lock."""
    folder.mkdir(exist_ok=True)
    with subprocess.Popen([sys.executable, "-c", HOLDER, location], cwd=folder,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
                          ) as holder:
        try:
            assert holder.stdout is not None
            lock_id = holder.stdout.readline().strip()
            assert lock_id, "the holder did not take the lock"
            yield holder, lock_id
        finally:
            holder.kill()


def test_state_round_trip_and_workspaces(make: Callable[..., StateBackend]) -> None:
    backend = make()
    assert backend.read() is None
    state = State("JT01", URL).with_entry("1", Entry(applied={"amount": "1.00"}))
    one = backend.write(state)
    two = backend.write(one.with_entry("2", Entry(cancelled=True)))
    assert (one.serial, two.serial) == (1, 2)
    again = make().read()
    assert again == two and again.cancelled == {"2"}
    other = make("other")
    assert other.read() is None
    other.write(State("JT02", URL))
    assert {backend.workspace, "other"} <= set(make().workspaces())


def test_a_workspace_is_made_empty_and_deleted_whole(
        make: Callable[..., StateBackend]) -> None:
    """workspace new / delete: a workspace exists before its first state, and deleting it
    removes state and journal but not the lock's generation (a fenced holder stays so)."""
    name = f"w{uuid.uuid4().hex[:10]}"
    made = make(name)
    assert name not in make().workspaces()
    assert made.create_workspace() is True
    assert made.create_workspace() is False and make(name).create_workspace() is False
    assert name in make().workspaces() and make(name).read() is None
    assert make(backends.DEFAULT_WORKSPACE).create_workspace() is False  # always there
    made.write(State("JT01", URL).with_entry("1", Entry(cancelled=True)))
    made.append(Intent("r:1", "2", "update", {"amount": "1.00"}, "f", "active", AT))
    with made.lock("workspace delete") as note:
        made.delete_workspace()
    assert name not in make().workspaces()
    again = make(name)
    assert again.read() is None and again.records() == []
    with again.lock("apply") as later:
        assert later.generation is not None and note.generation is not None
        assert later.generation > note.generation
    applied = make(f"a{uuid.uuid4().hex[:10]}")
    applied.write(State("JT01", URL))  # made by an apply: it exists already
    assert applied.create_workspace() is False


def test_only_a_local_file_is_not_shared(make: Callable[..., StateBackend],
                                         location: str) -> None:
    # PLANSYNC_REQUIRE_REMOTE_STATE (the GitHub Action) refuses a state no other runner sees.
    assert make().shared is ("://" in location)


def test_a_stale_write_is_refused(make: Callable[..., StateBackend]) -> None:
    first, second = make(), make()
    first.write(State("JT01", URL))
    seen_by_first, seen_by_second = first.read(), second.read()
    assert seen_by_first is not None and seen_by_second is not None
    first.write(seen_by_first.with_entry("1", Entry(cancelled=True)))
    with pytest.raises(StaleStateError, match="changed since it was read"):
        second.write(seen_by_second.with_entry("1", Entry()))
    assert make().read().plans["1"].cancelled  # type: ignore[union-attr]


def test_a_copy_is_written_as_its_own_serial_still_compare_and_set(
        make: Callable[..., StateBackend]) -> None:
    backend = make()
    copy = backend.write(State("JT01", URL, serial=0), as_serial=3)  # into an empty state
    assert copy.serial == 3 and make().read() == copy
    with pytest.raises(StaleStateError):  # the stored serial is still checked
        make().write(State("JT01", URL, serial=2), as_serial=7)
    assert make().read() == copy
    later = make().read()
    assert later is not None and make().write(later, as_serial=7).serial == 7
    after = make().read()
    assert after is not None and make().write(after).serial == 8  # and on from there
    with pytest.raises(ValueError, match="not after"):  # never back, never the same
        make().write(dataclasses.replace(after, serial=8), as_serial=8)


def test_the_journal_survives_a_crash_between_intent_and_outcome(
        make: Callable[..., StateBackend]) -> None:
    intents = [Intent(f"r:{i}", str(i), "update", {"amount": f"{i}.00"}, "f", "active", AT)
               for i in range(30)]
    writer = make()
    for intent in intents:
        writer.append(intent)
    # The writer is gone without closing (a kill): a new run sees every intent, in order.
    assert make().records() == intents
    writer.append(Outcome("r:0", "0", "applied", Entry(applied={"amount": "0.00"}), AT))
    folded = backends.current(make(), "JT01", URL)
    assert set(folded.pending) == {f"r:{i}" for i in range(1, 30)}
    assert folded.plans["0"].applied == {"amount": "0.00"}
    saved = backends.checkpoint(make(), folded)
    assert make().records() == [] and make().read() == saved


def test_concurrent_appends_are_all_kept_each_thread_in_its_order(
        make: Callable[..., StateBackend]) -> None:
    # As 16 apply workers journal at once (on S3: a few objects of several lines each).
    writer = make()

    def journal(worker: int) -> None:
        for i in range(10):
            writer.append(Intent(f"w{worker}:{i}", str(worker * 100 + i), "update",
                                 {"amount": f"{i}.00"}, "f", "active", AT))

    threads = [threading.Thread(target=journal, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = [r.key for r in make().records() if isinstance(r, Intent)]
    assert sorted(found) == sorted(f"w{w}:{i}" for w in range(16) for i in range(10))
    for worker in range(16):
        mine = [key for key in found if key.startswith(f"w{worker}:")]
        assert mine == [f"w{worker}:{i}" for i in range(10)]


def test_group_commit_writes_waiting_appends_together_and_hands_errors_to_each() -> None:
    written: list[list[bytes]] = []
    started, release = threading.Event(), threading.Event()

    def write(lines: list[bytes]) -> None:
        started.set()
        release.wait(5)
        if b"bad" in lines:
            raise OSError("disk full")
        written.append(lines)

    commit = GroupCommit(write)
    first = threading.Thread(target=commit.submit, args=(b"one",))
    first.start()
    started.wait(5)  # "one" is being written; these three wait and go together
    errors: list[BaseException] = []

    def submit(data: bytes) -> None:
        try:
            commit.submit(data)
        except OSError as exc:
            errors.append(exc)

    others = [threading.Thread(target=submit, args=(d,)) for d in (b"two", b"bad", b"four")]
    for thread in others:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in (first, *others):
        thread.join(5)
    assert written == [[b"one"]]
    assert len(errors) == 3 and all(str(e) == "disk full" for e in errors)


def test_the_lock_excludes_another_process_in_another_directory(
        make: Callable[..., StateBackend], location: str, tmp_path: Path) -> None:
    with hold_elsewhere(location, tmp_path / "elsewhere") as (holder, lock_id):
        with pytest.raises(LockError, match=f"the state is locked: lock {lock_id} held by "
                                            rf".*pid {holder.pid} for apply") as info, \
                make().lock("apply", 0, None):
            pass
        assert f"plansync force-unlock {lock_id}" in str(info.value)
        started = time.monotonic()
        assert holder.stdin is not None
        holder.stdin.close()  # the holder finishes and releases the lock...
        with make().lock("apply", 30, None) as note:  # ...which this one waited for
            assert note.id != lock_id
        assert time.monotonic() - started < 30


def test_a_killed_holders_lock_is_taken_over_naming_it(
        make: Callable[..., StateBackend], location: str, tmp_path: Path) -> None:
    with hold_elsewhere(location, tmp_path / "elsewhere") as (holder, lock_id):
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    warnings: list[str] = []
    # local and postgres see at once that the holder is gone; s3 when its lease (2 s) ends.
    with make().lock("apply", 15, warnings.append):
        pass
    assert len(warnings) == 1
    assert f"taking over a stale lock: lock {lock_id} held by " in warnings[0]
    assert f"pid {holder.pid}" in warnings[0]


def test_force_unlock_checks_the_id_and_refuses_a_live_holder_unless_forced(
        make: Callable[..., StateBackend], location: str, tmp_path: Path) -> None:
    with pytest.raises(LockError, match="is not locked"):
        make().force_unlock("anything")
    with hold_elsewhere(location, tmp_path / "elsewhere") as (holder, lock_id):
        with pytest.raises(LockError, match=f"the lock's id is {lock_id}, not wrong"):
            make().force_unlock("wrong")
        # Alive (its pid runs here; it holds the flock / its session / a fresh lease).
        with pytest.raises(LockError, match="shows signs of life") as refused:
            make().force_unlock(lock_id)
        assert refused.value.held_by == lock_id  # the command says how to force it
        assert make().force_unlock(lock_id, force=True).id == lock_id
        with make().lock("apply", 5, None):
            pass
        holder.kill()


FROZEN_HOLDER = """
import os, sys
from plansync.engine.backends import open_backend
from plansync.engine.state import Intent, State
backend = open_backend(sys.argv[1], None, os.environ)
with backend.lock("apply", 0, None) as note:
    print(note.id, note.generation, flush=True)
    sys.stdin.readline()  # frozen here (SIGSTOP) while another run takes the lock
    for name, act in (("check", backend.check_lease),
                      ("append", lambda: backend.append(
                          Intent("old:1", "1", "cancel", {}, "f", "active",
                                 "2026-11-27T10:00:00.000Z"))),
                      ("write", lambda: backend.write(State("JT01", "u"))),
                      ("clear", backend.clear_journal)):
        try:
            act()
            print(name, "done", flush=True)
        except Exception as exc:
            print(name, type(exc).__name__, str(exc).splitlines()[0], flush=True)
"""


def test_a_fenced_holder_can_store_nothing(make: Callable[..., StateBackend], location: str,
                                           tmp_path: Path) -> None:
    """A holder frozen (SIGSTOP) while its lock is broken and taken: on resuming, every
    check, journal append, state write and journal clear is refused."""
    folder = tmp_path / "frozen"
    folder.mkdir()
    with subprocess.Popen([sys.executable, "-c", FROZEN_HOLDER, location], cwd=folder,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
                          ) as holder:
        try:
            assert holder.stdin is not None and holder.stdout is not None
            lock_id, generation = holder.stdout.readline().split()
            holder.send_signal(signal.SIGSTOP)
            make().force_unlock(lock_id, force=True)
            with make().lock("apply", 15, None) as note:
                assert note.generation > int(generation)
                holder.send_signal(signal.SIGCONT)
                holder.stdin.write("go\n")
                holder.stdin.flush()
                said = [holder.stdout.readline().strip() for _ in range(4)]
            for line, name in zip(said, ("check", "append", "write", "clear"), strict=True):
                assert line.startswith(f"{name} LockLostError this run no longer holds the "
                                       "lock"), said
            assert make().records() == [] and make().read() is None  # nothing stored
        finally:
            holder.kill()
