"""Streaming generation on a worker thread, with stop strings, cancellation and timing stats.

``stream()`` yields ``StreamEvent``s carrying text deltas; the last one has ``done=True``, the
finish reason and the stats. Closing the iterator (a cancelled request, a closed browser tab)
or setting the ``cancel`` event stops the worker within one token; ``cancel`` may be
shared by several generations, and finishing one never sets it.

Sampling draws from a per-request ``torch.Generator`` (``engine/sampling.py``: a logits processor,
with greedy selection of the drawn token), so a seeded turn reproduces even while other columns
sample at the same moment on the process-wide RNG.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from playground.engine.generation.params import GenerationParams
from playground.engine.generation.textstream import IncrementalDecoder, StopStringFilter
from playground.engine.sampling import processors
from playground.engine.threads import start_thread
from playground.errors import PlaygroundError

_END = object()  # the producer's last item on a token queue


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    total_s: float = 0.0

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
            "tokens_per_s": self.tokens_per_s,
        }


@dataclass
class StreamEvent:
    delta: str
    text: str
    done: bool = False
    finish_reason: str | None = None
    stats: GenerationStats = field(default_factory=GenerationStats)
    seed: int | None = None


class _QueueStreamer(BaseStreamer):
    """Receives token ids from ``generate`` (the first call is the prompt, skipped)."""

    def __init__(self, out: queue.Queue):
        self._out = out
        self._prompt_seen = False

    def put(self, value):
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self._out.put(value.reshape(-1).tolist())

    def end(self):
        self._out.put(_END)


class _Cancelled(StoppingCriteria):
    def __init__(self, *events: threading.Event):
        self._events = events

    def __call__(self, input_ids, scores, **kwargs):
        stop = any(e.is_set() for e in self._events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def pad_token_id(tokenizer, eos: set[int]) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos, default=0)


def eos_ids(model, tokenizer) -> set[int]:
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def stream(
    model,
    tokenizer,
    prompt: str,
    params: GenerationParams,
    stop: list[str] | tuple[str, ...] = (),
    context_length: int | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[StreamEvent]:
    """Generate from ``prompt`` and yield text deltas as they are decoded."""
    cancel = cancel or threading.Event()  # the caller's: may be shared by several columns
    finished = threading.Event()  # this generation's own: set on a stop string or when the consumer leaves
    started = time.perf_counter()
    encoded = tokenizer(prompt, return_tensors="pt")
    input_ids = encoded["input_ids"].to(model.device)
    attention_mask = encoded["attention_mask"].to(model.device)
    stats = GenerationStats(prompt_tokens=int(input_ids.shape[1]))
    params.check_context(stats.prompt_tokens, context_length)
    seed = params.seed if params.seed is not None else random.randrange(2**32)
    eos = eos_ids(model, tokenizer)

    kwargs = dict(
        max_new_tokens=params.max_new_tokens,
        do_sample=False,  # the processors below draw each token (seeded) when the params sample
        logits_processor=processors(params, [seed], [0]),
        stopping_criteria=StoppingCriteriaList([_Cancelled(cancel, finished)]),
        pad_token_id=pad_token_id(tokenizer, eos),
        eos_token_id=sorted(eos) or None,
    )
    tokens: queue.Queue = queue.Queue()
    failure: list[BaseException] = []

    def work():
        try:
            with torch.inference_mode():
                model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    streamer=_QueueStreamer(tokens),
                    **kwargs,
                )
        except BaseException as exc:  # noqa: BLE001 - reported to the consumer with its cause
            failure.append(exc)
            tokens.put(_END)

    worker = start_thread(work, name="generate")  # ends with the generation: see engine/threads.py
    try:
        yield from follow(
            tokens, tokenizer, stop, eos, cancel, finished, stats, started, seed, worker.join, failure
        )
    finally:
        finished.set()


def follow(
    tokens: queue.Queue,
    tokenizer,
    stop,
    eos: set[int],
    cancel: threading.Event,
    finished: threading.Event,
    stats: GenerationStats,
    started: float,
    seed: int,
    wait: Callable[[], None],
    failure: list[BaseException],
) -> Iterator[StreamEvent]:
    """Turn token id lists arriving on ``tokens`` (until ``_END``) into text deltas and a final event.

    Sets ``finished`` as soon as a stop string appears, so the producer ends within one token;
    ``wait`` is called after ``_END`` (the producer is done) before ``failure`` is read.
    """
    decoder, stops = IncrementalDecoder(tokenizer), StopStringFilter(stop)
    text, last_id = "", None
    while True:
        item = tokens.get()
        if item is _END:
            break
        if stats.ttft_s is None:
            stats.ttft_s = time.perf_counter() - started
        stats.completion_tokens += len(item)
        last_id = item[-1]
        delta = stops.push(decoder.push(item))
        if stops.stopped_on is not None:
            finished.set()
        if delta:
            text += delta
            stats.total_s = time.perf_counter() - started
            yield StreamEvent(delta=delta, text=text, stats=stats, seed=seed)
    wait()
    if failure:
        raise explain_failure(failure[0])
    tail = stops.push(decoder.flush()) + stops.flush()
    text += tail
    stats.total_s = time.perf_counter() - started
    if stops.stopped_on is not None:
        reason = "stop_string"
    elif cancel.is_set():
        reason = "stopped"
    elif last_id in eos:
        reason = "eos"
    else:
        reason = "length"
    yield StreamEvent(delta=tail, text=text, done=True, finish_reason=reason, stats=stats, seed=seed)


def explain_failure(exc: BaseException) -> PlaygroundError:
    if isinstance(exc, PlaygroundError):
        return exc
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return PlaygroundError(f"out of memory while generating: {exc}")
    return PlaygroundError(f"generation failed: {type(exc).__name__}: {exc}")
