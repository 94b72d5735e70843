"""A notebook grid run as a table to take away: one record per cell, as CSV or JSONL. No Gradio.

Read from the database (not from the page), so the export holds exactly what is stored: the
prompt and its row's variables, the model, the parameters with the seed, the output, its stats
and the latest rating, score and comment of the cell's answer.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from playground.errors import PlaygroundError
from playground.store.db import Store

CSV_FIELDS = [
    "row",
    "model",
    "sample",
    "user_message",
    "system_prompt",
    "output",
    "finish_reason",
    "error",
    "completion_tokens",
    "ttft_s",
    "total_s",
    "tokens_per_s",
    "seed",
    "params",
    "rating",
    "rating_reasons",
    "score",
    "comment",
    "cached",
    "turn_id",
    "model_id",
    "revision",
    "preset_hash",
    "prompt",
]
FORMATS = ("csv", "jsonl")


def cell_records(store: Store, conversation_id: str) -> list[dict[str, Any]]:
    """Every cell of a grid run, in row, model, sample order (rows and models 1-based as shown)."""
    conversation = store.conversation(conversation_id)
    if conversation is None or conversation.mode != "notebook":
        raise PlaygroundError(f"there is no notebook grid run {conversation_id!r}")
    records = []
    for cell, turn in store.notebook_cells(conversation_id):
        ratings, scores = store.ratings(turn.id), store.scores(turn.id)
        rating = ratings[-1] if ratings else None
        score = scores[-1] if scores else None
        comments = [x.comment for x in (rating, score) if x is not None and x.comment]
        records.append(
            {
                "row": cell.row_index + 1,
                "model": turn.preset_name,
                "sample": cell.sample_index + 1,
                "variables": cell.variables,
                "user_message": turn.messages[-1]["content"] if turn.messages else "",
                "messages": turn.messages,
                "system_prompt": turn.system_prompt,
                "output": turn.output,
                "finish_reason": turn.finish_reason,
                "error": turn.error,
                "completion_tokens": turn.completion_tokens,
                "ttft_s": turn.ttft_s,
                "total_s": turn.total_s,
                "tokens_per_s": turn.tokens_per_s,
                "seed": turn.seed,
                "params": turn.params,
                "rating": rating.value if rating else None,
                "rating_reasons": rating.reasons if rating else [],
                "score": score.score if score else None,
                "comment": comments[-1] if comments else "",
                "cached": cell.cached,
                "turn_id": turn.id,
                "model_id": turn.model_id,
                "revision": turn.revision,
                "preset_hash": turn.preset_hash,
                "prompt": turn.prompt,
            }
        )
    return records


def write_export(store: Store, conversation_id: str, fmt: str, path: Path) -> Path:
    """Write the run as ``csv`` (one row per cell, the row's variables as ``row.<name>`` columns) or
    ``jsonl`` (one object per cell)."""
    if fmt not in FORMATS:
        raise PlaygroundError(f"export format must be one of {list(FORMATS)}, got {fmt!r}")
    records = cell_records(store, conversation_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        if fmt == "jsonl":
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            return path
        variables = list(dict.fromkeys(k for r in records for k in r["variables"]))
        writer = csv.writer(out)
        writer.writerow(CSV_FIELDS[:4] + [f"row.{v}" for v in variables] + CSV_FIELDS[4:])
        for r in records:
            values = [_flat(r[f]) for f in CSV_FIELDS]
            writer.writerow(values[:4] + [r["variables"].get(v, "") for v in variables] + values[4:])
    return path


def _flat(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value
