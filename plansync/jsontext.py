"""JSON text exactly as ``json.dumps(value, indent=2)`` writes it, a few times faster.

With an indent, the standard library encodes in Python, one generator per container
(its C encoder does only compact text): for a plan's JSON that was more of ``plan
--json``'s CPU than making the plan. Here each container is one loop and each value
one type test. Only what JSON documents hold here is handled (dicts with text keys,
lists and tuples, text, ints, bools, None); anything else (a float, a subclass, another
kind of key) has the whole document written by json.dumps itself, so the text never
differs.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import Any


class _Unusual(Exception):
    """A value this writer leaves to json.dumps."""


def dumps(value: Any) -> str:
    """``json.dumps(value, indent=2)``."""
    try:
        return _text(value, "\n", {})
    except _Unusual:
        return json.dumps(value, indent=2)


def _text(value: Any, pad: str, keys: dict[str, str]) -> str:
    """``value`` as JSON text; ``pad``: a new line and the indent of its own level;
    ``keys``: each key as written, with its colon (a document repeats a few keys)."""
    kind = type(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = pad + "  "
        parts = []
        for key, item in value.items():
            written = keys.get(key)
            if written is None:
                if type(key) is not str:
                    raise _Unusual
                written = keys[key] = encode_basestring_ascii(key) + ": "
            parts.append(written + _leaf(item, inner, keys))
        return "{" + inner + ("," + inner).join(parts) + pad + "}"
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        inner = pad + "  "
        return "[" + inner + ("," + inner).join([_leaf(item, inner, keys) for item in value]) \
            + pad + "]"
    return _leaf(value, pad, keys)


def _leaf(value: Any, pad: str, keys: dict[str, str]) -> str:
    """A value of a container (most are text, a number, true, false or null)."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is dict or kind is list or kind is tuple:
        return _text(value, pad, keys)
    raise _Unusual
