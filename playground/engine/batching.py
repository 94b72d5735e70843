"""Batched generation: many prompts for one model in shared forward passes, each row as if alone.

Kernels compute a row differently depending on the shape of the batch around it (measured on
SmolLM2 in bf16 on CPU: the last-token logits of one prompt differ by up to 0.53 between a batch
of one and a batch of three, enough to change greedy text). So every batch runs at a canonical
shape, ``BatchShape``: always ``rows`` rows (a short batch is filled with copies of a real row,
marked finished from the start) and every prompt left-padded to a multiple of ``bucket`` tokens,
with only prompts of the same padded length in one batch. A row's numbers then depend on its own
prompt, seed and the shape, never on its neighbours: a cell gives the same text alone or batched.

Each row has its own seeded generator and a repetition penalty over its own tokens
(``engine/sampling.py``), its own stop strings (cut exactly where they start, as in ``stream``),
and its own finish reason; cancelling stops the whole batch within one token.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from playground.engine.generation.legacy import GenerationStats, eos_ids, explain_failure, pad_token_id
from playground.engine.generation.params import GenerationParams
from playground.engine.generation.textstream import IncrementalDecoder, StopStringFilter
from playground.engine.sampling import processors
from playground.engine.threads import start_thread
from playground.errors import PlaygroundError

_END = object()


@dataclass(frozen=True)
class BatchShape:
    rows: int = 16
    bucket: int = 64

    def padded_length(self, tokens: int) -> int:
        return max(self.bucket, -(-tokens // self.bucket) * self.bucket)

    def plan(self, lengths: Sequence[int]) -> list[list[int]]:
        """Item indices grouped into batches: same padded length, at most ``rows`` each."""
        groups: dict[int, list[int]] = {}
        for index, length in enumerate(lengths):
            groups.setdefault(self.padded_length(length), []).append(index)
        return [
            members[i : i + self.rows]
            for _, members in sorted(groups.items())
            for i in range(0, len(members), self.rows)
        ]


def choose_batch_rows(model, longest_tokens: int, budget_bytes: int, cap: int) -> int:
    """How many rows fit: KV cache and activations of one row against half of ``budget_bytes``."""
    config = getattr(model, "config", None)
    layers = int(getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", 0) or 24)
    hidden = int(getattr(config, "hidden_size", None) or getattr(config, "dim", 0) or 1024)
    vocab = int(getattr(config, "vocab_size", 0) or 32000)
    element = 4 if next(model.parameters()).dtype == torch.float32 else 2
    kv_per_token = 2 * layers * hidden * element  # an upper bound: grouped KV heads need less
    per_row = kv_per_token * longest_tokens + longest_tokens * hidden * 16 * element + vocab * 8
    return max(1, min(cap, int(budget_bytes * 0.5) // max(per_row, 1)))


@dataclass
class RowEvent:
    """New text of one row; the last event of a row has ``done`` set, its finish reason and stats."""

    row: int
    delta: str
    text: str
    done: bool = False
    finish_reason: str | None = None
    stats: GenerationStats = field(default_factory=GenerationStats)


class _RowsDone(StoppingCriteria):
    def __init__(self, done: list[bool], *cancel: threading.Event):
        self._done, self._cancel = done, cancel

    def __call__(self, input_ids, scores, **kwargs):
        if any(e.is_set() for e in self._cancel):
            return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        return torch.tensor(self._done, dtype=torch.bool, device=input_ids.device)


class _StepStreamer(BaseStreamer):
    """Hands each step's new token of every row to ``on_step`` (the first call is the prompt)."""

    def __init__(self, on_step: Callable[[list[int]], None]):
        self._on_step, self._prompt_seen = on_step, False

    def put(self, value):
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self._on_step(value.reshape(-1).tolist())

    def end(self):
        pass


def generate_ids(
    model,
    rows: Sequence[Sequence[int]],
    seeds: Sequence[int],
    params: GenerationParams,
    shape: BatchShape,
    pad_id: int,
    eos: set[int],
    on_step: Callable[[list[int], list[bool]], None] | None = None,
    *cancel: threading.Event,
) -> list[list[int]]:
    """Generate for up to ``shape.rows`` prompts (token ids) at the canonical shape; new ids per row.

    ``on_step(tokens, done)`` sees each step's token of every real row and may mark rows done
    (a stop string); a row also ends at an EOS id, which is kept as its last id. Setting any of the
    ``cancel`` events ends every row after the current step.
    """
    if not 1 <= len(rows) <= shape.rows:
        raise PlaygroundError(f"a batch holds 1 to {shape.rows} rows, got {len(rows)}")
    length = shape.padded_length(max(len(r) for r in rows))
    real = len(rows)
    filled = list(rows) + [rows[0]] * (shape.rows - real)
    pads = [length - len(r) for r in filled]
    input_ids = torch.tensor([[pad_id] * p + list(r) for p, r in zip(pads, filled, strict=True)])
    attention = torch.tensor([[0] * p + [1] * len(r) for p, r in zip(pads, filled, strict=True)])
    row_seeds = list(seeds) + [int(seeds[0])] * (shape.rows - real)
    done = [False] * real + [True] * (shape.rows - real)  # filler rows only keep the shape
    out: list[list[int]] = [[] for _ in range(real)]

    def step(tokens: list[int]) -> None:
        tokens = tokens[:real]
        live = [not d for d in done[:real]]
        for row, token in enumerate(tokens):
            if live[row]:
                out[row].append(token)
                if token in eos:
                    done[row] = True
        if on_step is not None:
            on_step([t if alive else -1 for t, alive in zip(tokens, live, strict=True)], done)

    device = model.device
    with torch.inference_mode():
        model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=params.max_new_tokens,
            do_sample=False,
            logits_processor=processors(params, row_seeds, pads),
            stopping_criteria=StoppingCriteriaList([_RowsDone(done, *cancel)]),
            streamer=_StepStreamer(step),
            pad_token_id=pad_id,
            eos_token_id=sorted(eos) or None,
        )
    return out


def stream_batch(
    model,
    tokenizer,
    prompts: Sequence[str],
    seeds: Sequence[int],
    params: GenerationParams,
    shape: BatchShape,
    stop: Sequence[str] = (),
    context_length: int | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[list[RowEvent]]:
    """Generate every prompt, batch after batch; yield the events of each step (rows by index).

    Rows of a batch that was never started (``cancel`` set earlier) get no event.
    """
    cancel = cancel or threading.Event()
    encoded = [tokenizer(p)["input_ids"] for p in prompts]
    for i, ids in enumerate(encoded):
        try:
            params.check_context(len(ids), context_length)
        except PlaygroundError as exc:
            raise PlaygroundError(f"row {i + 1}: {exc}") from None
    eos = eos_ids(model, tokenizer)
    pad = pad_token_id(tokenizer, eos)
    for batch in shape.plan([len(ids) for ids in encoded]):
        if cancel.is_set():
            return
        yield from _run_one(model, tokenizer, batch, encoded, seeds, params, shape, stop, eos, pad, cancel)


def _run_one(model, tokenizer, batch, encoded, seeds, params, shape, stop, eos, pad, cancel):
    events: queue.Queue = queue.Queue()
    decoders = [IncrementalDecoder(tokenizer) for _ in batch]
    filters = [StopStringFilter(stop) for _ in batch]
    texts = [""] * len(batch)
    stats = [GenerationStats(prompt_tokens=len(encoded[i])) for i in batch]
    started = time.perf_counter()
    failure: list[BaseException] = []
    left = threading.Event()  # set when the consumer closes this generator early

    def on_step(tokens: list[int], done: list[bool]) -> None:
        now, step_events = time.perf_counter() - started, []
        for k, token in enumerate(tokens):
            if token < 0:
                continue
            s = stats[k]
            s.ttft_s = now if s.ttft_s is None else s.ttft_s
            s.completion_tokens += 1
            s.total_s = now
            delta = filters[k].push(decoders[k].push([token]))
            if filters[k].stopped_on is not None:
                done[k] = True
            if delta:
                texts[k] += delta
                step_events.append(RowEvent(batch[k], delta, texts[k], stats=s))
        if step_events:
            events.put(step_events)

    def work() -> None:
        try:
            rows = [encoded[i] for i in batch]
            seeds_of = [seeds[i] for i in batch]
            out = generate_ids(model, rows, seeds_of, params, shape, pad, eos, on_step, cancel, left)
            events.put(("finished", out))
        except BaseException as exc:  # noqa: BLE001 - reported to the consumer with its cause
            failure.append(exc)
            events.put(_END)

    worker = start_thread(work, name="generate-batch")  # ends with the batch: see engine/threads.py
    try:
        while True:
            item = events.get()
            if item is _END:
                raise explain_failure(failure[0])
            if isinstance(item, tuple):
                yield _finish(batch, item[1], decoders, filters, texts, stats, eos, params, cancel)
                return
            yield item
    finally:
        left.set()
        worker.join(timeout=30)


def _finish(batch, out, decoders, filters, texts, stats, eos, params, cancel) -> list[RowEvent]:
    final = []
    for k, index in enumerate(batch):
        tail = filters[k].push(decoders[k].flush()) + filters[k].flush()
        texts[k] += tail
        if filters[k].stopped_on is not None:
            reason = "stop_string"
        elif out[k] and out[k][-1] in eos:
            reason = "eos"
        elif len(out[k]) >= params.max_new_tokens:
            reason = "length"
        else:
            reason = "stopped" if cancel.is_set() else "length"
        final.append(RowEvent(index, tail, texts[k], done=True, finish_reason=reason, stats=stats[k]))
    return final
