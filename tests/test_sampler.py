"""The one sampler: a row's token depends on its own logits, params and seed only (bit for bit the same
alone or among other rows), and the repetition penalty, top-k and top-p keep what transformers keeps."""

from __future__ import annotations

import torch

from playground.engine.generation.params import GenerationParams
from playground.engine.generation.sampler import CANDIDATES, RowSampling, pick


def row(prompt=(5,), **params) -> RowSampling:
    return RowSampling(GenerationParams(**{"seed": 1, **params}), prompt)


def test_top_p_keeps_the_smallest_most_likely_set_and_top_k_its_k():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0, -1.0]])

    def draws(**params) -> set[int]:
        return {pick([row(seed=s, do_sample=True, temperature=1.0, **params)], logits)[0] for s in range(80)}

    # probabilities 0.63, 0.23, 0.09, …: the smallest most-likely set reaching 0.8 is {0, 1}
    assert draws(top_p=0.8, top_k=0) == {0, 1}
    assert draws(top_p=0.5, top_k=0) == {0}
    assert draws(top_p=1.0, top_k=3) == {0, 1, 2}
    assert draws(top_p=1.0, top_k=0) >= {0, 1, 2, 3}


def test_greedy_takes_the_penalised_argmax():
    logits = torch.tensor([[4.0, 3.0, 2.0]])
    assert pick([row(prompt=(0,), do_sample=False, repetition_penalty=2.0)], logits) == [1]
    assert pick([row(prompt=(0,), do_sample=True, temperature=0.0)], logits) == [0]  # temperature 0: greedy
    negative = torch.tensor([[-1.0, -1.5, -3.0]])  # a negative logit is multiplied, as transformers does
    assert pick([row(prompt=(0,), do_sample=False, repetition_penalty=2.0)], negative) == [1]


def test_the_repetition_penalty_looks_at_each_rows_own_tokens_only():
    logits = torch.tensor([[3.0, 2.9, 1.0], [3.0, 2.9, 1.0]])
    rows = [
        row(prompt=(0,), do_sample=False, repetition_penalty=2.0),
        row(prompt=(2,), do_sample=False, repetition_penalty=2.0),
    ]
    assert pick(rows, logits) == [1, 0]  # row 0 saw token 0 (penalised), row 1 did not
    rows[1].saw(0)
    assert pick(rows[1:], logits[1:]) == [1]


def test_a_seed_reproduces_and_another_seed_differs():
    logits = torch.randn(1, 5000, generator=torch.Generator().manual_seed(0))

    def sequence(seed):
        r = row(do_sample=True, temperature=1.3, seed=seed)
        return [pick([r], logits)[0] for _ in range(12)]

    assert sequence(7) == sequence(7) and sequence(7) != sequence(8)


def test_each_row_gets_the_token_it_gets_alone():
    """Rows of every kind (greedy, top-k, nucleus, flat, whole-vocabulary) in one call, over many steps."""
    gen = torch.Generator().manual_seed(3)
    vocab = 49152
    kinds = [
        {"do_sample": False},
        {"do_sample": False, "repetition_penalty": 1.3},
        {"do_sample": True, "temperature": 0.7, "top_k": 40, "top_p": 0.95, "repetition_penalty": 1.1},
        {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 0.9},
        {"do_sample": True, "temperature": 0.9, "top_k": 0, "top_p": 1.0},
        {"do_sample": True, "temperature": 1.0, "top_k": 5000, "top_p": 0.99},
        {"do_sample": True, "temperature": 2.0, "top_k": 0, "top_p": 0.999},  # flat: past the candidates
    ]
    params = [dict(k, seed=100 + i) for i, k in enumerate(kinds * 2)]
    alone = [RowSampling(GenerationParams(**p), [1, 2, 3]) for p in params]
    together = [RowSampling(GenerationParams(**p), [1, 2, 3]) for p in params]
    for step in range(6):
        logits = torch.randn(len(params), vocab, generator=gen) * (3.0 if step % 2 else 0.3)
        one_by_one = [pick([r], logits[i : i + 1])[0] for i, r in enumerate(alone)]
        batched = pick(together, logits)
        assert batched == one_by_one
        for r, s, token in zip(alone, together, batched, strict=True):
            r.saw(token)
            s.saw(token)


def test_the_nucleus_can_be_wider_than_the_candidates():
    logits = torch.zeros(1, 4 * CANDIDATES)  # a flat distribution: top_p 0.9 needs 90% of the vocabulary
    tokens = {pick([row(seed=s, do_sample=True, temperature=1.0, top_p=0.9)], logits)[0] for s in range(40)}
    assert max(tokens) >= CANDIDATES
