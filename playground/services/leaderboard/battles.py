"""Votes → pairwise battles: an N-column vote is the best column beating each other column; a tie
ties every pair; "all bad" makes every pair both-bad."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------- votes → battles


def _vote_pairs(columns: int, outcome: str) -> list[tuple[int, int, str]]:
    """The battles of one vote as column pairs ``(i, j, outcome)``; see :func:`vote_battles`."""
    pairs = [(i, j) for i in range(columns) for j in range(i + 1, columns)]
    if outcome in ("tie", "all_bad"):
        result = "tie" if outcome == "tie" else "both_bad"
        return [(i, j, result) for i, j in pairs]
    try:
        best = int(outcome)
    except (TypeError, ValueError):
        return []
    return [(i, j, "a" if i == best else "b") for i, j in pairs if best in (i, j)]


def vote_battles(models: list[str], outcome: str) -> list[tuple[str, str, str]]:
    """One vote → pairwise battles ``(model_a, model_b, outcome)`` with columns in their order.

    ``outcome`` is the best column's index ("0", "1", …), "tie" or "all_bad"; a 2-column vote is
    one battle. An outcome that does not fit the columns gives no battles.
    """
    return [(models[i], models[j], result) for i, j, result in _vote_pairs(len(models), outcome)]


def votes_to_battles(votes: Iterable[Any], positions: bool = False) -> pd.DataFrame:
    """Votes → a battles table (in vote order). A vote is a mapping or an object (e.g. a ``Vote``
    or a result row) with ``models`` and ``outcome``, or a ``(models, outcome)`` pair; ``models`` is
    a list of preset names or its JSON text (as read from the database).

    With ``positions``, three more columns say where each battle came from: ``vote`` (the vote's
    position in ``votes``), ``column_a`` and ``column_b`` (the two models' columns in it).
    """
    models, outcomes = [], []
    for vote in votes:
        if type(vote) is tuple:
            names, outcome = vote
        elif hasattr(vote, "models"):
            names, outcome = vote.models, vote.outcome
        else:
            names, outcome = vote["models"], vote["outcome"]
        models.append(names if isinstance(names, str) else tuple(names or ()))
        outcomes.append(str(outcome))
    return battles_table(models, outcomes, positions)


def battles_table(models: list, outcomes: list[str], positions: bool) -> pd.DataFrame:
    """:func:`votes_to_battles` of flat columns, vectorised: each distinct (models, outcome) pair
    (a few hundred, however many votes) is decoded and expanded into battles once, then every vote
    takes its pair's battles, so 100k votes cost no Python loop and no 100k small containers."""
    columns = ("model_a", "model_b", "outcome") + (("vote", "column_a", "column_b") if positions else ())
    n = len(outcomes)
    by_models: dict[Any, int] = {}  # models (JSON text or a tuple of names) → code
    by_outcome: dict[str, int] = {}
    outcome = np.fromiter((by_outcome.setdefault(o, len(by_outcome)) for o in outcomes), np.int64, n)
    hashable = (tuple(m) if isinstance(m, list) else m for m in models)  # PostgreSQL's driver decodes JSON
    model = np.fromiter((by_models.setdefault(m, len(by_models)) for m in hashable), np.int64, n)
    distinct, kinds = np.unique(model * len(by_outcome) + outcome, return_inverse=True)
    model_of, outcome_of = list(by_models), list(by_outcome)
    kinds_of = [(model_of[c // len(by_outcome)], outcome_of[c % len(by_outcome)]) for c in distinct.tolist()]
    flat: list[tuple[str, str, str, int, int]] = []  # the battles of each kind, one kind after another
    sizes = np.zeros(len(kinds_of), dtype=np.int64)
    for kind, (names, outcome) in enumerate(kinds_of):
        names = (json.loads(names) if isinstance(names, str) else list(names)) or []
        pairs = _vote_pairs(len(names), outcome)
        flat.extend((names[i], names[j], result, i, j) for i, j, result in pairs)
        sizes[kind] = len(pairs)
    starts = np.cumsum(sizes) - sizes
    per_vote = sizes[kinds]
    vote = np.repeat(np.arange(n), per_vote)
    take = starts[kinds][vote] + np.arange(len(vote)) - np.repeat(np.cumsum(per_vote) - per_vote, per_vote)
    values = list(zip(*flat, strict=True)) if flat else [()] * 5
    table: dict[str, Any] = {}
    for k, name in enumerate(columns[:3]):
        table[name] = pd.array(np.asarray(values[k], dtype=object)[take], dtype="str")
    if positions:
        table["vote"] = vote
        table["column_a"] = np.asarray(values[3], dtype=np.int64)[take]
        table["column_b"] = np.asarray(values[4], dtype=np.int64)[take]
    return pd.DataFrame(table, columns=list(columns))
