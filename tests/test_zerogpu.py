"""The ZeroGPU path without ZeroGPU: the GPU generator in a forked worker, exactly as ZeroGPU runs it
(arguments and yielded values pickled through a queue, nothing shared back), the dynamic duration,
and the picklable boundary. ``SPACES_ZERO_GPU`` is never set: the decorator returns the function."""

from __future__ import annotations

import multiprocessing
import pickle
import time

import pytest

from playground.engine.backends import zerogpu
from playground.engine.backends.base import Backends
from playground.engine.backends.zerogpu import GPURequest, ZeroGPUBackend, gpu_duration
from playground.engine.generation.params import GenerationParams
from playground.engine.generation.request import GenerationRequest
from playground.engine.generation.runner import Layout
from playground.engine.models.loader import LoadRequest
from playground.engine.models.templates import Message
from playground.services.answers.chat import AnswerRequest, ChatService
from playground.services.notebook.grid import NotebookRequest
from playground.services.notebook.prompts import build_rows
from playground.services.notebook.service import NotebookService

_END = "__end__"
KEY = LoadRequest("org/m", "main", "transformers", "auto", "none", False)


class ForkedGPU:
    """Run ``generate_on_gpu`` the way ZeroGPU does: a forked worker per call, the request and every
    yielded value pickled; closing the consumer closes the worker's generator."""

    def __init__(self):
        self.exits: list[tuple[int, float]] = []  # (exit code, seconds from close to exit)

    def __call__(self, request: GPURequest):
        context = multiprocessing.get_context("fork")
        results, stop = context.Queue(), context.Event()
        payload = pickle.dumps(request)  # what ZeroGPU puts on its argument queue

        def worker():
            items = zerogpu.generate_on_gpu(pickle.loads(payload))
            try:
                for item in items:
                    results.put(pickle.dumps(item))
                    if stop.is_set():
                        break
            finally:
                items.close()  # the generation thread ends here
                results.put(_END)

        process = context.Process(target=worker, daemon=True)
        process.start()
        closed_at = None
        try:
            while True:
                item = results.get(timeout=120)
                if item == _END:
                    break
                yield pickle.loads(item)
        finally:
            closed_at = time.perf_counter()
            stop.set()
            process.join(30)
            self.exits.append((process.exitcode, time.perf_counter() - closed_at))


def zerogpu_chat(services) -> tuple[ChatService, ForkedGPU]:
    gpu = ForkedGPU()
    backends = Backends(ZeroGPUBackend(services.cache, gpu), services.chat.backends.remote)
    return ChatService(services.registry, services.cache, services.store, backends), gpu


def gpu_request(
    tokens: int, speed=20.0, prompt=100, weights=2 * 1024**3, count=1, layout=Layout("packed", 16)
):
    params = GenerationParams(max_new_tokens=tokens, seed=1)
    requests = tuple(GenerationRequest.build("p", params) for _ in range(count))
    return GPURequest(KEY, requests, layout, 16, prompt, speed, weights)


def test_the_duration_fits_the_request():
    def asked(tokens, speed=20.0, **kw):
        return gpu_duration(gpu_request(tokens, speed, **kw))

    durations = [asked(n) for n in (1, 16, 64, 256, 1024, 4096)]
    assert durations == sorted(durations) and durations[0] < durations[-1]  # monotone in max_new_tokens
    assert max(durations) == zerogpu.MAX_DURATION_S  # capped
    for tokens, speed in [(64, 20.0), (256, 10.0), (500, 50.0)]:
        need = zerogpu.BASE_OVERHEAD_S + 1 + 100 / zerogpu.PREFILL_TOKENS_PER_S + tokens / speed
        assert asked(tokens, speed) >= need  # never below what the answer needs at that speed
    assert asked(64, speed=100.0) < asked(64, speed=10.0)  # faster models ask for shorter slots
    assert asked(64, count=40) > asked(64, count=16)  # past one pass of rows, later passes take longer
    assert asked(64, layout=None) > asked(64)  # the first call of a model also probes it


def test_what_crosses_the_boundary_is_small_and_picklable():
    request = gpu_request(64, count=2)
    data = pickle.dumps(request)
    assert len(data) < 3000 and pickle.loads(data) == request


@pytest.mark.slow
def test_an_answer_streams_through_a_forked_worker_and_is_stored_as_streamed(services):
    chat, gpu = zerogpu_chat(services)
    conversation = services.compare.start(["smollm2-135m-instruct-greedy"])
    request = AnswerRequest(
        "smollm2-135m-instruct-greedy",
        [Message(role="user", content="Name three rivers.")],
        params={"max_new_tokens": 40},
    )
    updates = list(chat.answer(request, conversation))
    final = updates[-1]
    assert len(updates) > 3 and final.done and final.error is None and final.text
    turn = next(t for t in services.store.turns(conversation) if t.id == final.turn_id)
    assert (
        turn.output == final.text and turn.device == "zerogpu:cpu" and turn.finish_reason in ("eos", "length")
    )
    assert turn.completion_tokens == final.stats["completion_tokens"] > 0
    local = list(services.chat.answer(request, services.compare.start([request.preset])))[-1]
    assert local.text == final.text  # the same greedy answer as in this process
    assert gpu.exits and all(code == 0 for code, _s in gpu.exits)


@pytest.mark.slow
def test_closing_the_consumer_stops_the_workers_generation(services):
    chat, gpu = zerogpu_chat(services)
    conversation = services.compare.start(["smollm2-135m-instruct-greedy"])
    request = AnswerRequest(
        "smollm2-135m-instruct-greedy",
        [Message(role="user", content="Write a very long story about the sea.")],
        params={"max_new_tokens": 400},
    )
    stream = chat.answer(request, conversation)
    for update in stream:
        if len(update.text) > 20:
            break
    stream.close()  # a closed tab
    code, seconds = gpu.exits[-1]
    assert code == 0 and seconds < 10  # the worker's generation ended, the worker exited
    turn = services.store.turns(conversation)[-1]
    assert turn.finish_reason == "stopped" and 0 < turn.completion_tokens < 400


@pytest.mark.slow
def test_a_notebook_grid_runs_in_forked_workers_with_the_local_texts(services):
    chat, gpu = zerogpu_chat(services)
    rows = build_rows([{"prompt": p} for p in ("Name a planet.", "Name a moon.", "Name a star.")])
    name = "smollm2-135m-instruct"
    params = {name: {"max_new_tokens": 12, "temperature": 0.9, "top_k": 30, "repetition_penalty": 1.1}}
    forked = list(
        NotebookService(chat, services.store, services.feedback).run(
            NotebookRequest([name], rows, params, seed=5)
        )
    )[-1]
    assert [c.status for c in forked.cells] == ["done"] * 3
    here = [
        list(chat_answer(services.chat, services, name, row.user, {**params[name], "seed": 5}))[-1].text
        for row in rows
    ]
    assert [c.text for c in forked.cells] == here  # seeded sampling: the same texts as in this process
    stored = {t.id: t for t in services.store.turns(forked.conversation_id)}
    assert [stored[c.turn_id].output for c in forked.cells] == [c.text for c in forked.cells]
    assert [stored[c.turn_id].device for c in forked.cells] == ["zerogpu:cpu"] * 3
    layout = chat.backends.machine.probe_result(LoadRequest.from_spec(services.registry.get(name).model))
    assert layout is not None  # probed in the first worker, kept by the main process
    assert gpu.exits and all(code == 0 for code, _s in gpu.exits)


def chat_answer(chat, services, name, text, params):
    request = AnswerRequest(name, [Message(role="user", content=text)], params=params)
    return chat.answer(request, services.compare.start([name]))
