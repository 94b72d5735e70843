"""Saved notebooks through their service on the real SmolLM2 model and a real SQLite file: ownership on a
public deployment, every Run a version with its cells and checks, the judge in both orders (stored
apart from votes, the human leaderboard unchanged), two versions diffed."""

from __future__ import annotations

import re
import threading

import pytest

from playground.engine.generation.params import GenerationParams
from playground.engine.generation.request import GenerationRequest
from playground.errors import PlaygroundError
from playground.services.leaderboard.service import LeaderboardFilters
from playground.store.models import JudgeVerdict, Vote
from tests.conftest import fresh_services

pytestmark = pytest.mark.slow

GREEDY, SAMPLED = "smollm2-135m-instruct-greedy", "smollm2-135m-instruct"
DOCUMENT = {
    "name": "capitals",
    "template": "Answer in one word. What is the capital of {country}?",
    "rows": [{"country": "France", "expected": "Paris"}, {"country": "Italy", "expected": "Rome"}],
    "models": [GREEDY, SAMPLED],
    "max_new_tokens": 10,
    "seed": 1,
    "checks": [
        {"type": "contains", "value": "{expected}", "case_sensitive": False, "weight": 2},
        {"type": "length", "max": 400},
        {"type": "finish-reason", "value": ["eos", "length", "stop_string"]},
    ],
    "threshold": 0.5,
    "judge": {"preset": GREEDY, "mode": "pairwise", "max_new_tokens": 12},
}


@pytest.fixture(scope="module")
def public(tmp_path_factory, model_cache_dir):
    """Services as on a Space or a --share link: public, data closed."""
    return fresh_services(
        tmp_path_factory.mktemp("public"), model_cache_dir, share=True, public=True, open_data=False
    )


def test_on_a_public_deployment_others_see_a_notebook_read_only_and_may_duplicate_it(public):
    saved = public.saved
    with pytest.raises(PlaygroundError, match="this deployment is public and your session is not known"):
        saved.create({**DOCUMENT, "checks": []}, key=None)
    mine = saved.create({**DOCUMENT, "checks": []}, key="alice-key")
    assert re.fullmatch(r"[0-9a-f]{32}", mine.id) and mine.editable and mine.runs == []
    theirs = saved.open(mine.id, key="bob-key")
    assert not theirs.editable and theirs.document == mine.document
    assert not saved.open(mine.id, key=None).editable
    read_only = r"notebook 'capitals' is read-only for you: .* only the session that created it may {}"
    with pytest.raises(PlaygroundError, match=read_only.format("edit")):
        saved.save(mine.id, {**DOCUMENT, "checks": [], "name": "mine now"}, key="bob-key")
    with pytest.raises(PlaygroundError, match=read_only.format("run")):
        next(saved.run(mine.id, key="bob-key"))
    with pytest.raises(PlaygroundError, match=read_only.format("judge")):
        next(saved.judge(mine.id, key="bob-key"))
    with pytest.raises(PlaygroundError, match=read_only.format("delete")):
        saved.delete(mine.id, key="bob-key")
    assert saved.open(mine.id, key="alice-key").document.name == "capitals"  # nothing changed

    copy = saved.duplicate(mine.id, key="bob-key")
    assert copy.id != mine.id and copy.editable and copy.document.name == "capitals (copy)"
    assert [n["id"] for n in saved.listed("bob-key")] == [copy.id]  # public: each visitor lists their own
    assert [n["id"] for n in saved.listed("alice-key")] == [mine.id]
    saved.save(copy.id, {**DOCUMENT, "checks": [], "name": "bob's"}, key="bob-key")
    assert saved.open(copy.id, key="bob-key").document.name == "bob's"

    with pytest.raises(PlaygroundError, match=r"check 1 \(python\): python checks run code .* public"):
        saved.save(copy.id, {**DOCUMENT, "checks": [{"type": "python", "value": "True"}]}, key="bob-key")
    saved.delete(mine.id, key="alice-key")
    with pytest.raises(PlaygroundError, match="there is no saved notebook"):
        saved.open(mine.id, key="alice-key")


def test_a_private_deployment_lets_anyone_edit_and_refuses_bad_documents(services):
    saved = services.saved
    created = saved.create({**DOCUMENT, "name": "shared"}, key="one")
    assert saved.open(created.id, key="two").editable
    saved.save(created.id, {**DOCUMENT, "name": "shared, edited"}, key=None)
    assert any(n["name"] == "shared, edited" for n in saved.listed("three"))
    with pytest.raises(PlaygroundError, match="unknown preset 'nope'"):
        saved.save(created.id, {**DOCUMENT, "models": ["nope"]}, key="two")
    with pytest.raises(PlaygroundError, match=r"check 1 \(regex\): '\[' is not a valid regular expression"):
        saved.save(created.id, {**DOCUMENT, "checks": [{"type": "regex", "value": "["}]}, key="two")
    with pytest.raises(PlaygroundError, match="this notebook has not been run yet"):
        saved.version(created.id)
    assert saved.open(created.id, key="two").document.name == "shared, edited"


def run(saved, notebook_id):
    return list(saved.run(notebook_id, key="owner"))[-1]


def test_runs_are_versions_scored_judged_in_both_orders_and_diffed(services):
    saved, store = services.saved, services.store
    board_before = services.leaderboard.compute(LeaderboardFilters(include_compare=True)).rows()
    votes_before = store.count(Vote)
    notebook = saved.create(DOCUMENT, key="owner")

    first = run(saved, notebook.id)
    assert first.version == 1 and first.grid.finished
    assert all(c.status in ("done", "cached") and c.turn_id for c in first.grid.cells)
    stored = saved.version(notebook.id, 1)
    assert [(c.row, c.model, c.text, c.turn_id) for c in stored.grid.cells] == [
        (c.row, c.model, c.text, c.turn_id) for c in first.grid.cells
    ]
    # the checks on real answers: scores as the checks say, rates with Wilson intervals
    for cell in first.grid.cells:
        verdict = first.scores.cells[(cell.row, cell.model, cell.sample)]
        expected = DOCUMENT["rows"][cell.row]["expected"].lower() in cell.text.lower()
        assert verdict.results[0].passed is expected and verdict.results[1].passed is (len(cell.text) <= 400)
        assert verdict.score == pytest.approx((2 * expected + 1 + 1) / 4) and verdict.passed
    assert [r.n for r in first.scores.models] == [2, 2]
    assert stored.scores.as_json() == first.scores.as_json()

    saved.save(notebook.id, {**DOCUMENT, "seed": 7, "max_new_tokens": 14}, key="owner")
    second = run(saved, notebook.id)
    assert second.version == 2 and [r.version for r in saved.open(notebook.id, None).runs] == [1, 2]
    diff = saved.diff(notebook.id, 1, 2)
    changed = {(c.row, c.preset) for c in diff.changed}
    expected_changed = {
        (a.row, a.preset)
        for a, b in zip(first.grid.cells, second.grid.cells, strict=True)
        if a.text != b.text
    }
    assert changed == expected_changed and diff.compared == 4
    for change in diff.changed:  # the word diff rebuilds both texts
        pieces = change.as_json()["diff"]
        assert "".join(t for op, t in pieces if op != "+") == change.before
        assert "".join(t for op, t in pieces if op != "-") == change.after
    # a word diff of any two answers to a row: two models, one model across versions
    words = saved.answer_diff(
        notebook.id,
        0,
        {"version": 1, "model": GREEDY, "sample": 0},
        {"version": 2, "model": SAMPLED, "sample": 0},
    )
    assert "".join(t for op, t in words if op != "+") == first.grid.cell(0, 0).text
    assert "".join(t for op, t in words if op != "-") == second.grid.cell(0, 1).text
    with pytest.raises(PlaygroundError, match="version 1 has no model 'nope'"):
        saved.answer_diff(notebook.id, 0, {"version": 1, "model": "nope"}, {"version": 2, "model": GREEDY})
    with pytest.raises(PlaygroundError, match="there is no sample 3"):
        saved.answer_diff(
            notebook.id, 0, {"version": 1, "model": GREEDY, "sample": 2}, {"version": 2, "model": GREEDY}
        )
    scores_2 = second.scores.cells
    for flip in diff.flips:
        m = DOCUMENT["models"].index(flip.preset)
        assert scores_2[(flip.row, m, flip.sample)].passed is not None and flip.before != flip.after

    # the judge, pairwise, with the embedded model; both orders batched in one stream call
    runs = list(saved.judge(notebook.id, key="owner", version=2))
    judged = runs[-1]
    assert judged.finished and judged.total == 4 and judged.done == 4 and len(judged.verdicts) == 2
    for verdict in judged.verdicts:
        cells = {c.model: c for c in second.grid.cells if c.row == verdict["row"]}
        a, b = cells[0], cells[1]
        assert (verdict["model_a"], verdict["model_b"], verdict["turn_a"], verdict["turn_b"]) == (
            GREEDY,
            SAMPLED,
            a.turn_id,
            b.turn_id,
        )
        first_order, second_order = verdict["calls"]
        assert f"[Answer A]\n{a.text}\n\n[Answer B]\n{b.text}" in first_order["prompt"]
        assert f"[Answer A]\n{b.text}\n\n[Answer B]\n{a.text}" in second_order["prompt"]
        winners = (
            {"A": "a", "B": "b"}.get(first_order["choice"]),
            {"A": "b", "B": "a"}.get(second_order["choice"]),
        )
        assert verdict["outcome"] == (winners[0] if winners[0] and winners[0] == winners[1] else "tie")
        assert verdict["judge_preset"] == GREEDY and verdict["judge_revision"] and verdict["judge_model_id"]
    assert store.count(JudgeVerdict) >= 2 and store.count(Vote) == votes_before
    assert services.leaderboard.compute(LeaderboardFilters(include_compare=True)).rows() == board_before

    # a verdict is reproducible: its first call alone gives the same text as in the batch
    call = judged.verdicts[0]["calls"][0]
    preset = services.registry.get(GREEDY)
    with services.chat.backends.open(preset) as model:
        request = GenerationRequest.build(
            call["prompt"], GenerationParams(**call["params"]), preset.stop, model.context_length
        )
        alone = list(model.stream([request], threading.Event()))[-1]
    assert alone.text == call["output"]

    board = services.judge_board.compute(GREEDY)
    assert set(board.table["model"]) == {GREEDY, SAMPLED} and board.verdicts >= 2
    # a person scores both answers of row 1: agreement is counted on that pair
    services.notebook.rate(second.grid.cell(0, 0).turn_id, score=5)
    services.notebook.rate(second.grid.cell(0, 1).turn_id, score=2)
    agreement = services.judge_board.compute(GREEDY).agreement
    assert agreement.pairs == 1 and agreement.agreed == (judged.verdicts[0]["outcome"] == "a")

    rubric = list(
        saved.judge(
            notebook.id,
            key="owner",
            settings={
                "preset": GREEDY,
                "mode": "rubric",
                "rubric": "Names the right city.",
                "max_new_tokens": 6,
            },
        )
    )[-1]
    assert rubric.total == 4 and len(rubric.verdicts) == 4
    assert all(
        v["kind"] == "rubric" and (v["score"] is None or 1 <= v["score"] <= 5) for v in rubric.verdicts
    )
    assert {v["kind"] for v in saved.verdicts(notebook.id)} == {"pairwise", "rubric"}


def test_checks_of_every_type_pass_and_fail_on_real_answers(services):
    """Version 1 answers; version 2 (served from version 1's identical cells) is scored with a pass and
    a fail variant of every check type, built from those real answers."""
    saved = services.saved
    rows = [
        {"prompt": 'Output exactly this JSON and nothing else: {"name": "Ada"}'},
        {"prompt": "Name a fruit."},
    ]
    document = {"name": "types", "rows": rows, "models": [GREEDY], "max_new_tokens": 40}
    notebook = saved.create(document, key="owner")
    answers = [c for c in run(saved, notebook.id).grid.cells]
    json_answer, prose = answers[0], answers[1]
    assert json_answer.finish_reason == "eos", (
        json_answer.text
    )  # the greedy answer on this model: a JSON object
    word, text, tokens = prose.text.split()[0], prose.text, prose.stats["completion_tokens"]
    ttft, total = prose.stats["ttft_s"], prose.stats["total_s"]
    other_reason = "stopped" if prose.finish_reason != "stopped" else "eos"
    pairs = [  # (passing check, failing check), each on the row its answer is in
        ({"type": "contains", "value": word}, {"type": "contains", "value": "zzqx"}),
        (
            {"type": "contains", "value": word.upper(), "case_sensitive": False},
            {"type": "contains", "value": word.upper()},
        ),
        ({"type": "not-contains", "value": "zzqx"}, {"type": "not-contains", "value": word}),
        ({"type": "contains", "value": "{expected}"}, {"type": "contains", "value": "{missing}"}),
        ({"type": "equals", "value": text}, {"type": "equals", "value": text + "!"}),
        ({"type": "starts-with", "value": text[:6]}, {"type": "starts-with", "value": "zzqx"}),
        ({"type": "regex", "value": re.escape(text[:6]) + ".*"}, {"type": "regex", "value": r"^\d{9}$"}),
        ({"type": "length", "max": len(text)}, {"type": "length", "max": len(text) - 1}),
        (
            {"type": "length", "min": tokens, "unit": "tokens"},
            {"type": "length", "max": tokens - 1, "unit": "tokens"},
        ),
        (
            {"type": "finish-reason", "value": prose.finish_reason},
            {"type": "finish-reason", "value": other_reason},
        ),
        ({"type": "ttft-under", "value": ttft + 60}, {"type": "ttft-under", "value": ttft / 1000}),
        ({"type": "time-under", "value": total + 60}, {"type": "time-under", "value": total / 1000}),
        (
            {"type": "python", "value": f"len(output) == {len(text)}"},
            {"type": "python", "value": "vars['expected'] == 'x'"},
        ),
    ]
    checks = [dict(c, rows=[1]) for pair in pairs for c in pair]
    checks += [  # the JSON answer of row 1
        {"type": "is-json", "rows": [0]},
        {"type": "is-json", "rows": [1]},
        {"type": "json-schema", "value": {"type": "object", "required": ["name"]}, "rows": [0]},
        {"type": "json-schema", "value": {"type": "array"}, "rows": [0]},
    ]
    expected = [True, False] * (len(checks) // 2)
    rows[1] = {**rows[1], "expected": word, "missing": "zzqx"}
    saved.save(notebook.id, {**document, "rows": rows, "checks": checks, "threshold": 0.5}, key="owner")
    second = run(saved, notebook.id)
    assert second.version == 2 and [c.status for c in second.grid.cells] == ["cached", "cached"]
    got = [second.scores.cells[(check["rows"][0], 0, 0)].results[k].passed for k, check in enumerate(checks)]
    assert got == expected, [(c, g) for c, g, e in zip(checks, got, expected, strict=True) if g != e]
    assert [c.text for c in second.grid.cells] == [json_answer.text, prose.text]
