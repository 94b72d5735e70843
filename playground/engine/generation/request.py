"""The one question everything above the engine asks, and the one shape of every answer.

A ``GenerationRequest`` is immutable and picklable (it crosses the ZeroGPU fork as it is): the
rendered prompt (a string, or chat messages for a server-side template), the parameters with the
seed already resolved, the stop strings and the context limit. Cancel travels beside it, never in
it. Every backend answers with ``GenerationEvent``s: text deltas, then one final event with the
finish reason and the stats. Seeds are resolved here and only here (``GenerationRequest.build``),
so every answer, greedy or sampled, local or served, records the seed it ran with.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from playground.engine.generation.params import GenerationParams

FINISH_REASONS = ("eos", "length", "stop_string", "stopped", "error")


def draw_seed() -> int:
    return random.randrange(2**32)


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str  # the exact text the model reads (or, for ``template: server``, the messages as JSON)
    params: GenerationParams  # ``seed`` is never None here
    stop: tuple[str, ...] = ()
    context_length: int | None = None
    messages: tuple[dict, ...] | None = None  # chat messages, for a server's own template

    @classmethod
    def build(
        cls,
        prompt: str,
        params: GenerationParams,
        stop: Sequence[str] = (),
        context_length: int | None = None,
        messages: Sequence[dict] | None = None,
    ) -> GenerationRequest:
        """The request with its seed resolved: the given one, or a fresh draw recorded from now on."""
        if params.seed is None:
            params = params.model_copy(update={"seed": draw_seed()})
        chat = tuple(dict(m) for m in messages) if messages is not None else None
        return cls(prompt, params, tuple(stop), context_length, chat)

    @property
    def seed(self) -> int:
        return int(self.params.seed)

    @property
    def sampling(self) -> bool:
        return self.params.do_sample and self.params.temperature > 0


@dataclass
class GenerationStats:
    prompt_tokens: int | None = 0  # None: not known (a server that did not say, and no tokenizer here)
    completion_tokens: int = 0
    ttft_s: float | None = None  # from the moment the request started computing (not its queue wait)
    total_s: float = 0.0
    queue_s: float = 0.0  # waiting for a free row before it started

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.total_s if self.total_s > 0 else 0.0

    @classmethod
    def from_dict(cls, data: dict) -> GenerationStats:
        """The inverse of ``as_dict`` (``tokens_per_s`` is derived, not stored)."""
        return cls(**{k: v for k, v in data.items() if k != "tokens_per_s"})

    def as_dict(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "ttft_s": self.ttft_s,
            "total_s": self.total_s,
            "queue_s": self.queue_s,
            "tokens_per_s": self.tokens_per_s,
        }


@dataclass
class GenerationEvent:
    """New text of request ``index`` (its position in the ``stream`` call); the last event of a request
    has ``done`` set, its finish reason and final stats, and ``error`` when it failed."""

    index: int
    delta: str
    text: str
    seed: int
    done: bool = False
    finish_reason: str | None = None
    stats: GenerationStats = field(default_factory=GenerationStats)
    error: str | None = None

    def as_dict(self) -> dict:
        """Plain values only (what a ZeroGPU worker yields across the process boundary)."""
        return {
            "index": self.index,
            "delta": self.delta,
            "seed": self.seed,
            "done": self.done,
            "finish_reason": self.finish_reason,
            "stats": self.stats.as_dict(),
            "error": self.error,
        }


def finish_reason(*, stop_string: bool, cancelled: bool, eos: bool, length: bool, error: bool = False) -> str:
    """The one rule for why an answer ended, in order of precedence."""
    if error:
        return "error"
    if stop_string:
        return "stop_string"
    if eos:
        return "eos"
    if length:
        return "length"
    if cancelled:
        return "stopped"
    raise ValueError("an answer ended without a reason")
