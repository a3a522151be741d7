"""`plansync inquire`: the live state of plans."""

from __future__ import annotations

from collections.abc import Sequence

import click

from plansync import views
from plansync.commands import options as shared
from plansync.commands.settings import settings as settings_of
from plansync.config import Settings
from plansync.errors import GatewayError


@click.command()
@click.argument("plan_ids", metavar="ID...", nargs=-1, required=True,
                callback=shared.plan_ids)
@views.formats("inquire", "Print a JSON list instead of a table.", markdown=False,
               no_color=False)
@shared.fanning_out
@settings_of(state=False)
def inquire(plan_ids: Sequence[str], view: views.InquireView, parallelism: int,
            rate_limit: float | None, settings: Settings) -> int:
    """Show the live state of plans, as the gateway reports it.

    A plan that cannot be inquired prints one line on stderr (plan id, code, reason); the
    others are still shown, and the exit code is then 1.
    """
    from plansync.engine.planner import inquire_all
    from plansync.engine.run import stop_if_systemic
    from plansync.gateway.breaker import SystemicError

    with shared.gateway_client(settings.gateway, parallelism, rate_limit) as client:
        found = dict(inquire_all(client, dict.fromkeys(plan_ids), parallelism))
    results = [found[plan_id] for plan_id in plan_ids]  # as asked, in order
    plans = [r for r in results if not isinstance(r, GatewayError)]
    not_tried = [r for r in results if isinstance(r, SystemicError)]
    for plan_id, result in zip(plan_ids, results, strict=True):
        # Once the breaker tripped, one line says it for all (below).
        if isinstance(result, GatewayError) and client.breaker.tripped is None:
            click.echo(f"error: plan {plan_id}: {result}", err=True)
    view.live(plans)
    stop_if_systemic(client, len(results), len(not_tried))  # one line, not one each
    return 1 if len(plans) < len(results) else 0
