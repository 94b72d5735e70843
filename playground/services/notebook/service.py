"""The notebook grid: prompts × models (× samples), batched per model, stored, rated. No Gradio.

One grid run is one conversation of mode ``notebook``; every cell is a stored turn (``column`` =
the model's index, ``turn_index`` = the row's) with the same reproducibility fields as any other
answer. All cells of one model go to its backend in one ``stream`` call (the engine prefills them
together and decodes them as one batch), so a cell's text is the one the same request gives in
Compare, alone or on replay; a cell whose inputs (messages, system prompt, preset file hash,
parameters with seed, and where it runs: revision, quantisation, dtype, device) match a complete
earlier answer is served from it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from playground.engine.generation.params import GenerationParams
from playground.engine.generation.request import GenerationRequest
from playground.engine.models.cache import ModelCache
from playground.engine.models.loader import Progress
from playground.engine.models.presets import Preset
from playground.engine.models.templates import resolve_system
from playground.errors import PlaygroundError
from playground.services.answers.chat import AnswerUpdate, ChatService, Ran, turn_record
from playground.services.answers.feedback import FeedbackService
from playground.services.answers.limits import check_text
from playground.services.notebook.export import write_export
from playground.services.notebook.grid import (
    MAX_MODELS,
    MAX_SAMPLES,
    Cell,
    GridUpdate,
    NotebookRequest,
    PreparedCell,
    cache_key,
    turn_stats,
)
from playground.services.notebook.stored import stored_grid
from playground.store.db import Store
from playground.store.models import NotebookCell, utcnow

UPDATE_EVERY_S = 0.3


class NotebookService:
    def __init__(self, chat: ChatService, store: Store, feedback: FeedbackService):
        self.chat, self.store, self.feedback = chat, store, feedback

    @property
    def cache(self) -> ModelCache:
        return self.chat.cache

    def validate(self, request: NotebookRequest) -> list[Preset]:
        if not request.presets:
            raise PlaygroundError("pick at least one model for the grid")
        if len(request.presets) > MAX_MODELS:
            raise PlaygroundError(f"a grid takes at most {MAX_MODELS} models, got {len(request.presets)}")
        if len(set(request.presets)) != len(request.presets):
            raise PlaygroundError(f"a model is picked twice: {request.presets}")
        if not 1 <= int(request.samples) <= MAX_SAMPLES:
            raise PlaygroundError(f"samples per cell must be 1 to {MAX_SAMPLES}, got {request.samples}")
        if not request.rows:
            raise PlaygroundError("the prompt set is empty; add at least one row")
        for row in request.rows:
            check_text(row.system, f"row {row.index + 1}'s system prompt", self.chat.limits)
            for message in row.messages():
                check_text(message.content, f"row {row.index + 1}'s {message.role} message", self.chat.limits)
        cells = len(request.rows) * len(request.presets) * request.samples
        most = self.chat.limits.max_grid_cells
        if cells > most:
            raise PlaygroundError(
                f"the grid has {cells:,} cells ({len(request.rows)} rows × {len(request.presets)} models × "
                f"{request.samples} samples); at most {most:,} run at once here (--max-grid-cells)"
            )
        unknown = set(request.params) - set(request.presets)
        if unknown:
            raise PlaygroundError(f"parameter overrides name preset(s) not in the grid: {sorted(unknown)}")
        presets = [self.chat.preset(name) for name in request.presets]
        for preset in presets:
            if preset.name in self.chat.registry.unavailable:
                reason = self.chat.registry.unavailable[preset.name]
                raise PlaygroundError(f"{preset.display_name} is unavailable here: {reason}")
        for preset in presets:
            try:
                self.cell_params(preset, request, 0)
            except PlaygroundError as exc:
                raise PlaygroundError(f"{preset.name}: {exc}") from None
        return presets

    def cell_params(self, preset: Preset, request: NotebookRequest, sample: int) -> GenerationParams:
        overrides = dict(request.params.get(preset.name) or {})
        base = overrides.pop("seed", None)
        params = self.chat.params_for(preset, overrides)
        seed = (int(request.seed) if base is None else int(base)) + sample
        return params.model_copy(update={"seed": seed % 2**32})

    def run(
        self,
        request: NotebookRequest,
        session_id: str | None = None,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> Iterator[GridUpdate]:
        """Run the grid model by model; yield the whole grid whenever cells change (throttled; a
        running cell's text streams)."""
        presets = self.validate(request)
        cancel = cancel or threading.Event()
        samples = int(request.samples)
        conversation_id = self.store.new_conversation("notebook", list(request.presets), session_id)
        budgets = {p.name: self.cell_params(p, request, 0).max_new_tokens for p in presets}
        cells = [
            Cell(row=r.index, model=m, sample=k, preset=p.name, budget=budgets[p.name])
            for r in request.rows
            for m, p in enumerate(presets)
            for k in range(samples)
        ]
        grid = GridUpdate(
            conversation_id, list(request.presets), request.rows, samples, cells, len(cells), 0, 0.0
        )
        started = time.perf_counter()
        try:
            yield grid
            for m, preset in enumerate(presets):
                mine = [c for c in cells if c.model == m]
                if cancel.is_set():
                    break
                grid.phase = f"loading {preset.display_name}…"
                yield grid
                try:
                    for _ in self._run_model(grid, preset, request, mine, cancel, progress):
                        grid.elapsed_s = time.perf_counter() - started
                        yield grid
                except PlaygroundError as exc:
                    for cell in mine:
                        if not cell.finished:
                            self._fail(grid, request, preset, cell, str(exc))
        except GeneratorExit:  # the consumer left (a closed tab): stop the running rows too
            cancel.set()
            raise
        for cell in cells:
            if not cell.finished:
                cell.status = "not run"
        grid.elapsed_s, grid.finished, grid.phase = time.perf_counter() - started, True, ""
        grid.stopped = cancel.is_set()
        yield grid

    def _run_model(self, grid, preset, request, cells, cancel, progress) -> Iterator[None]:
        """One model's cells: served from earlier runs where their inputs match, the rest streamed
        together through the model's backend (the engine batches them, a server gets them at once)."""
        with self.chat.backends.open(preset, progress=progress) as model:
            todo = self._prepare(grid, preset, request, cells, model)
            yield
            if not todo:
                return
            ran_at, last = utcnow(), 0.0
            grid.phase = f"{preset.display_name}: generating {len(todo)} cell{'s' if len(todo) > 1 else ''}"
            began, counted = None, grid.stream_s  # speed is measured from the first token on
            events = model.stream([item.generation for item in todo], cancel)
            with closing(events):
                for event in events:
                    began = began or time.perf_counter()
                    grid.stream_s = counted + time.perf_counter() - began
                    item = todo[event.index]
                    cell = item.cell
                    cell.status, cell.text, cell.stats = "running", event.text, event.stats.as_dict()
                    finished = event.done
                    if finished:
                        cell.finish_reason = event.finish_reason
                        cell.error = f"row {cell.row + 1}: {event.error}" if event.error else None
                        cell.status = {"stopped": "stopped", "error": "error"}.get(
                            event.finish_reason, "done"
                        )
                        self._save(grid, request, preset, cell, item.ran, item.system, ran_at, item.key)
                    now = time.perf_counter()
                    if finished or now - last >= UPDATE_EVERY_S:
                        last = now
                        yield

    def _prepare(self, grid, preset, request, cells, model) -> list[PreparedCell]:
        """Each cell's params, seed and prompt; a cell whose inputs match an earlier complete answer
        is served from it. Returns the cells to generate."""
        rows, todo = {r.index: r for r in request.rows}, []
        for cell in cells:
            row = rows[cell.row]
            params = self.cell_params(preset, request, cell.sample)
            system = resolve_system(row.messages(), row.system, preset.system_prompt)
            cell.seed = params.seed
            ran = Ran(params=params, origin=model.origin)
            try:
                rendered = model.render(row.messages(), system)
            except PlaygroundError as exc:
                self._fail(grid, request, preset, cell, f"row {cell.row + 1}: {exc}", ran)
                continue
            cell.prompt = ran.prompt = rendered.text
            key = cache_key(preset, row, system, params, model.origin)
            earlier = self.store.cached_turn(key)
            if earlier is not None:
                self._serve_cached(grid, cell, earlier, key, row)
                continue
            generation = GenerationRequest.build(
                rendered.text, params, preset.stop, model.context_length, rendered.messages
            )
            todo.append(PreparedCell(cell, generation, ran, system, key))
        return todo

    def _save(self, grid, request, preset, cell, ran: Ran, system, started, key="") -> None:
        """Store a finished, stopped or failed cell as a turn of the run, and its notebook cell row."""
        row = next(r for r in request.rows if r.index == cell.row)
        update = AnswerUpdate(
            text=cell.text, finish_reason=cell.finish_reason, error=cell.error, stats=cell.stats
        )
        record = turn_record(
            preset,
            ran,
            conversation_id=grid.conversation_id,
            column=cell.model,
            turn_index=cell.row,
            preset_name=preset.name,
            messages=row.messages(),
            system_prompt=system,
            update=update,
            started=started,
        )
        cell.turn_id = self.store.record_turn(record)
        self._record_cell(grid, cell, key, row, cached=False)
        grid.ran += 1

    def _serve_cached(self, grid, cell, turn, key, row) -> None:
        cell.status, cell.text, cell.turn_id = "cached", turn.output, turn.id
        grid.to_run -= 1
        cell.finish_reason = turn.finish_reason
        cell.stats = turn_stats(turn)
        self._record_cell(grid, cell, key, row, cached=True)

    def _record_cell(self, grid, cell, key, row, cached: bool) -> None:
        self.store.record_cell(
            NotebookCell(
                conversation_id=grid.conversation_id,
                row_index=cell.row,
                model_index=cell.model,
                sample_index=cell.sample,
                turn_id=cell.turn_id,
                cache_key=key,
                cached=cached,
                variables=row.variables,
                batch_rows=0,
                padded_length=0,
            )
        )

    def _fail(self, grid, request, preset, cell, message: str, ran: Ran | None = None) -> None:
        cell.status, cell.error, cell.finish_reason, cell.text = "error", message, "error", ""
        row = next(r for r in request.rows if r.index == cell.row)
        system = resolve_system(row.messages(), row.system, preset.system_prompt)
        ran = ran or Ran(params=self.cell_params(preset, request, cell.sample))
        self._save(grid, request, preset, cell, ran, system, utcnow())

    def load(self, conversation_id: str | None, session_id: str | None) -> GridUpdate | None:
        """A stored grid run of ``session_id``, as it was left (for a page that reloads); None if there
        is no such run of that session. Cells that never ran (nothing stored) are "not run"."""
        row = self.store.conversation(conversation_id) if conversation_id else None
        if row is None or row.mode != "notebook" or row.session_id != session_id:
            return None
        return stored_grid(row, self.store.notebook_cells(conversation_id))

    def ratings_of(self, grid: GridUpdate) -> dict[int, tuple[int | None, int | None]]:
        """The latest 👍/👎 and 1–5 score of each stored cell of a grid, by turn id."""
        return self.store.latest_feedback([c.turn_id for c in grid.cells if c.turn_id is not None])

    def export(self, conversation_id: str, fmt: str, path: Path) -> Path:
        """A grid run as ``csv`` or ``jsonl`` (one record per cell) written to ``path``."""
        return write_export(self.store, conversation_id, fmt, path)

    # ------------------------------------------------------------------ rating

    def rate(
        self, turn_id: int, value: int | None = None, score: int | None = None, reasons=(), comment: str = ""
    ) -> dict[str, int]:
        """👍 (1) / 👎 (-1) with reasons, and/or a 1–5 score; the comment goes with whichever is given."""
        if value in (None, 0) and score in (None, 0):
            raise PlaygroundError("rate the cell with 👍/👎 (value 1 or -1), a score from 1 to 5, or both")
        self.feedback.check_comment(comment)
        result = {}
        if value not in (None, 0):
            result["rating_id"] = self.feedback.rate(int(turn_id), int(value), list(reasons or []), comment)
        if score not in (None, 0):
            result["score_id"] = self.store.record_score(int(turn_id), int(score), comment)
        return result
