"""Replay on the real SmolLM2 model: answers stored through the app's own services come back as the
same text; an edited answer, a changed preset or template, a retired preset, a forged id and an
unvoted arena battle are each told apart; nothing is stored by a replay."""

from __future__ import annotations

import json

import pytest
from gradio_client import Client
from sqlalchemy import update

from playground.engine.models.templates import parse_messages
from playground.errors import PlaygroundError
from playground.services.answers.chat import AnswerRequest
from playground.store.models import Conversation, Rating, Turn, Vote
from tests.conftest import fresh_services

pytestmark = pytest.mark.slow
SMOL, GREEDY = "smollm2-135m-instruct", "smollm2-135m-instruct-greedy"


@pytest.fixture(scope="module")
def app(tmp_path_factory, model_cache_dir):
    """Services on a fresh SQLite file, and one side-by-side round: greedy, and sampled with a seed."""
    services = fresh_services(tmp_path_factory.mktemp("replay"), model_cache_dir)
    conversation = services.compare.start([GREEDY, SMOL], session_id="s1")
    question = parse_messages([{"role": "user", "content": "Name three fruits."}])
    requests = [
        AnswerRequest(preset=GREEDY, messages=question, params={"max_new_tokens": 12}, turn_index=0),
        AnswerRequest(
            preset=SMOL, messages=question, params={"max_new_tokens": 12, "seed": 1234}, turn_index=0
        ),
    ]
    *_, final = services.compare.run(conversation, requests)
    assert all(u.done and not u.error and u.text for u in final)
    return services, {"greedy": final[0].turn_id, "seeded": final[1].turn_id}


def edit(services, turn_id: int, **values) -> None:
    with services.store.session() as s, s.begin():
        s.execute(update(Turn).where(Turn.id == turn_id).values(**values))


def counts(services) -> list[int]:
    return [services.store.count(table) for table in (Conversation, Turn, Rating, Vote)]


def test_greedy_and_seeded_answers_replay_to_the_same_text_and_nothing_is_stored(app):
    services, ids = app
    before = counts(services)
    for kind in ("greedy", "seeded"):
        stored = services.store.turns_by_id([ids[kind]])[ids[kind]]
        result = services.replay.replay(ids[kind])
        assert result.match, (kind, result.stored_output, result.replayed_output)
        assert result.replayed_output == stored.output and result.first_difference is None
        assert (result.prompt_match, result.revision_match, result.preset_changed) == (True, True, False)
        assert result.seed == stored.seed and result.params["seed"] == stored.seed
        assert result.error is None and result.notes == [] and result.as_json()["match"] is True
    assert services.store.turns_by_id([ids["seeded"]])[ids["seeded"]].params["do_sample"] is True
    assert counts(services) == before


def test_an_output_edited_in_the_database_no_longer_matches(app):
    services, ids = app
    original = services.store.turns_by_id([ids["greedy"]])[ids["greedy"]].output
    edit(services, ids["greedy"], output="edited by hand")
    try:
        result = services.replay.replay(ids["greedy"])
    finally:
        edit(services, ids["greedy"], output=original)
    assert not result.match and result.replayed_output == original
    assert result.stored_output == "edited by hand" and result.first_difference is not None


def test_the_stored_prompt_is_replayed_and_a_changed_preset_or_template_is_flagged(app):
    services, ids = app
    stored = services.store.turns_by_id([ids["seeded"]])[ids["seeded"]]
    edit(
        services,
        ids["seeded"],
        preset_hash="0" * 64,
        messages=[{"role": "user", "content": "Something else entirely."}],
    )
    try:
        result = services.replay.replay(ids["seeded"])
    finally:
        edit(services, ids["seeded"], preset_hash=stored.preset_hash, messages=stored.messages)
    assert result.match  # the prompt the model read then, not a re-render of the (edited) messages
    assert result.preset_changed and result.prompt_match is False
    assert any("changed since this answer" in n for n in result.notes)
    assert any("renders another prompt" in n for n in result.notes)


def test_a_retired_preset_a_forged_id_and_a_non_number_are_clear_errors(app):
    services, ids = app
    edit(services, ids["greedy"], preset_name="retired-preset")
    try:
        with pytest.raises(PlaygroundError, match="preset 'retired-preset'.*no longer exists here"):
            services.replay.replay(ids["greedy"])
    finally:
        edit(services, ids["greedy"], preset_name=GREEDY)
    with pytest.raises(PlaygroundError, match="there is no stored answer with id 987654 to replay"):
        services.replay.replay(987654)
    with pytest.raises(PlaygroundError, match="a turn id is a whole number"):
        services.replay.replay("12; DROP TABLE turns")


def test_an_arena_answer_replays_only_after_the_vote(app):
    services, _ = app
    battle = services.arena.new_battle("s2")
    for _ in services.arena.send(battle, "s2", "Say hi in three words."):
        pass
    [turn_id] = services.arena.turn_ids(battle, 0)
    with pytest.raises(PlaygroundError, match="arena battle that has not been voted on yet"):
        services.replay.replay(turn_id)
    services.arena.vote(battle, "s2", "tie")
    result = services.replay.replay(turn_id)
    assert result.match and result.preset in (SMOL, GREEDY)


def test_replay_through_the_api(live_app, services):
    client = Client(live_app, verbose=False)
    messages = json.dumps([{"role": "user", "content": "Name a bird."}])
    job = client.submit(json.dumps([GREEDY]), messages, '{"max_new_tokens": 6}', "", "", api_name="/compare")
    turn_id = job.result(timeout=120)["columns"][0]["turn_id"]
    result = client.predict(turn_id, api_name="/replay")
    assert result["match"] and result["turn_id"] == turn_id
    assert result["stored_output"] == result["replayed_output"] and result["prompt_match"] is True
    with pytest.raises(Exception, match="there is no stored answer with id 99999999"):
        client.predict(99999999, api_name="/replay")
