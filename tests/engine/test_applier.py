"""The applier in-process, against the emulator over HTTP: what it journals per write."""

from pathlib import Path

from plansync.emulator.server import Emulator
from plansync.engine import journal
from plansync.engine.applier import Applier, Options
from plansync.engine.diff import Change
from plansync.engine.planner import make_plan
from plansync.engine.state import Audit, Intent, Outcome, State
from plansync.gateway.client import GatewayClient
from plansync.spec import loader

ACTOR = {"user": "ana", "host": "ci-7", "ci_url": None}


class Journal(list[journal.Record]):
    def append(self, record: journal.Record) -> None:
        super().append(record)


def changes(client: GatewayClient, tmp_path: Path, body: str) -> list[Change]:
    spec = tmp_path / "spec.yaml"
    spec.write_text("apiVersion: plansync/v1\nkind: RecurringPlans\nplans:\n" + body)
    desired, problems = loader.load([spec])
    assert problems == []
    return list(make_plan(desired, client, spec_digest="sha256:x").changes)


def applier(client: GatewayClient, log: Journal, state: State) -> Applier:
    return Applier(client, log, state, Options(actor=ACTOR))


def test_a_write_journals_its_intent_and_an_outcome_that_carries_its_audit(
        client: GatewayClient, emulator: Emulator, tmp_path: Path) -> None:
    # Two journal records per write, not three: a remote state (S3) pays a round trip each.
    log = Journal()
    worker = applier(client, log, State("JT01", emulator.url))
    planned = changes(client, tmp_path, "  - {id: '156142', amount: '120.00'}\n"
                                        "  - {id: '156143', status: cancelled}\n")
    results = {r.id: r.result for r in worker.apply(planned)}
    assert results == {"156142": "updated", "156143": "cancelled"}
    assert sorted(type(r).__name__ for r in log) == ["Intent", "Intent", "Outcome", "Outcome"]
    outcomes = [r for r in log if isinstance(r, Outcome)]
    audits = {o.plan: o.audits for o in outcomes}
    [update] = audits["156142"]
    assert (update.process_type, update.resp_code, update.by) == ("U", "00", ACTOR)
    assert update.sent["amount"] == "000000012000" and update.key.endswith(":156142")
    assert [a.process_type for a in audits["156143"]] == ["C"]
    assert [a.plan for a in worker.state.history] == [o.plan for o in outcomes]


def test_a_write_of_a_run_that_stopped_before_its_audit_is_audited_on_recovery(
        client: GatewayClient, emulator: Emulator, tmp_path: Path) -> None:
    # The earlier run journalled the intent (who, what) and was killed before the answer.
    planned = changes(client, tmp_path, "  - {id: '156143', status: cancelled}\n")
    first_log = Journal()
    first = applier(client, first_log, State("JT01", emulator.url))
    list(first.apply(planned))
    intent = next(r for r in first_log if isinstance(r, Intent))
    assert intent.by == ACTOR and intent.sent == {"processType": "C"}
    crashed = journal.fold(State("JT01", emulator.url), [intent])

    log = Journal()
    again = applier(client, log, crashed)
    [(_, settled)] = again.recover()
    assert settled.result == "applied", settled
    [outcome] = log
    assert isinstance(outcome, Outcome)
    assert outcome.audits == (Audit(at=intent.at, by=ACTOR, plan="156143", process_type="C",
                                    sent={}, resp_code="", key=intent.key),)
    assert again.state.history == outcome.audits and again.state.pending == {}


def test_an_audit_kept_alone_for_a_pending_write_is_not_made_again_on_recovery(
        client: GatewayClient, emulator: Emulator, tmp_path: Path) -> None:
    planned = changes(client, tmp_path, "  - {id: '156143', status: cancelled}\n")
    first_log = Journal()
    list(applier(client, first_log, State("JT01", emulator.url)).apply(planned))
    intent = next(r for r in first_log if isinstance(r, Intent))
    [kept] = next(r for r in first_log if isinstance(r, Outcome)).audits
    # As if the write had stayed pending: its audit journalled alone after the intent.
    earlier = journal.fold(State("JT01", emulator.url), [intent, kept])
    log = Journal()
    [(_, settled)] = applier(client, log, earlier).recover()
    assert settled.result == "applied"
    [outcome] = log
    assert isinstance(outcome, Outcome) and outcome.audits == ()
    assert journal.fold(earlier, log).history == (kept,)
