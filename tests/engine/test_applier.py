"""The applier's decision table, in-process and fast: the real client and envelope over
the emulator's gateway (tests/inprocess.py), faults scripted per request, time moved
by hand. What each write journals, when it counts, when it is pending, when it is sent
again — and that nothing is written twice."""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from plansync.config import Gateway
from plansync.emulator import home
from plansync.engine import journal
from plansync.engine.applier import Applier, Options
from plansync.engine.fanout import workers_for
from plansync.engine.plan import Change
from plansync.engine.planner import make_plan
from plansync.engine.state import Audit, Intent, Outcome, State, parse_time
from plansync.gateway import messages
from plansync.gateway.client import GatewayClient, RetryPolicy
from plansync.spec import loader
from tests.helpers import Sleeps
from tests.inprocess import LATE, LOST, NOT_FOUND, PASS, REFUSED, InProcessGateway

ACTOR = {"user": "ana", "host": "ci-7", "ci_url": None}
URL = "https://gateway.example/PaymentAction/2.0/action"
WINDOW = timedelta(seconds=90)


class Journal(list[journal.Record]):
    def append(self, record: journal.Record) -> None:
        super().append(record)


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@pytest.fixture
def gateway(emulator_dir: Path) -> Iterator[InProcessGateway]:
    running = InProcessGateway(emulator_dir)
    yield running
    running.close()


@pytest.fixture
def client(gateway: InProcessGateway, emulator_dir: Path) -> Iterator[GatewayClient]:
    envelope = Gateway(URL, "JT01", emulator_dir / home.MERCHANT_PRIVATE,
                        emulator_dir / home.GATEWAY_PUBLIC).envelope()
    with GatewayClient(URL, "JT01", envelope, gateway, retry=RetryPolicy(attempts=2),
                       sleep=Sleeps()) as made:
        yield made


@pytest.fixture
def clock() -> Clock:
    return Clock()


def changes(client: GatewayClient, tmp_path: Path, *lines: str) -> list[Change]:
    spec = tmp_path / "spec.yaml"
    spec.write_text("apiVersion: plansync/v1\nkind: RecurringPlans\nplans:\n"
                    + "".join(f"  - {line}\n" for line in lines))
    desired, problems = loader.load([spec])
    assert problems == []
    return list(make_plan(desired, client, spec_digest="sha256:x").changes)


def applier(client: GatewayClient, log: Journal, state: State, clock: Clock) -> Applier:
    return Applier(client, log, state, Options(actor=ACTOR, settle_window=WINDOW,
                                               clock=clock))


def results(worker: Applier, planned: list[Change]) -> dict[str, str]:
    return {r.id: r.result for r in worker.apply(planned)}


# --- what a write journals -----------------------------------------------------------

def test_a_write_journals_its_intent_and_an_outcome_that_carries_its_audit(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    # Two journal records per write, not three: a remote state (S3) pays a round trip each.
    log = Journal()
    worker = applier(client, log, State("JT01", URL), clock)
    planned = changes(client, tmp_path, "{id: '156142', amount: '120.00'}",
                      "{id: '156143', status: cancelled}")
    assert results(worker, planned) == {"156142": "updated", "156143": "cancelled"}
    assert sorted(type(r).__name__ for r in log) == ["Intent", "Intent", "Outcome", "Outcome"]
    outcomes = [r for r in log if isinstance(r, Outcome)]
    audits = {o.plan: o.audits for o in outcomes}
    [update] = audits["156142"]
    assert (update.process_type, update.resp_code, update.by) == ("U", "00", ACTOR)
    assert update.sent["amount"] == "000000012000" and update.key.endswith(":156142")
    assert [a.process_type for a in audits["156143"]] == ["C"]
    assert [a.plan for a in worker.state.history] == [o.plan for o in outcomes]


class SlowWrites:
    """The in-process gateway, noting when each update or cancel reached it and answering
    it 30 ms later: an audit's time is the write's own send time, not its answer's."""

    def __init__(self, gateway: InProcessGateway) -> None:
        self.gateway = gateway
        self.received: dict[str, datetime] = {}

    def post(self, body: bytes, before: Any = None) -> Any:
        if before is not None:
            before()
        request = messages.parse_flat(self.gateway.envelope.open(body), messages.REQUEST_ROOT)
        if request["processType"] in ("U", "C"):
            self.received[request["recurringUniqueID"]] = datetime.now(UTC)
            time.sleep(0.03)
        return self.gateway.post(body)

    def abort(self) -> None:
        pass

    def cut(self, why: str) -> None:
        pass

    def close(self) -> None:
        pass  # the gateway fixture closes the gateway


def test_each_audit_holds_its_send_time_and_what_it_changed(
        gateway: InProcessGateway, emulator_dir: Path, clock: Clock, tmp_path: Path) -> None:
    slow = SlowWrites(gateway)
    envelope = Gateway(URL, "JT01", emulator_dir / home.MERCHANT_PRIVATE,
                       emulator_dir / home.GATEWAY_PUBLIC).envelope()
    origin = {"specs": ["spec.yaml"], "commit": "a" * 40}
    with GatewayClient(URL, "JT01", envelope, slow, retry=RetryPolicy(attempts=2),
                       sleep=Sleeps()) as client:
        planned = changes(client, tmp_path, "{id: '156142', name: gold, amount: '120.00'}",
                          "{id: '156143', status: cancelled}")
        worker = Applier(client, Journal(), State("JT01", URL), Options(
            actor=ACTOR, settle_window=WINDOW, clock=clock, origin=origin, parallelism=1))
        assert results(worker, planned) == {"156142": "updated", "156143": "cancelled"}
    audits = {audit.plan: audit for audit in worker.state.history}
    for plan_id, audit in audits.items():  # sent before it reached the gateway
        assert parse_time(audit.at) <= slow.received[plan_id], (audit.at, plan_id)
    # Each its own time (the order of the two sends is the applier's to choose).
    assert audits["156142"].at != audits["156143"].at
    update = audits["156142"]
    assert (update.name, update.currency, update.before, update.after, update.origin) == (
        "gold", "SGD", {"amount": "99.90"}, {"amount": "120.00"}, origin)
    cancel = audits["156143"]
    assert (cancel.before, cancel.after, cancel.currency) == (
        {"status": "active"}, {"status": "cancelled"}, "THB")


def test_a_write_of_a_run_that_stopped_before_its_audit_is_audited_on_recovery(
        client: GatewayClient, clock: Clock, tmp_path: Path) -> None:
    # The earlier run journalled the intent (who, what) and was killed before the answer.
    planned = changes(client, tmp_path, "{id: '156143', status: cancelled}")
    first_log = Journal()
    list(applier(client, first_log, State("JT01", URL), clock).apply(planned))
    intent = next(r for r in first_log if isinstance(r, Intent))
    # As the guide's cancel sample: the live record's status, amount and allowAccumulate.
    carried = {"recurringStatus": "Y", "amount": "000000049900", "allowAccumulate": "Y"}
    assert intent.by == ACTOR and intent.sent == {"processType": "C", **carried}
    crashed = journal.fold(State("JT01", URL), [intent])

    log = Journal()
    again = applier(client, log, crashed, clock)
    [(_, settled)] = again.recover()
    assert settled.result == "applied", settled
    [outcome] = log
    assert isinstance(outcome, Outcome)
    assert outcome.audits == (Audit(at=intent.at, by=ACTOR, plan="156143", process_type="C",
                                    sent=carried, resp_code="", key=intent.key,
                                    currency="THB", before={"status": "active"},
                                    after={"status": "cancelled"}),)
    assert again.state.history == outcome.audits and again.state.pending == {}


def test_an_audit_kept_alone_for_a_pending_write_is_not_made_again_on_recovery(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    planned = changes(client, tmp_path, "{id: '156143', status: cancelled}")
    gateway.script("156143", "C", LATE)
    first_log = Journal()
    assert results(applier(client, first_log, State("JT01", URL), clock), planned) == \
        {"156143": "pending"}
    intent, kept = first_log  # no outcome yet: the audit is journalled alone
    assert isinstance(intent, Intent) and isinstance(kept, Audit) and kept.resp_code == ""
    gateway.commit_late()
    earlier = journal.fold(State("JT01", URL), first_log)
    log = Journal()
    [(_, settled)] = applier(client, log, earlier, clock).recover()
    assert settled.result == "applied"
    [outcome] = log
    assert isinstance(outcome, Outcome) and outcome.audits == ()
    assert journal.fold(earlier, log).history == (kept,)


# --- when a write counts, waits, or is sent again ------------------------------------

def test_a_write_whose_answer_is_lost_counts_once_inquiry_shows_it(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    gateway.script("156142", "U", LOST)
    worker = applier(client, Journal(), State("JT01", URL), clock)
    planned = changes(client, tmp_path, "{id: '156142', amount: '120.00'}")
    assert results(worker, planned) == {"156142": "updated"}
    assert gateway.writes("156142") == [("U", "00")]  # not sent again
    assert worker.state.pending == {}


def test_a_write_not_showing_yet_is_pending_then_settled_without_a_second_send(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    gateway.script("156142", "U", LATE)
    log = Journal()
    worker = applier(client, log, State("JT01", URL), clock)
    planned = changes(client, tmp_path, "{id: '156142', amount: '120.00'}")
    assert results(worker, planned) == {"156142": "pending"}
    # Within the window, a newer plan for it is not written either.
    newer = changes(client, tmp_path, "{id: '156142', amount: '130.00'}")
    assert results(applier(client, log, worker.state, clock), newer) == {"156142": "pending"}
    gateway.commit_late()
    [(_, settled)] = applier(client, log, worker.state, clock).recover()
    assert settled.result == "applied"
    assert gateway.writes("156142") == [("U", "00")]


def test_after_the_window_a_write_that_never_landed_is_not_applied_and_sent_again(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    gateway.script("156142", "U", LATE)  # and never committed
    log = Journal()
    worker = applier(client, log, State("JT01", URL), clock)
    planned = changes(client, tmp_path, "{id: '156142', amount: '120.00'}")
    assert results(worker, planned) == {"156142": "pending"}
    clock.advance(WINDOW)
    again = applier(client, log, worker.state, clock)
    [(_, settled)] = again.recover()
    assert settled.result == "not-applied"
    assert results(again, changes(client, tmp_path, "{id: '156142', amount: '120.00'}")) == \
        {"156142": "updated"}
    assert gateway.writes("156142") == [("U", "00")]  # the one that landed


def test_after_the_window_a_plan_changed_by_someone_else_is_failed_not_resent(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    gateway.script("156142", "U", LATE)
    worker = applier(client, Journal(), State("JT01", URL), clock)
    planned = changes(client, tmp_path, "{id: '156142', amount: '120.00'}")
    assert results(worker, planned) == {"156142": "pending"}
    gateway.set_live("156142", recurringCount="36")
    clock.advance(WINDOW)
    [(_, settled)] = applier(client, Journal(), worker.state, clock).recover()
    assert (settled.result, settled.detail) == (
        "failed", "the plan changed in another way during the write; run plan again")
    assert gateway.writes("156142") == []  # the late write never landed; not resent


def test_a_paused_plan_whose_cancel_was_lost_is_cancelled_again_after_the_window(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    # Paused and cancelled inquire alike: only a second cancel can tell (12 or 00).
    gateway.script("156145", "C", LOST)
    worker = applier(client, Journal(), State("JT01", URL), clock)
    planned = changes(client, tmp_path, "{id: '156145', status: cancelled}")
    assert results(worker, planned) == {"156145": "pending"}
    clock.advance(WINDOW)
    again = applier(client, Journal(), worker.state, clock)
    [(_, settled)] = again.recover()
    assert settled.result == "applied"
    assert gateway.writes("156145") == [("C", "00"), ("C", "12")]
    assert [a.resp_code for a in again.state.history] == ["", "12"]  # lost, then 12
    assert again.state.plans["156145"].cancelled


@pytest.mark.parametrize(("plan_id", "detail"), [
    ("156142", "the gateway answered 16 to the cancel, yet inquiry shows the plan active: it "
               "is not cancelled; ask 2C2P what the answer means for this plan"),
    ("156145", "the gateway answered 16 to the cancel and inquiry shows the plan inactive, as "
               "it was before: paused and cancelled look alike and plansync never sent it a "
               "cancel before, so it is not counted as cancelled; check the plan with 2C2P"),
])
def test_a_16_to_the_first_cancel_is_not_counted_unless_inquiry_shows_a_cancel(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path, plan_id: str, detail: str) -> None:
    planned = changes(client, tmp_path, f"{{id: '{plan_id}', status: cancelled}}")
    gateway.script(plan_id, "C", NOT_FOUND)  # 156142 is active, 156145 paused
    worker = applier(client, Journal(), State("JT01", URL), clock)
    [result] = worker.apply(planned)
    assert (result.result, result.detail) == ("failed", detail)
    assert plan_id not in worker.state.plans and worker.state.pending == {}
    assert [a.resp_code for a in worker.state.history] == ["16"]


def test_a_cancel_records_how_it_was_seen_to_take_effect(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    # Active before the cancel, inactive after it: inquiry shows the change.
    planned = changes(client, tmp_path, "{id: '156142', status: cancelled}")
    gateway.script("156142", "C", LOST)  # does the work; its answer lost ...
    worker = applier(client, Journal(), State("JT01", URL), clock)
    assert results(worker, planned) == {"156142": "cancelled"}
    assert worker.state.plans["156142"].cancelled_how == (
        "its answer was lost, and inquiry shows the plan inactive (active before)")


def test_a_12_or_16_to_a_cancel_whose_inquiry_then_fails_is_never_counted_as_cancelled(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    gateway.set_live("156145", recurringStatus="N")  # paused: inactive, like cancelled
    planned = changes(client, tmp_path, "{id: '156145', status: cancelled}")
    gateway.script("156145", "C", NOT_FOUND)
    gateway.script("156145", "I", PASS, REFUSED, REFUSED)  # the inquiry after the cancel fails
    worker = applier(client, Journal(), State("JT01", URL), clock)
    [result] = worker.apply(planned)
    assert result.result == "failed"
    assert result.detail.startswith("the gateway answered 16 to the cancel, and the inquiry "
                                    "to tell whether the plan is cancelled failed")
    assert "156145" not in worker.state.plans and worker.state.pending == {}


def test_a_cancel_whose_answer_was_lost_counts_when_inquiry_no_longer_finds_the_plan(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    # A gateway that forgets cancelled plans: 16 to the inquiry after our cancel.
    planned = changes(client, tmp_path, "{id: '156145', status: cancelled}")
    gateway.script("156145", "C", LOST)
    gateway.script("156145", "I", PASS, NOT_FOUND)
    worker = applier(client, Journal(), State("JT01", URL), clock)
    [result] = worker.apply(planned)
    assert result.result == "cancelled"
    entry = worker.state.plans["156145"]
    assert entry.cancelled and entry.cancelled_how == (
        "inquiry no longer finds the plan (16) after the cancel")
    assert gateway.writes("156145") == [("C", "00")]


def test_an_update_whose_inquiry_finds_no_plan_stays_pending(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    planned = changes(client, tmp_path, "{id: '156142', amount: '120.00'}")
    gateway.script("156142", "U", LOST)
    gateway.script("156142", "I", PASS, NOT_FOUND, NOT_FOUND)
    worker = applier(client, Journal(), State("JT01", URL), clock)
    assert results(worker, planned) == {"156142": "pending"}  # 16 proves nothing of an update


def test_a_plan_that_moved_since_the_plan_was_made_is_skipped_unsent(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    planned = changes(client, tmp_path, "{id: '156142', amount: '120.00'}")
    gateway.set_live("156142", recurringCount="36")
    log = Journal()
    assert results(applier(client, log, State("JT01", URL), clock), planned) == \
        {"156142": "skipped"}
    assert log == [] and gateway.writes("156142") == []


def test_a_write_known_not_to_have_left_fails_and_is_not_pending(
        client: GatewayClient, gateway: InProcessGateway, clock: Clock,
        tmp_path: Path) -> None:
    gateway.script("156142", "U", REFUSED, REFUSED)  # both attempts
    log = Journal()
    worker = applier(client, log, State("JT01", URL), clock)
    planned = changes(client, tmp_path, "{id: '156142', amount: '120.00'}")
    assert results(worker, planned) == {"156142": "failed"}
    assert worker.state.pending == {} and worker.state.history == ()  # nothing was sent
    assert [type(r).__name__ for r in log] == ["Intent", "Outcome"]
    assert gateway.writes("156142") == []


# --- concurrency: --parallelism decides it in the engine -------------------------------

class _Counting:
    """Wraps a client: how many inquiries ran at once, at most."""

    def __init__(self, client: GatewayClient) -> None:
        self.client, self.most, self._now = client, 0, 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> object:
        return getattr(self.client, name)

    def inquire(self, plan_id: str) -> object:
        with self._lock:
            self._now += 1
            self.most = max(self.most, self._now)
        try:
            time.sleep(0.02)
            return self.client.inquire(plan_id)
        finally:
            with self._lock:
                self._now -= 1


@pytest.mark.parametrize("parallelism", [1, 4])
def test_the_engine_runs_as_many_inquiries_at_once_as_parallelism_says(
        client: GatewayClient, tmp_path: Path, parallelism: int) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("apiVersion: plansync/v1\nkind: RecurringPlans\nplans:\n" + "".join(
        f"  - {{id: '{plan_id}', amount: '1.00'}}\n" for plan_id in range(1, 41)))
    desired, _ = loader.load([spec])
    counting = _Counting(client)
    make_plan(desired, counting, spec_digest="sha256:x",  # type: ignore[arg-type]
              parallelism=parallelism)
    assert counting.most == workers_for(parallelism)
