"""The benchmark harness runs end to end on tiny sizes, so that it cannot rot.
(No timing is asserted here: numbers belong to bench/RESULTS.md, not to tests.)"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_benchmark_runs_and_reports_every_measure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick",
                             "--compare", "HEAD",  # the client as committed, side by side
                             "--out", str(out), "--results-md", str(tmp_path / "R.md")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(out.read_text())
    names = [run["name"] for run in document["runs"]]
    assert any(name.startswith("plan, no latency") for name in names)
    assert any(name.startswith("baseline client") for name in names)
    assert any(name.startswith("apply") for name in names)
    assert any(name.endswith("postgres state") for name in names)
    assert any(name.endswith("s3 state") for name in names)
    assert {"validate 20", "plan 50", "plansync --help",
            "validate, one mapping of 50 keys"} <= set(names)
    assert document["notes"]["crypto_floor_ms_per_plan"] > 0
    assert len(document["targets"]) == 18
    assert [run["name"] for run in document["compared"]] == [
        "plan, no latency", "plan of one plan, no latency", "plan, 5 ms, parallelism 16",
        "plan 40, 5 ms, parallelism 16, whole process", "plan, 10 ms, parallelism 64",
        "apply --plan 30 updates, 5 ms, parallelism 16", "plan 50"]
    assert any(name.startswith("apply --plan") for name in names)
    for run in document["runs"]:
        assert run["wall_s"] > 0 and run["peak_rss_mb"] > 0 and run["exit_code"] in (0, 1, 2)
    assert "crypto floor" in result.stdout


def test_the_wide_mapping_measure_runs_alone(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick",
                             "--wide-only"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("validate, one mapping of 50 keys (now): ")


def test_the_cpu_profile_runs_and_accounts_for_the_cpu() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "cpu_profile.py"),
                             "--plans", "20"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split(" | ")[0].strip("| *"): line for line in result.stdout.splitlines()
            if line.startswith("| ")}
    assert {"sign (RSA-PSS)", "decrypt (RSA-OAEP)", "HTTP (requests, urllib3, http.client)",
            "total, measured without the profiler"} <= set(rows)
    shares = [float(cell.strip(" %")) for line in rows.values() if "%" in line
              and not line.startswith("| **") for cell in line.split(" | ")[1:2]]
    assert 99 <= sum(shares) <= 101  # every kind of work together: all the profiled CPU
