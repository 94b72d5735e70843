"""The notebook grid's data: the request (parsed once, for the tab and the API alike), its cells and
the grid as it fills in, with honest progress. No Gradio."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from playground.engine.backends.base import Origin
from playground.engine.generation.params import GenerationParams
from playground.engine.generation.request import GenerationRequest
from playground.engine.models.presets import Preset
from playground.errors import PlaygroundError
from playground.services.notebook.prompts import DEFAULT_TEMPLATE, PromptRow, build_rows
from playground.services.types import parse_json

MAX_MODELS, MAX_SAMPLES = 8, 8


@dataclass
class NotebookRequest:
    presets: list[str]
    rows: list[PromptRow]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # overrides per preset name
    samples: int = 1
    seed: int = 0  # sample k of a cell uses seed + k (a preset override's seed wins over this)

    @classmethod
    def parse(
        cls,
        presets: Any,
        records: Any,
        template: str | None = DEFAULT_TEMPLATE,
        overrides: Any = None,
        samples: Any = 1,
        seed: Any = 0,
        max_new_tokens: Any = 0,
        source: str = "rows",
    ) -> NotebookRequest:
        """The one parser of a grid's inputs, from the tab (its table, its JSON box) and the API (JSON
        text) alike: preset names, row records (column → value), the template, per-preset overrides
        (a JSON object of objects), samples, the base seed and one ``max_new_tokens`` for every
        model (0: each preset's). Every error names what was wrong, and ``source``'s rows by number."""
        names = parse_json(presets, "presets", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise PlaygroundError("presets must be a JSON list of preset names")
        rows = parse_json(records, "rows", [])
        if not isinstance(rows, list):
            raise PlaygroundError("rows must be a JSON list of objects")
        params = parse_json(overrides, "the per-model overrides", {})
        if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
            raise PlaygroundError(
                'the per-model overrides must be a JSON object like {"preset-name": {"temperature": 0.2}}'
            )
        params = {name: dict(values) for name, values in params.items()}
        budget = _whole(max_new_tokens, "max_new_tokens", 0)
        if budget > 0:
            for name in names:
                params.setdefault(name, {}).setdefault("max_new_tokens", budget)
        return cls(
            presets=list(names),
            rows=build_rows(rows, template or DEFAULT_TEMPLATE, source=source),
            params=params,
            samples=_whole(samples, "samples", 1) or 1,
            seed=_whole(seed, "seed", 0),
        )


def _whole(raw: Any, what: str, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise PlaygroundError(f"{what} must be a whole number, got {raw!r}") from None
    if value != int(value):
        raise PlaygroundError(f"{what} must be a whole number, got {raw!r}")
    return int(value)


@dataclass
class Cell:
    row: int
    model: int
    sample: int
    preset: str
    status: str = "pending"  # pending | running | done | cached | error | stopped | not run
    text: str = ""
    finish_reason: str | None = None
    error: str | None = None
    turn_id: int | None = None
    stats: dict = field(default_factory=dict)
    seed: int | None = None
    prompt: str = ""  # the exact string the model received
    budget: int = 0  # its max_new_tokens

    @property
    def tokens(self) -> int:
        return int((self.stats or {}).get("completion_tokens") or 0)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "cached", "error", "stopped", "not run")

    def as_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "model": self.model,
            "sample": self.sample,
            "preset": self.preset,
            "status": self.status,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "error": self.error,
            "turn_id": self.turn_id,
            "stats": self.stats,
            "seed": self.seed,
        }


OUTCOMES = ("done", "cached", "running", "pending", "stopped", "error", "not run")


@dataclass
class GridUpdate:
    conversation_id: str
    presets: list[str]
    rows: list[PromptRow]
    samples: int
    cells: list[Cell]
    to_run: int  # cells that needed generating (not served from earlier runs)
    ran: int  # of those, how many are finished
    elapsed_s: float
    finished: bool = False
    phase: str = ""  # what the run is doing now ("loading …", "… generating 4 cells")
    stream_s: float = 0.0  # time spent generating (model loading and preparing left out)
    stopped: bool = False  # Stop was pressed (or the page went away)

    @property
    def done(self) -> int:
        """Cells that are settled, whatever became of them (the API's progress count)."""
        return sum(c.finished for c in self.cells)

    @property
    def counts(self) -> dict[str, int]:
        """How many cells are in each state (``OUTCOMES``): done, cached, running, pending, stopped,
        error, not run."""
        found = Counter(c.status for c in self.cells)
        return {status: found.get(status, 0) for status in OUTCOMES}

    @property
    def tokens(self) -> int:
        """Tokens generated by this run so far (cells served from earlier runs left out)."""
        return sum(c.tokens for c in self.cells if c.status != "cached")

    @property
    def tokens_per_s(self) -> float | None:
        """Measured generation speed of this run (all rows of a batch together)."""
        return self.tokens / self.stream_s if self.stream_s > 0 and self.tokens else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left: the tokens the unfinished cells are still expected to generate (as many as
        the finished ones took on average, within each cell's max_new_tokens), at the measured speed."""
        speed = self.tokens_per_s
        if self.finished or not speed:
            return None
        ended = [c.tokens for c in self.cells if c.status in ("done", "stopped") and c.tokens]
        typical = sum(ended) / len(ended) if ended else None
        left = 0.0
        for cell in self.cells:
            if cell.status in ("running", "pending"):
                expected = cell.budget if typical is None else min(typical, cell.budget or typical)
                left += max(expected - cell.tokens, 1 if cell.budget > cell.tokens else 0)
        return left / speed

    def cell(self, row: int, model: int, sample: int = 0) -> Cell:
        return self.cells[(row * len(self.presets) + model) * self.samples + sample]

    def as_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "presets": self.presets,
            "samples": self.samples,
            "done": self.done,
            "total": len(self.cells),
            "counts": self.counts,
            "tokens": self.tokens,
            "tokens_per_s": self.tokens_per_s,
            "eta_s": self.eta_s,
            "elapsed_s": self.elapsed_s,
            "phase": self.phase,
            "finished": self.finished,
            "stopped": self.stopped,
            "rows": [r.as_json() for r in self.rows],
            "cells": [c.as_json() for c in self.cells],
        }


@dataclass
class PreparedCell:
    """A cell ready to generate: its request, what it runs with, its system prompt and cache key."""

    cell: Cell
    generation: GenerationRequest
    ran: Any  # services.chat.Ran
    system: str
    key: str


TURN_STATS = ("prompt_tokens", "completion_tokens", "ttft_s", "total_s", "tokens_per_s")


def turn_stats(turn: Any) -> dict[str, Any]:
    """A stored answer's stats, as a cell holds them."""
    return {name: getattr(turn, name) for name in TURN_STATS}


def cache_key(preset: Preset, row: PromptRow, system: str, params: GenerationParams, origin: Origin) -> str:
    """What decides a cell's text: its inputs and where it runs (the same request gives the same
    text on the same revision, quantisation, dtype and device)."""
    payload = {
        "messages": [m.model_dump() for m in row.messages()],
        "system": system,
        "preset_hash": preset.file_hash,
        "params": params.model_dump(),
        "origin": [origin.revision, origin.quantization, origin.dtype, origin.device],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
