"""Where compute runs: loads on short-lived threads, columns in the caller's context."""

import contextvars
import threading

import pytest

from playground.engine.models.cache import ModelCache
from playground.engine.models.loader import LoadRequest, load
from playground.engine.models.templates import Message
from playground.engine.threads import isolated, start_thread
from playground.services.answers.chat import AnswerRequest, ChatService
from playground.services.answers.compare import CompareService

REQUEST_ID = contextvars.ContextVar("request_id", default=None)


def test_isolated_runs_elsewhere_returns_raises_and_keeps_the_context():
    REQUEST_ID.set("r-1")
    seen = isolated(lambda: (threading.current_thread(), REQUEST_ID.get()))
    assert seen[0] is not threading.current_thread()
    assert not seen[0].is_alive()  # gone, and its OpenMP team with it
    assert seen[1] == "r-1"
    with pytest.raises(ZeroDivisionError):
        isolated(lambda: 1 / 0)


def test_start_thread_runs_in_a_copy_of_the_context():
    REQUEST_ID.set("r-2")
    seen = []
    start_thread(lambda: seen.append(REQUEST_ID.get()), name="probe").join()
    assert seen == ["r-2"]


@pytest.mark.slow
def test_a_load_runs_on_a_thread_that_ends_and_progress_reaches_the_request(services):
    """The real loader on a fresh cache: not on the asking thread, and the progress callback
    (Gradio finds its bar through context variables) sees the request's context from a column."""
    where, progress_seen = [], []

    def recording_load(*args):
        where.append(threading.current_thread())
        return load(*args)

    cache = ModelCache(services.cache.device, services.cache.cache_root, loader=recording_load)
    compare = CompareService(ChatService(services.registry, cache, services.store), services.store)
    preset = "smollm2-135m-instruct-greedy"
    conversation = compare.start([preset], mode="api")
    request = AnswerRequest(
        preset=preset, messages=[Message(role="user", content="Hi")], params={"max_new_tokens": 2}
    )
    REQUEST_ID.set("r-3")
    snapshots = list(
        compare.run(
            conversation, [request], progress=lambda fraction, desc: progress_seen.append(REQUEST_ID.get())
        )
    )
    assert snapshots[-1][0].done and not snapshots[-1][0].error
    assert cache.loaded() == [LoadRequest.from_spec(services.registry.get(preset).model)]
    assert len(where) == 1 and where[0] is not threading.current_thread() and not where[0].is_alive()
    assert progress_seen and set(progress_seen) == {"r-3"}
