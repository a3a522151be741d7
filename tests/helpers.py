"""What the test modules share that is not a fixture: constants, plain functions, and a
hostile gateway. The fixtures are in tests/conftest.py. A test module imports from here
(or from the other helper modules: servers, fake_github, inprocess, gha,
foreign_client), never from another test module."""

from __future__ import annotations

import os
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
import requests

from plansync.emulator.server import Emulator

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "specs.example"
HEAD = "apiVersion: plansync/v1\nkind: RecurringPlans\n"  # a spec's first two lines

# --- running plansync ------------------------------------------------------------------

PLANSYNC = [sys.executable, "-m", "plansync"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PLANSYNC, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def start_in(env: dict[str, str], folder: Path, *args: str) -> subprocess.Popen[str]:
    """plansync started in its own working directory ``folder``, not waited for."""
    folder.mkdir(exist_ok=True)
    return subprocess.Popen([*PLANSYNC, *args], cwd=folder, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def run_in(env: dict[str, str], folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    process = start_in(env, folder, *args)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def quick_reads(env: dict[str, str], folder: Path) -> dict[str, str]:
    """``env`` with its settings file copied to ``folder`` with ``read_timeout: 1``: a
    settle window may be no shorter than the read timeout, and tests wait out windows of
    one second (--settle-window 1s). The emulator answers in milliseconds."""
    source = Path(env["PLANSYNC_CONFIG"])
    text = (source.read_text().replace("merchant_key: ", f"merchant_key: {source.parent}/")
            .replace("gateway_key: ", f"gateway_key: {source.parent}/"))
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "quick-reads.yaml"
    config.write_text(text + "read_timeout: 1\n")
    return env | {"PLANSYNC_CONFIG": str(config)}


def state_location(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh state of the given backend kind, for one test."""
    if kind == "local":
        return str(tmp_path / ".plansync" / "state.json")
    if kind == "postgres":
        return request.getfixturevalue("postgres_url") + f"?workspace=t{uuid.uuid4().hex[:12]}"
    endpoint = request.getfixturevalue("s3_endpoint")
    return f"s3://plansync-state/t{uuid.uuid4().hex[:12]}?endpoint_url={endpoint}&lease=2"


class Sleeps(list[float]):
    """Stands in for time.sleep: records the backoff delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- the emulator ----------------------------------------------------------------------


def seeded_date(days: int) -> date:
    """The sample plans' next charges are this many days after the day they were made."""
    return datetime.now(UTC).date() + timedelta(days=days)


def admin(emulator: Emulator, method: str, path: str, payload: Any = None) -> Any:
    answer = requests.request(method, emulator.server.base_url + path, json=payload, timeout=5)
    answer.raise_for_status()
    return answer.json()


def live_fields(emulator: Emulator, plan_id: str) -> dict[str, Any]:
    plans = admin(emulator, "GET", "/_emulator/plans")
    return next(p for p in plans if p["recurringUniqueID"] == plan_id)


def faults(emulator: Emulator, **settings: float) -> None:
    """Set the emulator's faults (none: clear them)."""
    admin(emulator, "PUT", "/_emulator/faults", settings)


def accepted_writes(emulator: Emulator) -> Counter[tuple[str, str]]:
    """(plan, U or C) → how many writes the gateway processed and accepted (00): the
    witness that no plan received the same write twice."""
    return Counter((e["recurringUniqueID"], e["processType"])
                   for e in admin(emulator, "GET", "/_emulator/log")
                   if e["processType"] in ("U", "C") and e["respCode"] == "00")


def sent_writes(emulator: Emulator) -> Counter[tuple[str, str]]:
    """(plan, U or C) → how many writes reached the gateway, whatever it answered: the
    witness that nothing was sent."""
    return Counter((e["recurringUniqueID"], e["processType"])
                   for e in admin(emulator, "GET", "/_emulator/log")
                   if e["processType"] in ("U", "C"))


def wait_for_writes(emulator: Emulator, count: int, timeout: float = 30) -> None:
    """Until the gateway has accepted ``count`` writes."""
    deadline = time.monotonic() + timeout
    while accepted_writes(emulator).total() < count:
        assert time.monotonic() < deadline, "apply made no progress"
        time.sleep(0.02)


def seed_file(path: Path, ids: Iterable[int]) -> Path:
    """An emulator seed (``Emulator.start(..., seed=path)``): an active SGD plan of 10.00
    every 30 days, one charge of twelve made, for each id."""
    path.write_text("plans:\n" + "".join(
        f"  - {{recurringUniqueID: '{i}', merchantID: JT01, recurringStatus: 'Y',"
        f" currency: '702', amount: '000000001000', recurringInterval: 30,"
        f" recurringCount: 12, currentCount: 1}}\n" for i in ids))
    return path


# --- many plans, each written once: the scenario of the apply-under-failure tests ------

MANY = 24


def seed_and_spec(tmp_path: Path) -> tuple[Path, Path]:
    """MANY active plans for the emulator, and a spec that changes every one (and cancels
    every sixth)."""
    seed = seed_file(tmp_path / "seed.yaml", range(700000, 700000 + MANY))
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n" + "".join(
        f"  - {{id: '{700000 + i}', amount: '{11 + i}.00', status: "
        f"{'cancelled' if i % 6 == 5 else 'active'}}}\n" for i in range(MANY)))
    return seed, spec


def assert_converged_once(emulator: Emulator) -> None:
    """Every plan of seed_and_spec is as its spec says, each by exactly one write."""
    plans = {p["recurringUniqueID"]: p for p in admin(emulator, "GET", "/_emulator/plans")}
    writes = accepted_writes(emulator)
    for i in range(MANY):
        plan_id = str(700000 + i)
        if i % 6 == 5:
            assert plans[plan_id]["cancelled"], plan_id
            assert writes[(plan_id, "C")] == 1 and writes[(plan_id, "U")] == 0, plan_id
        else:
            assert plans[plan_id]["amount"] == f"{1100 + 100 * i:012d}", plan_id
            assert writes[(plan_id, "U")] == 1 and writes[(plan_id, "C")] == 0, plan_id


# --- the gateway's messages ------------------------------------------------------------

# The inquiry answer from 2C2P's guide (../shared/seeds), verbatim.
SAMPLE_INQUIRY_ANSWER = b"""<RecurringMaintenanceResponse>
<version>2.1</version>
<timeStamp>030321155002</timeStamp>
<merchantID>JT01</merchantID>
<recurringUniqueID>156142</recurringUniqueID>
<respCode>00</respCode>
<respReason>Inquiry Successful</respReason>
<recurringStatus>Y</recurringStatus>
<invoicePrefix>030321135205</invoicePrefix>
<currency>702</currency>
<amount>000000009990</amount>
<maskedCardNo>XXXXXXXXXXXX1111</maskedCardNo>
<allowAccumulate>N</allowAccumulate>
<maxAccumulateAmount>000000001000</maxAccumulateAmount>
<recurringInterval>30</recurringInterval>
<recurringCount>12</recurringCount>
<currentCount></currentCount>
<chargeNextDate>20210307</chargeNextDate>
</RecurringMaintenanceResponse>"""


# --- a hostile gateway -----------------------------------------------------------------

DRIPPED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n\r\n" + \
    b"e" * 5000


class HostileGateway(socketserver.ThreadingTCPServer):
    """A real socket server on 127.0.0.1 that reads each request, then sends DRIPPED a
    byte every 0.2 s (each read succeeds well within a read timeout: only a deadline ends
    it) or, ``silent``, holds the connection open and says nothing."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, silent: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _Hostile)
        self.silent = silent
        self.requests = 0
        self.counting = threading.Lock()
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/PaymentAction/2.0/action"

    def start(self) -> HostileGateway:
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _Hostile(socketserver.StreamRequestHandler):
    server: HostileGateway

    def handle(self) -> None:
        length = 0
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.rfile.read(length)
        with self.server.counting:
            self.server.requests += 1
        if self.server.silent:
            self.server.stopping.wait()  # holds the connection open, says nothing
            return
        for byte in DRIPPED:
            if self.server.stopping.is_set():
                return
            try:
                self.connection.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up: what its deadline is for
            time.sleep(0.2)


def cli_commands() -> list[tuple[str, click.Command]]:
    """Every plansync command with its full name ("state list"), subcommands included."""
    from plansync.cli import cli

    found: list[tuple[str, click.Command]] = []

    def walk(prefix: str, command: click.Command) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}".strip(), sub)
        else:
            found.append((prefix, command))

    walk("", cli)
    return found
