"""Bring tests in: a promptfoo test file (YAML) or an OpenAI Evals JSONL file as rows and checks.

Our own parsers of the two formats. Whatever is not supported is refused whole, naming the construct
and its line: nothing is half-imported.

promptfoo (``tests:`` with ``vars`` and ``assert``, optional ``prompts:``/``defaultTest:``):
``contains``/``icontains``/``equals``/``starts-with``/``regex`` and their ``not-`` forms,
``is-json`` (a ``value`` is a JSON Schema), ``finish-reason`` (``stop``, ``length``), ``latency``
(``threshold`` in ms: total time), ``python`` (an inline expression; private deployments only), each
with ``weight`` and ``metric`` (its name). ``{{var}}`` in prompts and values becomes ``{var}``.
Assertions the same in several tests become one check on those rows.

OpenAI Evals (one sample per line: ``input`` as chat messages or text, ``ideal`` as text or a list of
texts): each line is a row (its last user message the prompt, a system message and earlier turns
kept), checked as the Evals ``Match`` eval does: the answer starts with (one of) the ideal answer(s).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from playground.errors import PlaygroundError
from playground.services.notebook.checks import parse_checks

MAX_BYTES = 5_000_000


@dataclass
class Imported:
    source: str
    rows: list[dict[str, Any]]
    template: str
    checks: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)  # what was read but has no place here (e.g. providers)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "template": self.template,
            "checks": self.checks,
            "notes": self.notes,
        }


def check_size(name: str, size: int) -> None:
    """Refuse a test file over ``MAX_BYTES`` (an upload is checked by its size on disk, before reading)."""
    if size > MAX_BYTES:
        raise PlaygroundError(f"{name}: {size:,} bytes; an imported test file may have at most {MAX_BYTES:,}")


def import_tests(filename: str, data: bytes | str, allow_python: bool) -> Imported:
    """By the file's name: ``.yaml``/``.yml`` is promptfoo, ``.jsonl`` OpenAI Evals."""
    name = filename.rsplit("/", 1)[-1] or "upload"
    check_size(name, len(data))
    text = _text(data, name)
    lowered = name.lower()
    if lowered.endswith((".yaml", ".yml")):
        imported = import_promptfoo(text, name)
    elif lowered.endswith((".jsonl", ".ndjson")):
        imported = import_openai_evals(text, name)
    else:
        raise PlaygroundError(
            f"{name}: import a promptfoo test file (.yaml) or an OpenAI Evals file (.jsonl)"
        )
    parse_checks(
        imported.checks, allow_python
    )  # e.g. python checks where they are not allowed: refused whole
    return imported


def _text(data: bytes | str, name: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlaygroundError(
            f"{name}: not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


# ---------------------------------------------------------------------------------------- promptfoo


class _Lines(dict):
    """A YAML mapping that remembers the line of each key (1-based) and its own."""

    line = 0
    lines: dict


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        mapping = _Lines(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.lines = {self.construct_object(k, deep=True): k.start_mark.line + 1 for k, _v in node.value}
        return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)

_VAR = re.compile(r"\{\{\s*([A-Za-z_][\w]*)\s*\}\}")
SIMPLE = {  # promptfoo type → our check (type, case_sensitive, negate)
    "contains": ("contains", True, False),
    "icontains": ("contains", False, False),
    "not-contains": ("contains", True, True),
    "not-icontains": ("contains", False, True),
    "equals": ("equals", True, False),
    "not-equals": ("equals", True, True),
    "starts-with": ("starts-with", True, False),
    "not-starts-with": ("starts-with", True, True),
    "regex": ("regex", True, False),
    "not-regex": ("regex", True, True),
}
TOP_KEYS = {"tests", "prompts", "defaultTest", "description", "providers"}
TEST_KEYS = {"vars", "assert", "description"}
ASSERT_KEYS = {"type", "value", "weight", "metric", "threshold"}
FINISH = {"stop": ["eos", "stop_string"], "length": ["length"]}


def _where(source: str, node: Any, key: str | None = None) -> str:
    line = getattr(node, "lines", {}).get(key) if key is not None else getattr(node, "line", 0)
    return f"{source}, line {line or getattr(node, 'line', '?')}"


def _convert(text: str, where: str) -> str:
    """promptfoo's Nunjucks text → our template: ``{{var}}`` → ``{var}``, literal braces doubled."""
    if "{%" in text or "{#" in text or re.search(r"\{\{[^}]*\|", text):
        raise PlaygroundError(
            f"{where}: Nunjucks tags and filters ({{% %}}, |) are not supported; use plain {{{{var}}}}"
        )
    pieces, last = [], 0
    for match in _VAR.finditer(text):
        pieces.append(text[last : match.start()].replace("{", "{{").replace("}", "}}"))
        pieces.append("{" + match.group(1) + "}")
        last = match.end()
    pieces.append(text[last:].replace("{", "{{").replace("}", "}}"))
    converted = "".join(pieces)
    if "{{{{" in converted:
        raise PlaygroundError(f"{where}: {{{{…}}}} that is not a plain variable name is not supported")
    return converted


def import_promptfoo(text: str, source: str = "promptfoo.yaml") -> Imported:
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f", line {mark.line + 1}" if mark else ""
        raise PlaygroundError(f"{source}{at}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if isinstance(document, list):
        document = _Lines({"tests": document})
    if not isinstance(document, dict) or "tests" not in document:
        raise PlaygroundError(
            f"{source}: expected a promptfoo test file: a list of tests, or a mapping with tests:"
        )
    for key in document:
        if key not in TOP_KEYS:
            raise PlaygroundError(
                f"{_where(source, document, key)}: {key!r} is not supported here (supported: {sorted(TOP_KEYS)})"
            )
    notes = []
    if "providers" in document:
        notes.append(
            f"{_where(source, document, 'providers')}: providers are not imported; pick the models in the notebook"
        )
    tests = document["tests"]
    if isinstance(tests, str):
        raise PlaygroundError(
            f"{_where(source, document, 'tests')}: tests from another file ({tests!r}) are not supported; put them inline"
        )
    if not isinstance(tests, list) or not tests:
        raise PlaygroundError(f"{_where(source, document, 'tests')}: tests must be a non-empty list")
    default = document.get("defaultTest") or _Lines()
    if not isinstance(default, dict):
        raise PlaygroundError(
            f"{_where(source, document, 'defaultTest')}: defaultTest must be a mapping (a file is not supported)"
        )
    for key in default:
        if key not in ("vars", "assert"):
            raise PlaygroundError(
                f"{_where(source, default, key)}: defaultTest.{key} is not supported (vars and assert are)"
            )
    base_vars = _vars(default.get("vars") or _Lines(), source)
    rows, merged = [], {}
    for index, test in enumerate(tests):
        if not isinstance(test, dict):
            raise PlaygroundError(f"{source}, test {index + 1}: expected a mapping with vars and assert")
        for key in test:
            if key not in TEST_KEYS:
                raise PlaygroundError(
                    f"{_where(source, test, key)}: {key!r} in a test is not supported (supported: {sorted(TEST_KEYS)})"
                )
        rows.append({**base_vars, **_vars(test.get("vars") or _Lines(), source)})
        for check in _assertions(test.get("assert") or [], source, test):
            key = json.dumps(check, sort_keys=True, default=str)
            merged.setdefault(key, (check, []))[1].append(index)
    checks = [dict(check) for check in _assertions(default.get("assert") or [], source, default)]
    for check, indices in merged.values():
        checks.append({**check, "rows": None if len(indices) == len(rows) else indices})
    template = _template(document, rows, source)
    return Imported(source, rows, template, checks, notes)


def _vars(variables: Any, source: str) -> dict[str, str]:
    if not isinstance(variables, dict):
        raise PlaygroundError(
            f"{source}, line {getattr(variables, 'line', '?')}: vars must be a mapping of name: value"
        )
    out = {}
    for name, value in variables.items():
        where = _where(source, variables, name)
        if isinstance(value, list | dict):
            raise PlaygroundError(
                f"{where}: var {name!r} is a {type(value).__name__}; only text values are supported (lists that expand into several tests are not)"
            )
        if isinstance(value, str) and value.startswith("file://"):
            raise PlaygroundError(
                f"{where}: var {name!r} loads {value!r}; values from files are not supported"
            )
        out[str(name)] = "" if value is None else str(value)
    return out


def _assertions(items: Any, source: str, parent: Any) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise PlaygroundError(f"{_where(source, parent, 'assert')}: assert must be a list")
    return [_assertion(item, source) for item in items]


def _assertion(item: Any, source: str) -> dict[str, Any]:
    where = _where(source, item)
    if not isinstance(item, dict) or "type" not in item:
        raise PlaygroundError(f"{where}: an assertion needs a type")
    kind = str(item["type"])
    where = _where(source, item, "type")
    for key in item:
        if key not in ASSERT_KEYS:
            raise PlaygroundError(
                f"{_where(source, item, key)}: {key!r} in an assertion is not supported (supported: {sorted(ASSERT_KEYS)})"
            )
    value = item.get("value")
    if isinstance(value, str) and value.startswith("file://"):
        raise PlaygroundError(
            f"{_where(source, item, 'value')}: values from files ({value!r}) are not supported"
        )
    check: dict[str, Any] = {}
    if kind in SIMPLE:
        ours, case, negate = SIMPLE[kind]
        if not isinstance(value, str):
            raise PlaygroundError(f"{where}: {kind} needs a text value")
        check = {"type": ours, "value": _convert(value, where), "case_sensitive": case, "negate": negate}
    elif kind in ("is-json", "not-is-json"):
        check = {"type": "json-schema", "value": value} if value is not None else {"type": "is-json"}
        check["negate"] = kind.startswith("not-")
    elif kind == "finish-reason":
        if value not in FINISH:
            raise PlaygroundError(f"{where}: finish-reason {value!r} is not supported (stop or length)")
        check = {"type": "finish-reason", "value": FINISH[value]}
    elif kind == "latency":
        if not isinstance(item.get("threshold"), int | float):
            raise PlaygroundError(f"{where}: latency needs a threshold in milliseconds")
        check = {"type": "time-under", "value": item["threshold"] / 1000}
    elif kind == "python":
        if not isinstance(value, str) or "\n" in value.strip():
            raise PlaygroundError(
                f"{where}: only an inline python expression is supported (not a file or a function body)"
            )
        check = {"type": "python", "value": value}
    else:
        raise PlaygroundError(
            f"{where}: assertion type {kind!r} is not supported (supported: {', '.join(sorted(SIMPLE))}, "
            "is-json, not-is-json, finish-reason, latency, python)"
        )
    if "threshold" in item and kind != "latency":
        raise PlaygroundError(
            f"{_where(source, item, 'threshold')}: a threshold on {kind!r} is not supported"
        )
    if "weight" in item:
        check["weight"] = item["weight"]
    if item.get("metric"):
        check["name"] = str(item["metric"])
    return {k: v for k, v in check.items() if v is not False or k != "negate"}


def _template(document: dict, rows: list[dict[str, str]], source: str) -> str:
    prompts = document.get("prompts")
    if prompts is not None:
        where = _where(source, document, "prompts")
        if isinstance(prompts, str):
            prompts = [prompts]
        if not isinstance(prompts, list) or len(prompts) != 1 or not isinstance(prompts[0], str):
            raise PlaygroundError(f"{where}: one inline prompt is supported (a notebook has one template)")
        if prompts[0].startswith("file://"):
            raise PlaygroundError(
                f"{where}: prompts from files ({prompts[0]!r}) are not supported; write it inline"
            )
        return _convert(prompts[0], where)
    names = {name for row in rows for name in row}
    if "prompt" in names:
        return "{prompt}"
    if len(names) == 1:
        return "{" + names.pop() + "}"
    raise PlaygroundError(
        f"{source}: no prompts: and the tests have several vars ({', '.join(sorted(names))}); add a prompts: template"
    )


# ----------------------------------------------------------------------------------- OpenAI Evals


def import_openai_evals(text: str, source: str = "samples.jsonl") -> Imported:
    rows, lists = [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}, line {number}"
        try:
            sample = json.loads(line)
        except ValueError as exc:
            raise PlaygroundError(f"{where}: not valid JSON: {exc}") from None
        if not isinstance(sample, dict):
            raise PlaygroundError(f"{where}: expected an object with input and ideal")
        extra = sorted(set(sample) - {"input", "ideal"})
        if extra:
            raise PlaygroundError(f"{where}: {extra} not supported (a sample has input and ideal)")
        if "input" not in sample or "ideal" not in sample:
            raise PlaygroundError(f"{where}: a sample needs both input and ideal")
        row = _evals_input(sample["input"], where)
        ideal = sample["ideal"]
        if isinstance(ideal, str):
            row["ideal"] = ideal
        elif isinstance(ideal, list) and ideal and all(isinstance(i, str) for i in ideal):
            lists.setdefault(json.dumps(ideal), []).append(len(rows))
        else:
            raise PlaygroundError(f"{where}: ideal must be a text or a list of texts")
        rows.append(row)
    if not rows:
        raise PlaygroundError(f"{source}: no samples")
    singles = [k for k, row in enumerate(rows) if "ideal" in row]
    checks = []
    if singles:
        checks.append(
            {
                "type": "starts-with",
                "value": "{ideal}",
                "rows": None if len(singles) == len(rows) else singles,
            }
        )
    for ideal, indices in lists.items():
        values = [v.replace("{", "{{").replace("}", "}}") for v in json.loads(ideal)]
        checks.append({"type": "starts-with", "value": values, "rows": indices})
    return Imported(source, rows, "{prompt}", checks)


def _evals_input(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, str):
        return {"prompt": raw}
    if not isinstance(raw, list) or not raw:
        raise PlaygroundError(f"{where}: input must be a text or a list of chat messages")
    messages = []
    for k, message in enumerate(raw):
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            keys = (
                sorted(set(message) - {"role", "content"})
                if isinstance(message, dict)
                else type(message).__name__
            )
            raise PlaygroundError(
                f"{where}: input[{k}]: {keys} not supported (messages have role and content)"
            )
        if message.get("role") not in ("system", "user", "assistant") or not isinstance(
            message.get("content"), str
        ):
            raise PlaygroundError(
                f"{where}: input[{k}] needs a role (system, user, assistant) and a text content"
            )
        messages.append(message)
    row: dict[str, Any] = {}
    if messages[0]["role"] == "system":
        row["system"] = messages.pop(0)["content"]
    if not messages or messages[-1]["role"] != "user":
        raise PlaygroundError(f"{where}: input must end with a user message")
    if any(m["role"] == "system" for m in messages):
        raise PlaygroundError(f"{where}: a system message is only supported first")
    row["prompt"] = messages[-1]["content"]
    if len(messages) > 1:
        row["history"] = json.dumps(messages[:-1])
    return row
