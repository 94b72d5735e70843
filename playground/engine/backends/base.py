"""The one seam between the services and generation.

Everything above the engine asks one question with one object: "stream these requests"
(``GenerationRequest``: rendered prompt, params with the seed resolved, stop strings, context
limit; cancel travels beside it). A ``Backend`` opens a preset's model for one use and hands back a
``ModelSession`` that renders prompts the way the model reads them and answers ``stream``:

* ``LocalBackend`` (``local.py``): transformers in this process, on CPU or CUDA, through the
  generation engine (``engine/generation/engine.py``);
* ``ZeroGPUBackend`` (``zerogpu.py``): the same engine inside a ``@spaces.GPU`` generator on a
  Hugging Face ZeroGPU Space, only picklable values crossing the process boundary;
* ``RemoteBackend`` (``remote.py``): an OpenAI-compatible server, fed the rendered prompt.

``Backends`` picks the one a preset needs, so services never branch on it; what ran is recorded
with every stored turn from ``ModelSession.origin``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from playground.engine.generation.request import GenerationEvent, GenerationRequest
from playground.engine.models.loader import LoadRequest, Progress
from playground.engine.models.presets import Preset
from playground.engine.models.templates import Message


@dataclass(frozen=True)
class Origin:
    """What a stored answer records about where it was computed."""

    revision: str  # commit sha (or the embedded model's package and GGUF hash, or what a server reports)
    quantization: str
    dtype: str
    device: str


@dataclass(frozen=True)
class Rendered:
    """A prompt as the model reads it: the exact text, and the chat messages for a server's template."""

    text: str
    messages: tuple[dict, ...] | None = None


class ModelSession(Protocol):
    """A preset's model, ready to answer for the time of one use."""

    origin: Origin
    context_length: int | None

    def render(self, messages: Sequence[Message], system_prompt: str | None) -> Rendered: ...

    def stream(
        self, requests: Sequence[GenerationRequest], cancel: threading.Event | None = None
    ) -> Iterator[GenerationEvent]: ...


class Backend(Protocol):
    name: str

    def open(
        self,
        preset: Preset,
        revision: str | None = None,
        quantization: str | None = None,
        progress: Progress | None = None,
    ) -> AbstractContextManager[ModelSession]: ...

    def waiting_for(
        self, preset: Preset, revision: str | None = None, quantization: str | None = None
    ) -> str | None:
        """What ``open`` will wait for first (a model to load), in words; None when it is ready."""
        ...


class Backends:
    """The backend of each preset: its server for a served model, else this machine's (local or ZeroGPU)."""

    def __init__(self, machine: Backend, remote: Backend):
        self.machine, self.remote = machine, remote

    def of(self, preset: Preset) -> Backend:
        return self.remote if preset.model.remote else self.machine

    def open(
        self,
        preset: Preset,
        revision: str | None = None,
        quantization: str | None = None,
        progress: Progress | None = None,
    ) -> AbstractContextManager[ModelSession]:
        return self.of(preset).open(preset, revision, quantization, progress)

    def waiting_for(
        self, preset: Preset, revision: str | None = None, quantization: str | None = None
    ) -> str | None:
        return self.of(preset).waiting_for(preset, revision, quantization)

    def batching(self, preset: Preset) -> dict | None:
        """How the preset's model is batched on this machine (the probe's result), once it was probed;
        None for a served model (its server batches) or one not used yet."""
        if preset.model.remote:
            return None
        result = self.machine.probe_result(LoadRequest.from_spec(preset.model))
        return result.as_json() if result else None


class MachineBackend:
    """A backend for models loaded on this machine (local or ZeroGPU): ``open`` holds the model in the
    one model cache for the session; subclasses answer ``stream(loaded, requests, cancel)``."""

    name = "machine"

    def __init__(self, cache):
        self.cache = cache
        self._probes: dict = {}  # load request → the engine's ProbeResult for that model here

    def label(self, loaded) -> str:
        return loaded.device

    def probe_result(self, request: LoadRequest):
        """What the start-up probe found for this model on this machine (None: not probed yet)."""
        return self._probes.get(request)

    def waiting_for(
        self, preset: Preset, revision: str | None = None, quantization: str | None = None
    ) -> str | None:
        request = LoadRequest.from_spec(preset.model, revision, quantization)
        return None if request in self.cache.loaded() else f"loading {request.label()}…"

    @contextmanager
    def open(
        self,
        preset: Preset,
        revision: str | None = None,
        quantization: str | None = None,
        progress: Progress | None = None,
    ) -> Iterator[ModelSession]:
        request = LoadRequest.from_spec(preset.model, revision, quantization)
        with self.cache.use(request, progress) as loaded:
            yield LoadedSession(self, preset, loaded)

    def stream(self, loaded, requests: Sequence[GenerationRequest], cancel: threading.Event | None):
        raise NotImplementedError


class LoadedSession:
    """A model of the model cache, answered by its machine backend."""

    def __init__(self, backend: MachineBackend, preset: Preset, loaded):
        self.backend, self.preset, self.loaded = backend, preset, loaded
        self.origin = Origin(
            loaded.resolved_revision, loaded.request.quantization, loaded.dtype, backend.label(loaded)
        )
        self.context_length = preset.model.context_length or loaded.context_length

    def render(self, messages: Sequence[Message], system_prompt: str | None) -> Rendered:
        return render_with(self.preset, messages, system_prompt, self.loaded.tokenizer)

    def stream(
        self, requests: Sequence[GenerationRequest], cancel: threading.Event | None = None
    ) -> Iterator[GenerationEvent]:
        return self.backend.stream(self.loaded, requests, cancel)


def render_with(
    preset: Preset, messages: Sequence[Message], system_prompt: str | None, tokenizer=None
) -> Rendered:
    """The preset's template applied to the conversation (``system_prompt`` None: the conversation's own
    system message, else the preset's; see ``resolve_system``)."""
    from playground.engine.models.templates import chat_messages, resolve_system

    system = resolve_system(messages, system_prompt, preset.system_prompt)
    if preset.template.kind == "server":
        import json

        chat = chat_messages(messages, system)
        return Rendered(json.dumps(chat, ensure_ascii=False), tuple(chat))
    return Rendered(preset.template.render(messages, system, tokenizer=tokenizer))
