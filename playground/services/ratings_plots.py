"""Plotly figures for the arena leaderboard (see :mod:`playground.services.ratings`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

_EMPTY_TEXT = "No battles yet"


def _empty_figure(title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        title=title,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {"text": _EMPTY_TEXT, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5, "showarrow": False}
        ],
    )
    return fig


def win_rate_heatmap(
    win_rate: pd.DataFrame,
    battle_counts: pd.DataFrame | None = None,
    *,
    title: str = "Win rate (row vs column)",
) -> go.Figure:
    """Heatmap of a win-rate matrix (rows = model, columns = opponent, values in [0, 1]).

    Cells show the percentage; hover also shows the battle count when ``battle_counts``
    (same shape) is given. Pairs that never met are blank.
    """
    if win_rate.empty:
        return _empty_figure(title)
    z = win_rate.to_numpy(dtype=np.float64)
    text = np.where(np.isnan(z), "", np.char.mod("%.0f%%", np.nan_to_num(z) * 100.0))
    if battle_counts is not None:
        customdata = battle_counts.reindex(index=win_rate.index, columns=win_rate.columns).to_numpy()
        hover = "%{y} vs %{x}<br>win rate %{z:.1%}<br>%{customdata} battles<extra></extra>"
    else:
        customdata = None
        hover = "%{y} vs %{x}<br>win rate %{z:.1%}<extra></extra>"
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(c) for c in win_rate.columns],
            y=[str(i) for i in win_rate.index],
            text=text,
            texttemplate="%{text}",
            customdata=customdata,
            hovertemplate=hover,
            colorscale="RdBu",
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": "win rate", "tickformat": ".0%"},
        )
    )
    fig.update_layout(
        title=title,
        xaxis={"title": "opponent", "side": "top"},
        yaxis={"title": "model", "autorange": "reversed"},
    )
    return fig


def ratings_chart(table: pd.DataFrame, *, title: str = "Bradley–Terry rating (95% CI)") -> go.Figure:
    """Ratings with asymmetric bootstrap error bars, sorted by rating (highest first).

    ``table`` needs ``model, rating, ci_low, ci_high`` (a leaderboard table). NaN intervals
    (no bootstrap) are drawn without bars.
    """
    if table.empty:
        return _empty_figure(title)
    t = table.sort_values(["rating", "model"], ascending=[False, True], kind="stable")
    rating = t["rating"].to_numpy(dtype=np.float64)
    upper = np.nan_to_num(t["ci_high"].to_numpy(dtype=np.float64) - rating)
    lower = np.nan_to_num(rating - t["ci_low"].to_numpy(dtype=np.float64))
    fig = go.Figure(
        go.Scatter(
            x=t["model"].astype(str).tolist(),
            y=rating,
            mode="markers",
            marker={"size": 9},
            error_y={"type": "data", "symmetric": False, "array": upper, "arrayminus": lower},
            customdata=np.stack([t["ci_low"].to_numpy(), t["ci_high"].to_numpy()], axis=1),
            hovertemplate="%{x}<br>rating %{y:.0f}<br>95% CI %{customdata[0]:.0f} – %{customdata[1]:.0f}"
            "<extra></extra>",
        )
    )
    fig.update_layout(title=title, xaxis={"title": "model"}, yaxis={"title": "rating"})
    return fig
