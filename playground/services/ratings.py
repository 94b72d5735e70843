"""Rating math for the arena leaderboard: Bradley–Terry, bootstrap intervals, online Elo, stats.

Pure numpy / scipy / pandas; no Gradio, no database.

Input
-----
Battles are records with ``model_a``, ``model_b`` and ``outcome`` (one of :data:`OUTCOMES`):
``"a"`` (model_a won), ``"b"`` (model_b won), ``"tie"`` and ``"both_bad"``. Any other
fields are ignored. A :class:`pandas.DataFrame`, or any iterable of mappings / objects
with those attributes (e.g. :class:`Battle`), is accepted. Battles of a model against
itself carry no information and are dropped.

Conventions
-----------
* **Elo scale.** ``P(i beats j) = 1 / (1 + 10 ** ((R_j - R_i) / 400))``.
* **Anchor.** The mean rating over the models in the table is exactly :data:`ANCHOR`
  (1000), in the point estimate and in every bootstrap round.
* **Ties and both_bad** each count as half a win for each side in the ratings (both Bradley–
  Terry and online Elo) and in win rates. They are still counted separately in the stats
  (``ties``, ``both_bad``, ``both_bad_rate``), never merged.
* **Prior (regularisation).** The Bradley–Terry fit maximises the penalised log-likelihood
  ``sum_ij W_ij * log P(i beats j) - l2 / 2 * sum_i r_i ** 2`` where ``r`` is the rating in
  natural-log units (``r = (R - 1000) * ln(10) / 400``) and ``W_ij`` is the number of (half)
  wins of ``i`` over ``j``: a Gaussian prior ``r_i ~ N(0, 1 / l2)`` around the anchor. The
  default is a prior sd of :data:`DEFAULT_PRIOR_SD` = 200 Elo (``l2 = 1 / (200 * ln 10 /
  400) ** 2 ≈ 0.75``), about the spread of real arena ratings. Its weight is that of ~3 tied
  battles per model (a battle at even odds carries information 1/4), so:

  - one single vote moves the two models to about ±70 Elo (not ±500, the old almost-MLE
    answer to "1 win, 0 losses");
  - a model with 30 battles is shrunk towards the anchor by ~10 %, one with 300 battles by
    ~1.5 %, one with 3000 by ~0.15 %: with 1000s of votes the prior is negligible;
  - ratings stay finite when a model has only wins or only losses, and never-compared groups
    of models are pulled to the same anchor.

  ``l2=0`` gives the plain maximum-likelihood estimate, which only exists when the "beat or
  tied" graph is strongly connected; a ``ValueError`` is raised otherwise.
* **Provisional.** A model with fewer than ``min_battles`` battles (default
  :data:`DEFAULT_MIN_BATTLES` = 30) is flagged ``provisional``: below that the prior still
  makes up more than ~10 % of the rating's precision (30 even battles carry information
  7.5 against the prior's 0.75), i.e. the number is partly the prior's, and its 95 % interval
  is wider than about ±120 Elo.
* **Intervals.** Two intervals are computed and their union is reported, so an interval is
  never narrower than either method says:

  - 95 % percentile bootstrap over battles (battles are resampled with replacement, as
    multinomial counts over the distinct (winner, loser) / tied-pair cells). Deterministic for
    a fixed ``seed`` (``numpy.random.default_rng(seed)``). A model that is absent from a
    resample gets NaN in that round and the quantiles skip it. A bootstrap of few battles is
    overconfident (a single vote resamples to itself: width 0).
  - Laplace: ``rating ± z * sd`` with ``sd`` from the inverse Hessian of the penalised
    log-likelihood at the estimate (restricted to centred ratings, i.e. the anchor is fixed).
    It includes the prior, so it is never of width 0 (a model with no information gets the
    prior's ±1.96 * 200 Elo), and it matches the bootstrap when battles are many.

  With ``bootstrap_rounds=0`` only the Laplace interval is used.
* **Rank.** ``rank = 1 + number of models whose ci_low is above my ci_high``.
* **Online Elo** processes battles in the given row order (sort by time before calling).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.special import expit
from scipy.stats import norm

OUTCOMES: tuple[str, ...] = ("a", "b", "tie", "both_bad")
ANCHOR = 1000.0
ELO_SCALE = 400.0
_NAT = math.log(10.0) / ELO_SCALE  # natural-log units per Elo point
DEFAULT_PRIOR_SD = 200.0  # Elo; see "Prior" in the module docstring
DEFAULT_MIN_BATTLES = 30  # fewer battles: provisional; see "Provisional" in the module docstring


def l2_from_prior_sd(prior_sd: float) -> float:
    """The penalty ``l2`` of a Gaussian prior with standard deviation ``prior_sd`` (Elo points);
    ``inf`` (no prior) gives 0."""
    if not prior_sd > 0:
        raise ValueError("prior_sd must be > 0 (use math.inf for no prior)")
    return 0.0 if math.isinf(prior_sd) else 1.0 / (prior_sd * _NAT) ** 2


DEFAULT_L2 = l2_from_prior_sd(DEFAULT_PRIOR_SD)

LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "rank",
    "model",
    "rating",
    "ci_low",
    "ci_high",
    "elo",
    "battles",
    "provisional",
    "wins",
    "win_rate",
    "ties",
    "both_bad",
    "both_bad_rate",
)
_DTYPES: dict[str, str] = {
    "rank": "int64",
    "model": "str",
    "rating": "float64",
    "ci_low": "float64",
    "ci_high": "float64",
    "elo": "float64",
    "battles": "int64",
    "provisional": "bool",
    "wins": "int64",
    "win_rate": "float64",
    "ties": "int64",
    "both_bad": "int64",
    "both_bad_rate": "float64",
}
_STATS_COLUMNS = ("battles", "wins", "win_rate", "ties", "both_bad", "both_bad_rate")


@dataclass(frozen=True)
class Battle:
    """One battle record (a convenience input type; dicts and DataFrames work too)."""

    model_a: str
    model_b: str
    outcome: str


@dataclass(frozen=True)
class Leaderboard:
    """Result of :func:`compute_leaderboard`.

    ``table`` has :data:`LEADERBOARD_COLUMNS`, one row per model, sorted by rating
    (descending, then model name). ``win_rate`` and ``battle_counts`` are square
    DataFrames (rows = model, columns = opponent) in the table's order; ``win_rate`` is the
    fraction of their battles the row model won against the column model (ties and
    both_bad count half), NaN on the diagonal and for pairs that never met.
    ``bootstrap`` holds one row per bootstrap round, one column per model (table order),
    NaN where the model was absent from that resample. ``laplace_sd`` is each model's Laplace
    standard deviation (Elo, table order); ``l2`` the prior's penalty and ``min_battles`` the
    provisional threshold the table was computed with.
    """

    table: pd.DataFrame
    win_rate: pd.DataFrame
    battle_counts: pd.DataFrame
    bootstrap: pd.DataFrame
    n_battles: int
    bootstrap_rounds: int
    seed: int | None
    laplace_sd: pd.Series | None = None
    l2: float = DEFAULT_L2
    min_battles: int = DEFAULT_MIN_BATTLES

    @property
    def models(self) -> list[str]:
        return self.table["model"].tolist()

    @property
    def empty(self) -> bool:
        return self.table.empty


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class _Encoded:
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


def _encode(df: pd.DataFrame) -> _Encoded:
    m = len(df)
    names = np.concatenate([df["model_a"].to_numpy(dtype=object), df["model_b"].to_numpy(dtype=object)])
    codes, uniques = pd.factorize(names, sort=True)
    oc = pd.Categorical(df["outcome"], categories=list(OUTCOMES)).codes.astype(np.int64)
    return _Encoded(
        models=[str(u) for u in uniques],
        ia=codes[:m].astype(np.int64),
        ib=codes[m:].astype(np.int64),
        oc=oc,
    )


# --------------------------------------------------------------------------- aggregation


def _cells(enc: _Encoded) -> tuple[np.ndarray, np.ndarray]:
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


def _cell_matrix(keys: np.ndarray, n: int) -> sparse.csr_matrix:
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


def _win_matrix(enc: _Encoded) -> np.ndarray:
    """n×n matrix: W[i, j] = wins of i over j, ties and both_bad counting half."""
    keys, counts = _cells(enc)
    return (_cell_matrix(keys, enc.n).T @ counts).reshape(enc.n, enc.n)


def pairwise_wins(battles: Any) -> tuple[list[str], np.ndarray]:
    """Models (sorted by name) and their half-win matrix ``W`` (see :func:`fit_bradley_terry`)."""
    enc = _encode(normalize_battles(battles))
    return enc.models, _win_matrix(enc)


# --------------------------------------------------------------------------- Bradley–Terry


def _objective(W: np.ndarray, r: np.ndarray, l2: float) -> np.ndarray:
    diff = r[:, :, None] - r[:, None, :]
    return -(W * np.logaddexp(0.0, -diff)).sum(axis=(1, 2)) - 0.5 * l2 * (r * r).sum(axis=1)


def _fit_batch(W: np.ndarray, l2: float, tol: float = 1e-11, max_iter: int = 200) -> np.ndarray:
    """Newton's method with Armijo backtracking, vectorised over a batch of win matrices.

    ``W`` has shape (B, n, n); returns centred ratings in natural-log units, shape (B, n).
    The objective is concave (strictly, for l2 > 0 or a strongly connected graph); the
    rating offset is fixed by adding the all-ones projector to the Hessian, which leaves the
    Newton step unchanged on the centred subspace (the gradient is always centred).
    """
    B, n, _ = W.shape
    if n == 0:
        return np.zeros((B, 0))
    N = W + W.transpose(0, 2, 1)
    gauge = np.full((n, n), 1.0 / n) + l2 * np.eye(n)
    diag = np.arange(n)
    r = np.zeros((B, n))
    obj = _objective(W, r, l2)
    for _ in range(max_iter):
        P = expit(r[:, :, None] - r[:, None, :])
        grad = (W - N * P).sum(axis=2) - l2 * r
        V = N * P * (1.0 - P)
        H = -V
        H[:, diag, diag] = V.sum(axis=2)
        step = np.linalg.solve(H + gauge, grad[..., None])[..., 0]
        slope = (grad * step).sum(axis=1)  # ≥ 0: Newton direction is an ascent direction
        t = np.ones(B)
        new = _objective(W, r + step, l2)
        slack = 1e-12 * (1.0 + np.abs(obj))  # rounding noise of the objective near the optimum
        for _ in range(60):
            ok = new >= obj + 1e-4 * t * slope - slack
            if ok.all():
                break
            t = np.where(ok, t, 0.5 * t)
            bad = ~ok
            new[bad] = _objective(W[bad], r[bad] + t[bad, None] * step[bad], l2)
        r = r + t[:, None] * step
        obj = new
        if np.max(np.abs(t[:, None] * step), initial=0.0) < tol:
            break
    else:
        warnings.warn("Bradley–Terry fit did not converge", RuntimeWarning, stacklevel=2)
    return r - r.mean(axis=1, keepdims=True)


def _check_mle_exists(W: np.ndarray) -> None:
    """With l2 == 0 the MLE exists iff the graph i → j (i won at least half a battle over j)
    is strongly connected."""
    for w in W:
        if w.shape[0] > 1:
            n_comp, _ = connected_components(sparse.csr_matrix(w > 0), directed=True, connection="strong")
            if n_comp > 1:
                raise ValueError(
                    "the maximum-likelihood Bradley–Terry ratings do not exist for these battles "
                    "(some model has only wins or only losses against the rest); use l2 > 0"
                )


def fit_bradley_terry(wins: np.ndarray, *, l2: float = DEFAULT_L2, anchor: float = ANCHOR) -> np.ndarray:
    """Fit Bradley–Terry ratings on the Elo scale from a half-win matrix.

    ``wins`` is (n, n) with ``wins[i, j]`` = wins of i over j (ties count half), or a batch
    of shape (B, n, n). Returns ratings (n,) or (B, n) whose mean is ``anchor``.
    """
    W = np.asarray(wins, dtype=np.float64)
    single = W.ndim == 2
    if single:
        W = W[None]
    if W.ndim != 3 or W.shape[1] != W.shape[2]:
        raise ValueError(f"wins must be square (n, n) or (B, n, n), got shape {np.shape(wins)}")
    if l2 < 0:
        raise ValueError("l2 must be >= 0")
    if l2 == 0:
        _check_mle_exists(W)
    ratings = anchor + _fit_batch(W, l2) / _NAT
    return ratings[0] if single else ratings


def laplace_sd(wins: np.ndarray, ratings: np.ndarray, *, l2: float = DEFAULT_L2) -> np.ndarray:
    """Laplace standard deviations (Elo) of fitted ratings, with the anchor (mean) held fixed.

    The covariance of the ratings in natural-log units is the inverse of the negative Hessian
    of the penalised log-likelihood at ``ratings``, ``H = L + l2 * I`` with ``L`` the weighted
    Laplacian ``L_ii = sum_j V_ij``, ``L_ij = -V_ij``, ``V_ij = N_ij * p_ij * (1 - p_ij)``
    (``N`` = battles between i and j). Centring ``C = I - 11'/n`` gives the covariance of the
    anchored ratings, ``C H^-1 C = C (H + 11'/n)^-1 C`` (the second form also works for
    ``l2 = 0`` on a connected graph; otherwise the result is ``inf``). Ties count as half a win
    each side, as in the fit; their real variance is smaller, so this errs on the wide side.
    """
    W = np.asarray(wins, dtype=np.float64)
    n = W.shape[0]
    if n == 0:
        return np.empty(0)
    r = (np.asarray(ratings, dtype=np.float64) - np.mean(ratings)) * _NAT
    P = expit(r[:, None] - r[None, :])
    V = (W + W.T) * P * (1.0 - P)
    H = np.diag(V.sum(axis=1)) - V + l2 * np.eye(n) + np.full((n, n), 1.0 / n)
    C = np.eye(n) - 1.0 / n
    try:
        cov = C @ np.linalg.inv(H) @ C
    except np.linalg.LinAlgError:
        return np.full(n, np.inf)
    if l2 == 0.0 and n > 1:
        n_comp, _ = connected_components(sparse.csr_matrix(V > 0), directed=False)
        if n_comp > 1:
            return np.full(n, np.inf)
    return np.sqrt(np.clip(np.diag(cov), 0.0, None)) / _NAT


def bootstrap_ratings(
    battles: Any, rounds: int = 100, seed: int | None = 0, *, l2: float = DEFAULT_L2
) -> tuple[list[str], np.ndarray]:
    """Models (sorted by name) and a (rounds, n) array of ratings fitted on resampled battles
    (NaN where a model drew no battle in that round)."""
    enc = _encode(normalize_battles(battles))
    return enc.models, _bootstrap(enc, rounds, seed, l2)


def _bootstrap(enc: _Encoded, rounds: int, seed: int | None, l2: float) -> np.ndarray:
    if rounds <= 0 or enc.n == 0:
        return np.empty((0, enc.n))
    rng = np.random.default_rng(seed)
    keys, counts = _cells(enc)
    total = int(counts.sum())
    draws = rng.multinomial(total, counts / total, size=rounds).astype(np.float64)
    W = np.asarray(_cell_matrix(keys, enc.n).T @ draws.T).T.reshape(rounds, enc.n, enc.n)
    ratings = fit_bradley_terry(W, l2=l2)
    # A model that drew no battle in a round has no rating there (the prior would pin it to
    # the anchor); the others still average to the anchor, since its centred rating is 0.
    absent = (W.sum(axis=2) + W.sum(axis=1)) == 0
    ratings[absent] = np.nan
    return ratings


def combined_intervals(
    rating: np.ndarray, sd: np.ndarray, boot: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """The union of the Laplace interval ``rating ± z * sd`` and the bootstrap percentile
    interval of ``boot`` (rounds × models, NaN = absent; no rounds: Laplace only)."""
    z = float(norm.ppf(0.5 + confidence / 2.0))
    low, high = rating - z * sd, rating + z * sd
    if len(boot):
        alpha = (1.0 - confidence) / 2.0
        with warnings.catch_warnings():  # all-NaN column: model absent from every round
            warnings.simplefilter("ignore", RuntimeWarning)
            b_low, b_high = np.nanquantile(boot, [alpha, 1.0 - alpha], axis=0)
        low = np.fmin(low, b_low)
        high = np.fmax(high, b_high)
    return low, high


def rank_from_intervals(ci_low: Any, ci_high: Any) -> np.ndarray:
    """``rank_i = 1 + #{j : ci_low[j] > ci_high[i]}`` (ties share a rank; ranks can skip)."""
    low = np.asarray(ci_low, dtype=np.float64)
    high = np.asarray(ci_high, dtype=np.float64)
    return 1 + (low[None, :] > high[:, None]).sum(axis=1)


# --------------------------------------------------------------------------- online Elo, stats


def online_elo(
    battles: Any, *, k: float = 4.0, initial: float = ANCHOR, scale: float = ELO_SCALE
) -> pd.Series:
    """Sequential Elo over battles in the given order; Series indexed by model (sorted).

    Expected score ``E_a = 1 / (1 + 10 ** ((R_b - R_a) / scale))``; the actual score is 1, 0,
    or 0.5 for tie / both_bad; ``R_a += k * (S_a - E_a)`` and ``R_b -= k * (S_a - E_a)``.
    """
    enc = _encode(normalize_battles(battles))
    return pd.Series(
        _online_elo(enc, k, initial, scale), index=pd.Index(enc.models, name="model"), name="elo"
    )


def _online_elo(enc: _Encoded, k: float, initial: float, scale: float) -> np.ndarray:
    ratings = [initial] * enc.n
    score_of = (1.0, 0.0, 0.5, 0.5)
    for a, b, o in zip(enc.ia.tolist(), enc.ib.tolist(), enc.oc.tolist(), strict=True):
        ra, rb = ratings[a], ratings[b]
        delta = k * (score_of[o] - 1.0 / (1.0 + 10.0 ** ((rb - ra) / scale)))
        ratings[a] = ra + delta
        ratings[b] = rb - delta
    return np.asarray(ratings, dtype=np.float64)


def model_stats(battles: Any) -> pd.DataFrame:
    """Per-model counts, indexed by model (sorted): battles, wins, win_rate, ties, both_bad,
    both_bad_rate. ``wins`` are raw decisive wins; ``win_rate = (wins + 0.5 * (ties +
    both_bad)) / battles``; ``both_bad_rate = both_bad / battles``."""
    return _stats(_encode(normalize_battles(battles)))


def _stats(enc: _Encoded) -> pd.DataFrame:
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
    enc = _encode(normalize_battles(battles))
    return _matrices(enc, _win_matrix(enc), list(range(enc.n)))[0]


def _matrices(enc: _Encoded, W: np.ndarray, order: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
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


# --------------------------------------------------------------------------- leaderboard


def empty_table() -> pd.DataFrame:
    """A zero-row leaderboard table with :data:`LEADERBOARD_COLUMNS` and their dtypes."""
    return pd.DataFrame({c: pd.Series([], dtype=_DTYPES[c]) for c in LEADERBOARD_COLUMNS})


def compute_leaderboard(
    battles_df: Any,
    bootstrap_rounds: int = 100,
    seed: int | None = 0,
    *,
    l2: float = DEFAULT_L2,
    elo_k: float = 4.0,
    confidence: float = 0.95,
    min_battles: int = DEFAULT_MIN_BATTLES,
) -> Leaderboard:
    """Fit everything for the leaderboard; see the module docstring for the conventions.

    Empty input (or only self-battles) gives an empty table with the same columns.
    """
    if bootstrap_rounds < 0:
        raise ValueError("bootstrap_rounds must be >= 0")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    enc = _encode(normalize_battles(battles_df))
    n = enc.n
    W = _win_matrix(enc)
    rating = fit_bradley_terry(W, l2=l2) if n else np.empty(0)
    sd = laplace_sd(W, rating, l2=l2)
    boot = _bootstrap(enc, bootstrap_rounds, seed, l2)
    ci_low, ci_high = combined_intervals(rating, sd, boot, confidence)
    rank = rank_from_intervals(ci_low, ci_high)
    stats = _stats(enc)
    table = pd.DataFrame(
        {
            "rank": rank,
            "model": enc.models,
            "rating": rating,
            "ci_low": ci_low,
            "ci_high": ci_high,
            "elo": _online_elo(enc, elo_k, ANCHOR, ELO_SCALE),
            **{c: stats[c].to_numpy() for c in _STATS_COLUMNS},
            "provisional": stats["battles"].to_numpy() < min_battles,
        },
        columns=list(LEADERBOARD_COLUMNS),
    )
    order = sorted(range(n), key=lambda i: (-rating[i], enc.models[i]))
    table = table.iloc[order].reset_index(drop=True).astype(_DTYPES) if n else empty_table()
    win_rate, counts = _matrices(enc, W, order)
    names = [enc.models[i] for i in order]
    bootstrap = pd.DataFrame(boot[:, order], columns=pd.Index(names, name="model"))
    return Leaderboard(
        table=table,
        win_rate=win_rate,
        battle_counts=counts,
        bootstrap=bootstrap,
        n_battles=len(enc.oc),
        bootstrap_rounds=int(bootstrap_rounds),
        seed=seed,
        laplace_sd=pd.Series(sd[order], index=pd.Index(names, name="model"), name="laplace_sd"),
        l2=l2,
        min_battles=int(min_battles),
    )
