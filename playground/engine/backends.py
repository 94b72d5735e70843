"""The one seam between the services and generation.

Everything above the engine asks one question: "stream this rendered prompt (or these prompts)
with these params, stop strings and cancel event". A backend answers it:

* ``LocalBackend``: transformers in this process, on CPU or CUDA; one prompt streams on a worker
  thread (``generation.stream``), many prompts run as canonical-shape batches
  (``batching.stream_batch``).
* ``ZeroGPUBackend`` (``engine/zerogpu.py``): the same code inside a ``@spaces.GPU`` generator
  on a Hugging Face ZeroGPU Space, with only picklable values crossing the process boundary.

Services, storage and the UI never learn which one ran; ``label`` is what the stored turn
records as its device.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from playground.engine import batching, generation
from playground.engine.batching import BatchShape, RowEvent
from playground.engine.generation import StreamEvent
from playground.engine.loader import LoadedModel
from playground.engine.params import GenerationParams


class LocalBackend:
    name = "local"

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
