"""Rows past a few hundred positions decode to the same text alone and batched, on the real model.

The pair in ``data/judge_pair.json`` is two judge prompts (176 tokens each) from
``bench/notebook_judge.py`` with the judge's params (greedy, repetition penalty 1.1): with SDPA's
flash kernel deciding the decode attention, the first one's answer changed when the second ran beside
it (the kernel splits its work by batch and threads); the engine now decodes on the math kernel.
A random sweep of row lengths and batch sizes checks the attention call itself, bit for bit.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from playground.engine.generation.attention import bucketed
from playground.engine.generation.params import GenerationParams
from playground.engine.generation.request import GenerationRequest

PAIR = json.loads((Path(__file__).parent / "data" / "judge_pair.json").read_text())
GREEDY = "smollm2-135m-instruct-greedy"


@pytest.mark.slow
def test_a_long_prompts_answer_is_the_same_alone_and_beside_another(services):
    preset = services.registry.get(GREEDY)
    params = GenerationParams(**PAIR["params"])
    with services.chat.backends.open(preset) as model:
        requests = [
            GenerationRequest.build(p, params, preset.stop, model.context_length) for p in PAIR["prompts"]
        ]

        def texts(batch: list[GenerationRequest]) -> list[str]:
            done = {e.index: e.text for e in model.stream(batch, threading.Event()) if e.done}
            return [done[i] for i in range(len(batch))]

        alone = [texts([r])[0] for r in requests]
        assert texts(requests) == alone
        assert texts(requests[::-1]) == alone[::-1]


def test_the_decode_attention_gives_each_row_its_alone_result():
    """The decode call as the engine makes it (rows of random lengths, one span for all, a bool mask)
    against each row alone over its own span."""
    generator = torch.Generator().manual_seed(0)
    keys, values = (torch.randn(16, 3, 1024, 64, generator=generator, dtype=torch.bfloat16) for _ in "kv")
    queries = torch.randn(16, 3, 3, 64, generator=generator, dtype=torch.bfloat16)
    picks = random.Random(1)
    with sdpa_kernel(SDPBackend.MATH):
        for _ in range(60):
            rows = picks.choice([2, 3, 8, 16])
            lengths = [picks.randint(1, 1000) for _ in range(rows)]
            span = bucketed(max(lengths) + 1)
            mask = (torch.arange(span)[None, :] <= torch.tensor(lengths)[:, None])[:, None, None]
            together = F.scaled_dot_product_attention(
                queries[:rows], keys[:rows, :, :span], values[:rows, :, :span], attn_mask=mask, scale=0.125
            )
            for r in range(rows):
                own = bucketed(lengths[r] + 1)
                alone = F.scaled_dot_product_attention(
                    queries[r : r + 1],
                    keys[r : r + 1, :, :own],
                    values[r : r + 1, :, :own],
                    attn_mask=mask[r : r + 1, :, :, :own],
                    scale=0.125,
                )
                assert torch.equal(alone[0], together[r]), (rows, lengths[r], span)
