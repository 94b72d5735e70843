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

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from playground.services.leaderboard.encoding import (
    OUTCOMES,
    Battle,
    encode,
    normalize_battles,
    pairwise_wins,
    win_matrix,
)
from playground.services.leaderboard.fit import (
    ANCHOR,
    DEFAULT_L2,
    DEFAULT_PRIOR_SD,
    ELO_SCALE,
    bootstrap_codes,
    bootstrap_ratings,
    combined_intervals,
    fit_bradley_terry,
    l2_from_prior_sd,
    laplace_sd,
    online_elo,
    online_elo_codes,
    rank_from_intervals,
)
from playground.services.leaderboard.stats import matrices, model_stats, stats_of, win_rate_matrix

DEFAULT_MIN_BATTLES = 30  # fewer battles: provisional; see "Provisional" above

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
    enc = encode(normalize_battles(battles_df))
    n = enc.n
    W = win_matrix(enc)
    rating = fit_bradley_terry(W, l2=l2) if n else np.empty(0)
    sd = laplace_sd(W, rating, l2=l2)
    boot = bootstrap_codes(enc, bootstrap_rounds, seed, l2)
    ci_low, ci_high = combined_intervals(rating, sd, boot, confidence)
    rank = rank_from_intervals(ci_low, ci_high)
    stats = stats_of(enc)
    table = pd.DataFrame(
        {
            "rank": rank,
            "model": enc.models,
            "rating": rating,
            "ci_low": ci_low,
            "ci_high": ci_high,
            "elo": online_elo_codes(enc, elo_k, ANCHOR, ELO_SCALE),
            **{c: stats[c].to_numpy() for c in _STATS_COLUMNS},
            "provisional": stats["battles"].to_numpy() < min_battles,
        },
        columns=list(LEADERBOARD_COLUMNS),
    )
    order = sorted(range(n), key=lambda i: (-rating[i], enc.models[i]))
    table = table.iloc[order].reset_index(drop=True).astype(_DTYPES) if n else empty_table()
    win_rate, counts = matrices(enc, W, order)
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


__all__ = [
    "ANCHOR",
    "DEFAULT_L2",
    "DEFAULT_MIN_BATTLES",
    "DEFAULT_PRIOR_SD",
    "ELO_SCALE",
    "LEADERBOARD_COLUMNS",
    "OUTCOMES",
    "Battle",
    "Leaderboard",
    "bootstrap_ratings",
    "compute_leaderboard",
    "empty_table",
    "fit_bradley_terry",
    "l2_from_prior_sd",
    "laplace_sd",
    "model_stats",
    "normalize_battles",
    "online_elo",
    "pairwise_wins",
    "rank_from_intervals",
    "win_rate_matrix",
]
