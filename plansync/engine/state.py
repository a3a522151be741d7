"""The state: what plansync last applied, last saw, cancelled, and may still land. Pure.

One JSON document (schemas/state.schema.json) with ``version``, ``serial`` (one more on
every write: backends compare-and-set on it) and ``lineage`` (fixed at creation), tied to
one merchant and endpoint. Besides each plan's entry it holds the writes whose outcome is
not known yet (``pending``: intents folded in from the journal) and the saved plans
already applied (``applied_plans``), so that the state alone is everything the journal
ever said. Every journal record has an id; the state lists the ids of the records it
holds that the journal may still hold (``journal_ids``), so that a journal found again
beside the state that holds it (a run stopped between the state write and the journal
clear) is not folded twice. Where it is kept is a state backend's business
(engine/backends/).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from plansync import schema_files
from plansync.errors import PlansyncError

VERSION = 1
SCHEMA_NAME = "state.schema.json"


def new_id() -> str:
    """A journal record's id: unique, so that folding can tell a record seen before."""
    return uuid.uuid4().hex


# A record's id is bookkeeping, not what it says: records compare by what they say.
def _id_field() -> Any:
    return field(default_factory=new_id, compare=False)


def valid_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 100  # schemas/state.schema.json


@dataclass(frozen=True)
class Entry:
    """One plan's memory. Values use the spec's field names in JSON form ("99.90")."""

    applied: Mapping[str, Any] = field(default_factory=dict)
    applied_at: str | None = None
    seen: Mapping[str, Any] = field(default_factory=dict)
    seen_at: str | None = None
    cancelled: bool = False
    cancelled_at: str | None = None
    cancelled_how: str | None = None  # what showed the cancel took effect (answer, inquiry)


@dataclass(frozen=True)
class Intent:
    """A write about to be sent: journalled (fsynced) before it leaves."""

    key: str  # unique per write: run id and plan id
    plan: str
    action: str  # "update" | "cancel"
    after: Mapping[str, Any]  # target values, spec names, JSON form
    fingerprint: str  # the live state the write was decided on
    before_status: str  # live status then: tells a cancel's effect from a pause
    at: str  # when it was journalled, just before it was sent (UTC, ISO 8601)
    # For the audit trail, should the run stop before the write's audit is kept:
    by: Mapping[str, Any] = field(default_factory=dict)  # who sends it
    sent: Mapping[str, str] = field(default_factory=dict)  # the wire fields it sends
    id: str = _id_field()
    # Also for the audit (older states lack them): see Audit.
    name: str | None = None
    currency: str | None = None
    before: Mapping[str, Any] = field(default_factory=dict)
    origin: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sent_at(self) -> datetime:
        return parse_time(self.at)

    @classmethod
    def from_dict(cls, data: Any) -> Intent:
        """An intent from its JSON form, every member checked. Raises ValueError."""
        from plansync.fields import from_json

        if not isinstance(data, dict) or not _INTENT_MEMBERS <= set(data) <= _INTENT_ALL:
            raise ValueError("not an intent")
        intent = cls(**data)
        if not all(isinstance(getattr(intent, name), str) for name in _INTENT_MEMBERS - {"after"}):
            raise ValueError("an intent's members are text")
        if not valid_id(intent.id):
            raise ValueError("an intent's id is 1-100 characters")
        if intent.action not in ("update", "cancel") or not isinstance(intent.after, dict):
            raise ValueError("not an update or a cancel")
        if not (isinstance(intent.by, dict) and isinstance(intent.sent, dict)
                and all(isinstance(v, str) for v in intent.sent.values())
                and _context_problem(intent) is None):
            raise ValueError("an intent's audit members are of the wrong kind")
        try:
            if intent.sent_at > datetime.now(UTC) + FUTURE_SKEW:  # it would block the plan
                raise ValueError(f"it was sent at {intent.at}, in the future")
            for name, value in intent.after.items():
                from_json(name, value)
        except (TypeError, ArithmeticError, AttributeError) as exc:
            raise ValueError(str(exc)) from None
        return intent


FUTURE_SKEW = timedelta(hours=1)  # clocks disagree; a write journalled later was edited
_INTENT_MEMBERS = frozenset(("key", "plan", "action", "after", "fingerprint", "before_status",
                             "at"))
_INTENT_ALL = _INTENT_MEMBERS | {"by", "sent", "id", "name", "currency", "before",
                                 "origin"}  # older states lack them


@dataclass(frozen=True)
class Audit:
    """One write sent to the gateway, for change audits (PCI DSS requirement 10): when it
    left, who sent it from where, to which plan, what it changed (before and after), the
    answer, and the plan file or spec (and commit) it came from.

    Records of an older plansync lack the members after ``id``: they load, and are
    written back as they were (``audit_document``)."""

    at: str  # when the write left (its last attempt's send), UTC, ISO 8601
    by: Mapping[str, Any]  # user, host, ci_url (without credentials)
    plan: str
    process_type: str  # "U" | "C"
    sent: Mapping[str, str]  # the wire fields sent (no card data: plans carry none)
    resp_code: str  # the answer's respCode; "" when the answer was lost
    key: str = ""  # the intent it was sent under
    id: str = _id_field()
    name: str | None = None  # the plan's label in the spec
    currency: str | None = None  # ISO 4217 alpha: the amounts' currency
    # The fields the write changes, by the spec's names in JSON form (amounts in major
    # units): as live had them just before it was sent, and as it wants them. A cancel:
    # {"status": "active"} -> {"status": "cancelled"}.
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    # Where the write came from: "plan_file" (apply --plan) or "specs" (paths, as given),
    # and "commit" (the git commit of the spec, "" when not known).
    origin: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> Audit:
        if not isinstance(data, dict) or not _AUDIT_MEMBERS <= set(data) <= _AUDIT_ALL:
            raise ValueError("not an audit record")
        if "id" not in data:  # an older plansync's: the same id at every read, from what
            # the record holds (a record archived twice is then seen to be one)
            import hashlib
            import json

            text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
            data = {**data, "id": hashlib.sha256(text.encode()).hexdigest()[:32]}
        audit = cls(**data)
        if not (isinstance(audit.by, dict) and isinstance(audit.sent, dict)
                and all(isinstance(getattr(audit, n), str)
                        for n in ("at", "plan", "process_type", "resp_code", "key"))
                and valid_id(audit.id) and isinstance(audit.after, dict)
                and _context_problem(audit) is None):
            raise ValueError("an audit record's members are of the wrong kind")
        return audit


_AUDIT_MEMBERS = frozenset(("at", "by", "plan", "process_type", "sent", "resp_code"))
_AUDIT_LATER = ("name", "currency", "before", "after", "origin")  # issue 24: may be absent
_AUDIT_ALL = _AUDIT_MEMBERS | {"key", "id", *_AUDIT_LATER}  # older states lack them


def _context_problem(record: Intent | Audit) -> str | None:
    """What is wrong with the audit context an intent or an audit carries, or None."""
    if not all(isinstance(getattr(record, n), str | None) for n in ("name", "currency")):
        return "name and currency are text"
    if not isinstance(record.before, dict) or not isinstance(record.origin, dict):
        return "before and origin are objects"
    return None


def audit_document(audit: Audit) -> dict[str, Any]:
    """An audit's JSON form, as the state and an archive hold it: the members added since
    are left out while empty, so that a record an older plansync wrote stays as it was."""
    data = dataclasses.asdict(audit)
    for name in _AUDIT_LATER:
        if not data[name]:
            del data[name]
    return data


@dataclass(frozen=True)
class Outcome:
    key: str
    plan: str
    result: str  # "applied" | "not-applied" | "failed"
    entry: Entry | None  # the plan's state entry afterwards, if it changed
    at: str
    # The writes sent under this intent, kept with its outcome: one journal record, not
    # two, per write (a remote journal pays a round trip for each).
    audits: tuple[Audit, ...] = ()
    id: str = _id_field()


@dataclass(frozen=True)
class AppliedPlan:
    """A saved plan file applied: when, by which run (its CI URL, when there is one), and
    whether that run wrote every reviewed change (False until it has; None: not recorded,
    by a plansync before this was kept)."""

    at: str
    by: str | None = None
    complete: bool | None = False

    @classmethod
    def from_json(cls, data: Any) -> AppliedPlan:
        # States written before the run was recorded hold the time alone.
        if isinstance(data, str):
            return cls(data, None, None)
        return cls(data["at"], data.get("by"), data.get("complete"))


@dataclass(frozen=True)
class State:
    merchant_id: str
    endpoint: str
    lineage: str = field(default_factory=lambda: str(uuid.uuid4()))
    serial: int = 0
    plans: Mapping[str, Entry] = field(default_factory=dict)
    pending: Mapping[str, Intent] = field(default_factory=dict)  # by intent key
    applied_plans: Mapping[str, AppliedPlan] = field(default_factory=dict)  # by digest
    history: tuple[Audit, ...] = ()  # every write sent, oldest first
    # The ids of the journal records folded into this state that the journal may still
    # hold: those of the records this run journalled, and of the journal it found.
    journal_ids: frozenset[str] = frozenset()
    # True when journal_ids were read from storage: some may name records cleared from
    # the journal since. The first fold, given the whole journal, forgets those.
    journal_unchecked: bool = field(default=False, compare=False)

    @property
    def cancelled(self) -> frozenset[str]:
        return frozenset(plan_id for plan_id, e in self.plans.items() if e.cancelled)

    def pending_for(self, plan_id: str) -> list[Intent]:
        return [intent for intent in self.pending.values() if intent.plan == plan_id]

    def with_entry(self, plan_id: str, entry: Entry) -> State:
        return dataclasses.replace(self, plans={**self.plans, plan_id: entry})

    def without(self, plan_ids: set[str]) -> State:
        return dataclasses.replace(
            self, plans={k: v for k, v in self.plans.items() if k not in plan_ids})

    def with_intent(self, intent: Intent) -> State:
        return dataclasses.replace(self, pending={**self.pending, intent.key: intent},
                                   journal_ids=self.journal_ids | {intent.id})

    def with_outcome(self, outcome: Outcome) -> State:
        """The outcome's entry recorded, its audits kept and its write no longer pending."""
        pending = {k: v for k, v in self.pending.items() if k != outcome.key}
        plans = self.plans if outcome.entry is None else {**self.plans,
                                                          outcome.plan: outcome.entry}
        return dataclasses.replace(self, plans=plans, pending=pending,
                                   history=(*self.history, *outcome.audits),
                                   journal_ids=self.journal_ids | {outcome.id})

    def with_audit(self, audit: Audit) -> State:
        return dataclasses.replace(self, history=(*self.history, audit),
                                   journal_ids=self.journal_ids | {audit.id})

    def with_applied_plan(self, digest: str, at: str, by: str | None = None) -> State:
        return dataclasses.replace(self, applied_plans={**self.applied_plans,
                                                        digest: AppliedPlan(at, by)})

    def with_plan_complete(self, digest: str) -> State:
        done = dataclasses.replace(self.applied_plans[digest], complete=True)
        return dataclasses.replace(self, applied_plans={**self.applied_plans, digest: done})


def now(timespec: str = "milliseconds") -> str:
    return datetime.now(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """A moment in UTC. Raises ValueError, or OverflowError for one that is in the
    calendar only in its own offset (0001-01-01T00:00:00+14:00 is in year 0 in UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def bound(found: State | None, merchant_id: str, endpoint: str, where: str) -> State:
    """``found`` (a new, empty state if there is none yet), if it belongs to this merchant
    and endpoint: another's cancellations would be misremembered."""
    if found is None:
        return State(merchant_id, endpoint)
    if (found.merchant_id, found.endpoint) != (merchant_id, endpoint):
        raise PlansyncError(
            f"the state in {where} belongs to merchant {found.merchant_id} at "
            f"{found.endpoint}, not {merchant_id} at {endpoint}",
            "use one state, or one workspace of a state, per merchant and endpoint "
            "(README: Workspaces)")
    return found


def from_document(data: Any, where: str, hint: str) -> State:
    """A state from its JSON form, every member checked; ``where`` names it in errors."""
    problem = schema_files.first_problem(SCHEMA_NAME, data)
    if problem is not None:
        raise PlansyncError(f"{where} is not a plansync state: {problem}", hint)
    try:
        pending = {i.key: i for i in map(Intent.from_dict, data.get("pending", []))}
    except ValueError as exc:
        raise PlansyncError(f"{where} holds a pending write that cannot be read: {exc}",
                            hint) from None
    try:
        history = tuple(map(Audit.from_dict, data.get("history", [])))
    except ValueError as exc:
        raise PlansyncError(f"{where} holds a history record that cannot be read: {exc}",
                            hint) from None
    if type(data["serial"]) is not int:  # JSON Schema takes 5.0 for an integer
        raise PlansyncError(f"{where} is not a plansync state: serial {data['serial']!r} is "
                            "not a whole number", hint)
    for plan_id, entry in data["plans"].items():
        problem = entry_problem(entry)
        if problem:
            raise PlansyncError(f"{where} is not a plansync state: plan {plan_id}: {problem}",
                                hint)
    return State(
        merchant_id=data["merchant_id"], endpoint=data["endpoint"], lineage=data["lineage"],
        serial=data["serial"],
        plans={plan_id: Entry(**entry) for plan_id, entry in data["plans"].items()},
        pending=pending, applied_plans={digest: AppliedPlan.from_json(done) for digest, done
                                        in data.get("applied_plans", {}).items()},
        history=history, journal_ids=frozenset(data.get("journal_ids", [])),
        journal_unchecked=True,
    )


def entry_problem(entry: Mapping[str, Any]) -> str | None:
    """What is wrong with an entry's values (JSON Schema takes 7.0 for an integer; the
    one rule for numbers does not), or None."""
    from plansync.fields import values_from_json

    for name in ("applied_at", "seen_at", "cancelled_at", "cancelled_how"):
        # (The schema says so of a state; a journal's outcome is checked here alone.)
        if not isinstance(entry.get(name), str | None):
            return f"{name} is neither text nor null"
    for part in ("applied", "seen"):
        try:
            values_from_json(entry.get(part) or {})
        except (ValueError, TypeError, ArithmeticError) as exc:
            return f"{part}.{exc}"
    return None


def document(state: State) -> dict[str, Any]:
    """The state's JSON form (schemas/state.schema.json)."""
    data: dict[str, Any] = {
        "version": VERSION, "serial": state.serial, "lineage": state.lineage,
        "merchant_id": state.merchant_id, "endpoint": state.endpoint,
        "plans": {plan_id: dataclasses.asdict(entry)
                  for plan_id, entry in sorted(state.plans.items())},
    }
    if state.pending:
        data["pending"] = [dataclasses.asdict(intent) for intent in state.pending.values()]
    if state.applied_plans:
        data["applied_plans"] = {digest: dataclasses.asdict(done)
                                 for digest, done in sorted(state.applied_plans.items())}
    if state.history:
        data["history"] = [audit_document(audit) for audit in state.history]
    if state.journal_ids:
        data["journal_ids"] = sorted(state.journal_ids)
    return data
