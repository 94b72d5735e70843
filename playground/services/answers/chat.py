"""One answer from one preset: render the prompt, stream it, log the turn. No Gradio here.

Every column of every tab and the ``/generate`` endpoint go through ``ChatService.answer``,
so they are rendered, streamed and stored the same way.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from playground.engine.backends.base import Backends, Origin
from playground.engine.backends.local import LocalBackend
from playground.engine.backends.remote import RemoteBackend
from playground.engine.generation.params import GenerationParams, parse_params
from playground.engine.generation.request import GenerationRequest, GenerationStats
from playground.engine.models.cache import ModelCache
from playground.engine.models.loader import Progress
from playground.engine.models.presets import Preset, PresetRegistry
from playground.engine.models.templates import Message, parse_messages, resolve_system
from playground.errors import PlaygroundError
from playground.services.answers.limits import Limits, check_text, check_turn
from playground.store.db import Store, TurnRecord
from playground.store.models import utcnow


@dataclass
class AnswerRequest:
    preset: str
    messages: list[Message]
    params: dict[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None
    revision: str | None = None
    quantization: str | None = None
    turn_index: int | None = None  # the round this answers; default: count of user messages - 1


@dataclass
class AnswerUpdate:
    """The state of one answer as it grows; ``done`` once it is finished and stored."""

    text: str = ""
    done: bool = False
    finish_reason: str | None = None
    error: str | None = None
    turn_id: int | None = None
    stats: dict = field(default_factory=dict)
    status: str = ""

    def stats_line(self) -> str:
        """Its stats and how it ended ("… · stopped"), also for an answer stopped before its first token."""
        s = self.stats
        if not s.get("completion_tokens"):
            return self.finish_reason or self.status if self.done else self.status
        ttft = f"{s['ttft_s'] * 1000:.0f} ms" if s.get("ttft_s") is not None else "-"
        line = f"TTFT {ttft} · {s['completion_tokens']} tokens · {s.get('tokens_per_s') or 0.0:.1f} tok/s"
        return f"{line} · {self.finish_reason}" if self.finish_reason else line


class ChatService:
    def __init__(
        self,
        registry: PresetRegistry,
        cache: ModelCache,
        store: Store,
        backends: Backends | None = None,
        limits: Limits | None = None,
    ):
        self.registry = registry
        self.cache = cache
        self.store = store
        self.limits = limits or Limits()
        # engine/backends: this machine's (local or ZeroGPU) and served models; default: local on ``cache``
        self.backends = backends or Backends(LocalBackend(cache), RemoteBackend())
        self.pacer = StreamPacer()

    def preset(self, name: str) -> Preset:
        return self.registry.get(name)

    def check(self, request: AnswerRequest) -> None:
        """Refuse, before anything is generated or stored, a request over the size limits."""
        self.preset(request.preset)
        if not request.messages or request.messages[-1].role != "user":
            raise PlaygroundError("the messages must end with the user's message; type a message first")
        if not request.messages[-1].content.strip():
            raise PlaygroundError("the message is empty; type a message first")
        check_text(request.system_prompt, "the system prompt", self.limits)
        for message in request.messages:
            check_text(message.content, f"the {message.role} message", self.limits)
        rounds = sum(1 for m in request.messages if m.role == "user")
        check_turn(request.turn_index if request.turn_index is not None else rounds - 1, self.limits)

    def params_for(self, preset: Preset, overrides: dict[str, Any] | None) -> GenerationParams:
        return parse_params(overrides, base=preset.params)

    def available(self, preset: Preset) -> None:
        if preset.name in self.registry.unavailable:
            raise PlaygroundError(
                f"{preset.display_name} is unavailable here: {self.registry.unavailable[preset.name]}"
            )

    def answer(
        self,
        request: AnswerRequest,
        conversation_id: str,
        column: int = 0,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> Iterator[AnswerUpdate]:
        """Stream one answer; the final update carries the stored turn id (also for errors and stops)."""
        cancel = cancel or threading.Event()
        started = utcnow()
        update = AnswerUpdate()
        ran = Ran()
        try:
            preset = self.preset(request.preset)
            self.available(preset)
            params = self.params_for(preset, request.params)
            ran.params = params
            waiting = self.backends.waiting_for(preset, request.revision, request.quantization)
            if waiting:
                update.status = waiting
                yield update
            with self.backends.open(preset, request.revision, request.quantization, progress) as model:
                ran.origin = model.origin
                rendered = model.render(request.messages, request.system_prompt)
                generation = GenerationRequest.build(
                    rendered.text, params, preset.stop, model.context_length, rendered.messages
                )
                ran.prompt, ran.params = rendered.text, generation.params
                update.status = "generating…"
                yield from self.pacer.follow(model.stream([generation], cancel), update)
        except PlaygroundError as exc:
            update.error, update.finish_reason = str(exc), "error"
        except GeneratorExit:
            update.finish_reason = "stopped"
            with contextlib.suppress(PlaygroundError):  # nobody is listening any more to be told
                self._record(request, conversation_id, column, update, ran, started)
            raise
        update.done = True
        try:
            update.turn_id = self._record(request, conversation_id, column, update, ran, started)
        except PlaygroundError as exc:  # the database refused it: say so, keep the text on screen
            update.error = f"this answer was not saved: {exc}"
            update.finish_reason = update.finish_reason or "error"
        yield update

    def _record(self, request, conversation_id, column, update, ran: Ran, started) -> int | None:
        if not conversation_id:
            return None
        preset = self.registry.get(request.preset) if request.preset in self.registry else None
        turn_index = request.turn_index
        if turn_index is None:
            turn_index = sum(1 for m in request.messages if m.role == "user") - 1
        system = resolve_system(
            request.messages, request.system_prompt, preset.system_prompt if preset else ""
        )
        return self.store.record_turn(
            turn_record(
                preset,
                ran,
                conversation_id=conversation_id,
                column=column,
                turn_index=turn_index,
                preset_name=request.preset,
                messages=request.messages,
                system_prompt=system,
                update=update,
                started=started,
                revision=request.revision,
                quantization=request.quantization,
            )
        )


@dataclass
class Ran:
    """What an answer ran with, filled in as it becomes known (what is stored is what ran)."""

    prompt: str = ""
    params: GenerationParams | None = None  # with the seed it ran with, once the request was built
    origin: Origin | None = None


def turn_record(
    preset: Preset | None,
    ran: Ran,
    *,
    conversation_id: str,
    column: int,
    turn_index: int,
    preset_name: str,
    messages: list[Message],
    system_prompt: str,
    update: AnswerUpdate,
    started,
    revision: str | None = None,
    quantization: str | None = None,
) -> TurnRecord:
    """A finished (or stopped, or failed) answer with everything needed to reproduce it."""
    origin = ran.origin
    params = ran.params.model_dump() if ran.params is not None else {}
    return TurnRecord(
        conversation_id=conversation_id,
        column=column,
        turn_index=turn_index,
        preset_name=preset_name,
        preset_hash=preset.file_hash if preset else "",
        model_id=preset.model.id if preset else "",
        revision=origin.revision if origin else (revision or ""),
        quantization=origin.quantization if origin else (quantization or ""),
        dtype=origin.dtype if origin else "",
        device=origin.device if origin else "",
        messages=[m.model_dump() for m in messages],
        system_prompt=system_prompt,
        prompt=ran.prompt,
        params=params,
        seed=params.get("seed"),
        output=update.text,
        finish_reason=update.finish_reason or "stopped",
        error=update.error,
        started_at=started,
        stats=update.stats or GenerationStats(prompt_tokens=None).as_dict(),  # nothing ran: unknown
    )


class StreamPacer:
    """How often a streaming answer's text is passed on: the first text at once, then at most every
    ``interval()`` seconds, which grows with the number of answers streaming at once (every update
    costs the page, the HTTP stream and the event loop CPU that the model needs on a small machine:
    one answer gets 20 updates a second, sixteen get about three each)."""

    def __init__(self, every_s: float = 0.05, per_stream_s: float = 0.02):
        self.every_s, self.per_stream_s = every_s, per_stream_s
        self._lock = threading.Lock()
        self.active = 0

    def interval(self) -> float:
        return max(self.every_s, self.per_stream_s * self.active)

    def follow(self, events, update: AnswerUpdate) -> Iterator[AnswerUpdate]:
        """Copy one answer's events into ``update``, yielding it (paced) until the final one, which is
        not yielded: the caller finishes and yields it."""
        with self._lock:
            self.active += 1
        last = None
        try:
            with closing(events):
                for event in events:
                    update.text, update.stats = event.text, event.stats.as_dict()
                    if event.done:
                        update.finish_reason = event.finish_reason
                        if event.error:
                            raise PlaygroundError(event.error)
                        return
                    now = time.monotonic()
                    if last is None or now - last >= self.interval():
                        last = now
                        yield update
        finally:
            with self._lock:
                self.active -= 1


def messages_from(raw: Any) -> list[Message]:
    """Messages from a JSON string or a list, validated."""
    if isinstance(raw, str):
        import json

        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise PlaygroundError(f"messages is not valid JSON: {exc}") from None
    return parse_messages(raw)
