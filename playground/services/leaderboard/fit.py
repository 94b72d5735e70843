"""Bradley–Terry with a Gaussian prior, bootstrap and Laplace intervals, ranks, and online Elo (the
conventions are in ``ratings.py``). Pure numpy / scipy."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.special import expit
from scipy.stats import norm

from playground.services.leaderboard.encoding import Encoded, cell_matrix, cells, encode, normalize_battles

ANCHOR = 1000.0
ELO_SCALE = 400.0
_NAT = math.log(10.0) / ELO_SCALE  # natural-log units per Elo point
DEFAULT_PRIOR_SD = 200.0  # Elo; see "Prior" in the module docstring


def l2_from_prior_sd(prior_sd: float) -> float:
    """The penalty ``l2`` of a Gaussian prior with standard deviation ``prior_sd`` (Elo points);
    ``inf`` (no prior) gives 0."""
    if not prior_sd > 0:
        raise ValueError("prior_sd must be > 0 (use math.inf for no prior)")
    return 0.0 if math.isinf(prior_sd) else 1.0 / (prior_sd * _NAT) ** 2


DEFAULT_L2 = l2_from_prior_sd(DEFAULT_PRIOR_SD)


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
    enc = encode(normalize_battles(battles))
    return enc.models, bootstrap_codes(enc, rounds, seed, l2)


def bootstrap_codes(enc: Encoded, rounds: int, seed: int | None, l2: float) -> np.ndarray:
    if rounds <= 0 or enc.n == 0:
        return np.empty((0, enc.n))
    rng = np.random.default_rng(seed)
    keys, counts = cells(enc)
    total = int(counts.sum())
    draws = rng.multinomial(total, counts / total, size=rounds).astype(np.float64)
    W = np.asarray(cell_matrix(keys, enc.n).T @ draws.T).T.reshape(rounds, enc.n, enc.n)
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


def online_elo(
    battles: Any, *, k: float = 4.0, initial: float = ANCHOR, scale: float = ELO_SCALE
) -> pd.Series:
    """Sequential Elo over battles in the given order; Series indexed by model (sorted).

    Expected score ``E_a = 1 / (1 + 10 ** ((R_b - R_a) / scale))``; the actual score is 1, 0,
    or 0.5 for tie / both_bad; ``R_a += k * (S_a - E_a)`` and ``R_b -= k * (S_a - E_a)``.
    """
    enc = encode(normalize_battles(battles))
    return pd.Series(
        online_elo_codes(enc, k, initial, scale), index=pd.Index(enc.models, name="model"), name="elo"
    )


def online_elo_codes(enc: Encoded, k: float, initial: float, scale: float) -> np.ndarray:
    ratings = [initial] * enc.n
    score_of = (1.0, 0.0, 0.5, 0.5)
    for a, b, o in zip(enc.ia.tolist(), enc.ib.tolist(), enc.oc.tolist(), strict=True):
        ra, rb = ratings[a], ratings[b]
        delta = k * (score_of[o] - 1.0 / (1.0 + 10.0 ** ((rb - ra) / scale)))
        ratings[a] = ra + delta
        ratings[b] = rb - delta
    return np.asarray(ratings, dtype=np.float64)
