"""How a notebook grid looks on the page: the table of rows × models, the progress line, a row's
detail. Pure functions of a ``GridUpdate`` (no events here)."""

from __future__ import annotations

import html

import pandas as pd

from playground.services.notebook.grid import Cell, GridUpdate
from playground.services.notebook.prompts import PromptRow

MAX_SHOWN_CHARS = 1200


def differs(grid: GridUpdate, row: int) -> bool:
    """Whether the finished answers of a row are not all the same text (models and samples)."""
    texts = {c.text.strip() for c in grid.cells if c.row == row and c.status in ("done", "cached", "stopped")}
    return len(texts) > 1


def cell_text(cells: list[Cell], marks: dict[int, str]) -> str:
    parts = []
    for cell in cells:
        head = f"[sample {cell.sample + 1}] " if len(cells) > 1 else ""
        if cell.status == "pending":
            parts.append(f"{head}…")
            continue
        if cell.status == "not run":
            parts.append(f"{head}(not run)")
            continue
        if cell.status == "error":
            parts.append(f"{head}⚠️ {cell.error}")
            continue
        text = cell.text if len(cell.text) <= MAX_SHOWN_CHARS else cell.text[:MAX_SHOWN_CHARS] + " …"
        stats = cell.stats or {}
        bits = []
        if stats.get("completion_tokens") is not None:
            bits.append(f"{stats['completion_tokens']} tok")
        if stats.get("ttft_s") is not None:  # the cell's own row: its first token, then its decoding
            bits.append(f"TTFT {stats['ttft_s']:.2f} s")
        if stats.get("total_s"):
            bits.append(f"{stats['total_s']:.1f} s")
        if cell.status == "running":
            bits.append("running")
        else:
            bits.append(cell.finish_reason or cell.status)
        if cell.status == "cached":
            bits.append("cached")
        if cell.turn_id in marks:
            bits.append(marks[cell.turn_id])
        parts.append(f"{head}{text}\n— {' · '.join(bits)}")
    return "\n\n".join(parts)


def grid_frame(
    grid: GridUpdate | None,
    labels: dict[str, str],
    only_differing: bool = False,
    marks: dict[int, str] | None = None,
) -> pd.DataFrame:
    """Rows × models, first the row number and the user message."""
    if grid is None:
        return pd.DataFrame({"#": [], "prompt": []})
    marks = marks or {}
    columns = ["#", "prompt", *[labels.get(p, p) for p in grid.presets]]
    data = []
    for row in grid.rows:
        if only_differing and not differs(grid, row.index):
            continue
        line = [str(row.index + 1), row.user]
        for m in range(len(grid.presets)):
            line.append(cell_text([grid.cell(row.index, m, k) for k in range(grid.samples)], marks))
        data.append(line)
    return pd.DataFrame(data, columns=_unique(columns))


def _unique(columns: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in columns:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


# the progress bar's parts, in order: (count, css class, words)
_PARTS = (
    ("done", "nb-done", "done"),
    ("cached", "nb-done", "from earlier runs"),
    ("running", "nb-running", "running"),
    ("pending", "", "waiting"),
    ("stopped", "nb-stopped", "stopped"),
    ("error", "nb-failed", "failed"),
    ("not run", "nb-not-run", "not run"),
)


def progress_html(grid: GridUpdate | None, message: str = "") -> str:
    """A bar in parts (done, running, stopped, failed, not run) and a line that counts each, with
    the tokens generated so far, the measured speed and an ETA from it."""
    if grid is None:
        return f"<div id='notebook-progress-text'>{html.escape(message)}</div>"
    total, counts = max(len(grid.cells), 1), grid.counts
    ok = counts["done"] + counts["cached"]
    parts = "".join(
        f"<span class='{css}' style='width:{100 * counts[key] / total:.2f}%'></span>"
        for key, css, _ in _PARTS
        if counts[key] and css
    )
    bits = [f"{ok} / {len(grid.cells)} cells"]
    bits += [f"{counts[key]} {words}" for key, _, words in _PARTS if key != "done" and counts[key]]
    if grid.tokens:
        speed = f" · {grid.tokens_per_s:.1f} tok/s" if grid.tokens_per_s else ""
        bits.append(f"{grid.tokens:,} tokens{speed}")
    if grid.finished:
        bits.append(f"{'stopped' if grid.stopped else 'finished'} after {grid.elapsed_s:.1f} s")
    else:
        if grid.phase:
            bits.append(grid.phase)
        if grid.eta_s is not None:
            bits.append(f"about {grid.eta_s:.0f} s left")
    if message:
        bits.append(message)
    return (
        f"<div id='notebook-progress-bar' class='nb-bar' role='progressbar' aria-valuemin='0' "
        f"aria-valuemax='{len(grid.cells)}' aria-valuenow='{ok}'>{parts}</div>"
        f"<div id='notebook-progress-text'>{html.escape(' · '.join(bits))}</div>"
    )


def feedback_mark(value: int | None, score: int | None) -> str:
    """A cell's rating as shown in the grid: 👍/👎 and ★score."""
    thumb = "👍" if value and value > 0 else "👎" if value and value < 0 else ""
    return " ".join(x for x in (thumb, f"★{score}" if score else "") if x)


def row_detail(grid: GridUpdate, row: PromptRow, labels: dict[str, str]) -> str:
    """Markdown: the row's variables, and per model the exact prompt it received and its answers."""
    lines = [f"### Row {row.index + 1}"]
    if row.variables:
        lines.append(" · ".join(f"**{k}**: {html.escape(v)}" for k, v in row.variables.items()))
    for m, preset in enumerate(grid.presets):
        cells = [grid.cell(row.index, m, k) for k in range(grid.samples)]
        lines.append(f"#### {labels.get(preset, preset)}")
        lines.append(
            "Exact prompt:\n\n```text\n"
            + (cells[0].prompt or "(not rendered)").replace("```", "ˋˋˋ")
            + "\n```"
        )
        for cell in cells:
            head = f"Sample {cell.sample + 1}" if grid.samples > 1 else "Answer"
            body = f"⚠️ {cell.error}" if cell.error else html.escape(cell.text or f"({cell.status})")
            stats = cell.stats or {}
            facts = f"seed {cell.seed} · {stats.get('completion_tokens', 0)} tokens · {cell.finish_reason or cell.status}"
            lines.append(f"**{head}** <small>({facts})</small>\n\n{body}")
    return "\n\n".join(lines)
