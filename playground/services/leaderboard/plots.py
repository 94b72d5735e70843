"""Plotly figures for the arena leaderboard (see :mod:`playground.services.leaderboard.ratings`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

_EMPTY_TEXT = "No battles yet"
_GRID = "rgba(128, 128, 128, 0.25)"  # visible on a light and a dark page alike


def _themed(fig: go.Figure) -> go.Figure:
    """Transparent backgrounds and neutral grid lines, so a figure sits on the page's own light or
    dark background (the page's CSS colours its titles and labels in the dark theme)."""
    fig.update_layout(
        template="plotly_white",
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": "#4b5563"},
        # centred: the block's label sits over the top-left corner
        title={"x": 0.5, "xanchor": "center", "y": 0.98, "yanchor": "top"},
        margin={"t": 56, "l": 8, "r": 8, "b": 8},
    )
    fig.update_xaxes(gridcolor=_GRID, zerolinecolor=_GRID, automargin=True)
    fig.update_yaxes(gridcolor=_GRID, zerolinecolor=_GRID, automargin=True)
    return fig


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
    return _themed(fig)


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
        # the opponents' names under the matrix, slanted: at the top they ran into the title
        xaxis={"title": "opponent", "side": "bottom", "tickangle": -30},
        yaxis={"title": "model", "autorange": "reversed"},
    )
    return _themed(fig)


def ratings_chart(
    table: pd.DataFrame, *, title: str = "Bradley–Terry rating (95% CI)", style: bool = False
) -> go.Figure:
    """Ratings with asymmetric error bars, sorted by rating (highest first).

    ``table`` needs ``model, rating, ci_low, ci_high`` (a leaderboard table). NaN intervals are
    drawn without bars. Provisional models (a ``provisional`` column, if any) get open markers.
    With ``style``, the style-controlled ratings (``sc_rating, sc_ci_low, sc_ci_high``) are drawn
    next to each model's rating as a second series.
    """
    if table.empty:
        return _empty_figure(title)
    t = table.sort_values(["rating", "model"], ascending=[False, True], kind="stable")
    models = t["model"].astype(str).tolist()
    provisional = t["provisional"].to_numpy(dtype=bool) if "provisional" in t else np.zeros(len(t), bool)
    series = [("rating", "ci_low", "ci_high", "rating", "circle")]
    if style:
        series.append(("sc_rating", "sc_ci_low", "sc_ci_high", "style-controlled", "diamond"))
    fig = go.Figure()
    for value, low, high, name, symbol in series:
        rating = t[value].to_numpy(dtype=np.float64)
        ci_low, ci_high = t[low].to_numpy(dtype=np.float64), t[high].to_numpy(dtype=np.float64)
        note = np.where(provisional, " (provisional)", "")
        fig.add_trace(
            go.Scatter(
                x=models,
                y=rating,
                name=name,
                mode="markers",
                marker={"size": 9, "symbol": [f"{symbol}-open" if p else symbol for p in provisional]},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": np.nan_to_num(ci_high - rating),
                    "arrayminus": np.nan_to_num(rating - ci_low),
                },
                customdata=[[lo, hi, text] for lo, hi, text in zip(ci_low, ci_high, note, strict=True)],
                hovertemplate=f"%{{x}}%{{customdata[2]}}<br>{name} %{{y:.0f}}<br>95% CI %{{customdata[0]:.0f}} – "
                "%{customdata[1]:.0f}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title,
        xaxis={"title": "model"},
        yaxis={"title": "rating"},
        showlegend=style,
        scattermode="group" if style else None,
        xaxis_tickangle=-30,
    )
    return _themed(fig)
