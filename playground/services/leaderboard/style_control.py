"""Style control: arena ratings with the answers' style (length, markdown) factored out.

Pure numpy / pandas; no Gradio, no database. The method is Chatbot Arena's (LMSYS, "Does style
matter? Disentangling style and substance in Chatbot Arena", August 2024): a contextual
Bradley–Terry model, i.e. a logistic regression of the battle's outcome on the model indicators
*and* style covariates of the two answers,

    logit P(a beats b) = r_a - r_b + sum_k beta_k * z_k,

so that ``r`` (the "style-controlled" ratings) is what remains of a model's strength once the
voters' taste for, e.g., longer answers (``beta_length > 0``) is accounted for.

Style features
--------------
Per answer (:func:`answer_style`), as :data:`STYLE_FEATURES`:

* ``length``: characters of the whole answer. Characters, not tokens: every model has its own
  tokenizer, so token counts are not comparable across models.
* ``headers``: markdown headers (a line starting with 1–6 ``#`` and a space);
* ``lists``: list items (a line starting with ``-``, ``*``, ``+`` or ``1.`` and a space, indented
  or not);
* ``bold``: bold spans (``**…**`` or ``__…__`` on one line).

The markdown counts skip fenced code blocks (as in LMSYS's counts). For a battle, each feature
becomes the normalised difference ``(a - b) / (a + b)`` (0 when both are 0), in [-1, 1], and is
then divided by its root mean square over the battles (:func:`fit_style_control`): a scale, not
a centring, so that swapping the two sides of a battle flips the sign of every covariate exactly
(LMSYS subtract the mean too; with the sides in random order the mean is ~0 anyway). A feature
that never varies is left out (its coefficient is NaN). A battle whose answers are unknown gets
zero covariates: it informs the ratings exactly as in the plain fit and nothing else. Which
answers a vote judged is the caller's choice; the leaderboard sums the features over all rounds
of an arena battle and takes a Compare vote's own round
(:meth:`playground.services.leaderboard.LeaderboardService.battle_style`).

Fit and intervals
-----------------
Ties and both_bad count as half a win each side (the target is 0.5), and the same Gaussian prior
as the plain fit (``l2`` on the ratings in natural-log units, see
:mod:`playground.services.leaderboard.ratings`) is put on the ratings and on the coefficients (per RMS unit).
The penalised likelihood is maximised by Newton's method. Intervals are Laplace intervals
(inverse Hessian of the penalised log-likelihood, anchor held fixed), which include the prior and
so are never of width 0; ranks follow from them with the usual rule. (No bootstrap: one fit on
100k battles takes ~0.1 s, a bootstrap would multiply that by its rounds.)
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, log_expit
from scipy.stats import norm

from playground.services.leaderboard.encoding import OUTCOMES
from playground.services.leaderboard.fit import ANCHOR, DEFAULT_L2, ELO_SCALE, rank_from_intervals

STYLE_FEATURES: tuple[str, ...] = ("length", "headers", "lists", "bold")
STYLE_COLUMNS: tuple[str, ...] = ("rank", "model", "rating", "ci_low", "ci_high")
_NAT = np.log(10.0) / ELO_SCALE
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_HEADER = re.compile(r"\n[ \t]*#{1,6}[ \t]")  # after a "\n" put before every text
_ITEM = re.compile(r"\n[ \t]*(?:\d+\.|[-*+])[ \t]")
_BOLD = (re.compile(r"\*\*[^*\n]+\*\*"), re.compile(r"__[^_\n]+__"))  # apart: each has a literal prefix
_TARGET = np.array([1.0, 0.0, 0.5, 0.5])  # by outcome: a, b, tie, both_bad
_CHUNK = 4096  # texts per joined string in style_matrix


def answer_style(text: str) -> tuple[int, int, int, int]:
    """One answer's ``(length, headers, lists, bold)``; see the module docstring."""
    length = len(text)
    if "```" in text:
        text = _FENCE.sub("", text)
    text = "\n" + text
    bold = sum(len(pattern.findall(text)) for pattern in _BOLD)
    return length, len(_HEADER.findall(text)), len(_ITEM.findall(text)), bold


def style_matrix(texts: Iterable[str]) -> np.ndarray:
    """``(n, len(STYLE_FEATURES))`` float array: :func:`answer_style` of each text.

    In bulk: each chunk of texts is joined into one string (``"\n"`` before each text, ``"\0"``
    after, so no pattern spans two texts) and each pattern runs once over it; a match is
    attributed to its text by its position. Calling :func:`answer_style` 200k times costs about
    five times as much in per-call overhead.
    """
    texts = [t or "" for t in texts]
    out = np.zeros((len(texts), len(STYLE_FEATURES)), dtype=np.float64)
    out[:, 0] = np.fromiter(map(len, texts), np.float64, len(texts))
    for start in range(0, len(texts), _CHUNK):
        chunk = [_FENCE.sub("", t) if "```" in t else t for t in texts[start : start + _CHUNK]]
        sizes = np.fromiter(map(len, chunk), np.int64, len(chunk)) + 2  # "\n" + text + "\0"
        ends = np.cumsum(sizes)
        joined = "\n" + "\0\n".join(chunk) + "\0"
        for column, pattern in ((1, _HEADER), (2, _ITEM), (3, _BOLD[0]), (3, _BOLD[1])):
            found = np.fromiter((m.start() for m in pattern.finditer(joined)), np.int64)
            owner = np.searchsorted(ends, found, side="right")
            out[start : start + len(chunk), column] += np.bincount(owner, minlength=len(chunk))
    return out


def normalized_differences(style_a: Any, style_b: Any) -> np.ndarray:
    """``(a - b) / (a + b)`` per feature, 0 where ``a + b == 0``; NaN rows (unknown) stay NaN."""
    a = np.asarray(style_a, dtype=np.float64)
    b = np.asarray(style_b, dtype=np.float64)
    total = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total == 0.0, 0.0, (a - b) / total)


@dataclass(frozen=True)
class StyleControlled:
    """Result of :func:`fit_style_control`.

    ``table`` has :data:`STYLE_COLUMNS`, one row per model, sorted by rating (descending, then
    name): ratings on the Elo scale (mean :data:`~playground.services.leaderboard.fit.ANCHOR`), 95 %
    Laplace intervals and ranks from them. ``coefficients`` is indexed by feature: ``coef`` (log-
    odds per RMS unit of the normalised difference; > 0: the side with more of it wins more),
    ``ci_low``, ``ci_high`` (95 % Laplace), ``elo``, ``elo_ci_low``, ``elo_ci_high`` (the same in
    Elo points) and ``scale`` (the RMS used). A feature that never varies has NaN.
    ``styled_battles`` is how many battles had both answers' style.
    """

    table: pd.DataFrame
    coefficients: pd.DataFrame
    n_battles: int
    styled_battles: int

    @property
    def models(self) -> list[str]:
        return self.table["model"].tolist()


def fit_style_control(
    battles: pd.DataFrame,
    style_diff: Any,
    *,
    l2: float = DEFAULT_L2,
    confidence: float = 0.95,
    anchor: float = ANCHOR,
) -> StyleControlled:
    """Fit the contextual Bradley–Terry model (see the module docstring).

    ``battles`` has ``model_a, model_b, outcome`` (as for
    :func:`~playground.services.leaderboard.ratings.compute_leaderboard`); ``style_diff`` is aligned with
    its rows, ``(len(battles), len(STYLE_FEATURES))`` normalised differences (see
    :func:`normalized_differences`), NaN rows where the answers are unknown. Self-battles are
    dropped, as in the plain fit.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    if l2 < 0:
        raise ValueError("l2 must be >= 0")
    k = len(STYLE_FEATURES)
    diff = np.asarray(style_diff, dtype=np.float64).reshape(len(battles), k)
    keep = (battles["model_a"] != battles["model_b"]).to_numpy()
    df, diff = battles.loc[keep, ["model_a", "model_b", "outcome"]], diff[keep]
    bad = sorted(set(df["outcome"].unique()) - set(OUTCOMES))
    if bad:
        raise ValueError(f"unknown battle outcome(s) {bad}; expected one of {list(OUTCOMES)}")
    m = len(df)
    names = np.concatenate([df["model_a"].to_numpy(dtype=object), df["model_b"].to_numpy(dtype=object)])
    codes, uniques = pd.factorize(names, sort=True)
    models = [str(u) for u in uniques]
    n = len(models)
    ia, ib = codes[:m].astype(np.int64), codes[m:].astype(np.int64)
    y = _TARGET[pd.Categorical(df["outcome"], categories=list(OUTCOMES)).codes]
    styled = ~np.isnan(diff).any(axis=1)
    Z = np.where(styled[:, None], diff, 0.0)
    with np.errstate(invalid="ignore"):
        scale = np.sqrt((Z[styled] ** 2).mean(axis=0)) if styled.any() else np.zeros(k)
    used = scale > 0
    Z = Z[:, used] / scale[used]
    theta, cov = _fit(ia, ib, y, Z, n, l2)
    z = float(norm.ppf(0.5 + confidence / 2.0))
    rating = anchor + theta[:n] / _NAT
    sd = np.sqrt(np.clip(np.diag(cov)[:n], 0.0, None)) / _NAT
    low, high = rating - z * sd, rating + z * sd
    table = pd.DataFrame(
        {
            "rank": rank_from_intervals(low, high),
            "model": models,
            "rating": rating,
            "ci_low": low,
            "ci_high": high,
        },
        columns=list(STYLE_COLUMNS),
    )
    order = sorted(range(n), key=lambda i: (-rating[i], models[i]))
    table = table.iloc[order].reset_index(drop=True).astype({"rank": "int64", "model": "str"})
    coef = np.full(k, np.nan)
    coef_sd = np.full(k, np.nan)
    coef[used] = theta[n:]
    coef_sd[used] = np.sqrt(np.clip(np.diag(cov)[n:], 0.0, None))
    coefficients = pd.DataFrame(
        {
            "coef": coef,
            "ci_low": coef - z * coef_sd,
            "ci_high": coef + z * coef_sd,
            "elo": coef / _NAT,
            "elo_ci_low": (coef - z * coef_sd) / _NAT,
            "elo_ci_high": (coef + z * coef_sd) / _NAT,
            "scale": scale,
        },
        index=pd.Index(list(STYLE_FEATURES), name="feature"),
    )
    return StyleControlled(
        table=table, coefficients=coefficients, n_battles=m, styled_battles=int(styled.sum())
    )


def _objective(theta: np.ndarray, ia, ib, y, Z, n: int, l2: float) -> float:
    d = theta[ia] - theta[ib] + Z @ theta[n:]
    return float((y * log_expit(d) + (1.0 - y) * log_expit(-d)).sum() - 0.5 * l2 * theta @ theta)


def _fit(ia, ib, y, Z, n: int, l2: float, tol: float = 1e-10, max_iter: int = 100):
    """Newton's method with backtracking; returns the parameters (ratings in natural-log units,
    centred, then coefficients) and their Laplace covariance with the ratings' mean held fixed."""
    k = Z.shape[1]
    theta = np.zeros(n + k)
    if n == 0:
        return theta, np.zeros((k, k))
    obj = _objective(theta, ia, ib, y, Z, n, l2)
    for _ in range(max_iter):
        H, g = _newton_system(theta, ia, ib, y, Z, n, l2)
        step = np.linalg.solve(H, g)
        slope = g @ step
        t = 1.0
        for _ in range(60):
            new = _objective(theta + t * step, ia, ib, y, Z, n, l2)
            if new >= obj + 1e-4 * t * slope - 1e-12 * (1.0 + abs(obj)):
                break
            t *= 0.5
        theta = theta + t * step
        obj = new
        if np.max(np.abs(t * step)) < tol:
            break
    else:
        warnings.warn("style-controlled Bradley–Terry fit did not converge", RuntimeWarning, stacklevel=3)
    theta[:n] -= theta[:n].mean()
    H, _ = _newton_system(theta, ia, ib, y, Z, n, l2)
    cov = np.linalg.inv(H)
    C = np.eye(n + k)
    C[:n, :n] -= 1.0 / n
    return theta, C @ cov @ C.T


def _newton_system(theta, ia, ib, y, Z, n: int, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """The negative Hessian (plus ``11'/n`` on the ratings block, which fixes the ratings' offset
    without changing the centred solution) and the gradient of the penalised log-likelihood."""
    k = Z.shape[1]
    d = theta[ia] - theta[ib] + Z @ theta[n:]
    p = expit(d)
    res, w = y - p, p * (1.0 - p)
    grad = np.empty(n + k)
    grad[:n] = np.bincount(ia, res, n) - np.bincount(ib, res, n)
    grad[n:] = Z.T @ res
    grad -= l2 * theta
    pair = np.bincount(ia * n + ib, w, n * n).reshape(n, n)
    pair = pair + pair.T
    H = np.empty((n + k, n + k))
    H[:n, :n] = np.diag(pair.sum(axis=1)) - pair + 1.0 / n
    wz = w[:, None] * Z
    for j in range(k):
        H[:n, n + j] = np.bincount(ia, wz[:, j], n) - np.bincount(ib, wz[:, j], n)
    H[n:, :n] = H[:n, n:].T
    H[n:, n:] = Z.T @ wz
    H[np.arange(n + k), np.arange(n + k)] += l2
    return H, grad
