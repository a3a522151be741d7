"""Apply a Plan's changes, each as a compare-and-set, exactly once.

The gateway has no idempotency key, so every write goes:
  journal the intent (fsync) → inquire → already as planned? done, nothing sent;
  live moved since the plan? skip → send → inquire again → the write counts only if live
  now matches → journal the outcome.
A write whose answer is lost is never resent blindly: the second inquiry settles it, or,
if that fails too, the intent stays open for the next run's ``settle``. The applier
never prints or prompts; it reports each Result to a callback.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from plansync.engine.diff import Action, Change, fingerprint, from_json, to_json
from plansync.engine.fanout import bounded_map
from plansync.engine.journal import Intent, Journal
from plansync.engine.state import Entry, State, now
from plansync.errors import GatewayError, OutcomeUnknownError, StatusNotValidError
from plansync.gateway import assumptions, formats, messages
from plansync.gateway.client import GatewayClient
from plansync.gateway.messages import LivePlan, PlanFields
from plansync.spec.model import FIELDS


@dataclass(frozen=True)
class Result:
    id: str
    name: str | None
    action: Action
    result: str  # updated | cancelled | unchanged | failed | skipped | would-update | would-cancel
    detail: str = ""
    sent: tuple[tuple[str, str], ...] = ()  # the wire fields written (or, dry-run, to write)
    warning: str | None = None


@dataclass
class Options:
    dry_run: bool = False
    charge_window_hours: float = 24.0
    allow_near_charge: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


class Applier:
    def __init__(self, client: GatewayClient, journal: Journal, state: State,
                 options: Options) -> None:
        self.client = client
        self.journal = journal
        self.options = options
        self.run_id = uuid.uuid4().hex[:12]
        self._state = state
        self._state_lock = threading.Lock()

    @property
    def state(self) -> State:
        return self._state

    def record(self, plan_id: str, entry: Entry) -> None:
        with self._state_lock:
            self._state = self._state.with_entry(plan_id, entry)

    def forget(self, plan_ids: set[str]) -> None:
        with self._state_lock:
            self._state = self._state.without(plan_ids)

    # --- a whole plan ------------------------------------------------------------------

    def apply(self, changes: Iterable[Change]) -> Iterator[Result]:
        """Results as they happen. After ``options.stop`` is set no new write starts; the
        ones in flight finish and are journalled."""
        writes = []
        for change in changes:
            if change.action is Action.NO_OP:
                if not self.options.dry_run:
                    self.record(change.id, self._entry(change.id, applied=change.after,
                                                       seen=change.before))
                yield Result(change.id, change.name, change.action, "unchanged")
            elif change.action is Action.ERROR:
                yield Result(change.id, change.name, change.action, "failed",
                             f"could not be planned: {change.error}")
            else:
                writes.append(change)

        def until_stopped() -> Iterator[Change]:
            for change in writes:
                if self.options.stop.is_set():
                    return
                yield change

        for _change, result in bounded_map(self._one, until_stopped(), self.client.workers):
            yield result

    # --- one write, compare-and-set ----------------------------------------------------

    def _one(self, change: Change) -> Result:
        def result(kind: str, detail: str = "", **extra: Any) -> Result:
            return Result(change.id, change.name, change.action, kind, detail, **extra)

        try:
            live = self.client.inquire(change.id)
        except GatewayError as exc:
            return result("failed", f"inquiry before the write failed: {exc.message}")
        if change.action is Action.UPDATE and _matches(live, change.after):
            self.record(change.id, self._entry(change.id, applied=change.after, live=live))
            return result("unchanged", "already as planned; nothing sent")
        if fingerprint(live) != change.live_fingerprint:
            return result("skipped", "the plan changed since the plan was made; run plan again")
        near = self._near_charge(live)
        if near:
            return result("skipped", near)
        sent = self._wire(change, live)
        if self.options.dry_run:
            return result(f"would-{change.action}", sent=sent)
        intent = Intent(key=f"{self.run_id}:{change.id}", plan=change.id,
                        action=str(change.action),
                        after={k: to_json(v) for k, v in change.after.items()},
                        fingerprint=change.live_fingerprint or "", before_status=live.status,
                        at=now())
        self.journal.intend(intent)
        warning = None
        answered = True
        try:
            if change.action is Action.UPDATE:
                self.client.update(change.id, _target(change, live), live.currency)
            else:
                self.client.cancel(change.id)
        except StatusNotValidError as exc:
            if change.action is not Action.CANCEL:
                self.journal.settle(intent, "failed", None)
                return result("failed", exc.message, sent=sent)
            warning = "the gateway says the plan was already cancelled (12); counted as cancelled"
        except OutcomeUnknownError:
            answered = False  # the inquiry below tells what happened
        except GatewayError as exc:
            self.journal.settle(intent, "failed", None)
            return result("failed", str(exc).replace("\n  hint:", ";"), sent=sent)
        # A cancel the gateway answered (00, or 12: already) is done once live shows it;
        # an update counts only when live matches, whatever the answer said.
        settled = self.settle(intent, cancel_answered=answered)
        if settled.result == "applied":
            if change.action is Action.CANCEL:
                return result("cancelled", sent=sent, warning=warning)
            return result("updated", ", ".join(change.changed_fields), sent=sent)
        return result("failed", settled.detail, sent=sent)

    # --- settling a write: now, or in the next run after a crash -----------------------

    def recover(self) -> list[tuple[Intent, Settled]]:
        """Before anything else: replay the journal's outcomes into the state (a crash may
        have kept them from the state file), then settle every write left open."""
        _intents, outcomes = self.journal.read()
        for outcome in outcomes:
            if outcome.entry is not None:
                self.record(outcome.plan, outcome.entry)
        return [(intent, self.settle(intent)) for intent in self.journal.unsettled()]

    def settle(self, intent: Intent, cancel_answered: bool = False) -> Settled:
        """Decide by inquiry whether the write announced by ``intent`` took effect.
        ``cancel_answered``: the gateway accepted the cancel (00 or 12) in this run."""
        try:
            live = self.client.inquire(intent.plan)
        except GatewayError as exc:
            return Settled("unknown", f"the write's outcome is unknown ({exc.message}); "
                                      "the next apply settles it by inquiry first")
        after = {k: from_json(k, v) for k, v in intent.after.items()}
        if intent.action == "update":
            if _matches(live, after):
                self._settle(intent, "applied", self._entry(intent.plan, applied=after,
                                                             live=live))
                return Settled("applied", "the update took effect")
            if fingerprint(live) == intent.fingerprint:
                self._settle(intent, "not-applied", None)
                return Settled("not-applied", "the gateway did not apply the update; "
                                              "run apply again")
            self._settle(intent, "failed", None)
            return Settled("failed", "the plan changed in another way during the write; "
                                     "run plan again")
        cancelled = live.status == assumptions.CANCELLED_PLAN_INQUIRES_AS
        if cancelled and (cancel_answered or intent.before_status == "active"):
            self._settle(intent, "applied", self._cancelled(intent.plan, live))
            return Settled("applied", "the cancel took effect")
        if cancelled:
            # A paused plan whose cancel's answer was lost: paused and cancelled look alike.
            # Cancelling again is harmless either way: 00 means it was only paused, 12
            # that the first cancel took effect.
            try:
                self.client.cancel(intent.plan)
            except StatusNotValidError:
                pass
            except GatewayError as exc:
                return Settled("unknown", f"could not settle the cancel: {exc.message}")
            self._settle(intent, "applied", self._cancelled(intent.plan, live))
            return Settled("applied", "the cancel took effect")
        self._settle(intent, "not-applied", None)
        return Settled("not-applied", "the gateway did not apply the cancel; run apply again")

    def _settle(self, intent: Intent, result: str, entry: Entry | None) -> None:
        if entry is not None:
            self.record(intent.plan, entry)
        self.journal.settle(intent, result, entry)

    # --- helpers -----------------------------------------------------------------------

    def _entry(self, plan_id: str, applied: Mapping[str, Any],
               seen: Mapping[str, Any] | None = None, live: LivePlan | None = None) -> Entry:
        previous = self._state.plans.get(plan_id, Entry())
        if live is not None:
            seen = {name: getattr(live.fields, name) for name in FIELDS}
            seen = {**seen, "currency": live.currency}
        stamp = now()
        return Entry(applied={**previous.applied, **{k: to_json(v) for k, v in applied.items()}},
                     applied_at=stamp,
                     seen={k: to_json(v) for k, v in (seen or {}).items()}, seen_at=stamp,
                     cancelled=previous.cancelled, cancelled_at=previous.cancelled_at)

    def _cancelled(self, plan_id: str, live: LivePlan) -> Entry:
        entry = self._entry(plan_id, applied={"status": "cancelled"}, live=live)
        return Entry(entry.applied, entry.applied_at, entry.seen, entry.seen_at, True, now())

    def _near_charge(self, live: LivePlan) -> str | None:
        """Why this plan must not be written now: its charge run is too close."""
        if self.options.allow_near_charge or live.charge_next_date is None:
            return None
        charge = datetime.combine(live.charge_next_date, time(0), tzinfo=UTC)
        window = timedelta(hours=self.options.charge_window_hours)
        if charge - self.options.clock() < window:
            return (f"the plan charges on {live.charge_next_date} (UTC), within the "
                    f"{self.options.charge_window_hours:g}-hour window; a change racing the "
                    "charge run can charge the wrong amount (--allow-near-charge overrides)")
        return None

    def _wire(self, change: Change, live: LivePlan) -> tuple[tuple[str, str], ...]:
        if change.action is Action.CANCEL:
            return (("processType", messages.CANCEL),)
        target = _target(change, live)
        exponent = formats.currency_exponent(live.currency, self.client.exponents)
        return (("processType", messages.UPDATE), *messages.fields_to_wire(target, exponent))


@dataclass(frozen=True)
class Settled:
    result: str  # applied | not-applied | failed | unknown
    detail: str


def _target(change: Change, live: LivePlan) -> PlanFields:
    """What an update sends: the spec's values, over the live ones when the gateway is
    assumed to want the whole record."""
    wanted = PlanFields(**dict(change.after))
    return wanted.over(live.fields) if assumptions.UPDATE_SENDS_COMPLETE_RECORD else wanted


def _matches(live: LivePlan, after: Mapping[str, Any]) -> bool:
    return all(getattr(live.fields, name) == value for name, value in after.items())

