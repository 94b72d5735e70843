"""Notebook API endpoints (stable ``api_name``s), each a thin call into the notebook service.

``/notebook_run`` streams the whole grid as JSON (progress, then every cell with its turn id);
its last item is the finished grid. ``/notebook_export`` returns a run as CSV or JSONL text.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from playground.container import Services
from playground.services.notebook.grid import NotebookRequest
from playground.services.notebook.prompts import DEFAULT_TEMPLATE
from playground.ui.access import Guard
from playground.ui.api import parse_json
from playground.ui.common import GENERATION, generation_slot, session_id, session_key, user_errors


def register_notebook_api(services: Services) -> None:
    notebook = services.notebook

    @user_errors
    @generation_slot(services.gate)
    def notebook_run(
        presets: str,
        rows: str,
        params: str = "{}",
        samples: int = 1,
        template: str = DEFAULT_TEMPLATE,
        seed: int = 0,
        request: gr.Request = None,
    ) -> Iterator[dict]:
        """Run a grid: presets as a JSON list; rows as a JSON list of objects (column → value, optional
        "system" and "history"); params as a JSON object of per-preset overrides; samples per cell;
        the prompt template ("{column}" filled from each row); the base seed (sample k uses seed + k)."""
        grid_request = NotebookRequest.parse(presets, rows, template, params, samples, seed, source="rows")
        with services.runs.run(session_key(request, "api-notebook")) as cancel:
            for grid in notebook.run(grid_request, session_id(request), cancel):
                yield grid.as_json()

    @user_errors
    def notebook_rate(
        turn_id: int,
        value: int = 0,
        score: int = 0,
        reasons: str = "[]",
        comment: str = "",
        request: gr.Request = None,
    ) -> dict:
        """Rate a grid cell's stored answer (its turn_id): value 1 (👍) or -1 (👎) with reasons (JSON list),
        and/or a score from 1 to 5; 0 leaves either out."""
        chosen = parse_json(reasons, "reasons", [])
        return notebook.rate(int(turn_id), int(value or 0), int(score or 0), chosen, comment)

    @user_errors
    def notebook_export(
        conversation_id: str,
        format: str = "csv",  # noqa: A002 - the API's word
        request: gr.Request = None,
    ) -> dict:
        """A grid run (its conversation_id) as "csv" or "jsonl" text: one record per cell."""
        folder = Path(tempfile.mkdtemp(prefix="notebook-export-"))
        path = services.notebook.export(conversation_id, format, folder / f"grid.{format}")
        return {
            "format": format,
            "filename": f"notebook-{conversation_id[:8]}.{format}",
            "content": path.read_text(),
        }

    limit = services.settings.limits.total_generations
    guard = Guard(services)
    gr.api(
        guard.anyone(notebook_run),
        api_name="notebook_run",
        concurrency_id=GENERATION,
        concurrency_limit=limit,
    )
    rate_rule = dict(answer="turn_id", action="rate it", spends="ratings")
    gr.api(guard.owner(notebook_rate, **rate_rule), api_name="notebook_rate")
    export_rule = dict(notebook="conversation_id", action="export it")  # others: the saved notebook's link
    gr.api(guard.owner(notebook_export, **export_rule), api_name="notebook_export")
