"""Battles as the rating math reads them: validated, encoded as integer codes, and collapsed into
the half-win matrix (``W[i, j]``: wins of i over j, ties and both_bad counting half). Conventions:
``ratings.py``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

OUTCOMES: tuple[str, ...] = ("a", "b", "tie", "both_bad")


@dataclass(frozen=True)
class Battle:
    """One battle record (a convenience input type; dicts and DataFrames work too)."""

    model_a: str
    model_b: str
    outcome: str


@dataclass(frozen=True)
class Encoded:
    """Battles as integer codes: models sorted by name, outcome index into OUTCOMES."""

    models: list[str]
    ia: np.ndarray
    ib: np.ndarray
    oc: np.ndarray

    @property
    def n(self) -> int:
        return len(self.models)


def normalize_battles(battles: Any) -> pd.DataFrame:
    """Return a DataFrame with exactly ``model_a, model_b, outcome`` (str), validated.

    Raises ``ValueError`` for missing columns, missing values or unknown outcomes.
    Self-battles (``model_a == model_b``) are dropped. Row order is preserved.
    """
    cols = ["model_a", "model_b", "outcome"]
    if battles is None:
        df = pd.DataFrame({c: pd.Series([], dtype="str") for c in cols})
    elif isinstance(battles, pd.DataFrame):
        missing = [c for c in cols if c not in battles.columns]
        if missing:
            raise ValueError(f"battles table lacks column(s) {missing}; it needs {cols}")
        df = battles.loc[:, cols]
    else:
        rows = [_record_fields(rec, cols) for rec in battles]
        df = pd.DataFrame(rows, columns=cols)
    if df.isna().to_numpy().any():
        raise ValueError("battles contain missing model names or outcomes")
    df = df.astype("str").reset_index(drop=True)
    bad = sorted(set(df["outcome"].unique()) - set(OUTCOMES))
    if bad:
        raise ValueError(f"unknown battle outcome(s) {bad}; expected one of {list(OUTCOMES)}")
    return df[df["model_a"] != df["model_b"]].reset_index(drop=True)


def _record_fields(rec: Any, cols: list[str]) -> tuple[Any, ...]:
    if isinstance(rec, Mapping):
        try:
            return tuple(rec[c] for c in cols)
        except KeyError as exc:
            raise ValueError(f"battle record {rec!r} lacks field {exc.args[0]!r}") from None
    try:
        return tuple(getattr(rec, c) for c in cols)
    except AttributeError:
        raise ValueError(f"battle record {rec!r} lacks one of the fields {cols}") from None


def encode(df: pd.DataFrame) -> Encoded:
    m = len(df)
    names = np.concatenate([df["model_a"].to_numpy(dtype=object), df["model_b"].to_numpy(dtype=object)])
    codes, uniques = pd.factorize(names, sort=True)
    oc = pd.Categorical(df["outcome"], categories=list(OUTCOMES)).codes.astype(np.int64)
    return Encoded(
        models=[str(u) for u in uniques],
        ia=codes[:m].astype(np.int64),
        ib=codes[m:].astype(np.int64),
        oc=oc,
    )


# --------------------------------------------------------------------------- aggregation


def cells(enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
    """Collapse battles into distinct cells; return (cell keys, counts).

    A decisive battle is the cell ``winner * n + loser`` (key < n²); a tie / both_bad is the
    cell ``n² + lo * n + hi`` for the unordered pair. All battles in a cell contribute the
    same to the Bradley–Terry likelihood, so resampling cells is resampling battles.
    """
    n = enc.n
    a_won = enc.oc == 0
    decisive = enc.oc <= 1
    winner = np.where(a_won, enc.ia, enc.ib)
    loser = np.where(a_won, enc.ib, enc.ia)
    lo = np.minimum(enc.ia, enc.ib)
    hi = np.maximum(enc.ia, enc.ib)
    key = np.where(decisive, winner * n + loser, n * n + lo * n + hi)
    counts = np.bincount(key, minlength=2 * n * n)
    keys = np.flatnonzero(counts)
    return keys, counts[keys].astype(np.float64)


def cell_matrix(keys: np.ndarray, n: int) -> sparse.csr_matrix:
    """Sparse (cells × n²) map from cell counts to the flattened half-win matrix W."""
    nn = n * n
    decisive = keys < nn
    half = ~decisive
    pair = keys[half] - nn
    lo, hi = pair // n, pair % n
    rows = np.concatenate([np.flatnonzero(decisive), np.flatnonzero(half), np.flatnonzero(half)])
    cols = np.concatenate([keys[decisive], lo * n + hi, hi * n + lo])
    vals = np.concatenate([np.ones(decisive.sum()), np.full(2 * half.sum(), 0.5)])
    return sparse.csr_matrix((vals, (rows, cols)), shape=(len(keys), nn))


def win_matrix(enc: Encoded) -> np.ndarray:
    """n×n matrix: W[i, j] = wins of i over j, ties and both_bad counting half."""
    keys, counts = cells(enc)
    return (cell_matrix(keys, enc.n).T @ counts).reshape(enc.n, enc.n)


def pairwise_wins(battles: Any) -> tuple[list[str], np.ndarray]:
    """Models (sorted by name) and their half-win matrix ``W`` (see :func:`fit_bradley_terry`)."""
    enc = encode(normalize_battles(battles))
    return enc.models, win_matrix(enc)
