"""A grid's checks scored: pass/fail per cell, each model's pass rate with its 95% Wilson interval,
and a per-check breakdown. Pure functions of the cells; nothing stored (a run's verdicts are a
function of its stored answers and the checks)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from playground.services.notebook.checks import Answer, CheckResult, CheckSet, run_check
from playground.services.notebook.grid import Cell

Z95 = 1.959963984540054
SCORED = ("done", "cached", "stopped", "error")  # cells with an answer to check ("not run" is left out)


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = passed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class CellVerdict:
    score: float  # weighted share of the cell's checks that passed
    passed: bool
    results: list[CheckResult | None]  # per check; None where it does not apply to the row


@dataclass
class Rate:
    passed: int
    n: int

    @property
    def rate(self) -> float | None:
        return self.passed / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.passed, self.n)

    def as_json(self) -> dict[str, Any]:
        low, high = self.interval
        return {"passed": self.passed, "n": self.n, "rate": self.rate, "ci_low": low, "ci_high": high}


@dataclass
class GridScores:
    presets: list[str]
    labels: list[str]  # the checks' labels
    cells: dict[tuple[int, int, int], CellVerdict] = field(default_factory=dict)  # (row, model, sample)
    models: list[Rate] = field(default_factory=list)  # per model: cells that passed
    by_check: list[list[Rate]] = field(default_factory=list)  # [check][model]
    scores: list[float | None] = field(default_factory=list)  # per model: mean cell score

    def failed_rows(self) -> set[int]:
        return {row for (row, _m, _s), v in self.cells.items() if not v.passed}

    def as_json(self) -> dict[str, Any]:
        return {
            "checks": self.labels,
            "models": [
                {"preset": p, **rate.as_json(), "mean_score": score}
                for p, rate, score in zip(self.presets, self.models, self.scores, strict=True)
            ],
            "by_check": [
                {"check": label, "models": [r.as_json() for r in rates]}
                for label, rates in zip(self.labels, self.by_check, strict=True)
            ],
            "cells": [
                {
                    "row": row,
                    "model": model,
                    "sample": sample,
                    "score": v.score,
                    "passed": v.passed,
                    "results": [
                        None if r is None else {"passed": r.passed, "detail": r.detail} for r in v.results
                    ],
                }
                for (row, model, sample), v in sorted(self.cells.items())
            ],
        }


def answer_of(cell: Cell) -> Answer:
    stats = cell.stats or {}
    return Answer(
        text=cell.text or "",
        finish_reason=cell.finish_reason,
        tokens=stats.get("completion_tokens"),
        ttft_s=stats.get("ttft_s"),
        total_s=stats.get("total_s"),
    )


def score_cell(checkset: CheckSet, answer: Answer, row: int, variables: dict[str, str]) -> CellVerdict | None:
    """The cell's verdict; None when no check applies to its row."""
    results: list[CheckResult | None] = []
    total = got = 0.0
    for number, check in enumerate(checkset.checks, start=1):
        if not check.applies_to(row):
            results.append(None)
            continue
        result = run_check(check, answer, variables, f"check {number} ({check.type}), row {row + 1}")
        results.append(result)
        total += check.weight
        got += check.weight * result.passed
    if all(r is None for r in results):
        return None
    score = got / total if total else 1.0
    return CellVerdict(score, score >= checkset.threshold - 1e-9, results)


def score_grid(
    checkset: CheckSet, presets: list[str], cells: list[Cell], variables: dict[int, dict]
) -> GridScores:
    """Every finished cell scored; rates per model and per check (cells no check applies to are left out)."""
    out = GridScores(presets, [c.label for c in checkset.checks])
    out.models = [Rate(0, 0) for _ in presets]
    out.by_check = [[Rate(0, 0) for _ in presets] for _ in checkset.checks]
    totals = [[0.0, 0] for _ in presets]
    for cell in cells:
        if cell.status not in SCORED:
            continue
        verdict = score_cell(checkset, answer_of(cell), cell.row, variables.get(cell.row, {}))
        if verdict is None:
            continue
        out.cells[(cell.row, cell.model, cell.sample)] = verdict
        rate = out.models[cell.model]
        rate.n, rate.passed = rate.n + 1, rate.passed + verdict.passed
        totals[cell.model][0] += verdict.score
        totals[cell.model][1] += 1
        for k, result in enumerate(verdict.results):
            if result is not None:
                check_rate = out.by_check[k][cell.model]
                check_rate.n, check_rate.passed = check_rate.n + 1, check_rate.passed + result.passed
    out.scores = [total / n if n else None for total, n in totals]
    return out
