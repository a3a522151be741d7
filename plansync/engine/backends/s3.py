"""The S3 backend: the state, its journal and its lock as objects under a prefix.

    PREFIX/WORKSPACE/state.json         written with If-Match on the ETag last read
                                        (If-None-Match: * when new): compare-and-set
    PREFIX/WORKSPACE/journal/N-ID.json  records as JSON lines, written before the request:
                                        appends that arrive while one is being written
                                        go together in the next object (group commit)
    PREFIX/WORKSPACE/lock.json          created with If-None-Match: * — S3 conditional
                                        writes, as Terraform's use_lockfile; no DynamoDB
    PREFIX/WORKSPACE/workspace.json     the mark of a workspace made empty (new)

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
import time
import uuid
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.config
import botocore.exceptions

from plansync.engine import lock
from plansync.engine.backends import DEFAULT_WORKSPACE
from plansync.engine.backends.base import FOREIGN, RESTORE, Hold, StateBackend, Taken, first_line
from plansync.engine.backends.groupcommit import GroupCommit
from plansync.engine.journal import Record, decode_all, encode
from plansync.engine.lock import LockNote
from plansync.engine.state import State, document, from_document
from plansync.errors import ConfigError, PlansyncError
from plansync.printable import quoted
from plansync.redact import safe_text

DEFAULT_LEASE = 60.0
MIN_LEASE, MAX_LEASE = 2.0, 3600.0
# A conditional write refused: the object is not (or no longer) as read.
_CHANGED = ("PreconditionFailed", "412", "ConditionalRequestConflict")
_MISSING = ("NoSuchKey", "404")


class S3Backend(StateBackend):
    shared = True
    lease: float
    failures = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
    check = "check the bucket, the credentials and the region"

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
        self._batches = GroupCommit(self._put_journal)
        self._sequence = itertools.count()
        self._run = uuid.uuid4().hex[:8]

    def reason(self, exc: Exception) -> str:
        return _reason(exc)

    def _get(self, name: str) -> Any:
        """The workspace's object ``name`` (its GET answer), or None if there is none."""
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=self._root + name)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise

    def _put(self, name: str, text: str, **options: str) -> str:
        """Write the workspace's object ``name`` (``options``: its condition, If-Match or
        If-None-Match, and its content type); its new ETag."""
        return str(self._s3.put_object(Bucket=self.bucket, Key=self._root + name,
                                       Body=text.encode(), **options)["ETag"])

    # --- state -------------------------------------------------------------------------

    def read(self) -> State | None:
        with self._errors("read"):
            answer = self._get("state.json")
            if answer is None:
                self._etag = None
                return None
            body = answer["Body"].read()
        self._etag = answer["ETag"]
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise PlansyncError(f"{self.where}/state.json cannot be read: {exc}",
                                RESTORE) from None
        return from_document(data, self.where, RESTORE)

    def put_state(self, state: State, expected: int) -> int | None:
        self.check_lease()  # S3 cannot refuse it for us: a takeover rewrote the state, so
        #                     its ETag refuses an old holder frozen after this check
        if expected and self._etag is None:  # not read by this backend yet
            found = self._stored_serial()
            if found != expected:
                return found
        condition = {"IfMatch": self._etag} if expected else {"IfNoneMatch": "*"}
        with self._errors("write"):
            try:
                etag = self._put("state.json", json.dumps(document(state), indent=2),
                                 ContentType="application/json", **condition)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _CHANGED:
                    return self._stored_serial()
                raise
        self._etag = etag
        return None

    def _stored_serial(self) -> int:
        found = self.read()
        return found.serial if found else 0

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
        return decode_all(lines, json.loads, FOREIGN)

    def clear_journal(self) -> None:
        self.check_lease()
        with self._errors("clear the journal of"):
            keys = self._journal_keys()
            for start in range(0, len(keys), 1000):
                self._s3.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": key} for key in keys[start:start + 1000]],
                    "Quiet": True})

    # --- lock --------------------------------------------------------------------------

    def try_lock(self, note: LockNote) -> Taken | LockNote:
        """Write ``note`` as the lock if there is none, it was released, or its holder has
        not renewed it for a whole lease: conditional on the note read, so two runs cannot
        both take it. The note object stays when released (marked so), keeping the
        generation, which every taker raises by one."""
        while True:
            with self._errors("lock"):
                held, etag, age = self._held()
            lease = self._lease_of(held)  # the holder's, not ours
            # S3's clocks are read to the second: a note is stale only when a whole lease
            # has passed even if both times were cut down by a second.
            stale = age is not None and age > lease + 1
            # A lock broken by force-unlock: its holder may write until its lease, renewed
            # at the latest when it was broken, runs out.
            free = held.released and (not held.broken or stale)
            if not (etag is None or free or stale):
                return held
            note = dataclasses.replace(note, generation=(held.generation or 0) + 1)
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            with self._errors("lock"):
                try:
                    etag = self._put("lock.json", json.dumps(note.stored()), **condition)
                except botocore.exceptions.ClientError as exc:
                    if _code(exc) not in _CHANGED + _MISSING:
                        raise
                    continue  # someone else took it meanwhile: look again
            gone = stale and not held.released
            return Taken(Hold(note, etag), held if gone else None,
                         f"not renewed for {age or 0:.0f}s (lease {lease:g}s)",
                         rewrite_state=held.broken or gone)

    def renew(self, hold: Hold) -> None:
        with self._errors("renew the lock of"):
            try:
                hold.token = self._put("lock.json", json.dumps(hold.note.stored()),
                                       IfMatch=hold.token)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _CHANGED + _MISSING:
                    raise lock.Superseded from None
                raise

    def release(self, hold: Hold) -> None:
        released = json.dumps({"released": True, "generation": hold.note.generation})
        with self._errors("unlock"), contextlib.suppress(botocore.exceptions.ClientError):
            self._put("lock.json", released, IfMatch=hold.token)

    def _held(self) -> tuple[LockNote, str | None, float | None]:
        """The lock's note, its ETag and how long ago it was last renewed (all by the
        server's clock), or an empty note if there is none."""
        answer = self._get("lock.json")
        if answer is None:
            return LockNote(), None, None
        try:
            note = LockNote.read(json.loads(answer["Body"].read())) or LockNote()
        except (ValueError, RecursionError):
            note = LockNote()
        served = answer["ResponseMetadata"]["HTTPHeaders"].get("date")
        now = parsedate_to_datetime(served) if served else None
        age = (now - answer["LastModified"]).total_seconds() if now else None
        return note, answer["ETag"], age

    def _lease_of(self, note: LockNote) -> float:
        return self.lease if note.lease is None else note.lease

    def holder(self) -> Hold | None:
        with self._errors("force-unlock"):
            note, etag, age = self._held()
        if etag is None or note.released:
            return None
        lease = self._lease_of(note)
        return Hold(note, etag, f"it renewed its lease {age:.0f}s ago, within its "
                                f"{lease:g}s lease" if age is not None and age <= lease + 1
                    else None)

    def break_lock(self, holder: Hold) -> None:
        # Marked broken, not deleted: the generation stays, the holder's renewals fail
        # (the ETag changed), and the next holder fences the state.
        broken = {"released": True, "broken": True, "generation": holder.note.generation,
                  "lease": self._lease_of(holder.note)}
        with self._errors("force-unlock"):
            self._put("lock.json", json.dumps(broken), IfMatch=holder.token)

    def workspaces(self) -> list[str]:
        names = []
        with self._errors("list the workspaces of"):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._top, Delimiter="/")
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(self._top):].rstrip("/")
                    if any(self._exists(f"{self._top}{name}/{mark}")
                           for mark in ("state.json", "workspace.json")):
                        names.append(name)
        return sorted(names)

    def _exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        return True

    def create_workspace(self) -> bool:
        if self.workspace == DEFAULT_WORKSPACE:
            return False
        with self._errors("create"):
            if self._exists(self._root + "state.json"):
                return False
            try:
                self._put("workspace.json", json.dumps({"workspace": self.workspace}),
                          ContentType="application/json", IfNoneMatch="*")
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _CHANGED:
                    return False
                raise
        return True

    def delete_workspace(self) -> None:
        """The lock's note stays (marked released when this run lets go): it holds the
        generation."""
        self.check_lease()
        with self._errors("delete"):
            keys = [self._root + name for name in ("state.json", "workspace.json")]
            keys += self._journal_keys()
            for start in range(0, len(keys), 1000):
                self._s3.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": key} for key in keys[start:start + 1000]],
                    "Quiet": True})
        self._etag = None

    def close(self) -> None:
        self._s3.close()


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


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '')} {error.get('Message', '')}".strip()
    # botocore's words quote the endpoint URL, credentials and all.
    return safe_text(first_line(exc))
