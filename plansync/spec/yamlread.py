"""YAML to plain data, keeping where every value stood and refusing what PyYAML forgives.

PyYAML's own constructor keeps the last of two equal keys, reads ``99.90`` as a float and
``0712`` as an octal number. Here values are built from the composed node tree instead:
- a duplicate key in one mapping is a problem, naming both lines;
- a number with a fraction becomes a ``Decimal`` read from its source text, never a float;
- only plain decimal integers become ints: ``0712``, ``0x1E`` or ``1:30`` stay text;
- dates stay text (the spec checks them itself, and names impossible ones).

Plain scalars are typed here, by the rules above, rather than by PyYAML's resolver: the
result is the same for every value a spec uses, and a 100,000-plan spec loads in seconds.
Positions are not recorded while reading; ``Document.where`` finds them in the node tree
on demand, since only problems need them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

# Anchors and aliases can make a few lines expand into millions of values.
MAX_VALUES = 1_000_000
_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}
_DECIMAL_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
_DECIMAL_FRACTION = re.compile(r"[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+]?[0-9]+)?")


class _Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """libyaml's parser when PyYAML has it, with no implicit resolvers: plain scalars
    come through as text and are typed by ``_plain`` below."""

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        return str(self.DEFAULT_SCALAR_TAG if kind is yaml.ScalarNode else
                   self.DEFAULT_SEQUENCE_TAG if kind is yaml.SequenceNode else
                   self.DEFAULT_MAPPING_TAG)


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based, as editors count
    column: int  # 1-based


@dataclass
class Document:
    """One YAML document: its data, and its node tree for finding positions."""

    data: Any
    root: yaml.Node | None = None
    problems: list[tuple[Mark, Path_, str]] = field(default_factory=list)
    count: int = 0

    def where(self, path: Path_, key: bool = False) -> Mark:
        """The position of the value at ``path`` (or of its key), or of the closest
        enclosing value that exists."""
        node = self.root
        found = Mark(1, 1) if node is None else _mark(node)
        for step in path:
            child = _child(node, step)
            if child is None:
                return found
            key_node, node = child
            found = _mark(key_node if key and key_node is not None else node)
        return found


    def item_marks(self, path: Path_) -> list[Mark]:
        """The position of every item of the sequence at ``path``, found in one pass."""
        node = self.root
        for step in path:
            child = _child(node, step)
            if child is None:
                return []
            node = child[1]
        return [_mark(item) for item in node.value] if isinstance(node, yaml.SequenceNode) else []


class YamlError(Exception):
    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


def read_documents(text: str) -> list[Document]:
    """Every document in a YAML stream. Raises YamlError for text that is not YAML."""
    try:
        documents = []
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            document = Document(data=None, root=node)
            document.data = _value(node, (), document)
            documents.append(document)
        return documents
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Mark(mark.line + 1, mark.column + 1) if mark else Mark(1, 1)
        raise YamlError(where, f"not valid YAML: {exc.problem or exc}") from None



def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _child(node: yaml.Node | None, step: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and str(_scalar(key_node)) == step:
                return key_node, value_node
    elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and \
            0 <= step < len(node.value):
        return None, node.value[step]
    return None


def _value(node: yaml.Node, path: Path_, document: Document) -> Any:
    document.count += 1
    if document.count > MAX_VALUES:
        raise YamlError(_mark(node), f"more than {MAX_VALUES} values (aliases expanding?)")
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node)) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key in result:
                first = next(k for k, _v in node.value if str(_scalar(k)) == key)
                document.problems.append((_mark(key_node), (*path, key),
                                          f"duplicate key '{key}' (first at line "
                                          f"{_mark(first).line}); remove one"))
                continue
            result[key] = _value(value_node, (*path, key), document)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_value(item, (*path, index), document) for index, item in enumerate(node.value)]
    return None


def _scalar(node: yaml.Node) -> Any:
    text: str = node.value
    if getattr(node, "style", None):  # quoted or block scalars are text; plain ones typed
        return text
    return _plain(text)


def _plain(text: str) -> Any:
    """YAML 1.1's reading of a plain scalar, except that numbers with a fraction become
    exact Decimals and anything octal, hex, sexagesimal or date-like stays text."""
    if text in _NULLS:
        return None
    lowered = text.lower()
    if lowered in _BOOLS:
        return _BOOLS[lowered]
    if text[0] in "+-0123456789" and _DECIMAL_INT.fullmatch(text):
        return int(text.replace("_", ""))
    if text[0] in "+-.0123456789" and _DECIMAL_FRACTION.fullmatch(text):
        try:
            value = Decimal(text.replace("_", ""))
        except InvalidOperation:
            return text
        return value if value.is_finite() else text
    return text
