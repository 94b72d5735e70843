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
also applied here, so one split across chunks or one a server ignores is still cut and never shown.
Tokens, TTFT and tokens/s come from the stream and its ``usage``. Closing the stream (Stop, a
closed tab) closes the HTTP response, and a server stops generating for a closed connection.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence

from playground.engine.generation.legacy import GenerationStats, StreamEvent
from playground.engine.generation.params import GenerationParams
from playground.engine.generation.textstream import StopStringFilter
from playground.engine.models.presets import ModelSpec
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

    def __init__(self):
        self._clients: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def label(self, spec: ModelSpec) -> str:
        return f"remote:{spec.base_url}"

    def where(self, spec: ModelSpec) -> dict[str, str]:
        """What a stored turn records as the served model's revision and device."""
        return {"revision": f"{spec.served_model}@{spec.base_url}", "device": self.label(spec)}

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

    def stream(
        self,
        spec: ModelSpec,
        prompt: str | list[dict],
        params: GenerationParams,
        stop: Sequence[str] = (),
        cancel: threading.Event | None = None,
    ) -> Iterator[StreamEvent]:
        """Stream a raw prompt (``/v1/completions``) or messages (``/v1/chat/completions``)."""
        cancel = cancel or threading.Event()
        sampling = params.do_sample and params.temperature > 0
        body = {
            "model": spec.served_model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature if sampling else 0.0,
            "top_p": params.top_p if sampling else 1.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        extra = extra_fields(spec.server, params, sampling)
        if extra:
            body["extra_body"] = extra
        if params.seed is not None:
            body["seed"] = params.seed
        if stop:
            body["stop"] = list(stop)[:4]  # OpenAI's limit; the filter below applies all of them
        started = time.perf_counter()
        stats, text, reason, filt = GenerationStats(), "", None, StopStringFilter(stop)
        api = self.client(spec)
        try:
            if isinstance(prompt, str):
                response = api.completions.create(prompt=prompt, **body)
            else:
                response = api.chat.completions.create(messages=prompt, **body)
        except Exception as exc:  # noqa: BLE001 - every client failure becomes the server's message
            raise explain(spec, exc) from None
        try:
            for chunk in response:
                if chunk.usage is not None:
                    stats.prompt_tokens = chunk.usage.prompt_tokens or stats.prompt_tokens
                    stats.completion_tokens = chunk.usage.completion_tokens or stats.completion_tokens
                for choice in chunk.choices or []:
                    piece = choice.text if isinstance(prompt, str) else (choice.delta.content or "")
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
                            yield StreamEvent(delta, text, stats=stats, seed=params.seed)
                if filt.stopped_on is not None or cancel.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - a broken stream is the server's failure
            raise explain(spec, exc) from None
        finally:
            response.close()  # closes the HTTP response: the server stops generating
        tail = filt.flush()
        text += tail
        stats.total_s = time.perf_counter() - started
        if filt.stopped_on is not None:
            finish = "stop_string"
        elif cancel.is_set():
            finish = "stopped"
        else:  # the server's "stop" covers its end-of-sequence token and stop strings it applied itself
            finish = "length" if reason == "length" else "eos"
        yield StreamEvent(tail, text, True, finish, stats, params.seed)
