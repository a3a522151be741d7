"""The journal and its fold into the state: real files in a temp folder."""

import errno
import json
import os
from pathlib import Path

import pytest

from plansync.engine import journal, state
from plansync.engine.backends.local import LocalBackend
from plansync.engine.state import Audit, Entry, Intent, Outcome
from plansync.errors import PlansyncError

URL = "http://127.0.0.1:1/action"
AT = "2026-11-27T10:00:00.000Z"
FIRST = Intent("r:1", "1", "update", {"amount": "2.00"}, "sha256:a", "active", AT)
SECOND = Intent("r:2", "2", "cancel", {"status": "cancelled"}, "sha256:b", "active", AT)
CANCELLED = Entry(applied={"status": "cancelled"}, cancelled=True, cancelled_at=AT)


def test_fold_turns_intents_into_pending_writes_and_outcomes_into_entries(
        tmp_path: Path) -> None:
    log = LocalBackend(tmp_path / "state.json")
    log.append(FIRST)
    log.append(SECOND)
    log.append(Outcome(SECOND.key, SECOND.plan, "applied", CANCELLED, AT))
    log.close()
    folded = journal.fold(state.State("JT01", URL), log.records())
    assert folded.pending == {"r:1": FIRST}
    assert folded.plans == {"2": CANCELLED} and folded.cancelled == {"2"}
    assert folded.pending_for("1") == [FIRST] and folded.pending_for("2") == []


def test_a_torn_last_line_is_dropped_and_cut_off_before_the_next_record(
        tmp_path: Path) -> None:
    path = tmp_path / "state.json.journal"
    log = LocalBackend(tmp_path / "state.json")
    log.append(FIRST)
    log.close()
    with open(path, "a") as handle:
        handle.write('{"kind":"outcome","key":"r:1","pla')  # a crash mid-line
    assert LocalBackend(tmp_path / "state.json").records() == [FIRST]
    again = LocalBackend(tmp_path / "state.json")
    again.append(SECOND)  # must not be glued onto the torn line
    again.close()
    assert LocalBackend(tmp_path / "state.json").records() == [FIRST, SECOND]
    assert path.read_text().count("\n") == 2 and '"kind":"outcome"' not in path.read_text()


@pytest.mark.parametrize("line", [
    "not json",
    '{"kind": "intent"}',
    '{"kind": "intent", "key": 1, "plan": "1", "action": "update", "after": {}, '
    '"fingerprint": "f", "before_status": "active", "at": "2026-11-27T10:00:00Z"}',
    '{"kind": "intent", "key": "k", "plan": "1", "action": "update", "after": {}, '
    '"fingerprint": "f", "before_status": "active", "at": "yesterday"}',
    '{"kind": "intent", "key": "k", "plan": "1", "action": "update", '
    '"after": {"amount": "lots"}, "fingerprint": "f", "before_status": "active", '
    '"at": "2026-11-27T10:00:00Z"}',
    '{"kind": "outcome", "key": "k", "plan": "1", "result": "applied", "at": "t", '
    '"entry": {"applied": 5}}',
    '{"kind": "outcome", "key": "k", "plan": "1", "result": "applied", "at": "t", '
    '"entry": null, "extra": 1}',
    "[" * 100000,
])
def test_a_line_that_is_no_record_is_an_error_naming_file_and_line(
        tmp_path: Path, line: str) -> None:
    path = tmp_path / "state.json.journal"
    log = LocalBackend(tmp_path / "state.json")
    log.append(FIRST)
    log.close()
    with open(path, "a") as handle:
        handle.write(line + "\n")
    with pytest.raises(PlansyncError, match=rf"{path}:2: not a plansync journal record"):
        LocalBackend(tmp_path / "state.json").records()


def test_a_journal_path_that_is_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.json.journal").mkdir()
    with pytest.raises(PlansyncError, match="journal path .* is a directory"):
        LocalBackend(tmp_path / "state.json").records()
    with pytest.raises(PlansyncError, match="cannot write the journal .*: Is a directory"):
        LocalBackend(tmp_path / "state.json").append(FIRST)


def test_a_device_at_the_journals_path_is_refused(tmp_path: Path) -> None:
    # /dev/full would answer every write with ENOSPC, /dev/null take them all and keep
    # none: a journal is a regular file or nothing. (A real full disk: test_full_disk.py.)
    os.symlink("/dev/full", tmp_path / "state.json.journal")
    with pytest.raises(PlansyncError, match="journal path .* is a device, not a regular"):
        LocalBackend(tmp_path / "state.json").append(FIRST)


def test_state_and_journal_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        backend = LocalBackend(tmp_path / "state.json")
        saved = backend.write(state.State("JT01", URL))
        backend.write(saved)
        backend.append(FIRST)
        backend.close()
    finally:
        os.umask(old)
    for name in ("state.json", "state.json.backup", "state.json.journal"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name


def test_a_missing_state_with_a_backup_is_an_error_not_an_empty_state(
        tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    backend = LocalBackend(path)
    saved = backend.write(state.State("JT01", URL).with_entry("2", CANCELLED))
    backend.write(saved)
    path.unlink()
    with pytest.raises(PlansyncError, match="state.json is missing, but its backup") as info:
        backend.read()
    assert f"cp {path}.backup {path}" in str(info.value)


def test_a_state_write_that_fails_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    backend = LocalBackend(path)
    saved = backend.write(state.State("JT01", URL))
    (tmp_path / "state.json.backup").mkdir()  # in the way, as a full disk would be
    with pytest.raises(PlansyncError, match=f"cannot write the state file {path}"):
        backend.write(saved)


def test_pending_writes_and_applied_plans_survive_a_state_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    digest = "sha256:" + "0" * 64
    mine = state.State("JT01", URL).with_intent(FIRST).with_applied_plan(digest, AT)
    LocalBackend(path).write(mine)
    again = LocalBackend(path).read()
    assert again is not None
    assert again.pending == {"r:1": FIRST}
    assert again.applied_plans == {digest: state.AppliedPlan(AT)}
    data = json.loads(path.read_text())
    data["pending"][0]["at"] = "2026-02-31T00:00:00Z"  # the pattern fits, the date does not
    path.write_text(json.dumps(data))
    with pytest.raises(PlansyncError, match="holds a pending write that cannot be read"):
        LocalBackend(path).read()


def test_an_outcome_journalled_before_cancelled_how_existed_is_still_read() -> None:
    # A run of an older plansync killed after journalling this; the upgraded one folds it.
    older = journal.encode(Outcome(SECOND.key, SECOND.plan, "applied", CANCELLED, AT))
    del older["entry"]["cancelled_how"]
    assert journal.decode(json.loads(json.dumps(older))) == \
        Outcome(SECOND.key, SECOND.plan, "applied", CANCELLED, AT)
    older["entry"]["surprise"] = 1
    with pytest.raises(ValueError):
        journal.decode(older)


# --- a journal line is durable whole, or not there at all -------------------------------
# A real disk cannot be made to return short writes on demand, so these tests replace one
# edge, os.write (and os.fsync) as the backend calls them, by ones that pass part of the
# line to the real call, or fail as a full or failing disk does; the file stays real.
# tests/test_full_disk.py fills a real small filesystem under a real `plansync apply`.


def test_short_writes_are_completed_not_torn(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.write
    calls = []

    def short(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real(fd, bytes(data[:max(1, len(data) // 3)]))

    log = LocalBackend(tmp_path / "state.json")
    with monkeypatch.context() as patched:
        patched.setattr(os, "write", short)
        log.append(FIRST)
        log.append(SECOND)
    log.close()
    assert LocalBackend(tmp_path / "state.json").records() == [FIRST, SECOND]
    assert len(calls) > 2  # each line took more than one (short) write


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
def test_a_disk_that_refuses_mid_line_leaves_no_part_of_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int) -> None:
    path = tmp_path / "state.json.journal"
    log = LocalBackend(tmp_path / "state.json")
    log.append(FIRST)
    before = path.read_bytes()
    real = os.write
    calls = []

    def full(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, bytes(data[:len(data) // 2]))  # part of the line fits
        raise OSError(error, os.strerror(error))

    with monkeypatch.context() as patched:
        patched.setattr(os, "write", full)
        with pytest.raises(PlansyncError) as info:
            log.append(SECOND)
    assert len(calls) == 2
    assert str(info.value).startswith(f"cannot write the journal {path}: "
                                      f"{os.strerror(error)}")
    assert "free disk space" in str(info.value)
    assert path.read_bytes() == before  # the half line was cut back off
    log.append(SECOND)  # space again: the next record starts on a line of its own
    log.close()
    assert LocalBackend(tmp_path / "state.json").records() == [FIRST, SECOND]


def test_an_fsync_that_fails_is_a_write_that_failed(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """After a failed fsync the data may never reach the disk (and a second fsync may not
    say so): the record is not reported durable, and its line is taken back."""
    path = tmp_path / "state.json.journal"
    log = LocalBackend(tmp_path / "state.json")
    log.append(FIRST)
    before = path.read_bytes()
    real = os.fsync
    failures = []

    def failing(fd: int) -> None:
        if not failures:
            failures.append(fd)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", failing)
        with pytest.raises(PlansyncError, match=f"cannot write the journal {path}: "
                                                "Input/output error"):
            log.append(SECOND)
    assert failures and path.read_bytes() == before
    log.close()
    assert LocalBackend(tmp_path / "state.json").records() == [FIRST]


# --- folding is idempotent: a journal found again beside the state holding it -----------

AUDIT = Audit(AT, {"user": "ci"}, "2", "C", {"recurringUniqueID": "2"}, "00", SECOND.key)
LONE = Audit(AT, {"user": "ci"}, "1", "U", {"recurringUniqueID": "1"}, "", FIRST.key)
BASE = state.State("JT01", URL, serial=1)  # as saved once
JOURNAL = [FIRST, SECOND, LONE, Outcome(SECOND.key, SECOND.plan, "applied", CANCELLED, AT,
                                        (AUDIT,))]


def stored(folded: state.State) -> state.State:
    """``folded`` as the next run reads it from storage."""
    return state.from_document(state.document(folded), "state", "hint")


def test_folding_a_journal_twice_is_folding_it_once() -> None:
    once = journal.fold(BASE, JOURNAL)
    assert once.history == (LONE, AUDIT) and once.pending == {"r:1": FIRST}
    assert journal.fold(once, JOURNAL) == once
    # Killed between the state write and the journal clear: the next run reads the state
    # that holds the journal, and finds the journal again.
    again = journal.fold(stored(once), JOURNAL)
    assert again == once and again.history == (LONE, AUDIT)
    assert journal.fold(stored(again), JOURNAL) == once  # and once more


def test_records_journalled_after_the_state_was_written_are_folded() -> None:
    """Killed before the state write: the state holds part of the journal."""
    part = journal.fold(BASE, JOURNAL[:2])
    whole = journal.fold(stored(part), JOURNAL)
    assert whole == journal.fold(BASE, JOURNAL)
    assert whole.history == (LONE, AUDIT)


def test_the_state_lists_only_ids_the_journal_may_still_hold() -> None:
    once = journal.fold(BASE, JOURNAL)
    assert once.journal_ids == {record.id for record in JOURNAL}
    # The journal was cleared after the state write: its ids are not kept on and on.
    later = journal.fold(stored(once), [])
    assert later.journal_ids == frozenset() and later.history == once.history
    third = Intent("r:3", "3", "update", {"amount": "3.00"}, "sha256:c", "active", AT)
    assert journal.fold(stored(once), [third]).journal_ids == {third.id}
    # Records folded one by one as a run journals them keep every id.
    assert journal.fold(later, [third]).journal_ids == {third.id}
    assert journal.fold(once, [third]).journal_ids == once.journal_ids | {third.id}


def test_ids_survive_the_journal_and_records_without_one_are_folded_once(
        tmp_path: Path) -> None:
    log = LocalBackend(tmp_path / "state.json")
    for record in JOURNAL:
        log.append(record)
    log.close()
    assert [r.id for r in log.records()] == [r.id for r in JOURNAL]
    # A journal written by a plansync before records had ids.
    path = tmp_path / "state.json.journal"
    lines = [{k: v for k, v in json.loads(line).items() if k != "id"}
             for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    old = log.records()
    assert old == JOURNAL and old[0].id == log.records()[0].id != FIRST.id
    once = journal.fold(BASE, old)
    assert journal.fold(stored(once), log.records()) == once


def test_a_record_with_an_id_that_is_no_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json.journal"
    line = json.dumps({"kind": "outcome", "key": "k", "plan": "1", "result": "applied",
                       "at": AT, "entry": None, "id": ""})
    path.write_text(line + "\n")
    with pytest.raises(PlansyncError, match=f"{path}:1: not a plansync journal record"):
        LocalBackend(tmp_path / "state.json").records()
