"""The Leaderboard tab: Bradley–Terry ratings from the stored votes, with filters and two plots."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from playground.services.container import Services
from playground.services.leaderboard import LeaderboardFilters, LeaderboardResult
from playground.ui.common import user_errors

HEADERS = [
    "Rank",
    "Model",
    "Rating",
    "95% CI",
    "Online Elo",
    "Battles",
    "Win rate",
    "Ties",
    "Both bad",
    "Avg chars",
    "Median TTFT",
    "Median tok/s",
    "👍 rate",
    "Mean score",
]

WIDTHS = ["4%", "21%", "6%", "9%", "6%", "6%", "6%", "5%", "7%", "6%", "7%", "6%", "6%", "5%"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _num(value: float, fmt: str) -> str:
    return "–" if pd.isna(value) else format(value, fmt)


def display_table(result: LeaderboardResult) -> pd.DataFrame:
    rows = [
        [
            int(r.rank),
            r.display_name if r.display_name == r.model else f"{r.display_name} ({r.model})",
            _num(r.rating, ".0f"),
            f"{_num(r.ci_low, '.0f')} – {_num(r.ci_high, '.0f')}",
            _num(r.elo, ".0f"),
            int(r.battles),
            _num(r.win_rate, ".1%"),
            int(r.ties),
            f"{int(r.both_bad)} ({_num(r.both_bad_rate, '.0%')})",
            _num(r.avg_answer_chars, ".0f"),
            "–" if pd.isna(r.median_ttft_s) else f"{r.median_ttft_s * 1000:.0f} ms",
            _num(r.median_tokens_per_s, ".1f"),
            "–" if pd.isna(r.like_rate) else f"{r.like_rate:.0%} of {int(r.ratings)}",
            "–" if pd.isna(r.mean_score) else f"{r.mean_score:.2f} ({int(r.scores)})",
        ]
        for r in result.table.itertuples()
    ]
    return pd.DataFrame(rows, columns=HEADERS)


def summary_line(result: LeaderboardResult) -> str:
    f = result.filters
    counted = ["anonymous arena votes"] + (["named side-by-side votes"] if f.include_compare else [])
    leaked = "included" if f.include_leaked else "left out"
    if result.table.empty:
        return f"No battles yet in {' and '.join(counted)} (identity-leaked votes {leaked})."
    rounds = result.board.bootstrap_rounds
    return (
        f"{_plural(len(result.table), 'model')} · {_plural(result.battles, 'battle')} from "
        f"{_plural(result.votes, 'vote')} "
        f"({' and '.join(counted)}; identity-leaked votes {leaked}) · 95% CI from {rounds} bootstrap rounds · "
        "rank = 1 + models whose CI lies entirely above."
    )


def build_leaderboard_tab(services: Services, refresh_on: list) -> None:
    """``refresh_on``: extra triggers (e.g. the tab's ``select``, a vote counter's ``change``)."""
    with gr.Row():
        include_compare = gr.Checkbox(
            False, label="Include named side-by-side votes (Compare tab)", elem_id="lb-include-compare"
        )
        include_leaked = gr.Checkbox(
            False, label="Include votes where an answer named its model", elem_id="lb-include-leaked"
        )
        since = gr.DateTime(None, include_time=False, type="string", label="From (UTC)", elem_id="lb-since")
        until = gr.DateTime(None, include_time=False, type="string", label="To (UTC)", elem_id="lb-until")
        refresh_btn = gr.Button("🔄 Refresh", size="sm", scale=0, elem_id="lb-refresh")
    summary = gr.Markdown("", elem_id="lb-summary")
    table = gr.Dataframe(
        pd.DataFrame(columns=HEADERS),
        interactive=False,
        wrap=True,
        column_widths=WIDTHS,
        elem_id="lb-table",
        show_search="none",
    )
    with gr.Row():
        ratings_plot = gr.Plot(label="Ratings", elem_id="lb-ratings")
        heatmap = gr.Plot(label="Win rates", elem_id="lb-winrates")

    @user_errors
    def refresh(with_compare: bool, with_leaked: bool, start, end):
        filters = LeaderboardFilters.parse(with_compare, with_leaked, start, end)
        result = services.leaderboard.compute(filters)
        return summary_line(result), display_table(result), result.ratings_figure(), result.win_rate_figure()

    gr.on(
        [
            *refresh_on,
            refresh_btn.click,
            include_compare.change,
            include_leaked.change,
            since.change,
            until.change,
        ],
        refresh,
        [include_compare, include_leaked, since, until],
        [summary, table, ratings_plot, heatmap],
        api_visibility="private",
    )
