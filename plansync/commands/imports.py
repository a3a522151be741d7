"""`plansync import`: bring existing plans under management without typing them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from plansync.commands import options as shared
from plansync.commands.settings import open_state
from plansync.commands.settings import settings as settings_of
from plansync.config import Settings
from plansync.errors import GatewayError, PlansyncError
from plansync.folders import make_private, read_regular


@click.command("import")
@click.argument("plan_ids", metavar="[ID...]", nargs=-1)
@click.option("--ids-from", type=click.Path(dir_okay=False, path_type=Path),
              help="Read plan ids from this file, one per line (# starts a comment).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the spec here (default: stdout). An existing file is left alone.")
@click.option("--specs", "spec_paths", multiple=True, metavar="PATH",
              type=click.Path(path_type=Path),
              help="Spec files or folders whose plans are left out, being declared already "
                   "(repeatable; default: the --out file's folder).")
@shared.fanning_out
@settings_of()
def import_(plan_ids: Sequence[str], ids_from: Path | None, out: Path | None,
            spec_paths: Sequence[Path], parallelism: int, rate_limit: float | None,
            settings: Settings) -> int:
    """Inquire live plans and write a spec that declares all their updatable fields.

    The spec validates, and `plansync plan` on it reports no changes. A plan the specs
    beside --out (or --specs) already declare is left out, saying where. A plan that
    cannot be inquired is reported on stderr and left out; the exit code is then 1.
    """
    from plansync.engine.planner import inquire_all
    from plansync.engine.run import stop_if_systemic
    from plansync.formats import plan_id as canonical
    from plansync.gateway.breaker import SystemicError
    from plansync.spec.writer import spec_text

    # As the specs know them: "0156143" is plan 156143.
    ids = list(dict.fromkeys(canonical(i) for i in [
        *plan_ids, *(_read_ids(ids_from) if ids_from else [])]))
    if not ids:
        raise click.UsageError("name the plan IDs to import, or --ids-from FILE")
    if out is not None and out.exists():
        raise PlansyncError(f"{out} already exists; it was left as it is",
                            "choose another --out file, or remove this one first")
    # The specs to check: --specs; else a project's own; else those beside --out.
    project = settings.projects.get(settings.project or "")
    others = [p.name for p in settings.projects.values()
              if p is not project and out is not None and p.holds(out)]
    if others:  # its plans would be another merchant's spec, planned with its key
        raise PlansyncError(f"--out {out} is in project {others[0]}'s specs, and this "
                            f"import is project {settings.project}'s",
                            f"write it into project {settings.project}'s specs, or pass "
                            f"--project {others[0]}")
    ids = _undeclared(ids, spec_paths or (project.specs if project else ()) or (
        [out.parent] if out is not None else []), given=bool(spec_paths) or bool(project))
    from plansync.engine import backends

    store = open_state(settings)
    gateway = settings.gateway
    with contextlib.closing(store):  # cancelled plans inquire as paused: the state knows
        cancelled = backends.current(store, gateway.merchant_id, gateway.endpoint).cancelled
    found: dict[str, Any] = {}
    failed: dict[str, GatewayError] = {}
    with shared.gateway_client(gateway, parallelism, rate_limit) as client, \
            shared.progress(len(ids)) as advance:
        for plan_id, result in inquire_all(client, ids, parallelism):
            advance()
            if isinstance(result, GatewayError):
                failed[plan_id] = result
            else:
                found[plan_id] = result
    if client.breaker.tripped is None:  # else one line says it for all, below
        for plan_id in (i for i in ids if i in failed):
            click.echo(f"error: plan {plan_id}: {failed[plan_id]}", err=True)
    text = spec_text([found[plan_id] for plan_id in ids if plan_id in found], cancelled)
    if out is None:
        click.echo(text, nl=False)
    else:
        make_private(out.parent)  # a spec of live plans: the owner's only
        # The owner's only, like its folder: a spec of live plans (O_EXCL: --out was
        # checked not to exist; a file put there since is not overwritten).
        with os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w",
                       encoding="utf-8") as handle:
            handle.write(text)
        click.echo(f"Wrote {len(found)} plan(s) to {out}.", err=True)
    stop_if_systemic(client, len(ids), sum(
        1 for error in failed.values() if isinstance(error, SystemicError)))
    return 1 if failed else 0


def _undeclared(ids: list[str], specs: Sequence[Path], given: bool) -> list[str]:
    """``ids`` less those the specs already declare (each said on stderr): a second
    declaration would fail validate. Refuses when none is left."""
    from plansync.spec.loader import declared

    missing = [path for path in specs if not path.exists()]
    if missing and given:
        raise PlansyncError(f"--specs {missing[0]}: no such file or folder",
                            "name the spec files or folders the imported spec joins")
    if not specs or missing:  # a new --out folder holds no specs yet
        return ids
    already = declared(specs)
    for plan_id in ids:
        if plan_id in already:
            click.echo(f"plan {plan_id} is already declared at {already[plan_id]}; left out",
                       err=True)
    left = [plan_id for plan_id in ids if plan_id not in already]
    if not left:
        raise PlansyncError("every plan given is already declared in the specs "
                            f"({', '.join(map(str, specs))}); nothing was imported",
                            "edit those declarations instead, or import other plans")
    return left


def _read_ids(path: Path) -> list[str]:
    try:
        lines = read_regular(path).decode("utf-8").splitlines()
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, a NUL in the path
        raise PlansyncError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
                            ) from None
    ids = [line.split("#", 1)[0].strip() for line in lines]
    bad = [(n, i) for n, i in enumerate(ids, 1) if i and not i.isdigit()]
    if bad:
        raise PlansyncError(f"{path}:{bad[0][0]}: {bad[0][1]!r} is not a plan id (digits)")
    return [i for i in ids if i]
