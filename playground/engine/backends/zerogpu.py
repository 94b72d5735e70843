"""The ZeroGPU backend: generation inside one ``@spaces.GPU`` generator, everything else outside.

On a ZeroGPU Space each call of a decorated function runs in a forked worker: its arguments and
every value it yields are pickled, and nothing it changes reaches the main process. So:

* what crosses is small and picklable: a ``GPURequest`` (the model's cache key, the rendered
  prompt, params as a dict, stop strings, the context length) going in, and plain dicts with a
  text delta and the stats coming out; never a model, tokenizer or database session;
* the worker finds the model in the one model cache, inherited through the fork: models are
  loaded in the main process (at start-up or on first use) on the CPU and moved with
  ``.to("cuda")``, which ZeroGPU records and replays on the real GPU in each worker;
* turns are stored by the main process from what was streamed;
* stopping (the Stop button, a closed tab) closes the GPU generator: ZeroGPU then closes the
  worker's generator, whose ``finally`` ends the generation thread within one token.

``gpu_duration`` asks ZeroGPU for a slot as long as the request needs at the model's measured
speed (plus the cost of copying its weights to the GPU), capped, so short answers get short slots
and better queue priority. Without ``SPACES_ZERO_GPU`` the decorator returns the function as it is,
so the same path runs (and is tested) on any machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from playground.engine import batching
from playground.engine.batching import BatchShape, RowEvent
from playground.engine.generation import legacy as generation
from playground.engine.generation.legacy import GenerationStats, StreamEvent
from playground.engine.generation.params import GenerationParams
from playground.engine.models.loader import LoadedModel, LoadRequest

try:  # must come before anything touches CUDA on a Space; absent locally is fine
    import spaces

    GPU = spaces.GPU
except ImportError:  # pragma: no cover - the decorator is a no-op outside a Space anyway

    def GPU(task=None, **_kwargs):  # noqa: N802 - the decorator's name in the spaces package
        return task if callable(task) else (lambda fn: fn)


SLOT_BYTES = 70 * 1024**3  # a "large" ZeroGPU slot: half of an H200
MAX_DURATION_S = 120  # ZeroGPU's default limit for one call; longer asks queue badly
BASE_OVERHEAD_S = 3.0  # scheduling, worker start, tokenisation
COPY_BYTES_PER_S = 2.0 * 1024**3  # weights copied to the GPU when a worker starts (conservative)
DEFAULT_TOKENS_PER_S = 15.0  # before a model's own speed has been measured
PREFILL_TOKENS_PER_S = 2000.0

_CACHE = None  # the one model cache, registered by the backend so a forked worker finds its models


@dataclass(frozen=True)
class GPURequest:
    """Everything a GPU worker needs, all picklable."""

    model: LoadRequest
    prompts: tuple[str, ...]
    params: dict
    stop: tuple[str, ...] = ()
    context_length: int | None = None
    seeds: tuple[int, ...] = ()  # batched requests only
    shape: tuple[int, int] | None = None  # (rows, bucket) for a batch; None: one streamed prompt
    prompt_tokens: int = 0  # the longest prompt, for the duration estimate
    tokens_per_s: float = DEFAULT_TOKENS_PER_S
    weights_bytes: int = 0


def gpu_duration(request: GPURequest) -> int:
    """Seconds to ask for: overhead + copying the weights + prefill + every new token at the measured
    speed, with 25% headroom; at least that, and at most ``MAX_DURATION_S``."""
    params = GenerationParams.model_validate(request.params)
    batches = 1
    if request.shape:
        rows = request.shape[0]
        batches = -(-len(request.prompts) // rows)
    need = (
        BASE_OVERHEAD_S
        + request.weights_bytes / COPY_BYTES_PER_S
        + batches * request.prompt_tokens / PREFILL_TOKENS_PER_S
        + batches * params.max_new_tokens / max(request.tokens_per_s, 0.1)
    )
    return int(min(MAX_DURATION_S, -(-need * 1.25 // 1)))


def _resident(key: LoadRequest) -> LoadedModel:
    if _CACHE is None:
        raise RuntimeError("the ZeroGPU backend was not set up in the main process before the fork")
    return _CACHE.get(key)


@GPU(duration=gpu_duration)
def generate_on_gpu(request: GPURequest) -> Iterator[dict]:
    """The one GPU function: stream one prompt, or run a batch; yields plain dicts."""
    loaded = _resident(request.model)
    params = GenerationParams.model_validate(request.params)
    if request.shape is None:
        events = generation.stream(
            loaded.model, loaded.tokenizer, request.prompts[0], params, request.stop, request.context_length
        )
        for event in events:  # closing this generator closes ``events``: the generation stops
            yield {
                "delta": event.delta,
                "done": event.done,
                "finish_reason": event.finish_reason,
                "stats": event.stats.as_dict(),
                "seed": event.seed,
            }
        return
    shape = BatchShape(*request.shape)
    steps = batching.stream_batch(
        loaded.model,
        loaded.tokenizer,
        request.prompts,
        request.seeds,
        params,
        shape,
        request.stop,
        request.context_length,
    )
    for step in steps:
        yield {
            "rows": [
                {
                    "row": e.row,
                    "delta": e.delta,
                    "done": e.done,
                    "finish_reason": e.finish_reason,
                    "stats": e.stats.as_dict(),
                }
                for e in step
            ]
        }


Runner = Callable[[GPURequest], Iterator[dict]]


@dataclass
class SpeedBook:
    """Measured decode speed per model (main process), for the next duration estimate."""

    speeds: dict[LoadRequest, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, key: LoadRequest, stats: dict) -> None:
        tokens, seconds = stats.get("completion_tokens") or 0, stats.get("total_s") or 0
        if tokens >= 8 and seconds > 0:
            with self.lock:
                old = self.speeds.get(key)
                speed = tokens / seconds
                self.speeds[key] = speed if old is None else 0.7 * old + 0.3 * speed

    def get(self, key: LoadRequest) -> float:
        with self.lock:
            return self.speeds.get(key, DEFAULT_TOKENS_PER_S)


class ZeroGPUBackend:
    """Streams through ``generate_on_gpu``; ``runner`` is how it is called (ZeroGPU's decorator, or
    a test's forked worker)."""

    name = "zerogpu"

    def __init__(self, cache, runner: Runner | None = None):
        global _CACHE
        _CACHE = cache
        self.cache = cache
        self.runner = runner or generate_on_gpu
        self.speeds = SpeedBook()

    def label(self, loaded: LoadedModel) -> str:
        return f"zerogpu:{loaded.device}"

    def _request(self, loaded, prompts, params, stop, context_length, **extra) -> GPURequest:
        longest = max(len(loaded.tokenizer(p)["input_ids"]) for p in prompts)
        return GPURequest(
            model=loaded.request,
            prompts=tuple(prompts),
            params=params.model_dump(),
            stop=tuple(stop),
            context_length=context_length,
            prompt_tokens=longest,
            tokens_per_s=self.speeds.get(loaded.request),
            weights_bytes=loaded.footprint_bytes,
            **extra,
        )

    def stream(
        self,
        loaded: LoadedModel,
        prompt: str,
        params: GenerationParams,
        stop: Sequence[str] = (),
        context_length: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[StreamEvent]:
        cancel = cancel or threading.Event()
        text, stats, seed = "", GenerationStats(), params.seed
        items = self.runner(self._request(loaded, [prompt], params, stop, context_length))
        try:
            for item in items:
                text += item["delta"]
                stats = GenerationStats.from_dict(item["stats"])
                seed = item["seed"]
                if item["done"]:
                    self.speeds.note(loaded.request, item["stats"])
                    yield StreamEvent(item["delta"], text, True, item["finish_reason"], stats, seed)
                    return
                yield StreamEvent(item["delta"], text, stats=stats, seed=seed)
                if cancel.is_set():
                    break
        finally:
            items.close()  # on ZeroGPU: the worker's generator is closed and its generation stops
        yield StreamEvent("", text, True, "stopped", stats, seed)

    def stream_batch(
        self,
        loaded: LoadedModel,
        prompts: Sequence[str],
        seeds: Sequence[int],
        params: GenerationParams,
        shape: BatchShape,
        stop: Sequence[str] = (),
        context_length: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[list[RowEvent]]:
        cancel = cancel or threading.Event()
        request = self._request(
            loaded,
            prompts,
            params,
            stop,
            context_length,
            seeds=tuple(seeds),
            shape=(shape.rows, shape.bucket),
        )
        texts: dict[int, str] = {}
        running: dict[int, GenerationStats] = {}  # rows with text and no final event yet
        items = self.runner(request)
        try:
            for item in items:
                step = []
                for row in item["rows"]:
                    index = row["row"]
                    texts[index] = texts.get(index, "") + row["delta"]
                    stats = GenerationStats.from_dict(row["stats"])
                    running[index] = stats
                    if row["done"]:
                        del running[index]
                        self.speeds.note(loaded.request, row["stats"])
                    step.append(
                        RowEvent(index, row["delta"], texts[index], row["done"], row["finish_reason"], stats)
                    )
                yield step
                if cancel.is_set():
                    break
        finally:
            items.close()  # on ZeroGPU: the worker's generator is closed and its batch stops
        if running:  # stopped: the rows in progress end as "stopped", as they do locally
            yield [RowEvent(i, "", texts[i], True, "stopped", s) for i, s in sorted(running.items())]
