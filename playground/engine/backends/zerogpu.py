"""The ZeroGPU backend: the generation engine inside one ``@spaces.GPU`` generator.

On a ZeroGPU Space each call of a decorated function runs in a forked worker: its arguments and
every value it yields are pickled, and nothing it changes reaches the main process. So:

* what crosses is small and picklable: a ``GPURequest`` (the model's cache key, the
  ``GenerationRequest``s as they are, the layout the probe chose) going in, and plain dicts
  (``GenerationEvent.as_dict``) coming out; never a model, tokenizer or database session;
* the worker finds the model in the one model cache, inherited through the fork (models are loaded
  in the main process on the CPU and moved with ``.to("cuda")``, which ZeroGPU replays in each
  worker), and answers with a fresh ``Engine`` of the same code as the local backend: a request
  gives the same text here as on a local machine with the same device and dtype;
* the first call for a model runs the probe inside the worker (where the GPU is) and yields its
  result first; the main process keeps it and sends the layout with every later call;
* turns are stored by the main process from what was streamed; stopping (the Stop button, a
  closed tab) closes the GPU generator, whose ``finally`` ends the engine's rows within one pass.

``gpu_duration`` asks ZeroGPU for a slot as long as the request needs at the model's measured speed
(plus copying its weights to the GPU), capped. Without ``SPACES_ZERO_GPU`` the decorator returns
the function as it is, so the same path runs (and is tested) on any machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from playground.engine.backends.base import MachineBackend
from playground.engine.generation.engine import Engine
from playground.engine.generation.probe import probe
from playground.engine.generation.request import GenerationEvent, GenerationRequest, GenerationStats
from playground.engine.generation.runner import Layout
from playground.engine.models.device import ZEROGPU_SLOT_BYTES
from playground.engine.models.loader import LoadedModel, LoadRequest
from playground.engine.threads import isolated

try:  # must come before anything touches CUDA on a Space; absent locally is fine
    import spaces

    GPU = spaces.GPU
except ImportError:  # pragma: no cover - the decorator is a no-op outside a Space anyway

    def GPU(task=None, **_kwargs):  # noqa: N802 - the decorator's name in the spaces package
        return task if callable(task) else (lambda fn: fn)


SLOT_BYTES = ZEROGPU_SLOT_BYTES
MAX_DURATION_S = 120  # ZeroGPU's default limit for one call; longer asks queue badly
BASE_OVERHEAD_S = 3.0  # scheduling, worker start, tokenisation
COPY_BYTES_PER_S = 2.0 * 1024**3  # weights copied to the GPU when a worker starts (conservative)
DEFAULT_TOKENS_PER_S = 15.0  # before a model's own speed has been measured
PREFILL_TOKENS_PER_S = 2000.0
PROBE_S = 5.0  # the first call of a model also probes it

_CACHE = None  # the one model cache, registered by the backend so a forked worker finds its models


@dataclass(frozen=True)
class GPURequest:
    """Everything a GPU worker needs, all picklable."""

    model: LoadRequest
    requests: tuple[GenerationRequest, ...]
    layout: Layout | None = None  # None: probe first (in the worker) and yield the result
    rows: int = 16  # the most rows a pass may hold (the probe's candidate layouts)
    prompt_tokens: int = 0  # the longest prompt, for the duration estimate
    tokens_per_s: float = DEFAULT_TOKENS_PER_S
    weights_bytes: int = 0


def gpu_duration(request: GPURequest) -> int:
    """Seconds to ask for: overhead + copying the weights + prefill + every new token at the measured
    speed (rows beyond one pass run in later passes), with 25% headroom; capped at ``MAX_DURATION_S``."""
    rows = request.layout.rows if request.layout else 1
    waves = -(-len(request.requests) // max(rows, 1))
    longest = max(r.params.max_new_tokens for r in request.requests)
    need = (
        BASE_OVERHEAD_S
        + (PROBE_S if request.layout is None else 0.0)
        + request.weights_bytes / COPY_BYTES_PER_S
        + waves * request.prompt_tokens / PREFILL_TOKENS_PER_S
        + waves * longest / max(request.tokens_per_s, 0.1)
    )
    return int(min(MAX_DURATION_S, -(-need * 1.25 // 1)))


def _resident(key: LoadRequest) -> LoadedModel:
    if _CACHE is None:
        raise RuntimeError("the ZeroGPU backend was not set up in the main process before the fork")
    return _CACHE.get(key)


@GPU(duration=gpu_duration)
def generate_on_gpu(request: GPURequest) -> Iterator[dict]:
    """The one GPU function: the requests through a fresh engine; yields plain dicts."""
    loaded = _resident(request.model)
    layout = request.layout
    if layout is None:
        result = isolated(probe, loaded.model, loaded.tokenizer, request.rows)  # never on the forked thread
        layout = result.layout
        yield {"probe": result}
    events = Engine(loaded.model, loaded.tokenizer, layout).stream(request.requests)
    try:
        for event in events:  # closing this generator closes ``events``: the engine drops the rows
            yield event.as_dict()
    finally:
        events.close()


Runner = Callable[[GPURequest], Iterator[dict]]


@dataclass
class SpeedBook:
    """Measured decode speed per model (main process), for the next duration estimate."""

    speeds: dict[LoadRequest, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, key: LoadRequest, stats: GenerationStats) -> None:
        tokens, seconds = stats.completion_tokens, stats.total_s
        if tokens >= 8 and seconds > 0:
            with self.lock:
                old = self.speeds.get(key)
                speed = tokens / seconds
                self.speeds[key] = speed if old is None else 0.7 * old + 0.3 * speed

    def get(self, key: LoadRequest) -> float:
        with self.lock:
            return self.speeds.get(key, DEFAULT_TOKENS_PER_S)


class ZeroGPUBackend(MachineBackend):
    """Streams through ``generate_on_gpu``; ``runner`` is how it is called (ZeroGPU's decorator, or
    a test's forked worker)."""

    name = "zerogpu"

    def __init__(self, cache, runner: Runner | None = None, serving_rows: int = 16):
        global _CACHE
        _CACHE = cache
        super().__init__(cache)
        self.runner = runner or generate_on_gpu
        self.serving_rows = serving_rows
        self.speeds = SpeedBook()

    def label(self, loaded: LoadedModel) -> str:
        return f"zerogpu:{loaded.device}"

    def stream(
        self, loaded: LoadedModel, requests: Sequence[GenerationRequest], cancel: threading.Event | None
    ) -> Iterator[GenerationEvent]:
        cancel = cancel or threading.Event()
        known = self._probes.get(loaded.request)
        gpu = GPURequest(
            model=loaded.request,
            requests=tuple(requests),
            layout=known.layout if known else None,
            rows=self.serving_rows,
            prompt_tokens=max(len(loaded.tokenizer(r.prompt)["input_ids"]) for r in requests),
            tokens_per_s=self.speeds.get(loaded.request),
            weights_bytes=loaded.footprint_bytes,
        )
        texts: dict[int, str] = {}
        running: dict[int, GenerationStats] = {i: GenerationStats() for i in range(len(requests))}
        items = self.runner(gpu)
        try:
            for item in items:
                if "probe" in item:
                    self._probes[loaded.request] = item["probe"]
                    continue
                index = item["index"]
                texts[index] = texts.get(index, "") + item["delta"]
                stats = GenerationStats.from_dict(item["stats"])
                event = GenerationEvent(
                    index,
                    item["delta"],
                    texts[index],
                    item["seed"],
                    item["done"],
                    item["finish_reason"],
                    stats,
                    item["error"],
                )
                running[index] = stats
                if event.done:
                    del running[index]
                    self.speeds.note(loaded.request, stats)
                yield event
                if cancel.is_set():
                    break
        finally:
            items.close()  # on ZeroGPU: the worker's generator is closed and its rows stop
        for index, stats in sorted(running.items()):  # stopped: rows in progress end as they do locally
            yield GenerationEvent(
                index, "", texts.get(index, ""), requests[index].seed, True, "stopped", stats
            )
