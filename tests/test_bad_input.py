"""Bad input, each with a clear message naming the cause and nothing stored lost (the README's list).

Through the real app on a real HTTP server (gradio_client), the real model and real SQLite files.
HTML/JS rendered inert is a browser test (tests/test_browser_compare.py); invalid UTF-8 in an
uploaded prompt set is tests/test_promptset.py; broken preset YAML field by field is
tests/test_presets.py.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from gradio_client import Client
from sqlalchemy import event

from playground.engine.models.cache import ModelCache
from playground.errors import PlaygroundError
from playground.services.answers.chat import AnswerRequest, ChatService
from playground.services.answers.compare import CompareService
from playground.store.db import Store
from playground.store.models import Conversation, Turn, Vote

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
GREEDY = "smollm2-135m-instruct-greedy"


def say(text: str) -> str:
    return json.dumps([{"role": "user", "content": text}])


def counts(store: Store) -> tuple[int, ...]:
    return tuple(store.count(t) for t in (Conversation, Turn, Vote))


@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app, verbose=False)


def generate(
    client: Client, messages: str, preset: str = GREEDY, params: str = '{"max_new_tokens": 4}'
) -> str:
    return client.predict(preset, messages, params, None, api_name="/generate")


def compare_round(client: Client) -> dict:
    job = client.submit(
        json.dumps([GREEDY, GREEDY]), say("Name a cat."), '{"max_new_tokens": 3}', "", "", api_name="/compare"
    )
    return job.result(timeout=120)


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        (say(""), "the message is empty"),
        (say("   \n"), "the message is empty"),
        ("[]", "must end with the user's message"),
        (say("x" * (1 << 20)), "1,048,576 characters; the limit here is 20,000"),
        (say("before\x00after"), "NUL character at position 6"),
        ('[{"role": "user", "content": "bad \\ud800 half"}]', "lone surrogate U\\+D800\\) at position 4"),
        ("[{'role': 'user'}]", "messages is not valid JSON"),
        ('[{"role": "robot", "content": "hi"}]', "role must be system, user or assistant"),
    ],
)
def test_bad_prompts_are_refused_before_anything_is_stored(client, services, messages, message):
    before = counts(services.store)
    with pytest.raises(Exception, match=message):
        generate(client, messages)
    assert counts(services.store) == before


def test_control_characters_other_than_nul_are_kept(client, services):
    text = "Say hi.\x07\x1b[31m\tend"
    assert generate(client, say(text))
    assert any(t.messages[-1]["content"] == text for t in services.store.turns())


def test_an_unknown_preset_names_the_known_ones(client):
    with pytest.raises(
        Exception, match="unknown preset 'no-such-model'; known presets: .*smollm2-135m-instruct"
    ):
        generate(client, say("Hi"), preset="no-such-model")


def test_forged_ids_are_refused(client, services):
    before = counts(services.store)
    with pytest.raises(Exception, match="is not one of this session's battles"):
        client.predict("forged-battle-id", "0", api_name="/arena_vote")
    with pytest.raises(Exception, match="there is no stored answer with id 999999999"):
        client.predict(999999999, 1, "[]", "", api_name="/rate")
    with pytest.raises(Exception, match="there is no side-by-side conversation 'f00d'"):
        client.predict("f00d", 0, "0", api_name="/vote")
    assert counts(services.store) == before


def test_another_sessions_round_answer_and_battle_are_refused(client, live_app, services):
    final = compare_round(client)
    battle = client.predict(api_name="/arena_new")["battle_id"]
    stranger = Client(live_app, verbose=False)
    votes, ratings = len(services.store.votes()), len(services.store.ratings())
    with pytest.raises(Exception, match="belongs to another session; you can only vote on your own rounds"):
        stranger.predict(final["conversation_id"], 0, "0", api_name="/vote")
    with pytest.raises(Exception, match="belongs to another session; you can only rate your own answers"):
        stranger.predict(final["columns"][0]["turn_id"], 1, "[]", "", api_name="/rate")
    with pytest.raises(Exception, match="is not one of this session's battles"):
        stranger.predict(battle, "tie", api_name="/arena_vote")
    assert (len(services.store.votes()), len(services.store.ratings())) == (votes, ratings)
    client.predict(final["columns"][0]["turn_id"], 1, "[]", "", api_name="/rate")  # the owner may


def test_a_double_vote_is_refused_and_the_first_kept(client, services):
    final = compare_round(client)
    first = client.predict(final["conversation_id"], 0, "1", api_name="/vote")["vote_id"]
    with pytest.raises(Exception, match="this round already has a vote"):
        client.predict(final["conversation_id"], 0, "0", api_name="/vote")
    [vote] = [v for v in services.store.votes() if v.conversation_id == final["conversation_id"]]
    assert (vote.id, vote.outcome) == (first, "1")


def test_a_broken_preset_file_stops_start_up_with_its_file_and_problem(tmp_path, capsys):
    from playground.cli import main

    user = tmp_path / "user_presets"
    user.mkdir()
    (user / "mine.yaml").write_text("name: mine\nmodel: [unclosed\n")
    assert main(["--db", str(tmp_path / "x.db"), "--user-presets", str(user)]) == 2  # app.py's exit status
    stderr = capsys.readouterr().err
    assert "mine.yaml" in stderr and "error:" in stderr


def dump(path: Path) -> list:
    with sqlite3.connect(path) as connection:
        return [connection.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("turns", "votes")]


def stored_db(tmp_path: Path, services) -> tuple[Path, str, int]:
    """A database with one real answer in it (and the id of its conversation)."""
    path = tmp_path / "data.db"
    store = Store(str(path))
    chat = ChatService(services.registry, services.cache, store, services.chat.backends)
    conversation = CompareService(chat, store).start([GREEDY, GREEDY], session_id="s")
    request = AnswerRequest(preset=GREEDY, messages=chat_messages("Hi"), params={"max_new_tokens": 3})
    *_, last = chat.answer(request, conversation)
    store.engine.dispose()
    return path, conversation, last.turn_id


def chat_messages(text: str):
    from playground.engine.models.templates import parse_messages

    return parse_messages(json.loads(say(text)))


def test_a_read_only_database_says_so_and_keeps_its_rows(tmp_path, services):
    path, conversation, _ = stored_db(tmp_path, services)
    before = dump(path)
    store = Store(f"sqlite:///file:{path}?mode=ro&uri=true")
    chat = ChatService(services.registry, services.cache, store, services.chat.backends)
    request = AnswerRequest(
        preset=GREEDY, messages=chat_messages("Name a dog."), params={"max_new_tokens": 3}
    )
    *_, last = chat.answer(request, conversation)
    assert last.done and last.text and last.turn_id is None  # the answer is shown, not claimed as stored
    assert "this answer was not saved" in last.error and "read-only" in last.error
    with pytest.raises(PlaygroundError, match="refused the write: it is read-only"):
        store.record_vote(conversation, "compare", 0, "0", [GREEDY, GREEDY])
    store.engine.dispose()
    assert dump(path) == before


def test_a_full_database_says_so_and_keeps_its_rows(tmp_path, services):
    path, conversation, turn_id = stored_db(tmp_path, services)
    before = dump(path)
    store = Store(str(path))
    with store.engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(store.engine, "connect")
    def cap(dbapi_connection, _record):  # the file may not grow: the next page is "database or disk is full"
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    store.engine.dispose()
    chat = ChatService(services.registry, services.cache, store, services.chat.backends)
    request = AnswerRequest(preset=GREEDY, messages=chat_messages("y" * 19_000), params={"max_new_tokens": 3})
    *_, last = chat.answer(request, conversation)
    assert "this answer was not saved" in last.error and "full" in last.error
    with pytest.raises(PlaygroundError, match="refused the write: the disk or the database is full"):
        store.record_rating(turn_id, 1, [], "z" * 200_000)
    store.engine.dispose()
    assert dump(path) == before
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_model_that_does_not_fit_in_memory_fails_alone(tmp_path, services, smollm):
    store = Store(str(tmp_path / "oom.db"))
    size = smollm.footprint_bytes  # the embedded model's measured size (unknown before its first load)
    small = ModelCache(services.cache.device, services.cache.cache_root, size // 2, estimate=lambda r: size)
    chat = ChatService(services.registry, small, store)
    conversation = CompareService(chat, store).start([GREEDY], session_id="s")
    request = AnswerRequest(preset=GREEDY, messages=chat_messages("Hi"), params={"max_new_tokens": 3})
    *_, last = chat.answer(request, conversation)
    assert last.finish_reason == "error" and "needs about" in last.error and "memory budget" in last.error
    [turn] = store.turns(conversation)
    assert turn.error == last.error  # the failure is on record, with what was asked
