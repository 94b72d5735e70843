"""Prompt sets for the notebook grid: rows of variables, a prompt template, validation. No Gradio.

A row is a mapping of column → value. The prompt template fills ``{column}`` from the row (``{{`` and
``}}`` write literal braces; other braces are left alone); the default template ``{prompt}`` uses
the ``prompt`` column as it is. Two columns are reserved: ``system`` (the row's system prompt,
instead of each preset's own) and ``history`` (earlier turns, a JSON list of {role, content}).
Rows come from the editable table, pasted text, or an uploaded CSV or JSONL file; every error
names the source, the row (1-based, as a spreadsheet shows it) and the column. An import is held to
``MAX_IMPORT_BYTES`` (a file's size is checked before it is read) and ``MAX_ROWS`` rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground.engine.models.templates import Message, parse_messages
from playground.errors import PlaygroundError

DEFAULT_TEMPLATE = "{prompt}"
RESERVED = ("system", "history")
MAX_ROWS = 1000  # rows of a prompt set: of a grid, and of an import (upload or paste)
MAX_IMPORT_BYTES = 5 * 2**20  # an uploaded or pasted prompt set (checked before the file is read)
_SLOT = re.compile(r"\{\{|\}\}|\{([A-Za-z_][\w\- ]*)\}")


@dataclass
class PromptRow:
    index: int  # 0-based position in the prompt set
    variables: dict[str, str]
    user: str  # the user message: the template filled from the row
    system: str | None = None  # None: each preset's own system prompt
    history: list[Message] = field(default_factory=list)

    def messages(self) -> list[Message]:
        return [*self.history, Message(role="user", content=self.user)]

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "variables": self.variables,
            "user": self.user,
            "system": self.system,
            "history": [m.model_dump() for m in self.history],
        }


def template_variables(template: str) -> list[str]:
    return [m.group(1).strip() for m in _SLOT.finditer(template) if m.group(1)]


def fill(template: str, variables: dict[str, str], where: str) -> str:
    """The template with every ``{name}`` replaced by the row's value (braces in values stay as they are)."""

    def replace(match: re.Match) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1).strip()
        if name not in variables:
            known = ", ".join(sorted(variables)) or "none"
            raise PlaygroundError(
                f"{where}: the template uses {{{name}}} but there is no column {name!r} (columns: {known})"
            )
        return variables[name]

    return _SLOT.sub(replace, template)


def build_rows(
    records: list[dict[str, Any]], template: str = DEFAULT_TEMPLATE, source: str = "rows"
) -> list[PromptRow]:
    """Validate records and fill the template; the message of any error names source, row and column."""
    template = template if template and template.strip() else DEFAULT_TEMPLATE
    rows = check_records(records, source)
    for row in rows:
        where = f"{source}, row {row.index + 1}"
        row.user = fill(template, row.variables, where)
        if not row.user.strip():
            raise PlaygroundError(f"{where}: the prompt is empty (template {template!r})")
    return rows


def check_records(records: list[dict[str, Any]], source: str = "rows") -> list[PromptRow]:
    """Validate records as prompt rows, everything but the template (an upload is checked when it
    arrives, before a template is written for its columns); the rows' messages are not filled in."""
    if not records:
        raise PlaygroundError(f"{source}: the prompt set is empty; add at least one row")
    if len(records) > MAX_ROWS:
        raise PlaygroundError(f"{source}: {len(records)} rows; a grid takes at most {MAX_ROWS}")
    rows = []
    for i, record in enumerate(records):
        where = f"{source}, row {i + 1}"
        if not isinstance(record, dict):
            raise PlaygroundError(
                f"{where}: expected an object of column values, got {type(record).__name__}"
            )
        variables = {
            str(k).strip(): _text(v, f"{where}, column {k!r}") for k, v in record.items() if k not in RESERVED
        }
        system = record.get("system")
        system = None if system in (None, "") else _text(system, f"{where}, column 'system'")
        rows.append(PromptRow(i, variables, "", system, _history(record.get("history"), where)))
    return rows


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise PlaygroundError(f"{where}: expected text, got {type(value).__name__}")


def _history(raw: Any, where: str) -> list[Message]:
    if raw in (None, "", []):
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise PlaygroundError(f"{where}, column 'history': not valid JSON: {exc}") from None
    try:
        history = parse_messages(raw)
    except PlaygroundError as exc:
        raise PlaygroundError(f"{where}, column 'history': {exc}") from None
    for k, message in enumerate(history):
        expected = "user" if k % 2 == 0 else "assistant"
        if message.role != expected:
            raise PlaygroundError(
                f"{where}, column 'history': turn {k + 1} should be a {expected} message "
                f"(earlier turns alternate user/assistant and end with an answer)"
            )
    if len(history) % 2:
        raise PlaygroundError(f"{where}, column 'history': earlier turns must end with an assistant answer")
    return history


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlaygroundError(
            f"{source}: not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None


def parse_csv(data: bytes | str, source: str = "CSV") -> list[dict[str, str]]:
    """A CSV with a header row (comma, semicolon or tab separated); blank lines are skipped."""
    text = _decode(data, source) if isinstance(data, bytes) else data
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise PlaygroundError(f"{source}: the file is empty; it needs a header row, e.g. prompt") from None
    except csv.Error as exc:
        raise PlaygroundError(f"{source}: not valid CSV: {exc}") from None
    header = [h.strip() for h in header]
    for k, name in enumerate(header):
        if not name:
            raise PlaygroundError(f"{source}: column {k + 1} of the header row has no name")
    if len(set(header)) != len(header):
        raise PlaygroundError(f"{source}: the header row names a column twice: {header}")
    records = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            line = reader.line_num
            _check_rows(records, source)
            if len(values) > len(header):
                raise PlaygroundError(
                    f"{source}, line {line}: {len(values)} values but the header has {len(header)} columns"
                )
            records.append(dict(zip(header, values + [""] * (len(header) - len(values)), strict=True)))
    except csv.Error as exc:
        raise PlaygroundError(f"{source}, line {reader.line_num}: not valid CSV: {exc}") from None
    return records


def parse_jsonl(data: bytes | str, source: str = "JSONL") -> list[dict[str, Any]]:
    """One JSON object per line; blank lines are skipped."""
    text = _decode(data, source) if isinstance(data, bytes) else data
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise PlaygroundError(f"{source}, line {number}: not valid JSON: {exc}") from None
        if not isinstance(item, dict):
            raise PlaygroundError(
                f"{source}, line {number}: expected a JSON object, got {type(item).__name__}"
            )
        _check_rows(records, source)
        records.append(item)
    return records


def _check_rows(records: list, source: str) -> None:
    """Called before adding a row: refuse the import once it would pass ``MAX_ROWS``."""
    if len(records) >= MAX_ROWS:
        raise PlaygroundError(
            f"{source}: more than {MAX_ROWS:,} rows; an import takes at most {MAX_ROWS:,} "
            "(the most a grid takes): split it into several prompt sets"
        )


def _check_size(size: int, source: str) -> None:
    if size > MAX_IMPORT_BYTES:
        raise PlaygroundError(
            f"{source} is {size / 2**20:.1f} MB; an import takes at most {MAX_IMPORT_BYTES / 2**20:.0f} MB: "
            "split it into several prompt sets"
        )


def parse_lines(text: str) -> list[dict[str, str]]:
    """Pasted text, one prompt per non-empty line."""
    records: list[dict[str, str]] = []
    for line in (text or "").splitlines():
        if line.strip():
            _check_rows(records, "pasted text")
            records.append({"prompt": line.strip()})
    return records


PASTE_FORMATS = {"one prompt per line": parse_lines, "CSV with a header row": parse_csv, "JSONL": parse_jsonl}


def parse_pasted(text: str, kind: str) -> list[dict[str, Any]]:
    try:
        parser = PASTE_FORMATS[kind]
    except KeyError:
        raise PlaygroundError(f"unknown paste format {kind!r}; choose one of {list(PASTE_FORMATS)}") from None
    _check_size(len((text or "").encode("utf-8", "surrogatepass")), "the pasted text")
    return parser(text) if parser is parse_lines else parser(text or "", f"pasted {kind}")


def load_file(path: str | Path) -> list[dict[str, Any]]:
    """Records from an uploaded ``.csv``/``.tsv`` or ``.jsonl``/``.ndjson``/``.json`` file; one over
    ``MAX_IMPORT_BYTES`` is refused before it is read."""
    path = Path(path)
    name = path.name
    suffix = path.suffix.lower()
    _check_size(path.stat().st_size, name)
    data = path.read_bytes()
    if suffix in (".csv", ".tsv", ".txt"):
        return parse_csv(data, name)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return parse_jsonl(data, name)
    raise PlaygroundError(f"{name}: unknown file type {suffix or '(none)'}; upload a .csv or .jsonl file")


def table_records(headers: list[str], values: list[list[Any]]) -> list[dict[str, Any]]:
    """The editable table's rows as records; rows whose cells are all empty are dropped."""
    headers = [str(h).strip() for h in headers]
    records = []
    for row in values:
        cells = ["" if v is None else v for v in row]
        if all(str(c).strip() == "" for c in cells):
            continue
        records.append(dict(zip(headers, cells, strict=False)))
    return records


def records_table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Records → (headers, rows) for the editable table; ``prompt`` first, history as JSON text."""
    headers: list[str] = []
    for record in records:
        for key in record:
            if key not in headers:
                headers.append(key)
    if "prompt" in headers:
        headers.remove("prompt")
        headers.insert(0, "prompt")
    rows = [
        [json.dumps(r[h]) if isinstance(r.get(h), list | dict) else _text(r.get(h), h) for h in headers]
        for r in records
    ]
    return headers or ["prompt"], rows
