"""The remote backend: a model served by an OpenAI-compatible server (vLLM, SGLang, llama.cpp's
server, ``transformers serve``), through the maintained ``openai`` client.

The playground still renders the card's exact template and sends the raw prompt to
``/v1/completions`` with streaming, its stop strings and sampling parameters, so the card is
reproduced exactly; ``/v1/chat/completions`` (the server's own template) is used only when the
preset says ``template: {kind: server}``. ``top_k`` and ``repetition_penalty`` are not in OpenAI's
API; ``model.server`` says how that server takes them (``extra_fields``): vLLM and SGLang read
``top_k`` and ``repetition_penalty`` as extra body fields, llama.cpp's server ``top_k`` and
``repeat_penalty``; ``transformers serve`` refuses unknown fields and maps ``frequency_penalty``
to ``1 + repetition_penalty`` (no top-k); the OpenAI API itself takes neither. Stop strings are
applied here only (never sent), so one split across chunks is still cut, and the server's "stop" can
only mean its end of sequence: what is stored says which one ended the answer.
Tokens, TTFT and tokens/s come from the stream and its ``usage``. Closing the stream (Stop, a
closed tab) closes the HTTP response, and a server stops generating for a closed connection.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from playground.engine.backends.base import Origin, Rendered, render_with
from playground.engine.generation.params import GenerationParams
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

CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10.0, 120.0


def explain(spec: ModelSpec, exc: BaseException) -> PlaygroundError:
    """A failure of the server, said with the server's address and what to do."""
    import openai

    server = spec.base_url
    if isinstance(exc, openai.APITimeoutError):
        return PlaygroundError(
            f"{server} did not answer within {READ_TIMEOUT_S:.0f} s (timeout); is it overloaded?"
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        return PlaygroundError(
            f"cannot reach {server} ({type(cause).__name__ if cause else 'connection error'}: {cause or exc}); "
            "is the server running at that address? Start it, or fix model.base_url in the preset"
        )
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        where = (
            f"set the environment variable {spec.api_key_env}"
            if spec.api_key_env
            else "add model.api_key_env"
        )
        return PlaygroundError(
            f"{server} refused the request (HTTP {exc.status_code}): the API key is missing or not allowed; {where}"
        )
    if isinstance(exc, openai.NotFoundError):
        return PlaygroundError(
            f"{server} does not serve a model named {spec.served_model!r} (HTTP 404); "
            f"GET {server.rstrip('/')}/models lists what it serves: fix model.served_model in the preset"
        )
    if isinstance(exc, openai.RateLimitError):
        return PlaygroundError(f"{server} is rate-limiting requests (HTTP 429); wait a moment and try again")
    if isinstance(exc, openai.APIStatusError):
        detail = exc.body.get("detail", exc.body) if isinstance(exc.body, dict) else (exc.body or exc.message)
        return PlaygroundError(
            f"{server} failed with HTTP {exc.status_code}: {detail}. If the model name is wrong, some servers "
            f"answer 500: check that {spec.served_model!r} is what GET {server.rstrip('/')}/models lists"
        )
    if isinstance(exc, openai.APIError):
        return PlaygroundError(
            f"the connection to {server} broke mid-answer ({exc}); the server may have stopped"
        )
    return PlaygroundError(f"{server}: {type(exc).__name__}: {exc}")


def extra_fields(server: str, params: GenerationParams, sampling: bool) -> dict:
    """top_k and repetition_penalty, the way ``server`` accepts them."""
    top_k = params.top_k if sampling and params.top_k > 0 else None
    penalty = params.repetition_penalty if params.repetition_penalty != 1.0 else None
    if server in ("vllm", "sglang"):
        return {"top_k": top_k or -1, **({"repetition_penalty": penalty} if penalty else {})}
    if server == "llama.cpp":
        return {"top_k": top_k or 0, **({"repeat_penalty": penalty} if penalty else {})}
    if server == "transformers":
        return {"frequency_penalty": penalty - 1.0} if penalty else {}
    return {}


class RemoteBackend:
    name = "openai-compatible"

    def __init__(self, concurrency: int = 8):
        self.concurrency = concurrency  # requests of one ``stream`` call in flight at once (a grid's rows)
        self._clients: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def waiting_for(
        self, preset: Preset, revision: str | None = None, quantization: str | None = None
    ) -> str | None:
        return None

    @contextmanager
    def open(
        self, preset: Preset, revision=None, quantization=None, progress=None
    ) -> Iterator[RemoteSession]:
        yield RemoteSession(self, preset)

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

    def stream_one(
        self, spec: ModelSpec, index: int, request: GenerationRequest, cancel: threading.Event
    ) -> Iterator[GenerationEvent]:
        """Stream a raw prompt (``/v1/completions``) or messages (``/v1/chat/completions``).

        Always ends with one final event: its finish reason is what the server said (``length``, or
        ``eos`` for its "stop": stop strings are not sent, they are cut here, so the server's stop is
        its end of sequence), ``stop_string`` when one was cut here, ``stopped`` when we stopped it,
        and ``error`` (with the text that arrived) when the stream broke or ended without a reason.
        """
        params = request.params
        sampling = request.sampling
        body = {
            "model": spec.served_model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature if sampling else 0.0,
            "top_p": params.top_p if sampling else 1.0,
            "seed": request.seed,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        extra = extra_fields(spec.server, params, sampling)
        if extra:
            body["extra_body"] = extra
        started = time.perf_counter()
        stats, text, reason, filt = (
            GenerationStats(prompt_tokens=None),
            "",
            None,
            StopStringFilter(request.stop),
        )
        error = None
        api = self.client(spec)
        try:
            if request.messages is None:
                response = api.completions.create(prompt=request.prompt, **body)
            else:
                response = api.chat.completions.create(messages=list(request.messages), **body)
        except Exception as exc:  # noqa: BLE001 - every client failure becomes the server's message
            raise explain(spec, exc) from None
        try:
            for chunk in response:
                if chunk.usage is not None:
                    stats.prompt_tokens = chunk.usage.prompt_tokens or stats.prompt_tokens
                    stats.completion_tokens = chunk.usage.completion_tokens or stats.completion_tokens
                for choice in chunk.choices or []:
                    piece = choice.text if request.messages is None else (choice.delta.content or "")
                    reason = choice.finish_reason or reason
                    if piece:
                        stats.ttft_s = (
                            stats.ttft_s if stats.ttft_s is not None else time.perf_counter() - started
                        )
                        stats.completion_tokens += 1  # one chunk per token; ``usage`` corrects it at the end
                        delta = filt.push(piece)
                        stats.total_s = time.perf_counter() - started
                        if delta:
                            text += delta
                            yield GenerationEvent(index, delta, text, request.seed, stats=stats)
                if filt.stopped_on is not None or cancel.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - a broken stream is the server's failure
            error = f"the stream from {spec.base_url} broke after {len(text)} characters had arrived: {explain(spec, exc)}"
        finally:
            response.close()  # closes the HTTP response: the server stops generating
        tail = "" if error else filt.flush()
        text += tail
        stats.total_s = time.perf_counter() - started
        stopped_here = filt.stopped_on is not None or cancel.is_set()
        if error is None and reason is None and not stopped_here:
            error = (
                f"the server ended the stream without a finish reason after {len(text)} characters "
                f"({spec.base_url}; some servers end a running stream when another request arrives)"
            )
        finish = finish_reason(
            stop_string=filt.stopped_on is not None,
            cancelled=cancel.is_set(),
            eos=reason == "stop",
            length=reason == "length",
            error=error is not None,
        )
        yield GenerationEvent(index, tail, text, request.seed, True, finish, stats, error)


class RemoteSession:
    """A served preset: the card's template rendered here, the server does the rest."""

    def __init__(self, backend: RemoteBackend, preset: Preset):
        self.backend, self.preset, self.spec = backend, preset, preset.model
        self.origin = Origin(
            revision=f"{self.spec.served_model}@{self.spec.base_url}",
            quantization="",
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
        merged as they come, a failed one ending with an ``error`` event."""
        cancel = cancel or threading.Event()
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
