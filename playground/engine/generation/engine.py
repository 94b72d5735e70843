"""The local generation engine: one per loaded model, every local answer goes through it.

A scheduler loop on its own thread (continuous batching):

* requests submitted together (a grid's rows, a Compare round's columns on one model) are admitted
  together and, where the model's layout allows, prefilled in one pass; a request that arrives
  while others decode is prefilled in the next pass, beside their decode;
* every pass is one ``runner.forward``; the next token of every row comes from ``sampler.pick``
  (each row's own params and seeded generator) and goes through that row's ``AnswerOutput``
  (detokenising, stop strings, end of sequence, stats, finish reason);
* a row leaves as soon as it is finished, cancelled or its consumer is gone, and frees its slot.

The layout (packed, fixed or single: ``runner.py``) comes from the start-up probe, so a request
gives the same text alone, among others, in a grid or on replay. Every engine of a backend computes
on one thread (``ComputeLoop``), which ends after ``IDLE_S`` without work.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from playground.engine.generation.output import AnswerOutput, eos_ids
from playground.engine.generation.request import GenerationEvent, GenerationRequest
from playground.engine.generation.runner import Layout, RowState, make_runner
from playground.engine.generation.sampler import RowSampling, pick
from playground.engine.threads import start_thread
from playground.errors import PlaygroundError, explain_failure

log = logging.getLogger(__name__)
IDLE_S = 60.0  # the compute thread ends after this long without work
POOL_IDLE_S = 10.0  # an engine's KV memory is freed after this long without work


@dataclass(eq=False)
class _Group:
    """The requests of one ``stream`` call: their events go to one queue."""

    events: queue.Queue = field(default_factory=queue.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    left: threading.Event = field(default_factory=threading.Event)  # the consumer is gone

    @property
    def over(self) -> bool:
        return self.cancel.is_set() or self.left.is_set()


@dataclass(eq=False)
class _Row:
    group: _Group
    output: AnswerOutput
    sampling: RowSampling
    state: RowState


class Engine:
    def __init__(self, model, tokenizer, layout: Layout, loop: ComputeLoop | None = None):
        self.tokenizer = tokenizer
        self.runner = make_runner(model, layout)
        self.layout = self.runner.layout
        self.eos = eos_ids(model, tokenizer)
        self.loop = loop or ComputeLoop()
        self._pending: deque[_Row] = deque()
        self._live: list[_Row] = []
        self._lock = threading.Lock()
        self.idle_since = time.monotonic()
        self.passes = 0
        self.peak_rows = 0

    # ------------------------------------------------------------------ requests

    def stream(
        self, requests: Sequence[GenerationRequest], cancel: threading.Event | None = None
    ) -> Iterator[GenerationEvent]:
        """Events of every request (``event.index`` = its position), ending with one final event each.

        A request that cannot run (its prompt does not fit the context) gets a final ``error`` event
        at once; the others run.
        """
        group = _Group(cancel=cancel or threading.Event())
        rows, failed = [], []
        for index, request in enumerate(requests):
            ids = self.tokenizer(request.prompt)["input_ids"]
            output = AnswerOutput(index, request, self.tokenizer, self.eos, len(ids))
            try:
                request.params.check_context(len(ids), request.context_length)
            except PlaygroundError as exc:
                failed.append(output.finish(error=str(exc)))
                continue
            sampling = RowSampling(request.params, ids, self.runner.device)
            rows.append(_Row(group, output, sampling, RowState(list(ids))))
        yield from failed
        if not rows:
            return
        self._submit(rows)
        remaining = len(rows)
        try:
            while remaining:
                batch = [group.events.get()]
                while not group.events.empty():  # coalesce what arrived meanwhile, per request
                    batch.append(group.events.get_nowait())
                for event in _coalesce(batch):
                    remaining -= event.done
                    yield event
        finally:
            group.left.set()  # rows still running leave at the next pass

    def _submit(self, rows: list[_Row]) -> None:
        with self._lock:
            self._pending.extend(rows)
        self.loop.wake(self)

    # ------------------------------------------------------------------ one turn of the loop

    @property
    def busy(self) -> bool:
        return bool(self._live or self._pending)

    def step(self) -> None:
        """Retire finished rows, admit waiting ones, run one pass."""
        live = self._live
        self._retire(live)
        fresh = self._admit(live)
        if live:
            self._pass(live, fresh)
            self._retire(live)  # a row that finished in this pass leaves now: its final event goes at once
        if not self.busy:
            self.idle_since = time.monotonic()

    def fail(self, exc: BaseException) -> None:
        """End every row of this engine with the error (its step could not run)."""
        with self._lock:
            rows = self._live + list(self._pending)
            self._live.clear()
            self._pending.clear()
        error = str(explain_failure(exc))
        for row in rows:
            row.group.events.put(row.output.finish(error=error))

    def _admit(self, live: list[_Row]) -> list[_Row]:
        fresh = []
        with self._lock:
            while self._pending and len(live) < self.runner.rows:
                if fresh and not self.runner.prefill_together:
                    break
                row = self._pending.popleft()
                if row.group.over:
                    row.group.events.put(row.output.finish(cancelled=True))
                    continue
                row.state.slot = len(live)
                row.output.start()
                live.append(row)
                fresh.append(row)
        return fresh

    def _pass(self, live: list[_Row], fresh: list[_Row]) -> None:
        decoding = [r for r in live if r not in fresh]
        self.runner.reserve(
            max(len(r.state.prompt) + r.sampling.params.max_new_tokens for r in live), len(live)
        )
        self.passes += 1
        self.peak_rows = max(self.peak_rows, len(live))
        try:
            logits = self.runner.forward([r.state for r in decoding], [r.state for r in fresh])
            ordered = decoding + fresh
            tokens = pick([r.sampling for r in ordered], logits)
        except Exception as exc:  # noqa: BLE001 - a failed pass fails its rows, with the cause
            error = str(explain_failure(exc))
            for row in live:
                row.group.events.put(row.output.finish(error=error))
            live.clear()
            return
        for row, token in zip(ordered, tokens, strict=True):
            row.state.next_token = token
            row.sampling.saw(token)
            event = row.output.push(token)
            if event is not None:
                row.group.events.put(event)

    def _retire(self, live: list[_Row]) -> None:
        """End the rows that are done; keep the others in slots 0..n-1 (the last row fills a hole)."""
        i = 0
        while i < len(live):
            row = live[i]
            if not (row.output.finished or row.group.over):
                i += 1
                continue
            row.group.events.put(row.output.finish(cancelled=row.group.over))
            last = live.pop()
            if last is not row:
                self.runner.move(last.state.slot, row.state.slot)
                last.state.slot = row.state.slot
                live[i] = last


class ComputeLoop:
    """The one thread on which a backend's engines compute, in turns: on a CPU one OpenMP team, since
    two threads running models at once outnumber the cores and slow both (``engine/threads.py``).

    Engines wake it when they get work; it runs one step of every busy engine in turn, frees the KV
    memory of an engine idle for ``POOL_IDLE_S``, and ends after ``idle_s`` without work (the next
    request starts it again)."""

    def __init__(self, idle_s: float = IDLE_S):
        self.idle_s = idle_s
        self._engines: weakref.WeakSet[Engine] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.running = False

    def wake(self, engine: Engine) -> None:
        with self._lock:
            self._engines.add(engine)
            self._wake.set()
            if not self.running:
                self.running = True
                start_thread(self._run, name="engine")

    def _run(self) -> None:
        idle_from = time.monotonic()
        with torch.inference_mode():
            while True:
                self._wake.clear()
                busy = [e for e in list(self._engines) if e.busy]
                for engine in busy:
                    try:
                        engine.step()
                    except BaseException as exc:  # noqa: BLE001 - never leave a consumer waiting on a dead loop
                        log.exception("the generation loop failed")
                        engine.fail(exc)
                if busy:
                    idle_from = time.monotonic()
                    continue
                for engine in list(self._engines):
                    if time.monotonic() - engine.idle_since > POOL_IDLE_S:
                        engine.runner.release_memory()
                if self._wake.wait(min(self.idle_s, POOL_IDLE_S)):
                    continue
                with self._lock:
                    if time.monotonic() - idle_from >= self.idle_s and not any(e.busy for e in self._engines):
                        for engine in self._engines:
                            engine.runner.release_memory()
                        self.running = False
                        return


def _coalesce(events: list[GenerationEvent]) -> list[GenerationEvent]:
    """Consecutive text events of one request become one (the final event always stays its own)."""
    merged: list[GenerationEvent] = []
    latest: dict[int, int] = {}
    for event in events:
        at = latest.get(event.index)
        if at is not None and not event.done and not merged[at].done:
            earlier = merged[at]
            merged[at] = GenerationEvent(
                event.index, earlier.delta + event.delta, event.text, event.seed, stats=event.stats
            )
            continue
        latest[event.index] = len(merged)
        merged.append(event)
    return merged


def run_alone(
    model, tokenizer, layout: Layout, requests: Sequence[GenerationRequest]
) -> list[GenerationEvent]:
    """Final events of ``requests`` through a fresh engine (tests, probes and benchmarks)."""
    finals = {}
    for event in Engine(model, tokenizer, layout).stream(requests):
        if event.done:
            finals[event.index] = event
    return [finals[i] for i in range(len(requests))]
