"""Per-model counts and the pairwise win-rate matrix (ties and both_bad counting half)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from playground.services.leaderboard.encoding import Encoded, encode, normalize_battles, win_matrix


def model_stats(battles: Any) -> pd.DataFrame:
    """Per-model counts, indexed by model (sorted): battles, wins, win_rate, ties, both_bad,
    both_bad_rate. ``wins`` are raw decisive wins; ``win_rate = (wins + 0.5 * (ties +
    both_bad)) / battles``; ``both_bad_rate = both_bad / battles``."""
    return stats_of(encode(normalize_battles(battles)))


def stats_of(enc: Encoded) -> pd.DataFrame:
    n = enc.n

    def count(mask_a: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
        return np.bincount(enc.ia[mask_a], minlength=n) + np.bincount(enc.ib[mask_b], minlength=n)

    every = np.ones(len(enc.oc), dtype=bool)
    battles = count(every, every)
    wins = count(enc.oc == 0, enc.oc == 1)
    ties = count(enc.oc == 2, enc.oc == 2)
    both_bad = count(enc.oc == 3, enc.oc == 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        win_rate = (wins + 0.5 * (ties + both_bad)) / battles
        both_bad_rate = both_bad / battles
    return pd.DataFrame(
        {
            "battles": battles.astype(np.int64),
            "wins": wins.astype(np.int64),
            "win_rate": win_rate,
            "ties": ties.astype(np.int64),
            "both_bad": both_bad.astype(np.int64),
            "both_bad_rate": both_bad_rate,
        },
        index=pd.Index(enc.models, name="model"),
    )


def win_rate_matrix(battles: Any) -> pd.DataFrame:
    """Square DataFrame (rows = model, columns = opponent, names sorted): fraction of their
    battles the row model won (ties / both_bad half); NaN on the diagonal / if never met."""
    enc = encode(normalize_battles(battles))
    return matrices(enc, win_matrix(enc), list(range(enc.n)))[0]


def matrices(enc: Encoded, W: np.ndarray, order: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    W = W[np.ix_(order, order)]
    counts = W + W.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(counts > 0, W / counts, np.nan)
    names = [enc.models[i] for i in order]
    idx = pd.Index(names, name="model")
    cols = pd.Index(names, name="opponent")
    return (
        pd.DataFrame(rate, index=idx, columns=cols),
        pd.DataFrame(np.rint(counts).astype(np.int64), index=idx, columns=cols),
    )
