"""Runs against runs: what changed between two versions of a notebook, word diffs, sample agreement.

Two versions' cells are matched by row, model (preset name) and sample. Both are scored with the
newer version's checks, so a check that flips is the answers' doing, not the checks'. No Gradio.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from playground.services.notebook.checks import CheckSet
from playground.services.notebook.grid import Cell, GridUpdate
from playground.services.notebook.scoring import SCORED, GridScores, score_grid

_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """``(op, text)`` pieces turning ``before`` into ``after`` word by word: ``=`` kept, ``-`` removed,
    ``+`` added (whitespace and punctuation are words of their own)."""
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    pieces: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            pieces.append(("=", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(("-", "".join(a[i1:i2])))
        if j2 > j1:
            pieces.append(("+", "".join(b[j1:j2])))
    return pieces


@dataclass
class SampleGroup:
    text: str
    count: int


def collapse_samples(texts: list[str]) -> tuple[list[SampleGroup], float]:
    """Identical answers collapsed with their count (most frequent first), and how often the samples
    agree: the share of samples that give the most common answer (1.0: all the same)."""
    counts = Counter(texts)
    groups = [
        SampleGroup(text, n)
        for text, n in sorted(counts.items(), key=lambda item: (-item[1], texts.index(item[0])))
    ]
    return groups, (groups[0].count / len(texts) if texts else 1.0)


@dataclass
class CellChange:
    row: int
    preset: str
    sample: int
    before: str
    after: str

    def as_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "preset": self.preset,
            "sample": self.sample,
            "before": self.before,
            "after": self.after,
            "diff": [list(p) for p in word_diff(self.before, self.after)],
        }


@dataclass
class CheckFlip:
    row: int
    preset: str
    sample: int
    check: str  # its label
    before: bool
    after: bool

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("row", "preset", "sample", "check", "before", "after")}


@dataclass
class ModelChange:
    preset: str
    pass_rate_before: float | None
    pass_rate_after: float | None
    score_before: float | None
    score_after: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("preset", "pass_rate_before", "pass_rate_after", "score_before", "score_after")
        }


@dataclass
class RunDiff:
    version_a: int
    version_b: int
    compared: int  # cells present in both
    changed: list[CellChange] = field(default_factory=list)
    flips: list[CheckFlip] = field(default_factory=list)
    models: list[ModelChange] = field(default_factory=list)
    only_a: int = 0  # cells of version a without a match in b
    only_b: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "version_a": self.version_a,
            "version_b": self.version_b,
            "compared": self.compared,
            "changed": [c.as_json() for c in self.changed],
            "flips": [f.as_json() for f in self.flips],
            "models": [m.as_json() for m in self.models],
            "only_a": self.only_a,
            "only_b": self.only_b,
        }


def _answered(grid: GridUpdate) -> dict[tuple[int, str, int], Cell]:
    return {(c.row, c.preset, c.sample): c for c in grid.cells if c.status in SCORED}


def diff_runs(
    version_a: int, grid_a: GridUpdate, version_b: int, grid_b: GridUpdate, checks: CheckSet
) -> RunDiff:
    """What changed from version ``a`` to version ``b`` (both scored with ``checks``)."""
    scores_a = _scores(grid_a, checks)
    scores_b = _scores(grid_b, checks)
    cells_a, cells_b = _answered(grid_a), _answered(grid_b)
    both = [key for key in cells_b if key in cells_a]
    out = RunDiff(
        version_a, version_b, len(both), only_a=len(cells_a) - len(both), only_b=len(cells_b) - len(both)
    )
    labels = [c.label for c in checks.checks]
    for key in sorted(both, key=lambda k: (k[0], grid_b.presets.index(k[1]), k[2])):
        a, b = cells_a[key], cells_b[key]
        if a.text != b.text:
            out.changed.append(CellChange(key[0], key[1], key[2], a.text, b.text))
        verdict_a = scores_a.cells.get((a.row, a.model, a.sample))
        verdict_b = scores_b.cells.get((b.row, b.model, b.sample))
        if verdict_a is None or verdict_b is None:
            continue
        for label, ra, rb in zip(labels, verdict_a.results, verdict_b.results, strict=True):
            if ra is not None and rb is not None and ra.passed != rb.passed:
                out.flips.append(CheckFlip(key[0], key[1], key[2], label, ra.passed, rb.passed))
    for preset in dict.fromkeys([*grid_a.presets, *grid_b.presets]):
        rate_a, score_a = _model(scores_a, preset)
        rate_b, score_b = _model(scores_b, preset)
        out.models.append(ModelChange(preset, rate_a, rate_b, score_a, score_b))
    return out


def _scores(grid: GridUpdate, checks: CheckSet) -> GridScores:
    return score_grid(checks, grid.presets, grid.cells, {r.index: r.variables for r in grid.rows})


def _model(scores: GridScores, preset: str) -> tuple[float | None, float | None]:
    if preset not in scores.presets:
        return None, None
    m = scores.presets.index(preset)
    return scores.models[m].rate, scores.scores[m]
