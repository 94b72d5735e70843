"""Saved notebooks: create, save, open (by link), list, duplicate, delete, and run as versions. No Gradio.

A notebook's id is its link (``?notebook=<id>``): 128 random bits, never a run or conversation id.
Who may change it: on a private deployment anyone; on a public one (a Space or ``--share``) only the
visitor that created it, known by a key its browser keeps (the API: its session). Others open it
read-only and may duplicate it into their own. Every Run is recorded as the next version, with the
document as it ran; its cells are the run's stored ``notebook_cells``, so a version reopens with
every cell after a restart.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from playground.errors import PlaygroundError
from playground.services.notebook.diff import RunDiff, diff_runs, word_diff
from playground.services.notebook.document import JudgeSettings, NotebookDocument
from playground.services.notebook.grid import Cell, GridUpdate, turn_stats
from playground.services.notebook.imports import Imported, check_size, import_tests
from playground.services.notebook.judge import JudgeRun, JudgeService, verdict_json
from playground.services.notebook.scoring import GridScores, score_grid
from playground.services.notebook.service import NotebookService
from playground.store.models import Notebook, NotebookRun
from playground.store.notebooks import NotebookStore


def owner_hash(key: str | None) -> str:
    """What is stored of a visitor's key (never the key itself)."""
    return hashlib.sha256((key or "").encode()).hexdigest()


def new_key() -> str:
    """A visitor key (a browser keeps it) or a notebook link id: 128 random bits as hex."""
    return secrets.token_hex(16)


@dataclass
class RunInfo:
    version: int
    conversation_id: str
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "conversation_id": self.conversation_id,
            "created_at": self.created_at.isoformat(),
        }


@dataclass
class SavedNotebook:
    id: str
    document: NotebookDocument
    editable: bool  # this visitor may save, run, judge and delete it
    runs: list[RunInfo] = field(default_factory=list)
    updated_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.document.name,
            "editable": self.editable,
            "document": self.document.as_json(),
            "runs": [r.as_json() for r in self.runs],
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


@dataclass
class VersionGrid:
    """One version of a notebook: its grid as stored, the document it ran and its checks' scores."""

    version: int
    grid: GridUpdate
    document: NotebookDocument
    scores: GridScores | None  # None while the run is still going

    def as_json(self) -> dict[str, Any]:
        scores = self.scores.as_json() if self.scores is not None else None
        return {"version": self.version, "grid": self.grid.as_json(), "scores": scores}


class SavedNotebooks:
    def __init__(self, notebook: NotebookService, public: bool, allow_python: bool):
        self.notebook, self.public, self.allow_python = notebook, public, allow_python
        self.rows = NotebookStore(notebook.store)
        self.judges = JudgeService(notebook.chat, self.rows)

    # ------------------------------------------------------------------ documents

    def document(self, data: Any) -> NotebookDocument:
        """A document to store, validated here (presets, checks, rows; python checks only where allowed)."""
        document = NotebookDocument.from_json(data, self.allow_python)
        for name in [*document.models, *([document.judge.preset] if document.judge.preset else [])]:
            self.notebook.chat.preset(name)  # an unknown preset is refused, naming the known ones
        return document

    def create(self, data: Any, key: str | None) -> SavedNotebook:
        if self.public and not key:
            raise PlaygroundError(
                "this deployment is public and your session is not known yet; reload the page"
            )
        document = self.document(data)
        notebook_id = new_key()
        self.rows.create(notebook_id, document.name, owner_hash(key), document.as_json())
        return self.open(notebook_id, key)

    def save(self, notebook_id: str, data: Any, key: str | None) -> SavedNotebook:
        self._mine(notebook_id, key, "edit")
        document = self.document(data)
        self.rows.update(notebook_id, document.name, document.as_json())
        return self.open(notebook_id, key)

    def open(self, notebook_id: str, key: str | None) -> SavedNotebook:
        row = self._row(notebook_id)
        return SavedNotebook(
            id=row.id,
            document=NotebookDocument.from_json(row.document, allow_python=True),  # what was saved, as saved
            editable=self.may_edit(row, key),
            runs=[RunInfo(r.version, r.conversation_id, r.created_at) for r in self.rows.runs(row.id)],
            updated_at=row.updated_at,
        )

    def listed(self, key: str | None) -> list[dict[str, Any]]:
        """The notebooks this visitor may see listed: all of them where the app is private, its own on a
        public deployment (others' open by their link)."""
        rows = self.rows.listed(owner_hash(key) if self.public else None)
        return [{"id": r.id, "name": r.name, "updated_at": r.updated_at.isoformat()} for r in rows]

    def duplicate(self, notebook_id: str, key: str | None, name: str | None = None) -> SavedNotebook:
        """A copy owned by ``key`` (anyone with the link may duplicate); runs stay with the original."""
        source = self.open(notebook_id, key).document
        copy = replace(source, name=(name or f"{source.name} (copy)")[:200])
        return self.create(copy.as_json(), key)

    def delete(self, notebook_id: str, key: str | None) -> None:
        self._mine(notebook_id, key, "delete")
        self.rows.delete(notebook_id)

    def owned_by(self, notebook_id: str, key: str | None) -> tuple[bool, bool]:
        """Whether the notebook is stored, and whether ``key`` (the API: the session) created it."""
        row = self.rows.get(notebook_id.strip())
        return row is not None, row is not None and key is not None and row.owner == owner_hash(key)

    def is_link(self, token: str) -> bool:
        """A notebook's id is its share link."""
        return self.owned_by(token, None)[0]

    def may_edit(self, row: Notebook, key: str | None) -> bool:
        return not self.public or (key is not None and row.owner == owner_hash(key))

    def _row(self, notebook_id: str) -> Notebook:
        row = self.rows.get(str(notebook_id or "").strip())
        if row is None:
            raise PlaygroundError(f"there is no saved notebook {notebook_id!r} (deleted, or a mistyped link)")
        return row

    def _mine(self, notebook_id: str, key: str | None, action: str) -> Notebook:
        row = self._row(notebook_id)
        if not self.may_edit(row, key):
            raise PlaygroundError(
                f"notebook {row.name!r} is read-only for you: on this public deployment only the session that "
                f"created it may {action} it; duplicate it to make your own copy"
            )
        return row

    # ------------------------------------------------------------------ runs

    def run(
        self,
        notebook_id: str,
        key: str | None,
        session_id: str | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[VersionGrid]:
        """Run the saved document as the next version; yields the grid as it fills, scored at the end."""
        self._mine(notebook_id, key, "run")
        document = self.open(notebook_id, key).document
        checkset = document.checkset(self.allow_python)
        variables = {}
        version = 0
        for grid in self.notebook.run(document.request(), session_id, cancel):
            if not version:
                version = self.rows.add_run(notebook_id, grid.conversation_id, document.as_json())
                variables = {r.index: r.variables for r in grid.rows}
            scores = score_grid(checkset, grid.presets, grid.cells, variables) if grid.finished else None
            yield VersionGrid(version, grid, document, scores)

    def run_row(self, notebook_id: str, version: int | None = None) -> NotebookRun:
        """A stored run (version) of the notebook: the latest when ``version`` is None or 0."""
        runs = self.rows.runs(self._row(notebook_id).id)
        if not runs:
            raise PlaygroundError("this notebook has not been run yet; press Run to make its first version")
        chosen = runs[-1] if not version else next((r for r in runs if r.version == int(version)), None)
        if chosen is None:
            raise PlaygroundError(
                f"this notebook has no version {version}; it has {', '.join(str(r.version) for r in runs)}"
            )
        return chosen

    def version(self, notebook_id: str, version: int | None = None) -> VersionGrid:
        """A stored version (the latest when ``version`` is None or 0) with every cell, scored."""
        chosen = self.run_row(notebook_id, version)
        document = NotebookDocument.from_json(chosen.document, allow_python=True)
        grid = self.stored_grid(chosen.conversation_id, document)
        variables = {r.index: r.variables for r in grid.rows}
        scores = score_grid(document.checkset(self.allow_python), grid.presets, grid.cells, variables)
        return VersionGrid(chosen.version, grid, document, scores)

    def judge(
        self,
        notebook_id: str,
        key: str | None,
        version: int | None = None,
        settings: Any = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[JudgeRun]:
        """Judge a version (the latest by default) with the given judge settings or the notebook's own."""
        self._mine(notebook_id, key, "judge")
        judge = (
            JudgeSettings.from_json(settings)
            if settings is not None
            else self.open(notebook_id, key).document.judge
        )
        yield from self.judges.judge(self.run_row(notebook_id, version).conversation_id, judge, cancel)

    def verdicts(self, notebook_id: str, version: int | None = None) -> list[dict[str, Any]]:
        """The verdicts of a version's latest judge pass of each judge and kind."""
        verdicts = self.rows.verdicts(self.run_row(notebook_id, version).conversation_id)
        latest = {(v.judge_preset, v.kind): v.judging for v in verdicts}
        return [verdict_json(v) for v in verdicts if latest[(v.judge_preset, v.kind)] == v.judging]

    def diff(self, notebook_id: str, version_a: int, version_b: int) -> RunDiff:
        """What changed between two versions, both scored with the newer one's checks."""
        a, b = self.version(notebook_id, version_a), self.version(notebook_id, version_b)
        newer = b if b.version >= a.version else a
        return diff_runs(a.version, a.grid, b.version, b.grid, newer.document.checkset(self.allow_python))

    def answer_diff(self, notebook_id: str, row: int, a: dict, b: dict) -> list[tuple[str, str]]:
        """A word diff between two answers to one row: ``a``/``b`` name a version, a model (preset) and a
        sample (two models, or one model across runs)."""
        texts = []
        for side in (a, b):
            grid = self.version(notebook_id, int(side.get("version") or 0)).grid
            preset = side.get("model")
            if preset not in grid.presets:
                raise PlaygroundError(
                    f"version {side.get('version')} has no model {preset!r}; it ran {grid.presets}"
                )
            if not 0 <= int(row) < len(grid.rows):
                raise PlaygroundError(
                    f"there is no row {int(row) + 1}; the notebook has {len(grid.rows)} rows"
                )
            sample = int(side.get("sample") or 0)
            if not 0 <= sample < grid.samples:
                raise PlaygroundError(
                    f"there is no sample {sample + 1}; version {side.get('version')} has {grid.samples}"
                )
            texts.append(grid.cell(int(row), grid.presets.index(preset), sample).text)
        return word_diff(*texts)

    def import_file(self, path: Path) -> Imported:
        """An uploaded test file, its size checked before it is read."""
        check_size(path.name, path.stat().st_size)
        return self.import_tests(path.name, path.read_bytes())

    def import_tests(self, filename: str, data: bytes | str) -> Imported:
        """A promptfoo or OpenAI Evals test file as rows, template and checks (python checks only where
        the app is private)."""
        return import_tests(filename, data, self.allow_python)

    def stored_grid(self, conversation_id: str, document: NotebookDocument) -> GridUpdate:
        """A run's grid from the database: every stored cell; cells never run are marked so."""
        rows, presets, samples = document.prompt_rows(), list(document.models), document.samples
        cells = [
            Cell(row=r.index, model=m, sample=k, preset=p, status="not run")
            for r in rows
            for m, p in enumerate(presets)
            for k in range(samples)
        ]
        grid = GridUpdate(conversation_id, presets, rows, samples, cells, 0, 0, 0.0, finished=True)
        span = []  # when the run's own cells started and finished
        for stored, turn in self.notebook.store.notebook_cells(conversation_id):
            if (
                stored.row_index >= len(rows)
                or stored.model_index >= len(presets)
                or stored.sample_index >= samples
            ):
                continue
            cell = grid.cell(stored.row_index, stored.model_index, stored.sample_index)
            cell.text, cell.turn_id, cell.seed, cell.prompt = turn.output, turn.id, turn.seed, turn.prompt
            cell.finish_reason, cell.error = turn.finish_reason, turn.error
            cell.status = (
                "cached"
                if stored.cached
                else {"stopped": "stopped", "error": "error"}.get(turn.finish_reason, "done")
            )
            cell.stats = turn_stats(turn)
            grid.to_run += not stored.cached
            grid.ran += not stored.cached
            if not stored.cached:
                span.extend((turn.started_at, turn.finished_at))
        grid.elapsed_s = (max(span) - min(span)).total_seconds() if span else 0.0
        return grid
