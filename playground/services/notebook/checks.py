"""Checks on every cell of a notebook: what a check is, validating one, and judging one answer.

A check is a typed test of an answer (the same idea as promptfoo's assertions, in our own words):

* ``contains`` / ``equals`` / ``starts-with`` a text (``case_sensitive`` or not; a list of texts
  passes when any of them does); ``not-contains`` is ``contains`` with ``negate``;
* ``regex`` (searched anywhere in the answer), ``is-json``, ``json-schema`` (the answer is JSON
  valid against ``value``, a JSON Schema);
* ``length`` between ``min`` and ``max`` in ``chars`` or ``tokens``;
* ``finish-reason`` is one of the given reasons (eos, stop_string, length, stopped, error);
* ``ttft-under`` / ``time-under`` seconds (time to first token, total time);
* ``python``: an expression of ``output``, ``vars``, ``finish_reason``, ``tokens``, ``json`` and
  ``re`` — only where the app is private (it runs in the server's process).

A text value may use the row's variables (``contains: {answer}``), filled as the prompt template
is; ``negate`` turns any check around; ``weight`` says how much it counts in a cell's score; ``rows``
limits it to some rows (0-based; None: every row).
"""

from __future__ import annotations

import builtins
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from playground.errors import PlaygroundError
from playground.services.notebook.prompts import fill

TEXT_TYPES = ("contains", "equals", "starts-with")
TYPES = (
    *TEXT_TYPES,
    "regex",
    "is-json",
    "json-schema",
    "length",
    "finish-reason",
    "ttft-under",
    "time-under",
    "python",
)
ALIASES = {"not-contains": ("contains", True), "icontains": ("contains", False)}
FINISH_REASONS = ("eos", "stop_string", "length", "stopped", "error")
PYTHON_REFUSED = (
    "python checks run code in the server's process, so they are only allowed where the app is "
    "private; this deployment is public (a Space or a --share link, or --no-open-data)"
)
_SAFE_BUILTINS = {
    name: getattr(builtins, name)
    for name in (
        "abs", "all", "any", "bool", "dict", "float", "int", "isinstance", "len", "list", "max",
        "min", "range", "round", "set", "sorted", "str", "sum", "tuple", "zip",
    )
}  # fmt: skip


@dataclass(frozen=True)
class Answer:
    """What a check looks at: the answer's text and how it ended."""

    text: str
    finish_reason: str | None = None
    tokens: int | None = None  # completion tokens
    ttft_s: float | None = None
    total_s: float | None = None


@dataclass(frozen=True)
class Check:
    type: str
    value: Any = None
    weight: float = 1.0
    case_sensitive: bool = True
    negate: bool = False
    min: float | None = None  # length
    max: float | None = None
    unit: str = "chars"  # length: chars | tokens
    rows: tuple[int, ...] | None = None
    name: str = ""

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.type == "length":
            low = f"{self.min:g}" if self.min is not None else "0"
            high = f"{self.max:g}" if self.max is not None else "∞"
            return f"{'not ' if self.negate else ''}length {low}–{high} {self.unit}"
        shown = "" if self.value is None else json.dumps(self.value, ensure_ascii=False)
        if len(shown) > 40:
            shown = shown[:39] + "…"
        return f"{'not ' if self.negate else ''}{self.type} {shown}".strip()

    def applies_to(self, row: int) -> bool:
        return self.rows is None or row in self.rows

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = list(self.rows) if self.rows is not None else None
        return {k: v for k, v in data.items() if v != _DEFAULTS.get(k)}


_DEFAULTS = {"value": None, "weight": 1.0, "case_sensitive": True, "negate": False, "min": None, "max": None}
_DEFAULTS |= {"unit": "chars", "rows": None, "name": ""}


@dataclass
class CheckResult:
    passed: bool
    detail: str = ""  # why it failed (or what it found)


@dataclass
class CheckSet:
    """The notebook's checks and the score a cell needs: a cell passes when the weighted share of its
    checks that pass reaches ``threshold`` (1.0: every check)."""

    checks: list[Check] = field(default_factory=list)
    threshold: float = 1.0


def parse_check(data: Any, number: int, allow_python: bool) -> Check:
    """A check from its JSON form; ``number`` (1-based) names it in every message."""
    where = f"check {number}"
    if not isinstance(data, dict):
        raise PlaygroundError(f'{where}: expected an object like {{"type": "contains", "value": "Paris"}}')
    data = dict(data)
    kind = str(data.pop("type", "") or "")
    where = f"check {number} ({kind or 'no type'})"
    if kind in ALIASES:
        kind, flag = ALIASES[kind]
        data.setdefault("negate" if flag else "case_sensitive", flag)
    if kind not in TYPES:
        raise PlaygroundError(f"{where}: unknown check type {kind!r}; the types are {', '.join(TYPES)}")
    known = set(_DEFAULTS)
    unknown = sorted(set(data) - known)
    if unknown:
        raise PlaygroundError(f"{where}: unknown field(s) {unknown}; a check has {sorted(known | {'type'})}")
    try:
        weight = float(data.get("weight", 1.0))
    except (TypeError, ValueError):
        raise PlaygroundError(f"{where}: weight must be a number, got {data.get('weight')!r}") from None
    if weight < 0:
        raise PlaygroundError(f"{where}: weight must be 0 or more, got {weight}")
    rows = data.get("rows")
    if rows is not None:
        if not isinstance(rows, list) or not all(isinstance(r, int) and r >= 0 for r in rows):
            raise PlaygroundError(f"{where}: rows must be a list of row numbers (0-based), got {rows!r}")
        rows = tuple(rows)
    check = Check(
        type=kind,
        value=data.get("value"),
        weight=weight,
        case_sensitive=bool(data.get("case_sensitive", True)),
        negate=bool(data.get("negate", False)),
        min=_number(data.get("min"), f"{where}: min"),
        max=_number(data.get("max"), f"{where}: max"),
        unit=str(data.get("unit", "chars")),
        rows=rows,
        name=str(data.get("name") or ""),
    )
    _validate_value(check, where, allow_python)
    return check


def _number(value: Any, where: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PlaygroundError(f"{where} must be a number, got {value!r}") from None


def _texts(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _validate_value(check: Check, where: str, allow_python: bool) -> None:
    kind, value = check.type, check.value
    if kind in (*TEXT_TYPES, "regex") and _texts(value) is None:
        raise PlaygroundError(f"{where}: value must be a text or a list of texts, got {value!r}")
    if kind == "regex":
        for pattern in _texts(value):
            if "{" not in pattern.replace("{{", "").replace("}}", ""):
                compile_regex(pattern, where)
    elif kind == "json-schema":
        schema_validator(value, where)
    elif kind == "length":
        if check.min is None and check.max is None:
            raise PlaygroundError(f"{where}: give min, max or both")
        if check.unit not in ("chars", "tokens"):
            raise PlaygroundError(f"{where}: unit must be chars or tokens, got {check.unit!r}")
        if check.min is not None and check.max is not None and check.min > check.max:
            raise PlaygroundError(f"{where}: min {check.min:g} is above max {check.max:g}")
    elif kind == "finish-reason":
        reasons = _texts(value)
        if reasons is None or not set(reasons) <= set(FINISH_REASONS):
            raise PlaygroundError(
                f"{where}: value must be one or more of {', '.join(FINISH_REASONS)}, got {value!r}"
            )
    elif kind in ("ttft-under", "time-under"):
        seconds = _number(value, f"{where}: value (seconds)")
        if seconds is None or seconds <= 0:
            raise PlaygroundError(f"{where}: value must be a number of seconds above 0, got {value!r}")
    elif kind == "python":
        if not allow_python:
            raise PlaygroundError(f"{where}: {PYTHON_REFUSED}")
        if not isinstance(value, str) or not value.strip():
            raise PlaygroundError(f'{where}: value must be a Python expression, e.g. "len(output) < 200"')
        try:
            compile(value, where, "eval")
        except SyntaxError as exc:
            raise PlaygroundError(
                f"{where}: not a valid Python expression: {exc.msg} (column {exc.offset})"
            ) from None


def compile_regex(pattern: str, where: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PlaygroundError(f"{where}: {pattern!r} is not a valid regular expression: {exc}") from None


def schema_validator(schema: Any, where: str):
    """A validator for ``schema`` (a JSON Schema as an object, or its JSON text)."""
    import jsonschema

    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise PlaygroundError(f"{where}: the schema is not valid JSON: {exc}") from None
    if not isinstance(schema, dict | bool):
        raise PlaygroundError(f"{where}: the schema must be a JSON object, got {type(schema).__name__}")
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(top)"
        raise PlaygroundError(f"{where}: not a valid JSON Schema at {path}: {exc.message}") from None
    return cls(schema)


def filled(check: Check, variables: dict[str, str], where: str) -> list[str]:
    """The check's text value(s) with the row's ``{variables}`` filled in."""
    return [fill(text, variables, where) for text in _texts(check.value) or []]


def run_check(check: Check, answer: Answer, variables: dict[str, str], where: str) -> CheckResult:
    """Judge one answer; a value naming a column the row lacks is a ``PlaygroundError`` naming both."""
    result = _run(check, answer, variables, where)
    if check.negate:
        return CheckResult(not result.passed, ("not: " + result.detail) if result.detail else "")
    return result


def _run(check: Check, answer: Answer, variables: dict[str, str], where: str) -> CheckResult:
    kind, text = check.type, answer.text
    if kind in TEXT_TYPES:
        wanted = filled(check, variables, where)
        fold = (lambda s: s) if check.case_sensitive else str.casefold
        hit = next((w for w in wanted if _matches(kind, fold(w), fold(text))), None)
        return CheckResult(hit is not None, f"found {hit!r}" if hit is not None else f"expected {wanted!r}")
    if kind == "regex":
        patterns = [compile_regex(p, where) for p in filled(check, variables, where)]
        match = next((m for p in patterns if (m := p.search(text))), None)
        return CheckResult(match is not None, f"matched {match.group(0)!r}" if match else "no match")
    if kind in ("is-json", "json-schema"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            return CheckResult(False, f"not JSON: {exc}")
        if kind == "is-json":
            return CheckResult(True)
        errors = sorted(schema_validator(check.value, where).iter_errors(data), key=lambda e: list(e.path))
        return CheckResult(not errors, errors[0].message if errors else "")
    if kind == "length":
        size = len(text) if check.unit == "chars" else answer.tokens
        if size is None:
            return CheckResult(False, "the answer's token count is not known")
        ok = (check.min is None or size >= check.min) and (check.max is None or size <= check.max)
        return CheckResult(ok, f"{size} {check.unit}")
    if kind == "finish-reason":
        return CheckResult(answer.finish_reason in _texts(check.value), f"finished: {answer.finish_reason}")
    if kind in ("ttft-under", "time-under"):
        took = answer.ttft_s if kind == "ttft-under" else answer.total_s
        if took is None:
            return CheckResult(False, "not timed (served from an earlier run without timings, or failed)")
        return CheckResult(took < float(check.value), f"{took:.2f} s")
    return _python(check, answer, variables, where)


def _matches(kind: str, wanted: str, text: str) -> bool:
    if kind == "contains":
        return wanted in text
    if kind == "equals":  # surrounding whitespace aside
        return wanted.strip() == text.strip()
    return text.lstrip().startswith(wanted)  # starts-with, leading whitespace aside


def _python(check: Check, answer: Answer, variables: dict[str, str], where: str) -> CheckResult:
    scope = {
        "output": answer.text,
        "vars": dict(variables),
        "finish_reason": answer.finish_reason,
        "tokens": answer.tokens,
        "json": json,
        "re": re,
    }
    try:
        value = eval(compile(check.value, where, "eval"), {"__builtins__": _SAFE_BUILTINS}, scope)  # noqa: S307 - private deployments only
    except Exception as exc:  # noqa: BLE001 - a failing expression is a failed check, with its cause
        return CheckResult(False, f"{type(exc).__name__}: {exc}")
    return CheckResult(bool(value), f"gave {value!r}")


def parse_checks(raw: Any, allow_python: bool) -> list[Check]:
    """The notebook's checks from JSON text or a list; every error names the check."""
    if raw in (None, ""):
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise PlaygroundError(f"the checks are not valid JSON: {exc}") from None
    if not isinstance(raw, list):
        raise PlaygroundError(
            'the checks must be a JSON list like [{"type": "contains", "value": "{answer}"}]'
        )
    return [parse_check(item, k + 1, allow_python) for k, item in enumerate(raw)]


def validate_for_rows(checks: list[Check], rows: list[dict[str, str]]) -> None:
    """Fill every check's value for every row it applies to, so a value naming a missing column or a
    filled-in regex that does not compile is refused when the notebook is saved, naming both."""
    for number, check in enumerate(checks, start=1):
        if check.type not in (*TEXT_TYPES, "regex"):
            continue
        for index, variables in enumerate(rows):
            if not check.applies_to(index):
                continue
            where = f"check {number} ({check.type}), row {index + 1}"
            for text in filled(check, variables, where):
                if check.type == "regex":
                    compile_regex(text, where)
