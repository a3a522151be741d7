"""YAML to plain data, keeping where every value stood and refusing what PyYAML forgives.

PyYAML's own constructor keeps the last of two equal keys, reads ``99.90`` as a float and
``0712`` as an octal number. Here values are built from the composed node tree instead:
- a duplicate key in one mapping is a problem, naming both lines;
- a number with a fraction becomes a ``Decimal`` read from its source text, never a float;
- only plain decimal integers become ints: ``0712``, ``0x1E``, ``1:30`` or ``7_0`` (YAML
  1.1's 70) stay text, as does anything tagged (``!!float 7``);
- a number with an exponent (``1e2``, ``1.e-999999999``) or a plus sign stays text, so
  the schema refuses it by name: amounts are written out, digit by digit;
- dates stay text (the spec checks them itself, and names impossible ones).

Plain scalars are typed here, by the rules above, rather than by PyYAML's resolver: the
result is the same for every value a spec uses, and a 100,000-plan spec loads in seconds.
Positions are not recorded while reading; ``Document.where`` finds them in the node tree
on demand, since only problems need them (a mapping's keys are indexed the first time a
position in it is asked for: a problem per key must not rescan its keys each time).

A long ``plans:`` list (the usual layout: the last key, a block sequence) is read a chunk
of plans at a time, each chunk with the document's head, so that memory stays flat
however many plans a file holds. Positions are mapped back to the file's own lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from plansync.printable import quoted

Path_ = tuple[str | int, ...]
Pair = tuple[yaml.Node, yaml.Node]  # a key's node and its value's

# Problems of one kind listed one by one in one mapping; the next says how many more.
# (A mapping of 50,000 stray keys is one mistake, not 50,000 lines to read.)
MAX_LISTED = 20

# Anchors and aliases can make a few lines expand into millions of values.
MAX_VALUES = 1_000_000
_NULLS = {"", "~", "null", "Null", "NULL"}
# YAML 1.2's booleans, as the editors the README recommends read them: `name: no` is the
# text "no" (YAML 1.1 made it false); yes/no/on/off in a boolean field are errors.
_BOOLS = {"true": True, "false": False}
YAML11_BOOLS = frozenset({"yes", "no", "on", "off", "y", "n"})
# Numbers as a spec writes them: no exponent (1e2, 1.e-999999999) and no plus sign,
# which stay text for the schema to refuse by name (formats.parse_amount is the rule).
# YAML 1.2's core schema: no underscores (``7_0`` is YAML 1.1's 70; here it is text).
_DECIMAL_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_DECIMAL_FRACTION = re.compile(r"-?([0-9]+)?\.[0-9]*")
_PLAIN = "tag:plansync,2026:plain"  # an untagged plain scalar (``!!str 7`` is text)


class _Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """libyaml's parser when PyYAML has it, with no implicit resolvers: plain scalars
    come through as text and are typed by ``_plain`` below."""

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:  # untagged plain scalars are typed; tagged ones text
            return _PLAIN if implicit[0] else str(self.DEFAULT_SCALAR_TAG)
        return str(self.DEFAULT_SEQUENCE_TAG if kind is yaml.SequenceNode else
                   self.DEFAULT_MAPPING_TAG)


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based, as editors count
    column: int  # 1-based


@dataclass
class Document:
    """One YAML document (or one chunk of its plans): its data, and its node tree for
    finding positions."""

    data: Any
    root: yaml.Node | None = None
    problems: list[tuple[Mark, Path_, str]] = field(default_factory=list)
    count: int = 0
    head_lines: int = 0  # lines after these come from later in the file:
    shift: int = 0  # add this to their line numbers
    first_chunk: bool = True  # later chunks repeat the head: its problems are said once
    open_nodes: set[int] = field(default_factory=set)  # collections being read: alias loops
    # Each mapping's keys (the first of equal ones, as ``data`` holds), built on demand.
    indexes: dict[int, dict[str, Pair]] = field(default_factory=dict)

    def mark(self, node: yaml.Node) -> Mark:
        line = node.start_mark.line + 1
        return Mark(line + self.shift if line > self.head_lines else line,
                    node.start_mark.column + 1)

    def where(self, path: Path_, key: bool = False) -> Mark:
        """The position of the value at ``path`` (or of its key), or of the closest
        enclosing value that exists."""
        node = self.root
        found = Mark(1, 1) if node is None else self.mark(node)
        for step in path:
            child = self.child(node, step)
            if child is None:
                return found
            key_node, node = child
            found = self.mark(key_node if key and key_node is not None else node)
        return found


    def item_marks(self, path: Path_) -> list[Mark]:
        """The position of every item of the sequence at ``path``, found in one pass."""
        node = self.root
        for step in path:
            child = self.child(node, step)
            if child is None:
                return []
            node = child[1]
        if not isinstance(node, yaml.SequenceNode):
            return []
        return [self.mark(item) for item in node.value]

    def child(self, node: yaml.Node | None, step: str | int
              ) -> tuple[yaml.Node | None, yaml.Node] | None:
        """(key node or None, value node) of a mapping's key or a sequence's item."""
        if isinstance(node, yaml.MappingNode):
            index = self.indexes.get(id(node))
            if index is None:
                index = self.indexes[id(node)] = {}
                for pair in node.value:
                    index.setdefault(_key(pair[0]), pair)
            return index.get(step) if isinstance(step, str) else None
        if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and \
                0 <= step < len(node.value):
            return None, node.value[step]
        return None


class YamlError(Exception):
    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


def read_documents(text: str) -> Iterator[Document]:
    """Every document in a YAML stream. Raises YamlError for text that is not YAML."""
    split = _split_plans(text)
    if split is None:
        yield from _compose(text, Document)
        return
    head, chunks = split
    head_lines = head.count("\n")
    for number, (first_line, body) in enumerate(chunks):
        def chunk(data: Any, root: yaml.Node, first: int = first_line,
                  primary: bool = number == 0) -> Document:
            return Document(data, root, head_lines=head_lines, shift=first - head_lines - 1,
                            first_chunk=primary)
        yield from _compose(head + body, chunk, head_lines, first_line - head_lines - 1)


def _compose(text: str, make: Any, head_lines: int = 0, shift: int = 0) -> Iterator[Document]:
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            document = make(None, node)
            document.data = _value(node, (), document)
            yield document
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        where = Mark(line + shift if line > head_lines else line,
                     mark.column + 1 if mark else 1)
        raise YamlError(where, f"not valid YAML: {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, unmarked
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        what = f"#x{exc.character:04x}" if isinstance(exc.character, int) else "a character"
        utf16 = text[:200].count("\x00") > len(text[:200]) // 4
        hint = ("; the file looks like UTF-16 without a byte-order mark: save it as UTF-8"
                if utf16 else "; remove it, or write it as an escape in a double-quoted "
                "string")
        raise YamlError(Mark(line + shift if line > head_lines else line, column),
                        f"contains the control character {what}, which YAML does not "
                        f"allow{hint}") from None
    except RecursionError:
        raise YamlError(Mark(head_lines + 1, 1), "nested too deeply (or an alias refers "
                        "to a node that contains it); flatten it") from None


CHUNK_PLANS = 2000
_PLANS_KEY = re.compile(r"^plans:[ \t]*(#.*)?$", re.MULTILINE)
_ANCHOR_OR_ALIAS = re.compile(r"(^|[\s\[{,])[&*][^\s,\]}]")


def _split_plans(text: str) -> tuple[str, list[tuple[int, str]]] | None:
    """(the head up to ``plans:``, [(first line number, text of up to CHUNK_PLANS items)])
    when the document has the usual layout and enough plans to be worth it; else None,
    and the text is read whole. Regular expressions over the whole text, not a loop over
    its lines: this runs on every spec."""
    key = _PLANS_KEY.search(text)
    if key is None or text.startswith("---") or re.search(r"^(---|\.\.\.)", text, re.M):
        return None
    body_start = key.end() + 1
    body = text[body_start:]
    first = re.search(r"^( *)- ", body, re.MULTILINE)
    if first is None:
        return None
    indent = len(first.group(1))
    # Every line is blank, a comment, an item at that indent, or more indented than it.
    stray = re.compile(rf"^(?!\s*$|\s*#| {{{indent}}}-( |$)| {{{indent + 1},}}\S)", re.MULTILINE)
    if stray.search(body) or _ANCHOR_OR_ALIAS.search(body):
        return None
    starts = [m.start() for m in re.finditer(rf"^ {{{indent}}}-( |$)", body, re.MULTILINE)]
    if len(starts) <= CHUNK_PLANS:
        return None
    head = text[:body_start]
    bounds = [*starts[::CHUNK_PLANS], len(body)]
    chunks = []
    line = head.count("\n") + 1 + body.count("\n", 0, bounds[0])
    for k in range(len(bounds) - 1):
        piece = body[bounds[k]:bounds[k + 1]]
        chunks.append((line, piece))
        line += piece.count("\n")
    return head, chunks


def _value(node: yaml.Node, path: Path_, document: Document) -> Any:
    document.count += 1
    if document.count > MAX_VALUES:
        raise YamlError(document.mark(node), f"more than {MAX_VALUES} values (aliases expanding?)")
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if id(node) in document.open_nodes:
            raise YamlError(document.mark(node), "an alias refers to a node that contains "
                            "it, which has no end; refer to something else")
        document.open_nodes.add(id(node))
        try:
            return _collection(node, path, document)
        finally:
            document.open_nodes.discard(id(node))
    return None


def _collection(node: yaml.Node, path: Path_, document: Document) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        duplicates: list[tuple[str, yaml.Node]] = []
        for key_node, value_node in node.value:
            key = _key(key_node)
            if key in result:
                duplicates.append((key, key_node))
                continue
            result[key] = _value(value_node, (*path, key), document)
        for number, (key, key_node) in enumerate(duplicates[:MAX_LISTED + 1]):
            pair = document.child(node, key)  # found: the key is in result
            first = document.mark(pair[0] if pair and pair[0] else node).line
            more = len(duplicates) - number - 1
            rest = f", {more_after(more)}" if number == MAX_LISTED and more else ""
            document.problems.append((document.mark(key_node), (*path, key),
                                      f"duplicate key {quoted(key)} (first at line {first})"
                                      f"{rest}; remove one"))
        return result
    return [_value(item, (*path, index), document) for index, item in enumerate(node.value)]


def _key(node: yaml.Node) -> str:
    """A mapping key as ``data`` holds it (a key that is a list or mapping reads "?")."""
    return str(_scalar(node)) if isinstance(node, yaml.ScalarNode) else "?"


def more_after(count: int) -> str:
    """What the last problem listed in a mapping adds when ``count`` more are not."""
    return f"and {count:,} more after it in this mapping (not listed one by one)"


def _scalar(node: yaml.Node) -> Any:
    text: str = node.value
    if getattr(node, "style", None) or node.tag != _PLAIN:  # quoted, block or tagged: text
        return text
    return _plain(text)


def _plain(text: str) -> Any:
    """A plain scalar as YAML 1.2's core schema reads it (true/false, null, numbers),
    except that numbers with a fraction become exact Decimals and anything octal, hex,
    sexagesimal, date-like, with an exponent or a plus sign stays text."""
    if text in _NULLS:
        return None
    lowered = text.lower()
    if lowered in _BOOLS:
        return _BOOLS[lowered]
    if text[0] in "-0123456789" and _DECIMAL_INT.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # over Python's 4300-digit limit: no field wants such a number
            return text
    if text[0] in "-.0123456789" and _DECIMAL_FRACTION.fullmatch(text):
        try:
            value = Decimal(text)
        except InvalidOperation:
            return text
        return value if value.is_finite() else text
    return text
