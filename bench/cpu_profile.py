"""Where a plan's CPU goes: `plansync plan` of N plans under cProfile, every thread.

    python bench/cpu_profile.py                  # 2,000 plans, no latency, parallelism 16
    python bench/cpu_profile.py --plans 5000 --compare 158e814   # and that commit's client

The command runs in a process of its own against the bench's emulator, with a profiler
in each of its threads (cProfile, timed by the thread's own CPU clock, so waiting costs
nothing). Each function's own time goes to a kind of work (signing, HTTP, diff, ...) by
what it is; time in a builtin (len, isinstance, a socket call) goes to the kind of its
caller. The profiler slows Python code more than the C it calls, so the table also
gives each kind's share; the CPU per plan measured without the profiler is the total
the shares divide.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent

# (kind, what marks it): the first that matches a function's file or name wins.
RSA = "of 'cryptography.hazmat.bindings._rust.openssl.rsa."
KINDS: list[tuple[str, tuple[str, ...]]] = [
    ("sign (RSA-PSS)", (f"'sign' {RSA}RSAPrivateKey'",)),
    ("decrypt (RSA-OAEP)", (f"'decrypt' {RSA}RSAPrivateKey'",)),
    ("verify (RSA-PSS)", (f"'verify' {RSA}RSAPublicKey'",)),
    ("encrypt (RSA-OAEP)", (f"'encrypt' {RSA}RSAPublicKey'",)),
    ("AES-GCM and other cryptography", ("cryptography/",)),
    ("JOSE around them (joserfc)", ("joserfc/",)),
    ("XML build and parse (lxml, messages, fields)", (
        "lxml", "plansync/gateway/messages.py", "plansync/fields.py", "plansync/formats.py",
        "plansync/printable.py")),
    ("HTTP (requests, urllib3, http.client)", (
        "requests/", "urllib3/", "http/client.py", "email/", "socket.py", "ssl.py",
        "plansync/gateway/transport.py", "_socket.socket")),
    ("client: retries, breaker, rate limit", ("plansync/gateway/",)),
    ("journal and state", ("plansync/engine/journal.py", "plansync/engine/state.py",
                           "plansync/engine/backends/")),
    ("diff and impact", ("plansync/engine/diff.py", "plansync/engine/impact.py",
                         "plansync/engine/plan.py", "plansync/engine/planner.py")),
    ("render and output (text, click)", ("plansync/render/", "plansync/views/", "click/")),
    ("spec loading", ("plansync/spec/", "yaml/", "jsonschema", "referencing")),
    ("logging", ("logging/",)),
    ("threads and futures", ("concurrent/futures", "threading.py", "queue.py",
                             "plansync/engine/fanout.py", "_thread.")),
    ("start-up (imports)", ("importlib", "<frozen", "marshal")),
]
OTHER = "other"
STDLIB = os.path.dirname(os.__file__)


def kind_of(function: tuple[str, int, str]) -> str | None:
    """The kind of a function's own time; None for a builtin or a standard library helper
    with no mark of its own (its time goes to its callers' kinds)."""
    filename, _line, name = function
    where = f"{filename}:{name}"
    for kind, marks in KINDS:
        if any(mark in where for mark in marks):
            return kind
    if filename == "~" or (filename.startswith(STDLIB) and "site-packages" not in filename):
        return None
    return OTHER


def shares(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of CPU per kind: own time, a builtin's given to its callers' kinds."""
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    seconds: dict[str, float] = {}

    def kind_through_callers(function: Any, depth: int = 0) -> dict[str, float]:
        """A builtin's time split among its callers' kinds, by what each call took."""
        callers = table[function][4]
        total = sum(entry[2] for entry in callers.values()) or 1.0
        split: dict[str, float] = {}
        for caller, entry in callers.items():
            kind = kind_of(caller)
            if kind is None and depth < 5 and caller in table:
                for inner, part in kind_through_callers(caller, depth + 1).items():
                    split[inner] = split.get(inner, 0.0) + part * entry[2] / total
            else:
                split[kind or OTHER] = split.get(kind or OTHER, 0.0) + entry[2] / total
        return split or {OTHER: 1.0}

    for function, (_cc, _nc, own, _cum, _callers) in table.items():
        kind = kind_of(function)
        if kind is not None:
            seconds[kind] = seconds.get(kind, 0.0) + own
            continue
        for inner, part in kind_through_callers(function).items():
            seconds[inner] = seconds.get(inner, 0.0) + own * part
    return seconds


def child(code: str, args: list[str], out: Path) -> None:
    """Run `plansync ARGS` here with every thread profiled; write the kinds' seconds."""
    sys.path.insert(0, code)
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_profiling(*_: Any) -> None:  # the first event of each new thread
        sys.setprofile(None)
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.enable()

    threading.setprofile(start_profiling)
    main_profile = cProfile.Profile(time.thread_time)
    sys.argv = ["plansync", *args]
    main_profile.enable()
    try:
        from plansync.cli import main

        main()
    except SystemExit:
        pass
    finally:
        main_profile.disable()
    threading.setprofile(None)
    stats = pstats.Stats(main_profile)
    for profile in profiles:
        stats.add(profile)
    out.write_text(json.dumps(shares(stats)))


def measure(code: str | None, args: list[str], env: dict[str, str], plans: int,
            scratch: Path) -> dict[str, Any]:
    """CPU per plan without the profiler, then each kind's share under it."""
    cwd = code or str(HERE.parent)
    started = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "plansync", *args], env=env, cwd=cwd, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ended.ru_utime - started.ru_utime) + (ended.ru_stime - started.ru_stime)
    out = scratch / f"kinds-{os.getpid()}-{time.monotonic_ns()}.json"
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", cwd,
                    str(out), "--", *args], env=env, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)
    seconds = json.loads(out.read_text())
    profiled = sum(seconds.values())
    return {"cpu_ms_per_plan": cpu * 1000 / plans,
            "kinds": {kind: value / profiled for kind, value in seconds.items()}}


def table(results: dict[str, dict[str, Any]]) -> str:
    labels = list(results)
    kinds = [kind for kind, _ in KINDS] + [OTHER]
    head = "| where the CPU goes | " + " | ".join(
        f"{label}: share | {label}: ms/plan" for label in labels) + " |"
    lines = [head, "|---|" + "---|---|" * len(labels)]
    for kind in kinds:
        cells = []
        for label in labels:
            share = results[label]["kinds"].get(kind, 0.0)
            cells.append(f"{share:.1%} | {share * results[label]['cpu_ms_per_plan']:.3f}")
        if any(results[label]["kinds"].get(kind, 0.0) >= 0.0005 for label in labels):
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append("| **total, measured without the profiler** | " + " | ".join(
        f"100% | {results[label]['cpu_ms_per_plan']:.3f}" for label in labels) + " |")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[sys.argv.index("--") + 1:], Path(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=2000)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--compare", metavar="REF", help="also profile this commit's client")
    options = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from bench.run import Emulator, client_at, python_env, write_spec

    with tempfile.TemporaryDirectory(prefix="plansync-profile-") as folder:
        scratch = Path(folder)
        python = python_env(scratch)
        emulator = Emulator(scratch / "emulator", options.plans, python)
        try:
            env = emulator.env(scratch / "state.json")
            spec = write_spec(scratch / "spec.yaml", options.plans, 0.1)
            args = ["plan", str(spec), "--parallelism", str(options.parallelism)]
            clients: dict[str, str | None] = {}
            if options.compare:
                clients[options.compare] = client_at(options.compare, scratch,
                                                     python)["PLANSYNC_CODE"]
            clients["now"] = None
            results = {label: measure(code, args, env, options.plans, scratch)
                       for label, code in clients.items()}
        finally:
            emulator.stop()
    print(f"plan of {options.plans} plans, no latency, parallelism {options.parallelism}:\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
