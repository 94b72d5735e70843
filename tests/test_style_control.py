"""Tests for style control (playground.services.leaderboard.style_control): features, the contextual
Bradley–Terry fit on simulated battles, and its agreement with the plain fit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import log_expit

from playground.services.leaderboard.ratings import DEFAULT_L2, compute_leaderboard, rank_from_intervals
from playground.services.leaderboard.style_control import (
    STYLE_FEATURES,
    answer_style,
    fit_style_control,
    normalized_differences,
    style_matrix,
)

NAT = math.log(10.0) / 400.0

# --------------------------------------------------------------------------- features

MARKDOWN = """# Title
Intro with **bold** and __also bold__ and ** not bold
- item one
  * nested item
+ plus item
1. first
12. twelfth
## Second header
####### seven hashes is no header
#hashtag is no header
```python
# a comment, not a header
- not an item
**not bold**
```
-not an item (no space)"""


def test_answer_style_counts() -> None:
    length, headers, items, bold = answer_style(MARKDOWN)
    assert length == len(MARKDOWN)  # the whole answer, code included
    assert headers == 2
    assert items == 5
    assert bold == 2
    assert answer_style("") == (0, 0, 0, 0)
    assert answer_style("- a first-line item") == (19, 0, 1, 0)
    unclosed = "```\n# an unclosed fence hides the rest\n- x"
    assert answer_style(unclosed) == (len(unclosed), 0, 0, 0)


def test_style_matrix_matches_answer_style() -> None:
    rng = np.random.default_rng(3)
    pieces = [
        "# h",
        "## h2",
        "- item",
        "* item",
        "1. step",
        "**b**",
        "__u__",
        "plain words",
        "```\n# x\n```",
        "  - in",
    ]
    texts = ["\n".join(rng.choice(pieces, int(rng.integers(0, 8)))) for _ in range(5000)] + [MARKDOWN, ""]
    expected = np.array([answer_style(t) for t in texts], dtype=float)
    matrix = style_matrix(texts)
    assert matrix.shape == (len(texts), len(STYLE_FEATURES))
    np.testing.assert_array_equal(matrix, expected)
    assert style_matrix([]).shape == (0, len(STYLE_FEATURES))


def test_normalized_differences() -> None:
    a = np.array([[300.0, 2, 0, 0], [0, 0, 0, 0], [np.nan] * 4])
    b = np.array([[100.0, 0, 0, 4], [0, 0, 0, 0], [1.0, 1, 1, 1]])
    d = normalized_differences(a, b)
    np.testing.assert_allclose(d[0], [0.5, 1.0, 0.0, -1.0])
    np.testing.assert_array_equal(d[1], 0.0)
    assert np.isnan(d[2]).all()
    np.testing.assert_allclose(normalized_differences(b[:2], a[:2]), -d[:2])


# --------------------------------------------------------------------------- simulations


def simulate(
    strength: dict[str, float],
    verbosity: dict[str, float],
    n: int,
    seed: int,
    *,
    length_effect: float,
    tie_rate: float = 0.1,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Random pairs; each answer's length is lognormal around the model's ``verbosity`` and its
    markdown counts are random; P(a wins) = sigmoid(strength gap (Elo → nat) + length_effect *
    normalised length difference). Ties are drawn at ``tie_rate`` and count half, like the model."""
    rng = np.random.default_rng(seed)
    names = np.array(list(strength))
    r = np.array([strength[m] for m in names]) * NAT
    v = np.array([verbosity[m] for m in names])
    a = rng.integers(0, len(names), n)
    b = (a + rng.integers(1, len(names), n)) % len(names)
    style_a = np.column_stack([rng.lognormal(np.log(v[a]), 0.4), rng.poisson(1.0, (n, 3))])
    style_b = np.column_stack([rng.lognormal(np.log(v[b]), 0.4), rng.poisson(1.0, (n, 3))])
    diff = normalized_differences(style_a, style_b)
    p = 1.0 / (1.0 + np.exp(-(r[a] - r[b] + length_effect * diff[:, 0])))
    u = rng.random(n)
    tie = rng.random(n) < tie_rate
    outcome = np.where(tie, "tie", np.where(u < p, "a", "b"))
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "outcome": outcome}), diff


EQUAL = {"verbose": 1000.0, "terse": 1000.0, "mid-1": 1000.0, "mid-2": 1000.0}
VERBOSITY = {"verbose": 1500.0, "terse": 250.0, "mid-1": 600.0, "mid-2": 600.0}


@pytest.fixture(scope="module")
def verbose_wins():
    battles, diff = simulate(EQUAL, VERBOSITY, 8000, seed=1, length_effect=1.5)
    return battles, diff, fit_style_control(battles, diff), compute_leaderboard(battles, bootstrap_rounds=50)


def test_style_control_removes_a_pure_length_advantage(verbose_wins) -> None:
    _battles, _diff, styled, plain = verbose_wins
    p = plain.table.set_index("model")["rating"]
    s = styled.table.set_index("model")
    # the plain fit credits length: a clear gap between equally strong models
    assert p["verbose"] - p["terse"] > 100.0
    assert (
        plain.table.set_index("model").loc["verbose", "ci_low"]
        > plain.table.set_index("model").loc["terse", "ci_high"]
    )
    # with the length difference as a covariate the gap is gone
    assert abs(s.loc["verbose", "rating"] - s.loc["terse", "rating"]) < 25.0
    assert (s["rating"] - 1000.0).abs().max() < 20.0
    assert s["rank"].tolist() == [1, 1, 1, 1]  # no model is distinguishable
    coef = styled.coefficients
    assert coef.loc["length", "coef"] > 0 and coef.loc["length", "ci_low"] > 0
    # the other (random, irrelevant) features get no credit
    for feature in ("headers", "lists", "bold"):
        assert coef.loc[feature, "ci_low"] < 0 < coef.loc[feature, "ci_high"]
    # the true effect is 1.5 per unit of normalised difference; the fit reports per RMS unit
    assert coef.loc["length", "coef"] / coef.loc["length", "scale"] == pytest.approx(1.5, rel=0.15)
    assert styled.n_battles == styled.styled_battles == 8000


def test_no_style_effect_both_rankings_agree() -> None:
    strength = {"best": 1200.0, "good": 1100.0, "fair": 1000.0, "weak": 850.0}
    verbosity = {"best": 300.0, "good": 1200.0, "fair": 600.0, "weak": 900.0}
    battles, diff = simulate(strength, verbosity, 8000, seed=2, length_effect=0.0)
    styled = fit_style_control(battles, diff).table
    plain = compute_leaderboard(battles, bootstrap_rounds=0).table
    order = sorted(strength, key=strength.get, reverse=True)
    assert plain["model"].tolist() == styled["model"].tolist() == order
    merged = styled.set_index("model")["rating"] - plain.set_index("model")["rating"]
    assert merged.abs().max() < 15.0
    coef = fit_style_control(battles, diff).coefficients
    assert (coef["ci_low"] < 0).all() and (coef["ci_high"] > 0).all()


def test_without_style_it_is_the_plain_fit() -> None:
    battles, _ = simulate(EQUAL | {"verbose": 1100.0}, VERBOSITY, 600, seed=4, length_effect=0.0)
    unknown = np.full((len(battles), len(STYLE_FEATURES)), np.nan)
    styled = fit_style_control(battles, unknown)
    plain = compute_leaderboard(battles, bootstrap_rounds=0)
    np.testing.assert_allclose(
        styled.table.set_index("model")["rating"], plain.table.set_index("model")["rating"], atol=1e-6
    )
    assert styled.coefficients["coef"].isna().all() and styled.styled_battles == 0
    # same Laplace intervals as the plain board's (same likelihood, same prior)
    half = (styled.table["ci_high"] - styled.table["ci_low"]) / 2.0 / 1.959963984540054
    np.testing.assert_allclose(half.to_numpy(), plain.laplace_sd[styled.table["model"]].to_numpy(), rtol=1e-6)


def test_swapping_sides_changes_nothing(verbose_wins) -> None:
    battles, diff, styled, _ = verbose_wins
    swapped = battles.rename(columns={"model_a": "model_b", "model_b": "model_a"})
    swapped["outcome"] = swapped["outcome"].replace({"a": "b", "b": "a"})
    again = fit_style_control(swapped[["model_a", "model_b", "outcome"]], -diff)
    pd.testing.assert_frame_equal(styled.table, again.table, atol=1e-6)
    pd.testing.assert_frame_equal(styled.coefficients, again.coefficients, atol=1e-6)


def test_matches_a_brute_force_fit() -> None:
    battles, diff = simulate(EQUAL, VERBOSITY, 300, seed=5, length_effect=1.0)
    styled = fit_style_control(battles, diff)
    models = sorted(EQUAL)
    idx = {m: i for i, m in enumerate(models)}
    a = battles["model_a"].map(idx).to_numpy()
    b = battles["model_b"].map(idx).to_numpy()
    y = battles["outcome"].map({"a": 1.0, "b": 0.0, "tie": 0.5}).to_numpy()
    z = diff / np.sqrt((diff**2).mean(axis=0))

    def negative(theta: np.ndarray) -> float:
        r, beta = theta[: len(models)], theta[len(models) :]
        d = r[a] - r[b] + z @ beta
        return -(y * log_expit(d) + (1 - y) * log_expit(-d)).sum() + 0.5 * DEFAULT_L2 * theta @ theta

    res = minimize(negative, np.zeros(len(models) + 4), method="BFGS", options={"gtol": 1e-9})
    r = res.x[: len(models)]
    expected = pd.Series(1000.0 + (r - r.mean()) / NAT, index=models)
    np.testing.assert_allclose(styled.table.set_index("model")["rating"][models], expected, atol=1e-3)
    np.testing.assert_allclose(styled.coefficients["coef"], res.x[len(models) :], atol=1e-5)


def test_few_battles_honest_intervals_and_rank_rule() -> None:
    battles = pd.DataFrame({"model_a": ["A"], "model_b": ["B"], "outcome": ["a"]})
    styled = fit_style_control(battles, [[0.5, 0.0, 0.0, 0.0]])
    t = styled.table
    assert ((t["ci_high"] - t["ci_low"]) > 100.0).all()
    assert t["rank"].tolist() == rank_from_intervals(t["ci_low"], t["ci_high"]).tolist() == [1, 1]
    assert t["rating"].mean() == pytest.approx(1000.0)
    with pytest.raises(ValueError, match="unknown battle outcome"):
        fit_style_control(battles.assign(outcome="draw"), [[0.0] * 4])
