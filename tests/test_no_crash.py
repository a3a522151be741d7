"""No input makes plansync crash (issue 21): whatever the settings file, the flags, the
state URL, a saved plan, the state and its journal, or a spec says, every run exits 0, 1,
2, 3 or 64 — never 70 — and prints no traceback (not even from one of its threads) and no
"plansync crashed".

Hypothesis aims at hostile values: nan, inf, huge and negative numbers, zero, text with
NUL and control characters, lists and mappings where a scalar belongs, impossible dates,
YAML 1.1 spellings. plansync runs in this process (``plansync.cli.main``), so an example
costs milliseconds, not a Python start-up. Examples are derandomized: CI runs the same ones
every time. The network is the in-test emulator, or a closed port on 127.0.0.1: an endpoint
or state URL that could name another host is replaced by one.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plansync.cli import main
from plansync.emulator.server import Emulator
from plansync.engine import journal, state
from tests.helpers import HEAD, sent_writes

EXIT_CODES = {0, 1, 2, 3, 64}
CLOSED = "127.0.0.1:1"  # nothing listens on port 1 of loopback: connections are refused
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")), deadline=None,
                derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
SPEC = HEAD + "plans:\n  - id: '156142'\n    amount: '95.00'\n"


# --- running plansync, and what a clean run is ------------------------------------------


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Exceptions that end a thread (a deadline or lease thread): Python prints them and
    the run goes on, so the exit code alone would not show them."""
    caught: list[str] = []
    monkeypatch.setattr(threading, "excepthook",
                        lambda args: caught.append(f"{args.exc_type.__name__}: "
                                                   f"{args.exc_value} in {args.thread}"))
    return caught


def invoke(*argv: str) -> tuple[int, str]:
    """plansync in this process: its exit code and everything it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue() + err.getvalue()


def assert_clean(argv: list[str], code: int, output: str, thread_errors: list[str]) -> None:
    assert code in EXIT_CODES, (argv, code, output)
    assert "Traceback" not in output and "plansync crashed" not in output, (argv, output)
    assert not thread_errors, (argv, thread_errors)


def run_clean(thread_errors: list[str], *argv: str) -> str:
    code, output = invoke(*argv)
    assert_clean(list(argv), code, output, thread_errors)
    return output


@pytest.fixture
def env(emulator: Emulator, emulator_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings for the in-test emulator (key paths absolute, so the file can be copied),
    a local state in tmp_path, and AWS settings that reach nothing but a closed port."""
    source = emulator_dir / "plansync.yaml"
    text = (source.read_text().replace("merchant_key: ", f"merchant_key: {emulator_dir}/")
            .replace("gateway_key: ", f"gateway_key: {emulator_dir}/"))
    config = tmp_path / "conf" / "plansync.yaml"
    config.parent.mkdir()
    config.write_text(text.replace(text.split("endpoint: ")[1].split("\n")[0], emulator.url))
    values = {"PLANSYNC_CONFIG": str(config),
              "PLANSYNC_STATE": str(tmp_path / "state" / "state.json"),
              # S3: dummy credentials (no look-up at the instance metadata address), one
              # attempt per request, and loopback when the URL names no endpoint.
              "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
              "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1",
              "AWS_ENDPOINT_URL": f"http://{CLOSED}", "AWS_REGION": "us-east-1"}
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "PGHOST", "PGSERVICE",
                 "PLANSYNC_TRACEBACK"):  # PLANSYNC_TRACEBACK re-raises instead of exit 70
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "spec.yaml").write_text(SPEC)
    return values


# --- hostile values ---------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # any but surrogates
HOSTILE = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 10**20, 10**400, -1, 0, 1e-300, 1e308,
                     -0.0, True, False, None, "", "a\x00b", "\x1b[31mred", "\u202e", "5_0",
                     "0712", ".nan", ".inf", "1e999", "2026-02-30", "yesterday",
                     "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "99.90", "SGD",
                     "../../etc/passwd", "-" * 300]),
    st.integers(), st.floats(), TEXT,
    st.lists(st.integers(), max_size=2), st.dictionaries(TEXT, st.integers(), max_size=2))
# YAML as written, where the YAML reader's rules matter
RAW_YAML = st.sampled_from(["5_0", "0x1F", "0o17", "1e999", ".NaN", "-.inf", "!!float 7",
                            "!!binary AAAA", "!!python/name:os.system", "1:30", "~", "no",
                            "2026-02-30", '"\\0"', '"\\e[31m"', "[", "{a: ", "&a [*a]",
                            "99999999999999999999", "1" * 5000, "0." + "0" * 400 + "1",
                            "|\n  block"])


def yaml_value(value: Any) -> str:
    """``value`` as a YAML flow value on one line."""
    if isinstance(value, str) and value in RAW:
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10**9,
                          allow_unicode=False).removesuffix("\n...\n").strip()


RAW = set(RAW_YAML.elements)  # type: ignore[attr-defined]


def local_only(url: Any) -> Any:
    """An endpoint that could reach another host, replaced by the closed port."""
    if isinstance(url, str) and ("://" in url or url in ("sandbox", "production")):
        return f"http://{CLOSED}/x"
    return url


# --- settings ---------------------------------------------------------------------------

SETTINGS = ["endpoint", "merchant_id", "merchant_key", "gateway_key", "currency_exponents",
            "connect_timeout", "read_timeout", "request_deadline", "retry_after_max",
            "settle_window", "guardrails", "state", "workspace", "currency_exponents.SGD",
            "guardrails.max_changes", "guardrails.max_cancels",
            "guardrails.max_amount_increase", "guardrails.max_mrr_decrease",
            "guardrails.max_charged_within", "guardrails.charge_window_hours",
            "a_setting_nobody_knows", "password"]


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(SETTINGS), HOSTILE | RAW_YAML, min_size=1,
                               max_size=3))
def test_any_settings_file_is_used_or_refused_cleanly(
        env: dict[str, str], emulator: Emulator, tmp_path: Path, thread_errors: list[str],
        changes: dict[str, Any]) -> None:
    config = Path(env["PLANSYNC_CONFIG"])
    lines = [line for line in config.read_text().splitlines()
             if line.split(":")[0] not in {name.split(".")[0] for name in changes}]
    for name, value in changes.items():
        value = local_only(value) if name == "endpoint" else value
        if name == "state" and isinstance(value, str):
            value = str(tmp_path / "fuzz-state" / value.replace("://", "_"))
        top, _, inner = name.partition(".")
        lines.append(f"{top}: {{{inner}: {yaml_value(value)}}}" if inner else
                     f"{top}: {yaml_value(value)}")
    fuzzed = tmp_path / "fuzzed.yaml"
    fuzzed.write_text("\n".join(lines) + "\n")
    os.environ.pop("PLANSYNC_STATE")  # state: in the file applies
    try:
        for argv in (["plan", "spec.yaml"], ["state", "list"]):
            run_clean(thread_errors, *argv, "--config", str(fuzzed))
    finally:
        os.environ["PLANSYNC_STATE"] = env["PLANSYNC_STATE"]
    assert sent_writes(emulator) == {}


# --- flags ------------------------------------------------------------------------------

FLAG_VALUE = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e20", "1e-300", "99999999999999999999", "-1",
                     "0", "0.0", "1", "64", "65", "", " ", "1e308", "30s", "5m", "1h", "24h",
                     "25h", "0s", "1.5s", "-5s", "99999999999999999999s", "1_0", "\x1b[2J",
                     "default", "a/b", "..", "a" * 65, "156142", "JT01"]),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
            max_size=12))
FLAGS = ["--parallelism", "--rate-limit", "--settle-window", "--workspace", "--target",
         "--exclude", "--max-changes", "--max-cancels", "--max-amount-increase",
         "--max-mrr-decrease", "--max-charged-within", "--merchant-id", "--endpoint",
         "--merchant-key", "--gateway-key"]


@FUZZ
@given(command=st.sampled_from([["plan", "spec.yaml"], ["apply", "spec.yaml", "--dry-run"],
                                ["drift", "spec.yaml"]]),
       flags=st.lists(st.tuples(st.sampled_from(FLAGS), FLAG_VALUE), min_size=1, max_size=3))
def test_any_flags_are_used_or_refused_cleanly(
        env: dict[str, str], emulator: Emulator, thread_errors: list[str],
        command: list[str], flags: list[tuple[str, str]]) -> None:
    argv = list(command)
    for flag, value in flags:
        argv += [flag, local_only(value) if flag == "--endpoint" else value]
    run_clean(thread_errors, *argv)
    assert sent_writes(emulator) == {}


def test_a_charge_window_out_of_the_calendar_is_refused(
        env: dict[str, str], thread_errors: list[str]) -> None:
    run_clean(thread_errors, "plan", "spec.yaml", "--max-charged-within", "1",
              "--charge-window", "1e300")


# --- state URLs -------------------------------------------------------------------------

PG_KEYS = ["sslmode", "workspace", "password", "options", "application_name",
           "connect_timeout", "target_session_attrs", "gssencmode", "user", "lease"]
S3_KEYS = ["region", "endpoint_url", "lease", "workspace", "password"]
NEVER = {"host", "hostaddr", "port", "service", "servicefile", "dbname"}  # could go elsewhere


def query(keys: list[str]) -> st.SearchStrategy[str]:
    def encode(pairs: list[tuple[str, str]]) -> str:
        return "&".join(f"{quote(k, safe='')}={v}" for k, v in pairs
                        if k.strip().lower() not in NEVER)
    value = FLAG_VALUE.map(lambda v: quote(v, safe="")) | st.sampled_from(
        ["%00", "%ff", "%", "a%2", f"http://{CLOSED}", "http://[::1", "not-a-url", "inf",
         "nan", "1e20", "-1", "2", "3600"])
    return st.lists(st.tuples(st.sampled_from(keys) | TEXT, value), max_size=3).map(encode)


def s3_endpoint_local(url: str) -> str:
    """Every ?endpoint_url= that is a URL made the closed port: S3 calls go nowhere else."""
    head, _, tail = url.partition("?")
    pairs = [p if not p.startswith("endpoint_url=") or ("%3A%2F%2F" not in p and "://" not in p)
             else f"endpoint_url=http://{CLOSED}" for p in tail.split("&")] if tail else []
    return head + ("?" + "&".join(pairs) if pairs else "")


STATE_URLS = st.one_of(
    TEXT.map(lambda p: p.replace("://", "_")),  # a path (relative: in the test's folder)
    st.builds(lambda user, host, db, q: f"postgres://{user}{host}/{db}?{q}",
              st.sampled_from(["", "u@", "u:@", "u:pw@", "%00@", "u%3Apw@"]),
              st.sampled_from([CLOSED, "[::1]:1", "[::1", "127.0.0.1:99999", "127.0.0.1:x",
                               "127.0.0.1:1,127.0.0.1:2", "127.0.0.1:-1"]),
              TEXT.map(lambda t: quote(t, safe="")), query(PG_KEYS)),
    st.builds(lambda bucket, prefix, q: s3_endpoint_local(f"s3://{bucket}/{prefix}?{q}"),
              st.sampled_from(["bucket", "", "B_U", "a" * 70, "b%00", "[::1", "u:p@b", "b:99999"])
              | TEXT.map(lambda t: quote(t, safe="")),
              TEXT.map(lambda t: quote(t, safe="/")), query(S3_KEYS)),
    st.sampled_from(["ftp://x/y", "postgres://", "s3://", "://", "postgresql://u@[::1/db",
                     f"s3://b/p?endpoint_url=http://{CLOSED}&lease=inf"]))


@FUZZ
@given(url=STATE_URLS, workspace=st.none() | FLAG_VALUE)
def test_any_state_url_is_used_or_refused_cleanly(
        env: dict[str, str], emulator: Emulator, thread_errors: list[str], url: str,
        workspace: str | None) -> None:
    chosen = ["--workspace", workspace] if workspace is not None else []
    for argv in (["state", "list"], ["plan", "spec.yaml"], ["workspace", "list"]):
        output = run_clean(thread_errors, *argv, "--state", url, *chosen)
        assert "u:pw" not in output and "pw@" not in output, output  # never echoed
    assert sent_writes(emulator) == {}


# --- plan files -------------------------------------------------------------------------


@pytest.fixture
def saved_plan(env: dict[str, str], thread_errors: list[str], tmp_path: Path) -> dict[str, Any]:
    """A real plan file, as `plansync plan --out` writes it (with a pending write)."""
    out = tmp_path / "made" / "plan.json"
    run_clean(thread_errors, "plan", "spec.yaml", "--out", str(out))
    document = json.loads(out.read_text())
    document["pending"] = [{"id": "156142", "action": "update",
                            "sent_at": "2026-01-01T00:00:00Z", "until": "2026-01-01T00:01:30Z"}]
    return document


def paths_in(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document, the document itself first."""
    yield path
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield from paths_in(inner, (*path, key))


def mutate(document: Any, path: tuple[Any, ...], value: Any, how: str) -> Any:
    """The document with the value at ``path`` replaced, removed, or given a sibling."""
    changed = copy.deepcopy(document)
    if not path:
        return value
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    if how == "remove":
        del parent[path[-1]]
    elif how == "add" and isinstance(parent, dict):
        parent["surprise"] = value
    elif how == "add":
        parent.append(value)
    else:
        parent[path[-1]] = value
    return changed


JSON_HOSTILE = HOSTILE.filter(lambda v: not isinstance(v, int) or abs(v) < 10**300)


@FUZZ
@given(data=st.data(), value=JSON_HOSTILE,
       how=st.sampled_from(["replace", "replace", "remove", "add"]))
def test_any_plan_file_is_shown_applied_or_refused_cleanly(
        env: dict[str, str], emulator: Emulator, tmp_path: Path, thread_errors: list[str],
        saved_plan: dict[str, Any], data: st.DataObject, value: Any, how: str) -> None:
    path = data.draw(st.sampled_from(list(paths_in(saved_plan))))
    target = tmp_path / "fuzzed-plan.json"
    target.write_text(json.dumps(mutate(saved_plan, path, value, how)))
    for argv in (["show", str(target)], ["show", "--json", str(target)],
                 ["show", "--markdown", str(target)],
                 ["apply", "--plan", str(target), "--dry-run"]):
        run_clean(thread_errors, *argv)
    assert sent_writes(emulator) == {}


# --- state files and journals -----------------------------------------------------------


@pytest.fixture
def real_state(env: dict[str, str], thread_errors: list[str], emulator: Emulator
               ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A state written by a real apply (a plan, its history), and journal records as
    plansync encodes them: an intent, its audit and its outcome."""
    run_clean(thread_errors, "apply", "spec.yaml", "--auto-approve")
    written = json.loads(Path(env["PLANSYNC_STATE"]).read_text())
    Path(env["PLANSYNC_STATE"]).unlink()
    intent = state.Intent(key="run-2:156142", plan="156142", action="update",
                          after={"amount": "96.00"}, fingerprint="sha256:0",
                          before_status="active", at=state.now(), by={"user": "u"},
                          sent={"amount": "000000009600"})
    audit = state.Audit(at=state.now(), by={"user": "u"}, plan="156142", process_type="U",
                        sent={"amount": "000000009600"}, resp_code="00", key=intent.key)
    outcome = state.Outcome(key=intent.key, plan="156142", result="applied",
                            entry=state.Entry(applied={"amount": "96.00"},
                                              applied_at=state.now()),
                            at=state.now(), audits=(audit,))
    return written, [journal.encode(record) for record in (intent, audit, outcome)]


@FUZZ
@given(data=st.data(), value=JSON_HOSTILE,
       how=st.sampled_from(["replace", "replace", "remove", "add"]),
       in_journal=st.booleans(), tail=st.sampled_from([b"", b"\n", b"{", b"\x00\xff", b"[1]"]))
def test_any_state_or_journal_is_read_or_refused_cleanly(
        env: dict[str, str], emulator: Emulator, thread_errors: list[str],
        real_state: tuple[dict[str, Any], list[dict[str, Any]]], data: st.DataObject,
        value: Any, how: str, in_journal: bool, tail: bytes) -> None:
    document, records = real_state
    if in_journal:
        records = data.draw(st.sampled_from([
            mutate(records, path, value, how) for path in paths_in(records) if path]))
    else:
        document = mutate(document, data.draw(st.sampled_from(list(paths_in(document)))),
                          value, how)
    where = Path(env["PLANSYNC_STATE"])
    where.parent.mkdir(exist_ok=True)
    where.write_text(json.dumps(document, default=str))
    where.with_name("state.json.journal").write_bytes(
        b"".join(json.dumps(r, default=str).encode() + b"\n" for r in records) + tail)
    sent = sent_writes(emulator)
    for argv in (["state", "list"], ["state", "show", "156142"], ["state", "history"],
                 ["plan", "spec.yaml"], ["drift", "spec.yaml"],
                 ["apply", "spec.yaml", "--dry-run"]):
        run_clean(thread_errors, *argv)
    assert sent_writes(emulator) == sent  # nothing more


# --- spec values ------------------------------------------------------------------------

SPEC_FIELDS = ["id", "name", "status", "amount", "currency", "allow_accumulate",
               "max_accumulate_amount", "recurring_interval", "recurring_count",
               "charge_next_date", "charge_on_date", "lifecycle", "surprise"]


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(SPEC_FIELDS), HOSTILE | RAW_YAML, max_size=3),
       plan=st.booleans())
def test_any_spec_value_is_validated_planned_or_refused_cleanly(
        env: dict[str, str], emulator: Emulator, tmp_path: Path, thread_errors: list[str],
        fields: dict[str, Any], plan: bool) -> None:
    lines = [f"    {name}: {yaml_value(value)}" for name, value in fields.items()
             if name != "id"]
    ident = yaml_value(fields["id"]) if "id" in fields else "'156142'"
    spec = tmp_path / "fuzz.yaml"
    spec.write_text(HEAD + f"plans:\n  - id: {ident}\n" + "".join(line + "\n" for line in lines))
    for argv in (["validate", str(spec)], ["validate", "--json", str(spec)],
                 *([["plan", str(spec)]] if plan else [])):
        run_clean(thread_errors, *argv)
    assert sent_writes(emulator) == {}
