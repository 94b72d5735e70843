"""The one output step: token ids of one answer in, text deltas, its finish reason and stats out.

Detokenising never splits a character (``IncrementalDecoder``), a stop string is cut exactly where
it starts, even across tokens (``StopStringFilter``), an end-of-sequence id, ``max_new_tokens`` or
a stop string ends the answer, and the finish reason comes from ``request.finish_reason``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from playground.engine.generation.request import (
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    finish_reason,
)
from playground.engine.generation.textstream import IncrementalDecoder, StopStringFilter


def eos_ids(model, tokenizer) -> frozenset[int]:
    """Every id that ends an answer: the generation config's and the tokenizer's."""
    config = getattr(model, "generation_config", None)
    ids = getattr(config, "eos_token_id", None)
    found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        found.add(tokenizer.eos_token_id)
    return frozenset(found)


class AnswerOutput:
    """One answer's text as its tokens arrive; ``finished`` once it must take no more tokens."""

    def __init__(
        self, index: int, request: GenerationRequest, tokenizer, eos: Iterable[int], prompt_tokens: int
    ):
        self.index, self.request = index, request
        self._decoder = IncrementalDecoder(tokenizer)
        self._stops = StopStringFilter(request.stop)
        self._eos = frozenset(eos)
        self.text = ""
        self.stats = GenerationStats(prompt_tokens=prompt_tokens)
        self.started: float | None = None  # when it started computing (after any wait for a row)
        self.queued = time.perf_counter()
        self.hit_eos = False
        self.finished = False

    def start(self) -> None:
        self.started = time.perf_counter()
        self.stats.queue_s = self.started - self.queued

    def push(self, token: int) -> GenerationEvent | None:
        """Take the next token; an event when it adds visible text."""
        now = time.perf_counter()
        stats = self.stats
        if stats.ttft_s is None:
            stats.ttft_s = now - self.started
        stats.completion_tokens += 1
        stats.total_s = now - self.started
        self.hit_eos = token in self._eos
        delta = self._stops.push(self._decoder.push([token]))
        if (
            self.hit_eos
            or self._stops.stopped_on is not None
            or stats.completion_tokens >= self.request.params.max_new_tokens
        ):
            self.finished = True
        if not delta:
            return None
        self.text += delta
        return GenerationEvent(self.index, delta, self.text, self.request.seed, stats=stats)

    def finish(self, cancelled: bool = False, error: str | None = None) -> GenerationEvent:
        """The final event: whatever text was held back, the finish reason and the stats."""
        tail = "" if error else self._stops.push(self._decoder.flush()) + self._stops.flush()
        self.text += tail
        if self.started is not None:
            self.stats.total_s = time.perf_counter() - self.started
        reason = finish_reason(
            stop_string=self._stops.stopped_on is not None,
            cancelled=cancelled,
            eos=self.hit_eos,
            length=self.stats.completion_tokens >= self.request.params.max_new_tokens,
            error=error is not None,
        )
        self.finished = True
        return GenerationEvent(
            self.index, tail, self.text, self.request.seed, True, reason, self.stats, error
        )
