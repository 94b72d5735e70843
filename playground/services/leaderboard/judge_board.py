"""The LLM judge's ranking beside the human one, and how often a person and the judge agree. No Gradio.

Read from ``judge_verdicts`` only (never from votes, so the human leaderboard is unchanged by any
judge): each pairwise verdict is a battle of its two models (the latest verdict of a judge on a pair
of answers counts), fitted with the same Bradley–Terry code as the human board.

Agreement: where a person also compared the same two answers, through their ratings in the Notebook
(the higher 1–5 score wins, else 👍 beats 👎; equal is a tie), the share of pairs where person and
judge say the same (a, b or tie) and Cohen's κ (agreement beyond chance).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd

from playground.engine.models.presets import PresetRegistry
from playground.services.leaderboard.ratings import Leaderboard, compute_leaderboard
from playground.store.db import Store
from playground.store.models import JudgeVerdict
from playground.store.notebooks import NotebookStore


def cohen_kappa(first: list[str], second: list[str]) -> float | None:
    """Cohen's κ of two raters' labels of the same items; None when chance agreement is total (every
    label the same for both) or there are no items."""
    n = len(first)
    if n == 0 or n != len(second):
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    counts_a, counts_b = Counter(first), Counter(second)
    expected = sum(counts_a[k] * counts_b[k] for k in counts_a) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


@dataclass
class Agreement:
    pairs: int  # answer pairs both a person and the judge compared
    agreed: int
    kappa: float | None

    @property
    def share(self) -> float | None:
        return self.agreed / self.pairs if self.pairs else None

    def as_json(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "agreed": self.agreed, "share": self.share, "kappa": self.kappa}


@dataclass
class JudgeBoardResult:
    table: pd.DataFrame
    board: Leaderboard
    verdicts: int
    judges: list[str]
    agreement: Agreement

    def rows(self) -> list[dict]:
        import json

        return json.loads(self.table.to_json(orient="records"))


class JudgeBoard:
    def __init__(
        self, store: Store, registry: PresetRegistry, bootstrap_rounds: int = 100, seed: int = 0, **fit
    ):
        self.store, self.registry = store, registry
        self.rows = NotebookStore(store)
        self.bootstrap_rounds, self.seed, self.fit = bootstrap_rounds, seed, fit

    def judges(self) -> list[str]:
        """The presets that have judged pairwise."""
        return sorted({v.judge_preset for v in self.rows.verdicts(kind="pairwise")})

    def latest(self, judge: str | None = None) -> list[JudgeVerdict]:
        """Pairwise verdicts, the latest of each judge on each pair of answers."""
        latest: dict[tuple, JudgeVerdict] = {}
        for verdict in self.rows.verdicts(kind="pairwise"):
            if judge and verdict.judge_preset != judge:
                continue
            latest[(verdict.judge_preset, verdict.turn_a, verdict.turn_b)] = verdict
        return list(latest.values())

    def compute(self, judge: str | None = None) -> JudgeBoardResult:
        verdicts = self.latest(judge)
        battles = pd.DataFrame(
            {
                "model_a": [v.model_a for v in verdicts],
                "model_b": [v.model_b for v in verdicts],
                "outcome": [v.outcome for v in verdicts],
            }
        )
        board = compute_leaderboard(battles, self.bootstrap_rounds, self.seed, **self.fit)
        table = board.table.copy()
        table.insert(2, "display_name", [self._display_name(m) for m in table["model"]])
        judges = sorted({v.judge_preset for v in verdicts})
        return JudgeBoardResult(table, board, len(verdicts), judges, self.agreement(verdicts))

    def agreement(self, verdicts: list[JudgeVerdict]) -> Agreement:
        turns = {t for v in verdicts for t in (v.turn_a, v.turn_b)}
        scores, thumbs = self.rows.latest_ratings(turns)
        judged, human = [], []
        for verdict in verdicts:
            label = _preference(scores, verdict.turn_a, verdict.turn_b) or _preference(
                thumbs, verdict.turn_a, verdict.turn_b
            )
            if label is not None:
                judged.append(verdict.outcome)
                human.append(label)
        agreed = sum(a == b for a, b in zip(judged, human, strict=True))
        return Agreement(len(judged), agreed, cohen_kappa(judged, human))

    def _display_name(self, name: str) -> str:
        return self.registry.get(name).display_name if name in self.registry else name


def _preference(values: dict[int, int], turn_a: int, turn_b: int) -> str | None:
    if turn_a not in values or turn_b not in values:
        return None
    a, b = values[turn_a], values[turn_b]
    return "a" if a > b else "b" if b > a else "tie"
