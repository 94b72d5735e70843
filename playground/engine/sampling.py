"""Logits processors shared by single and batched generation, each row on its own.

Every row of a batch is processed exactly as it would be alone: the repetition penalty looks
only at the row's own tokens (never at its left padding), and a sampled token is drawn from the
row's own ``torch.Generator``, so a seeded row reproduces whatever else is in the batch and
whatever other generations sample at the same moment on the process-wide RNG.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from playground.engine.params import GenerationParams


class RowRepetitionPenalty(LogitsProcessor):
    """CTRL's repetition penalty (as transformers applies it) over each row's own tokens only."""

    def __init__(self, penalty: float, pad_lengths: Sequence[int]):
        self.penalty = penalty
        self.pad_lengths = list(pad_lengths)

    def __call__(self, input_ids, scores):
        for row, start in enumerate(self.pad_lengths):
            seen = input_ids[row, start:]
            picked = scores[row].gather(0, seen)
            picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
            scores[row].scatter_(0, seen, picked)
        return scores


class RowSeededSampler(LogitsProcessor):
    """Draw each row's next token with that row's generator and leave only it selectable."""

    def __init__(self, seeds: Sequence[int]):
        self._generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids, scores):
        probs = torch.softmax(scores.float(), dim=-1).cpu()
        chosen = torch.cat(
            [
                torch.multinomial(probs[row : row + 1], 1, generator=g)
                for row, g in enumerate(self._generators)
            ]
        ).to(scores.device)
        masked = torch.full_like(scores, float("-inf"))
        return masked.scatter(1, chosen, 0.0)


def processors(
    params: GenerationParams, seeds: Sequence[int], pad_lengths: Sequence[int]
) -> LogitsProcessorList:
    """Repetition penalty, then (when sampling) temperature, top-k, top-p and the seeded draw.

    ``model.generate`` is then called greedily: the draw has already left one token per row.
    """
    chain = LogitsProcessorList()
    if params.repetition_penalty != 1.0:
        chain.append(RowRepetitionPenalty(params.repetition_penalty, pad_lengths))
    if params.do_sample and params.temperature > 0:
        if params.temperature != 1.0:
            chain.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k > 0:
            chain.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            chain.append(TopPLogitsWarper(params.top_p))
        chain.append(RowSeededSampler(seeds))
    return chain
