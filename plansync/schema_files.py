"""Files plansync ships: the JSON Schemas and the example spec, found inside an installed
wheel or at the top of a checkout."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).parent
# A wheel carries copies inside the package (pyproject's force-include); an editable
# install reads the top of the checkout.
_PLACES = {
    "schemas": (_HERE / "schemas", _HERE.parent / "schemas"),
    "specs.example": (_HERE / "specs_example", _HERE.parent / "specs.example"),
    "github-actions": (_HERE / "examples" / "github-actions",
                       _HERE.parent / "examples" / "github-actions"),
    "action": (_HERE / "examples", _HERE.parent),
}


def shipped(folder: str, name: str) -> Path:
    for place in _PLACES[folder]:
        if (place / name).is_file():
            return place / name
    raise FileNotFoundError(f"{folder}/{name} is missing from this installation of plansync")


@cache
def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(shipped("schemas", name).read_text(encoding="utf-8"))
    return data
