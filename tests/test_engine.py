"""The generation engine's mechanics on a tiny model from the offline hub (fast): streaming, stop strings,
cancel, closing, seeds, context and length limits, continuous batching (joining, leaving), the layouts
and the probe; and on the native-architecture fixtures, the reference implementation's greedy tokens."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from playground.engine.generation.engine import Engine, run_alone
from playground.engine.generation.params import GenerationParams
from playground.engine.generation.probe import STEPS, probe, probe_prompts
from playground.engine.generation.request import GenerationRequest
from playground.engine.generation.runner import Layout, PackedRunner, RowState
from playground.engine.models.loader import LoadRequest

GREEDY = GenerationParams(do_sample=False, max_new_tokens=24, seed=0)
SAMPLED = GenerationParams(
    temperature=0.9, top_p=0.9, top_k=20, repetition_penalty=1.2, max_new_tokens=24, seed=5
)
PROMPTS = [
    "Name a fruit.",
    "Write a poem about the sea and the sky.",
    "What is 2+2?",
    "Hi",
    "List three colors.",
]


@pytest.fixture(scope="module")
def tiny(offline_hub, services):
    """The tiny Llama of the offline hub (dynamic RoPE x2 past 64 positions, as the Upstage card), bf16/fp32."""
    from tests.conftest_hub import use_offline_hub

    with pytest.MonkeyPatch.context() as patch:
        use_offline_hub(offline_hub.hf_home, patch)
        spec = services.registry.get("llama-65b-instruct").model
        return services.cache.get(LoadRequest.from_spec(spec, quantization="none"))


@pytest.fixture(scope="module")
def engine(tiny):
    result = probe(tiny.model, tiny.tokenizer, 8)
    return Engine(tiny.model, tiny.tokenizer, result.layout)


def request(i: int, params: GenerationParams = GREEDY, stop=(), **extra) -> GenerationRequest:
    return GenerationRequest.build(
        PROMPTS[i % len(PROMPTS)] * (1 + i // len(PROMPTS)), params.model_copy(update=extra), stop
    )


def final(engine, req, cancel=None):
    *_, last = engine.stream([req], cancel)
    return last


def concurrently(fns) -> list:
    results = [None] * len(fns)
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, fns[k]())) for k in range(len(fns))]
    for k, thread in enumerate(threads):
        thread.start()
        time.sleep(0.02 * (k % 3))  # some join the running batch a few passes later
    for thread in threads:
        thread.join(120)
    return results


def test_streams_deltas_that_add_up_with_stats(engine):
    events = list(engine.stream([request(1)]))
    *deltas, last = events
    assert len(deltas) > 3 and last.done and last.index == 0
    assert "".join(e.delta for e in events) == last.text and last.text
    assert last.finish_reason in ("eos", "length")
    assert last.stats.completion_tokens > 0 and last.stats.ttft_s is not None and last.stats.tokens_per_s > 0
    assert last.seed == 0


def test_a_stop_string_split_across_tokens_ends_the_answer_and_is_hidden(engine, tiny):
    full = final(engine, request(1))
    ids = tiny.tokenizer(full.text, add_special_tokens=False)["input_ids"]
    pieces = [tiny.tokenizer.decode(ids[: i + 1]) for i in range(len(ids))]
    k = next(
        i
        for i in range(3, len(ids) - 1)
        if len(pieces[i]) - len(pieces[i - 1]) >= 2 and pieces[i + 1] != pieces[i]
    )
    stop = pieces[k][-2:] + pieces[k + 1][len(pieces[k]) :][:2]
    assert stop in full.text
    cut = final(engine, request(1, stop=(stop,)))
    assert cut.finish_reason == "stop_string" and stop not in cut.text
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.stats.completion_tokens < full.stats.completion_tokens


def test_cancel_stops_within_one_pass(engine):
    cancel = threading.Event()
    events = engine.stream([request(0, max_new_tokens=400)], cancel)
    seen = next(events).stats.completion_tokens
    cancel.set()
    rest = list(events)
    assert rest[-1].finish_reason == "stopped" and rest[-1].stats.completion_tokens <= seen + 3


def test_closing_the_stream_frees_the_row(engine):
    events = engine.stream([request(0, max_new_tokens=400)])
    next(events)
    events.close()
    passes = engine.passes
    time.sleep(0.3)
    assert engine.passes - passes <= 2  # the row left at the next pass; nothing else runs


def test_a_seed_reproduces_with_concurrent_sampling_and_another_seed_differs(engine):
    alone = final(engine, request(2, SAMPLED)).text
    noise = threading.Thread(target=lambda: final(engine, request(2, SAMPLED, seed=None)))
    noise.start()
    again = final(engine, request(2, SAMPLED)).text
    noise.join()
    other = final(engine, request(2, SAMPLED, seed=99))
    assert alone == again and other.seed == 99 and other.text != alone


def test_a_prompt_over_the_context_is_an_error_event_and_the_others_run(engine):
    too_long = GenerationRequest.build("Hi", GREEDY.model_copy(update={"max_new_tokens": 60}), (), 16)
    events = [e for e in engine.stream([too_long, request(0)]) if e.done]
    by_index = {e.index: e for e in events}
    assert (
        by_index[0].finish_reason == "error"
        and "exceeds the model's context of 16 tokens" in by_index[0].error
    )
    assert by_index[1].finish_reason in ("eos", "length") and by_index[1].error is None


def test_length_finish_reason(engine):
    last = final(engine, request(1, max_new_tokens=5))
    assert last.finish_reason == "length" and last.stats.completion_tokens == 5


def test_concurrent_requests_share_passes_and_give_the_texts_they_give_alone(engine):
    requests = [request(i, SAMPLED if i % 2 else GREEDY, seed=100 + i) for i in range(12)]
    alone = [final(engine, r) for r in requests]
    passes = engine.passes
    together = concurrently([lambda r=r: final(engine, r) for r in requests])
    assert [(a.text, a.finish_reason) for a in alone] == [(t.text, t.finish_reason) for t in together]
    if engine.layout.batched:
        assert engine.peak_rows >= 2  # they really shared forward passes
        assert engine.passes - passes < sum(t.stats.completion_tokens for t in together)


def test_a_group_streams_every_request_and_a_cancelled_one_leaves_the_others(engine):
    requests = [request(i, seed=i) for i in range(4)]
    alone = [final(engine, r).text for r in requests]
    finals = {e.index: e for e in engine.stream(requests) if e.done}
    assert [finals[i].text for i in range(4)] == alone
    cancel = threading.Event()
    results = [None, None, None]

    def cancelled():
        events = []
        for event in engine.stream([request(0, max_new_tokens=300)], cancel):
            events.append(event)
            if len(events) == 3:
                cancel.set()
        results[2] = events[-1]

    threads = [
        threading.Thread(target=lambda k=k: results.__setitem__(k, final(engine, requests[k])))
        for k in (0, 1)
    ]
    threads.append(threading.Thread(target=cancelled))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results[2].finish_reason == "stopped" and results[2].stats.completion_tokens < 300
    assert [r.text for r in results[:2]] == alone[:2]


def test_a_request_joining_mid_batch_streams_at_once(engine):
    first, second = [], []
    runner = threading.Thread(
        target=lambda: [
            first.append((time.perf_counter(), e)) for e in engine.stream([request(1, max_new_tokens=300)])
        ]
    )
    runner.start()
    while len(first) < 5:
        time.sleep(0.005)
    for event in engine.stream([request(0, max_new_tokens=8)]):
        second.append((time.perf_counter(), event))
    runner.join(120)
    first_done = first[-1][0]
    assert second[-1][1].done and second[-1][0] < first_done  # answered while the long one ran
    assert first[-1][1].stats.completion_tokens == 300


@pytest.mark.parametrize("name", ["packed", "fixed", "single"])
def test_every_layout_gives_each_row_its_alone_text(tiny, name):
    """Past 64 positions the rows take the dynamic-RoPE path, each with its own length's frequencies."""
    layout = Layout(name, 4)
    requests = [request(i, SAMPLED if i % 2 else GREEDY, seed=i) for i in range(7)]
    requests.append(
        GenerationRequest.build(PROMPTS[1] * 12, GREEDY.model_copy(update={"max_new_tokens": 30}))
    )
    alone = [run_alone(tiny.model, tiny.tokenizer, layout, [r])[0].text for r in requests]
    together = [e.text for e in run_alone(tiny.model, tiny.tokenizer, layout, requests)]
    if name == "packed" and probe(tiny.model, tiny.tokenizer, 4).layout.name != "packed":
        pytest.skip("this device does not batch the tiny model reproducibly in the packed layout")
    assert together == alone and all(alone)


def test_the_probe_picks_a_layout_and_says_why(tiny):
    result = probe(tiny.model, tiny.tokenizer, 8)
    assert result.layout.name in ("packed", "fixed", "single") and result.reason
    if result.batched:
        assert result.rows_checked == 8 and "bit for bit" in result.summary()
    assert probe(tiny.model, tiny.tokenizer, 1).layout == Layout("single", 1)
    lengths = [len(p) for p in probe_prompts(tiny.tokenizer, 8)]
    assert any(n % 64 > 64 - STEPS for n in lengths)  # some prompts cross a bucket boundary while decoding


@pytest.mark.parametrize("arch", ["decilm", "openlm"])
def test_native_greedy_tokens_and_logits_are_the_reference_implementations(arch):
    """Through the engine's runner, the prompt packed beside another row: the reference code's greedy
    tokens and the logits that chose them; for DeciLM also a 48-token input past its 32 positions
    (dynamic NTK RoPE, computed per row by the engine)."""
    from tests.test_native_archs import STRICT, expected, load

    model = load(arch)
    data = expected(arch)
    prompt = data["generate_prompt_ids"][0].tolist()
    want = data["generate_output_ids"][0, len(prompt) :].tolist()
    runner = PackedRunner(model, Layout("packed", 4))
    rows = [RowState(prompt, slot=0), RowState(data["input_ids"][1].tolist(), slot=1)]
    runner.reserve(len(prompt) + len(want) + 2, 2)
    tokens, chosen_by = [], []
    with torch.inference_mode():
        logits = runner.forward([], rows)
        for _ in want:
            for row, step in zip(rows, logits, strict=True):
                row.next_token = int(step.argmax())
            tokens.append(rows[0].next_token)
            chosen_by.append(logits[0].clone())
            logits = runner.forward(rows, [])
    assert tokens == want
    torch.testing.assert_close(torch.stack(chosen_by), data["generate_step_logits"], **STRICT)
    if "long_input_ids" in data:
        long = RowState(data["long_input_ids"][0].tolist(), slot=0)
        short = RowState(prompt, slot=1)
        runner = PackedRunner(model, Layout("packed", 4))
        runner.reserve(64, 2)
        with torch.inference_mode():
            last = runner.forward([], [long, short])[0]
        torch.testing.assert_close(last, data["long_logits"][0, -1], **STRICT)


def test_a_probe_is_remembered_for_the_same_model_machine_and_code(tiny, services, tmp_path):
    from playground.engine.backends.local import LocalBackend
    from playground.engine.generation.probe import ProbeRecord

    record = tmp_path / "probes.json"
    first = LocalBackend(services.cache, 8, ProbeRecord(record))
    first.engine(tiny)
    proven = first.probe_result(tiny.request)
    assert record.is_file() and "remembered" not in proven.reason
    again = LocalBackend(services.cache, 8, ProbeRecord(record))
    again.engine(tiny)
    remembered = again.probe_result(tiny.request)
    assert remembered.layout == proven.layout and "remembered from an earlier probe" in remembered.reason
    other_rows = LocalBackend(services.cache, 4, ProbeRecord(record))  # another key: probed anew
    other_rows.engine(tiny)
    assert "remembered" not in other_rows.probe_result(tiny.request).reason
