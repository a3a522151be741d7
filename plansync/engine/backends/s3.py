"""The S3 backend: the state, its journal and its lock as objects under a prefix.

    PREFIX/WORKSPACE/state.json         written with If-Match on the ETag last read
                                        (If-None-Match: * when new): compare-and-set
    PREFIX/WORKSPACE/journal/N-ID.json  records as JSON lines, written before the request:
                                        appends that arrive while one is being written
                                        go together in the next object (group commit)
    PREFIX/WORKSPACE/lock.json          created with If-None-Match: * — S3 conditional
                                        writes, as Terraform's use_lockfile; no DynamoDB

S3 cannot tell a dead holder from a live one, so the lock is a lease: its holder renews
the note every quarter of the lease (``?lease=SECONDS``, 2-3600, default 60, kept in the
note so that every taker uses the holder's); a note not renewed for a whole lease (by the
server's clock) is stale and is taken over with If-Match on it, so two runs cannot both
take it. Fencing: the holder writes, journals or sends a write only while a renewal that
started less than three quarters of a lease ago succeeded (else it renews first, and a
renewal refused means the lock is lost); every taker raises the note's generation, and
one that took the lock from a holder that did not release it rewrites the state, so
the old holder's If-Match on the state fails. A released note stays, marked released,
keeping the generation. Credentials come from the standard AWS chain (OIDC in
GitHub Actions); ``?endpoint_url=`` or AWS_ENDPOINT_URL for S3-compatible stores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.config
import botocore.exceptions

from plansync.engine import lock
from plansync.engine.backends import Warn, next_serial, stale
from plansync.engine.journal import Record, decode_all, encode
from plansync.engine.state import State, document, from_document
from plansync.errors import ConfigError, PlansyncError
from plansync.printable import quoted
from plansync.redact import safe_text

DEFAULT_LEASE = 60.0
MIN_LEASE, MAX_LEASE = 2.0, 3600.0
_AWS_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class S3Backend:
    def __init__(self, url: str, workspace: str, environ: Mapping[str, str]) -> None:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.username is not None or parts.password is not None:
            # Said without the URL: what stands before the @ is a secret.
            raise ConfigError("the s3:// state URL holds credentials; they were not used",
                              "AWS credentials come from the environment (AWS_* variables, "
                              "a profile, or OIDC in CI), never from the URL")
        endpoint = urlsplit(query.get("endpoint_url", ""))
        if endpoint.username is not None or endpoint.password is not None:
            raise ConfigError("the s3:// state URL's endpoint_url holds credentials; they "
                              "were not used", "AWS credentials come from the environment "
                              "(AWS_* variables, a profile, or OIDC in CI), never from a URL")
        if not parts.hostname:
            raise ConfigError(f"state URL {quoted(url)} names no bucket", "use s3://BUCKET/PREFIX")
        self.bucket = parts.netloc
        self.workspace = workspace
        prefix = parts.path.strip("/")
        self._root = f"{prefix}/{workspace}/" if prefix else f"{workspace}/"
        self._top = f"{prefix}/" if prefix else ""
        self.where = f"s3://{self.bucket}/{self._root.rstrip('/')}"
        try:
            self.lease = float(query.get("lease", DEFAULT_LEASE))
        except ValueError:
            self.lease = math.nan
        if not MIN_LEASE <= self.lease <= MAX_LEASE:
            raise ConfigError(f"the state URL's lease must be {MIN_LEASE:g} to {MAX_LEASE:g} "
                              "seconds", "for example s3://bucket/prefix?lease=60")
        self._s3 = _client(query, environ)
        self._etag: str | None = None  # of the state as last read or written
        self._lease: _Lease | None = None  # while this backend holds the lock
        self._batches = GroupCommit(self._put_journal)
        self._sequence = itertools.count()
        self._run = uuid.uuid4().hex[:8]

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except _AWS_ERRORS as exc:
            raise PlansyncError(f"cannot {doing} the state in {self.where}: {_reason(exc)}",
                                "check the bucket, the credentials and the region; nothing "
                                "done is lost: the next apply settles it from the journal"
                                ) from None

    # --- state -------------------------------------------------------------------------

    def read(self) -> State | None:
        with self._errors("read"):
            try:
                answer = self._s3.get_object(Bucket=self.bucket, Key=self._root + "state.json")
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    self._etag = None
                    return None
                raise
            body = answer["Body"].read()
        self._etag = answer["ETag"]
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise PlansyncError(f"{self.where}/state.json cannot be read: {exc}",
                                "restore it with plansync state push") from None
        return from_document(data, self.where, "restore it with plansync state push")

    def write(self, state: State, as_serial: int | None = None) -> State:
        self.check_lease()  # S3 cannot refuse it for us: a takeover rewrote the state, so
        #                     its ETag refuses an old holder frozen after this check
        if state.serial and self._etag is None:  # not read by this backend yet
            found = self.read()
            if found is None or found.serial != state.serial:
                raise stale(self.where, found.serial if found else 0, state.serial)
        saved = dataclasses.replace(state, serial=next_serial(state, as_serial))
        condition = {"IfMatch": self._etag} if state.serial else {"IfNoneMatch": "*"}
        with self._errors("write"):
            try:
                answer = self._s3.put_object(
                    Bucket=self.bucket, Key=self._root + "state.json",
                    Body=json.dumps(document(saved), indent=2).encode(),
                    ContentType="application/json", **condition)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    found = self.read()
                    raise stale(self.where, found.serial if found else 0,
                                state.serial) from None
                raise
        self._etag = answer["ETag"]
        return saved

    # --- journal -----------------------------------------------------------------------

    def append(self, record: Record) -> None:
        """Durable when it returns: the object holding ``record`` has been written.
        S3 has no condition across objects, so the fence is the holder's lease check."""
        self.check_lease()
        with self._errors("journal a write in"):
            self._batches.submit(json.dumps(encode(record)).encode())

    def _put_journal(self, lines: list[bytes]) -> None:
        # Keys sort in the order written: nanoseconds (runs never overlap: the lock),
        # then this run's own counter for objects written in the same nanosecond.
        key = f"{self._root}journal/{time.time_ns():020d}-{next(self._sequence):08d}-" \
              f"{self._run}.json"
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=b"\n".join(lines) + b"\n",
                            ContentType="application/x-ndjson")

    def _journal_keys(self) -> list[str]:
        keys: list[str] = []
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._root + "journal/")
        for page in pages:
            keys += [item["Key"] for item in page.get("Contents", [])]
        return sorted(keys)

    def records(self) -> list[Record]:
        with self._errors("read the journal of"):
            bodies = [(key, self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
                      for key in self._journal_keys()]
        lines = ((f"s3://{self.bucket}/{key}:{number}", line) for key, body in bodies
                 for number, line in enumerate(body.splitlines(), 1) if line.strip())
        return decode_all(lines, json.loads,
                          "it was written by something else; inquire the plans it names, "
                          "then delete it")

    def clear_journal(self) -> None:
        self.check_lease()
        with self._errors("clear the journal of"):
            keys = self._journal_keys()
            for start in range(0, len(keys), 1000):
                self._s3.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": key} for key in keys[start:start + 1000]],
                    "Quiet": True})

    # --- lock --------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0,
             warn: Warn | None = None) -> Iterator[dict[str, Any]]:
        note = {**lock.new_note(operation), "lease": self.lease}
        deadline = time.monotonic() + timeout
        key = self._root + "lock.json"
        with self._errors("lock"):
            started = time.monotonic()
            etag, took_over = self._take(note, deadline, warn)
        body = json.dumps(note).encode()
        self._lease = _Lease(lambda current: str(self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=body, IfMatch=current)["ETag"]),
            etag, self.lease, started)
        try:
            if took_over:  # the old holder's etag of the state goes stale: it cannot write
                with self._errors("fence"):
                    found = self.read()
                    if found is not None:
                        self.write(found)
            yield note
        finally:
            holding, self._lease = self._lease, None
            holding.stop()
            released = json.dumps({"released": True, "generation": note["generation"]})
            with self._errors("unlock"), contextlib.suppress(botocore.exceptions.ClientError):
                self._s3.put_object(Bucket=self.bucket, Key=key, Body=released.encode(),
                                    IfMatch=holding.etag)

    def _take(self, note: dict[str, Any], deadline: float, warn: Warn | None
              ) -> tuple[str, bool]:
        """The lock note's ETag once ``note`` is the lock, and whether it was taken from
        a holder that did not release it. The note object stays when released (marked
        so), keeping the generation, which every taker raises by one."""
        key = self._root + "lock.json"
        while True:
            held, etag, age = self._held()
            lease = _number(held.get("lease"), self.lease)  # the holder's, not ours
            # S3's clocks are read to the second: a note is stale only when a whole lease
            # has passed even if both times were cut down by a second.
            stale = age is not None and age > lease + 1
            # A lock broken by force-unlock: its holder may write until its lease, renewed
            # at the latest when it was broken, runs out.
            free = held.get("released") and (not held.get("broken") or stale)
            if etag is None or free or stale:
                note["generation"] = int(_number(held.get("generation"), 0)) + 1
                condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
                try:
                    taken = self._s3.put_object(Bucket=self.bucket, Key=key,
                                                Body=json.dumps(note).encode(), **condition)
                except botocore.exceptions.ClientError as exc:
                    if _code(exc) not in ("PreconditionFailed", "412", "NoSuchKey", "404",
                                          "ConditionalRequestConflict"):
                        raise
                    continue  # someone else took it meanwhile: look again
                took_over = bool(held.get("broken")) or (stale and not held.get("released"))
                if stale and not held.get("released") and warn is not None:
                    warn(f"taking over a stale lock: {lock.describe(held)}; not renewed for "
                         f"{age:.0f}s (lease {lease:g}s)")
                return str(taken["ETag"]), took_over
            if time.monotonic() >= deadline:
                raise lock.locked(held)
            time.sleep(lock.POLL_SECONDS)

    def _held(self) -> tuple[dict[str, Any], str | None, float | None]:
        """The lock's note, its ETag and how long ago it was last renewed (all by the
        server's clock), or an empty note if there is none."""
        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=self._root + "lock.json")
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return {}, None, None
            raise
        try:
            note = lock.clean(json.loads(answer["Body"].read()))
        except (ValueError, RecursionError):
            note = {}
        served = answer["ResponseMetadata"]["HTTPHeaders"].get("date")
        now = parsedate_to_datetime(served) if served else None
        age = (now - answer["LastModified"]).total_seconds() if now else None
        return note, answer["ETag"], age

    def check_lease(self) -> None:
        if self._lease is not None:
            why = self._lease.check()
            if why is not None:
                raise lock.lost(self.where, why)

    def force_unlock(self, lock_id: str, force: bool = False) -> dict[str, Any]:
        with self._errors("force-unlock"):
            note, etag, age = self._held()
            lock.check_id(note if etag and not note.get("released") else {}, lock_id,
                          self.where)
            lease = _number(note.get("lease"), self.lease)
            if not force and age is not None and age <= lease + 1:
                raise lock.refuse_live(note, f"it renewed its lease {age:.0f}s ago, within "
                                             f"its {lease:g}s lease", lock_id)
            if not force and lock.alive_here(note):
                raise lock.refuse_live(note, f"pid {note['pid']} is running on this host",
                                       lock_id)
            # Marked broken, not deleted: the generation stays, the holder's renewals fail
            # (the ETag changed), and the next holder fences the state.
            broken = {"released": True, "broken": True, "generation": note.get("generation"),
                      "lease": lease}
            self._s3.put_object(Bucket=self.bucket, Key=self._root + "lock.json",
                                Body=json.dumps(broken).encode(), IfMatch=etag)
        return note

    def workspaces(self) -> list[str]:
        names = []
        with self._errors("list the workspaces of"):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._top, Delimiter="/")
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(self._top):].rstrip("/")
                    with contextlib.suppress(botocore.exceptions.ClientError):
                        self._s3.head_object(Bucket=self.bucket,
                                             Key=f"{self._top}{name}/state.json")
                        names.append(name)
        return sorted(names)

    def close(self) -> None:
        self._s3.close()


class _Lease:
    """Renews the lock's note every quarter lease while the lock is held, and says
    whether the holder can prove it still holds it: a renewal (a write conditional on
    the note's ETag) that started less than three quarters of a lease ago succeeded, or
    one made now does. A renewal refused because the note changed means the lock was
    broken or taken over: lost for good."""

    def __init__(self, renew: Callable[[str], str], etag: str, lease: float,
                 taken_at: float) -> None:
        self.etag = etag
        self._renew_once = renew
        self._valid_for = lease * 3 / 4  # a quarter for latency and clock rates
        self._valid_until = taken_at + self._valid_for
        self._lost: str | None = None
        self._renewing = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, args=(lease / 4,),
                                        name="plansync-lease", daemon=True)
        self._thread.start()

    def _renew(self, period: float) -> None:
        while not self._stop.wait(period) and self._lost is None:
            self.renew()

    def renew(self) -> None:
        with self._renewing:
            if self._lost is not None:
                return
            started = time.monotonic()
            try:
                self.etag = self._renew_once(self.etag)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in ("PreconditionFailed", "412", "NoSuchKey", "404",
                                  "ConditionalRequestConflict"):
                    self._lost = "the lock was broken or taken over by another run"
                return
            except botocore.exceptions.BotoCoreError:
                return  # not renewed: the lease runs out unless a later renewal works
            self._valid_until = max(self._valid_until, started + self._valid_for)

    def check(self) -> str | None:
        """None while the lock is provably held; else why not."""
        if self._lost is None and time.monotonic() >= self._valid_until:
            self.renew()  # after a freeze or an outage: still ours if the note is
        if self._lost is not None:
            return self._lost
        if time.monotonic() >= self._valid_until:
            return "its lease could not be renewed in time"
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


_CLIENT_SETTINGS = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                    "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_CONFIG_FILE")


def _client(query: Mapping[str, str], environ: Mapping[str, str]) -> Any:
    """The S3 client the URL's ``?region=``/``?endpoint_url=`` and the AWS settings in
    the environment describe; a value boto3 refuses (a region or endpoint that is no
    such thing) is one error naming where such values come from."""
    try:
        return boto3.client(
            "s3", region_name=query.get("region") or environ.get("AWS_REGION") or None,
            endpoint_url=query.get("endpoint_url") or None,
            # Checksums only where S3 requires them (as before botocore 1.36): journal
            # records are small and many, TLS already protects them in transit, and each
            # CRC costs CPU that a write's round trip waits on.
            # Timeouts shorter than botocore's 60 s: a silent S3 held `state list` for
            # 3 attempts x 60 s; now at most 3 x 20 s (one read, not the whole object).
            config=botocore.config.Config(max_pool_connections=64,
                                          connect_timeout=5, read_timeout=20,
                                          retries={"mode": "standard"},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))
    except (ValueError, botocore.exceptions.BotoCoreError) as exc:  # (InvalidRegionError)
        given = [f"?{name}=" for name in ("region", "endpoint_url") if query.get(name)]
        given += [name for name in _CLIENT_SETTINGS if environ.get(name)]
        raise ConfigError(f"the S3 state cannot be reached as set: {_reason(exc)}",
                          f"check {', '.join(given) if given else 'the AWS configuration'}"
                          " (a region such as eu-west-1; an endpoint such as "
                          "https://s3.example.com)") from None


def _number(value: Any, default: float) -> float:
    """A number from a lock note (which another program may have written)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value) if math.isfinite(value) else default


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '')} {error.get('Message', '')}".strip()
    # botocore's words quote the endpoint URL, credentials and all.
    return safe_text(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__


class GroupCommit:
    """Many threads' appends, written together: while one object is being written, the
    appends that arrive wait and go in the next one, so 16 workers journalling at once
    cost a few requests, not 16. Each submit returns when its own data is written (or
    raises what writing it raised). Hand-written: a dozen lines around a Condition, which
    no library we use offers."""

    def __init__(self, write: Callable[[list[bytes]], None]) -> None:
        self._write = write
        self._changed = threading.Condition()
        self._queue: list[_Ticket] = []
        self._writing = False

    def submit(self, data: bytes) -> None:
        ticket = _Ticket(data)
        with self._changed:
            self._queue.append(ticket)
            while self._writing and not ticket.done:
                self._changed.wait()
            if not ticket.done:  # this thread writes the batch, its own data included
                self._writing = True
                batch, self._queue = self._queue, []
        if not ticket.done:
            error: BaseException | None = None
            try:
                self._write([t.data for t in batch])
            except BaseException as exc:  # handed to every waiter below
                error = exc
            with self._changed:
                for waiting in batch:
                    waiting.done, waiting.error = True, error
                self._writing = False
                self._changed.notify_all()
        if ticket.error is not None:
            raise ticket.error


@dataclasses.dataclass
class _Ticket:
    data: bytes
    done: bool = False
    error: BaseException | None = None

