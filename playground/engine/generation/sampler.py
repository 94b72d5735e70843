"""The one sampler: every next token of every answer, on every path, is picked here.

Per row (one answer): the repetition penalty over the row's own tokens (prompt and answer, as
transformers applies it), then greedy (argmax) or: temperature, top-k, top-p and a draw from the
row's own ``torch.Generator`` seeded with the request's seed. The draw is an inverse-CDF lookup of
one uniform number from that generator, so a row consumes exactly one number per sampled token and
its tokens depend on its own seed and logits only, never on the other rows of the batch.

Rows are processed together (one ``topk``/``softmax``/``cumsum`` per group of rows with the same
candidate count); every operation works along a row, so a row's result is the same alone or among
others (``tests/test_sampler.py`` checks it bit for bit). The nucleus is found among the
``CANDIDATES`` most likely tokens when it fits there, without sorting the whole vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from playground.engine.generation.params import GenerationParams

CANDIDATES = 1024


class RowSampling:
    """One answer's sampling state: its params, its seeded generator and the tokens it has seen."""

    def __init__(
        self, params: GenerationParams, prompt_ids: Sequence[int], device: torch.device | str = "cpu"
    ):
        self.params = params
        self.generator = torch.Generator(device="cpu").manual_seed(int(params.seed))
        self.sampling = params.do_sample and params.temperature > 0
        self.penalty = params.repetition_penalty
        self._seen = set(int(i) for i in prompt_ids)
        self._seen_ids = torch.tensor(sorted(self._seen), dtype=torch.long, device=device)

    def saw(self, token: int) -> None:
        if self.penalty != 1.0 and token not in self._seen:
            self._seen.add(token)
            new = torch.tensor([token], dtype=torch.long, device=self._seen_ids.device)
            self._seen_ids = torch.cat([self._seen_ids, new])

    def candidates(self, vocab: int) -> int:
        """How many top tokens this row draws among (``vocab``: the whole distribution)."""
        k = self.params.top_k
        return k if 0 < k < vocab else vocab

    def uniform(self) -> float:
        return float(torch.rand(1, generator=self.generator, dtype=torch.float64))


def pick(rows: Sequence[RowSampling], logits: torch.Tensor) -> list[int]:
    """The next token of each row from its logits (``rows[i]`` ↔ ``logits[i]``)."""
    scores = logits.float()
    if scores is logits:
        scores = scores.clone()
    for r, row in enumerate(rows):
        if row.penalty != 1.0 and row._seen_ids.numel():
            seen = row._seen_ids
            picked = scores[r, seen]
            scores[r, seen] = torch.where(picked < 0, picked * row.penalty, picked / row.penalty)
    tokens = [0] * len(rows)
    greedy = [r for r, row in enumerate(rows) if not row.sampling]
    if greedy:
        for r, token in zip(greedy, scores[greedy].argmax(dim=-1).tolist(), strict=True):
            tokens[r] = token
    vocab = scores.shape[-1]
    groups: dict[tuple, list[int]] = {}
    for r, row in enumerate(rows):
        if row.sampling:
            k = row.candidates(vocab)
            if k <= CANDIDATES:
                key = ("top", k)
            elif k == vocab:
                key = ("nucleus",) if row.params.top_p < 1.0 else ("full",)
            else:
                key = ("exact", r)
            groups.setdefault(key, []).append(r)
    for key, members in groups.items():
        temperature = torch.tensor([rows[r].params.temperature for r in members], device=scores.device)
        tempered = scores[members] / temperature[:, None]
        if key[0] == "top":
            values, ids = torch.topk(tempered, key[1], dim=-1)
            probs = torch.softmax(values, dim=-1)
        elif key[0] == "full":
            probs, ids = torch.softmax(tempered, dim=-1), None
        elif key[0] == "nucleus":
            probs, ids, members, rest = _nucleus_candidates(tempered, members, rows)
            for r in rest:  # a flat distribution: its nucleus is wider than the candidates
                tokens[r] = _exact(rows[r], scores[r])
        else:
            tokens[members[0]] = _exact(rows[members[0]], scores[members[0]])
            continue
        if members:
            for r, token in zip(members, _draw(probs, ids, [rows[r] for r in members]), strict=True):
                tokens[r] = token
    return tokens


def _nucleus_candidates(tempered, members, rows):
    """Whole-vocabulary rows with top-p: the top ``CANDIDATES`` probabilities when they hold the nucleus."""
    everything = torch.softmax(tempered, dim=-1)
    probs, ids = torch.topk(everything, CANDIDATES, dim=-1)
    top_p = torch.tensor([rows[r].params.top_p for r in members], device=probs.device)
    fits = (probs.sum(dim=-1) >= top_p).tolist()
    keep = [i for i, ok in enumerate(fits) if ok]
    rest = [members[i] for i, ok in enumerate(fits) if not ok]
    return probs[keep], ids[keep], [members[i] for i in keep], rest


def _exact(row: RowSampling, scores: torch.Tensor) -> int:
    """One row the slow, general way: the whole distribution sorted."""
    everything = torch.softmax(scores / row.params.temperature, dim=-1)
    probs, ids = torch.sort(everything, descending=True)
    k = row.candidates(scores.shape[-1])
    probs, ids = probs[:k], ids[:k]
    if k < scores.shape[-1]:
        probs = probs / probs.sum()
    return _draw(probs[None], ids[None], [row])[0]


def _draw(probs: torch.Tensor, ids: torch.Tensor | None, rows: Sequence[RowSampling]) -> list[int]:
    """Cut each row's candidates (sorted, most likely first) to its nucleus, then draw one."""
    top_p = torch.tensor([row.params.top_p for row in rows], device=probs.device)
    if bool((top_p < 1.0).any()):
        before = torch.cumsum(probs, dim=-1) - probs  # the mass of the more likely candidates
        probs = torch.where(before < top_p[:, None], probs, torch.zeros_like(probs))
    cumulative = torch.cumsum(probs.double(), dim=-1)
    u = torch.tensor([row.uniform() for row in rows], dtype=torch.float64, device=probs.device)
    index = torch.searchsorted(cumulative, (u * cumulative[:, -1])[:, None], right=True)
    index = index.clamp_(max=probs.shape[-1] - 1)
    chosen = index if ids is None else ids.gather(1, index)
    return chosen[:, 0].tolist()
