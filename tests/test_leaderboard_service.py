"""LeaderboardService on a real SQLite file: votes → battles, filters, per-model stats, restarts."""

from datetime import datetime

import pandas as pd
import pytest
from sqlalchemy import update

from playground.engine.presets import PresetRegistry
from playground.errors import PlaygroundError
from playground.services.leaderboard import (
    LeaderboardFilters,
    LeaderboardService,
    vote_battles,
    votes_to_battles,
)
from playground.store.db import Store, TurnRecord
from playground.store.models import Vote
from tests.conftest import PRESETS

SMOL, GREEDY, DCLM = "smollm2-135m-instruct", "smollm2-135m-instruct-greedy", "dclm-1b-it"


@pytest.fixture(scope="module")
def registry():
    return PresetRegistry.from_folders(PRESETS)


def test_votes_become_pairwise_battles():
    assert vote_battles(["x", "y"], "0") == [("x", "y", "a")]
    assert vote_battles(["x", "y"], "1") == [("x", "y", "b")]
    assert vote_battles(["x", "y"], "tie") == [("x", "y", "tie")]
    assert vote_battles(["x", "y"], "all_bad") == [("x", "y", "both_bad")]
    # N columns: the best column beats each other column; the other pairs carry no information
    assert vote_battles(["x", "y", "z", "w"], "2") == [("x", "z", "b"), ("y", "z", "b"), ("z", "w", "a")]
    assert vote_battles(["x", "y", "z"], "tie") == [("x", "y", "tie"), ("x", "z", "tie"), ("y", "z", "tie")]
    assert [o for *_, o in vote_battles(["x", "y", "z"], "all_bad")] == ["both_bad"] * 3
    assert (
        vote_battles(["x", "y"], "5")
        == vote_battles(["x", "y"], "nonsense")
        == vote_battles(["x"], "0")
        == []
    )
    table = votes_to_battles(
        [{"models": ["x", "y", "z"], "outcome": "0"}, {"models": ["y", "x"], "outcome": "tie"}]
    )
    assert table.values.tolist() == [["x", "y", "a"], ["x", "z", "a"], ["y", "x", "tie"]]


def answer(store, conversation_id, column, preset, output, ttft, tps, error=None):
    store.record_turn(
        TurnRecord(
            conversation_id=conversation_id, column=column, turn_index=0, preset_name=preset,
            preset_hash="h", model_id="org/m", revision="r", quantization="none", dtype="float32",
            device="cpu", messages=[{"role": "user", "content": "hi"}], system_prompt="", prompt="hi",
            params={}, seed=1, output=output, finish_reason="error" if error else "eos", error=error,
            started_at=datetime(2024, 1, 1), stats={"ttft_s": ttft, "tokens_per_s": tps, "completion_tokens": 3},
        )
    )  # fmt: skip


def battle(store, kind, models, outcome, day=None, leaked=False):
    conversation_id = store.new_conversation(kind, models)
    vote_id = store.record_vote(
        conversation_id, kind, 0, outcome, models, anonymous=kind == "arena", identity_leaked=leaked
    )
    if day:
        with store.session() as s, s.begin():
            s.execute(update(Vote).where(Vote.id == vote_id).values(created_at=datetime.fromisoformat(day)))
    return conversation_id


@pytest.fixture
def filled(tmp_path, registry):
    """Arena votes in January and March, one leaked arena vote, and a named 3-column compare vote."""
    store = Store(str(tmp_path / "board.db"))
    first = battle(store, "arena", [SMOL, GREEDY], "0", day="2024-01-10")
    answer(store, first, 0, SMOL, "abcd", 0.1, 10.0)
    answer(store, first, 1, GREEDY, "ab", 0.3, 30.0)
    answer(store, first, 1, GREEDY, "", None, None, error="boom")  # failed answers are not counted
    second = battle(store, "arena", [GREEDY, SMOL], "tie", day="2024-03-05")
    answer(store, second, 0, GREEDY, "abcdef", 0.5, 20.0)
    answer(store, second, 1, SMOL, "abcdefgh", 0.2, 40.0)
    battle(store, "arena", [SMOL, GREEDY], "all_bad", day="2024-03-20")
    leaked = battle(store, "arena", [DCLM, SMOL], "0", day="2024-03-21", leaked=True)
    answer(store, leaked, 0, DCLM, "x" * 100, 9.0, 1.0)
    named = battle(store, "compare", [DCLM, GREEDY, SMOL], "1", day="2024-03-22")
    unvoted = store.new_conversation("arena", [SMOL, GREEDY])  # answers without a vote are not counted
    answer(store, unvoted, 0, SMOL, "y" * 1000, 5.0, 1.0)
    answer(store, named, 0, DCLM, "z" * 10, 1.0, 5.0)
    return store, LeaderboardService(store, registry, bootstrap_rounds=20)


def counts(result):
    return dict(zip(result.table["model"], result.table["battles"], strict=True))


def test_filters_leaked_compare_and_dates(filled):
    _store, service = filled
    default = service.compute()
    assert counts(default) == {SMOL: 3, GREEDY: 3} and default.votes == 3
    assert counts(service.compute(LeaderboardFilters(include_leaked=True))) == {SMOL: 4, GREEDY: 3, DCLM: 1}
    with_named = service.compute(LeaderboardFilters.parse(include_compare=True))
    assert counts(with_named) == {SMOL: 4, GREEDY: 5, DCLM: 1} and with_named.battles == 5
    march = service.compute(LeaderboardFilters.parse(since="2024-03-01", until="2024-03-20"))
    assert counts(march) == {SMOL: 2, GREEDY: 2}  # the end day is included
    assert counts(service.compute(LeaderboardFilters.parse(until="2024-01-31"))) == {SMOL: 1, GREEDY: 1}
    assert service.compute(LeaderboardFilters.parse(since="2025-01-01")).table.empty
    with pytest.raises(PlaygroundError, match="not a date"):
        LeaderboardFilters.parse(since="last week")
    with pytest.raises(PlaygroundError, match="empty"):
        LeaderboardFilters.parse(since="2024-03-02", until="2024-03-01")


def test_per_model_stats(filled):
    _store, service = filled
    rows = {r["model"]: r for r in service.compute().rows()}
    smol, greedy = rows[SMOL], rows[GREEDY]
    assert (smol["wins"], smol["ties"], smol["both_bad"], smol["win_rate"]) == (1, 1, 1, pytest.approx(2 / 3))
    assert (greedy["wins"], greedy["win_rate"], greedy["both_bad_rate"]) == (
        0,
        pytest.approx(1 / 3),
        pytest.approx(1 / 3),
    )
    assert smol["rating"] > greedy["rating"] and smol["display_name"] == "SmolLM2 135M Instruct (embedded)"
    assert (smol["avg_answer_chars"], smol["median_ttft_s"], smol["median_tokens_per_s"]) == (6, 0.15, 25)
    assert (greedy["avg_answer_chars"], greedy["median_ttft_s"], greedy["median_tokens_per_s"]) == (
        4,
        0.4,
        25,
    )
    named = {r["model"]: r for r in service.compute(LeaderboardFilters(include_compare=True)).rows()}
    assert named[DCLM]["avg_answer_chars"] == 10 and named[DCLM]["median_ttft_s"] == 1.0
    result = service.compute()
    assert result.ratings_figure().data and result.win_rate_figure().data
    assert list(result.board.win_rate.index) == list(result.table["model"])


def test_the_leaderboard_survives_a_restart(filled, tmp_path, registry):
    store, service = filled
    before = service.compute(LeaderboardFilters(include_compare=True)).table
    reopened = LeaderboardService(Store(store.url), registry, bootstrap_rounds=20)
    after = reopened.compute(LeaderboardFilters(include_compare=True)).table
    pd.testing.assert_frame_equal(before, after)
    assert len(after) == 3 and after["ci_low"].notna().all()
