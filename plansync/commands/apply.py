"""`plansync apply`: make live plans match the spec, safely and exactly once."""

from __future__ import annotations

import contextlib
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from plansync.commands import options as shared
from plansync.commands.limits import resolve as guardrail_limits
from plansync.commands.output import SIGNAL_EXIT, ApplyReport, Output
from plansync.config import MAX_CHARGE_WINDOW_HOURS
from plansync.errors import GuardrailError, LockError, PlansyncError
from plansync.printable import quoted

CONVERGED = ("updated", "cancelled", "unchanged")  # a saved plan's change that is done


@click.command()
@click.argument("paths", metavar="[PATH...]", nargs=-1, type=click.Path(path_type=Path))
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Apply exactly this saved plan (from `plansync plan --out`).")
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True,
              help="Check everything and show what would be sent; send no update or cancel.")
@click.option("--json", "as_json", is_flag=True, help="The outcome per plan, as JSON on stdout.")
@click.option("--no-color", is_flag=True, help="No colours (also: the NO_COLOR variable).")
@click.option("--lock-timeout", default="0s", show_default=True, metavar="DURATION",
              help="How long to wait for the state lock (e.g. 30s, 5m).")
@click.option("--max-changes", type=click.IntRange(0), help="Refuse plans changing more plans.")
@click.option("--max-cancels", type=click.IntRange(0), help="Refuse plans cancelling more plans.")
@click.option("--max-amount-increase", type=click.FloatRange(0), metavar="PERCENT",
              help="Refuse plans raising any amount by more than this.")
@click.option("--max-mrr-decrease", type=click.FloatRange(0), metavar="PERCENT",
              help="Refuse plans lowering any currency's monthly recurring revenue by more.")
@click.option("--max-charged-within", type=click.IntRange(0), metavar="N",
              help="Refuse plans changing more than N plans that charge within the charge "
                   "window.")
@click.option("--charge-window", type=shared.FiniteRange(0, MAX_CHARGE_WINDOW_HOURS),
              metavar="HOURS",
              help="Plans charging sooner than this are not written (default 24).")
@click.option("--allow-near-charge", is_flag=True, help="Write plans about to charge anyway.")
@click.option("--settle-window", metavar="DURATION",
              help="How long a write whose outcome is unknown may still land; the plan is "
                   "not written again before then: from the read timeout to 24h (default: "
                   "settle_window, else 3x the read timeout).")
@click.option("--expect-spec-digest", metavar="SHA256",
              help="Refuse unless the spec is this one (the digest a reviewed plan showed).")
@shared.selecting
@shared.state_options
@shared.gateway_options
@shared.errors_in_json
def apply(paths: Sequence[Path], plan_file: Path | None, auto_approve: bool, dry_run: bool,
          as_json: bool, no_color: bool, lock_timeout: str, max_changes: int | None,
          max_cancels: int | None, max_amount_increase: float | None,
          max_mrr_decrease: float | None, max_charged_within: int | None,
          charge_window: float | None, allow_near_charge: bool, settle_window: str | None,
          expect_spec_digest: str | None, target: Sequence[str],
          exclude: Sequence[str], parallelism: int, rate_limit: float | None,
          **options: Any) -> int:
    """Make live plans match the spec (or a saved plan), each write a compare-and-set.

    Exit codes: 0 every plan converged; 1 a plan failed, was skipped or is pending; 3 a
    guardrail refused the plan (nothing sent); 130/143 stopped by SIGINT/SIGTERM.
    """
    from plansync.engine import backends, journal, state
    from plansync.engine.applier import Applier, Options
    from plansync.engine.plan import with_pending

    if not paths and plan_file is None:
        raise click.UsageError("name the spec PATHs to apply, or a saved --plan FILE")
    if plan_file is not None and (target or exclude):
        raise click.UsageError("--target and --exclude choose plans when a plan is made; a "
                               "saved plan holds what was chosen then: make it with them "
                               "(plansync plan --target ID --out FILE)")
    lock_wait = _seconds(lock_timeout, "--lock-timeout")  # usage errors before any work
    window_flag = None if settle_window is None else _seconds(settle_window,
                                                              "--settle-window")
    if not (auto_approve or dry_run or sys.stdin.isatty()):
        raise PlansyncError("apply needs a 'yes' to go on, and there is no terminal to ask",
                            "pass --auto-approve (as CI does), or run it in a terminal")
    out = Output("json" if as_json else None, no_color)
    say = out.apply_report()
    specs = shared.Specs(paths, target, exclude) if plan_file is None else None
    store = shared.open_state(options)
    settings = shared.settings_from(options)
    limits = guardrail_limits(
        settings.guardrails, max_changes=max_changes, max_cancels=max_cancels,
        max_amount_increase=max_amount_increase, max_mrr_decrease=max_mrr_decrease,
        max_charged_within=max_charged_within, charge_window=charge_window)
    window = settings.settle_window if window_flag is None else \
        _settle_window(window_flag, settle_window or "", settings.read_timeout)
    stop = _Stop()
    with contextlib.ExitStack() as until_released:
        with contextlib.closing(store), \
                _hint_how_to_wait(), \
                store.lock("apply", lock_wait, say.warning) as lock_note, \
                shared.gateway_client(settings, parallelism, rate_limit) as client:
            # Every run first folds the whole journal into the state and saves it: a crash
            # between a run's last outcome and its state write must not be forgotten.
            records = store.records()
            known = journal.fold(state.bound(store.read(), settings.merchant_id,
                                             settings.endpoint, store.where), records)
            if records and not dry_run:
                known = backends.checkpoint(store, known)
            applier = Applier(client, store, known, Options(
                dry_run=dry_run, stop=stop.event, parallelism=parallelism,
                charge_window_hours=limits.guardrails.charge_window_hours,
                allow_near_charge=allow_near_charge, settle_window=timedelta(seconds=window),
                actor={k: lock_note[k] for k in ("user", "host", "ci_url")},
                fence=store.check_lease))
            stop.waiting_for = applier.in_flight
            stop.cut_off = client.abort
            _settle_earlier_writes(applier, dry_run, say)
            plan_digest = None
            ceiling = None
            if plan_file is not None:
                reviewed, plan_digest = shared.read_plan_file(plan_file)
                if plan_digest in applier.state.applied_plans:
                    return say.already_applied(plan_file,
                                               applier.state.applied_plans[plan_digest])
                made, ceiling = _within_reviewed(plan_file, reviewed, paths, client,
                                                 applier.state, parallelism)
            else:
                assert specs is not None  # loaded above whenever there is no --plan
                made = specs.plan(client, applier.state, parallelism)
            if expect_spec_digest and made.spec_digest != expect_spec_digest:
                raise PlansyncError(
                    f"the spec is {made.spec_digest}, not the reviewed {expect_spec_digest}; "
                    "nothing was sent", "review a plan of this spec before applying it")
            made = with_pending(made, applier.state.pending.values(),
                                timedelta(seconds=window))
            say.line(out.plan(made, as_text=True) + "\n")
            refused = limits.breaches(made)
            if refused:
                raise GuardrailError("the plan exceeds a guardrail; nothing was sent: "
                                     + "; ".join(map(str, refused)),
                                     "review the plan; raise the limit only if it is right")
            if made.has_changes and not (auto_approve or dry_run) and not _confirmed():
                say.line("Apply cancelled; nothing was sent.")
                return 1
            if plan_digest is not None and not dry_run:
                # Recorded before the first write: a plan file applies at most once.
                applier.mark_plan_applied(plan_digest)
                applier.rebase(backends.checkpoint(store, applier.state))
            results = [] if ceiling is None else _not_written(ceiling, say)
            # From the first write until the lock is released, a signal stops new writes
            # rather than interrupting the state's save.
            until_released.enter_context(stop.catching())
            for result in applier.apply(made.changes):
                results.append(result)
                say.result(result)
            if applier.lock_lost is not None:  # fenced: store nothing, say so
                say.finish(results, dry_run, stop.signum)
                raise applier.lock_lost
            if not dry_run:
                # Plans this spec does not declare keep their memory (a cancellation
                # above all): the state remembers every plan plansync wrote; only
                # `plansync state rm` forgets.
                if plan_digest is not None and stop.signum is None and all(
                        r.result in CONVERGED for r in results):
                    applier.mark_plan_complete(plan_digest)
                backends.checkpoint(store, applier.state)
            if applier.journal_error is not None:
                raise applier.journal_error
        return say.finish(results, dry_run, stop.signum,
                          not_reviewed=() if ceiling is None else ceiling.not_reviewed)


def _settle_earlier_writes(applier: Any, dry_run: bool, say: ApplyReport) -> None:
    pending = list(applier.state.pending.values())
    if not pending:
        return
    if dry_run:
        say.line(f"{len(pending)} write(s) from an earlier run are unsettled; a real "
                 "apply settles them by inquiry first.")
        return
    say.line(f"Settling {len(pending)} write(s) left open by an earlier run:")
    for intent, settled in applier.recover():
        say.line(f"  plan {intent.plan} ({intent.action}): {settled.detail}")
    say.line("")


def _within_reviewed(plan_file: Path, reviewed: Any, paths: Sequence[Path], client: Any,
                     known: Any, parallelism: int) -> tuple[Any, Any]:
    """What of a saved plan may be written: the plan to apply (only the changes that the
    file and a plan recomputed now from the spec and live agree on exactly) and the
    ceiling it came from. Refuses a file made elsewhere, for another spec, or edited."""
    import dataclasses

    from plansync.engine import ceiling
    from plansync.engine.planner import make_plan
    from plansync.gateway.breaker import NOT_TRIED
    from plansync.spec import loader

    mismatches = [f"{what} {theirs}, not {ours}" for what, theirs, ours in (
        ("merchant", reviewed.merchant_id, client.merchant_id),
        ("endpoint", reviewed.endpoint, client.endpoint),
        ("key fingerprint", reviewed.key_fingerprint, client.key_fingerprint),
    ) if theirs != ours]
    if mismatches:
        raise PlansyncError(f"plan file {plan_file} was made for {'; '.join(mismatches)}",
                            "make a new plan with these settings")
    spec_paths = list(paths) or [Path(p) for p in reviewed.spec_paths]
    desired, problems = loader.load(spec_paths)
    if problems or loader.digest(desired) != reviewed.spec_digest:
        raise PlansyncError(
            f"the spec in {', '.join(map(str, spec_paths))} is not the one plan file "
            f"{plan_file} was made from (the spec changed since, for example by a later "
            "merge, or the file was made from another spec); nothing was sent",
            "review a new plan of this spec: plansync plan --out FILE")
    forged = ceiling.forgeries(reviewed, desired)
    if forged:
        raise PlansyncError(
            f"plan file {plan_file} asks for what its spec does not: " + "; ".join(forged)
            + "; the file was edited or made from another spec, so nothing was sent",
            "apply only a plan file that plansync plan --out wrote, unedited")
    now = make_plan(desired, client, spec_digest=reviewed.spec_digest,
                    parallelism=parallelism, known_cancelled=known.cancelled,
                    managed_before=set(known.plans), spec_paths=reviewed.spec_paths)
    shared.stop_if_systemic(client, len(desired), sum(
        1 for change in now.changes if change.error and NOT_TRIED in change.error))
    within = ceiling.intersect(reviewed, now)
    return dataclasses.replace(reviewed, changes=within.agreed,
                               unmanaged=within.unmanaged), within


def _not_written(within: Any, say: ApplyReport) -> list[Any]:
    """Results for the reviewed changes that live moved away from since review, and a
    warning for the changes nobody reviewed: neither is written."""
    from plansync.engine.applier import Result
    from plansync.engine.plan import Action

    results = []
    for reviewed, now in within.moved:
        if now.action is Action.NO_OP:
            result = Result(reviewed.id, reviewed.name, reviewed.action, "unchanged",
                            "already as reviewed; nothing sent")
        elif now.action is Action.ERROR:
            result = Result(reviewed.id, reviewed.name, reviewed.action, "failed",
                            f"could not be planned again: {now.error}")
        else:
            result = Result(reviewed.id, reviewed.name, reviewed.action, "skipped",
                            "the live plan changed since review (the spec now means "
                            f"{now.action}{_fields(now)}); not written: review a new plan")
        results.append(result)
        say.result(result)
    for change in within.not_reviewed:
        say.warning(f"plan {change.id}: the spec now means {change.action}{_fields(change)},"
                    " which the reviewed plan does not hold; not written: review a new plan")
    return results


def _fields(change: Any) -> str:
    return f" of {', '.join(change.changed_fields)}" if change.changed_fields and \
        str(change.action) == "update" else ""


def _confirmed() -> bool:
    answer = click.prompt("Do you want to perform these actions?\n"
                          "  Only 'yes' will be accepted to approve.\n  Enter a value",
                          default="", show_default=False)
    return bool(answer == "yes")


STOP_GRACE = 3.0  # seconds a stopped run gives the writes in flight to be answered


class _Stop:
    """SIGINT/SIGTERM while writing: send no new write (the applier checks just before
    each send); give those in flight STOP_GRACE seconds to be answered, then cut them
    off (``cut_off``: each becomes an unknown outcome, journalled, that the next apply
    settles by inquiry), and save the state: the run ends within seconds. A further
    signal says what the run waits for. (Before the writes, a signal simply aborts.)"""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.waiting_for: Callable[[], dict[str, str]] = dict
        self.cut_off: Callable[[], None] = lambda: None

    @contextmanager
    def catching(self) -> Iterator[None]:
        def handler(signum: int, _frame: Any) -> None:
            if not self.event.is_set():
                self.signum = signum
                self.event.set()
                click.echo("Stopping: no new writes are sent; waiting up to "
                           f"{STOP_GRACE:g}s for those in flight...", err=True)
                cutting = threading.Timer(STOP_GRACE, self.cut_off)
                cutting.daemon = True
                cutting.start()
                return
            flying = self.waiting_for()
            named = ", ".join(f"plan {plan} ({action})" for plan, action in
                              sorted(flying.items())[:10]) + (", ..." if len(flying) > 10
                                                              else "")
            click.echo(f"Still stopping ({signal.Signals(signum).name}): waiting for "
                       + (f"{len(flying)} write(s) in flight to be answered and checked: "
                          f"{named}. Each is journalled: if this process is killed now, "
                          "the next apply settles them by inquiry."
                          if flying else "the state to be saved."), err=True)

        previous = {s: signal.signal(s, handler) for s in SIGNAL_EXIT}
        try:
            yield
        finally:
            for signum, old in previous.items():
                # A stopping run has released its lock and is about to exit 130/143: a
                # further signal now changes nothing. Ignored, not left to Python, which
                # restores the default action while it exits (killed by it, the run's
                # exit code and buffered output would be lost).
                signal.signal(signum, old if self.signum is None else signal.SIG_IGN)


_DURATION = re.compile(r"([0-9]+)([smh]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
_LONGEST = 24 * 3600  # no wait, for a lock or for a write to land, is longer than a day


def _seconds(duration: str, flag: str) -> float:
    """'0', '30s', '5m', '1h' → seconds: digits and an optional unit, nothing else (no
    sign, fraction, exponent, inf or nan); at most a day."""
    match = _DURATION.fullmatch(duration)
    if not match:
        raise click.BadParameter(f"{quoted(duration)} is not a duration: whole seconds, "
                                 "minutes or hours, such as 30s, 5m or 1h", param_hint=flag)
    # Digits only, so that the product is exact; more than 6 are more than a day (and
    # Python refuses to read more than 4300).
    seconds = int(match[1]) * _UNITS[match[2]] if len(match[1]) <= 6 else _LONGEST + 1
    if seconds > _LONGEST:
        shown = duration if len(duration) <= 20 else quoted(duration)
        raise click.BadParameter(f"{shown} is longer than a day (24h)", param_hint=flag)
    return float(seconds)


def _settle_window(seconds: float, given: str, read_timeout: float) -> float:
    """--settle-window, if the read timeout allows it (config.settle_window_problem)."""
    from plansync.config import settle_window_hint, settle_window_problem

    wrong = settle_window_problem(seconds, read_timeout)
    if wrong:
        raise click.BadParameter(f"{given} {wrong}; "
                                 + settle_window_hint(read_timeout, "it"),
                                 param_hint="--settle-window")
    return seconds


@contextlib.contextmanager
def _hint_how_to_wait() -> Iterator[None]:
    """A lock held by another run: say how apply can wait for it."""
    try:
        yield
    except LockError as exc:
        if exc.held_by is not None:
            exc.hint = ("wait for that run, retry with --lock-timeout, or if it is gone: "
                        f"plansync force-unlock {exc.held_by}")
        raise
