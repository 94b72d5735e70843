"""Batched generation: a row gives the same tokens / text alone as in a batch (greedy and seeded
sampling), on the native-architecture fixtures and on the embedded SmolLM2 model."""

from __future__ import annotations

import threading

import pytest
import torch

from playground.engine.batching import BatchShape, generate_ids, stream_batch
from playground.engine.generation.params import GenerationParams
from tests.test_native_archs import ARCHS, expected, load

GREEDY = GenerationParams(do_sample=False, max_new_tokens=8)
SAMPLED = GenerationParams(temperature=0.9, top_p=0.9, top_k=20, repetition_penalty=1.2, max_new_tokens=8)


def test_the_shape_plans_batches_by_padded_length():
    shape = BatchShape(rows=2, bucket=8)
    assert [shape.padded_length(n) for n in (1, 8, 9, 17)] == [8, 8, 16, 24]
    assert shape.plan([3, 12, 5, 7, 9]) == [[0, 2], [3], [1, 4]]


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("params", [GREEDY, SAMPLED], ids=["greedy", "seeded-sampling"])
def test_native_rows_are_the_same_alone_and_batched(arch, params):
    model = load(arch)
    ids = expected(arch)["input_ids"].tolist()
    rows = [ids[0], ids[1], ids[0][:5], ids[1][3:12]]  # different lengths: left padding differs
    shape = BatchShape(rows=4, bucket=16)
    seeds = [11, 12, 13, 14]
    batched = generate_ids(model, rows, seeds, params, shape, pad_id=0, eos=set())
    alone = [
        generate_ids(model, [r], [s], params, shape, pad_id=0, eos=set())[0]
        for r, s in zip(rows, seeds, strict=True)
    ]
    assert batched == alone
    assert all(len(out) == params.max_new_tokens for out in batched)
    if params is GREEDY:  # and the greedy tokens are the reference implementation's
        assert batched[0] == expected(arch)["generate_output_ids"][0, 16:].tolist()


def test_native_seeds_matter_and_reproduce():
    model = load("decilm")
    row = expected("decilm")["input_ids"][0].tolist()
    shape = BatchShape(rows=2, bucket=16)
    first = generate_ids(model, [row, row], [1, 2], SAMPLED, shape, pad_id=0, eos=set())
    again = generate_ids(model, [row], [1], SAMPLED, shape, pad_id=0, eos=set())
    assert first[0] == again[0] and first[0] != first[1]


def _texts(smollm, prompts, seeds, params, shape, stop=("<|im_end|>",), cancel=None):
    done = {}
    for step in stream_batch(
        smollm.model, smollm.tokenizer, prompts, seeds, params, shape, stop, 8192, cancel
    ):
        for event in step:
            if event.done:
                done[event.row] = (event.text, event.finish_reason, event.stats.completion_tokens)
    return done


def _prompts(smollm, questions):
    return [
        smollm.tokenizer.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
        )
        for q in questions
    ]


QUESTIONS = [
    "Name a planet.",
    "Write a long story about a dragon who loves tea and lives in a village by the sea.",
    "What is 2+2?",
    "Hi",
    "List three colors, one per line.",
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "params",
    [
        GenerationParams(do_sample=False, max_new_tokens=32),
        GenerationParams(temperature=0.8, top_p=0.9, repetition_penalty=1.1, max_new_tokens=32),
    ],
    ids=["greedy", "seeded-sampling"],
)
def test_smollm2_rows_are_the_same_alone_and_batched(smollm, params):
    prompts = _prompts(smollm, QUESTIONS)
    shape = BatchShape(rows=4, bucket=64)  # 5 rows: a full batch, then a batch of one with filler rows
    seeds = [7, 8, 9, 10, 11]
    batched = _texts(smollm, prompts, seeds, params, shape)
    alone = [_texts(smollm, [p], [s], params, shape)[0] for p, s in zip(prompts[:3], seeds, strict=False)]
    assert [batched[i] for i in range(3)] == alone
    assert len(batched) == 5 and all(text for text, _reason, _n in batched.values())


@pytest.mark.slow
def test_smollm2_batch_stop_strings_and_cancel(smollm):
    prompts = _prompts(
        smollm, ["List three colors, one per line.", "Count from 1 to 5, one number per line."]
    )
    shape = BatchShape(rows=2, bucket=64)
    params = GenerationParams(do_sample=False, max_new_tokens=40)
    results = _texts(smollm, prompts, [0, 0], params, shape, stop=("\n",))
    for text, reason, _n in results.values():
        assert reason == "stop_string" and "\n" not in text
    cancel = threading.Event()
    seen = []
    for step in stream_batch(
        smollm.model, smollm.tokenizer, prompts, [0, 0], params, shape, (), 8192, cancel
    ):
        seen += step
        if len(seen) >= 3:
            cancel.set()
    finals = [e for e in seen if e.done]
    assert {e.finish_reason for e in finals} == {"stopped"}
    assert all(e.stats.completion_tokens < 40 for e in finals)


def test_a_filler_row_never_changes_the_real_rows():
    """The filler rows copy a real row: their tokens are never reported."""
    model = load("openlm")
    row = expected("openlm")["input_ids"][1].tolist()
    out = generate_ids(model, [row], [3], GREEDY, BatchShape(rows=3, bucket=16), pad_id=0, eos=set())
    assert len(out) == 1 and torch.tensor(out).shape == (1, 8)
