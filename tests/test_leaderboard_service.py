"""LeaderboardService on a real SQLite file: votes → battles, filters, per-model stats, restarts,
the incremental answer index and style control."""

import uuid
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, update

from playground.engine.models.presets import PresetRegistry
from playground.errors import PlaygroundError
from playground.services.leaderboard.service import (
    LeaderboardFilters,
    LeaderboardService,
    vote_battles,
    votes_to_battles,
)
from playground.store.db import Store, TurnRecord
from playground.store.models import Conversation, Turn, Vote
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


def answer(store, conversation_id, column, preset, output, ttft, tps, error=None, turn_index=0):
    store.record_turn(
        TurnRecord(
            conversation_id=conversation_id, column=column, turn_index=turn_index, preset_name=preset,
            preset_hash="h", model_id="org/m", revision="r", quantization="none", dtype="float32",
            device="cpu", messages=[{"role": "user", "content": "hi"}], system_prompt="", prompt="hi",
            params={}, seed=1, output=output, finish_reason="error" if error else "eos", error=error,
            started_at=datetime(2024, 1, 1), stats={"ttft_s": ttft, "tokens_per_s": tps, "completion_tokens": 3},
        )
    )  # fmt: skip


def battle(store, kind, models, outcome, day=None, leaked=False, conversation_id=None, turn_index=0):
    conversation_id = conversation_id or store.new_conversation(kind, models)
    vote_id = store.record_vote(
        conversation_id, kind, turn_index, outcome, models, anonymous=kind == "arena", identity_leaked=leaked
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


# --------------------------------------------------------------------------- few votes, style control


def test_few_votes_are_provisional_with_honest_intervals(filled):
    _store, service = filled
    rows = service.compute().rows()
    assert all(r["provisional"] is True for r in rows)  # 3 battles each, under the threshold of 30
    assert all(r["ci_high"] - r["ci_low"] > 100 for r in rows)  # 3 votes decide little
    assert all(r["ci_low"] < r["rating"] < r["ci_high"] for r in rows)
    assert all(abs(r["rating"] - 1000) < 100 for r in rows)  # the prior: no ±500 from a handful of votes
    lenient = LeaderboardService(_store, service.registry, bootstrap_rounds=20, min_battles=3)
    assert not lenient.compute().table["provisional"].any()


def test_style_controlled_columns(filled):
    store, service = filled
    result = service.compute()
    # two of the three counted votes have both answers stored (the all-bad one has none)
    assert result.style is not None and result.style.styled_battles == 2 and result.style.n_battles == 3
    table = result.table.set_index("model")
    assert table["sc_rank"].dtype == "Int64" and table["sc_rating"].notna().all()
    assert (table["sc_ci_high"] - table["sc_ci_low"] > 100).all()
    assert set(result.style.coefficients.index) == {"length", "headers", "lists", "bold"}
    off = LeaderboardService(store, service.registry, bootstrap_rounds=20, style_control=False).compute()
    assert (
        off.style is None
        and off.table[["sc_rank", "sc_rating", "sc_ci_low", "sc_ci_high"]].isna().all().all()
    )
    assert service.compute(style_control=False).style is None
    pd.testing.assert_frame_equal(
        off.table.drop(columns=["sc_rank", "sc_rating", "sc_ci_low", "sc_ci_high"]),
        result.table.drop(columns=["sc_rank", "sc_rating", "sc_ci_low", "sc_ci_high"]),
    )
    assert {"sc_rank", "sc_rating", "provisional"} <= set(result.rows()[0])
    assert len(result.ratings_figure(style=True).data) == 2 and len(result.ratings_figure().data) == 1


def test_the_answers_a_vote_judged(tmp_path, registry):
    """Arena: every round summed per side; Compare: the voted round only, its last answer."""
    store = Store(str(tmp_path / "rounds.db"))
    service = LeaderboardService(store, registry, bootstrap_rounds=0)
    arena = store.new_conversation("arena", [SMOL, GREEDY])
    for turn_index in (0, 1):
        answer(store, arena, 0, SMOL, "a" * 4, 0.1, 1.0, turn_index=turn_index)
        answer(store, arena, 1, GREEDY, "b" * 2, 0.1, 1.0, turn_index=turn_index)
    answer(store, arena, 1, GREEDY, "# header\n- item", 0.1, 1.0, turn_index=1, error="failed")  # not counted
    battle(store, "arena", [SMOL, GREEDY], "0", conversation_id=arena)
    named = store.new_conversation("compare", [SMOL, GREEDY])
    answer(store, named, 0, SMOL, "x" * 30, 0.1, 1.0)
    answer(store, named, 1, GREEDY, "y" * 10, 0.1, 1.0)
    battle(store, "compare", [SMOL, GREEDY], "1", conversation_id=named)
    answer(store, named, 0, SMOL, "# a\n- b\n- c\n**d**", 0.1, 1.0, turn_index=1)
    answer(store, named, 1, GREEDY, "z" * 90, 0.1, 1.0, turn_index=1)
    answer(store, named, 1, GREEDY, "y" * 40, 0.1, 1.0, turn_index=1)  # regenerated: the last one counts
    battle(store, "compare", [SMOL, GREEDY], "tie", conversation_id=named, turn_index=1)
    snapshot, votes = service.read(LeaderboardFilters(include_compare=True))
    battles = votes.battles(positions=True)
    differences = service.battle_style(snapshot, votes, battles)
    length = len("# a\n- b\n- c\n**d**")
    expected = [
        [(8 - 4) / 12, 0, 0, 0],  # arena: 4 + 4 characters against 2 + 2
        [(30 - 10) / 40, 0, 0, 0],  # compare, round 0
        [(length - 40) / (length + 40), 1, 1, 1],  # compare, round 1: headers, lists, bold only on one side
    ]
    np.testing.assert_allclose(differences, expected)


def test_the_answer_index_keeps_up(filled, registry):
    """After more votes and answers (including answers stored before their conversation's first
    vote, a second Compare round after a vote, failed and unvoted answers) the long-lived service
    gives exactly what a fresh one gives."""
    store, service = filled
    every = LeaderboardFilters(include_compare=True, include_leaked=True)
    service.compute(every)  # the index now holds what is there
    early = store.new_conversation("arena", [DCLM, GREEDY])
    answer(store, early, 0, DCLM, "q" * 50, 0.7, 7.0)  # an arena battle: answers first, vote later
    answer(store, early, 1, GREEDY, "r" * 70, 0.9, 9.0)
    named = battle(store, "compare", [SMOL, DCLM], "0")
    answer(store, named, 0, SMOL, "s" * 20, 0.2, 2.0)
    answer(store, named, 1, DCLM, "t" * 30, 0.3, 3.0)
    between = service.compute(every)
    battle(store, "arena", [DCLM, GREEDY], "1", conversation_id=early)
    answer(store, named, 0, SMOL, "u" * 5, 0.5, 5.0, turn_index=1)  # round 2 after round 1's vote
    answer(store, named, 1, DCLM, "", None, None, error="boom", turn_index=1)
    battle(store, "compare", [SMOL, DCLM], "tie", conversation_id=named, turn_index=1)
    unvoted = store.new_conversation("compare", [SMOL, DCLM])
    answer(store, unvoted, 0, SMOL, "v" * 999, 9.0, 0.1)
    after = service.compute(every)
    started = LeaderboardService(Store(store.url), registry, bootstrap_rounds=20)
    started.warm_up()  # reads everything up front, as at a server start
    assert started.answers.turn_mark > 0
    fresh = started.compute(every)
    pd.testing.assert_frame_equal(after.table, fresh.table)
    assert after.battles == between.battles + 2
    dclm = after.table.set_index("model").loc[DCLM]
    # DCLM's kept answers: 100 (leaked vote), 10 (named vote), 50 (early), 30 (named, round 1)
    assert dclm["avg_answer_chars"] == pytest.approx((100 + 10 + 50 + 30) / 4)
    assert after.style.styled_battles == fresh.style.styled_battles


def test_the_answer_index_starts_over_on_another_database(filled, tmp_path, registry):
    store, service = filled
    service.compute()
    other = Store(str(tmp_path / "other.db"))
    conversation = battle(other, "arena", [GREEDY, SMOL], "1")
    answer(other, conversation, 0, GREEDY, "g" * 3, 0.1, 1.0)
    answer(other, conversation, 1, SMOL, "s" * 9, 0.1, 1.0)
    service.store = other  # fewer votes and turns than the index has seen
    moved = service.compute()
    fresh = LeaderboardService(other, registry, bootstrap_rounds=20).compute()
    pd.testing.assert_frame_equal(moved.table, fresh.table)
    assert moved.table.set_index("model")["avg_answer_chars"].to_dict() == {SMOL: 9.0, GREEDY: 3.0}


def test_style_control_end_to_end(tmp_path, registry):
    """Equally strong models whose voters prefer the longer answer: the plain rating separates the
    verbose model from the terse one, the style-controlled rating does not."""
    rng = np.random.default_rng(0)
    store = Store(str(tmp_path / "style.db"))
    models, verbosity = [SMOL, GREEDY, DCLM], {SMOL: 1200, GREEDY: 200, DCLM: 500}
    conversations, votes, turns = [], [], []
    for _ in range(3000):
        pair = [models[i] for i in rng.choice(3, 2, replace=False)]
        texts = ["w" * int(rng.lognormal(np.log(verbosity[m]), 0.3)) for m in pair]
        diff = (len(texts[0]) - len(texts[1])) / (len(texts[0]) + len(texts[1]))
        outcome = "0" if rng.random() < 1 / (1 + np.exp(-2.0 * diff)) else "1"
        cid = uuid.uuid4().hex
        conversations.append({"id": cid, "mode": "arena", "models": pair})
        votes.append(
            {
                "conversation_id": cid,
                "kind": "arena",
                "turn_index": 0,
                "outcome": outcome,
                "models": pair,
                "anonymous": True,
                "identity_leaked": False,
            }
        )
        for column, (model, text) in enumerate(zip(pair, texts, strict=True)):
            turns.append({"conversation_id": cid, "column": column, "turn_index": 0, "preset_name": model,
                          "preset_hash": "h", "model_id": "m", "revision": "r", "quantization": "none",
                          "dtype": "float32", "device": "cpu", "messages": [], "system_prompt": "", "prompt": "p",
                          "params": {}, "seed": 1, "output": text, "finish_reason": "eos",
                          "started_at": datetime(2024, 1, 1), "app_version": "test"})  # fmt: skip
    with store.session() as s, s.begin():
        s.execute(insert(Conversation), conversations)
        s.execute(insert(Turn), turns)
        s.execute(insert(Vote), votes)
    result = LeaderboardService(store, registry, bootstrap_rounds=20).compute()
    t = result.table.set_index("model")
    assert t.loc[SMOL, "rating"] - t.loc[GREEDY, "rating"] > 100
    assert t.loc[SMOL, "rank"] < t.loc[GREEDY, "rank"]
    assert abs(t.loc[SMOL, "sc_rating"] - t.loc[GREEDY, "sc_rating"]) < 40
    assert (t["sc_rank"] == 1).all()
    assert result.style.coefficients.loc["length", "ci_low"] > 0
    assert result.style.styled_battles == 3000 and not t["provisional"].any()


def test_the_tab_shows_provisional_models_and_the_style_ranking(filled):
    from playground.ui.leaderboard_tab import HEADERS, PROVISIONAL, display_table, summary_line, widths

    _store, service = filled
    result = service.compute()
    plain = display_table(result)
    assert list(plain.columns) == HEADERS and len(widths(False)) == len(HEADERS)
    assert plain["Model"].str.endswith(PROVISIONAL).all()  # 3 battles each
    styled = display_table(result, style=True)
    assert {"Rank (SC)", "Rating (SC)", "95% CI (SC)"} <= set(styled.columns)
    assert len(widths(True)) == len(styled.columns)
    assert "Style control (SC): 2 of 3 battles" in summary_line(result, style=True)
    assert "Style control" not in summary_line(result)
    without = service.compute(style_control=False)
    assert list(display_table(without, style=True).columns) == HEADERS  # nothing to show
