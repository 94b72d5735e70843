"""Saved-notebook API endpoints (stable ``api_name``s), each a thin call into the saved-notebook service.

``/notebook_save`` (create or save), ``/notebook_open`` (a notebook by its link id, with a version's
grid and scores), ``/notebook_list``, ``/notebook_duplicate``, ``/notebook_delete``,
``/notebook_run_saved`` (streams the new version), ``/notebook_judge`` (streams the judge's progress,
then its verdicts), ``/notebook_diff`` (two versions), ``/notebook_answer_diff`` (a word diff of two
answers to a row) and ``/notebook_import`` (a promptfoo YAML or OpenAI Evals JSONL file as rows and
checks). An API client is known by its session: on a public deployment it may change only the
notebooks it created.
"""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from playground.container import Services
from playground.errors import PlaygroundError
from playground.ui.access import Guard
from playground.ui.api import parse_json
from playground.ui.common import GENERATION, generation_slot, session_id, session_key, user_errors


def register_notebook_saved_api(services: Services) -> None:
    saved = services.saved

    @user_errors
    def notebook_save(notebook_id: str = "", document: str = "{}", request: gr.Request = None) -> dict:
        """Save a notebook document (JSON: name, template, rows, models, params, samples, seed,
        max_new_tokens, checks, threshold, judge); an empty notebook_id creates a new one (its id is its link)."""
        data = parse_json(document, "document", {})
        if notebook_id:
            return saved.save(notebook_id, data, session_id(request)).as_json()
        return saved.create(data, session_id(request)).as_json()

    @user_errors
    def notebook_open(notebook_id: str, version: int = 0, request: gr.Request = None) -> dict:
        """A saved notebook by its id (anyone with the link), and a version's grid with its checks' scores
        (the latest for version 0; null before the first run)."""
        notebook = saved.open(notebook_id, session_id(request))
        grid = saved.version(notebook_id, int(version or 0)).as_json() if notebook.runs else None
        return {"notebook": notebook.as_json(), "version": grid}

    @user_errors
    def notebook_list(request: gr.Request = None) -> list:
        """The saved notebooks you may see listed (all where the app is private; yours on a public one)."""
        return saved.listed(session_id(request))

    @user_errors
    def notebook_duplicate(notebook_id: str, name: str = "", request: gr.Request = None) -> dict:
        """Copy a notebook (anyone with its link may) into a new one that is yours."""
        return saved.duplicate(notebook_id, session_id(request), name or None).as_json()

    @user_errors
    def notebook_delete(notebook_id: str, request: gr.Request = None) -> dict:
        """Delete a notebook you may edit (its runs' stored answers stay in the database)."""
        saved.delete(notebook_id, session_id(request))
        return {"deleted": notebook_id}

    @user_errors
    @generation_slot(services.gate)
    def notebook_run_saved(notebook_id: str, request: gr.Request = None) -> Iterator[dict]:
        """Run a saved notebook as its next version; streams the grid, the last item scored by its checks."""
        with services.runs.run(session_key(request, "api-notebook")) as cancel:
            for version in saved.run(notebook_id, session_id(request), session_id(request), cancel):
                yield version.as_json()

    @user_errors
    @generation_slot(services.gate)
    def notebook_judge(
        notebook_id: str, version: int = 0, judge: str = "", request: gr.Request = None
    ) -> Iterator[dict]:
        """Judge a version (0: the latest) with an LLM: judge is JSON {"preset", "mode": "pairwise"|"rubric",
        "rubric", "max_new_tokens", "seed"}, empty for the notebook's own judge settings. Streams progress;
        the last item has the stored verdicts."""
        settings = parse_json(judge, "judge", None) if judge else None
        with services.runs.run(session_key(request, "api-judge")) as cancel:
            for run in saved.judge(notebook_id, session_id(request), int(version or 0), settings, cancel):
                yield run.as_json()

    @user_errors
    def notebook_diff(notebook_id: str, version_a: int, version_b: int) -> dict:
        """What changed between two versions: cells whose text changed (with a word diff), checks that
        flipped, and each model's pass rate and mean score before and after."""
        return saved.diff(notebook_id, int(version_a), int(version_b)).as_json()

    @user_errors
    def notebook_answer_diff(notebook_id: str, row: int, a: str, b: str) -> dict:
        """A word diff of two answers to one row (1-based): a and b are JSON {"version", "model", "sample"}."""
        sides = [parse_json(side, name, {}) for side, name in ((a, "a"), (b, "b"))]
        if not all(isinstance(side, dict) for side in sides):
            raise PlaygroundError(
                'a and b must be JSON objects like {"version": 1, "model": "preset", "sample": 0}'
            )
        pieces = saved.answer_diff(notebook_id, int(row) - 1, *sides)
        return {"diff": [list(p) for p in pieces]}

    @user_errors
    def notebook_import(filename: str, content: str) -> dict:
        """A promptfoo test file (.yaml) or an OpenAI Evals file (.jsonl) as notebook rows, template and
        checks; anything unsupported is refused whole, naming it and its line."""
        return saved.import_tests(filename, content).as_json()

    limit = services.settings.limits.total_generations
    guard, link = Guard(services), {"saved_notebook": "notebook_id"}  # a notebook's id is its share link
    gr.api(guard.owner(notebook_save, "edit it", saved_notebook="notebook_id"), api_name="notebook_save")
    gr.api(guard.share_link(notebook_open, **link), api_name="notebook_open")
    gr.api(guard.owner(notebook_list), api_name="notebook_list")
    gr.api(guard.share_link(notebook_duplicate, **link), api_name="notebook_duplicate")
    gr.api(
        guard.owner(notebook_delete, "delete it", saved_notebook="notebook_id"), api_name="notebook_delete"
    )
    gr.api(
        guard.owner(notebook_run_saved, "run it", saved_notebook="notebook_id"),
        api_name="notebook_run_saved",
        concurrency_id=GENERATION,
        concurrency_limit=limit,
    )
    gr.api(
        guard.owner(notebook_judge, "judge it", saved_notebook="notebook_id"),
        api_name="notebook_judge",
        concurrency_id=GENERATION,
        concurrency_limit=limit,
    )
    gr.api(guard.share_link(notebook_diff, **link), api_name="notebook_diff")
    gr.api(guard.share_link(notebook_answer_diff, **link), api_name="notebook_answer_diff")
    gr.api(guard.anyone(notebook_import), api_name="notebook_import")
