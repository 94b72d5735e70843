"""The remote backend: a model served by an OpenAI-compatible server (vLLM, SGLang, llama.cpp's
server, ``transformers serve``, TGI-compatible servers), through the maintained ``openai`` client.

The playground still renders the card's exact template and sends the raw prompt to
``/v1/completions`` with streaming, so the card is reproduced exactly; ``/v1/chat/completions`` (the
server's own template) is used only when the preset says ``template: {kind: server}``. What is
stored is what ran:

* the server is asked which models it serves on a preset's first use (``remote_models.py``): a
  name it does not serve is refused, and what it reports (id, weights file, quantisation) is the
  stored turn's revision;
* every stored sampling parameter, the seed included, is sent under that server's own name for it,
  and one the server cannot take is refused before the request (``remote_params.py``);
* the finish reason comes only from what the server said: ``length``, its end of sequence
  (``eos``), or ``stop_string``. Stop strings are cut here (never sent, so one split across chunks
  is still cut, and the server's "stop" is its end of sequence, unless it names the stop string that
  matched, as vLLM and SGLang do). A stream that ends without a reason is ``error`` with the text
  that arrived (llama-cpp-python's server ends a running stream that way when another request
  arrives), ``stopped`` when we stopped it; one that breaks after it started says so;
* ``prompt_tokens`` is the server's ``usage``, else counted here with the preset's tokenizer when it
  is in the local cache, else unknown (None).

Closing the stream (Stop, a closed tab) closes the HTTP response, and a server stops generating for
a closed connection.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from playground.engine.backends.base import Origin, Rendered, render_with
from playground.engine.backends.remote_errors import (
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    broke_mid_answer,
    explain,
)
from playground.engine.backends.remote_models import ServedModel, ask_served_model
from playground.engine.backends.remote_params import sent_params
from playground.engine.generation.request import (
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    finish_reason,
)
from playground.engine.generation.textstream import StopStringFilter
from playground.engine.models.presets import ModelSpec, Preset
from playground.engine.models.templates import Message
from playground.errors import PlaygroundError


class RemoteBackend:
    name = "openai-compatible"

    def __init__(self, concurrency: int = 8):
        self.concurrency = concurrency  # requests of one ``stream`` call in flight at once (a grid's rows)
        self._clients: dict[tuple[str, str], object] = {}
        self._served: dict[tuple[str, str], ServedModel] = {}  # (base_url, name) → what the server said
        self._tokenizers: dict[tuple[str, str], object] = {}  # (model id, revision) → its local tokenizer
        self._lock = threading.Lock()

    def waiting_for(
        self, preset: Preset, revision: str | None = None, quantization: str | None = None
    ) -> str | None:
        return None

    @contextmanager
    def open(
        self, preset: Preset, revision=None, quantization=None, progress=None
    ) -> Iterator[RemoteSession]:
        yield RemoteSession(self, preset, self.served(preset.model))

    def client(self, spec: ModelSpec):
        import httpx
        import openai

        key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
        with self._lock:
            if (spec.base_url, key) not in self._clients:
                self._clients[(spec.base_url, key)] = openai.OpenAI(
                    base_url=spec.base_url,
                    api_key=key or "no-key",
                    timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                    max_retries=0,  # a failure is shown at once, with its cause
                )
            return self._clients[(spec.base_url, key)]

    def served(self, spec: ModelSpec) -> ServedModel:
        """What the server reports for the preset's model, asked once (again after a failure)."""
        key = (spec.base_url, spec.served_model)
        with self._lock:
            if key in self._served:
                return self._served[key]
        model = ask_served_model(self.client(spec), spec)
        with self._lock:
            self._served[key] = model
        return model

    def forget(self, spec: ModelSpec) -> None:
        """The server failed: ask it again what it serves next time (it may have restarted with another)."""
        with self._lock:
            self._served.pop((spec.base_url, spec.served_model), None)

    def count_tokens(self, spec: ModelSpec, prompt: str) -> int | None:
        """The prompt's tokens by the preset's tokenizer when it is in the local cache, else None (a miss
        is not remembered: the tokenizer may be downloaded later, and a miss offline costs little)."""
        key = (spec.id, spec.revision)
        with self._lock:
            tokenizer = self._tokenizers.get(key)
        if tokenizer is None:
            from transformers import AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(
                    spec.id, revision=spec.revision, local_files_only=True
                )
            except Exception:  # noqa: BLE001 - not cached here (or no tokenizer at all): unknown
                return None
            with self._lock:
                self._tokenizers[key] = tokenizer
        return len(tokenizer(prompt)["input_ids"])

    def stream_one(
        self, spec: ModelSpec, index: int, request: GenerationRequest, cancel: threading.Event
    ) -> Iterator[GenerationEvent]:
        """Stream a raw prompt (``/v1/completions``) or messages (``/v1/chat/completions``); always ends
        with one final event whose finish reason is what the server said (see the module docstring)."""
        sent = sent_params(spec.server, request.params, request.seed, spec.base_url)
        body = {
            "model": spec.served_model,
            **sent.standard,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if sent.extra:
            body["extra_body"] = sent.extra
        started = time.perf_counter()
        stats, text, filt = GenerationStats(prompt_tokens=None), "", StopStringFilter(request.stop)
        reason, server_stop_string, error = None, False, None
        api = self.client(spec)
        try:
            if request.messages is None:
                response = api.completions.create(prompt=request.prompt, **body)
            else:
                response = api.chat.completions.create(messages=list(request.messages), **body)
        except Exception as exc:  # noqa: BLE001 - every client failure becomes the server's message
            self.forget(spec)
            raise explain(spec, exc) from None
        try:
            for chunk in response:
                if chunk.usage is not None:
                    stats.prompt_tokens = chunk.usage.prompt_tokens or stats.prompt_tokens
                    stats.completion_tokens = chunk.usage.completion_tokens or stats.completion_tokens
                for choice in chunk.choices or []:
                    piece = choice.text if request.messages is None else (choice.delta.content or "")
                    reason = choice.finish_reason or reason
                    server_stop_string = server_stop_string or matched_stop_string(choice)
                    if piece:
                        if stats.ttft_s is None:
                            stats.ttft_s = time.perf_counter() - started
                        stats.completion_tokens += 1  # one chunk per token; ``usage`` corrects it at the end
                        delta = filt.push(piece)
                        stats.total_s = time.perf_counter() - started
                        if delta:
                            text += delta
                            yield GenerationEvent(index, delta, text, request.seed, stats=stats)
                if filt.stopped_on is not None or cancel.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - a broken stream is the server's failure
            self.forget(spec)
            error = broke_mid_answer(spec, exc, len(text))
        finally:
            response.close()  # closes the HTTP response: the server stops generating
        tail = "" if error else filt.flush()
        text += tail
        stats.total_s = time.perf_counter() - started
        if stats.prompt_tokens is None and request.messages is None:
            stats.prompt_tokens = self.count_tokens(spec, request.prompt)
        stopped_here = filt.stopped_on is not None or cancel.is_set()
        if error is None and not stopped_here:
            error = unfinished(spec, reason, len(text))
        finish = finish_reason(
            stop_string=filt.stopped_on is not None or (reason == "stop" and server_stop_string),
            cancelled=cancel.is_set(),
            eos=reason == "stop",
            length=reason == "length",
            error=error is not None,
        )
        yield GenerationEvent(index, tail, text, request.seed, True, finish, stats, error)


def matched_stop_string(choice) -> bool:
    """Whether the server says a stop *string* ended the answer (vLLM's ``stop_reason``, SGLang's
    ``matched_stop``; a number there is a stop token, i.e. an end of sequence)."""
    extra = getattr(choice, "model_extra", None) or {}
    return any(isinstance(extra.get(k), str) for k in ("stop_reason", "matched_stop"))


def unfinished(spec: ModelSpec, reason: str | None, arrived: int) -> str | None:
    """The error for a stream that ended without a finish reason we can store, or None when it had one."""
    if reason in ("stop", "length"):
        return None
    if reason is None:
        return (
            f"the server ended the stream without a finish reason after {arrived} characters "
            f"({spec.base_url}): the answer was cut off, not finished (llama-cpp-python's server does this "
            "to a running answer when another request arrives, unless started with --interrupt_requests False)"
        )
    return f"the server ended the answer with finish reason {reason!r} after {arrived} characters ({spec.base_url})"


class RemoteSession:
    """A served preset: the card's template rendered here, the server does the rest."""

    def __init__(self, backend: RemoteBackend, preset: Preset, served: ServedModel):
        self.backend, self.preset, self.spec = backend, preset, preset.model
        self.origin = Origin(
            revision=served.revision(self.spec.base_url),
            quantization=served.quantization[:32],
            dtype="",
            device=f"remote:{self.spec.base_url}",
        )
        self.context_length = self.spec.context_length

    def render(self, messages: Sequence[Message], system_prompt: str | None) -> Rendered:
        return render_with(self.preset, messages, system_prompt)

    def stream(
        self, requests: Sequence[GenerationRequest], cancel: threading.Event | None = None
    ) -> Iterator[GenerationEvent]:
        """One request streams here; several go to the server at once (it batches them), their events
        merged as they come, a failed one ending with an ``error`` event. Parameters the server cannot
        take are refused before any request is sent."""
        cancel = cancel or threading.Event()
        for request in requests:
            sent_params(self.spec.server, request.params, request.seed, self.spec.base_url)
        if len(requests) == 1:
            yield from self.backend.stream_one(self.spec, 0, requests[0], cancel)
            return
        yield from merge_streams(self.spec, self.backend, requests, cancel)


def merge_streams(
    spec, backend: RemoteBackend, requests, cancel: threading.Event
) -> Iterator[GenerationEvent]:
    """At most ``backend.concurrency`` requests in flight; their events as they arrive. A request that
    fails to start ends with an ``error`` event, one never started after a stop with ``stopped``;
    leaving early stops the others at their next chunk."""
    from concurrent.futures import ThreadPoolExecutor

    events: queue.Queue = queue.Queue()
    left = threading.Event()

    def run(i: int, request: GenerationRequest) -> None:
        if left.is_set() or cancel.is_set():
            events.put(
                GenerationEvent(i, "", "", request.seed, True, "stopped", GenerationStats(prompt_tokens=None))
            )
            return
        try:
            for event in backend.stream_one(spec, i, request, cancel):
                events.put(event)
                if left.is_set():
                    break
        except PlaygroundError as exc:
            stats = GenerationStats(prompt_tokens=None)
            events.put(GenerationEvent(i, "", "", request.seed, True, "error", stats, str(exc)))

    pool = ThreadPoolExecutor(max_workers=backend.concurrency, thread_name_prefix="remote")
    for i, request in enumerate(requests):
        pool.submit(run, i, request)
    remaining = len(requests)
    try:
        while remaining:
            event = events.get()
            remaining -= event.done
            yield event
    finally:
        left.set()
        pool.shutdown(wait=False, cancel_futures=True)
