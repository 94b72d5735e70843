"""Crash safety and restarts of the real app process: SIGKILL under load, arena battles across a restart."""

from __future__ import annotations

import sqlite3

import pytest
from gradio_client import Client

from bench.load import run_load
from playground.store.db import Store
from playground.store.models import Battle
from tests.appproc import AppProcess


def test_acknowledged_answers_survive_sigkill_under_load(tmp_path):
    """A smaller bench/load.py: 4 sessions until 6 answers are acknowledged, SIGKILL with the others
    mid-answer, then every answer whose final update (with its turn id) reached a client is stored
    with its streamed text, and the app restarts. It counts answers, it does not bet on a window."""
    result = run_load(tmp_path / "load.db", sessions=4, max_new_tokens=8, answers=6)
    assert result.acknowledged, f"no answer was acknowledged: {result.errors}"
    assert result.lost == [] and result.mismatched == [], result.summary()
    assert result.integrity == "ok"
    assert result.restarted


def test_an_unvoted_arena_battle_is_voted_on_after_a_restart(tmp_path):
    db = tmp_path / "arena.db"
    app = AppProcess(
        str(db), args=["--arena-pool", "smollm2-135m-instruct,smollm2-135m-instruct-greedy"]
    ).start()
    try:
        client = Client(app.url, verbose=False)
        battle_id = client.predict(api_name="/arena_new")["battle_id"]
        job = client.submit(battle_id, "Name a fruit.", api_name="/arena_send")
        views = list(job)
        assert views[-1]["can_vote"]
        shown = repr(views)
        assert "smollm2" not in shown.lower()  # nothing names the models before the vote
        app.kill()  # SIGKILL: the battle lives on only in the database
        app.start()
        stranger = Client(app.url, verbose=False)
        with pytest.raises(Exception, match="not one of this session's battles"):
            stranger.predict(battle_id, "0", api_name="/arena_vote")
        reveal = client.predict(battle_id, "0", api_name="/arena_vote")
        with pytest.raises(Exception, match="already has a vote"):
            client.predict(battle_id, "1", api_name="/arena_vote")
    finally:
        app.stop()
    store = Store(str(db))
    with store.session() as s:
        row = s.get(Battle, battle_id)
    assert [reveal["Model A"]["preset"], reveal["Model B"]["preset"]] == row.presets
    assert row.vote_id == reveal["vote_id"] and row.rounds == 1
    [vote] = store.votes(("arena",))
    assert vote.models == row.presets and vote.outcome == "0"
    assert {t.id for t in store.turns(row.conversation_id)} == {i for side in row.turn_ids for i in side}
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
