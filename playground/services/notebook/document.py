"""A saved notebook's document: everything needed to run it again, as typed fields and plain JSON.

Name, prompt set (the rows' records and the template), models with their overrides, samples, seed,
one ``max_new_tokens`` for all (0: each preset's), checks with the pass threshold, and the judge's
settings. Stored as JSON in the ``notebooks`` table and, as it ran, with every run (version).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from playground.errors import PlaygroundError
from playground.services.notebook.checks import Check, CheckSet, parse_checks, validate_for_rows
from playground.services.notebook.grid import MAX_MODELS, MAX_SAMPLES, NotebookRequest
from playground.services.notebook.prompts import DEFAULT_TEMPLATE, PromptRow, build_rows

JUDGE_MODES = ("pairwise", "rubric")
MAX_NAME = 200


@dataclass
class JudgeSettings:
    preset: str = ""  # the judging preset ("": none chosen yet)
    mode: str = "pairwise"  # pairwise | rubric
    rubric: str = ""  # rubric mode: what a good answer does
    max_new_tokens: int = 64
    seed: int = 0

    @classmethod
    def from_json(cls, data: Any) -> JudgeSettings:
        data = data or {}
        if not isinstance(data, dict):
            raise PlaygroundError(
                'the judge settings must be an object like {"preset": "…", "mode": "pairwise"}'
            )
        unknown = sorted(set(data) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise PlaygroundError(f"unknown judge setting(s) {unknown}")
        judge = cls(
            preset=str(data.get("preset") or ""),
            mode=str(data.get("mode") or "pairwise"),
            rubric=str(data.get("rubric") or ""),
            max_new_tokens=_int(data.get("max_new_tokens", 64), "the judge's max_new_tokens"),
            seed=_int(data.get("seed", 0), "the judge's seed"),
        )
        if judge.mode not in JUDGE_MODES:
            raise PlaygroundError(f"the judge's mode must be pairwise or rubric, got {judge.mode!r}")
        if not 1 <= judge.max_new_tokens <= 1024:
            raise PlaygroundError(f"the judge's max_new_tokens must be 1 to 1024, got {judge.max_new_tokens}")
        return judge


def _int(value: Any, what: str) -> int:
    try:
        return int(value if value not in (None, "") else 0)
    except (TypeError, ValueError):
        raise PlaygroundError(f"{what} must be a whole number, got {value!r}") from None


@dataclass
class NotebookDocument:
    name: str = "Untitled notebook"
    template: str = DEFAULT_TEMPLATE
    rows: list[dict[str, Any]] = field(default_factory=list)  # records: column → value
    models: list[str] = field(default_factory=list)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # overrides per preset
    samples: int = 1
    seed: int = 0
    max_new_tokens: int = 0  # 0: each preset's own
    checks: list[dict[str, Any]] = field(default_factory=list)
    threshold: float = 1.0
    judge: JudgeSettings = field(default_factory=JudgeSettings)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, allow_python: bool) -> NotebookDocument:
        """A document from its JSON form, validated: a bad field is a message naming it (and for rows,
        checks and the template, the row and the check)."""
        if not isinstance(data, dict):
            raise PlaygroundError("a notebook must be a JSON object")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise PlaygroundError(
                f"unknown notebook field(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}"
            )
        name = str(data.get("name") or "").strip() or "Untitled notebook"
        if len(name) > MAX_NAME:
            raise PlaygroundError(f"the notebook's name is {len(name)} characters; at most {MAX_NAME}")
        rows, models, params = data.get("rows") or [], data.get("models") or [], data.get("params") or {}
        if not isinstance(rows, list):
            raise PlaygroundError("rows must be a list of objects (column → value)")
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise PlaygroundError("models must be a list of preset names")
        if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
            raise PlaygroundError('params must be an object like {"preset-name": {"temperature": 0.2}}')
        document = cls(
            name=name,
            template=str(data.get("template") or DEFAULT_TEMPLATE),
            rows=rows,
            models=list(models),
            params={str(k): dict(v) for k, v in params.items()},
            samples=_int(data.get("samples", 1), "samples"),
            seed=_int(data.get("seed", 0), "the seed"),
            max_new_tokens=_int(data.get("max_new_tokens", 0), "max_new_tokens"),
            checks=list(data.get("checks") or []),
            threshold=_threshold(data.get("threshold", 1.0)),
            judge=JudgeSettings.from_json(data.get("judge")),
        )
        document.validate(allow_python)
        return document

    def validate(self, allow_python: bool) -> None:
        if len(self.models) > MAX_MODELS:
            raise PlaygroundError(f"a notebook takes at most {MAX_MODELS} models, got {len(self.models)}")
        if not 1 <= self.samples <= MAX_SAMPLES:
            raise PlaygroundError(f"samples per cell must be 1 to {MAX_SAMPLES}, got {self.samples}")
        if self.max_new_tokens < 0:
            raise PlaygroundError(
                f"max_new_tokens must be 0 (each preset's) or more, got {self.max_new_tokens}"
            )
        checks = self.parsed_checks(allow_python)
        if self.rows:  # a new notebook may be saved before it has rows
            validate_for_rows(checks, [row.variables for row in self.prompt_rows()])

    def parsed_checks(self, allow_python: bool) -> list[Check]:
        return parse_checks(self.checks, allow_python)

    def checkset(self, allow_python: bool) -> CheckSet:
        return CheckSet(self.parsed_checks(allow_python), self.threshold)

    def prompt_rows(self) -> list[PromptRow]:
        return build_rows(self.rows, self.template or DEFAULT_TEMPLATE, source=f"notebook {self.name!r}")

    def request(self) -> NotebookRequest:
        """The grid this document runs (``max_new_tokens`` applies where an override does not set it),
        read by the same parser as the tab's and ``/notebook_run``'s inputs."""
        return NotebookRequest.parse(
            list(self.models),
            self.rows,
            self.template,
            self.params,
            self.samples,
            self.seed,
            self.max_new_tokens,
            source=f"notebook {self.name!r}",
        )


def _threshold(value: Any) -> float:
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise PlaygroundError(f"the pass threshold must be a number from 0 to 1, got {value!r}") from None
    if not 0.0 <= threshold <= 1.0:
        raise PlaygroundError(f"the pass threshold must be from 0 to 1, got {threshold}")
    return threshold
