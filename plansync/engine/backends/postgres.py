"""The PostgreSQL backend: the state, its journal and its lock in four tables.

    plansync_schema   (version)                            created on first use
    plansync_state    (workspace, serial, lineage, document jsonb)
    plansync_journal  (seq, workspace, record jsonb)       one row per record
    plansync_lock     (workspace, note jsonb, backend_pid)  the holder's note
    plansync_fence    (workspace, generation)              raised by every holder
    plansync_workspace (workspace)                         workspaces made empty (new)

The lock is a session-level advisory lock on the workspace, so the server releases it
when the holder's connection ends — even when the holder was SIGKILLed — and the next
run reports the note as stale and takes over. Taking the lock raises the workspace's
generation; journal appends and state writes carry the generation they were made under
and change nothing once a later one exists (fencing: a holder whose session was ended by
force-unlock --force, or that lost it, stores nothing more). Every statement commits on its own
(autocommit): a journal record is committed before the request it announces is sent.
The password comes from PLANSYNC_STATE_PASSWORD, PGPASSWORD or ~/.pgpass, never the URL.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from plansync.engine import lock
from plansync.engine.backends import DEFAULT_WORKSPACE
from plansync.engine.backends.base import FOREIGN, RESTORE, Hold, StateBackend, Taken, first_line
from plansync.engine.journal import Record, decode_all, encode
from plansync.engine.lock import LockNote
from plansync.engine.state import State, document, from_document
from plansync.errors import ConfigError, PlansyncError

SCHEMA_VERSION = 1
PASSWORD_ENV = "PLANSYNC_STATE_PASSWORD"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS plansync_schema (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS plansync_state (
    workspace text PRIMARY KEY, serial bigint NOT NULL, lineage text NOT NULL,
    document jsonb NOT NULL, written_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS plansync_journal (
    seq bigserial PRIMARY KEY, workspace text NOT NULL, record jsonb NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS plansync_journal_workspace ON plansync_journal (workspace, seq);
CREATE TABLE IF NOT EXISTS plansync_lock (
    workspace text PRIMARY KEY, note jsonb NOT NULL, backend_pid integer NOT NULL);
CREATE TABLE IF NOT EXISTS plansync_fence (
    workspace text PRIMARY KEY, generation bigint NOT NULL);
CREATE TABLE IF NOT EXISTS plansync_workspace (
    workspace text PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now());
"""
_RAISE = ("INSERT INTO plansync_fence (workspace, generation) VALUES (%s, 1) "
          "ON CONFLICT (workspace) DO UPDATE SET generation = plansync_fence.generation + 1 "
          "RETURNING generation")
# True while no holder later than the given generation exists (a statement's condition).
_HELD = ("EXISTS (SELECT 1 FROM plansync_fence WHERE workspace = %s AND generation = %s)")
_KEY = "hashtextextended('plansync:' || %s, 0)"  # the workspace's advisory lock key
# The holder's session: only a plansync one with that pid (a pid is reused once it ended).
_SESSION = "FROM pg_stat_activity WHERE pid = %s AND application_name = 'plansync'"


class PostgresBackend(StateBackend):
    shared = True
    failures = (psycopg.Error,)
    check = "check the server"

    def __init__(self, url: str, workspace: str, environ: Mapping[str, str]) -> None:
        parts = urlsplit(url)
        # (An empty ?password= is refused too: it says a password belongs in the URL; and
        # ?sslpassword=, the client key's.)
        if parts.password is not None or any(
                "password" in key.lower()
                for key, _ in parse_qsl(parts.query, keep_blank_values=True)):
            raise ConfigError("the state URL holds a password",
                              f"remove it; set {PASSWORD_ENV} or PGPASSWORD, or use ~/.pgpass")
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "workspace"]
        self._conninfo = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))
        self._password = environ.get(PASSWORD_ENV)
        self.workspace = workspace
        self.where = (f"postgres://{parts.hostname or 'localhost'}"
                      f"{':' + str(parts.port) if parts.port else ''}{parts.path} "
                      f"workspace {workspace}")
        self._connection: psycopg.Connection[Any] | None = None
        self._connecting = threading.Lock()

    def _db(self) -> psycopg.Connection[Any]:
        with self._connecting:  # apply's workers may be the first to need it, all at once
            return self._connection or self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is None:
            extra = {"password": self._password} if self._password else {}
            try:
                self._connection = psycopg.connect(
                    make_conninfo(self._conninfo, connect_timeout=10,
                                  application_name="plansync", **extra), autocommit=True)
            except UnicodeError:  # psycopg resolving a host name IDNA cannot encode
                raise PlansyncError(f"cannot connect to the state in {self.where}: its host "
                                    "name is not a valid DNS name (a label of more than 63 "
                                    "characters, or an empty one)",
                                    "check the host in the state URL") from None
            except psycopg.Error as exc:
                raise PlansyncError(f"cannot connect to the state in {self.where}: "
                                    f"{first_line(exc)}",
                                    "check the URL, the server, and the password "
                                    f"({PASSWORD_ENV}, PGPASSWORD or ~/.pgpass)") from None
            self._ensure_schema(self._connection)
        return self._connection

    def _ensure_schema(self, db: psycopg.Connection[Any]) -> None:
        """Tables made on first use, under a lock so two first runs do not race; a schema
        newer than this plansync's is refused (upgrades are explicit)."""
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(hashtextextended('plansync:schema', 0))")
            db.execute(_SCHEMA)
            row = db.execute("SELECT max(version) FROM plansync_schema").fetchone()
            found = row[0] if row else None
            if found is None:
                db.execute("INSERT INTO plansync_schema VALUES (%s)", (SCHEMA_VERSION,))
            elif found > SCHEMA_VERSION:
                raise PlansyncError(f"the tables in {self.where} are of schema {found}, newer "
                                    f"than this plansync's {SCHEMA_VERSION}",
                                    "upgrade plansync")

    def failed(self, doing: str, exc: Exception) -> PlansyncError:
        if self.generation is not None and (self._connection is None
                                             or self._connection.closed):
            # The session that held the advisory lock is gone, and the lock with it.
            return lock.lost(self.where, f"its database session ended ({first_line(exc)})")
        return super().failed(doing, exc)

    # --- state -------------------------------------------------------------------------

    def read(self) -> State | None:
        with self._errors("read"):
            row = self._db().execute("SELECT document FROM plansync_state WHERE workspace = %s",
                                     (self.workspace,)).fetchone()
        if row is None:
            return None
        return from_document(row[0], self.where, RESTORE)

    def put_state(self, state: State, expected: int) -> int | None:
        values = (state.serial, state.lineage, Jsonb(document(state)), self.workspace)
        held, fence = self._fence_condition()
        with self._errors("write"):
            db = self._db()
            if expected == 0:
                done = db.execute(
                    "INSERT INTO plansync_state (serial, lineage, document, workspace) "
                    f"SELECT %s, %s, %s, %s WHERE {held} "
                    "ON CONFLICT (workspace) DO NOTHING", (*values, *fence))
            else:
                done = db.execute(
                    "UPDATE plansync_state SET serial = %s, lineage = %s, document = %s, "
                    f"written_at = now() WHERE workspace = %s AND serial = %s AND {held}",
                    (*values, expected, *fence))
            if done.rowcount == 1:
                return None
            self.check_lease()  # a fenced write changed nothing: say why
            row = db.execute("SELECT serial FROM plansync_state WHERE workspace = %s",
                             (self.workspace,)).fetchone()
        return row[0] if row else 0

    # --- journal -----------------------------------------------------------------------

    def append(self, record: Record) -> None:
        held, fence = self._fence_condition()
        with self._errors("journal a write in"):
            done = self._db().execute(
                f"INSERT INTO plansync_journal (workspace, record) SELECT %s, %s WHERE {held}",
                (self.workspace, Jsonb(encode(record)), *fence))
        if done.rowcount != 1:
            self.check_lease()

    def records(self) -> list[Record]:
        with self._errors("read the journal of"):
            rows = self._db().execute("SELECT seq, record FROM plansync_journal "
                                      "WHERE workspace = %s ORDER BY seq",
                                      (self.workspace,)).fetchall()
        return decode_all(((f"journal row {seq} of {self.where}", data) for seq, data in rows),
                          lambda data: data, FOREIGN)

    def clear_journal(self) -> None:
        held, fence = self._fence_condition()
        with self._errors("clear the journal of"):
            self._db().execute(f"DELETE FROM plansync_journal WHERE workspace = %s AND {held}",
                               (self.workspace, *fence))
        self.check_lease()  # a fenced clear deleted nothing: say why

    # --- fencing -----------------------------------------------------------------------

    def _fence_condition(self) -> tuple[str, tuple[Any, ...]]:
        """The SQL condition (and its parameters) under which this run may store."""
        if self.generation is None:  # commands that store without the lock
            return "TRUE", ()
        return _HELD, (self.workspace, self.generation)

    def fence_generation(self) -> int:
        with self._errors("check the lock of"):
            row = self._db().execute("SELECT generation FROM plansync_fence "
                                     "WHERE workspace = %s", (self.workspace,)).fetchone()
        return row[0] if row else 0

    # --- lock --------------------------------------------------------------------------

    def try_lock(self, note: LockNote) -> Taken | LockNote:
        with self._errors("lock"):
            db = self._db()
            if not db.execute(f"SELECT pg_try_advisory_lock({_KEY})",
                              (self.workspace,)).fetchone()[0]:  # type: ignore[index]
                return self._note() or LockNote()
            previous = self._note()  # a note left: its holder's session ended without it
            row = db.execute(_RAISE, (self.workspace,)).fetchone()
            assert row is not None
            note = dataclasses.replace(note, generation=row[0])
            db.execute("INSERT INTO plansync_lock (workspace, note, backend_pid) "
                       "VALUES (%s, %s, pg_backend_pid()) ON CONFLICT (workspace) DO UPDATE "
                       "SET note = excluded.note, backend_pid = excluded.backend_pid",
                       (self.workspace, Jsonb(note.stored())))
        return Taken(Hold(note, db), previous)

    def release(self, hold: Hold) -> None:
        db = hold.token
        # A session that ended took its advisory lock with it: nothing to release.
        if not db.closed:
            with self._errors("unlock"):
                db.execute("DELETE FROM plansync_lock WHERE workspace = %s "
                           "AND note->>'id' = %s", (self.workspace, hold.note.id))
                db.execute(f"SELECT pg_advisory_unlock({_KEY})", (self.workspace,))

    def _note(self) -> LockNote | None:
        row = self._db().execute("SELECT note FROM plansync_lock WHERE workspace = %s",
                                 (self.workspace,)).fetchone()
        return LockNote.read(row[0]) if row else None

    def holder(self) -> Hold | None:
        with self._errors("force-unlock"):
            db = self._db()
            row = db.execute("SELECT note, backend_pid FROM plansync_lock WHERE workspace = %s",
                             (self.workspace,)).fetchone()
            if row is None:
                return None
            session = db.execute(f"SELECT 1 {_SESSION}", (row[1],)).fetchone()
        return Hold(LockNote.read(row[0]) or LockNote(), row[1],
                    "its database session is still open" if session else None)

    def break_lock(self, holder: Hold) -> None:
        """Raises the generation (fencing the holder), ends the holder's database session
        (which releases its advisory lock), then removes the note."""
        with self._errors("force-unlock"):
            db = self._db()
            db.execute(_RAISE, (self.workspace,))
            db.execute(f"SELECT pg_terminate_backend(pid) {_SESSION}", (holder.token,))
            db.execute("DELETE FROM plansync_lock WHERE workspace = %s", (self.workspace,))

    def workspaces(self) -> list[str]:
        with self._errors("list the workspaces of"):
            rows = self._db().execute("SELECT workspace FROM plansync_state UNION "
                                      "SELECT workspace FROM plansync_workspace ORDER BY 1")
            return [row[0] for row in rows.fetchall()]

    def create_workspace(self) -> bool:
        if self.workspace == DEFAULT_WORKSPACE:
            return False
        with self._errors("create"):
            done = self._db().execute(
                "INSERT INTO plansync_workspace (workspace) SELECT %s WHERE NOT EXISTS "
                "(SELECT 1 FROM plansync_state WHERE workspace = %s) "
                "ON CONFLICT (workspace) DO NOTHING", (self.workspace, self.workspace))
        return done.rowcount == 1

    def delete_workspace(self) -> None:
        held, fence = self._fence_condition()
        with self._errors("delete"):
            db = self._db()
            with db.transaction():
                for table in ("plansync_state", "plansync_journal", "plansync_workspace"):
                    db.execute(f"DELETE FROM {table} WHERE workspace = %s AND {held}",
                               (self.workspace, *fence))
        self.check_lease()  # a fenced delete deleted nothing: say why

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
