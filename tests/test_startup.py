"""A command imports what it uses, nothing more: `plansync plan` none of apply's machinery,
`validate` nothing of the network or the keys, `--help` none of the engine, and none of
them the remote state backends' libraries. Each command runs as its own process (`plan`
against the emulator) and lists its sys.modules as it exits. No timings: what is imported
is what start-up costs, and it does not depend on the machine's load."""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import plansync
from tests.helpers import HEAD

# Runs a plansync command in this process, then writes the modules it loaded to argv[1].
REPORTER = """
import sys
from plansync.cli import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write("\\n".join(sorted(sys.modules)))
sys.exit(code)
"""

# What no command of these loads: the remote state backends, the full JSON Schema
# library (it only explains a spec or state that fails the schema), the commands they do
# not run, and apply's machinery.
NEVER = {
    "boto3", "botocore", "psycopg", "jsonschema", "plansync.emulator", "plansync.gitops",
    "plansync.engine.applier", "plansync.engine.ceiling", "plansync.engine.planfile",
    "plansync.engine.drift",
}
OTHER_COMMANDS = {f"plansync.commands.{name}" for name in (
    "apply", "ci", "demo", "drift", "emulator", "imports", "init", "inquire", "state")}
NETWORK_AND_KEYS = {
    "requests", "urllib3", "joserfc", "cryptography", "lxml", "plansync.keys",
    "plansync.gateway.client", "plansync.gateway.envelope", "plansync.gateway.messages",
    "plansync.engine.backends", "plansync.engine.planner", "importlib.metadata",
}
SPECS_AND_ENGINE = {"yaml", "jsonschema_rs", "iso4217", "plansync.spec",
                    "plansync.engine.plan", "plansync.formats"}


def imported(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> set[str]:
    listing = tmp_path / "modules.txt"
    result = subprocess.run([sys.executable, "-c", REPORTER, str(listing), *args],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return set(listing.read_text().split())


def loaded(modules: set[str], names: set[str]) -> set[str]:
    """Those of ``names`` that are in ``modules``, as modules or as packages of one."""
    return {name for name in names
            if name in modules or any(m.startswith(f"{name}.") for m in modules)}


def one_plan(tmp_path: Path) -> str:
    spec = tmp_path / "one.yaml"
    spec.write_text(HEAD + 'plans:\n  - {id: "156142", amount: "99.90", currency: SGD}\n')
    return str(spec)


def test_plan_of_one_plan_loads_no_apply_machinery(env: dict[str, str],
                                                  tmp_path: Path) -> None:
    modules = imported(tmp_path, "plan", one_plan(tmp_path), env=env)
    assert "plansync.gateway.client" in modules  # it did plan, against the emulator
    assert loaded(modules, NEVER | OTHER_COMMANDS) == set()


def test_validate_loads_neither_network_nor_keys(tmp_path: Path) -> None:
    modules = imported(tmp_path, "validate", one_plan(tmp_path))
    assert "plansync.spec.loader" in modules
    assert loaded(modules, NEVER | OTHER_COMMANDS | NETWORK_AND_KEYS) == set()


def test_help_loads_no_engine(tmp_path: Path) -> None:
    modules = imported(tmp_path, "--help")
    assert "plansync.commands.apply" in modules  # --help lists every command
    # The emulator's fault knobs make its flags; the emulator itself stays unloaded.
    emulator = {"plansync.emulator.server", "plansync.emulator.gateway",
                "plansync.emulator.store"}
    assert loaded(modules, (NEVER - {"plansync.emulator"}) | emulator | NETWORK_AND_KEYS
                  | SPECS_AND_ENGINE) == set()


def test_each_command_is_found_under_its_own_name() -> None:
    """The CLI imports a command's module when it is first looked up: the table of where
    each lives names each by the name the command itself declares."""
    from plansync.cli import cli

    assert {name: command.name for name, command in cli.commands.items()} == \
        {name: name for name in cli.commands}


def test_the_version_constant_is_the_installed_version() -> None:
    assert plansync.__version__ == importlib.metadata.version("plansync")
