"""Finding the JSON Schemas: inside an installed wheel, or at the top of a checkout."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGED = Path(__file__).parent / "schemas"  # a wheel carries a copy here
_CHECKOUT = Path(__file__).parent.parent / "schemas"  # an editable install reads the source


@cache
def load(name: str) -> dict[str, Any]:
    for folder in (_PACKAGED, _CHECKOUT):
        path = folder / name
        if path.is_file():
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return data
    raise FileNotFoundError(f"schema {name} is missing from this installation of plansync")
