"""Apply a Plan's changes, each as a compare-and-set, exactly once.

The gateway has no idempotency key, so every write goes:
  inquire → already as planned? done, nothing sent; live moved since the plan? skip →
  journal the intent (fsync) → send → inquire again → the write counts only if live now
  matches → journal the outcome.
A write that may have reached the gateway and does not show on inquiry is *pending*:
gateways commit late, so until the settle window has passed since it was sent, that
plan is not written again; after it, inquiry settles the write for good. The applier
never prints or prompts; it yields a Result per plan.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from time import monotonic
from typing import Any

from plansync.engine.diff import fingerprint
from plansync.engine.fanout import bounded_map, workers_for
from plansync.engine.journal import fold
from plansync.engine.plan import Action, Change
from plansync.engine.ports import Gateway, JournalSink
from plansync.engine.state import Audit, Entry, Intent, Outcome, State, now
from plansync.errors import (
    GatewayError,
    GatewayRejectedError,
    HeldBack,
    LockLostError,
    OutcomeUnknownError,
    PlanNotFoundError,
    PlansyncError,
    StatusNotValidError,
)
from plansync.fields import NAMES, LivePlan, PlanFields, from_json, to_json
from plansync.gateway import assumptions


class ResultKind(StrEnum):
    """What became of one plan's change in a run. A member equals its string: the JSON
    output and the pull request comment carry that string."""

    UPDATED = "updated"
    CANCELLED = "cancelled"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    SKIPPED = "skipped"  # live moved since the plan, or too near its charge
    PENDING = "pending"  # may still land: not written again before the settle window ends
    NOT_STARTED = "not-started"  # the run stopped (or lost its lock) first: never sent
    WOULD_UPDATE = "would-update"  # dry run
    WOULD_CANCEL = "would-cancel"  # dry run


# A change that is done: the gateway shows what the plan wanted.
CONVERGED = frozenset({ResultKind.UPDATED, ResultKind.CANCELLED, ResultKind.UNCHANGED})


class Settlement(StrEnum):
    """What inquiry decided of one write (Settled.result); all but PENDING are journalled
    as the write's outcome (state.Outcome.result)."""

    APPLIED = "applied"
    NOT_APPLIED = "not-applied"
    FAILED = "failed"
    PENDING = "pending"  # not decided yet: no outcome is journalled


@dataclass(frozen=True)
class Result:
    id: str
    name: str | None
    action: Action
    result: ResultKind
    detail: str = ""
    sent: tuple[tuple[str, str], ...] = ()  # the wire fields written (or, dry-run, to write)
    warning: str | None = None
    cause: str | None = None  # why skipped, for the command to say how to override:
    #                           "near-charge"


@dataclass
class Options:
    dry_run: bool = False
    parallelism: int = 8  # writes in flight at once
    charge_window_hours: float = 24.0
    allow_near_charge: bool = False
    settle_window: timedelta = timedelta(seconds=90)
    actor: Mapping[str, Any] = field(default_factory=dict)  # who runs it, for the audit
    origin: Mapping[str, Any] = field(default_factory=dict)  # its plan file or spec, commit
    stop: threading.Event = field(default_factory=threading.Event)
    # Raises LockLostError when this run no longer provably holds the state's lock: the
    # state backend's check_lease. Asked immediately before every write is sent.
    fence: Callable[[], None] = lambda: None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


class Applier:
    def __init__(self, client: Gateway, journal: JournalSink, state: State,
                 options: Options) -> None:
        self.client = client
        self.journal = journal
        self.options = options
        self.run_id = uuid.uuid4().hex[:12]
        self._state = state
        self._state_lock = threading.Lock()
        self.journal_error: PlansyncError | None = None  # the first journal write that failed
        self.lock_lost: LockLostError | None = None  # why this run stopped writing, if fenced
        self._unkept: dict[str, list[Audit]] = {}  # audits by intent key, until kept
        self._in_flight: dict[str, str] = {}  # plan id -> action, for writes sent, unsettled
        # intent key -> when its write last left; to the microsecond, as writes leave in
        # parallel: the audit tells them apart
        self._sent_at: dict[str, str] = {}

    @property
    def state(self) -> State:
        return self._state

    def record(self, plan_id: str, entry: Entry) -> None:
        with self._state_lock:
            self._state = self._state.with_entry(plan_id, entry)

    def mark_plan_applied(self, digest: str) -> None:
        with self._state_lock:
            self._state = self._state.with_applied_plan(digest, now(),
                                                        self.options.actor.get("ci_url"))

    def mark_plan_complete(self, digest: str) -> None:
        """Every reviewed change of the saved plan ``digest`` was written or found done."""
        with self._state_lock:
            self._state = self._state.with_plan_complete(digest)

    def rebase(self, saved: State) -> None:
        """The state was saved as ``saved``: continue from its serial."""
        with self._state_lock:
            self._state = dataclasses.replace(self._state, serial=saved.serial)

    def in_flight(self) -> dict[str, str]:
        """The writes sent and not settled yet (plan id -> action): what a stop waits for."""
        with self._state_lock:
            return dict(self._in_flight)

    def pending_until(self, intent: Intent) -> datetime:
        """Before this, the write ``intent`` announced may still land at the gateway."""
        return intent.sent_at + self.options.settle_window

    # --- a whole plan ------------------------------------------------------------------

    def apply(self, changes: Iterable[Change]) -> Iterator[Result]:
        """Results as they happen. After ``options.stop`` is set no new write starts; the
        ones in flight finish and are journalled."""
        writes = []
        for change in changes:
            pending = self._state.pending_for(change.id)
            if pending and change.action is not Action.ERROR:
                until = max(map(self.pending_until, pending))
                yield Result(change.id, change.name, change.action, ResultKind.PENDING,
                             _pending_detail(until))
            elif change.action is Action.NO_OP:
                if not self.options.dry_run:
                    self.record(change.id, self._entry(change.id, applied=change.after,
                                                       seen=change.before))
                yield Result(change.id, change.name, change.action, ResultKind.UNCHANGED)
            elif change.action is Action.ERROR:
                yield Result(change.id, change.name, change.action, ResultKind.FAILED,
                             f"could not be planned: {change.error}")
            else:
                writes.append(change)

        handed = 0

        def until_stopped() -> Iterator[Change]:
            nonlocal handed
            for change in writes:
                if self._halted():
                    return
                handed += 1
                yield change

        for _change, result in bounded_map(self._one, until_stopped(),
                                           workers_for(self.options.parallelism)):
            yield result
        for change in writes[handed:]:  # never tried: stopped first
            yield Result(change.id, change.name, change.action, ResultKind.NOT_STARTED,
                         self._why_stopped())

    # --- one write, compare-and-set ----------------------------------------------------

    def _one(self, change: Change) -> Result:
        def result(kind: ResultKind, detail: str = "", **extra: Any) -> Result:
            return Result(change.id, change.name, change.action, kind, detail, **extra)

        if not self.options.dry_run and self._halted():  # the lease: checked as it leaves
            return result(ResultKind.NOT_STARTED, self._why_stopped())
        try:
            live = self.client.inquire(change.id)
        except GatewayError as exc:
            if not self.options.dry_run and self._halted():  # cut off by the stop
                return result(ResultKind.NOT_STARTED, self._why_stopped())
            return result(ResultKind.FAILED, f"inquiry before the write failed: {exc.message}")
        if change.action is Action.UPDATE and _matches(live, change.after):
            self.record(change.id, self._entry(change.id, applied=change.after, live=live))
            return result(ResultKind.UNCHANGED, "already as planned; nothing sent")
        if fingerprint(live) != change.live_fingerprint:
            return result(ResultKind.SKIPPED,
                          "the plan changed since the plan was made; run plan again")
        near = self._near_charge(live)
        if near:
            return result(ResultKind.SKIPPED, near, cause="near-charge")
        try:
            write = (self.client.update_write(change.id, _target(change, live), live.currency)
                     if change.action is Action.UPDATE else
                     self.client.cancel_write(change.id, live))
        except GatewayError as exc:  # a value the gateway does not allow: never sent
            return result(ResultKind.FAILED, exc.message)
        sent = write.sent
        if self.options.dry_run:
            return result(ResultKind.WOULD_UPDATE if change.action is Action.UPDATE
                          else ResultKind.WOULD_CANCEL, sent=sent)
        intent = Intent(key=f"{self.run_id}:{change.id}", plan=change.id,
                        action=str(change.action),
                        after={k: to_json(v) for k, v in change.after.items()},
                        fingerprint=change.live_fingerprint or "", before_status=live.status,
                        at=now(), by=dict(self.options.actor), sent=dict(sent),
                        name=change.name, currency=live.currency, before=_before(change, live),
                        origin=dict(self.options.origin))
        try:
            self.journal.append(intent)
        except PlansyncError as exc:
            self._journal_failed(exc)
            return result(ResultKind.NOT_STARTED if isinstance(exc, LockLostError)
                          else ResultKind.FAILED, f"not sent: {exc.message}")
        with self._state_lock:
            self._state = self._state.with_intent(intent)
        try:
            return self._send(change, write, intent, sent, result)
        except HeldBack as exc:
            self._settle(intent, Settlement.NOT_APPLIED, None)  # journalled: known never sent
            return result(ResultKind.NOT_STARTED, exc.message)
        finally:
            with self._state_lock:
                self._in_flight.pop(change.id, None)

    def _last_moment(self, intent: Intent) -> Callable[[], None]:
        """The check made as each attempt of ``intent``'s write is about to leave (the
        transport calls it once a connection is free). A stop (SIGINT, SIGTERM) or a lost
        lock since the inquiry means the write is not sent: the gateway cannot be fenced,
        so this is the only guard there. A write that could not leave within half the
        settle window of its intent is not sent either: another run may decide after the
        window that it never landed, and must be right."""
        latest = monotonic() + self.options.settle_window.total_seconds() / 2

        def check() -> None:
            if not self._may_send(journalled=True):
                raise HeldBack(self._why_stopped())
            if monotonic() >= latest:  # a freeze, or a long wait for a connection
                raise HeldBack("not sent: it could not leave within half the settle window")
            with self._state_lock:  # leaving now: what a stop waits for
                self._in_flight[intent.plan] = intent.action
                self._sent_at[intent.key] = now("microseconds")
        return check

    def _send(self, change: Change, write: Any, intent: Intent,
              sent: tuple[tuple[str, str], ...], result: Callable[..., Result]) -> Result:
        answered = True
        try:
            answer = self.client.send(write, self._last_moment(intent))
            self._audit(intent, sent, answer.code)
        except StatusNotValidError as exc:
            self._audit(intent, sent, exc.code)
            if change.action is not Action.CANCEL:
                self._settle(intent, Settlement.FAILED, None)
                return result(ResultKind.FAILED, exc.message, sent=sent)
            return self._cancel_refused(change, intent, sent, exc.code)
        except OutcomeUnknownError:
            self._audit(intent, sent, "")
            answered = False  # the inquiry below tells what happened
        except GatewayError as exc:  # answered with a refusal, or known never to have left
            if isinstance(exc, GatewayRejectedError):
                self._audit(intent, sent, exc.code)
                if (change.action is Action.CANCEL
                        and exc.code in assumptions.CANCELLED_PLAN_WRITE_ANSWERS):
                    return self._cancel_refused(change, intent, sent, exc.code)
            self._settle(intent, Settlement.FAILED, None)
            return result(ResultKind.FAILED, str(exc).replace("\n  hint:", ";"), sent=sent)
        # The write counts only once live shows it, whatever the answer said.
        settled = self.settle(intent, answered=answered)
        if settled.result is Settlement.APPLIED:
            if change.action is Action.CANCEL:
                return result(ResultKind.CANCELLED, sent=sent)
            return result(ResultKind.UPDATED, ", ".join(change.changed_fields), sent=sent)
        kind = (ResultKind.PENDING if settled.result is Settlement.PENDING
                else ResultKind.FAILED)
        return result(kind, settled.detail, sent=sent)

    # --- settling a write: now, or in the next run after a crash -----------------------

    def recover(self) -> list[tuple[Intent, Settled]]:
        """Before anything else: settle by inquiry every write the state holds as pending
        (folded in from the journal of an earlier run)."""
        return [(intent, self.settle(intent)) for intent in list(self._state.pending.values())]

    def settle(self, intent: Intent, answered: bool = False) -> Settled:
        """Decide by inquiry whether the write announced by ``intent`` took effect.
        ``answered``: the gateway accepted it (00) in this run.
        Until the settle window has passed, only "applied" is final: a write that does
        not show yet may still land, so it stays pending and is not sent again."""
        settled = self._decide(intent, answered)
        if settled.result is Settlement.PENDING:  # no outcome to carry the audit: keep it alone
            for audit in self._take_audits(intent):
                self._keep(audit)
        return settled

    def _decide(self, intent: Intent, answered: bool) -> Settled:
        until = self.pending_until(intent)
        window_over = self.options.clock() >= until
        try:
            live = self.client.inquire(intent.plan)
        except GatewayError as exc:
            if isinstance(exc, PlanNotFoundError) and intent.action == "cancel":
                # Found just before the cancel was sent, gone after it (16 proves nothing
                # of an update: that stays unknown).
                how = f"inquiry no longer finds the plan ({exc.code}) after the cancel"
                self._settle(intent, Settlement.APPLIED, self._cancelled(intent.plan, None, how))
                return Settled(Settlement.APPLIED, f"the cancel took effect: {how}")
            return Settled(Settlement.PENDING,
                           f"its outcome is unknown ({exc.message}); " + _pending_detail(until))
        after = {k: from_json(k, v) for k, v in intent.after.items()}
        if intent.action == "update":
            if _matches(live, after):
                self._settle(intent, Settlement.APPLIED, self._entry(intent.plan, applied=after,
                                                             live=live))
                return Settled(Settlement.APPLIED, "the update took effect")
            if not window_over:
                return Settled(Settlement.PENDING,
                               "the update does not show yet; " + _pending_detail(until))
            if fingerprint(live) == intent.fingerprint:
                self._settle(intent, Settlement.NOT_APPLIED, None)
                return Settled(Settlement.NOT_APPLIED,
                               "the gateway did not apply the update; run apply again")
            self._settle(intent, Settlement.FAILED, None)
            return Settled(Settlement.FAILED,
                           "the plan changed in another way during the write; run plan again")
        cancelled = live.status == assumptions.CANCELLED_PLAN_INQUIRES_AS
        if cancelled and (answered or intent.before_status == "active"):
            how = ("answered 00, and inquiry shows the plan inactive" if answered else
                   "its answer was lost, and inquiry shows the plan inactive (active before)")
            self._settle(intent, Settlement.APPLIED, self._cancelled(intent.plan, live, how))
            return Settled(Settlement.APPLIED, "the cancel took effect")
        if not window_over:
            return Settled(Settlement.PENDING,
                           "the cancel does not show yet; " + _pending_detail(until))
        if cancelled:
            # A paused plan whose cancel's answer was lost: paused and cancelled look alike.
            # Cancelling again is harmless either way: 00 means it was only paused, 12
            # that the first cancel took effect.
            try:
                resend = self.client.cancel_write(intent.plan, live)
            except GatewayError as exc:
                return Settled(Settlement.PENDING, f"could not settle the cancel: {exc.message}")
            # A gateway may answer 16 instead of 12 (assumptions.CANCELLED_PLAN_WRITE_ANSWERS):
            # either way the plan, just seen, cannot be cancelled because it already is.
            try:
                code = self.client.send(resend, self._resend_check(intent)).code
            except HeldBack as exc:  # stopped, or the lock lost: settled by a later run
                return Settled(Settlement.PENDING, f"could not settle the cancel: {exc.message}")
            except GatewayRejectedError as exc:
                code = exc.code
                if code not in assumptions.CANCELLED_PLAN_WRITE_ANSWERS:
                    self._audit(intent, resend.sent, code)
                    return Settled(Settlement.PENDING,
                                   f"could not settle the cancel: {exc.message}")
            except GatewayError as exc:
                self._audit(intent, resend.sent, "")
                return Settled(Settlement.PENDING, f"could not settle the cancel: {exc.message}")
            self._audit(intent, resend.sent, code)
            how = ("its answer was lost and the plan was paused, so it was sent again: "
                   f"answered {code}, so "
                   + ("it was only paused" if code == assumptions.SUCCESS_CODE else
                      "the first had taken effect"))
            self._settle(intent, Settlement.APPLIED, self._cancelled(intent.plan, live, how))
            return Settled(Settlement.APPLIED, f"the cancel took effect: {how}")
        self._settle(intent, Settlement.NOT_APPLIED, None)
        return Settled(Settlement.NOT_APPLIED,
                       "the gateway did not apply the cancel; run apply again")

    def _cancel_refused(self, change: Change, intent: Intent, sent: tuple[tuple[str, str], ...],
                        code: str) -> Result:
        """A cancel answered 12 or 16: the gateway may be saying the plan is cancelled
        already (by an earlier cancel of ours whose answer was lost or refused, or by
        someone else) or something else entirely, so the answer alone never counts:
        inquiry decides. The plan was found and read just before this cancel: not found
        now, it is cancelled; active, it is not. Inactive, it is cancelled if it was
        active before, or an earlier cancel of ours may have committed, or the answer is
        12 (assumed to mean cancelled: a paused plan accepts a cancel); a 16 to the first
        cancel of a paused plan is no proof, as inquiry cannot tell paused from
        cancelled. An inquiry that fails decides nothing: failed, the next apply asks
        again."""
        def result(kind: ResultKind, detail: str, warning: str | None = None) -> Result:
            return Result(change.id, change.name, change.action, kind, detail, sent=sent,
                          warning=warning)

        try:
            live: LivePlan | None = self.client.inquire(intent.plan)
            seen = "inquiry shows the plan inactive"
        except PlanNotFoundError:
            live, seen = None, "inquiry no longer finds the plan"
        except GatewayError as exc:
            self._settle(intent, Settlement.FAILED, None)
            return result(ResultKind.FAILED,
                          f"the gateway answered {code} to the cancel, and the inquiry to "
                          f"tell whether the plan is cancelled failed ({exc.message}); not "
                          "counted as cancelled: run apply again")
        if live is not None and live.status != assumptions.CANCELLED_PLAN_INQUIRES_AS:
            self._settle(intent, Settlement.FAILED, None)
            return result(ResultKind.FAILED,
                          f"the gateway answered {code} to the cancel, yet inquiry shows the "
                          f"plan {live.status}: it is not cancelled; ask 2C2P what the "
                          "answer means for this plan")
        earlier = [audit for audit in self._state.history if audit.plan == intent.plan
                   and audit.process_type == "C" and audit.key != intent.key]
        if (live is not None and not earlier and code != "12"
                and intent.before_status == assumptions.CANCELLED_PLAN_INQUIRES_AS):
            self._settle(intent, Settlement.FAILED, None)
            return result(ResultKind.FAILED,
                          f"the gateway answered {code} to the cancel and inquiry shows the "
                          "plan inactive, as it was before: paused and cancelled look alike "
                          "and plansync never sent it a cancel before, so it is not counted "
                          "as cancelled; check the plan with 2C2P")
        if earlier:
            last = earlier[-1]
            how = (f"the cancel sent at {last.at} (answered "
                   f"{last.resp_code or 'nothing: its answer was lost'}) took effect: a "
                   f"second cancel was answered {code} and {seen}")
            warning = None
        else:
            how = f"already cancelled: the gateway answered {code} to the cancel and {seen}"
            warning = (f"the gateway says the plan was already cancelled ({code}); counted as "
                       f"cancelled, as {seen}")
        self._settle(intent, Settlement.APPLIED, self._cancelled(intent.plan, live, how))
        return result(ResultKind.CANCELLED, how, warning)

    def _settle(self, intent: Intent, result: Settlement, entry: Entry | None) -> None:
        self._keep(Outcome(intent.key, intent.plan, result, entry, now(),
                           self._take_audits(intent)))

    def _audit(self, intent: Intent, sent: Iterable[tuple[str, str]], resp_code: str) -> None:
        """Note a write that left this machine under ``intent``, for the audit trail: it
        is journalled with the intent's outcome (or alone, if the write stays pending)."""
        with self._state_lock:
            # Its own send time: answers come back in any order, and a lost one late.
            at = self._sent_at.pop(intent.key, None) or now()
            # Sent by this run (a cancel sent again may settle an earlier run's intent).
            audit = _audit_of(intent, sent, resp_code, at, self.options.actor)
            self._unkept.setdefault(intent.key, []).append(audit)

    def _take_audits(self, intent: Intent) -> tuple[Audit, ...]:
        """The audits noted under ``intent`` and not kept yet. For a write of an earlier
        run that stopped before keeping its audit, one made from the intent (the write
        may have been sent; its answer is unknown, so respCode is empty)."""
        with self._state_lock:
            audits = tuple(self._unkept.pop(intent.key, ()))
            kept = any(audit.key == intent.key for audit in self._state.history)
        if audits or kept or not intent.sent or intent.key.startswith(f"{self.run_id}:"):
            return audits
        return (_audit_of(intent, intent.sent.items(), "", intent.at, intent.by),)

    def _keep(self, record: Outcome | Audit) -> None:
        """Journal ``record``, then fold it into the state; a journal that cannot be
        written stops new writes, and the state written at the end still holds it."""
        try:
            self.journal.append(record)
        except PlansyncError as exc:
            self._journal_failed(exc)
        with self._state_lock:
            self._state = fold(self._state, [record])

    def _journal_failed(self, error: PlansyncError) -> None:
        if isinstance(error, LockLostError):
            self._lost(error)
        elif self.journal_error is None:
            self.journal_error = error

    def _halted(self) -> bool:
        """No new write starts: a stop was asked for, the journal failed, or the lock lost."""
        return self.options.stop.is_set() or self.journal_error is not None \
            or self.lock_lost is not None

    def _may_send(self, journalled: bool = False) -> bool:
        """Whether a write may be sent now: no stop asked for, and the lock provably ours.
        A journal that failed stops new writes, not one whose intent is already durable
        (``journalled``): sending it is as safe as before, and holding it back would leave
        an intent that the next run cannot tell from a write sent."""
        if self.options.stop.is_set() or self.lock_lost is not None:
            return False
        if self.journal_error is not None and not journalled:
            return False
        try:
            self.options.fence()
        except LockLostError as exc:
            self._lost(exc)
            return False
        return True

    def _resend_check(self, intent: Intent) -> Callable[[], None]:
        """The last-moment check of a write sent again to settle ``intent``'s."""
        def check() -> None:
            if not self._may_send(journalled=True):
                raise HeldBack(self._why_stopped())
            with self._state_lock:
                self._sent_at[intent.key] = now("microseconds")
        return check

    def _lost(self, error: LockLostError) -> None:
        with self._state_lock:
            if self.lock_lost is None:
                self.lock_lost = error

    def _why_stopped(self) -> str:
        if self.lock_lost is not None:
            return "not sent: this run lost the state's lock"
        if self.options.stop.is_set():
            return "not sent: the run was stopped first"
        return "not sent: the journal could not be written"

    # --- helpers -----------------------------------------------------------------------

    def _entry(self, plan_id: str, applied: Mapping[str, Any],
               seen: Mapping[str, Any] | None = None, live: LivePlan | None = None) -> Entry:
        previous = self._state.plans.get(plan_id, Entry())
        if live is not None:
            seen = {name: getattr(live.fields, name) for name in NAMES}
            seen = {**seen, "currency": live.currency}
        stamp = now()
        return Entry(applied={**previous.applied, **{k: to_json(v) for k, v in applied.items()}},
                     applied_at=stamp,
                     seen={k: to_json(v) for k, v in (seen or {}).items()}, seen_at=stamp,
                     cancelled=previous.cancelled, cancelled_at=previous.cancelled_at,
                     cancelled_how=previous.cancelled_how)

    def _cancelled(self, plan_id: str, live: LivePlan | None, how: str) -> Entry:
        """The entry of a plan whose cancel took effect; ``how`` says what showed it. A
        plan the gateway no longer finds keeps what was last seen of it."""
        previous = self._state.plans.get(plan_id, Entry())
        entry = self._entry(plan_id, applied={"status": "cancelled"}, live=live,
                            seen=None if live else previous.seen)
        return dataclasses.replace(entry, cancelled=True, cancelled_at=now(), cancelled_how=how)

    def _near_charge(self, live: LivePlan) -> str | None:
        """Why this plan must not be written now: its charge run is too close."""
        if self.options.allow_near_charge or live.charge_next_date is None:
            return None
        charge = datetime.combine(live.charge_next_date, time(0), tzinfo=UTC)
        window = timedelta(hours=self.options.charge_window_hours)
        if charge - self.options.clock() < window:
            return (f"the plan charges on {live.charge_next_date} (UTC), within the "
                    f"{self.options.charge_window_hours:g}-hour window; a change racing the "
                    "charge run can charge the wrong amount")
        return None

@dataclass(frozen=True)
class Settled:
    result: Settlement
    detail: str


def _pending_detail(until: datetime) -> str:
    when = until.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return (f"it may still land, so the plan is not written again before {when}; "
            "apply after that settles it by inquiry")


def _before(change: Change, live: LivePlan) -> dict[str, Any]:
    """For the audit: what the write changes, as live has it just before it is sent."""
    if change.action is Action.CANCEL:
        return {"status": live.status}
    return {name: to_json(getattr(live.fields, name)) for name in change.changed_fields}


def _audit_of(intent: Intent, sent: Iterable[tuple[str, str]], resp_code: str,
              at: str, by: Mapping[str, Any]) -> Audit:
    """The audit of a write sent at ``at`` by ``by`` under ``intent``, answered
    ``resp_code``."""
    items = dict(sent)
    after = ({"status": "cancelled"} if intent.action == "cancel" else
             {name: intent.after[name] for name in intent.before if name in intent.after})
    return Audit(at=at, by=dict(by), plan=intent.plan,
                 process_type=items.pop("processType"), sent=items, resp_code=resp_code,
                 key=intent.key, name=intent.name, currency=intent.currency,
                 before=dict(intent.before), after=after, origin=dict(intent.origin))


def _target(change: Change, live: LivePlan) -> PlanFields:
    """What an update sends: the spec's values, over the live ones when the gateway is
    assumed to want the whole record."""
    wanted = PlanFields(**dict(change.after))
    return wanted.over(live.fields) if assumptions.UPDATE_SENDS_COMPLETE_RECORD else wanted


def _matches(live: LivePlan, after: Mapping[str, Any]) -> bool:
    return all(getattr(live.fields, name) == value for name, value in after.items())

