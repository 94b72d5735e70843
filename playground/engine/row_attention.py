"""Attention computed row by row over each request's own KV cache, for the serving engine.

A decode step of the serving engine runs every live request as one row of a shared forward pass:
the projections and MLPs are batched matrix products, but attention is computed here for each row
alone, over exactly that request's cached keys and values (always stored from position 0 of its
own cache). So a row's attention never sees another row's length, padding or position, and its
numbers are the same whether it runs alone or next to others (the batched products are checked
for the same property when an engine starts: ``serving.probe``).

The function is registered in transformers' attention registry under "sdpa", wrapping the real
SDPA: a forward pass outside the engine (``generate``, the notebook's batches) finds no
``RowStep`` in its context and runs SDPA exactly as before.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

BUCKET = 64  # decode attention runs over a row's length rounded up to this
_STEP: contextvars.ContextVar[RowStep | None] = contextvars.ContextVar("row_step", default=None)


@dataclass
class RowKV:
    """One request's keys and values per layer, preallocated for its prompt plus its new tokens."""

    capacity: int
    length: int = 0  # positions filled (the same in every layer once a forward pass is done)
    layers: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def write(
        self, layer: int, key: torch.Tensor, value: torch.Tensor, at: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``key``/``value`` (kv_heads, new, dim) at ``at``; return the filled keys and values."""
        if layer not in self.layers:  # zeros: a masked position must never hold a NaN (0 × NaN is NaN)
            shape = (key.shape[0], bucketed(self.capacity), key.shape[2])
            self.layers[layer] = (key.new_zeros(shape), value.new_zeros(shape[:2] + value.shape[2:]))
        keys, values = self.layers[layer]
        end = at + key.shape[1]
        keys[:, at:end] = key
        values[:, at:end] = value
        return keys[:, :end], values[:, :end]


@dataclass
class RowStep:
    """The rows of one forward pass: a request's cache and where its new tokens start, or None (idle row)."""

    rows: list[tuple[RowKV, int] | None]
    calls: int = 0

    def attend(self, module, query, key, value) -> torch.Tensor:
        self.calls += 1
        heads, new, dim = query.shape[1], query.shape[2], query.shape[3]
        if new == 1:
            return self._decode(module, query, key, value)
        outputs = []
        for b, row in enumerate(self.rows):
            if row is None:
                outputs.append(query.new_zeros(new, heads, dim))
                continue
            cache, at = row
            keys, values = cache.write(module.layer_idx, key[b], value[b], at)
            outputs.append(_attend_one(query[b], keys, values, at, module.scaling))
        return torch.stack(outputs)

    def _decode(self, module, query, key, value) -> torch.Tensor:
        """One new token per row. Rows whose lengths fall in the same bucket share one batched
        product over that bucket's length (masked past each row's end): a row's numbers depend on
        its own length's bucket, never on its neighbours."""
        output = query.new_zeros(query.shape[0], 1, query.shape[1], query.shape[3])
        groups: dict[int, list[int]] = {}
        for b, row in enumerate(self.rows):
            if row is not None:
                cache, at = row
                cache.write(module.layer_idx, key[b], value[b], at)
                groups.setdefault(bucketed(at + 1), []).append(b)
        for length, members in groups.items():
            caches = [self.rows[b][0].layers[module.layer_idx] for b in members]
            keys = torch.stack([k[:, :length] for k, _ in caches])
            values = torch.stack([v[:, :length] for _, v in caches])
            valid = torch.tensor([self.rows[b][1] + 1 for b in members], device=query.device)
            visible = torch.arange(length, device=query.device)[None, :] < valid[:, None]
            output[members] = _attend_rows(query[members], keys, values, visible, module.scaling)
        return output


def _attend_one(query, keys, values, at: int, scaling: float) -> torch.Tensor:
    """Causal attention of one row's ``new`` queries (heads, new, dim) over its ``keys``/``values``."""
    kv_heads, total = keys.shape[0], keys.shape[1]
    heads, new, dim = query.shape
    grouped = query.reshape(kv_heads, heads // kv_heads * new, dim)  # query heads share their kv head
    scores = torch.matmul(grouped, keys.transpose(1, 2)) * scaling
    if new > 1:
        visible = torch.ones(new, total, dtype=torch.bool, device=query.device).tril(diagonal=at)
        scores = scores.view(kv_heads, heads // kv_heads, new, total).masked_fill(~visible, float("-inf"))
        scores = scores.view(kv_heads, -1, total)
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    return torch.matmul(weights, values).view(heads, new, dim).transpose(0, 1)


def _attend_rows(query, keys, values, visible, scaling: float) -> torch.Tensor:
    """Single-token attention of rows (rows, heads, 1, dim) over (rows, kv_heads, length, dim)."""
    rows, heads, _, dim = query.shape
    kv_heads = keys.shape[1]
    grouped = query.reshape(rows, kv_heads, heads // kv_heads, dim)
    scores = torch.matmul(grouped, keys.transpose(2, 3)) * scaling  # (rows, kv_heads, group, length)
    scores = scores.masked_fill(~visible[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    return torch.matmul(weights, values).reshape(rows, heads, dim)[:, None]


def bucketed(length: int, bucket: int = BUCKET) -> int:
    return -(-length // bucket) * bucket


def _dispatch(module, query, key, value, attention_mask, **kwargs):
    step = _STEP.get()
    if step is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    return step.attend(module, query, key, value), None


def run_rows(step: RowStep, forward):
    """Call ``forward()`` with ``step`` as the attention of every layer that goes through the registry."""
    token = _STEP.set(step)
    try:
        return forward()
    finally:
        _STEP.reset(token)


AttentionInterface.register("sdpa", _dispatch)
