"""plansync's benchmark: speed, CPU, memory and scale, against the emulator on loopback.

    python bench/run.py            # everything (a few minutes); writes bench/results.json
                                   # and bench/RESULTS.md
    python bench/run.py --quick    # tiny sizes: checks that the harness works (the tests)
    python bench/run.py --compare 4c1f106   # and the client of that commit, side by side
    python bench/run.py --wide-only         # only validate of one mapping of 50,000 keys

The emulator runs as a separate process, seeded (straight into its SQLite file) with
generated plans. Each measured command is a separate plansync process; its wall time,
CPU (user + system) and peak RSS come from the kernel (wait4). The raw crypto floor —
one PS256 signature and one RSA-OAEP decryption, what each plan must cost the client —
is measured in the same run, so ratios compare like with like.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from bench import baseline  # noqa: E402
from plansync.emulator import home  # noqa: E402
from plansync.emulator.store import PlanStore, StoredPlan  # noqa: E402

PLANSYNC = [sys.executable, "-m", "plansync"]
TICK = os.sysconf("SC_CLK_TCK")


def python_env(scratch: Path) -> dict[str, str]:
    """The environment for measured processes: bytecode cached, as a pip-installed package
    has it. (An editable install under PYTHONDONTWRITEBYTECODE=1 would recompile
    plansync's own modules at every start: ~0.1 s that users do not pay.)"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "plansync")],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return env


@dataclass
class Run:
    name: str
    plans: int
    wall_s: float
    plans_per_s: float
    cpu_ms_per_plan: float
    peak_rss_mb: float
    emulator_cpu_ms_per_request: float | None = None
    exit_code: int = 0


class Emulator:
    """The emulator as its own process, seeded with ``count`` generated plans."""

    def __init__(self, folder: Path, count: int, python: dict[str, str]) -> None:
        home.init(folder)
        (folder / home.SEED).write_text("plans: []\n")
        store = PlanStore(str(folder / "plans.db"))
        store.load(StoredPlan("JT01", str(1_000_000 + i), {
            "recurringStatus": "Y", "currency": "702", "amount": "000000001000",
            "allowAccumulate": "N", "recurringInterval": "30", "recurringCount": "12",
            "currentCount": "1", "invoicePrefix": f"INV{i}", "maskedCardNo": "XXXXXXXXXXXX1111",
        }, False) for i in range(count))
        store.close()
        self.folder = folder
        self.process = subprocess.Popen(
            [*PLANSYNC, "emulator", "serve", "--dir", str(folder), "--port", "0",
             "--db", str(folder / "plans.db")], stdout=subprocess.PIPE, text=True, env=python)
        self.python = python
        assert self.process.stdout is not None
        self.base = self.process.stdout.readline().split()[-1]
        self.url = self.base + home.ACTION_PATH

    def latency(self, ms: float) -> None:
        request = urllib.request.Request(self.base + "/_emulator/faults", method="PUT",
                                         data=json.dumps({"latency_ms": ms}).encode())
        urllib.request.urlopen(request, timeout=10).read()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def requests(self) -> int:
        with urllib.request.urlopen(self.base + "/_emulator/log", timeout=60) as answer:
            return len(json.load(answer))

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=30)

    def env(self, state: Path) -> dict[str, str]:
        return {**self.python, "PLANSYNC_ENDPOINT": self.url, "PLANSYNC_MERCHANT_ID": "JT01",
                "PLANSYNC_MERCHANT_KEY": str(self.folder / home.MERCHANT_PRIVATE),
                "PLANSYNC_GATEWAY_KEY": str(self.folder / home.GATEWAY_PUBLIC),
                "PLANSYNC_STATE": str(state)}


def write_spec(path: Path, count: int, changed: float, amount: str = "10.00",
               new_amount: str = "12.50") -> Path:
    """A spec of plans 1..count; the first ``changed`` fraction of them get a new amount."""
    cut = int(count * changed)
    lines = ["apiVersion: plansync/v1", "kind: RecurringPlans", "plans:"]
    lines += [f'  - {{id: "{1_000_000 + i}", amount: "{new_amount if i < cut else amount}", '
              f"currency: SGD, recurring_interval: 30}}" for i in range(count)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_wide_spec(path: Path, keys: int) -> Path:
    """One plan whose mapping holds ``keys`` unknown keys: each is a problem with a line
    to find, which took time quadratic in the keys (50,000: 288 s)."""
    lines = ["apiVersion: plansync/v1", "kind: RecurringPlans", "plans:", "  - id: '1'"]
    lines += [f"    extra_{i}: {i}" for i in range(keys)]
    path.write_text("\n".join(lines) + "\n")
    return path


def measure_wide(root: Path, keys: int, env: dict[str, str]) -> Run:
    """`validate` of a spec whose one mapping has ``keys`` keys; it exits 1 (each key
    is unknown: a valid spec cannot have many keys in one mapping). Run.plans: keys."""
    spec = write_wide_spec(root / f"wide-{keys}.yaml", keys)
    return measure(f"validate, one mapping of {keys} keys", ["validate", str(spec)], keys,
                   env, expect=(1,))


def measure(name: str, args: list[str], plans: int, env: dict[str, str],
            emulator: Emulator | None = None, requests: int | None = None,
            expect: tuple[int, ...] = (0, 2)) -> Run:
    """Run one plansync command as its own process; the kernel reports its resources.
    In the folder PLANSYNC_CODE names, if any: `python -m` looks in the current folder
    first, so that is how an earlier commit's client is run."""
    before = emulator.cpu_seconds() if emulator else 0.0
    logged = emulator.requests() if emulator else 0
    # stderr to a file, not a pipe: nobody reads a pipe during wait4, and a command that
    # says more than the pipe holds (the wide validate before issue 21: 50,000 lines)
    # would block on it forever.
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen([*PLANSYNC, *args], env=env, stdout=subprocess.DEVNULL,
                                   stderr=stderr, stdin=subprocess.DEVNULL,
                                   cwd=env.get("PLANSYNC_CODE"))
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code not in expect:
            stderr.seek(0)
            raise SystemExit(f"{name}: plansync {' '.join(args)} exited {code}: "
                             f"{stderr.read().decode(errors='replace')[-4000:]}")
    emulator_ms = None
    if emulator:
        served = requests if requests is not None else emulator.requests() - logged
        emulator_ms = (emulator.cpu_seconds() - before) * 1000 / max(served, 1)
    return Run(name, plans, wall, plans / wall, (usage.ru_utime + usage.ru_stime) * 1000 / plans,
               usage.ru_maxrss / 1024, emulator_ms, code)


def client_at(ref: str, scratch: Path, python: dict[str, str]) -> dict[str, str]:
    """The environment that runs plansync's client as it was at commit ``ref`` (its
    package and schemas from git, run from their folder; the same installed libraries)."""
    folder = scratch / f"client-{ref}"
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", ref, "plansync",
                              "schemas"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(folder / "plansync")],
                   env=python, check=True, stdout=subprocess.DEVNULL)
    return {"PLANSYNC_CODE": str(folder)}


@contextlib.contextmanager
def remote_state(kind: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A PostgreSQL or S3-compatible server for one run: the state URL and environment."""
    from tests.servers import postgres_server, s3_server

    if kind == "postgres":
        with postgres_server() as url:
            yield url + "?workspace=bench", {}
        return
    credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                   "AWS_DEFAULT_REGION": "us-east-1"}
    with s3_server() as endpoint:
        import boto3

        boto3.client("s3", endpoint_url=endpoint, **{
            "aws_access_key_id": "bench", "aws_secret_access_key": "bench",
            "region_name": "us-east-1"}).create_bucket(Bucket="plansync-bench")
        yield f"s3://plansync-bench/state?endpoint_url={endpoint}", credentials


def crypto_floor_ms(folder: Path, rounds: int = 300) -> float:
    """One PS256 signature plus one RSA-OAEP decryption: the least a plan costs us."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_private_key(
        (folder / home.MERCHANT_PRIVATE).read_bytes(), None)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    wrapped = key.public_key().encrypt(os.urandom(32), oaep)  # type: ignore[union-attr]
    started = time.process_time()
    for _ in range(rounds):
        key.sign(b"x" * 600, pss, hashes.SHA256())  # type: ignore[union-attr,call-arg]
        key.decrypt(wrapped, oaep)  # type: ignore[union-attr]
    return (time.process_time() - started) * 1000 / rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--results-md", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--compare", metavar="REF",
                        help="also run the client of this git commit, side by side")
    parser.add_argument("--wide-only", action="store_true",
                        help="measure only validate of one mapping of 50,000 keys (with "
                             "--compare, that commit's too); print it, write no results")
    options = parser.parse_args()
    quick = options.quick
    wide = 50 if quick else 50_000
    if options.wide_only:
        return wide_only(wide, options.compare)
    sizes = {"fast": 50 if quick else 5000, "latency": 40 if quick else 2000,
             "sample": 10 if quick else 200, "apply": 30 if quick else 2000,
             "sequential": 10 if quick else 1000,
             "scale": [20, 50] if quick else [1000, 10000, 100000]}
    latency = 5 if quick else 50
    p = options.parallelism
    # A real gateway's latency, and the parallelism a generous rate limit allows.
    far = {"latency": 10 if quick else 100, "parallelism": 64, "plans": 50 if quick else 5000}
    whole = 40 if quick else 800  # plans of the whole-process run, start-up included
    runs: list[Run] = []
    notes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="plansync-bench-") as scratch:
        root = Path(scratch)
        emulator = Emulator(root / "emulator", max(sizes["scale"]), python_env(root))
        try:
            env = emulator.env(root / "state.json")
            floor = crypto_floor_ms(emulator.folder)
            notes["crypto_floor_ms_per_plan"] = floor
            before = ({**env, **client_at(options.compare, root, emulator.python)}
                      if options.compare else None)
            if options.compare:
                notes["compare"] = options.compare
            compared: list[Run] = []

            # 1. zero latency: throughput and CPU per plan
            spec = write_spec(root / "fast.yaml", sizes["fast"], 0.1)
            runs.append(measure("plan, no latency", ["plan", str(spec), "--parallelism", str(p)],
                                sizes["fast"], env, emulator))
            if before:  # the same run with the earlier client, right after
                compared.append(measure("plan, no latency", ["plan", str(spec),
                                        "--parallelism", str(p)], sizes["fast"], before,
                                        emulator))
            sequential = write_spec(root / "sequential.yaml", sizes["sequential"], 0.1)
            runs.append(measure("plan --parallelism 1, no latency",
                                ["plan", str(sequential), "--parallelism", "1"],
                                sizes["sequential"], env, emulator))
            sample = write_spec(root / "sample.yaml", sizes["sample"], 0.1)
            # 1a. start-up: plan of one plan, as a one-plan CI job runs it
            one = write_spec(root / "one.yaml", 1, 0.0)
            runs.append(measure("plan of one plan, no latency", ["plan", str(one)], 1, env,
                                emulator))
            if before:
                compared.append(measure("plan of one plan, no latency", ["plan", str(one)], 1,
                                        before, emulator))

            # 2. latency-bound: parallel plan against sequential plan and the baseline
            emulator.latency(latency)
            spec = write_spec(root / "latency.yaml", sizes["latency"], 0.1)
            runs.append(measure(f"plan, {latency} ms, parallelism {p}",
                                ["plan", str(spec), "--parallelism", str(p)], sizes["latency"],
                                env, emulator))
            if before:
                compared.append(measure(f"plan, {latency} ms, parallelism {p}",
                                        ["plan", str(spec), "--parallelism", str(p)],
                                        sizes["latency"], before, emulator))
            # 2a. the whole process, start-up included, on a book a CI job plans
            small_book = write_spec(root / "whole.yaml", whole, 0.1)
            name = f"plan {whole}, {latency} ms, parallelism {p}, whole process"
            runs.append(measure(name, ["plan", str(small_book), "--parallelism", str(p)],
                                whole, env, emulator))
            if before:
                compared.append(measure(name, ["plan", str(small_book), "--parallelism",
                                               str(p)], whole, before, emulator))
            runs.append(measure(f"plan --parallelism 1, {latency} ms",
                                ["plan", str(sample), "--parallelism", "1"], sizes["sample"],
                                env, emulator))
            runs.append(baseline.measure(emulator.url, emulator.folder, sizes["sample"],
                                         f"baseline client, {latency} ms"))

            # 2b. a real gateway's latency at the parallelism of a generous rate limit
            emulator.latency(far["latency"])
            spec = write_spec(root / "far.yaml", far["plans"], 0.1)
            name = f"plan, {far['latency']} ms, parallelism {far['parallelism']}"
            args = ["plan", str(spec), "--parallelism", str(far["parallelism"])]
            runs.append(measure(name, args, far["plans"], env, emulator))
            if before:
                compared.append(measure(name, args, far["plans"], before, emulator))
            notes["far"] = far
            emulator.latency(latency)

            # 3. apply: every write is a check, the write and a verification
            spec = write_spec(root / "apply.yaml", sizes["apply"], 1.0, new_amount="15.00")
            runs.append(measure(f"apply {sizes['apply']} updates, {latency} ms, parallelism {p}",
                                ["apply", str(spec), "--auto-approve", "--parallelism", str(p),
                                 "--allow-near-charge"], sizes["apply"], env, emulator))
            notes["apply_round_trips"] = sizes["apply"] * 4  # the plan's inquiry, then three
            # 3a. a saved plan, as the GitOps flow applies it: the ceiling plans again from
            # the spec and live (one inquiry per plan) before each compare-and-set, so
            # `apply --plan` now costs the four round trips of `apply` (it was three).
            name = f"apply --plan {sizes['apply']} updates, {latency} ms, parallelism {p}"
            clients = [(env, runs, "18.00")] + ([(before, compared, "19.00")] if before
                                                else [])
            for shared_state, into, amount in clients:
                # A state of its own: an earlier client may not read a newer one's.
                client = {**shared_state, "PLANSYNC_STATE": str(root / f"saved-{amount}.json")}
                spec = write_spec(root / f"saved-{amount}.yaml", sizes["apply"], 1.0,
                                  new_amount=amount)
                saved = root / f"saved-{amount}.plan.json"
                subprocess.run([*PLANSYNC, "plan", str(spec), "--out", str(saved),
                                "--parallelism", str(p)], env=client, check=True,
                               capture_output=True, cwd=client.get("PLANSYNC_CODE"))
                into.append(measure(name, ["apply", "--plan", str(saved), "--auto-approve",
                                           "--parallelism", str(p), "--allow-near-charge"],
                                    sizes["apply"], client, emulator))
            # 3b. the same apply with the state, journal and lock in PostgreSQL and in S3
            # (real servers on this machine, as the tests start them): two journal
            # records per write, each durable before the write is sent.
            for backend, amount in (("postgres", "16.00"), ("s3", "17.00")):
                spec = write_spec(root / f"apply-{backend}.yaml", sizes["apply"], 1.0,
                                  new_amount=amount)
                with remote_state(backend) as (location, extra):
                    runs.append(measure(
                        f"apply {sizes['apply']} updates, {latency} ms, parallelism {p}, "
                        f"{backend} state",
                        ["apply", str(spec), "--auto-approve", "--parallelism", str(p),
                         "--allow-near-charge"], sizes["apply"],
                        {**env, **extra, "PLANSYNC_STATE": location}, emulator))

            # 4. scale: validate and plan as N grows (no latency)
            emulator.latency(0)
            for count in sizes["scale"]:
                spec = write_spec(root / f"scale-{count}.yaml", count, 0.1)
                runs.append(measure(f"validate {count}", ["validate", str(spec)], count, env))
                runs.append(measure(f"plan {count}", ["plan", str(spec), "--parallelism", str(p)],
                                    count, env, emulator))
                if before and count == max(sizes["scale"]):  # the largest plan, both clients
                    # A state of its own: an earlier client may not read the newer's records.
                    own = {**before, "PLANSYNC_STATE": str(root / "scale-before.json")}
                    compared.append(measure(f"plan {count}", ["plan", str(spec),
                                            "--parallelism", str(p)], count, own, emulator))
            # 4a. one mapping of many keys (a problem each): linear, as the plans are
            runs.append(measure_wide(root, wide, env))
            # The machine's speed drifts (shared VM): the floor again, after the big phases.
            notes["crypto_floor_ms_at_end"] = crypto_floor_ms(emulator.folder)
        finally:
            emulator.stop()
        # 5. start-up
        small = write_spec(root / "small.yaml", 3, 0.0)
        runs.append(measure("plansync --help", ["--help"], 1, env))
        runs.append(measure("validate, 3 plans", ["validate", str(small)], 1, env))

    notes["whole_plans"] = whole
    targets = check_targets(runs, notes, latency, p, quick)
    print_table(runs, notes, targets)
    for old in compared:
        new = next(r for r in runs if r.name == old.name)
        print(f"{old.name}: {options.compare} {old.plans_per_s:.1f} plans/s, "
              f"{old.cpu_ms_per_plan:.3f} ms CPU/plan -> now {new.plans_per_s:.1f}, "
              f"{new.cpu_ms_per_plan:.3f}")
    machine = {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
               "system": platform.platform()}
    document = {"machine": machine, "quick": quick, "notes": notes,
                "runs": [asdict(r) for r in runs], "targets": targets,
                "compared": [asdict(r) for r in compared]}
    options.out.write_text(json.dumps(document, indent=2) + "\n")
    if not quick:
        options.results_md.write_text(results_markdown(document))
    return 0


def wide_only(keys: int, compare: str | None) -> int:
    """The one-mapping validate alone (and that of commit ``compare``): a quick check."""
    with tempfile.TemporaryDirectory(prefix="plansync-bench-") as scratch:
        root = Path(scratch)
        env = python_env(root)
        clients = [("now", env)]
        if compare:
            clients.insert(0, (compare, {**env, **client_at(compare, root, env)}))
        small = write_spec(root / "small.yaml", 3, 0.0)
        for label, client in clients:
            # Not measured: the first process fills the bytecode cache of the libraries.
            measure("warm-up", ["validate", str(small)], 1, client)
            run = measure_wide(root, keys, client)
            print(f"{run.name} ({label}): {run.wall_s:.2f} s wall, "
                  f"{run.cpu_ms_per_plan * keys / 1000:.2f} s CPU, "
                  f"peak RSS {run.peak_rss_mb:.1f} MB")
    return 0


def check_targets(runs: list[Run], notes: dict[str, Any], latency: float, p: int,
                  quick: bool) -> list[dict[str, Any]]:
    by = {r.name: r for r in runs}
    floor = notes["crypto_floor_ms_per_plan"]
    fast = by["plan, no latency"]
    parallel = by[f"plan, {latency} ms, parallelism {p}"]
    sequential = by[f"plan --parallelism 1, {latency} ms"]
    base = by[f"baseline client, {latency} ms"]
    apply = next(r for r in runs if r.name.startswith("apply"))
    on = {kind: next(r for r in runs if r.name.endswith(f"{kind} state"))
          for kind in ("postgres", "s3")}
    ideal = p / (latency / 1000)
    far = notes["far"]
    far_run = by[f"plan, {far['latency']} ms, parallelism {far['parallelism']}"]
    far_ideal = far["parallelism"] / (far["latency"] / 1000)
    whole = by[f"plan {notes['whole_plans']}, {latency} ms, parallelism {p}, whole process"]
    whole_ideal_s = notes["whole_plans"] / ideal  # no start-up, no CPU: only round trips
    apply_ideal = p / (latency / 1000) / 4  # plans per second with four round trips each
    targets = [
        ("plan >= 500 plans/s, no latency", fast.plans_per_s, ">=", 500),
        ("client CPU per plan, no latency <= 2x the crypto floor",
         fast.cpu_ms_per_plan / floor, "<=", 2),
        (f"plan at {latency} ms >= 88% of ideal {ideal:.0f}/s", parallel.plans_per_s / ideal,
         ">=", 0.88),
        (f"plan at {far['latency']} ms, parallelism {far['parallelism']} >= 90% of ideal "
         f"{far_ideal:.0f}/s", far_run.plans_per_s / far_ideal, ">=", 0.9),
        (f"plan {notes['whole_plans']} at {latency} ms, whole process >= 92% of ideal "
         f"{whole_ideal_s:.2f} s", whole_ideal_s / whole.wall_s, ">=", 0.92),
        ("plan of one plan <= 0.15 s", by["plan of one plan, no latency"].wall_s, "<=", 0.15),
        ("plan >= 12x --parallelism 1", parallel.plans_per_s / sequential.plans_per_s, ">=", 12),
        ("plan >= 15x baseline client", parallel.plans_per_s / base.plans_per_s, ">=", 15),
        (f"apply >= 80% of ideal {apply_ideal:.0f}/s", apply.plans_per_s / apply_ideal, ">=", 0.8),
        *((f"apply, {kind} state >= 90% of local's", run.plans_per_s / apply.plans_per_s,
           ">=", 0.9) for kind, run in on.items()),
        ("validate 100k <= 10 s", by.get("validate 100000", fast).wall_s, "<=", 10),
        ("validate, one mapping of 50k keys <= 2 s",
         by.get("validate, one mapping of 50000 keys", fast).wall_s, "<=", 2),
        ("plan 100k peak RSS <= 200 MB", by.get("plan 100000", fast).peak_rss_mb, "<=", 200),
        ("plansync --help <= 0.3 s", by["plansync --help"].wall_s, "<=", 0.3),
        ("validate small <= 0.3 s", by["validate, 3 plans"].wall_s, "<=", 0.3),
        ("emulator CPU per request <= client's",
         (fast.emulator_cpu_ms_per_request or 0) / fast.cpu_ms_per_plan, "<=", 1),
        ("sequential client, no latency: answers/s",
         by["plan --parallelism 1, no latency"].plans_per_s, ">=", 200),
    ]
    notes["client_cpu_per_plan_x_crypto_floor"] = round(fast.cpu_ms_per_plan / floor, 2)
    return [{"target": name, "value": round(value, 3), "limit": limit,
             "met": (value >= limit if op == ">=" else value <= limit) if not quick else None}
            for name, value, op, limit in targets]


def print_table(runs: list[Run], notes: dict[str, Any], targets: list[dict[str, Any]]) -> None:
    print(f"crypto floor: {notes['crypto_floor_ms_per_plan']:.3f} ms per plan "
          "(one PS256 signature + one RSA-OAEP decryption); "
          f"{notes['crypto_floor_ms_at_end']:.3f} ms at the end of the run\n")
    print(f"{'run':44} {'plans':>7} {'wall s':>8} {'plans/s':>9} {'cpu ms/plan':>12} "
          f"{'peak MB':>8} {'emu ms/req':>10}")
    for r in runs:
        emu = f"{r.emulator_cpu_ms_per_request:.3f}" if r.emulator_cpu_ms_per_request else "-"
        print(f"{r.name:44} {r.plans:>7} {r.wall_s:>8.2f} {r.plans_per_s:>9.1f} "
              f"{r.cpu_ms_per_plan:>12.3f} {r.peak_rss_mb:>8.1f} {emu:>10}")
    print()
    for t in targets:
        mark = {True: "met ", False: "MISS", None: "    "}[t["met"]]
        print(f"{mark} {t['target']}: {t['value']} (limit {t['limit']})")


def results_markdown(document: dict[str, Any]) -> str:
    machine = document["machine"]
    lines = ["# Benchmark results", "",
             f"Made by `python bench/run.py` on {time.strftime('%Y-%m-%d', time.gmtime())}: "
             f"{machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
             "the emulator on the same machine.", "",
             f"Crypto floor: {document['notes']['crypto_floor_ms_per_plan']:.3f} ms per plan "
             f"(one PS256 signature + one RSA-OAEP decryption); "
             f"{document['notes']['crypto_floor_ms_at_end']:.3f} ms at the end of the run, "
             "a measure of how much the machine's speed drifted meanwhile. Client CPU per "
             "plan with no latency: "
             f"{document['notes']['client_cpu_per_plan_x_crypto_floor']}x the floor.",
             "", "| run | plans | wall s | plans/s | CPU ms/plan | peak RSS MB "
                 "| emulator ms/request |",
             "|---|---|---|---|---|---|---|"]
    for r in document["runs"]:
        emu = f"{r['emulator_cpu_ms_per_request']:.3f}" if r["emulator_cpu_ms_per_request"] else "-"
        lines.append(f"| {r['name']} | {r['plans']} | {r['wall_s']:.2f} | "
                     f"{r['plans_per_s']:.1f} | {r['cpu_ms_per_plan']:.3f} | "
                     f"{r['peak_rss_mb']:.1f} | {emu} |")
    if document["compared"]:
        lines += ["", f"The client at commit {document['notes']['compare']} (before) and now "
                      "(after), each right after the other against the same emulator:", "",
                  "| run | plans/s before | plans/s after | CPU ms/plan before "
                  "| CPU ms/plan after |", "|---|---|---|---|---|"]
        after = {r["name"]: r for r in document["runs"]}
        for old in document["compared"]:
            new = after[old["name"]]
            lines.append(f"| {old['name']} | {old['plans_per_s']:.1f} | "
                         f"{new['plans_per_s']:.1f} | {old['cpu_ms_per_plan']:.3f} | "
                         f"{new['cpu_ms_per_plan']:.3f} |")
    lines += ["", "| target | value | limit | met |", "|---|---|---|---|"]
    lines += [f"| {t['target']} | {t['value']} | {t['limit']} | {'yes' if t['met'] else 'NO'} |"
              for t in document["targets"]]
    return "\n".join(lines) + "\n"


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
