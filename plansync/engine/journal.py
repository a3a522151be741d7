"""The apply journal's records, and how they fold into the state. Pure.

An intent is journalled (durably, by the state backend) before every write is sent; an
outcome after the write is settled. Every run folds the whole journal into the state
(intents become pending writes, outcomes settle them), writes the state, and only then
clears the journal: so the state alone always holds what the journal said, and a crash
anywhere loses nothing.

Folding is idempotent: each record has an id, and the state lists the ids of the records
it holds that the journal may still hold. A crash before the state write leaves a state
without the journal's ids (folded next run); one between the write and the clear, a
state listing them all (the journal found again is skipped); one after the clear, ids the
journal no longer holds (forgotten at the next fold, so the list stays bounded).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from plansync.engine.state import (
    Audit,
    Entry,
    Intent,
    Outcome,
    State,
    entry_problem,
    valid_id,
)
from plansync.errors import PlansyncError

Record = Intent | Outcome | Audit


def fold(state: State, records: Iterable[Record]) -> State:
    """The state with the journal's records applied in order: what a crash kept from it.
    A record the state already holds (its id listed) is skipped. The first fold of a state
    read from storage is given the whole journal, as every caller does: the listed ids
    that the journal no longer holds are forgotten then."""
    records = list(records)
    if state.journal_unchecked:
        present = {record.id for record in records}
        state = dataclasses.replace(state, journal_ids=state.journal_ids & present,
                                    journal_unchecked=False)
    for record in records:
        if record.id in state.journal_ids:
            continue
        if isinstance(record, Intent):
            state = state.with_intent(record)
        elif isinstance(record, Audit):
            state = state.with_audit(record)
        else:
            state = state.with_outcome(record)
    return state


def decode_all(items: Iterable[tuple[str, Any]], load: Callable[[Any], Any],
               hint: str) -> list[Record]:
    """Records from (where, raw) pairs, each read by ``load``; the first that is no record
    is an error naming where it is."""
    found = []
    for where, raw in items:
        try:
            found.append(decode(load(raw)))
        except (ValueError, RecursionError):
            raise PlansyncError(f"{where}: not a plansync journal record", hint) from None
    return found


def encode(record: Record) -> dict[str, Any]:
    kind = {Intent: "intent", Outcome: "outcome", Audit: "audit"}[type(record)]
    return {"kind": kind, **dataclasses.asdict(record)}


def decode(data: Any) -> Record:
    """A record from its JSON form, every member checked. Raises ValueError."""
    try:
        if isinstance(data, dict) and "id" not in data:
            # Written by a plansync before records had ids: one from what it says, the
            # same each time the journal is read, so that it too is folded once.
            data["id"] = "sha256:" + hashlib.sha256(
                json.dumps(data, sort_keys=True).encode()).hexdigest()
        kind = data.pop("kind", None) if isinstance(data, dict) else None
        if kind == "intent":
            return Intent.from_dict(data)
        if kind == "audit":
            return Audit.from_dict(data)
        if kind == "outcome" and _outcome_shape(data):
            entry = data.pop("entry")
            if entry and entry_problem(entry):  # a number the one rule refuses
                raise ValueError("not a plansync journal record")
            audits = tuple(map(Audit.from_dict, data.pop("audits", [])))
            return Outcome(entry=Entry(**entry) if entry else None, audits=audits, **data)
    except (TypeError, KeyError, RecursionError):
        pass
    raise ValueError("not a plansync journal record")


_OUTCOME_TYPES = {"key": str, "plan": str, "result": str, "at": str}
_ENTRY_FIELDS = {f.name for f in dataclasses.fields(Entry)}
_ENTRY_LATER = {"cancelled_how"}  # added since: records of an older plansync lack it


def _outcome_shape(data: dict[str, Any]) -> bool:
    entry = data.get("entry")
    return (set(data) - {"audits", "id"} == {*_OUTCOME_TYPES, "entry"}
            and isinstance(data.get("audits", []), list)
            and valid_id(data.get("id", "none"))
            and all(isinstance(data[k], t) for k, t in _OUTCOME_TYPES.items())
            and (entry is None or (isinstance(entry, dict)
                                   and _ENTRY_FIELDS - _ENTRY_LATER <= set(entry) <= _ENTRY_FIELDS
                                   and isinstance(entry["applied"], dict)
                                   and isinstance(entry["seen"], dict)
                                   and isinstance(entry["cancelled"], bool))))
