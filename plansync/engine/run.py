"""The runs the commands share: a plan of the specs against live, and the apply run.

An apply run locks the state, folds the journal in, settles writes an earlier run left
open, plans (or checks a saved plan against a plan made again), checks the guardrails,
asks for confirmation, writes and saves. It never prints or prompts: it tells an
``ApplyView`` and asks ``confirm``; the command names the flags and the exit code.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from plansync.errors import GuardrailError, PlansyncError

if TYPE_CHECKING:  # `plan` loads the planner alone; the applier's machinery, `apply`
    from plansync.engine import state
    from plansync.engine.applier import Applier, Result
    from plansync.engine.guardrails import Guardrails, Violation
    from plansync.engine.plan import Change, Plan
    from plansync.spec.model import DesiredPlan


@dataclass(frozen=True)
class Desired:
    """The declared plans to plan (already selected), their spec's digest and files."""

    plans: Sequence[DesiredPlan]
    digest: str
    paths: Sequence[str]
    everything: bool = True  # no --target/--exclude: the state's other plans are unmanaged


def plan(desired: Desired, client: Any, known: state.State, parallelism: int,
         on_progress: Callable[[], None] = lambda: None) -> Plan:
    """The specs planned against live, remembering what the state knows."""
    from plansync.engine.planner import make_plan

    made = make_plan(desired.plans, client, spec_digest=desired.digest,
                     parallelism=parallelism, known_cancelled=known.cancelled,
                     managed_before=set(known.plans) if desired.everything else set(),
                     spec_paths=desired.paths, on_progress=on_progress)
    stop_if_systemic(client, len(desired.plans), _not_tried(made))
    return made


def stop_if_systemic(client: Any, total: int, not_tried: int) -> None:
    """One error, said once, when every request failed the same systemic way."""
    cause = client.breaker.tripped
    if cause is not None:
        raise PlansyncError(
            f"{cause.message} — {client.breaker.threshold} requests in a row failed alike, "
            f"so plansync stopped: {_how_many_not_tried(not_tried, total)}", cause.hint)


def _how_many_not_tried(not_tried: int, total: int) -> str:
    plans = "plan" if total == 1 else "plans"
    if not_tried == 0:  # every plan was tried, and failed: it stopped only the retries
        return f"each of the {total} {plans} was tried" if total > 1 else "its plan was tried"
    return f"{not_tried} of the {total} {plans} {'was' if not_tried == 1 else 'were'} not tried"


def _not_tried(made: Plan) -> int:
    from plansync.gateway.breaker import NOT_TRIED

    return sum(1 for change in made.changes if change.error and NOT_TRIED in change.error)


class Refused(PlansyncError):
    """A saved plan that must not be applied; ``why`` says which check refused it (the
    command words the hint: how to make a plan is the commands' to say)."""

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.why = why  # "other-settings" | "other-spec" | "forged"


class Limits(Protocol):
    """The run's guardrails, each breach said with where its limit was set
    (plansync.limits.Limits)."""

    @property
    def guardrails(self) -> Guardrails: ...

    def breaches(self, plan: Plan) -> list[Violation]: ...


class ApplyView(Protocol):
    """What an apply run says, as it happens (plansync.views: a text or a JSON view)."""

    def line(self, text: str) -> None: ...
    def warning(self, text: str) -> None: ...
    def plan(self, made: Plan) -> None: ...
    def result(self, result: Result) -> None: ...
    def already_applied(self, plan_file: Path, record: Any) -> int: ...
    def cancelled(self) -> int: ...

    def finish(self, results: list[Result], dry_run: bool, signum: int | None,
               not_reviewed: Sequence[Change] = ()) -> int: ...


class Stopping(Protocol):
    """A signal's stop of the writes (commands/apply._Stop): ``event`` is set when no
    new write may leave; ``catching`` holds the signal handlers from the first write
    until the lock is released."""

    event: Any
    signum: int | None
    waiting_for: Callable[[], dict[str, str]]
    cut_off: Callable[[], None]

    def catching(self) -> AbstractContextManager[None]: ...


@contextlib.contextmanager
def _quiet(_total: int) -> Iterator[Callable[[], None]]:
    yield lambda: None


@dataclass(frozen=True)
class ApplyRequest:
    desired: Desired | None  # the specs to plan; None with a saved plan
    plan_file: Path | None
    spec_paths: Sequence[Path]  # as given (a saved plan's own paths when empty)
    dry_run: bool
    lock_wait: float
    settle_window: timedelta
    limits: Limits
    allow_near_charge: bool
    expect_spec_digest: str | None
    parallelism: int


def apply(request: ApplyRequest, store: Any, open_client: Callable[[], Any],
          view: ApplyView, confirm: Callable[[], bool], stop: Stopping,
          read_plan: Callable[[Path], tuple[Plan, str]],
          progress: Callable[[int], AbstractContextManager[Callable[[], None]]] = _quiet
          ) -> int:
    """The whole apply run; what ``view.finish`` (or its refusal) returns. The client is
    opened (its keys read) once the lock is held; ``confirm`` is asked only when there
    are changes to write; ``read_plan`` reads a saved plan and its digest (once the
    lock is held and earlier writes are settled); ``progress(total)`` gives what to call
    as each plan of the spec is inquired."""
    from plansync.engine import backends
    from plansync.engine.applier import CONVERGED

    with contextlib.ExitStack() as until_released:
        with contextlib.closing(store), \
                store.lock("apply", request.lock_wait, view.warning) as lock_note, \
                open_client() as client:
            applier = _applier(request, store, client, lock_note, stop)
            _settle_earlier_writes(applier, request.dry_run, view)
            plan_digest = None
            within = None
            if request.plan_file is not None:
                reviewed, plan_digest = read_plan(request.plan_file)
                if not request.spec_paths and not request.dry_run:
                    # The commit of the plan's own specs: the file may be kept elsewhere.
                    applier.options = _from_reviewed(applier.options, request.plan_file,
                                                     reviewed.spec_paths)
                if plan_digest in applier.state.applied_plans:
                    return view.already_applied(request.plan_file,
                                                applier.state.applied_plans[plan_digest])
                made, within = _within_reviewed(request, reviewed, client, applier.state)
            else:
                assert request.desired is not None  # given whenever there is no plan file
                with progress(len(request.desired.plans)) as advance:
                    made = plan(request.desired, client, applier.state, request.parallelism,
                                advance)
            made = _checked(request, made, applier.state)
            view.plan(made)
            refused = request.limits.breaches(made)
            if refused:
                raise GuardrailError("the plan exceeds a guardrail; nothing was sent: "
                                     + "; ".join(map(str, refused)),
                                     "review the plan; raise the limit only if it is right")
            if made.has_changes and not request.dry_run and not confirm():
                return view.cancelled()
            if plan_digest is not None and not request.dry_run:
                # Recorded before the first write: a plan file applies at most once.
                applier.mark_plan_applied(plan_digest)
                applier.rebase(backends.checkpoint(store, applier.state))
            results = [] if within is None else _not_written(within, view)
            # From the first write until the lock is released, a signal stops new writes
            # rather than interrupting the state's save.
            until_released.enter_context(stop.catching())
            for result in applier.apply(made.changes):
                results.append(result)
                view.result(result)
            if applier.lock_lost is not None:  # fenced: store nothing, say so
                view.finish(results, request.dry_run, stop.signum)
                raise applier.lock_lost
            if not request.dry_run:
                # Plans this spec does not declare keep their memory (a cancellation
                # above all): the state remembers every plan plansync wrote; only
                # `plansync state rm` forgets.
                if plan_digest is not None and stop.signum is None and all(
                        r.result in CONVERGED for r in results):
                    applier.mark_plan_complete(plan_digest)
                backends.checkpoint(store, applier.state)
            if applier.journal_error is not None:
                raise applier.journal_error
        return view.finish(results, request.dry_run, stop.signum,
                           not_reviewed=() if within is None else within.not_reviewed)


def _from_reviewed(options: Any, plan_file: Path, spec_paths: Sequence[str]) -> Any:
    import os

    from plansync.engine.origin import origin

    return dataclasses.replace(options, origin=origin(plan_file, spec_paths, os.environ))


def _applier(request: ApplyRequest, store: Any, client: Any, lock_note: Any,
             stop: Stopping) -> Applier:
    """The applier over the state as the journal leaves it. Every run first folds the
    whole journal into the state and saves it: a crash between a run's last outcome and
    its state write must not be forgotten."""
    import os

    from plansync.engine import backends, journal, state
    from plansync.engine.applier import Applier, Options
    from plansync.engine.origin import origin

    records = store.records()
    known = journal.fold(state.bound(store.read(), client.merchant_id, client.endpoint,
                                     store.where), records)
    if records and not request.dry_run:
        known = backends.checkpoint(store, known)
    applier = Applier(client, store, known, Options(
        dry_run=request.dry_run, stop=stop.event, parallelism=request.parallelism,
        charge_window_hours=request.limits.guardrails.charge_window_hours,
        allow_near_charge=request.allow_near_charge, settle_window=request.settle_window,
        actor={k: getattr(lock_note, k) for k in ("user", "host", "ci_url")},
        origin={} if request.dry_run else origin(
            request.plan_file, list(request.spec_paths)
            or (list(request.desired.paths) if request.desired else []), os.environ),
        fence=store.check_lease))
    stop.waiting_for = applier.in_flight
    stop.cut_off = client.abort
    return applier


def _checked(request: ApplyRequest, made: Plan, known: state.State) -> Plan:
    """The plan, refused if its spec is not the reviewed one; with the writes an earlier
    run left open, which are held back until they settle."""
    from plansync.engine.plan import with_pending

    if request.expect_spec_digest and made.spec_digest != request.expect_spec_digest:
        raise PlansyncError(
            f"the spec is {made.spec_digest}, not the reviewed {request.expect_spec_digest}; "
            "nothing was sent", "review a plan of this spec before applying it")
    return with_pending(made, known.pending.values(), request.settle_window)


def _settle_earlier_writes(applier: Applier, dry_run: bool, view: ApplyView) -> None:
    pending = list(applier.state.pending.values())
    if not pending:
        return
    if dry_run:
        view.line(f"{len(pending)} write(s) from an earlier run are unsettled; a real "
                  "apply settles them by inquiry first.")
        return
    view.line(f"Settling {len(pending)} write(s) left open by an earlier run:")
    for intent, settled in applier.recover():
        view.line(f"  plan {intent.plan} ({intent.action}): {settled.detail}")
    view.line("")


def _within_reviewed(request: ApplyRequest, reviewed: Plan, client: Any,
                     known: state.State) -> tuple[Plan, Any]:
    """What of a saved plan may be written: the plan to apply (only the changes that the
    file and a plan recomputed now from the spec and live agree on exactly) and the
    ceiling it came from. Refuses a file made elsewhere, for another spec, or edited."""
    from plansync.engine import ceiling
    from plansync.spec import loader

    plan_file = request.plan_file
    mismatches = [f"{what} {theirs}, not {ours}" for what, theirs, ours in (
        ("merchant", reviewed.merchant_id, client.merchant_id),
        ("endpoint", reviewed.endpoint, client.endpoint),
        ("key fingerprint", reviewed.key_fingerprint, client.key_fingerprint),
    ) if theirs != ours]
    if mismatches:
        raise Refused(f"plan file {plan_file} was made for {'; '.join(mismatches)}",
                      "other-settings")
    spec_paths = list(request.spec_paths) or [Path(p) for p in reviewed.spec_paths]
    desired, problems = loader.load(spec_paths)
    if problems or loader.digest(desired) != reviewed.spec_digest:
        raise Refused(
            f"the spec in {', '.join(map(str, spec_paths))} is not the one plan file "
            f"{plan_file} was made from (the spec changed since, for example by a later "
            "merge, or the file was made from another spec); nothing was sent",
            "other-spec")
    forged = ceiling.forgeries(reviewed, desired)
    if forged:
        raise Refused(
            f"plan file {plan_file} asks for what its spec does not: " + "; ".join(forged)
            + "; the file was edited or made from another spec, so nothing was sent",
            "forged")
    now = plan(Desired(desired, reviewed.spec_digest, reviewed.spec_paths), client, known,
               request.parallelism)
    within = ceiling.intersect(reviewed, now)
    return dataclasses.replace(reviewed, changes=within.agreed,
                               unmanaged=within.unmanaged), within


def _not_written(within: Any, view: ApplyView) -> list[Result]:
    """Results for the reviewed changes that live moved away from since review, and a
    warning for the changes nobody reviewed: neither is written."""
    from plansync.engine.applier import Result, ResultKind
    from plansync.engine.plan import Action

    results = []
    for reviewed, now in within.moved:
        if now.action is Action.NO_OP:
            result = Result(reviewed.id, reviewed.name, reviewed.action, ResultKind.UNCHANGED,
                            "already as reviewed; nothing sent")
        elif now.action is Action.ERROR:
            result = Result(reviewed.id, reviewed.name, reviewed.action, ResultKind.FAILED,
                            f"could not be planned again: {now.error}")
        else:
            result = Result(reviewed.id, reviewed.name, reviewed.action, ResultKind.SKIPPED,
                            "the live plan changed since review (the spec now means "
                            f"{now.action}{_fields(now)}); not written: review a new plan")
        results.append(result)
        view.result(result)
    for change in within.not_reviewed:
        view.warning(f"plan {change.id}: the spec now means {change.action}{_fields(change)},"
                     " which the reviewed plan does not hold; not written: review a new plan")
    return results


def _fields(change: Change) -> str:
    return f" of {', '.join(change.changed_fields)}" if change.changed_fields and \
        str(change.action) == "update" else ""
