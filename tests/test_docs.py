"""The README's spec reference cannot drift from the JSON Schema."""

import re
from pathlib import Path

from plansync import schema_files
from tests.helpers import cli_commands

README = Path(__file__).parents[1] / "README.md"


def test_every_spec_field_is_documented_and_nothing_else() -> None:
    text = README.read_text()
    table = text.split("<!-- spec-fields:", 1)[1].split("\n\n", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE)
    schema = schema_files.load("plansync-spec.schema.json")["$defs"]
    fields = [*schema["plan"]["properties"], *schema["fields"]["properties"]]
    assert sorted(documented) == sorted(fields)


def test_every_enum_value_of_the_schema_is_in_the_readme() -> None:
    text = README.read_text()
    schema = schema_files.load("plansync-spec.schema.json")["$defs"]
    for value in schema["fields"]["properties"]["status"]["enum"]:
        assert f"`{value}`" in text
    for key in schema["lifecycle"]["properties"]:
        assert f"`{key}" in text


def test_the_readme_spec_example_is_valid(tmp_path: Path) -> None:
    from plansync.spec import loader

    example = README.read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.yaml").write_text(example)
    plans, problems = loader.load([tmp_path / "example.yaml"])
    assert problems == [] and [p.id for p in plans] == ["156142", "156145"]


def test_every_command_and_option_is_in_the_readme_cli_reference() -> None:
    import click

    text = README.read_text()
    reference = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    missing = []
    for name, command in cli_commands():
        assert isinstance(command, click.Command)
        if f"### `plansync {name}" not in reference:
            missing.append(f"section for plansync {name}")
        for param in command.params:
            if isinstance(param, click.Option):
                for flag in param.opts:
                    if flag.startswith("--") and flag not in reference:
                        missing.append(f"plansync {name} {flag}")
    assert missing == []


def test_every_command_has_complete_help() -> None:
    import click

    for name, command in cli_commands():
        assert isinstance(command, click.Command)
        assert command.help and len(command.help) > 20, name
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"plansync {name} {param.opts[0]} has no help"


def test_the_walk_through_works_copy_pasted(tmp_path: Path) -> None:
    """The README's walk-through, run by bash as a reader would paste it."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8700)) == 0:
            import pytest

            pytest.skip("port 8700, which the walk-through uses, is taken on this machine")
    section = README.read_text().split("## Walk-through", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```sh\n")[1:]]
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    script += "\n".join(blocks)
    # The top of a clone with the Quickstart's virtualenv: this test's own, as it is.
    clone = tmp_path / "plansync"
    clone.mkdir()
    (clone / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}  # nothing on PATH
    result = subprocess.run(["bash", "-c", script], cwd=clone, env=env, text=True,
                            capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    # The scaffolded repository is beside the clone, not nested in it.
    assert (tmp_path / "my-plans" / "plansync.yaml").is_file()
    assert [p.name for p in clone.iterdir()] == [".venv"]
    assert '~ amount          = 99.90 -> 115.00' in result.stdout
    assert "Apply complete: 2 updated, 1 cancelled, 1 unchanged, 0 failed." in result.stdout
    assert result.stdout.rstrip().endswith("No changes. Live plans match the specification.")
