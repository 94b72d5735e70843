"""The one seam between the services and generation.

Everything above the engine asks one question: "stream this rendered prompt (or these prompts)
with these params, stop strings and cancel event". A backend answers it:

* ``LocalBackend``: transformers in this process, on CPU or CUDA. Concurrent answers from one
  model share forward passes in its ``ServingEngine`` (``engine/serving.py``, continuous
  batching); a model the engine cannot batch without changing a row's numbers streams each
  answer on its own worker thread (``generation.stream``). A notebook grid's prompts run as
  canonical-shape batches (``batching.stream_batch``).
* ``ZeroGPUBackend`` (``engine/zerogpu.py``): the same code inside a ``@spaces.GPU`` generator
  on a Hugging Face ZeroGPU Space, with only picklable values crossing the process boundary.

Services, storage and the UI never learn which one ran; ``label`` is what the stored turn
records as its device.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence

from playground.engine import batching
from playground.engine.batching import BatchShape, RowEvent
from playground.engine.generation import legacy as generation
from playground.engine.generation.legacy import StreamEvent
from playground.engine.generation.params import GenerationParams
from playground.engine.models.loader import LoadedModel
from playground.engine.serving import ServingEngine, probe
from playground.engine.threads import isolated


class LocalBackend:
    name = "local"

    def __init__(self, serving_rows: int = 16):
        self.serving_rows = serving_rows  # live rows per serving engine; below 2, every answer runs alone
        self._engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model → engine or None
        self._lock = threading.Lock()

    def engine(self, loaded: LoadedModel) -> ServingEngine | None:
        """The model's serving engine (probed once per loaded model), or None when it must run alone."""
        if self.serving_rows < 2:
            return None
        with self._lock:
            if loaded.model not in self._engines:
                width = isolated(probe, loaded.model, loaded.tokenizer, self.serving_rows)
                engine = ServingEngine(loaded.model, loaded.tokenizer, self.serving_rows, width)
                self._engines[loaded.model] = engine if width != "off" else None
            return self._engines[loaded.model]

    def label(self, loaded: LoadedModel) -> str:
        return loaded.device

    def stream(
        self,
        loaded: LoadedModel,
        prompt: str,
        params: GenerationParams,
        stop: Sequence[str] = (),
        context_length: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[StreamEvent]:
        engine = self.engine(loaded)
        if engine is not None:
            return engine.stream(prompt, params, stop, context_length, cancel)
        return generation.stream(loaded.model, loaded.tokenizer, prompt, params, stop, context_length, cancel)

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
        return batching.stream_batch(
            loaded.model, loaded.tokenizer, prompts, seeds, params, shape, stop, context_length, cancel
        )
