"""The judge's ranking and its agreement with people, from a real SQLite file: verdicts are read from
judge_verdicts only (the human leaderboard does not see them), the latest verdict on a pair counts,
agreement is over answer pairs a person also compared, and Cohen's κ is right."""

from __future__ import annotations

import pytest

from playground.engine.models.presets import PresetRegistry
from playground.services.leaderboard.judge_board import JudgeBoard, cohen_kappa
from playground.services.leaderboard.service import LeaderboardFilters, LeaderboardService
from playground.settings import ROOT
from playground.store.db import Store, TurnRecord
from playground.store.models import JudgeVerdict, utcnow
from playground.store.notebooks import NotebookStore


def test_cohen_kappa():
    judge = ["a", "a", "b", "b", "tie"]
    person = ["a", "b", "b", "b", "tie"]
    assert cohen_kappa(judge, person) == pytest.approx((0.8 - 9 / 25) / (1 - 9 / 25))
    assert cohen_kappa(["a", "b"], ["a", "b"]) == pytest.approx(1.0)
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None  # chance agreement is total: κ undefined
    assert cohen_kappa([], []) is None


def turn(store: Store, conversation: str, column: int, row: int, preset: str) -> int:
    return store.record_turn(
        TurnRecord(
            conversation,
            column,
            row,
            preset,
            "h",
            "m",
            "r",
            "none",
            "float32",
            "cpu",
            [],
            "",
            "p",
            {},
            0,
            f"answer {preset} {row}",
            "eos",
            utcnow(),
        )
    )


def verdict(judging, conversation, row, a, b, outcome, model_a="x", model_b="y") -> JudgeVerdict:
    return JudgeVerdict(
        judging=judging, conversation_id=conversation, kind="pairwise", row_index=row, model_a=model_a, model_b=model_b,
        turn_a=a, turn_b=b, outcome=outcome, rationale="", judge_preset="judge", judge_model_id="m", judge_revision="r", calls=[],
    )  # fmt: skip


def test_the_judge_board_ranks_from_verdicts_only_and_measures_agreement(tmp_path):
    store = Store(str(tmp_path / "board.db"))
    registry = PresetRegistry.from_folders(ROOT / "presets", tmp_path / "user")
    human = LeaderboardService(store, registry, bootstrap_rounds=10)
    before = human.compute(LeaderboardFilters(include_compare=True)).rows()
    conversation = store.new_conversation("notebook", ["x", "y"])
    pairs = [(turn(store, conversation, 0, r, "x"), turn(store, conversation, 1, r, "y")) for r in range(5)]
    rows = NotebookStore(store)
    stale = [verdict("old", conversation, 0, *pairs[0], "b")]
    rows.record_verdicts(stale)
    outcomes = ["a", "a", "b", "a", "tie"]
    rows.record_verdicts([verdict("new", conversation, r, *pairs[r], o) for r, o in enumerate(outcomes)])

    board = JudgeBoard(store, registry, bootstrap_rounds=10).compute()
    assert board.verdicts == 5 and board.judges == ["judge"]  # the stale verdict on pair 0 is replaced
    table = board.table.set_index("model")
    assert table.loc["x", "wins"] == 3 and table.loc["y", "wins"] == 1 and table.loc["x", "ties"] == 1
    assert table.loc["x", "rating"] > table.loc["y", "rating"] and table.loc["x", "rank"] == 1
    assert board.agreement.pairs == 0 and board.agreement.share is None

    # a person scored both answers of rows 0–2 and thumbed both of row 3 (row 4: only one answer rated)
    for (a, b), (sa, sb) in zip(pairs[:3], [(5, 2), (1, 4), (3, 3)], strict=True):
        store.record_score(a, sa)
        store.record_score(b, sb)
    store.record_rating(pairs[3][0], 1)
    store.record_rating(pairs[3][1], -1)
    store.record_score(pairs[4][0], 5)
    agreement = JudgeBoard(store, registry, bootstrap_rounds=10).compute().agreement
    # person: a, b, tie, a; judge: a, a, b, a
    assert (agreement.pairs, agreement.agreed) == (4, 2)
    assert agreement.kappa == pytest.approx(cohen_kappa(["a", "a", "b", "a"], ["a", "b", "tie", "a"]))
    assert human.compute(LeaderboardFilters(include_compare=True)).rows() == before == []
