"""Runs against runs, on grids as the notebook stores them: changed cells, check flips scored with the
newer checks, pass-rate and score changes per model; word diffs rebuild both texts; samples collapse
with their count and agreement."""

from __future__ import annotations

from playground.services.notebook.checks import CheckSet, parse_checks
from playground.services.notebook.diff import collapse_samples, diff_runs, word_diff
from playground.services.notebook.grid import Cell, GridUpdate
from playground.services.notebook.prompts import build_rows

ROWS = build_rows(
    [
        {"prompt": "Capital of France?", "expected": "Paris"},
        {"prompt": "Capital of Peru?", "expected": "Lima"},
    ]
)


def grid(texts: dict[tuple[int, int], str], presets=("m1", "m2")) -> GridUpdate:
    cells = [
        Cell(row=r, model=m, sample=0, preset=p, status="done", text=texts[(r, m)], finish_reason="eos")
        for r in range(2)
        for m, p in enumerate(presets)
    ]
    return GridUpdate("c", list(presets), ROWS, 1, cells, len(cells), len(cells), 1.0, finished=True)


def test_two_versions_diffed():
    before = grid({(0, 0): "Paris.", (0, 1): "It is Paris.", (1, 0): "Lima", (1, 1): "Cusco"})
    after = grid({(0, 0): "Paris.", (0, 1): "It is Lyon.", (1, 0): "Lima", (1, 1): "It is Lima."})
    checks = CheckSet(parse_checks([{"type": "contains", "value": "{expected}"}], False), 1.0)
    diff = diff_runs(1, before, 2, after, checks)
    assert diff.compared == 4 and (diff.only_a, diff.only_b) == (0, 0)
    assert [(c.row, c.preset, c.before, c.after) for c in diff.changed] == [
        (0, "m2", "It is Paris.", "It is Lyon."),
        (1, "m2", "Cusco", "It is Lima."),
    ]
    assert [(f.row, f.preset, f.check, f.before, f.after) for f in diff.flips] == [
        (0, "m2", 'contains "{expected}"', True, False),
        (1, "m2", 'contains "{expected}"', False, True),
    ]
    assert [(m.preset, m.pass_rate_before, m.pass_rate_after) for m in diff.models] == [
        ("m1", 1.0, 1.0),
        ("m2", 0.5, 0.5),
    ]
    assert diff.as_json()["changed"][0]["diff"] == [
        ["=", "It is "],
        ["-", "Paris"],
        ["+", "Lyon"],
        ["=", "."],
    ]


def test_a_model_only_in_one_version_is_counted_apart():
    before = grid({(0, 0): "a", (0, 1): "b", (1, 0): "c", (1, 1): "d"})
    after = grid({(0, 0): "a", (0, 1): "x", (1, 0): "c", (1, 1): "y"}, presets=("m1", "m3"))
    diff = diff_runs(1, before, 2, after, CheckSet([], 1.0))
    assert (diff.compared, diff.only_a, diff.only_b, diff.changed) == (2, 2, 2, [])
    assert [m.preset for m in diff.models] == ["m1", "m2", "m3"]


def test_word_diff_rebuilds_both_texts():
    a, b = "The cat sat on the mat, quietly.", "The dog sat on a mat quietly!"
    pieces = word_diff(a, b)
    assert "".join(t for op, t in pieces if op != "+") == a
    assert "".join(t for op, t in pieces if op != "-") == b
    assert ("-", "cat") in pieces and ("+", "dog") in pieces
    assert word_diff("same", "same") == [("=", "same")]


def test_samples_collapse_with_their_count_and_agreement():
    groups, agree = collapse_samples(["Paris", "Lyon", "Paris", "Paris"])
    assert [(g.text, g.count) for g in groups] == [("Paris", 3), ("Lyon", 1)] and agree == 0.75
    groups, agree = collapse_samples(["x", "x"])
    assert [(g.text, g.count) for g in groups] == [("x", 2)] and agree == 1.0
