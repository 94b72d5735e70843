"""Batched serving (continuous batching) on the real embedded model: every request's guarantees
hold whether it runs alone or next to others."""

from __future__ import annotations

import threading
import time

import pytest

from playground.engine.backends.local import LocalBackend
from playground.engine.generation.params import GenerationParams
from playground.engine.models.loader import LoadRequest
from playground.engine.sampling import pick_token
from playground.engine.serving import ServingEngine, probe

pytestmark = pytest.mark.slow
TEMPLATE = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
QUESTIONS = ["Name a fruit.", "Write a poem about the sea.", "What is 2+2?", "Tell me a joke about cats."]


def params(i: int, **extra) -> GenerationParams:
    """Different settings per request: sampling with its own seed, top-k, top-p, penalty; one greedy."""
    if i == 2:
        return GenerationParams(max_new_tokens=24, do_sample=False, **extra)
    return GenerationParams(
        max_new_tokens=24,
        do_sample=True,
        temperature=0.7 + 0.1 * i,
        top_p=0.9,
        top_k=40 * i,
        repetition_penalty=1.0 + 0.1 * i,
        seed=1000 + i,
        **extra,
    )


@pytest.fixture(scope="module")
def engine(smollm):
    backend = LocalBackend(serving_rows=8)
    engine = backend.engine(smollm)
    assert engine is not None and engine.width in ("rows", "fixed")
    return engine


def answer(engine: ServingEngine, i: int, stop=(), cancel=None, **extra):
    *_, last = engine.stream(TEMPLATE.format(QUESTIONS[i]), params(i, **extra), stop, cancel=cancel)
    return last


def concurrently(fns) -> list:
    results = [None] * len(fns)

    def run(k):
        results[k] = fns[k]()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(fns))]
    for k, thread in enumerate(threads):
        thread.start()
        time.sleep(0.15 * (k % 2))  # some join the running batch a few steps later
    for thread in threads:
        thread.join(300)
    return results


def test_concurrent_seeded_requests_give_the_texts_they_give_alone(engine):
    alone = [answer(engine, i) for i in range(4)]
    steps_before = engine.steps
    together = concurrently([lambda i=i: answer(engine, i) for i in range(4)])
    assert [(a.text, a.finish_reason) for a in alone] == [(t.text, t.finish_reason) for t in together]
    assert all(a.text for a in alone)
    assert engine.peak_rows >= 2  # they really shared forward passes
    assert engine.steps - steps_before < sum(t.stats.completion_tokens for t in together)


def test_a_cancelled_request_leaves_the_others_running(engine):
    alone = [answer(engine, i) for i in (0, 1)]
    cancel = threading.Event()
    results = [None, None, None]

    def cancelled():
        events = []
        for event in engine.stream(
            TEMPLATE.format("Count from one to one hundred."),
            GenerationParams(max_new_tokens=200),
            cancel=cancel,
        ):
            events.append(event)
            if len(events) == 3:
                cancel.set()
        results[2] = events[-1]

    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, answer(engine, k))) for k in (0, 1)]
    threads.append(threading.Thread(target=cancelled))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert results[2].finish_reason == "stopped" and results[2].stats.completion_tokens < 20
    assert [r.text for r in results[:2]] == [a.text for a in alone]


def test_a_request_joining_mid_batch_streams_at_once(engine):
    first_events, second_events = [], []
    long_params = GenerationParams(max_new_tokens=120, do_sample=False)

    def long():
        for event in engine.stream(TEMPLATE.format("Write a long story about a dragon."), long_params):
            first_events.append((time.perf_counter(), event))

    runner = threading.Thread(target=long)
    runner.start()
    while len(first_events) < 5:
        time.sleep(0.01)
    for event in engine.stream(
        TEMPLATE.format(QUESTIONS[0]), GenerationParams(max_new_tokens=8, do_sample=False)
    ):
        second_events.append((time.perf_counter(), event))
    runner.join(300)
    first_done = first_events[-1][0]
    assert second_events[-1][1].done and second_events[-1][1].text
    assert second_events[0][0] < first_done and second_events[-1][0] < first_done  # streamed meanwhile
    assert first_events[-1][1].stats.completion_tokens > 100


def test_stop_strings_split_across_tokens_end_a_row(engine):
    greedy = GenerationParams(max_new_tokens=40, do_sample=False)
    *_, full = engine.stream(TEMPLATE.format(QUESTIONS[2]), greedy)
    stop = full.text[4:9]
    *_, cut = engine.stream(TEMPLATE.format(QUESTIONS[2]), greedy, [stop])
    assert cut.finish_reason == "stop_string" and cut.text == full.text[: full.text.index(stop)]


def test_the_probe_finds_the_model_batchable(smollm):
    assert probe(smollm.model, smollm.tokenizer, 4) in ("rows", "fixed")


def test_pick_token_keeps_the_nucleus():
    import torch

    logits = torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0, -1.0])

    def draws(**kw) -> set[int]:
        p = GenerationParams(do_sample=True, temperature=1.0, seed=1, **kw)
        return {pick_token(logits, torch.tensor([5]), p, torch.Generator().manual_seed(s)) for s in range(60)}

    # probabilities 0.63, 0.23, 0.09, …: the smallest most-likely set reaching 0.8 is {0, 1}
    assert draws(top_p=0.8, top_k=0) == {0, 1}
    assert draws(top_p=0.5, top_k=0) == {0}
    assert draws(top_p=1.0, top_k=3) == {0, 1, 2}
    assert (
        pick_token(logits, torch.tensor([0]), GenerationParams(do_sample=False, repetition_penalty=2.0), None)
        == 1
    )


def test_concurrent_api_calls_are_batched_and_reproduce(live_app, services):
    """Through the app: 4 clients at once get the texts they get one at a time (seeded sampling)."""
    import json

    from gradio_client import Client

    clients = [Client(live_app, verbose=False) for _ in range(4)]

    def ask(k: int) -> str:
        params = json.dumps({"max_new_tokens": 20, "do_sample": True, "temperature": 0.9, "seed": 77 + k})
        messages = json.dumps([{"role": "user", "content": QUESTIONS[k]}])
        return clients[k].predict("smollm2-135m-instruct", messages, params, None, api_name="/generate")

    alone = [ask(k) for k in range(4)]
    preset = services.registry.get("smollm2-135m-instruct")
    engine = services.chat.backend.engine(services.cache.get(LoadRequest.from_spec(preset.model)))
    steps = engine.steps
    together = concurrently([lambda k=k: ask(k) for k in range(4)])
    assert together == alone and all(alone)
    assert engine.steps - steps < 4 * 19  # fewer forward passes than tokens: they were batched
