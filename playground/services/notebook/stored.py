"""A stored grid run read back as a grid (a reloaded page shows its last grid again). No Gradio.

What is stored of a run: its conversation (mode ``notebook``, the presets in order) and a
``notebook_cells`` row per cell that ran or was served from an earlier run, each with its turn (the
messages, the answer, its stats). A cell with no row never ran; a row none of whose cells ran is
not known any more and shows as "(not stored)".
"""

from __future__ import annotations

from playground.engine.models.templates import parse_messages
from playground.services.notebook.grid import Cell, GridUpdate
from playground.services.notebook.prompts import PromptRow
from playground.store.models import Conversation, NotebookCell, Turn

_STATUS = {"stopped": "stopped", "error": "error"}  # any other finish reason: done


def stored_grid(conversation: Conversation, stored: list[tuple[NotebookCell, Turn]]) -> GridUpdate:
    presets = list(conversation.models)
    samples = max((cell.sample_index for cell, _ in stored), default=0) + 1
    rows: dict[int, PromptRow] = {}
    found: dict[tuple[int, int, int], Cell] = {}
    for cell, turn in stored:
        if cell.row_index not in rows:
            messages = parse_messages(turn.messages)
            rows[cell.row_index] = PromptRow(
                cell.row_index, dict(cell.variables or {}), messages[-1].content, None, messages[:-1]
            )
        found[(cell.row_index, cell.model_index, cell.sample_index)] = Cell(
            row=cell.row_index,
            model=cell.model_index,
            sample=cell.sample_index,
            preset=turn.preset_name,
            status="cached" if cell.cached else _STATUS.get(turn.finish_reason, "done"),
            text=turn.output,
            finish_reason=turn.finish_reason,
            error=turn.error,
            turn_id=turn.id,
            stats={
                "prompt_tokens": turn.prompt_tokens,
                "completion_tokens": turn.completion_tokens,
                "ttft_s": turn.ttft_s,
                "total_s": turn.total_s,
                "tokens_per_s": turn.tokens_per_s,
            },
            seed=turn.seed,
            prompt=turn.prompt,
            budget=int((turn.params or {}).get("max_new_tokens") or 0),
        )
    last = max(rows, default=-1)
    ordered = [rows.get(i) or PromptRow(i, {}, "(not stored)") for i in range(last + 1)]
    cells = [
        found.get((row.index, m, k)) or Cell(row.index, m, k, preset, status="not run")
        for row in ordered
        for m, preset in enumerate(presets)
        for k in range(samples)
    ]
    ran = [c for c in cells if c.status not in ("cached", "not run")]
    ended = [turn.finished_at for _, turn in stored]
    elapsed = (max(ended) - conversation.created_at).total_seconds() if ended else 0.0
    grid = GridUpdate(
        conversation.id,
        presets,
        ordered,
        samples,
        cells,
        to_run=len(cells) - sum(c.status == "cached" for c in cells),
        ran=len(ran),
        elapsed_s=max(elapsed, 0.0),
        finished=True,
    )
    grid.stopped = any(c.status in ("stopped", "not run") for c in cells)
    return grid
