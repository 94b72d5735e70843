"""The Leaderboard tab's LLM-judge section: the judge's ranking beside the human one (from judge
verdicts only, never from votes) and its agreement with people (% and Cohen's κ)."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from playground.container import Services
from playground.services.leaderboard.judge_board import JudgeBoardResult
from playground.ui.access import Guard
from playground.ui.common import user_errors

HEADERS = ["Rank", "Model", "Rating", "95% CI", "Verdicts", "Wins", "Ties", "Win rate"]
ALL = "all judges"


def judge_table(result: JudgeBoardResult) -> pd.DataFrame:
    rows = [
        [
            int(r.rank),
            r.display_name if r.display_name == r.model else f"{r.display_name} ({r.model})",
            f"{r.rating:.0f}",
            f"{r.ci_low:.0f} – {r.ci_high:.0f}",
            int(r.battles),
            int(r.wins),
            int(r.ties),
            f"{r.win_rate:.1%}",
        ]
        for r in result.table.itertuples()
    ]
    return pd.DataFrame(rows, columns=HEADERS)


def judge_summary(result: JudgeBoardResult) -> str:
    if not result.verdicts:
        return (
            "No judge verdicts yet: judge a notebook version (Notebook tab, ⚖ Judge) to rank its models here."
        )
    a = result.agreement
    agreement = (
        f"where a person also compared the same two answers (their 1–5 scores, else 👍/👎), {a.pairs} pairs: "
        f"agreed on {a.agreed} ({a.share:.0%}), Cohen's κ = " + ("–" if a.kappa is None else f"{a.kappa:.2f}")
        if a.pairs
        else "no answer pair was also compared by a person yet (rate both answers of a judged row)"
    )
    return (
        f"LLM judge ({', '.join(result.judges)}): {result.verdicts} pairwise verdicts, each judged in both orders "
        f"(a different winner per order is a tie). Judge verdicts never count in the human ranking above. Agreement: "
        f"{agreement}."
    )


def build_judge_board(services: Services, refresh_on: list) -> None:
    with gr.Column(elem_id="lb-judge-board"):
        gr.Markdown("### LLM judge ranking")
        with gr.Row():
            judge = gr.Dropdown([ALL], value=ALL, label="Judge", elem_id="lb-judge", scale=1)
            gr.HTML("", padding=False, scale=3)
        summary = gr.Markdown("", elem_id="lb-judge-summary")
        table = gr.Dataframe(pd.DataFrame(columns=HEADERS), interactive=False, elem_id="lb-judge-table")

    @user_errors
    def refresh(chosen: str):
        result = services.judge_board.compute(None if chosen in (None, ALL) else chosen)
        judges = services.judge_board.judges()
        return judge_summary(result), judge_table(result), gr.update(choices=[ALL, *judges])

    gr.on(
        [*refresh_on, judge.input],
        Guard(services).anyone(refresh),  # the judge's board, like the leaderboard, is public
        [judge],
        [summary, table, judge],
        api_visibility="private",
    )
