"""The notebook grid's data: the request, its cells and the grid as it fills in. No Gradio."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from playground.engine.backends.base import Origin
from playground.engine.generation.params import GenerationParams
from playground.engine.generation.request import GenerationRequest
from playground.engine.models.presets import Preset
from playground.services.notebook.prompts import PromptRow

MAX_MODELS, MAX_SAMPLES = 8, 8


@dataclass
class NotebookRequest:
    presets: list[str]
    rows: list[PromptRow]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # overrides per preset name
    samples: int = 1
    seed: int = 0  # sample k of a cell uses seed + k (a preset override's seed wins over this)


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

    @property
    def done(self) -> int:
        return sum(c.finished for c in self.cells)

    @property
    def eta_s(self) -> float | None:
        if self.finished or not self.ran:
            return None
        return self.elapsed_s / self.ran * (self.to_run - self.ran)

    def cell(self, row: int, model: int, sample: int = 0) -> Cell:
        return self.cells[(row * len(self.presets) + model) * self.samples + sample]

    def as_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "presets": self.presets,
            "samples": self.samples,
            "done": self.done,
            "total": len(self.cells),
            "eta_s": self.eta_s,
            "elapsed_s": self.elapsed_s,
            "finished": self.finished,
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
