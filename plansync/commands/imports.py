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
@shared.fanning_out
@settings_of()
def import_(plan_ids: Sequence[str], ids_from: Path | None, out: Path | None,
            parallelism: int, rate_limit: float | None, settings: Settings) -> int:
    """Inquire live plans and write a spec that declares all their updatable fields.

    The spec validates, and `plansync plan` on it reports no changes. A plan that cannot
    be inquired is reported on stderr and left out; the exit code is then 1.
    """
    from plansync.engine.planner import inquire_all
    from plansync.engine.run import stop_if_systemic
    from plansync.gateway.breaker import SystemicError
    from plansync.spec.writer import spec_text

    ids = list(dict.fromkeys([*plan_ids, *(_read_ids(ids_from) if ids_from else [])]))
    if not ids:
        raise click.UsageError("name the plan IDs to import, or --ids-from FILE")
    if out is not None and out.exists():
        raise PlansyncError(f"{out} already exists; it was left as it is",
                            "choose another --out file, or remove this one first")
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
