"""Make a Plan: inquire every declared plan concurrently, then diff each one.

The only I/O here goes through the gateway client; the decisions are diff's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence, Set
from datetime import UTC, datetime

from plansync import __version__
from plansync.engine.diff import diff
from plansync.engine.fanout import bounded_map, workers_for
from plansync.engine.plan import Change, Plan
from plansync.engine.ports import Gateway
from plansync.errors import GatewayError
from plansync.fields import LivePlan
from plansync.spec.model import DesiredPlan


def make_plan(desired: Sequence[DesiredPlan], client: Gateway, *, spec_digest: str,
              parallelism: int = 8,
              known_cancelled: Set[str] = frozenset(),
              managed_before: Set[str] = frozenset(), spec_paths: Sequence[str] = (),
              on_progress: Callable[[], None] = lambda: None) -> Plan:
    """One inquiry per plan, ``parallelism`` at once; changes in spec order.
    A plan whose inquiry fails becomes an ``error`` change; the others go on.
    ``managed_before``: the plans in the state; those the spec does not declare are
    listed as unmanaged (shown; apply leaves them and their memory alone)."""

    by_id = {plan.id: plan for plan in desired}
    changes: dict[str, Change] = {}
    for plan_id, result in inquire_all(client, list(by_id), parallelism):
        plan = by_id[plan_id]
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
        tool_version=__version__,
        changes=tuple(changes[plan.id] for plan in desired),
        spec_paths=tuple(spec_paths),
        unmanaged=tuple(sorted(set(managed_before) - {plan.id for plan in desired})),
    )


def inquire_all(client: Gateway, plan_ids: Iterable[str], parallelism: int
                ) -> Iterator[tuple[str, LivePlan | GatewayError]]:
    """(plan id, live plan or the error that stopped its inquiry), as each finishes,
    ``parallelism`` inquiries at once: plan, inquire and import all fan out here."""

    def inquire(plan_id: str) -> LivePlan | GatewayError:
        try:
            return client.inquire(plan_id)
        except GatewayError as exc:
            return exc

    return bounded_map(inquire, plan_ids, workers_for(parallelism), on_abort=client.abort)

