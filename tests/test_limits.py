"""Abuse limits: the gate itself, and through a real app with tight limits (real HTTP, real model)."""

from __future__ import annotations

import json
import time

import pytest
from gradio_client import Client
from gradio_client.utils import Status

from playground.errors import PlaygroundError
from playground.services.answers.limits import Gate, Limits, Visitor
from playground.settings import Settings
from playground.store.models import Conversation, Turn
from tests.conftest import free_port, fresh_services

ONE = json.dumps(["smollm2-135m-instruct-greedy"])


def stored_rows(store) -> tuple[int, int]:
    return store.count(Conversation), store.count(Turn)


def say(text: str) -> str:
    return json.dumps([{"role": "user", "content": text}])


def test_the_gate_counts_sessions_and_addresses():
    gate = Gate(Limits(session_generations=1, address_factor=2))
    a, b, c = (Visitor(s, "198.51.100.7") for s in "abc")
    with gate.generating(a):
        with pytest.raises(PlaygroundError, match="this session already has 1 generation"):
            with gate.generating(a):
                pass
        with gate.generating(b):  # the address allows 2
            with pytest.raises(PlaygroundError, match="your network address already has 2"):
                with gate.generating(c):
                    pass
    with gate.generating(c):  # every slot came back
        assert gate.running(c) == 1
    assert gate.running(a) == 0


def test_votes_per_hour_slide_with_the_clock():
    now = [1000.0]
    gate = Gate(Limits(votes_per_hour=2), clock=lambda: now[0])
    me = Visitor("s")
    gate.vote(me)
    gate.vote(me)
    with pytest.raises(PlaygroundError, match="voted 2 times in the last hour.*about 60 minute"):
        gate.vote(me)
    gate.vote(Visitor("someone else"))
    now[0] += 3601
    gate.vote(me)


@pytest.fixture(scope="module")
def tight_app(tmp_path_factory, model_cache_dir):
    """A real app whose limits are small enough to hit: 1 generation per visitor and 2 overall,
    600-character messages, 2 rounds per conversation, 2 votes and 2 ratings an hour, addresses like
    sessions."""
    from playground.ui.app import CSS, build_app

    limits = Limits(
        max_input_chars=600,
        max_turns=2,
        session_generations=1,
        total_generations=2,
        votes_per_hour=2,
        address_factor=1,
        ratings_per_hour=2,
    )
    services = fresh_services(tmp_path_factory.mktemp("tight"), model_cache_dir, limits=limits)
    demo = build_app(services)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CSS)
    yield f"http://127.0.0.1:{port}/", services
    demo.close()


def long_job(client: Client):
    job = client.submit(
        "smollm2-135m-instruct",
        say("Write a very long story about a dragon."),
        json.dumps({"max_new_tokens": 400}),
        None,
        api_name="/generate",
    )
    deadline = time.time() + 120
    while not job.outputs():
        assert time.time() < deadline and not job.done(), "the long answer never started"
        time.sleep(0.05)
    return job


def test_a_second_generation_of_one_visitor_is_refused_and_others_queue(tight_app):
    url, services = tight_app
    mine = Client(url, verbose=False)
    running = long_job(mine)
    with pytest.raises(Exception, match="this session already has 1 generation"):
        mine.predict("smollm2-135m-instruct", say("Hi"), "{}", None, api_name="/generate")
    # a second visitor takes the other overall slot; a third waits in the queue and sees its position
    second = Client(url, verbose=False)
    also_running = long_job(second)
    third = Client(url, verbose=False)
    waiting = third.submit(
        "smollm2-135m-instruct-greedy",
        say("Name a tree."),
        json.dumps({"max_new_tokens": 4}),
        None,
        api_name="/generate",
    )
    deadline = time.time() + 30
    while waiting.status().code != Status.IN_QUEUE:
        assert time.time() < deadline, f"never queued: {waiting.status()}"
        time.sleep(0.05)
    assert waiting.status().rank == 0  # first in line: the page shows its queue position
    for client, job in ((mine, running), (second, also_running)):
        client.predict(api_name="/stop")
        job.result(timeout=60)
    assert "".join(waiting.result(timeout=120))  # its turn came once a slot was free


def test_the_same_address_counts_across_sessions(tight_app):
    url, _ = tight_app
    headers = {"x-forwarded-for": "203.0.113.9, 10.0.0.1"}
    first, second = Client(url, verbose=False, headers=headers), Client(url, verbose=False, headers=headers)
    running = long_job(first)
    try:
        with pytest.raises(Exception, match="your network address already has 1 generation"):
            second.predict("smollm2-135m-instruct", say("Hi"), "{}", None, api_name="/generate")
    finally:
        first.predict(api_name="/stop")
        running.result(timeout=60) if not running.done() else None


def test_size_turn_and_vote_limits_answer_with_their_cause_and_store_nothing(tight_app):
    url, services = tight_app
    client = Client(url, verbose=False)
    store = services.store
    before = stored_rows(store)
    with pytest.raises(Exception, match="1,000,000 characters; the limit here is 600"):
        client.predict("smollm2-135m-instruct", say("x" * 1_000_000), "{}", None, api_name="/generate")
    three_rounds = json.dumps(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": "d"},
            {"role": "user", "content": "e"},
        ]
    )
    with pytest.raises(Exception, match="reached 2 rounds"):
        client.predict(ONE, three_rounds, "{}", "", "", api_name="/compare")
    assert stored_rows(store) == before
    conversations = []
    for _ in range(3):
        job = client.submit(
            json.dumps(["smollm2-135m-instruct-greedy"] * 2),
            say("Hi"),
            json.dumps({"max_new_tokens": 2}),
            "",
            "",
            api_name="/compare",
        )
        final = job.result(timeout=120)
        conversations.append(final["conversation_id"])
    client.predict(conversations[0], 0, "0", api_name="/vote")
    client.predict(conversations[1], 0, "tie", api_name="/vote")
    with pytest.raises(Exception, match="voted 2 times in the last hour"):
        client.predict(conversations[2], 0, "1", api_name="/vote")
    assert len(store.votes()) == 2


def test_ratings_scores_and_comments_per_hour_across_endpoints_store_nothing_past_the_limit(tight_app):
    url, services = tight_app
    client = Client(url, verbose=False)
    store = services.store
    pair = json.dumps(["smollm2-135m-instruct-greedy"] * 2)
    final = client.submit(pair, say("Hi"), json.dumps({"max_new_tokens": 2}), "", "", api_name="/compare")
    answer = final.result(timeout=120)["columns"][0]["turn_id"]
    grid = client.submit(
        ONE, json.dumps([{"prompt": "Hi"}]), "{}", 1, "{prompt}", 0, api_name="/notebook_run"
    ).result(timeout=120)
    cell = grid["cells"][0]["turn_id"]
    client.predict(answer, 1, "[]", "", api_name="/rate")
    with pytest.raises(Exception, match="unknown like reason"):  # a refused rating does not count
        client.predict(answer, 1, '["nope"]', "", api_name="/rate")
    client.predict(cell, 0, 4, "[]", "fine", api_name="/notebook_rate")
    before = (len(store.ratings()), len(store.scores()))
    over = r"you have rated or commented 2 times in the last hour, the most allowed here \(2, --ratings-per-hour\)"
    with pytest.raises(Exception, match=over):
        client.predict(cell, -1, 0, "[]", "", api_name="/notebook_rate")
    with pytest.raises(Exception, match=over):
        client.predict(answer, -1, "[]", "a comment", api_name="/rate")
    assert (len(store.ratings()), len(store.scores())) == before == (1, 1)


def test_limits_are_settings():
    settings = Settings.from_args(
        [
            "--max-input-chars",
            "100",
            "--max-turns",
            "3",
            "--max-session-generations",
            "2",
            "--max-generations",
            "5",
            "--votes-per-hour",
            "9",
            "--ratings-per-hour",
            "7",
            "--max-grid-cells",
            "40",
        ]
    )
    assert settings.limits == Limits(100, 3, 2, 5, 9, ratings_per_hour=7, max_grid_cells=40)
    with pytest.raises(PlaygroundError, match="max_turns must be at least 1"):
        Limits(max_turns=0)
