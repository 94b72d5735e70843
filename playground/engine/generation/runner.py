"""The model runner: one forward pass over the rows of a step, the next-token logits of each row.

``PackedRunner`` packs the step's rows into one sequence (``attention.py``): decoding rows first,
one token each, then whole prompts being prefilled. How it packs is its ``Layout``, chosen by the
start-up probe for each model and device:

* ``packed``: prompts that arrive together are prefilled together, late ones in the same pass as
  the running decode, and decode attention is one call for all rows (any number of rows);
* ``fixed``: each prompt is prefilled in a pass of its own, decode passes always have ``rows``
  rows (idle ones padded) and attention is one call per row: for devices whose matrix products
  change a row's numbers with the number of rows;
* ``single``: one answer at a time (a model whose batches the probe found not reproducible).

Every pass has at least ``MIN_TOKENS`` tokens (an idle token pads a lone decode).

``CacheRunner`` serves models whose attention does not go through transformers' attention
interface (Falcon): the model's own KV cache, one answer at a time.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Literal

import torch

from playground.engine.generation.attention import NAME, KVPool, Step, register, run_step, segment_rotary

LayoutName = Literal["packed", "fixed", "single"]
# A pass never has a single token: CPU kernels multiply a one-row matrix another way (a matrix-vector
# product) than two or more rows, so a lone token is paired with an idle one, like every batched row.
MIN_TOKENS = 2


@dataclass(frozen=True)
class Layout:
    name: LayoutName
    rows: int  # most rows in one pass

    @property
    def batched(self) -> bool:
        return self.name != "single" and self.rows > 1


@dataclass
class RowState:
    """What the runner keeps per row: its slot, the positions cached, the token to feed next."""

    prompt: list[int]
    slot: int = -1
    length: int = 0  # positions in the cache
    next_token: int | None = None
    cache: object = None  # CacheRunner: the model's own cache


def uses_attention_interface(model) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return bool(getattr(type(base), "_supports_attention_backend", False))


def adopt(model) -> None:
    """Route the model's attention through the engine (explicit, once per model)."""
    if getattr(model, "_engine_adopted", False):
        return
    register()
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.config._attn_implementation = NAME
    for module in base.modules():
        if type(module).__name__.endswith("RotaryEmbedding"):
            segment_rotary(module)
    model._engine_adopted = True


class _ModelRef:
    """The runner's model, held weakly: the model cache owns models, so an evicted one is freed."""

    def __init__(self, model):
        self._model = weakref.ref(model)

    @property
    def model(self):
        model = self._model()
        if model is None:
            raise RuntimeError(
                "the model was unloaded (evicted from the model cache); send the message again"
            )
        return model


class PackedRunner(_ModelRef):
    def __init__(self, model, layout: Layout):
        adopt(model)
        super().__init__(model)
        self.layout = layout
        self.device = model.device
        self.pool = KVPool(layout.rows)
        self.calls_per_pass = 0

    @property
    def rows(self) -> int:
        return 1 if self.layout.name == "single" else self.layout.rows

    @property
    def prefill_together(self) -> bool:
        return self.layout.name == "packed"

    def reserve(self, capacity: int, rows: int = 1) -> None:
        """Room in the KV pool for ``rows`` rows (the idle rows of a fixed-width pass need none)."""
        self.pool.reserve(capacity, rows)

    def move(self, source: int, target: int) -> None:
        self.pool.move(source, target)

    def release_memory(self) -> None:
        self.pool = KVPool(self.layout.rows)

    @torch.inference_mode()
    def forward(self, decoding: list[RowState], prefilling: list[RowState]) -> torch.Tensor:
        """Logits (rows, vocab) of the decoding rows, then of the prefilling rows. Decoding rows hold
        slots 0..n-1 in order; prefilling rows the slots after them. The ``fixed`` layout never mixes
        a prompt into a decode pass: its decode passes always have the same number of rows."""
        if self.layout.name != "packed" and decoding and prefilling:
            return torch.cat([self._pass(decoding, []), self._pass([], prefilling)])
        return self._pass(decoding, prefilling)

    def _pass(self, decoding: list[RowState], prefilling: list[RowState]) -> torch.Tensor:
        width = self.layout.rows if self.layout.name == "fixed" and decoding else len(decoding)
        width += max(0, MIN_TOKENS - width - sum(len(r.prompt) for r in prefilling))
        tokens = [r.next_token for r in decoding] + [0] * (width - len(decoding))
        positions = [r.length for r in decoding] + [0] * (width - len(decoding))
        keep = list(range(len(decoding)))
        spans, start = [], width
        for row in prefilling:
            n = len(row.prompt)
            spans.append((row.slot, start, n))
            tokens += row.prompt
            positions += range(n)
            start += n
            keep.append(start - 1)
        step = Step(self.pool, [r.length for r in decoding], spans, width, self.layout.name == "packed")
        device = self.device
        out = run_step(
            step,
            lambda: self.model(
                input_ids=torch.tensor([tokens], device=device),
                position_ids=torch.tensor([positions], device=device),
                attention_mask=_NO_MASK.to(device),
                use_cache=False,
                logits_to_keep=torch.tensor(keep, device=device),
            ),
        )
        self.calls_per_pass = step.calls
        for row in decoding:
            row.length += 1
        for row in prefilling:
            row.length = len(row.prompt)
        return out.logits[0]


_NO_MASK = torch.ones(1, 1, 1, 1, dtype=torch.bool)  # a 4D mask is taken as given: no mask is built


class CacheRunner(_ModelRef):
    """One answer at a time on the model's own KV cache (models outside the attention interface)."""

    rows = 1
    prefill_together = False

    def __init__(self, model):
        super().__init__(model)
        self.device = model.device
        self.layout = Layout("single", 1)

    def reserve(self, capacity: int, rows: int = 1) -> None:
        pass

    def move(self, source: int, target: int) -> None:
        pass

    def release_memory(self) -> None:
        pass

    @torch.inference_mode()
    def forward(self, decoding: list[RowState], prefilling: list[RowState]) -> torch.Tensor:
        from transformers import DynamicCache

        (row,) = decoding or prefilling
        if prefilling:
            row.cache = DynamicCache(config=self.model.config)
            ids = row.prompt
        else:
            ids = [row.next_token]
        out = self.model(
            input_ids=torch.tensor([ids], device=self.device),
            past_key_values=row.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        row.length += len(ids)
        return out.logits[0, -1:]


def make_runner(model, layout: Layout):
    return PackedRunner(model, layout) if uses_attention_interface(model) else CacheRunner(model)
