"""The notebook grid: prompts × models (× samples), batched per model, stored, rated. No Gradio.

One grid run is one conversation of mode ``notebook``; every cell is a stored turn (``column`` =
the model's index, ``turn_index`` = the row's) with the same reproducibility fields as any other
answer. All rows of one model run as canonical-shape batches (``engine/batching.py``), so a cell's
text is the same alone or batched, and a cell whose inputs (messages, system prompt, preset file
hash, parameters with seed, batch shape) match a complete earlier answer is served from it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing

from playground.engine.batching import BatchShape, choose_batch_rows
from playground.engine.generation.params import GenerationParams
from playground.engine.models.cache import ModelCache
from playground.engine.models.loader import LoadRequest, Progress
from playground.engine.models.presets import Preset
from playground.engine.models.templates import chat_messages
from playground.errors import PlaygroundError
from playground.services.chat import AnswerUpdate, ChatService, turn_record
from playground.services.feedback import FeedbackService
from playground.services.limits import check_text
from playground.services.notebook_grid import (
    MAX_CELLS,
    MAX_MODELS,
    MAX_SAMPLES,
    Cell,
    GridUpdate,
    NotebookRequest,
    cache_key,
)
from playground.store.db import Store
from playground.store.models import NotebookCell, utcnow

CONTEXT_FOR_SIZING = 4096  # tokens a row may grow to when the batch size is chosen from memory
UPDATE_EVERY_S = 0.3
REMOTE_CONCURRENCY = 8  # requests in flight to one server for a grid


class NotebookService:
    def __init__(
        self,
        chat: ChatService,
        store: Store,
        feedback: FeedbackService,
        max_batch_rows: int = 16,
        bucket: int = 64,
    ):
        self.chat, self.store, self.feedback = chat, store, feedback
        self.max_batch_rows, self.bucket = max_batch_rows, bucket

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
        if cells > MAX_CELLS:
            raise PlaygroundError(f"the grid has {cells} cells; at most {MAX_CELLS} run at once")
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

    def shape_for(self, loaded) -> BatchShape:
        budget = max(self.cache.budget_bytes - loaded.footprint_bytes, 0)
        rows = choose_batch_rows(loaded.model, CONTEXT_FOR_SIZING, budget, self.max_batch_rows)
        return BatchShape(rows=rows, bucket=self.bucket)

    def run(
        self,
        request: NotebookRequest,
        session_id: str | None = None,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> Iterator[GridUpdate]:
        """Run the grid model by model; yield the whole grid whenever cells change (throttled)."""
        presets = self.validate(request)
        cancel = cancel or threading.Event()
        samples = int(request.samples)
        conversation_id = self.store.new_conversation("notebook", list(request.presets), session_id)
        cells = [
            Cell(row=r.index, model=m, sample=k, preset=p.name)
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
                try:
                    for _ in self._run_model(grid, preset, request, mine, cancel, progress):
                        grid.elapsed_s = time.perf_counter() - started
                        yield grid
                except PlaygroundError as exc:
                    for cell in mine:
                        if not cell.finished:
                            self._fail(grid, request, preset, cell, str(exc))
        except GeneratorExit:  # the consumer left (a closed tab): stop the running batch too
            cancel.set()
            raise
        for cell in cells:
            if not cell.finished:
                cell.status = "not run"
        grid.elapsed_s, grid.finished = time.perf_counter() - started, True
        yield grid

    def _run_model(self, grid, preset, request, cells, cancel, progress) -> Iterator[None]:
        if preset.model.remote:
            yield from self._run_remote(grid, preset, request, cells, cancel)
            return
        load_request = LoadRequest.from_spec(preset.model)
        with self.cache.use(load_request, progress) as loaded:
            shape = self.shape_for(loaded)

            def render(row, system):
                prompt = preset.template.render(row.messages(), system, tokenizer=loaded.tokenizer)
                return prompt, prompt

            todo = self._prepare(grid, preset, request, cells, shape, render, loaded)
            yield
            groups: dict[str, list[tuple]] = {}  # one batch run per params: samples differ only by seed
            for item in todo:
                groups.setdefault(json.dumps(item[2].model_copy(update={"seed": 0}).model_dump()), []).append(
                    item
                )
            for group in groups.values():
                yield from self._generate(grid, preset, request, loaded, shape, group, cancel)

    def _prepare(self, grid, preset, request, cells, shape, render, loaded=None, where=None) -> list[tuple]:
        """Each cell's params, seed and prompt (``render(row, system)`` gives what is sent and the prompt
        text); a cell whose inputs match an earlier complete answer is served from it. Returns the
        cells to generate as ``(cell, payload, params, system, cache key)``."""
        rows, todo = {r.index: r for r in request.rows}, []
        for cell in cells:
            row = rows[cell.row]
            params = self.cell_params(preset, request, cell.sample)
            system = row.system if row.system is not None else preset.system_prompt
            cell.seed = params.seed
            try:
                payload, cell.prompt = render(row, system)
            except PlaygroundError as exc:
                self._fail(grid, request, preset, cell, f"row {cell.row + 1}: {exc}", loaded, where)
                continue
            key = cache_key(preset, row, system, params, shape)
            earlier = self.store.cached_turn(key)
            if earlier is not None:
                self._serve_cached(grid, cell, earlier, key, row, shape)
                continue
            todo.append((cell, payload, params, system, key))
        return todo

    def _run_remote(self, grid, preset, request, cells, cancel) -> Iterator[None]:
        """A served model: its cells go to the server as concurrent requests (the server batches them)."""
        spec, remote = preset.model, self.chat.remote
        where = remote.where(spec)

        def render(row, system):
            if preset.template.kind == "server":
                messages = chat_messages(row.messages(), system)
                return messages, json.dumps(messages, ensure_ascii=False)
            prompt = preset.template.render(row.messages(), system)
            return prompt, prompt

        todo = self._prepare(grid, preset, request, cells, None, render, where=where)
        yield

        def answer(payload, params):
            for event in remote.stream(spec, payload, params, preset.stop, cancel):
                if event.done:
                    return event
            return None

        started = utcnow()
        with ThreadPoolExecutor(max_workers=REMOTE_CONCURRENCY, thread_name_prefix="remote-cell") as pool:
            futures = {
                pool.submit(answer, payload, params): (cell, params, system, key)
                for cell, payload, params, system, key in todo
            }
            for future in as_completed(futures):
                cell, params, system, key = futures[future]
                try:
                    event = future.result()
                except PlaygroundError as exc:
                    self._fail(grid, request, preset, cell, str(exc), where=where)
                    yield
                    continue
                cell.text, cell.stats, cell.finish_reason = (
                    event.text,
                    event.stats.as_dict(),
                    event.finish_reason,
                )
                cell.status = "stopped" if event.finish_reason == "stopped" else "done"
                self._save(grid, request, preset, None, cell, params, system, started, key, None, where)
                yield

    def _generate(self, grid, preset, request, loaded, shape, group, cancel) -> Iterator[None]:
        """One batch run of cells that share their params: ``(cell, prompt, params, system, key)``."""
        params = group[0][2]
        context = preset.model.context_length or loaded.context_length
        runnable = []
        for item in group:
            try:
                params.check_context(len(loaded.tokenizer(item[1])["input_ids"]), context)
                runnable.append(item)
            except PlaygroundError as exc:
                self._fail(grid, request, preset, item[0], f"row {item[0].row + 1}: {exc}", loaded)
        if not runnable:
            return
        started, last = utcnow(), 0.0
        events = self.chat.backend.stream_batch(
            loaded,
            [prompt for _cell, prompt, *_ in runnable],
            [cell_params.seed for _cell, _prompt, cell_params, *_ in runnable],
            params,
            shape,
            stop=preset.stop,
            context_length=context,
            cancel=cancel,
        )
        with closing(events):
            for step in events:
                finished = False
                for event in step:
                    cell, _prompt, cell_params, system, key = runnable[event.row]
                    cell.status, cell.text, cell.stats = "running", event.text, event.stats.as_dict()
                    if event.done:
                        cell.finish_reason = event.finish_reason
                        cell.status = "stopped" if event.finish_reason == "stopped" else "done"
                        self._save(
                            grid, request, preset, loaded, cell, cell_params, system, started, key, shape
                        )
                        finished = True
                now = time.perf_counter()
                if finished or now - last >= UPDATE_EVERY_S:
                    last = now
                    yield

    def _save(
        self, grid, request, preset, loaded, cell, params, system, started, key="", shape=None, where=None
    ) -> None:
        """Store a finished, stopped or failed cell as a turn of the run, and its notebook cell row."""
        row = next(r for r in request.rows if r.index == cell.row)
        update = AnswerUpdate(
            text=cell.text, finish_reason=cell.finish_reason, error=cell.error, stats=cell.stats
        )
        record = turn_record(
            preset,
            loaded,
            self.chat.backend,
            conversation_id=grid.conversation_id,
            column=cell.model,
            turn_index=cell.row,
            preset_name=preset.name,
            messages=row.messages(),
            system_prompt=system,
            prompt=cell.prompt,
            params=params.model_dump(),
            seed=params.seed,
            update=update,
            started=started,
            **(where or {}),
        )
        cell.turn_id = self.store.record_turn(record)
        self._record_cell(grid, cell, key, row, shape, cached=False)
        grid.ran += 1

    def _serve_cached(self, grid, cell, turn, key, row, shape) -> None:
        cell.status, cell.text, cell.turn_id = "cached", turn.output, turn.id
        grid.to_run -= 1
        cell.finish_reason = turn.finish_reason
        cell.stats = {
            "prompt_tokens": turn.prompt_tokens,
            "completion_tokens": turn.completion_tokens,
            "ttft_s": turn.ttft_s,
            "total_s": turn.total_s,
            "tokens_per_s": turn.tokens_per_s,
        }
        self._record_cell(grid, cell, key, row, shape, cached=True)

    def _record_cell(self, grid, cell, key, row, shape, cached: bool) -> None:
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
                batch_rows=shape.rows if shape else 0,
                padded_length=shape.padded_length(cell.stats.get("prompt_tokens") or 1) if shape else 0,
            )
        )

    def _fail(self, grid, request, preset, cell, message: str, loaded=None, where=None) -> None:
        cell.status, cell.error, cell.finish_reason, cell.text = "error", message, "error", ""
        row = next(r for r in request.rows if r.index == cell.row)
        system = row.system if row.system is not None else preset.system_prompt
        params = self.cell_params(preset, request, cell.sample)
        self._save(grid, request, preset, loaded, cell, params, system, utcnow(), where=where)

    # ------------------------------------------------------------------ rating

    def rate(
        self, turn_id: int, value: int | None = None, score: int | None = None, reasons=(), comment: str = ""
    ) -> dict[str, int]:
        """👍 (1) / 👎 (-1) with reasons, and/or a 1–5 score; the comment goes with whichever is given."""
        if value in (None, 0) and score in (None, 0):
            raise PlaygroundError("rate the cell with 👍/👎 (value 1 or -1), a score from 1 to 5, or both")
        result = {}
        if value not in (None, 0):
            result["rating_id"] = self.feedback.rate(int(turn_id), int(value), list(reasons or []), comment)
        if score not in (None, 0):
            result["score_id"] = self.store.record_score(int(turn_id), int(score), comment)
        return result
