"""Streaming on the real embedded SmolLM2 model."""

import threading
import time

import pytest

from playground.engine.generation.legacy import stream
from playground.engine.generation.params import GenerationParams
from playground.engine.models.templates import Message
from playground.errors import PlaygroundError

pytestmark = pytest.mark.slow

GREEDY = GenerationParams(do_sample=False, temperature=0.0, max_new_tokens=40)


def prompt_for(smollm, text: str) -> str:
    messages = [{"role": "user", "content": text}]
    return smollm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def run(smollm, prompt, params=GREEDY, **kwargs):
    return list(stream(smollm.model, smollm.tokenizer, prompt, params, **kwargs))


def test_streams_deltas_that_add_up(smollm):
    events = run(smollm, prompt_for(smollm, "List three fruits."))
    *deltas, last = events
    assert len(deltas) > 3 and last.done
    assert "".join(e.delta for e in events) == last.text
    assert last.text.strip()
    assert last.finish_reason in ("eos", "length")
    assert last.stats.completion_tokens > 0 and last.stats.ttft_s is not None and last.stats.tokens_per_s > 0


def test_stop_string_split_across_tokens_ends_generation_and_is_hidden(smollm):
    prompt = prompt_for(smollm, "Write a short story about a cat.")
    full = run(smollm, prompt)[-1]
    ids = smollm.tokenizer(full.text, add_special_tokens=False)["input_ids"]
    # a stop string made of the end of one token and the start of the next
    pieces = [smollm.tokenizer.decode(ids[: i + 1]) for i in range(len(ids))]
    k = next(i for i in range(5, len(ids) - 1) if len(pieces[i]) - len(pieces[i - 1]) >= 3)
    stop = pieces[k][-2:] + pieces[k + 1][len(pieces[k]) :][:2]
    assert stop in full.text
    cut = run(smollm, prompt, stop=[stop])[-1]
    assert cut.finish_reason == "stop_string"
    assert stop not in cut.text
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.stats.completion_tokens < full.stats.completion_tokens


def test_cancel_stops_within_one_token_and_frees_the_worker(smollm):
    cancel = threading.Event()
    params = GREEDY.model_copy(update={"max_new_tokens": 200})
    events = stream(
        smollm.model, smollm.tokenizer, prompt_for(smollm, "Tell me a long story."), params, cancel=cancel
    )
    first = next(events)
    seen = first.stats.completion_tokens
    cancel.set()
    rest = list(events)
    assert rest[-1].finish_reason == "stopped"
    assert rest[-1].stats.completion_tokens <= seen + 2
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name == "generate"]


def test_closing_the_iterator_stops_the_worker(smollm):
    params = GREEDY.model_copy(update={"max_new_tokens": 300})
    events = stream(smollm.model, smollm.tokenizer, prompt_for(smollm, "Tell me a long story."), params)
    next(events)
    events.close()
    deadline = time.time() + 5
    while [t for t in threading.enumerate() if t.name == "generate"] and time.time() < deadline:
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "generate"]


def test_seeded_sampling_reproduces_even_with_concurrent_sampling(smollm):
    prompt = prompt_for(smollm, "Invent a name for a dragon.")
    params = GenerationParams(temperature=1.2, top_p=0.95, max_new_tokens=20, seed=1234)
    alone = run(smollm, prompt, params)[-1].text
    results = {}

    def other():
        run(smollm, prompt, params.model_copy(update={"seed": None}))

    noise = threading.Thread(target=other)
    noise.start()
    results["together"] = run(smollm, prompt, params)[-1].text
    noise.join()
    assert alone == results["together"]
    different = run(smollm, prompt, params.model_copy(update={"seed": 99}))[-1]
    assert different.seed == 99 and different.text != alone


def test_max_new_tokens_above_the_context_is_refused(smollm):
    with pytest.raises(PlaygroundError, match="exceeds the model's context of 64 tokens"):
        run(
            smollm,
            prompt_for(smollm, "Hi"),
            GREEDY.model_copy(update={"max_new_tokens": 60}),
            context_length=64,
        )


def test_length_finish_reason(smollm):
    last = run(
        smollm, prompt_for(smollm, "Describe the sea."), GREEDY.model_copy(update={"max_new_tokens": 5})
    )[-1]
    assert last.finish_reason == "length" and last.stats.completion_tokens == 5


def test_chat_service_shows_errors_in_the_column_and_stores_them(services):
    from playground.services.chat import AnswerRequest

    cid = services.compare.start(["smollm2-135m-instruct"])
    bad = AnswerRequest(
        "smollm2-135m-instruct", [Message(role="user", content="hi")], params={"max_new_tokens": 9000}
    )
    last = list(services.chat.answer(bad, cid))[-1]
    assert last.done and last.finish_reason == "error" and "exceeds the model's context" in last.error
    stored = services.store.turns(cid)[-1]
    assert stored.finish_reason == "error" and "exceeds" in stored.error
