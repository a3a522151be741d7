"""What the engine needs from the world outside it, as protocols: a gateway to inquire
and write plans (plansync.gateway.client.GatewayClient is the real one), and a journal
for write records (a state backend). Tests give the engine other implementations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from plansync.engine.journal import Record
    from plansync.fields import LivePlan, PlanFields
    from plansync.gateway.messages import Response, Write


class Gateway(Protocol):
    merchant_id: str
    endpoint: str

    @property
    def key_fingerprint(self) -> str: ...

    @property
    def exponents(self) -> Mapping[str, int]:
        """Minor-unit exponents that override ISO 4217's, by currency code."""

    def inquire(self, plan_id: str) -> LivePlan: ...

    def update_write(self, plan_id: str, fields: PlanFields, currency: str) -> Write:
        """The update, encoded (refused here if the gateway would not accept a value)."""

    def cancel_write(self, plan_id: str, live: LivePlan) -> Write:
        """The cancel, encoded, carrying what the gateway assumptions say from ``live``."""

    def send(self, write: Write, before: Callable[[], None] | None = None) -> Response:
        """``before`` is called at the last moment before each attempt leaves; what it
        raises keeps the write from leaving and is raised here."""

    def abort(self) -> None:
        """Cut every request in flight and send nothing more: the run must end now."""


class JournalSink(Protocol):
    """Where intents, outcomes and audits go (a state backend): durable when append
    returns."""

    def append(self, record: Record) -> None: ...
