"""How a saved notebook's evaluation looks on the page: pass rates, the per-check breakdown, check marks
in the grid, the judge's verdicts, run diffs, word diffs and collapsed samples. Pure functions of the
services' results (no events here)."""

from __future__ import annotations

import html
from dataclasses import replace

import pandas as pd

from playground.services.notebook.diff import RunDiff, collapse_samples
from playground.services.notebook.grid import GridUpdate
from playground.services.notebook.scoring import GridScores


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def pass_rate_frame(scores: GridScores | None, labels: dict[str, str]) -> pd.DataFrame:
    """Per model: cells that passed, the pass rate with its 95% Wilson interval, the mean score."""
    columns = ["model", "passed", "pass rate", "95% CI (Wilson)", "mean score"]
    if scores is None or not scores.labels:
        return pd.DataFrame(columns=columns)
    rows = []
    for preset, rate, mean in zip(scores.presets, scores.models, scores.scores, strict=True):
        low, high = rate.interval
        rows.append(
            [
                labels.get(preset, preset),
                f"{rate.passed} / {rate.n}",
                _pct(rate.rate),
                f"{low:.0%} – {high:.0%}",
                _pct(mean),
            ]
        )
    return pd.DataFrame(rows, columns=columns)


def by_check_frame(scores: GridScores | None, labels: dict[str, str]) -> pd.DataFrame:
    """Per check, each model's passes: ``k / n (rate)``."""
    if scores is None or not scores.labels:
        return pd.DataFrame(columns=["check"])
    names = [labels.get(p, p) for p in scores.presets]
    rows = [
        [label, *[f"{r.passed} / {r.n} ({_pct(r.rate)})" if r.n else "–" for r in rates]]
        for label, rates in zip(scores.labels, scores.by_check, strict=True)
    ]
    return pd.DataFrame(rows, columns=["check", *_unique(names)])


def _unique(names: list[str]) -> list[str]:
    return [name if names.index(name) == k else f"{name} ({k + 1})" for k, name in enumerate(names)]


def check_marks(grid: GridUpdate, scores: GridScores | None) -> dict[int, str]:
    """The grid's marks by turn id: ✅/❌ and the cell's score where checks apply."""
    if scores is None:
        return {}
    marks = {}
    for cell in grid.cells:
        verdict = scores.cells.get((cell.row, cell.model, cell.sample))
        if verdict is not None and cell.turn_id is not None:
            marks[cell.turn_id] = f"{'✅ pass' if verdict.passed else '❌ fail'} {verdict.score:.2f}"
    return marks


def failures_only(grid: GridUpdate, scores: GridScores | None) -> GridUpdate:
    """The grid with only the rows where a cell failed its checks (the cells stay addressable)."""
    failed = scores.failed_rows() if scores is not None else set()
    return replace(grid, rows=[r for r in grid.rows if r.index in failed])


def judge_markdown(verdicts: list[dict], labels: dict[str, str]) -> str:
    """The judge's verdicts: per model wins / ties / losses (pairwise) or the mean score (rubric), and each verdict."""
    if not verdicts:
        return "No judge verdicts for this version yet."
    name = lambda p: labels.get(p, p)  # noqa: E731
    blocks = []
    for kind in ("pairwise", "rubric"):
        mine = [v for v in verdicts if v["kind"] == kind]
        if not mine:
            continue
        judge = mine[0]
        blocks.append(
            f"**{kind.title()} judge:** {name(judge['judge_preset'])} · `{judge['judge_model_id']}` "
            f"@ `{judge['judge_revision'][:24]}`"
        )
        if kind == "pairwise":
            tally: dict[str, list[int]] = {}
            for v in mine:
                a, b = tally.setdefault(v["model_a"], [0, 0, 0]), tally.setdefault(v["model_b"], [0, 0, 0])
                if v["outcome"] == "tie":
                    a[1], b[1] = a[1] + 1, b[1] + 1
                else:
                    winner, loser = (a, b) if v["outcome"] == "a" else (b, a)
                    winner[0], loser[2] = winner[0] + 1, loser[2] + 1
            blocks.append(
                " · ".join(f"{name(p)}: {w} won, {t} tied, {lost} lost" for p, (w, t, lost) in tally.items())
            )
            items = []
            for v in mine:
                choices = "/".join(str(c.get("choice")) for c in v["calls"])
                shown = {"a": name(v["model_a"]), "b": name(v["model_b"]), "tie": "tie"}[v["outcome"]]
                items.append(
                    f"- row {v['row'] + 1}: {name(v['model_a'])} vs {name(v['model_b'])} → **{shown}** "
                    f"(each order's choice: {choices})"
                )
            blocks.append("\n".join(items))
        else:
            by_model: dict[str, list[int]] = {}
            for v in mine:
                if v["score"] is not None:
                    by_model.setdefault(v["model_a"], []).append(v["score"])
            means = [f"{name(p)}: mean {sum(s) / len(s):.2f} ({len(s)} scored)" for p, s in by_model.items()]
            blocks.append(" · ".join(means) or "no scores given")
            blocks.append(
                "\n".join(
                    f"- row {v['row'] + 1}, {name(v['model_a'])}: **{v['score'] or '?'}** — "
                    f"{html.escape(v['rationale'][:160])}"
                    for v in mine
                )
            )
    return "\n\n".join(blocks)


def word_diff_html(pieces: list[tuple[str, str]]) -> str:
    out = []
    for op, text in pieces:
        text = html.escape(text)
        out.append(text if op == "=" else f"<del>{text}</del>" if op == "-" else f"<ins>{text}</ins>")
    return "<div class='nb-word-diff' style='white-space: pre-wrap'>" + "".join(out) + "</div>"


def run_diff_html(diff: RunDiff, labels: dict[str, str]) -> str:
    name = lambda p: html.escape(labels.get(p, p))  # noqa: E731
    parts = [
        f"<h4>Version {diff.version_a} → version {diff.version_b}</h4>",
        f"<p>{diff.compared} cells in both · {len(diff.changed)} changed text · {len(diff.flips)} check flips"
        + (
            f" · {diff.only_a} only in {diff.version_a}, {diff.only_b} only in {diff.version_b}"
            if diff.only_a or diff.only_b
            else ""
        )
        + "</p>",
        "<table class='nb-diff-models'><tr><th>model</th><th>pass rate</th><th>mean score</th></tr>",
    ]
    for m in diff.models:
        parts.append(
            f"<tr><td>{name(m.preset)}</td><td>{_pct(m.pass_rate_before)} → {_pct(m.pass_rate_after)}</td>"
            f"<td>{_pct(m.score_before)} → {_pct(m.score_after)}</td></tr>"
        )
    parts.append("</table>")
    if diff.flips:
        parts.append("<h5>Checks that flipped</h5><ul>")
        for f in diff.flips:
            arrow = "pass → fail" if f.before else "fail → pass"
            parts.append(
                f"<li class='nb-flip'>row {f.row + 1} · {name(f.preset)} · {html.escape(f.check)}: <b>{arrow}</b></li>"
            )
        parts.append("</ul>")
    for change in diff.changed:
        head = f"row {change.row + 1} · {name(change.preset)}" + (
            f" · sample {change.sample + 1}" if change.sample else ""
        )
        parts.append(f"<h5>{head}</h5>" + word_diff_html(change.as_json()["diff"]))
    return "<div id='nb-diff-body'>" + "".join(parts) + "</div>"


def samples_markdown(grid: GridUpdate, row: int, labels: dict[str, str]) -> str:
    """Per model, a row's samples with identical answers collapsed, and how often they agree."""
    if grid.samples < 2:
        return ""
    lines = [f"**Samples of row {row + 1}**"]
    for m, preset in enumerate(grid.presets):
        texts = [
            grid.cell(row, m, k).text
            for k in range(grid.samples)
            if grid.cell(row, m, k).status in ("done", "cached")
        ]
        if not texts:
            continue
        groups, agree = collapse_samples(texts)
        lines.append(
            f"- {labels.get(preset, preset)}: {len(groups)} distinct of {len(texts)} · samples agree {agree:.0%}"
        )
        lines += [f"  - ×{g.count}: {html.escape(g.text[:200])}" for g in groups]
    return "\n".join(lines)


def answer_choices(
    grid: GridUpdate, versions: list[int], current: int, labels: dict[str, str]
) -> list[tuple[str, str]]:
    """Answers to pick for a word diff: every model and sample of the current version, and each model's
    first sample in the other versions (one model across runs)."""
    choices = []
    for version in [current, *[v for v in versions if v != current]]:
        for preset in grid.presets:
            for k in range(grid.samples if version == current else 1):
                sample = f" · sample {k + 1}" if grid.samples > 1 and version == current else ""
                choices.append(
                    (f"{labels.get(preset, preset)} · v{version}{sample}", f"{version}|{preset}|{k}")
                )
    return choices
