"""Files plansync ships: the JSON Schemas and the example spec, found inside an installed
wheel or at the top of a checkout."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from plansync.printable import cut, quoted

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


@cache
def fast_check(name: str) -> Callable[[Any], bool] | None:
    """The schema checked by jsonschema-rs, where it is installed (about a hundred times
    faster than python-jsonschema, which still explains any failure)."""
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a platform without its wheels
        return None
    is_valid: Callable[[Any], bool] = jsonschema_rs.Draft202012Validator(load(name)).is_valid
    return is_valid


def first_problem(name: str, data: Any) -> str | None:
    """``where: message`` for the most telling way ``data`` breaks the schema, or None.
    python-jsonschema is imported only when there is something to explain."""
    check = fast_check(name)
    if check is not None and check(data):
        return None
    import jsonschema

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(load(name)).iter_errors(data))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top)"
    # python-jsonschema's messages quote the whole value (repr), or every extra key: cut
    # the value, then what is still long (a list of the allowed values can stay).
    message = error.message
    if len(message) > 200:
        message = message.replace(repr(error.instance), quoted(error.instance), 1)
    return f"{where}: {message if len(message) <= 200 else cut(message, 120)}"
