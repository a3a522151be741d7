"""GitHub Actions as a runner reads it, for the tests of the shipped workflows and action:
expressions (``${{ ... }}`` and ``if:``), and a composite action's outputs, resolved the way
the runner resolves them (an output the action does not declare never reaches the
workflow). Only what the shipped files use; anything else is an error, never a guess."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_TOKEN = re.compile(r"""\s*(?:
    (?P<string>'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op>&&|\|\||==|!=|<=|>=|[<>!().,\[\]])
  | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
)""", re.VERBOSE)
_STATUS = ("success", "always", "failure", "cancelled")


class Expression:
    """One expression, parsed on demand over ``contexts`` (``steps``, ``github``, ...)."""

    def __init__(self, text: str, contexts: Mapping[str, Any], status: str = "success"):
        self.tokens: list[tuple[str, str]] = []
        position, text = 0, text.strip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise ValueError(f"cannot read {text[position:]!r} in {text!r}")
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.at, self.contexts, self.status = 0, contexts, status

    def value(self) -> Any:
        result = self._or()
        if self.at != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.at][1]!r}")
        return result

    def _peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.at]
        if expected is not None and token[1] != expected:
            raise ValueError(f"expected {expected!r}, found {token[1]!r}")
        self.at += 1
        return token

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            left = left if truthy(left) else right
        return left

    def _and(self) -> Any:
        left = self._equality()
        while self._peek() == "&&":
            self._take()
            right = self._equality()
            left = right if truthy(left) else left
        return left

    def _equality(self) -> Any:
        left = self._unary()
        while self._peek() in ("==", "!="):
            op = self._take()[1]
            same = equal(left, self._unary())
            left = same if op == "==" else not same
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._primary()

    def _primary(self) -> Any:
        kind, text = self._take()
        if text == "(":
            inner = self._or()
            self._take(")")
            return inner
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return float(text)
        if kind != "name":
            raise ValueError(f"unexpected {text!r}")
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        # A function's value takes members too: fromJSON(x).include[0]
        value: Any = self._call(text) if self._peek() == "(" else self.contexts.get(text)
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                key: Any = self._take()[1]
            else:
                key = self._or()
                self._take("]")
            if isinstance(value, list) and isinstance(key, float) and key.is_integer():
                value = value[int(key)] if 0 <= key < len(value) else None  # [0] of []: null
            else:
                value = value.get(key) if isinstance(value, Mapping) else None
        return value

    def _call(self, name: str) -> Any:
        self._take("(")
        args = []
        while self._peek() != ")":
            args.append(self._or())
            if self._peek() == ",":
                self._take()
        self._take(")")
        if name in _STATUS:
            return {"success": self.status == "success", "always": True,
                    "failure": self.status == "failure",
                    "cancelled": self.status == "cancelled"}[name]
        if name == "startsWith":
            return text(args[0]).lower().startswith(text(args[1]).lower())
        if name == "contains":
            if isinstance(args[0], list):
                return any(equal(item, args[1]) for item in args[0])
            return text(args[1]).lower() in text(args[0]).lower()
        if name == "format":
            return re.sub(r"\{(\d+)\}", lambda m: text(args[1 + int(m.group(1))]),
                          text(args[0]))
        if name == "fromJSON":
            return json.loads(text(args[0]))
        if name == "join":  # an array's items as text between the separator (default ",")
            items = args[0] if isinstance(args[0], list) else [args[0]]
            return (text(args[1]) if len(args) > 1 else ",").join(map(text, items))
        raise ValueError(f"function {name}() is not known here")


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value == value  # NaN is falsy


def equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()  # GitHub compares strings ignoring case
    if type(left) is type(right):
        return bool(left == right)
    return number(left) == number(right)  # other types meet as numbers: null == '' (0)


def number(value: Any) -> float:
    if value is None or value is False:
        return 0.0
    if value is True:
        return 1.0
    if isinstance(value, Mapping | list):  # an object or array as a number: NaN
        return float("nan")
    try:
        return float(value) if str(value).strip() else 0.0
    except ValueError:
        return float("nan")


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def evaluate(expression: str, contexts: Mapping[str, Any], status: str = "success") -> Any:
    return Expression(expression, contexts, status).value()


def interpolate(template: str, contexts: Mapping[str, Any]) -> str:
    """A ``with:`` or ``env:`` value: every ``${{ ... }}`` replaced by its value as text."""
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: text(evaluate(m.group(1), contexts)),
                  template, flags=re.DOTALL)


def runs_if(condition: str | None, contexts: Mapping[str, Any],
            status: str = "success") -> bool:
    """Whether a step with this ``if:`` runs: without a status function the runner adds
    ``success() &&``."""
    if condition is None:
        return status == "success"
    condition = condition.strip()
    if condition.startswith("${{") and condition.endswith("}}"):
        condition = condition[3:-2]
    if not any(re.search(rf"\b{name}\(", condition) for name in _STATUS):
        condition = f"success() && ({condition})"
    return truthy(evaluate(condition, contexts, status))


def action_outputs(action: Mapping[str, Any], step_outputs: Mapping[str, Mapping[str, str]]
                   ) -> dict[str, str]:
    """What a workflow sees as ``steps.<id>.outputs`` of a composite action whose own steps
    wrote ``step_outputs`` (by step id): its declared outputs' values, nothing else."""
    contexts = {"steps": {sid: {"outputs": dict(o)} for sid, o in step_outputs.items()}}
    return {name: interpolate(str(spec["value"]), contexts)
            for name, spec in (action.get("outputs") or {}).items()}


def github_output(path: str) -> dict[str, str]:
    """A step's ``$GITHUB_OUTPUT`` file as the runner reads it (``name=value`` lines and
    ``name<<DELIMITER`` blocks; a later line wins)."""
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        lines = iter(handle.read().splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            values[name] = "\n".join(block)
        elif line:
            name, value = line.split("=", 1)
            values[name] = value
    return values


def zizmor(*inputs: str) -> subprocess.CompletedProcess[str]:
    """zizmor over ``inputs``, offline (no network in the tests), default persona. A
    missing zizmor fails the test: it is in pyproject's test extra."""
    found = shutil.which("zizmor", path=str(Path(sys.executable).parent))
    found = found or shutil.which("zizmor")
    assert found, "zizmor is missing: pip install -e '.[test]' (pyproject's test extra)"
    return subprocess.run([found, "--offline", "--no-progress", *inputs],
                          capture_output=True, text=True, timeout=120)
