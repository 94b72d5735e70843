"""Batched serving: concurrent requests for one loaded model share forward passes.

One ``ServingEngine`` per loaded model runs a loop on its own thread (continuous batching):

* a new request is prefilled on its own (one forward pass over its prompt) and joins the running
  batch at the next step; its first token is out as soon as its prefill is done;
* every decode step is one forward pass with a row per live request; a request that finishes
  (end of sequence, ``max_new_tokens``, a stop string, cancel, a consumer that left) leaves at
  once and frees its row;
* each row's next token comes from its own params and seeded generator
  (``sampling.pick_token``): repetition penalty over its own tokens, temperature, top-k, top-p.

A seeded answer is the same text alone or in a batch: attention is computed per row over the
request's own cache (``row_attention``), and ``probe`` checks at start that the batched products
give a row the same numbers whatever else is in the batch. If they do only at a fixed width, the
engine always runs ``max_rows`` rows (idle rows are skipped by attention); if not even then, the
model is served one request at a time (``generation.stream``). The loop thread ends after a
short idle time (see ``engine/threads.py`` for why compute threads must not live long).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from playground.engine.generation.legacy import _END, GenerationStats, StreamEvent, eos_ids, follow
from playground.engine.generation.params import GenerationParams
from playground.engine.row_attention import RowKV, RowStep, run_rows
from playground.engine.sampling import pick_token
from playground.engine.threads import start_thread

log = logging.getLogger(__name__)
IDLE_S = 2.0  # the loop thread ends after this long without requests
PROBE_PROMPTS = ("The capital of France is", "def fibonacci(n):", "Once upon a time, in a small village")


@dataclass(eq=False)
class _Request:
    ids: list[int]
    params: GenerationParams
    seed: int
    cancel: threading.Event
    finished: threading.Event
    tokens: queue.Queue = field(default_factory=queue.Queue)
    failure: list[BaseException] = field(default_factory=list)
    generated: int = 0

    def __post_init__(self):
        self.generator = torch.Generator(device="cpu").manual_seed(int(self.seed))
        self.cache = RowKV(capacity=len(self.ids) + self.params.max_new_tokens)

    @property
    def over(self) -> bool:
        return self.cancel.is_set() or self.finished.is_set()


class ServingEngine:
    def __init__(self, model, tokenizer, max_rows: int = 16, width: str = "rows"):
        self._model = weakref.ref(model)  # the model cache owns it: an evicted model is not kept alive here
        self.tokenizer = tokenizer
        self.max_rows, self.width = max_rows, width  # width: "rows" (live rows only) | "fixed"
        self.eos = eos_ids(model, tokenizer)
        self._pending: queue.Queue[_Request] = queue.Queue()
        self._lock = threading.Lock()
        self._running = False
        self.steps = 0
        self.peak_rows = 0

    @property
    def model(self):
        model = self._model()
        if model is None:
            raise RuntimeError(
                "the model was unloaded (evicted from the model cache); send the message again"
            )
        return model

    # ------------------------------------------------------------------ requests

    def stream(
        self,
        prompt: str,
        params: GenerationParams,
        stop: Sequence[str] = (),
        context_length: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[StreamEvent]:
        """The same contract as ``generation.stream``: text deltas, then a final event."""
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        ids = self.tokenizer(prompt)["input_ids"]
        stats = GenerationStats(prompt_tokens=len(ids))
        params.check_context(stats.prompt_tokens, context_length)
        seed = params.seed if params.seed is not None else random.randrange(2**32)
        request = _Request(list(ids), params, seed, cancel, threading.Event())
        self._submit(request)
        try:
            yield from follow(
                request.tokens,
                self.tokenizer,
                stop,
                self.eos,
                cancel,
                request.finished,
                stats,
                started,
                seed,
                lambda: None,
                request.failure,
            )
        finally:
            request.finished.set()  # a consumer that leaves frees its row at the next step

    def _submit(self, request: _Request) -> None:
        self._pending.put(request)
        with self._lock:
            if not self._running:
                self._running = True
                start_thread(self._loop, name="serving")

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        live: list[_Request] = []
        try:
            self._serve(live)
        except BaseException as exc:  # noqa: BLE001 - never leave a consumer waiting on a dead loop
            log.exception("the serving loop failed")
            with self._lock:
                self._running = False
            while True:
                try:
                    live.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            for request in live:
                request.failure.append(exc)
                request.tokens.put(_END)

    def _serve(self, live: list[_Request]) -> None:
        idle_since = time.monotonic()
        while True:
            live[:] = [r for r in live if not self._retire(r)]
            while len(live) < self.max_rows:
                try:
                    request = self._pending.get(block=not live, timeout=0.05 if not live else None)
                except queue.Empty:
                    break
                if self._start(request):
                    live.append(request)
            if not live:
                if time.monotonic() - idle_since > IDLE_S:
                    with self._lock:
                        if self._pending.empty():
                            self._running = False
                            return
                continue
            idle_since = time.monotonic()
            live[:] = [r for r in live if not self._retire(r)]
            if live:
                self._step(live)

    def _retire(self, request: _Request) -> bool:
        """End a request that is done; True if it has left the batch."""
        done = (
            request.over
            or request.generated >= request.params.max_new_tokens
            or (request.generated and request.ids[-1] in self.eos)
        )
        if done:
            request.tokens.put(_END)
        return done

    def _start(self, request: _Request) -> bool:
        if request.over:
            request.tokens.put(_END)
            return False
        try:
            logits = self.prefill(request)
            self._emit(request, logits)
        except Exception as exc:  # noqa: BLE001 - this request fails alone, with its cause
            request.failure.append(exc)
            request.tokens.put(_END)
            return False
        return True

    def _step(self, live: list[_Request]) -> None:
        try:
            logits = self.decode(live)
        except Exception as exc:  # noqa: BLE001 - a failed step fails its rows, with the cause
            for request in live:
                request.failure.append(exc)
                request.finished.set()
            return
        for row, request in enumerate(live):
            self._emit(request, logits[row])

    def _emit(self, request: _Request, logits: torch.Tensor) -> None:
        token = self.choose(request, logits)
        request.ids.append(token)
        request.generated += 1
        request.tokens.put([token])

    # ------------------------------------------------------------------ model passes

    @torch.inference_mode()
    def prefill(self, request: _Request) -> torch.Tensor:
        """One forward pass over the request's prompt alone; the last position's logits."""
        n = len(request.ids)
        device = self.model.device
        step = RowStep([(request.cache, 0)])
        out = run_rows(
            step,
            lambda: self.model(
                input_ids=torch.tensor([request.ids], device=device),
                position_ids=torch.arange(n, device=device)[None],
                use_cache=False,
            ),
        )
        if not step.calls:
            raise RuntimeError("this model's attention does not go through transformers' attention registry")
        request.cache.length = n
        return out.logits[0, -1].float()

    @torch.inference_mode()
    def decode(self, live: list[_Request]) -> torch.Tensor:
        """One forward pass with one row per live request (plus idle rows at a fixed width)."""
        width = self.max_rows if self.width == "fixed" else len(live)
        self.steps += 1
        self.peak_rows = max(self.peak_rows, len(live))
        rows = [(r.cache, r.cache.length) for r in live] + [None] * (width - len(live))
        tokens = [r.ids[-1] for r in live] + [0] * (width - len(live))
        positions = [r.cache.length for r in live] + [0] * (width - len(live))
        device = self.model.device
        out = run_rows(
            RowStep(rows),
            lambda: self.model(
                input_ids=torch.tensor(tokens, device=device)[:, None],
                position_ids=torch.tensor(positions, device=device)[:, None],
                use_cache=False,
            ),
        )
        for request in live:
            request.cache.length += 1
        return out.logits[: len(live), -1].float()

    def choose(self, request: _Request, logits: torch.Tensor) -> int:
        """The row's next token from its own logits, params and seeded generator."""
        seen = torch.tensor(request.ids, device=logits.device)
        return pick_token(logits.cpu(), seen.cpu(), request.params, request.generator)


def probe(model, tokenizer, max_rows: int) -> str:
    """How this model can be batched without changing any row's numbers: "rows", "fixed" or "off".

    Runs three prompts for a few greedy steps alone and together (a row's logits must match
    bit for bit), first with only live rows, then at a fixed width of ``max_rows``.
    """
    for width in ("rows", "fixed"):
        engine = ServingEngine(model, tokenizer, max_rows, width)
        try:
            alone = [_probe_logits(engine, [p])[0] for p in PROBE_PROMPTS]
            together = _probe_logits(engine, list(PROBE_PROMPTS))
        except Exception as exc:  # noqa: BLE001 - a model the engine cannot run is served one by one
            log.info("batched serving is off for %s: %s", type(model).__name__, exc)
            return "off"
        if all(torch.equal(a, b) for a, b in zip(alone, together, strict=True)):
            return width
    return "off"


def _probe_logits(engine: ServingEngine, prompts: list[str], steps: int = 3) -> list[torch.Tensor]:
    params = GenerationParams(max_new_tokens=steps + 1, do_sample=False)
    requests = [
        _Request(engine.tokenizer(p)["input_ids"], params, 0, threading.Event(), threading.Event())
        for p in prompts
    ]
    history = [[engine.prefill(r)] for r in requests]
    for _ in range(steps):
        for r, h in zip(requests, history, strict=True):
            r.ids.append(int(h[-1].argmax()))
        for r, logits in zip(requests, engine.decode(requests), strict=True):
            history[requests.index(r)].append(logits)
    return [torch.stack(h) for h in history]
