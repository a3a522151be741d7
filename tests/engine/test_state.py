"""State file, journal and lock: real files in a temp folder."""

import dataclasses
import json
import re
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from plansync.engine import lock, state
from plansync.engine.backends.local import LocalBackend
from plansync.engine.guardrails import Guardrails, violations
from plansync.engine.plan import Action, Change, Plan
from plansync.errors import LockError, PlansyncError

URL = "http://127.0.0.1:1/action"


def test_state_round_trip_serial_and_backup(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "s" / "state.json")
    fresh = state.bound(backend.read(), "JT01", URL, backend.where)
    assert fresh.serial == 0 and fresh.plans == {}
    one = backend.write(fresh.with_entry("1", state.Entry(applied={"amount": "1.00"})))
    two = backend.write(one.with_entry("2", state.Entry(cancelled=True)))
    assert (one.serial, two.serial, two.lineage) == (1, 2, fresh.lineage)
    again = backend.read()
    assert again == two and again.cancelled == {"2"}
    backup = json.loads((tmp_path / "s" / "state.json.backup").read_text())
    assert backup["serial"] == 1 and list(backup["plans"]) == ["1"]
    assert backend.write(again.without({"1"})).plans.keys() == {"2"}


def test_state_of_another_merchant_or_endpoint_is_refused(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "state.json")
    backend.write(state.State("JT01", URL))
    with pytest.raises(PlansyncError, match="belongs to merchant JT01 at http"):
        state.bound(backend.read(), "OTHER", URL, backend.where)
    with pytest.raises(PlansyncError, match="not JT01 at https://elsewhere"):
        state.bound(backend.read(), "JT01", "https://elsewhere", backend.where)


@pytest.mark.parametrize(("text", "message"), [
    ("{", "cannot be read"),
    ('{"version": 2}', "is not a plansync state"),
])
def test_broken_state_points_at_the_backup(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(PlansyncError, match=message) as info:
        LocalBackend(path).read()
    assert "state.json.backup" in str(info.value)


def test_lock_names_its_holder_and_can_be_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with LocalBackend(path).lock("apply", 0) as note:
        with pytest.raises(LockError) as info, LocalBackend(path).lock("apply", 0):
            pass
        assert f"lock {note.id} held by {note.user}@{note.host} pid " in str(info.value)
        assert f"plansync force-unlock {note.id}" in str(info.value)
        assert "--lock-timeout" not in str(info.value)  # the engine names no flag
    started = time.monotonic()
    holder_done = threading.Event()

    def hold_briefly() -> None:
        with LocalBackend(path).lock("apply", 0):
            holder_done.wait(5)

    thread = threading.Thread(target=hold_briefly)
    thread.start()
    time.sleep(0.1)
    threading.Timer(0.4, holder_done.set).start()
    with LocalBackend(path).lock("apply", timeout=5):
        assert time.monotonic() - started >= 0.4
    thread.join()
    assert not path.with_name("state.json.lock").exists()


def test_a_note_left_by_a_dead_holder_is_taken_over_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.with_name("state.json.lock").write_text(json.dumps({"id": "old", "user": "u", "host": "h",
                                                "pid": 999999, "operation": "apply",
                                                "since": "then"}))
    warnings: list[str] = []
    with LocalBackend(path).lock("apply", 0, warn=warnings.append) as note:
        assert note.id != "old"
    assert warnings == ["taking over a stale lock: lock old held by u@h pid 999999 for apply "
                        "since then; that process is gone"]


def test_ci_run_url() -> None:
    assert lock.ci_run_url({"GITHUB_SERVER_URL": "https://github.com",
                            "GITHUB_REPOSITORY": "acme/plans", "GITHUB_RUN_ID": "42"}) == \
        "https://github.com/acme/plans/actions/runs/42"
    assert lock.ci_run_url({"CI_JOB_URL": "https://gitlab.example/j/1"}) == \
        "https://gitlab.example/j/1"
    assert lock.ci_run_url({}) is None


def test_the_lock_note_is_stored_as_plansync_always_stored_it() -> None:
    # Notes written before the note was a LockNote are read, and new ones read by them.
    note = lock.LockNote.new("apply")
    assert list(note.stored()) == ["id", "user", "host", "pid", "operation", "since", "ci_url"]
    leased = dataclasses.replace(lock.LockNote.new("apply", 60.0), generation=3)
    assert list(leased.stored())[-2:] == ["lease", "generation"]
    assert lock.LockNote.read(json.loads(json.dumps(leased.stored()))) == leased
    assert lock.LockNote.read({"released": True, "generation": 4}) == \
        lock.LockNote(generation=4, released=True)
    assert lock.LockNote.read([]) is None and lock.LockNote.read({}) is None


def plan_of(*changes: Change) -> Plan:
    return Plan(datetime(2026, 1, 1, tzinfo=UTC), "JT01", URL, "sha256:x", "k", "0", changes)


def test_guardrails() -> None:
    up = Change("1", None, Action.UPDATE, {"amount": Decimal("100")}, {"amount": Decimal("150")},
                ("amount",))
    down = Change("2", None, Action.UPDATE, {"amount": Decimal("100")}, {"amount": Decimal("50")},
                  ("amount",))
    from_zero = Change("3", None, Action.UPDATE, {"amount": Decimal("0")},
                       {"amount": Decimal("5")}, ("amount",))
    cancel = Change("4", None, Action.CANCEL, {"status": "active"}, {"status": "cancelled"},
                    ("status",))
    plan = plan_of(up, down, from_zero, cancel)
    assert violations(plan, Guardrails()) == []
    assert violations(plan, Guardrails(max_changes=4, max_cancels=1)) == []
    assert [v.message for v in violations(plan, Guardrails(max_changes=3, max_cancels=0))] == [
        "4 plans would change, more than 3", "1 plans would be cancelled, more than 0"]
    assert [(v.limit, v.message) for v in violations(
        plan, Guardrails(max_amount_increase=Decimal("50")))] == [
        ("max_amount_increase", "plan 3: amount 0 -> 5 is an increase from 0, more than 50%")]
    assert len(violations(plan, Guardrails(max_amount_increase=Decimal("49.9")))) == 2


def test_a_note_that_cannot_be_read_is_held_by_an_unknown_process(tmp_path: Path) -> None:
    import fcntl
    import os

    path = tmp_path / "state.json"
    note = path.with_name("state.json.lock")
    note.write_text('{"id": "abc", "us')  # a holder that wrote half its note
    fd = os.open(note, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # ...and is alive
    try:
        with pytest.raises(LockError) as info, LocalBackend(path).lock("apply", 0):
            pass
    finally:
        os.close(fd)
    assert "the state is locked: a lock held by an unknown process" in str(info.value)
    assert "None" not in str(info.value)


def test_readers_never_see_a_half_written_note(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "POLL_SECONDS", 0.001)
    path = tmp_path / "state.json"
    stop = threading.Event()
    seen: list[str] = []

    def take_and_release() -> None:
        while not stop.is_set():
            with LocalBackend(path).lock("apply", timeout=5):
                time.sleep(0.0005)

    holder = threading.Thread(target=take_and_release)
    holder.start()
    deadline = time.monotonic() + 5
    try:
        while len(seen) < 100 and time.monotonic() < deadline:
            try:
                with LocalBackend(path).lock("apply", 0):
                    pass
            except LockError as exc:
                seen.append(str(exc))
    finally:
        stop.set()
        holder.join()
    assert len(seen) >= 20, "the two rarely met"
    whole = re.compile(r"the state is locked: lock [0-9a-f-]{36} held by \S+@\S+ pid \d+ ")
    assert [message for message in seen if not whole.match(message)] == []


def test_a_lock_path_that_is_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.with_name("state.json.lock").mkdir()
    with pytest.raises(PlansyncError, match="lock file path .*state.json.lock is a directory"), \
            LocalBackend(path).lock("apply", 0):
        pass


def test_the_lock_note_is_private_and_escapes_what_it_shows(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with LocalBackend(path).lock("apply", 0):
        assert path.with_name("state.json.lock").stat().st_mode & 0o777 == 0o600
    path.with_name("state.json.lock").write_text(json.dumps({
        "id": "x", "user": "\x1b[2Jmallory", "host": "h", "pid": 1, "operation": "apply",
        "since": "t"}))
    with LocalBackend(path).lock("apply", 0, warn=(warnings := []).append):
        pass
    assert "\x1b" not in warnings[0] and "\\x1b[2Jmallory@h" in warnings[0]


def test_a_state_written_before_records_had_ids_is_read_and_written_back(
        tmp_path: Path) -> None:
    at = "2026-11-27T10:00:00.000Z"
    older = {  # as plansync wrote it before journal records had ids
        "version": 1, "serial": 3, "lineage": "l", "merchant_id": "JT01", "endpoint": URL,
        "plans": {},
        "pending": [{"key": "r:1", "plan": "1", "action": "update",
                     "after": {"amount": "2.00"}, "fingerprint": "f",
                     "before_status": "active", "at": at}],
        "history": [{"at": at, "by": {"user": "ci"}, "plan": "2", "process_type": "C",
                     "sent": {"recurringUniqueID": "2"}, "resp_code": "00", "key": "r:2"}],
    }
    path = tmp_path / "state.json"
    path.write_text(json.dumps(older))
    read = LocalBackend(path).read()
    assert read is not None and read.journal_ids == frozenset()
    assert list(read.pending) == ["r:1"] and read.history[0].key == "r:2"
    LocalBackend(path).write(read.with_intent(
        state.Intent("r:3", "3", "cancel", {"status": "cancelled"}, "f", "active", at)))
    again = LocalBackend(path).read()
    assert again is not None and set(again.pending) == {"r:1", "r:3"}
    assert again.journal_ids == {again.pending["r:3"].id}
    assert json.loads(path.read_text())["journal_ids"] == [again.pending["r:3"].id]


def _state_document(**changes: object) -> dict[str, object]:
    return {"version": 1, "serial": 5, "lineage": "l", "merchant_id": "JT01",
            "endpoint": URL, "plans": {}, **changes}


def test_a_fractional_serial_is_refused(tmp_path: Path) -> None:
    # JSON Schema takes 5.0 for an integer; carried through, it was written back as 2.0.
    with pytest.raises(PlansyncError, match=r"serial 5\.0 is not a whole number"):
        state.from_document(_state_document(serial=5.0), "state", "restore it")


def test_a_pending_write_sent_in_the_future_is_refused(tmp_path: Path) -> None:
    # It would keep its plan from ever being written again.
    future = {"key": "r:1", "plan": "1", "action": "cancel", "after": {},
              "fingerprint": "f", "before_status": "active", "at": "9999-12-31T23:59:59.999Z"}
    with pytest.raises(PlansyncError, match="in the future"):
        state.from_document(_state_document(pending=[future]), "state", "restore it")
    soon = {**future, "at": datetime.now(UTC).isoformat()}
    assert state.from_document(_state_document(pending=[soon]), "state", "x").pending


def test_audit_records_without_the_issue_24_members_load_and_stay_as_they_were() -> None:
    """A record of an older plansync (no name, currency, before, after, origin) is read,
    from a state and from a journal, and written back without the members it lacked;
    a new record beside it keeps them all. A member of the wrong kind is refused."""
    from plansync.engine.journal import decode, encode

    old = {"at": "2026-01-02T03:04:05.000Z", "by": {"user": "ci"}, "plan": "2",
           "process_type": "C", "sent": {"recurringStatus": "N"}, "resp_code": "00",
           "key": "r:2", "id": "a1"}
    new = {**old, "id": "a2", "name": "gold", "currency": "SGD",
           "before": {"status": "active"}, "after": {"status": "cancelled"},
           "origin": {"plan_file": "plan.json", "commit": ""}}
    document = {"version": 1, "serial": 3, "lineage": "l", "merchant_id": "JT01",
                "endpoint": URL, "plans": {}, "history": [old, new]}
    read = state.from_document(document, "it", "")
    assert read.history[0].before == {} and read.history[1].name == "gold"
    assert state.document(read)["history"] == [old, new]  # verbatim, both
    assert decode(json.loads(json.dumps(encode(read.history[0])))) == read.history[0]
    for wrong in ({"name": 5}, {"before": []}, {"origin": "x"}, {"after": None}):
        with pytest.raises(ValueError, match="wrong kind"):
            state.Audit.from_dict({**old, **wrong})
    with pytest.raises(PlansyncError, match="not a plansync state"):  # the schema says so
        state.from_document({**document, "history": [{**old, "currency": 702}]}, "it", "")
