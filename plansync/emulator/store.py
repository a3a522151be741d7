"""The emulator's plans and request log, in SQLite (a file with --db, else memory).

Plans are kept in the gateway's own wire format ({"amount": "000000009990", …}), as the
real gateway would hand them back, so nothing here knows about Decimals or dates.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (
    merchant_id TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    fields TEXT NOT NULL,
    cancelled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, plan_id)
);
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    merchant_id TEXT NOT NULL DEFAULT '',
    process_type TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    resp_code TEXT NOT NULL,
    fault TEXT
);
"""


@dataclass(frozen=True)
class StoredPlan:
    merchant_id: str
    plan_id: str
    fields: Mapping[str, str]
    cancelled: bool


class PlanStore:
    """Thread-safe: the HTTP server calls it from one thread per connection."""

    def __init__(self, path: str = ":memory:") -> None:
        self._lock = threading.Lock()
        # Reads are most of the traffic; SQLite stays the record, this only spares it.
        self._cache: dict[tuple[str, str], StoredPlan] = {}
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        # A --db file from before the log named the merchant: its log gains the column.
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(log)")}
        if "merchant_id" not in columns:
            self._db.execute("ALTER TABLE log ADD COLUMN merchant_id TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def is_empty(self) -> bool:
        with self._lock:
            count: int = self._db.execute("SELECT COUNT(*) FROM plans").fetchone()[0]
        return count == 0

    def load(self, plans: Iterable[StoredPlan], clear: bool = False) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._cache.clear()
            if clear:
                self._db.execute("DELETE FROM plans")
                self._db.execute("DELETE FROM log")
            self._db.executemany(
                "INSERT OR REPLACE INTO plans VALUES (?, ?, ?, ?)",
                [(p.merchant_id, p.plan_id, json.dumps(dict(p.fields)), int(p.cancelled))
                 for p in plans])

    def get(self, merchant_id: str, plan_id: str) -> StoredPlan | None:
        with self._lock:
            cached = self._cache.get((merchant_id, plan_id))
            if cached is not None:
                return cached
            row = self._db.execute(
                "SELECT merchant_id, plan_id, fields, cancelled FROM plans "
                "WHERE merchant_id = ? AND plan_id = ?", (merchant_id, plan_id)).fetchone()
            if row is None:
                return None
            plan = self._cache[(merchant_id, plan_id)] = _plan(row)
            return plan

    def update(self, merchant_id: str, plan_id: str, changes: Mapping[str, str]) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            (raw,) = self._db.execute(
                "SELECT fields FROM plans WHERE merchant_id = ? AND plan_id = ?",
                (merchant_id, plan_id)).fetchone()
            fields = json.loads(raw) | dict(changes)
            self._cache.pop((merchant_id, plan_id), None)
            self._db.execute(
                "UPDATE plans SET fields = ? WHERE merchant_id = ? AND plan_id = ?",
                (json.dumps(fields), merchant_id, plan_id))

    def cancel(self, merchant_id: str, plan_id: str) -> None:
        with self._lock:
            self._cache.pop((merchant_id, plan_id), None)
            self._db.execute(
                "UPDATE plans SET cancelled = 1, "
                "fields = json_set(fields, '$.recurringStatus', 'N') "
                "WHERE merchant_id = ? AND plan_id = ?", (merchant_id, plan_id))

    def merchant_ids(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT DISTINCT merchant_id FROM plans")}

    def all(self) -> list[StoredPlan]:
        with self._lock:
            rows = self._db.execute(
                "SELECT merchant_id, plan_id, fields, cancelled FROM plans "
                "ORDER BY merchant_id, plan_id").fetchall()
        return [_plan(row) for row in rows]

    def record(self, merchant_id: str, process_type: str, plan_id: str, resp_code: str,
               fault: str | None = None) -> None:
        """One line per request; resp_code is "" when a fault struck before processing."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._lock:
            self._db.execute(
                "INSERT INTO log (at, merchant_id, process_type, plan_id, resp_code, fault) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (at, merchant_id, process_type, plan_id, resp_code, fault))

    def log(self) -> list[dict[str, str | None]]:
        with self._lock:
            rows = self._db.execute("SELECT at, merchant_id, process_type, plan_id, resp_code, "
                                    "fault FROM log ORDER BY seq").fetchall()
        return [{"time": at, "merchantID": merchant, "processType": pt,
                 "recurringUniqueID": pid, "respCode": code, "fault": fault}
                for at, merchant, pt, pid, code, fault in rows]


def _plan(row: tuple[str, str, str, int]) -> StoredPlan:
    merchant_id, plan_id, raw, cancelled = row
    return StoredPlan(merchant_id, plan_id, json.loads(raw), bool(cancelled))
