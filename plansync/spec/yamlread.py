"""YAML to plain data, keeping where every value stood and refusing what PyYAML forgives.

PyYAML's own constructor keeps the last of two equal keys, reads ``99.90`` as a float and
``0712`` as an octal number. Here values are built from the composed node tree instead:
- a duplicate key in one mapping is a problem, naming both lines;
- a YAML float becomes a ``Decimal`` read from its source text, never a float;
- only plain decimal integers become ints: ``0712``, ``0x1E`` or ``1:30`` stay text;
- dates stay text (the spec checks them itself, and names impossible ones).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

_DECIMAL_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
# Anchors and aliases can make a few lines expand into millions of values.
MAX_VALUES = 1_000_000
_BOOLS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based, as editors count
    column: int  # 1-based


@dataclass
class Document:
    """One YAML document: its data, and the position of each value and key."""

    data: Any
    values: dict[Path_, Mark] = field(default_factory=dict)
    keys: dict[Path_, Mark] = field(default_factory=dict)
    problems: list[tuple[Mark, Path_, str]] = field(default_factory=list)
    count: int = 0

    def where(self, path: Path_, key: bool = False) -> Mark:
        """The closest known position for ``path`` (its key, when asked for)."""
        table = self.keys if key else self.values
        while path:
            if path in table:
                return table[path]
            if not key and path in self.keys:
                return self.keys[path]
            path = path[:-1]
        return self.values.get((), Mark(1, 1))


class YamlError(Exception):
    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


def read_documents(text: str) -> Iterator[Document]:
    """Every document in a YAML stream. Raises YamlError for text that is not YAML."""
    try:
        for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
            if node is None:
                continue
            document = Document(data=None)
            document.data = _value(node, (), document)
            yield document
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Mark(mark.line + 1, mark.column + 1) if mark else Mark(1, 1)
        raise YamlError(where, f"not valid YAML: {exc.problem or exc}") from None


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _value(node: yaml.Node, path: Path_, document: Document) -> Any:
    document.count += 1
    if document.count > MAX_VALUES:
        raise YamlError(_mark(node), f"more than {MAX_VALUES} values (aliases expanding?)")
    document.values[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        first_seen: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node)) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key in first_seen:
                document.problems.append((_mark(key_node), (*path, key),
                                          f"duplicate key '{key}' (first at line "
                                          f"{first_seen[key].line}); remove one"))
                continue
            first_seen[key] = _mark(key_node)
            document.keys[(*path, key)] = _mark(key_node)
            result[key] = _value(value_node, (*path, key), document)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_value(item, (*path, index), document) for index, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    text: str = node.value
    tag = node.tag.rsplit(":", 1)[-1]
    if tag == "null":
        return None
    if tag == "bool":
        return _BOOLS.get(text.lower(), text)
    if tag == "int":
        return int(text.replace("_", "")) if _DECIMAL_INT.fullmatch(text) else text
    if tag == "float":
        try:
            value = Decimal(text.replace("_", ""))
        except InvalidOperation:
            return text  # .inf, .nan, 1:30.5 and friends stay text and fail validation
        return value if value.is_finite() else text
    return text
