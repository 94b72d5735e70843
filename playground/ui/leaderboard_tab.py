"""The Leaderboard tab: Bradley–Terry ratings from the stored votes, with filters and two plots.

Models with few battles are marked provisional; the "Style control" checkbox adds the
style-controlled ranking (ratings with answer length and markdown factored out) next to the usual
one, in the table and in the ratings plot.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from playground.container import Services
from playground.services.leaderboard.service import LeaderboardFilters, LeaderboardResult
from playground.ui.access import Guard
from playground.ui.common import inline_errors
from playground.ui.leaderboard_judge import build_judge_board

PROVISIONAL = "⚠ provisional"

# (header, width, width with style control) of the table's columns
COLUMNS = [
    ("Rank", "4%", "4%"),
    ("Model", "19%", "14%"),
    ("Rating", "6%", "5%"),
    ("95% CI", "8%", "8%"),
    ("Online Elo", "6%", "5%"),
    ("Battles", "6%", "5%"),
    ("Win rate", "6%", "5%"),
    ("Ties", "5%", "4%"),
    ("Both bad", "7%", "6%"),
    ("Avg chars", "6%", "5%"),
    ("Median TTFT", "7%", "6%"),
    ("Median tok/s", "6%", "5%"),
    ("👍 rate", "7%", "5%"),
    ("Mean score", "7%", "5%"),
]
# with style control, after the 95% CI: the style-controlled (SC) ranking
STYLE_COLUMNS = [("Rank (SC)", "5%"), ("Rating (SC)", "5%"), ("95% CI (SC)", "8%")]
HEADERS = [header for header, _, _ in COLUMNS]
WIDTHS = [width for _, width, _ in COLUMNS]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _num(value: float, fmt: str) -> str:
    return "–" if pd.isna(value) else format(value, fmt)


def headers(style: bool) -> list[str]:
    return HEADERS[:4] + [h for h, _ in STYLE_COLUMNS] + HEADERS[4:] if style else list(HEADERS)


def widths(style: bool) -> list[str]:
    if not style:
        return list(WIDTHS)
    narrow = [width for _, _, width in COLUMNS]
    return narrow[:4] + [width for _, width in STYLE_COLUMNS] + narrow[4:]


def display_table(result: LeaderboardResult, style: bool = False) -> pd.DataFrame:
    """The table as shown; with ``style`` (and a style-controlled fit) three more columns after
    the rating's: rank, rating and 95% CI with style controlled."""
    style = style and result.style is not None
    rows = []
    for r in result.table.itertuples():
        name = r.display_name if r.display_name == r.model else f"{r.display_name} ({r.model})"
        row = [
            int(r.rank),
            f"{name} {PROVISIONAL}" if r.provisional else name,
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
        if style:
            row[4:4] = [
                "–" if pd.isna(r.sc_rank) else int(r.sc_rank),
                _num(r.sc_rating, ".0f"),
                f"{_num(r.sc_ci_low, '.0f')} – {_num(r.sc_ci_high, '.0f')}",
            ]
        rows.append(row)
    return pd.DataFrame(rows, columns=headers(style))


def summary_line(result: LeaderboardResult, style: bool = False) -> str:
    f = result.filters
    counted = ["anonymous arena votes"] + (["named side-by-side votes"] if f.include_compare else [])
    leaked = "included" if f.include_leaked else "left out"
    if result.table.empty:
        return f"No battles yet in {' and '.join(counted)} (identity-leaked votes {leaked})."
    rounds = result.board.bootstrap_rounds
    line = (
        f"{_plural(len(result.table), 'model')} · {_plural(result.battles, 'battle')} from "
        f"{_plural(result.votes, 'vote')} "
        f"({' and '.join(counted)}; identity-leaked votes {leaked}) · 95% CI: the wider of {rounds} "
        "bootstrap rounds and the Laplace interval · rank = 1 + models whose CI lies entirely above · "
        f"{PROVISIONAL}: fewer than {result.board.min_battles} battles, the rating still leans on the prior."
    )
    if style:
        line += "\n\n" + style_line(result)
    return line


def style_line(result: LeaderboardResult) -> str:
    """What style control did: the battles it could use and the style coefficients."""
    sc = result.style
    if sc is None:
        return "Style control: no counted battle has both answers stored."
    effects = ", ".join(
        f"{feature} {row.elo:+.0f} ({row.elo_ci_low:+.0f} … {row.elo_ci_high:+.0f})"
        for feature, row in sc.coefficients.iterrows()
        if not pd.isna(row.coef)
    )
    return (
        f"Style control (SC): {sc.styled_battles} of {sc.n_battles} battles have both answers stored. "
        "Style-controlled ratings factor out the answers' length and markdown (headers, list items, "
        "bold); the effect of a typical (RMS) style difference, in Elo points (95% CI): "
        f"{effects or 'none'}."
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
        style_control = gr.Checkbox(
            False,
            label="Style control",
            info="also rank with answer length and markdown factored out",
            visible=getattr(services.leaderboard, "style_control", True),
            elem_id="lb-style-control",
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

    @inline_errors(summary)
    def refresh(with_compare: bool, with_leaked: bool, with_style: bool, start, end):
        filters = LeaderboardFilters.parse(with_compare, with_leaked, start, end)
        result = services.leaderboard.compute(filters, style_control=bool(with_style))
        shown = bool(with_style) and result.style is not None
        return (
            summary_line(result, style=bool(with_style)),
            gr.Dataframe(display_table(result, style=shown), column_widths=widths(shown)),
            result.ratings_figure(style=shown),
            result.win_rate_figure(),
        )

    gr.on(
        [
            *refresh_on,
            refresh_btn.click,
            include_compare.change,
            include_leaked.change,
            style_control.change,
            since.change,
            until.change,
        ],
        Guard(services).anyone(refresh),
        [include_compare, include_leaked, style_control, since, until],
        [summary, table, ratings_plot, heatmap],
        api_visibility="private",
    )
    build_judge_board(services, [*refresh_on, refresh_btn.click])
