from datetime import datetime

import pytest

from playground.errors import PlaygroundError
from playground.services.data.export import write_export
from playground.store.db import Store, TurnRecord, database_url
from playground.store.models import Rating, Turn, Vote


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """Each store test runs on a fresh SQLite file (as a plain path) and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "sub" / "x.db")
    return request.getfixturevalue("postgres_url")


def open_store(url: str) -> Store:
    store = Store(url)
    assert store.engine.dialect.name == ("postgresql" if url.startswith("postgresql") else "sqlite")
    return store


def turn(store: Store, conversation_id: str, column: int, turn_index: int = 0, seed: int = 3) -> int:
    return store.record_turn(
        TurnRecord(
            conversation_id=conversation_id,
            column=column,
            turn_index=turn_index,
            preset_name=f"p{column}",
            preset_hash="h",
            model_id="org/m",
            revision="sha",
            quantization="none",
            dtype="float32",
            device="cpu",
            messages=[{"role": "user", "content": "hi"}],
            system_prompt="",
            prompt="U: hi\nA:",
            params={"temperature": 0.5},
            seed=seed,
            output="hello",
            finish_reason="eos",
            started_at=datetime.now(),
            stats={
                "ttft_s": 0.1,
                "completion_tokens": 2,
                "tokens_per_s": 20.0,
                "prompt_tokens": 4,
                "total_s": 0.2,
            },
        )
    )


def test_sqlite_takes_a_url_or_a_plain_path_and_makes_its_folder(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert database_url(url) == url
    assert database_url(str(tmp_path / "new" / "y.db")) == f"sqlite:///{tmp_path / 'new' / 'y.db'}"
    assert (tmp_path / "new").is_dir()
    assert Store(url).engine.dialect.name == "sqlite"


def test_turn_rating_vote_round_trip(store_url, tmp_path):
    store = open_store(store_url)
    cid = store.new_conversation("compare", ["p0", "p1"])
    t0, _t1 = turn(store, cid, 0), turn(store, cid, 1)
    rating = store.record_rating(t0, 1, ["accurate"], "good")
    store.update_rating(rating, ["accurate", "creative"], "very good")
    store.record_vote(cid, "compare", 0, "1", ["p0", "p1"])
    assert store.count(Turn) == 2 and store.count(Vote) == 1
    saved = store.ratings(t0)[0]
    assert (saved.turn_id, saved.reasons, saved.comment) == (t0, ["accurate", "creative"], "very good")
    out = tmp_path / "export.jsonl"
    with out.open("w", encoding="utf-8") as stream:
        assert write_export(store.engine, "jsonl", stream) == 1
    assert '"ratings": [{' in out.read_text()


def test_second_vote_on_a_round_is_refused_and_nothing_is_lost(store_url):
    store = open_store(store_url)
    cid = store.new_conversation("compare", ["a", "b"])
    store.record_vote(cid, "compare", 0, "tie", ["a", "b"])
    with pytest.raises(PlaygroundError, match="already has a vote"):
        store.record_vote(cid, "compare", 0, "0", ["a", "b"])
    assert [v.outcome for v in store.votes()] == ["tie"]


def test_rating_needs_an_existing_turn_and_a_valid_value(store_url):
    store = open_store(store_url)
    with pytest.raises(PlaygroundError, match="no stored answer with id 99"):
        store.record_rating(99, 1)
    cid = store.new_conversation("compare", ["a"])
    t = turn(store, cid, 0)
    with pytest.raises(PlaygroundError, match=r"\+1 \(like\) or -1"):
        store.record_rating(t, 5)
    assert store.count(Rating) == 0


def test_any_seed_a_generation_can_use_is_stored(store_url):
    """Seeds run from 0 to 2**32 - 1 (a random one is drawn from that whole range): BIGINT on PostgreSQL."""
    store = open_store(store_url)
    cid = store.new_conversation("api", ["p0"])
    seeds = [0, 2**31 - 1, 2**31, 2**32 - 1]
    for i, seed in enumerate(seeds):
        turn(store, cid, 0, turn_index=i, seed=seed)
    assert [t.seed for t in store.turns(cid)] == seeds
