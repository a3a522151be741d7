"""The README's spec reference cannot drift from the JSON Schema."""

import re
from pathlib import Path

from plansync import schema_files

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
