"""Make a Plan: inquire every declared plan concurrently, then diff each one.

The only I/O here goes through the gateway client; the decisions are diff's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set
from datetime import UTC, datetime
from importlib.metadata import version

from plansync.engine.diff import diff
from plansync.engine.fanout import bounded_map
from plansync.engine.plan import Change, Plan
from plansync.engine.ports import Gateway
from plansync.errors import GatewayError
from plansync.gateway.messages import LivePlan
from plansync.spec.model import DesiredPlan


def make_plan(desired: Sequence[DesiredPlan], client: Gateway, *, spec_digest: str,
              known_cancelled: Set[str] = frozenset(),
              managed_before: Set[str] = frozenset(), spec_paths: Sequence[str] = (),
              on_progress: Callable[[], None] = lambda: None) -> Plan:
    """One inquiry per plan, as many at once as the client's pool; changes in spec order.
    A plan whose inquiry fails becomes an ``error`` change; the others go on.
    ``managed_before``: the plans in the state; those the spec no longer declares are
    listed as unmanaged."""

    def inquire(plan: DesiredPlan) -> LivePlan | GatewayError:
        try:
            return client.inquire(plan.id)
        except GatewayError as exc:
            return exc

    changes: dict[str, Change] = {}
    for plan, result in bounded_map(inquire, desired, client.workers):
        if isinstance(result, GatewayError):
            reason = result.message + (f"; {result.hint}" if result.hint else "")
            changes[plan.id] = diff(plan, None, inquiry_error=f"inquiry failed: {reason}")
        else:
            changes[plan.id] = diff(plan, result, known_cancelled=plan.id in known_cancelled,
                                    exponents=client.exponents)
        on_progress()
    return Plan(
        created_at=datetime.now(UTC).replace(microsecond=0),
        merchant_id=client.merchant_id,
        endpoint=client.endpoint,
        spec_digest=spec_digest,
        key_fingerprint=client.key_fingerprint,
        tool_version=version("plansync"),
        changes=tuple(changes[plan.id] for plan in desired),
        spec_paths=tuple(spec_paths),
        unmanaged=tuple(sorted(set(managed_before) - {plan.id for plan in desired})),
    )
