"""Spec files → DesiredPlans, reporting every problem (not only the first) with where it is.

Validation is the JSON Schema in schemas/plansync-spec.schema.json, then the checks a
schema cannot express: exact amounts against the currency, real dates, duplicate ids
across files, and lifecycle rules.
"""

from __future__ import annotations

import difflib
import functools
import gc
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plansync import formats, schema_files
from plansync.fields import BY_NAME, NAMES, Kind, PlanFields, of_kind, to_json
from plansync.printable import cut, printable
from plansync.spec.model import DesiredPlan, Location, Problem
from plansync.spec.yamlread import (
    MAX_LISTED,
    YAML11_BOOLS,
    Document,
    Path_,
    YamlError,
    more_after,
    read_documents,
)

if TYPE_CHECKING:
    import jsonschema

SCHEMA_NAME = "plansync-spec.schema.json"
SUFFIXES = (".yaml", ".yml")
NOT_SPECS = {"plansync.yaml", "plansync.yml"}  # settings, not specs

# How a value of each field should look, for messages about malformed ones.
_EXPECTED = {
    "id": "digits: the plan's recurringUniqueID",
    "amount": 'an exact decimal in major units, such as "99.90"',
    "max_accumulate_amount": 'an exact decimal in major units, such as "10.00"',
    "currency": "an ISO 4217 code such as SGD or 702",
    "charge_next_date": "an ISO date such as 2026-12-07",
    "charge_on_date": 'day and month as ddMM, quoted, such as "0712"',
}
_TYPE_NAMES = {"string": "text", "integer": "a whole number", "number": "a number",
               "boolean": "true or false", "array": "a list", "object": "a mapping"}


class _Validator:
    def __init__(self) -> None:
        self.schema = schema = schema_files.load(SCHEMA_NAME)
        self.is_valid = schema_files.fast_check(SCHEMA_NAME) or self.explainer().is_valid
        defs = schema["$defs"]
        self.field_keys = set(defs["fields"]["properties"])
        self.plan_keys = self.field_keys | set(defs["plan"]["properties"])
        self.top_keys = set(schema["properties"])
        self.lifecycle_keys = set(defs["lifecycle"]["properties"])

    def known(self, path: Path_) -> set[str]:
        """The keys the schema allows in the mapping at ``path``."""
        if not path:
            return self.top_keys
        if path[-1] == "lifecycle":
            return self.lifecycle_keys
        return self.plan_keys if path[0] == "plans" and len(path) == 2 else self.field_keys

    def explainer(self) -> jsonschema.Draft202012Validator:
        """python-jsonschema, imported only when something needs explaining (a tenth of a
        second of start-up that a valid spec does not pay)."""
        import jsonschema

        return jsonschema.Draft202012Validator(self.schema)


def discover(paths: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    """Files named, and *.yaml / *.yml below folders named, in a stable order."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            if path.is_dir():
                found = sorted(p for p in path.rglob("*") if _is_spec_file(p, path))
                if not found:
                    problems.append(Problem(Location(str(path), 1, 1),
                                            "folder holds no *.yaml or *.yml file"))
                files += found
            elif path.is_file():
                files.append(path)
            else:
                problems.append(Problem(Location(str(path), 1, 1), "no such file or folder"))
        except OSError as exc:  # a name too long, a folder that changes as it is walked
            problems.append(Problem(Location(str(path), 1, 1),
                                    f"cannot be read: {exc.strerror or exc}"))
    return list(dict.fromkeys(files)), problems


def _is_spec_file(path: Path, root: Path) -> bool:
    """YAML files below root that declare ``apiVersion: plansync/…``, except hidden ones
    (.github/, .plansync/) and settings files. (A folder can hold other YAML: an emulator's
    seed, CI files; a file named on the command line is always read.)"""
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return (path.suffix in SUFFIXES and path.is_file() and not hidden
            and path.name not in NOT_SPECS and _declares_plansync(path))


_API_VERSION = re.compile(rb"^apiVersion:[ \t]*[\"']?plansync/", re.MULTILINE)


def _declares_plansync(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return bool(_API_VERSION.search(handle.read()))
    except OSError:
        return True  # unreadable: reading it again reports why


def load(paths: Sequence[Path]) -> tuple[list[DesiredPlan], list[Problem]]:
    """Every plan the paths declare, and every problem found on the way."""
    plans, problems, _files = load_counted(paths)
    return plans, problems


def declared(paths: Sequence[Path]) -> dict[str, Location]:
    """Where each plan id the specs under ``paths`` declare is first declared, valid plan
    or not (what `import` must not declare again). Problems are validate's to report."""
    return {plan_id: location for plan_id, location, _written
            in reversed(_load(paths)[3])}


def load_counted(paths: Sequence[Path]) -> tuple[list[DesiredPlan], list[Problem], int]:
    """As ``load``, with the number of spec files read."""
    # Loading makes millions of small objects and no cycles: the cycle collector would
    # only rescan them again and again (it was a third of a 100,000-plan spec's time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        plans, problems, files, _declared = _load(paths)
        return plans, problems, files
    finally:
        if collecting:
            gc.enable()


def _load(paths: Sequence[Path]
          ) -> tuple[list[DesiredPlan], list[Problem], int, list[tuple[str, Location, str]]]:
    files, problems = discover(paths)
    validator = _Validator()
    plans: list[DesiredPlan] = []
    declared: list[tuple[str, Location, str]] = []  # every id, valid plan or not
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(Location(str(file), 1, 1), f"cannot be read: {exc}"))
            continue
        try:
            for document in read_documents(text):
                found, trouble, ids = _load_document(document, str(file), validator)
                plans += found
                problems += trouble
                declared += ids
        except YamlError as exc:
            problems.append(Problem(Location(str(file), exc.mark.line, exc.mark.column),
                                    exc.message))
    problems += _duplicate_ids(declared)
    problems.sort(key=lambda p: (p.location.file, p.location.line, p.location.column))
    return plans, problems, len(files), declared


def digest(plans: Iterable[DesiredPlan]) -> str:
    """A fingerprint of what the specs ask for (not of their layout or comments): the
    SHA-256 of the plans in id order as one compact JSON list with sorted keys. Hashed
    plan by plan, never built whole (that text was a 100,000-plan spec's peak memory)."""
    encode = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
    hasher = hashlib.sha256(b"[")
    separator = ""
    for p in sorted(plans, key=lambda p: p.id):
        fields = p.fields
        hasher.update((separator + encode({
            "id": p.id, "name": p.name, "cancel": p.cancel, "currency": p.currency,
            "prevent_cancel": p.prevent_cancel, "ignore_changes": sorted(p.ignore_changes),
            **{f: to_json(getattr(fields, f)) for f in NAMES}})).encode())
        separator = ","
    hasher.update(b"]")
    return "sha256:" + hasher.hexdigest()


# --- one document -----------------------------------------------------------------------


def _load_document(document: Document, file: str, validator: _Validator
                   ) -> tuple[list[DesiredPlan], list[Problem], list[tuple[str, Location, str]]]:
    data = document.data

    def at(path: Path_, key: bool = False) -> Location:
        mark = document.where(path, key)
        return Location(file, mark.line, mark.column)

    def said(path: Path_) -> bool:
        """Later chunks of a long plans list repeat the head: its problems are said once."""
        return document.first_chunk or path[:1] == ("plans",)

    problems = [Problem(Location(file, mark.line, mark.column), message, _plan_id(data, path),
                        _field(path)) for mark, path, message in document.problems if said(path)]
    # The top-level fields that failed the schema, by plan index or "defaults" ("*": the
    # plan itself). By plan: each plan looks up its own, whatever the number of plans.
    broken: dict[int | str, set[str]] = {}
    misshapen = False  # the document itself, not one plan or default, is wrong
    errors = [] if validator.is_valid(data) else \
        validator.explainer().iter_errors(_trimmed(data, validator))
    for error in errors:
        path = tuple(error.absolute_path)
        for problem_path, key, message in _explain(error, validator, data):
            full = (*path, *problem_path)
            if said(full):
                problems.append(Problem(at(full, key), message, _plan_id(data, full),
                                        _field(full)))
        if len(path) >= 2 and path[0] == "plans" and isinstance(path[1], int):
            broken.setdefault(path[1], set()).add(str(path[2]) if len(path) > 2 else "*")
        elif path[:1] == ("defaults",) and len(path) > 1:
            broken.setdefault("defaults", set()).add(str(path[1]))
        else:
            misshapen = True
    if misshapen:
        return [], problems, []  # every schema problem is reported; nothing more is sure
    plans = []
    ids = []
    plan_marks = document.item_marks(("plans",))
    defaults = {k: v for k, v in (data.get("defaults") or {}).items()
                if k not in broken.get("defaults", ())}
    for index, raw in enumerate(data.get("plans") or []):
        own = broken.get(index, set())
        if not isinstance(raw, dict) or "id" not in raw or "id" in own:
            continue
        mark = plan_marks[index]
        # (id as plansync knows it, where, as written)
        ids.append((formats.plan_id(raw["id"]), Location(file, mark.line, mark.column),
                    str(raw["id"])))
        unsure = own | broken.get("defaults", set())
        plan, trouble = _desired(raw, defaults, index, at, unsure, ids[-1][1])
        problems += trouble
        if plan is not None and not unsure and "*" not in own:
            plans.append(plan)
    return plans, problems, ids


def _trimmed(data: Any, validator: _Validator) -> Any:
    """The document as python-jsonschema is asked to explain it: from each mapping, the
    unknown keys after those said one by one are left out (``_explain`` counts them in
    the document itself). It makes two exception objects per unknown key: a second for
    50,000 of them, only to be counted. Copies only what it changes."""
    def trim(mapping: Any, path: Path_) -> Any:
        if not isinstance(mapping, dict):
            return mapping
        known = validator.known(path)
        if len(mapping) > len(known) + MAX_LISTED + 1:  # else it cannot have too many
            unknown = [key for key in mapping if key not in known]
            dropped = set(unknown[MAX_LISTED + 1:])
            mapping = {k: v for k, v in mapping.items() if k not in dropped}
        if isinstance(mapping.get("lifecycle"), dict):
            lifecycle = trim(mapping["lifecycle"], (*path, "lifecycle"))
            if lifecycle is not mapping["lifecycle"]:
                mapping = {**mapping, "lifecycle": lifecycle}
        return mapping

    top = trim(data, ())
    if not isinstance(top, dict):
        return top
    changed = {"defaults": trim(top["defaults"], ("defaults",))} if "defaults" in top else {}
    if isinstance(top.get("plans"), list):
        plans = [trim(plan, ("plans", 0)) for plan in top["plans"]]
        if any(new is not old for new, old in zip(plans, top["plans"], strict=True)):
            changed["plans"] = plans
    return {**top, **changed} if changed else top


def _explain(error: jsonschema.ValidationError, validator: _Validator, data: Any
             ) -> list[tuple[Path_, bool, str]]:
    """One or more (relative path, points at a key, message) for a schema error in the
    document ``data`` (which error.instance may be a trimmed part of)."""
    instance: Any = error.instance
    kind = error.validator
    expected: Any = error.validator_value
    if kind in ("unevaluatedProperties", "additionalProperties"):
        path = tuple(error.absolute_path)
        known = validator.known(path)
        for step in path:
            data = data[step]
        unknown = [key for key in data if key not in known]
        # Keys that failed their own subschema also show up as "unevaluated": those were
        # reported on their own; only truly unknown keys are reported here.
        said: list[tuple[Path_, bool, str]] = [
            ((key,), True, f"unknown field{_did_you_mean(key, known)}")
            for key in unknown[:MAX_LISTED + 1]]
        if len(unknown) > MAX_LISTED + 1:
            key = unknown[MAX_LISTED]
            more = more_after(len(unknown) - MAX_LISTED - 1)
            said[-1] = ((key,), True, f"unknown field{_did_you_mean(key, known)}, {more}")
        return said
    field = _field(tuple(error.absolute_path)) or ""
    last = field.rsplit(".", 1)[-1]
    if kind == "required":
        missing = error.message.split("'")[1]
        return [((), False, f"missing required field '{missing}'")]
    if kind == "type" and last in _EXPECTED:
        return [((), False, f"must be {_EXPECTED[last]}, not {_show(instance)}")]
    if kind == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        hint = ""
        if "boolean" in names and isinstance(instance, str) and \
                instance.lower() in YAML11_BOOLS:
            hint = " (plansync reads YAML 1.2: write true or false)"
        elif "string" in names and isinstance(instance, bool | int | Decimal | float):
            hint = " (quote it to keep it as text)"
        return [((), False, f"must be {wanted}, not {_show(instance)}{hint}")]
    if kind == "enum":
        options = [str(o) for o in expected]
        hint = _did_you_mean(str(instance), options) if isinstance(instance, str) else ""
        return [((), False, f"must be one of {', '.join(options)}, not {_show(instance)}{hint}")]
    if kind == "const":
        return [((), False, f"must be {expected}, not {_show(instance)}")]
    if kind in ("pattern", "anyOf") and last in _EXPECTED:
        return [((), False, _amount_problem(last, instance)
                 or f"must be {_EXPECTED[last]}, not {_show(instance)}")]
    if kind == "minimum":
        return [((), False, f"must be at least {expected}, not {_show(instance)}")]
    if kind == "maximum":
        return [((), False, f"must be at most {expected}, not {_show(instance)}")]
    if kind == "uniqueItems":
        return [((), False, "names a field more than once")]
    if kind in ("minLength", "maxLength") and isinstance(instance, str):
        bound = "at least" if kind == "minLength" else "at most"
        return [((), False, f"must be {bound} {expected} characters, not {len(instance)}")]
    if kind == "pattern":
        return [((), False, f"must match {expected}, not {_show(instance)}")]
    return [((), False, cut(error.message, 160))]  # its message quotes the whole value


def _amount_problem(field: str, value: Any) -> str | None:
    """Why a quoted amount the schema refused is wrong, when it is an amount in form
    (too many decimals for any currency, or digits): the one rule says it exactly."""
    if field not in _AMOUNTS or not isinstance(value, str) or \
            not _AMOUNT_FORM.fullmatch(value):
        return None
    try:
        formats.parse_amount(value)
    except ValueError as exc:
        return str(exc)
    return None


_AMOUNT_FORM = re.compile(r"[0-9]+(\.[0-9]+)?")  # digits, maybe a fraction: amount-shaped


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _show(value: object) -> str:
    """A value from the spec for a message, as YAML writes it, cut short."""
    if isinstance(value, str):
        return cut(f'"{value}"')
    if value is None:
        return "empty"
    return cut(str(value).lower() if isinstance(value, bool) else str(value))


def _plan_id(data: Any, path: Path_) -> str | None:
    if len(path) >= 2 and path[0] == "plans" and isinstance(path[1], int):
        try:
            plan_id = data["plans"][path[1]].get("id")
        except (KeyError, IndexError, TypeError, AttributeError):
            return None
        return None if plan_id is None else _short(plan_id)
    return None


def _field(path: Path_) -> str | None:
    """The field a path names: ``lifecycle.ignore_changes`` in a plan, ``defaults.amount``."""
    inner = path[2:] if path[:1] == ("plans",) else path
    names = [str(p) for p in inner if isinstance(p, str)]
    return cut(".".join(names)) if names else None


def _short(value: object) -> str:
    """A plan id for a problem (which may be why it is one): printable, cut short. (YAML
    numbers of more than 4300 digits, which str() refuses, stay text: yamlread.)"""
    return cut(printable(str(value)))


# --- one plan: merge defaults, then the checks a schema cannot make ------------------------


def _desired(raw: dict[str, Any], defaults: dict[str, Any], index: int, at: Any,
             unsure: set[str], location: Location
             ) -> tuple[DesiredPlan | None, list[Problem]]:
    """Merge defaults under the plan and check it. Fields in ``unsure`` failed the schema
    (already reported); they are left out of these checks."""
    plan_id = formats.plan_id(raw["id"])
    merged = {k: v for k, v in (defaults | raw).items() if k not in unsure}
    merged["lifecycle"] = {} if "lifecycle" in unsure else (
        (defaults.get("lifecycle") or {}) | (raw.get("lifecycle") or {}))
    problems: list[Problem] = []

    def where(name: str) -> Location:
        """Where a field's value came from: the plan itself, or the document's defaults."""
        keys = tuple(name.split("."))
        own = raw.get("lifecycle") or {} if keys[0] == "lifecycle" else raw
        in_plan = keys[-1] in own
        return at(("plans", index, *keys) if in_plan else ("defaults", *keys))  # type: ignore[no-any-return]

    def problem(name: str, message: str) -> None:
        problems.append(Problem(where(name), message, plan_id, name))

    currency = exponent = None
    if merged.get("currency") is not None:
        try:
            currency = formats.currency_alpha(str(merged["currency"]))
            exponent = formats.currency_exponent(currency)
        except ValueError as exc:
            problem("currency", str(exc))

    # The one rule for amounts and whole numbers (formats.py), whatever the schema
    # validator let through (jsonschema-rs takes 7.0 for an integer).
    amounts: dict[str, Decimal] = {}
    for name in _AMOUNTS:
        if merged.get(name) is None:
            continue
        try:
            amounts[name] = _amount(merged[name], exponent, currency)
        except ValueError as exc:
            problem(name, str(exc))
    for name in _WHOLES:
        value = merged.get(name)
        if value is not None:
            try:
                formats.parse_whole(value, *BY_NAME[name].limits)
            except ValueError as exc:  # said as the schema says it, had it seen it
                problem(name, str(exc) if type(value) is int else
                        f"must be a whole number, not {_show(value)}")

    dates: dict[str, date] = {}
    for name in _DATES:
        if merged.get(name) is not None:
            try:
                dates[name] = date.fromisoformat(merged[name])
            except ValueError:
                problem(name, f"{_show(merged[name])} is not a real date")
    for name in _DAY_MONTHS:
        if merged.get(name) is not None:
            try:
                formats.check_day_month(merged[name])
            except ValueError:
                problem(name, f"{_show(merged[name])} is not a real day and month (ddMM)")

    if merged.get("allow_accumulate") is True and not amounts.get("max_accumulate_amount"):
        problem("allow_accumulate", "allow_accumulate: true needs a max_accumulate_amount "
                                    "greater than 0 in the same plan (or its defaults)")
    lifecycle = merged["lifecycle"]
    status = merged.get("status")
    if lifecycle.get("prevent_cancel") and status == "cancelled":
        problem("lifecycle.prevent_cancel", "the plan's status is cancelled, but prevent_cancel "
                                            "forbids cancelling it; remove one of the two")
    if problems:
        return None, problems

    ignored = frozenset(lifecycle.get("ignore_changes") or ()) or _NOTHING_IGNORED

    def managed(name: str, value: Any) -> Any:
        return None if name in ignored else value

    values = {name: merged.get(name) for name in NAMES} | amounts | dates | {
        "status": status if status in ("active", "inactive") else None}
    fields = PlanFields(**{name: managed(name, values[name]) for name in NAMES})
    return DesiredPlan(
        id=plan_id, name=raw.get("name"), fields=fields,
        cancel=status == "cancelled" and "status" not in ignored, currency=currency,
        prevent_cancel=bool(lifecycle.get("prevent_cancel")), ignore_changes=ignored,
        location=location,
    ), []


# The fields of each kind, looked up once (a plan checks each kind).
_AMOUNTS, _WHOLES, _DATES, _DAY_MONTHS = (
    of_kind(Kind.AMOUNT), of_kind(Kind.WHOLE), of_kind(Kind.DATE), of_kind(Kind.DAY_MONTH))
_NOTHING_IGNORED: frozenset[str] = frozenset()  # one for all plans (frozenset() is not)


def _amount(value: Any, exponent: int | None, currency: str | None) -> Decimal:
    """formats.parse_amount; the plans that write an amount alike share one Decimal (a
    100,000-plan spec of a few prices need not hold 100,000 of them)."""
    kind = type(value).__name__
    if kind in _WRITTEN:
        return _shared_amount(kind, str(value), exponent, currency)
    return formats.parse_amount(value, exponent, currency)


# The types an amount is written as; str() of each gives back the very value (a
# Decimal's digits and exponent), so the cache below is keyed by the value as written:
# 10.0 and 10.00 are equal Decimals that must stay apart.
_WRITTEN: dict[str, Any] = {"str": str, "Decimal": Decimal, "int": int}


@functools.lru_cache(maxsize=4096)
def _shared_amount(kind: str, text: str, exponent: int | None, currency: str | None
                   ) -> Decimal:
    return formats.parse_amount(_WRITTEN[kind](text), exponent, currency)


def _duplicate_ids(declared: Sequence[tuple[str, Location, str]]) -> list[Problem]:
    first: dict[str, tuple[Location, str]] = {}
    problems = []
    for plan_id, location, written in declared:
        if plan_id in first:
            there, as_written = first[plan_id]
            shown = {written, as_written} - {plan_id}
            why = f" (as {', '.join(sorted(shown))}: leading zeros do not count)" if shown \
                else ""
            problems.append(Problem(location, f"declared twice: here and at {there}{why}",
                                    plan_id))
        else:
            first[plan_id] = (location, written)
    return problems
