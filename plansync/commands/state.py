"""`plansync state list|show|history|pull|push|rm|migrate` and `plansync force-unlock`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from plansync import views
from plansync.commands.options import plan_ids as checked_ids
from plansync.commands.settings import open_state
from plansync.commands.settings import settings as settings_of
from plansync.config import Settings
from plansync.errors import PlansyncError
from plansync.folders import read_regular
from plansync.redact import safe_url

if TYPE_CHECKING:
    from plansync.engine.state import State

@click.group()
def state() -> None:
    """Read, copy and move the state: what plansync applied, saw and cancelled."""


@state.command("list")
@settings_of(gateway=False)
def state_list(settings: Settings) -> int:
    """One line per managed plan."""
    current = _load(settings)
    rows = [("PLAN", "CANCELLED", "LAST APPLIED", "LAST SEEN", "MANAGED FIELDS")]
    for plan_id, entry in sorted(current.plans.items()):
        rows.append((plan_id, "yes" if entry.cancelled else "no", entry.applied_at or "-",
                     entry.seen_at or "-", ", ".join(sorted(entry.applied)) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    pending = f"; {len(current.pending)} write(s) pending" if current.pending else ""
    if not current.serial:
        click.echo(f"\n{len(current.plans)} plan(s){pending}; no state saved yet: these are "
                   "from the journal of an apply that stopped first (the next apply folds "
                   "it in)")
        return 0
    click.echo(f"\n{len(current.plans)} plan(s); merchant {current.merchant_id} at "
               f"{safe_url(current.endpoint)}; serial {current.serial}, lineage {current.lineage}"
               f"{pending}")
    return 0


@state.command("show")
@click.argument("plan_id", metavar="ID", callback=checked_ids)
@settings_of(gateway=False)
def state_show(plan_id: str, settings: Settings) -> int:
    """Everything the state holds about one plan, as JSON."""
    current = _load(settings)
    if plan_id not in current.plans:
        raise PlansyncError(f"plan {plan_id} is not in the state",
                            "plansync state list shows the plans it holds")
    click.echo(json.dumps({"id": plan_id, **dataclasses.asdict(current.plans[plan_id])},
                          indent=2))
    return 0


@state.command("history")
@click.argument("plan_id", metavar="[ID]", required=False, callback=checked_ids)
@click.option("--since", metavar="DATE", help="Only writes sent on or after DATE "
              "(YYYY-MM-DD, UTC).")
@click.option("--until", metavar="DATE", help="Only writes sent on or before DATE "
              "(YYYY-MM-DD, UTC).")
@click.option("--user", metavar="U", help="Only writes sent by user U.")
@click.option("--archive-before", "archive", nargs=2, metavar="DATE FILE",
              type=(str, click.Path(path_type=Path)),
              help="Move the records sent before DATE (YYYY-MM-DD, UTC) out of the state: "
                   "appended to FILE as JSON Lines, under the state's lock.")
@views.formats("history", "The records as one JSON list.", markdown=False, no_color=False,
               choices=("text", "json", "csv"))
@settings_of(gateway=False)
def state_history(plan_id: str | None, since: str | None, until: str | None,
                  user: str | None, archive: tuple[str, Path] | None,
                  view: views.HistoryView, settings: Settings) -> int:
    """Every write plansync sent (or only those to plan ID), oldest first: when it was
    sent, who (user, host, CI run), the plan, what it changed (before → after, amounts
    in major units with the currency), the answer's respCode and its meaning, and the
    plan file or spec (and git commit) it came from."""
    from plansync.engine import audit

    first, last = (_day(option, value) for option, value in
                   (("--since", since), ("--until", until)))
    if first and last and first > last:
        raise click.UsageError(f"--since {since} is after --until {until}: nothing can match")
    if archive is not None:
        if plan_id or since or until or user:
            raise click.UsageError("--archive-before takes no ID or filter: it moves every "
                                   "record sent before DATE")
        cutoff = _day("--archive-before", archive[0])
        assert cutoff is not None  # given: a date, or a usage error
        return _archive(cutoff, archive[1], settings)
    current = _load(settings)
    # safe_url also here: a state an older plansync wrote keeps CI URLs as they were given.
    records = [dataclasses.replace(a, by={**a.by, "ci_url": safe_url(str(a.by["ci_url"]))})
               if a.by.get("ci_url") else a
               for a in audit.select(current.history, plan_id, first, last, user)]
    currencies = {plan: str(entry.seen["currency"]) for plan, entry in current.plans.items()
                  if entry.seen.get("currency")}
    view.history(records, plan_id, currencies)
    return 0


def _day(option: str, value: str | None) -> date | None:
    from plansync.engine.audit import day

    if value is None:
        return None
    try:
        return day(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _archive(before: date, file: Path, settings: Settings) -> int:
    """Move the records sent before ``before`` to ``file``: appended and fsynced first,
    and only then the state saved without them. A crash between the two leaves them in
    both (the next archive appends them again): an archive may hold a record twice, but
    no record is ever lost."""
    from plansync.engine import audit, backends

    store = open_state(settings)
    _not_the_states_own(file, store)
    with contextlib.closing(store), store.lock("state history --archive-before", 0, _warn):
        # The journal folded in: its audits are history too, and are archived alike.
        current = _stored(store)
        older, kept = audit.split(current.history, before)
        audit.append_archive(file, older)  # durable before the state forgets them
        if older:
            backends.checkpoint(store, dataclasses.replace(current, history=tuple(kept)))
    click.echo(f"Archived {len(older)} record(s) before {before.isoformat()} to {file}")
    return 0


def _stored(store: Any) -> State:
    """The state as stored, with its journal folded in (its lock held); none: an error."""
    from plansync.engine.journal import fold

    stored = store.read()
    if stored is None:
        raise PlansyncError(f"there is no state in {store.where} yet",
                            "plansync apply creates it")
    return fold(stored, store.records())


def _not_the_states_own(file: Path, store: Any) -> None:
    """The archive is none of the local backend's files (any workspace's state, backup,
    journal, lock, fence or mark, by name or by a hard link): a save would overwrite it,
    or the records would corrupt it."""
    base = getattr(store, "base", None)  # a local backend's default state file
    if not isinstance(base, Path):
        return
    folder = base.parent.resolve()
    target = file.parent.resolve() / file.name
    workspaces = folder / "workspaces"
    owned = (target.parent == folder and target.name.startswith(base.name)) or \
        workspaces in target.parents
    kept = [p for p in folder.glob(base.name + "*") if p.is_file()]
    kept += [p for p in workspaces.rglob("*") if p.is_file()] if workspaces.is_dir() else []
    if owned or (file.is_file() and any(os.path.samefile(file, p) for p in kept)):
        raise PlansyncError(f"archive {file} is one of the state's own files (beside "
                            f"{base}, or in {workspaces}): a save would overwrite it",
                            "archive to a file of its own, outside the state's files")


@state.command("pull")
@settings_of(gateway=False)
def state_pull(settings: Settings) -> int:
    """Print the state (its journal folded in) as JSON, e.g. to keep a copy."""
    from plansync.engine.state import document

    current = _load(settings)
    if not current.serial:  # a journal alone: no state to copy (push needs a serial)
        raise PlansyncError("no state has been saved yet, only the journal of an apply that "
                            "stopped first", "plansync state list and plansync state history "
                            "show what it holds; the next apply saves a state")
    click.echo(json.dumps(document(current), indent=2))
    return 0


@state.command("push")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True,
              help="Push even a lower serial or another lineage (overwrites the state).")
@settings_of(gateway=False)
def state_push(file: Path, force: bool, settings: Settings) -> int:
    """Replace the state with FILE (from `state pull`), under the lock.

    Refused if FILE's serial is lower than the state's, its lineage another, or it lacks a
    plan or a cancellation the state holds (state rm forgets), unless --force; refused
    while the journal holds writes (run apply first)."""
    from plansync.engine.state import from_document

    try:
        pushed = from_document(json.loads(read_regular(file).decode("utf-8")), f"file {file}",
                               "push a file written by plansync state pull")
    except (OSError, ValueError, RecursionError) as exc:
        raise PlansyncError(f"file {file} cannot be read as a state: {exc}") from None
    store = open_state(settings)
    with contextlib.closing(store), store.lock("state push", 0, _warn):
        if store.records():
            raise PlansyncError(f"the journal of {store.where} holds writes not yet folded "
                                "into its state", "run plansync apply first, then push")
        stored = store.read()
        if stored is not None and not force:
            if stored.lineage != pushed.lineage:
                raise PlansyncError(f"file {file} is of lineage {pushed.lineage}, the state "
                                    f"of {stored.lineage}", "use --force to overwrite")
            if pushed.serial < stored.serial:
                raise PlansyncError(f"file {file} has serial {pushed.serial}, lower than the "
                                    f"state's {stored.serial}", "use --force to overwrite")
            # Only state rm forgets: a push that drops a plan, or a cancellation, would
            # let a later apply write to a plan plansync cancelled.
            forgotten = sorted(set(stored.plans) - set(pushed.plans))
            uncancelled = sorted(stored.cancelled - pushed.cancelled - set(forgotten))
            if forgotten or uncancelled:
                raise PlansyncError(
                    f"file {file} forgets what the state remembers: "
                    + "; ".join(part for part in (
                        f"plan(s) {', '.join(forgotten[:10])} missing" if forgotten else "",
                        f"the cancellation of {', '.join(uncancelled[:10])}" if uncancelled
                        else "") if part) + "; nothing was pushed",
                    "to forget a plan use plansync state rm ID; --force overwrites anyway")
        # The file's serial is kept (into an empty state too), unless the state's is as
        # high: then one more, so that every reader sees the push as newer.
        base = stored.serial if stored else 0
        saved = store.write(dataclasses.replace(pushed, serial=base),
                            as_serial=max(pushed.serial, base + 1))
    click.echo(f"Pushed {file} to {store.where} as serial {saved.serial}.")
    return 0


@state.command("rm")
@click.argument("plan_ids", metavar="ID...", nargs=-1, required=True, callback=checked_ids)
@settings_of(gateway=False)
def state_rm(plan_ids: tuple[str, ...], settings: Settings) -> int:
    """Forget plans: what plansync applied to them, saw of them, and that it cancelled
    them. The only way the state forgets a plan; the live plans are left as they are.

    Refused for a plan the state does not hold or whose write is still pending (run apply
    first). The audit history of the plans' writes is kept."""
    from plansync.engine import backends

    store = open_state(settings)
    with contextlib.closing(store), store.lock("state rm", 0, _warn):
        current = _stored(store)
        unknown = [plan_id for plan_id in plan_ids if plan_id not in current.plans]
        if unknown:
            raise PlansyncError(f"plan(s) {', '.join(unknown)} not in the state; nothing was "
                                "removed", "plansync state list shows the plans it holds")
        pending = [plan_id for plan_id in plan_ids if current.pending_for(plan_id)]
        if pending:
            raise PlansyncError(f"plan(s) {', '.join(pending)} have a write whose outcome is "
                                "not settled yet; nothing was removed",
                                "run plansync apply to settle it, then remove the plan")
        backends.checkpoint(store, current.without(set(plan_ids)))
    for plan_id in plan_ids:
        entry = current.plans[plan_id]
        cancelled = (f" and that it cancelled the plan (at {entry.cancelled_at}): a spec "
                     "that declares it again is planned from what the gateway shows, which may"
                     " not tell a cancelled plan from a paused one") if entry.cancelled else ""
        click.echo(f"Removed plan {plan_id} from {store.where}: plansync forgot what it "
                   f"applied to it and saw of it{cancelled}. The live plan is left as it is; "
                   "its audit history is kept.")
    return 0


@state.command("migrate")
@click.option("--to", "target", required=True, metavar="PATH|URL",
              help="Where the state goes: a file, postgres://… or s3://….")
@click.option("--to-workspace", metavar="NAME",
              help="The target's workspace (default: the URL's ?workspace=, else the "
                   "source's).")
@settings_of(gateway=False)
def state_migrate(target: str, to_workspace: str | None, settings: Settings) -> int:
    """Copy the state (its serial and lineage kept) and its journal to another backend,
    under both locks, and verify the copy. Refused if the target holds a state of another
    lineage, or a later state of this one."""
    import os
    from urllib.parse import parse_qs, urlsplit

    from plansync.engine.backends import open_backend

    source = open_state(settings)
    # The target's workspace: --to-workspace, else the URL's ?workspace=, else the source's.
    in_url = "workspace" in parse_qs(urlsplit(target).query)
    destination = open_backend(target, to_workspace or (None if in_url else source.workspace),
                               os.environ)
    with contextlib.closing(source), contextlib.closing(destination), \
            source.lock("state migrate", 0, _warn), \
            destination.lock("state migrate", 0, _warn):
        stored, records = source.read(), source.records()
        if stored is None:
            raise PlansyncError(f"there is no state in {source.where} to migrate")
        there = destination.read()
        if _needs_copy(stored, there, destination.where):
            # The copy keeps the source's serial and lineage: it is the same state.
            destination.write(dataclasses.replace(stored, serial=there.serial if there else 0),
                              as_serial=stored.serial)
        if destination.records():
            destination.clear_journal()
        for record in records:
            destination.append(record)
        differences = copy_differences(stored, records, destination.read(),
                                       destination.records())
        if differences:
            raise PlansyncError(f"the copy in {destination.where} differs from the source: "
                                + "; ".join(differences),
                                "nothing was removed from the source; run migrate again")
    click.echo(f"Migrated {source.where} to {destination.where}: {len(stored.plans)} "
               f"plan(s), {len(records)} journal record(s), verified.")
    return 0


def _needs_copy(stored: State, there: State | None, where: str) -> bool:
    """Whether the target's state must be written: not when it already is this one.
    Refuses a target holding another state, or a later one of this state."""
    from plansync.engine.state import document

    if there is None:
        return True
    if there.lineage != stored.lineage:
        raise PlansyncError(f"{where} holds a state of another lineage ({there.lineage})",
                            "choose another target or workspace")
    if there.serial > stored.serial:
        raise PlansyncError(f"{where} holds a later state of this lineage (serial "
                            f"{there.serial}, the source's is {stored.serial}): it was "
                            "written after an earlier migration, and copying over it would "
                            "lose that", "point state: at it instead, or pull both and "
                                         "push the right one with --force")
    if there.serial == stored.serial and document(there) != document(stored):
        raise PlansyncError(f"{where} holds another state of serial {there.serial} of this "
                            "lineage", "pull both, then push the right one with --force")
    return there.serial < stored.serial


def copy_differences(source: State, records: list[Any], copy: State | None,
                     copied_records: list[Any]) -> list[str]:
    """How a migrated copy differs from its source, read back: serial, lineage, the
    rest of the document, the journal. Empty when it is the same state."""
    from plansync.engine.state import document

    if copy is None:
        return ["no state was found there"]
    found = [f"{name} {getattr(copy, name)}, not {getattr(source, name)}"
             for name in ("serial", "lineage") if getattr(copy, name) != getattr(source, name)]
    rest = {**document(copy), "serial": None, "lineage": None}
    if rest != {**document(source), "serial": None, "lineage": None}:
        found.append("its plans, pending writes or history differ")
    if copied_records != records:
        found.append(f"its journal holds {len(copied_records)} record(s), the source's "
                     f"{len(records)}" if len(copied_records) != len(records) else
                     "its journal records differ")
    return found


@click.command("force-unlock")
@click.argument("lock_id", metavar="LOCK_ID")
@click.option("--force", is_flag=True,
              help="Break it even though its holder shows signs of life (a frozen or hung "
                   "process); that run is fenced: it stores nothing and sends no new write.")
@settings_of(gateway=False)
def force_unlock(lock_id: str, force: bool, settings: Settings) -> int:
    """Remove the state lock of a run that cannot release it, after checking its id.

    Refused while the holder shows signs of life (its process runs on this host, it
    holds the file lock or its database session, or it renewed its S3 lease within the
    lease) unless --force. Breaking a lock fences its holder: should it resume, it stores
    nothing more and sends no write it has not already sent."""
    from plansync.engine import lock

    alive = " even if its run is alive? That run stops writing when it next checks" \
        if force else "?"
    if sys.stdin.isatty() and not click.confirm(f"Break lock {lock_id}{alive}",
                                                default=False):
        click.echo("Nothing was changed.")
        return 1
    from plansync.errors import HolderAliveError

    store = open_state(settings)
    try:
        with contextlib.closing(store):
            note = store.force_unlock(lock_id, force=force)
    except HolderAliveError as exc:
        exc.hint = ("wait for it; if it is frozen or hung, stop it first, or break the lock "
                    f"anyway with plansync force-unlock --force {lock_id} (that run is then "
                    "fenced: it stores nothing more and sends no write it has not already "
                    "sent)")
        raise
    click.echo(f"Removed {lock.describe(note)}; a run still holding it is fenced.")
    return 0


def _load(settings: Settings) -> State:
    """The state with its journal folded in: what the next apply starts from. Read only:
    neither the state nor the journal is written. A first apply stopped before it saved
    a state left only its journal: that folded into an empty state (serial 0, no
    merchant or endpoint yet), so that its writes can be seen."""
    from plansync.engine.journal import fold
    from plansync.engine.state import State

    store = open_state(settings)
    with contextlib.closing(store):
        current, records = store.read(), store.records()
    if current is None and not records:
        raise PlansyncError(f"there is no state in {store.where} yet",
                            "plansync apply creates it")
    return fold(current or State("", ""), records)


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)

