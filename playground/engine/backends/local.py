"""The local backend: models loaded in this process (CPU or CUDA), answered by the generation engine.

One ``Engine`` per loaded model, created on first use after the start-up probe has chosen its
layout (``engine/generation/probe.py``); the probe's result is kept for the Presets tab and
``/presets``. An engine is dropped with its model when the model cache evicts it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence

from playground.engine.backends.base import MachineBackend
from playground.engine.generation.engine import ComputeLoop, Engine
from playground.engine.generation.probe import ProbeRecord, probe
from playground.engine.generation.request import GenerationEvent, GenerationRequest
from playground.engine.models.cache import ModelCache
from playground.engine.models.loader import LoadedModel, LoadRequest
from playground.engine.threads import isolated


class LocalBackend(MachineBackend):
    name = "local"

    def __init__(self, cache: ModelCache, serving_rows: int = 16, probes: ProbeRecord | None = None):
        super().__init__(cache)
        self.record = probes or ProbeRecord(cache.cache_root / "probes.json")
        self.serving_rows = serving_rows  # most answers of one model in one pass; below 2: one at a time
        self._engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model → Engine
        self._locks: dict[LoadRequest, threading.Lock] = {}
        self._lock = threading.Lock()
        self.loop = ComputeLoop()  # every engine of this backend computes on its one thread

    def engine(self, loaded: LoadedModel) -> Engine:
        """The model's engine, probing the model first (once per loaded model)."""
        with self._lock:
            lock = self._locks.setdefault(loaded.request, threading.Lock())
        with lock:
            engine = self._engines.get(loaded.model)
            if engine is None:
                key = ProbeRecord.key(loaded, self.serving_rows)
                result = self.record.get(key)
                if result is None:
                    result = isolated(probe, loaded.model, loaded.tokenizer, self.serving_rows)
                    self.record.put(key, result)
                self._probes[loaded.request] = result
                engine = Engine(loaded.model, loaded.tokenizer, result.layout, self.loop)
                self._engines[loaded.model] = engine
            return engine

    def stream(
        self,
        loaded: LoadedModel,
        requests: Sequence[GenerationRequest],
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
        return self.engine(loaded).stream(requests, cancel)
