"""`plansync state history` and its audit records: real `plansync apply` runs against the
emulator write them, real state files (and PostgreSQL) keep them, and every format,
filter and the archive are read back as a user or a spreadsheet would."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from plansync.engine.backends import open_backend
from plansync.engine.origin import commit
from plansync.engine.state import document, from_document
from tests.helpers import EXAMPLE, PLANSYNC, faults, run, state_location

TODAY = datetime.now(UTC).date()
SHA = "0123456789abcdef0123456789abcdef01234567"
# A record as plansync wrote it before issue 24: wire fields only, sent at the answer.
OLD_RECORD = {"at": "2020-03-01T09:00:00.000Z",
              "by": {"user": "olduser", "host": "h", "ci_url": None},
              "plan": "156145", "process_type": "U",
              "sent": {"recurringStatus": "Y", "amount": "000000010490",
                       "allowAccumulate": "N"},
              "resp_code": "00", "key": "old:156145", "id": "old-1"}


def history(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run("state", "history", *args, env=env)


def applied(env: dict[str, str], *args: str) -> None:
    done = run("apply", *(args or (str(EXAMPLE),)), "--auto-approve", env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_history_in_every_format_after_a_real_apply(env: dict[str, str]) -> None:
    ci = {"GITHUB_SERVER_URL": "https://bot:s3cret-token@github.example",
          "GITHUB_REPOSITORY": "shop/plans", "GITHUB_RUN_ID": "4242", "GITHUB_SHA": SHA}
    applied(env | ci)
    state_text = Path(env["PLANSYNC_STATE"]).read_text()
    assert "s3cret-token" not in state_text

    text = history(env)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 3, text.stdout
    gold = next(line for line in lines if "156142" in line)
    assert 'update plan "gold-member-42" (156142): amount 99.90 → 120.00 SGD, ' \
           "recurring_count 12 → 24  respCode 00 (success)" in gold
    assert "(CI run https://***@github.example/shop/plans/actions/runs/4242)" in gold
    assert f"from {EXAMPLE} @ {SHA}" in gold
    assert "000000012000" not in text.stdout  # readable values, not wire values
    assert 'cancel plan "churned-customer" (156145): status inactive → cancelled' in \
        text.stdout
    assert 'plan "tokyo-lite" (156144): status active → inactive' in text.stdout

    records = json.loads(history(env, "--format", "json").stdout)
    assert json.loads(history(env, "--json").stdout) == records  # the old flag still works
    times = [r["at"] for r in records]
    assert times == sorted(times)  # oldest first, by each write's own send time
    by_plan = {r["plan"]: r for r in records}
    gold_record = by_plan["156142"]
    assert (gold_record["before"], gold_record["after"], gold_record["currency"]) == (
        {"amount": "99.90", "recurring_count": 12}, {"amount": "120.00", "recurring_count": 24},
        "SGD")
    assert gold_record["origin"] == {"specs": [str(EXAMPLE)], "commit": SHA}
    assert gold_record["resp_meaning"] == "success"
    assert gold_record["sent"]["amount"] == "000000012000"  # the wire kept for forensics
    assert gold_record["by"]["ci_url"] == "https://***@github.example/shop/plans/actions/runs/4242"

    table = history(env, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [row["plan"] for row in rows] == [r["plan"] for r in records]
    gold_row = next(row for row in rows if row["plan"] == "156142")
    assert gold_row["changes"] == "amount 99.90 → 120.00 SGD, recurring_count 12 → 24"
    assert (gold_row["name"], gold_row["action"], gold_row["resp_code"],
            gold_row["resp_meaning"], gold_row["commit"], gold_row["specs"]) == (
        "gold-member-42", "update", "00", "success", SHA, str(EXAMPLE))
    assert gold_row["sent_at"] == gold_record["at"]


def test_filters_by_plan_day_and_user(env: dict[str, str]) -> None:
    applied(env)
    user = json.loads(history(env, "--json").stdout)[0]["by"]["user"]
    day = TODAY.isoformat()

    def plans(*args: str) -> list[str]:
        shown = history(env, "--format", "json", *args)
        assert shown.returncode == 0, shown.stderr
        return sorted(r["plan"] for r in json.loads(shown.stdout))

    assert plans() == ["156142", "156144", "156145"]
    assert plans("156142") == ["156142"]
    assert plans("--since", day, "--until", day) == plans()  # both days included
    assert plans("--since", (TODAY + timedelta(days=1)).isoformat()) == []
    assert plans("--until", (TODAY - timedelta(days=1)).isoformat()) == []
    assert plans("--user", user) == plans()
    assert plans("--user", "someone-else") == []
    assert history(env, "--user", "someone-else").stdout == "No write recorded.\n"
    empty = list(csv.reader(io.StringIO(history(env, "--format", "csv", "--user", "x").stdout)))
    assert empty[0][:3] == ["sent_at", "user", "host"] and len(empty) == 1

    for args, said in (
            (("--since", "2026-12-02", "--until", "2026-12-01"), "is after --until"),
            (("--since", "1.12.2026"), "is not a date written YYYY-MM-DD"),
            (("--until", "2026-02-30"), "day is out of range"),
            (("--json", "--format", "csv"), "disagree"),
            (("--archive-before", day, "a.jsonl", "--user", "u"), "takes no ID")):
        refused = history(env, *args)
        assert refused.returncode == 64, (args, refused.stdout, refused.stderr)
        assert said in refused.stderr, refused.stderr


def test_an_old_state_loads_and_its_records_stay_as_they_were(
        env: dict[str, str], emulator: Emulator) -> None:
    """A state written before issue 24 (records without name, currency, before, after,
    origin): read, shown readably, and written back by a new apply unchanged."""
    path = Path(env["PLANSYNC_STATE"])
    path.parent.mkdir(parents=True)
    old = {"version": 1, "serial": 3, "lineage": "L", "merchant_id": "JT01",
           "endpoint": env["PLANSYNC_ENDPOINT"],
           "plans": {"156145": {"applied": {"amount": "104.90"}, "applied_at": OLD_RECORD["at"],
                                "seen": {"amount": "104.90", "currency": "SGD"},
                                "seen_at": OLD_RECORD["at"], "cancelled": False,
                                "cancelled_at": None}},
           "history": [OLD_RECORD]}
    path.write_text(json.dumps(old))
    shown = history(env)
    assert shown.returncode == 0, shown.stderr
    # The wire fields read back, the amount in the currency the state last saw.
    assert "update plan 156145: sent status active, amount 104.90 SGD, allow_accumulate " \
           "false  respCode 00 (success)" in shown.stdout
    assert json.loads(history(env, "--json").stdout)[0]["before"] == {}

    applied(env)
    written = json.loads(path.read_text())
    assert written["serial"] == 4 and written["history"][0] == OLD_RECORD  # verbatim
    assert {"name", "before", "after", "origin"} <= set(written["history"][1])
    # And the new document, old record and new ones together, loads.
    reloaded = from_document(written, "it", "")
    assert len(reloaded.history) == 4 and document(reloaded)["history"] == written["history"]


@pytest.mark.parametrize("kind", ["local", "postgres"])
def test_archive_moves_old_records_to_json_lines(
        env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest,
        kind: str) -> None:
    location = state_location(kind, request, tmp_path)
    mine = env | {"PLANSYNC_STATE": location}
    applied(mine)  # three records of today
    store = open_backend(location, None, os.environ)
    try:  # and two old ones, as an older plansync kept them
        current = store.read()
        assert current is not None
        older = from_document({**document(current), "history": [
            OLD_RECORD, {**OLD_RECORD, "at": "2021-06-01T00:00:00Z", "id": "old-2"}]},
            "", "").history
        store.write(dataclasses.replace(current, history=(*older, *current.history)))
    finally:
        store.close()
    archive = tmp_path / "audit" / "archive.jsonl"
    archive.parent.mkdir()

    moved = history(mine, "--archive-before", "2021-01-01", str(archive))
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == f"Archived 1 record(s) before 2021-01-01 to {archive}\n"
    assert [json.loads(line) for line in archive.read_text().splitlines()] == [OLD_RECORD]
    left = [r["id"] for r in json.loads(history(mine, "--json").stdout)]
    assert "old-1" not in left and "old-2" in left and len(left) == 4

    again = history(mine, "--archive-before", (TODAY + timedelta(days=1)).isoformat(),
                    str(archive))
    assert again.returncode == 0 and "Archived 4 record(s)" in again.stdout, again.stderr
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    ids = [r["id"] for r in lines]  # appended, in the order the state kept them
    assert ids[:2] == ["old-1", "old-2"] and sorted(ids[2:]) == sorted(left[1:])
    assert history(mine).stdout == "No write recorded.\n"
    assert "Archived 0 record(s)" in history(mine, "--archive-before", "2030-01-01",
                                             str(archive)).stdout
    assert len(archive.read_text().splitlines()) == 5  # nothing added, nothing lost


def test_archive_refuses_a_symlink_or_a_folder(env: dict[str, str], tmp_path: Path) -> None:
    applied(env)
    target = tmp_path / "elsewhere.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    before = Path(env["PLANSYNC_STATE"]).read_bytes()
    for path, said in ((link, "is a symbolic link"), (tmp_path, "is a directory")):
        refused = history(env, "--archive-before", "2030-01-01", str(path))
        assert refused.returncode == 1, refused.stdout
        assert f"archive {path} {said}, not a regular file" in refused.stderr
    assert not target.exists()
    assert Path(env["PLANSYNC_STATE"]).read_bytes() == before  # nothing removed


def test_a_saved_plan_is_named_as_the_records_origin(env: dict[str, str],
                                                      tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    made = run("plan", str(EXAMPLE), "--out", str(plan_file), env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    applied(env | {"GITHUB_SHA": SHA}, "--plan", str(plan_file))
    records = json.loads(history(env, "--json").stdout)
    assert {json.dumps(r["origin"]) for r in records} == {
        json.dumps({"plan_file": str(plan_file), "commit": SHA})}
    assert f"from {plan_file} @ {SHA}" in history(env).stdout


def test_the_commit_is_the_spec_checkouts_head_and_never_fails_the_apply(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    spec = repo / "specs" / "plans.yaml"
    spec.write_text("plans: []\n")
    git = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"}
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "specs"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=git)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    assert commit({}, spec) == head
    assert commit({}, repo / "specs") == head  # a folder of specs
    assert commit({"GITHUB_SHA": SHA}, spec) == SHA
    outside = tmp_path / "loose" / "plans.yaml"
    outside.parent.mkdir()
    outside.write_text("plans: []\n")
    assert commit({}, outside) == ""  # not a checkout
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))  # git is not installed
    assert commit({}, spec) == ""


def _journal(state: Path) -> Path:
    return state.with_name(state.name + ".journal")


def _killed_mid_apply(env: dict[str, str], emulator: Emulator) -> None:
    """An apply SIGKILLed once it has journalled a write (the emulator answering slowly,
    so that the kill lands while the writes are in flight)."""
    journal = _journal(Path(env["PLANSYNC_STATE"]))
    faults(emulator, latency_ms=1500)
    victim = subprocess.Popen([*PLANSYNC, "apply", str(EXAMPLE), "--auto-approve"],
                              env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while b'"kind":"intent"' not in (journal.read_bytes() if journal.exists() else b""):
            assert victim.poll() is None and time.monotonic() < deadline, "no write journalled"
            time.sleep(0.01)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=10)
        faults(emulator)


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.parametrize("first", [True, False], ids=["first apply", "later apply"])
def test_read_only_commands_after_a_killed_apply(env: dict[str, str], emulator: Emulator,
                                                 first: bool) -> None:
    """state list, show, history and workspace list read the journal a killed apply left
    (with no state yet, when it was the first apply) and write nothing."""
    state = Path(env["PLANSYNC_STATE"])
    if not first:
        applied(env, str(EXAMPLE))
        admin_reset(emulator)
    _killed_mid_apply(env, emulator)
    assert _journal(state).exists() and state.exists() is not first
    files = _files(state.parent)
    for args in (["state", "list"], ["state", "history"], ["state", "history", "--json"],
                 ["state", "history", "--format", "csv"], ["workspace", "list"]):
        shown = run(*args, env=env)
        assert shown.returncode == 0, (args, shown.stdout, shown.stderr)
        assert _files(state.parent) == files, args  # byte for byte
    listed = run("state", "list", env=env).stdout
    assert "write(s) pending" in listed
    if first:
        assert "no state saved yet" in listed
        pulled = run("state", "pull", env=env)
        assert pulled.returncode == 1 and "no state has been saved yet" in pulled.stderr
    else:
        assert run("state", "show", "156145", env=env).returncode == 0
        assert run("state", "pull", env=env).returncode == 0
    assert _files(state.parent) == files


def admin_reset(emulator: Emulator) -> None:
    """The emulator's plans back to the seed, so that an apply has writes to make."""
    from tests.helpers import admin

    admin(emulator, "POST", "/_emulator/reset")


# --- attacks on the audit trail (each failed before its fix) ----------------------------


@pytest.mark.parametrize("target", ["state.json", "state.json.journal", "state.json.backup",
                                    "state.json.fence", "link-to-journal"])
def test_an_archive_into_the_states_own_files_is_refused(env: dict[str, str],
                                                          target: str) -> None:
    applied(env)
    state = Path(env["PLANSYNC_STATE"])
    os.link(state, state.parent / "link-to-journal") if target.startswith("link") else None
    before = {p.name: p.read_bytes() for p in state.parent.iterdir() if p.is_file()}
    refused = history(env, "--archive-before", "2099-01-01", str(state.parent / target))
    assert refused.returncode == 1
    assert "is one of the state's own files" in refused.stderr
    assert {p.name: p.read_bytes() for p in state.parent.iterdir() if p.is_file()} == before


def test_an_archive_cut_short_by_a_full_disk_is_cut_back(env: dict[str, str],
                                                        tmp_path: Path) -> None:
    """The file-size limit (RLIMIT_FSIZE) stands in for a full disk here: the same write
    error (EFBIG for ENOSPC) at the same place, without root to mount a small disk."""
    import resource

    applied(env)
    archive = tmp_path / "archive.jsonl"
    earlier = '{"at": "2020-01-01T00:00:00Z", "plan": "1", "process_type": "U"}\n'
    archive.write_text(earlier)

    def small() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40, 40))

    cut = subprocess.run([*PLANSYNC, "state", "history", "--archive-before", "2099-01-01",
                          str(archive)], env={**os.environ, **env}, preexec_fn=small,
                         capture_output=True, text=True, timeout=60)
    assert cut.returncode == 1 and "cannot be written" in cut.stderr
    assert archive.read_text() == earlier  # no torn line left
    moved = history(env, "--archive-before", "2099-01-01", str(archive))
    assert moved.returncode == 0, moved.stderr  # once there is room, it goes on
    assert len(archive.read_text().splitlines()) == 4


def test_an_older_records_id_is_the_same_at_every_read(env: dict[str, str]) -> None:
    applied(env)
    state = Path(env["PLANSYNC_STATE"])
    stored = json.loads(state.read_text())
    stored["history"].insert(0, {k: v for k, v in OLD_RECORD.items() if k not in ("id",
                                                                              "key")})
    state.write_text(json.dumps(stored))
    ids = {json.loads(history(env, "--json").stdout)[0]["id"] for _ in range(2)}
    assert len(ids) == 1


def test_csv_escapes_what_a_terminal_or_spreadsheet_would_obey(env: dict[str, str],
                                                               tmp_path: Path) -> None:
    spec = tmp_path / "plans.yaml"
    spec.write_text((EXAMPLE / "plans.yaml").read_text().replace(
        "name: gold-member-42", 'name: " =1+1\\e]0;pwned\\a\\u202eevil"'))
    applied(env, str(spec))
    table = history(env, "--format", "csv", "156142").stdout
    assert "\x1b" not in table and "\u202e" not in table and "\a" not in table
    row = next(csv.DictReader(io.StringIO(table)))
    assert row["name"] == "' =1+1\\x1b]0;pwned\\x07\\u202eevil"


def test_a_saved_plans_commit_is_its_specs_checkout(env: dict[str, str],
                                                    tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "plans.yaml").write_text((EXAMPLE / "plans.yaml").read_text())
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "specs"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    plan_file = tmp_path / "elsewhere" / "plan.json"
    plan_file.parent.mkdir()
    assert run("plan", str(repo / "plans.yaml"), "--out", str(plan_file),
               env=env).returncode == 0
    applied(env, "--plan", str(plan_file))
    record = json.loads(history(env, "--json", "156142").stdout)[0]
    assert record["origin"] == {"plan_file": str(plan_file), "commit": head}


def test_a_plan_id_that_is_not_digits_is_a_usage_error(env: dict[str, str]) -> None:
    for given in ("abc", "-1"):
        refused = history(env, "--", given)
        assert refused.returncode == 64 and "is not a plan id" in refused.stderr


def test_an_archive_into_another_file_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    """Second attack: another workspace's state, plansync.yaml or the selection file took
    the records (and broke)."""
    applied(env)
    state = Path(env["PLANSYNC_STATE"])
    other = state.parent / "workspaces" / "th" / "state.json"
    other.parent.mkdir(parents=True)
    other.write_text("{\n}\n")
    settings = tmp_path / "plansync.yaml"
    settings.write_text("merchant_id: JT01\n")
    for target, said in ((other, "one of the state's own files"),
                         (settings, "is not an archive of plansync's")):
        before = target.read_bytes()
        refused = history(env, "--archive-before", "2099-01-01", str(target))
        assert refused.returncode == 1 and said in refused.stderr, refused.stderr
        assert target.read_bytes() == before
