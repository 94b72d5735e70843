"""A grid's progress tells the truth: counts per state (done, running, waiting, stopped, failed, not
run), the tokens so far, an ETA from the measured speed that falls while a batch runs, a bar that
is not full when cells were stopped or never ran; and the one request parser of the tab and the API."""

import pytest

from playground.errors import PlaygroundError
from playground.services.notebook.grid import Cell, GridUpdate, NotebookRequest
from playground.services.notebook.prompts import build_rows
from playground.ui.notebook_view import progress_html


def grid_of(statuses: list[str], tokens: list[int], budget: int = 100, stream_s: float = 0.0) -> GridUpdate:
    rows = build_rows([{"prompt": f"p{i}"} for i in range(len(statuses))])
    cells = [
        Cell(row=i, model=0, sample=0, preset="m", status=s, stats={"completion_tokens": t}, budget=budget)
        for i, (s, t) in enumerate(zip(statuses, tokens, strict=True))
    ]
    grid = GridUpdate("c", ["m"], rows, 1, cells, len(cells), 0, stream_s)
    grid.stream_s = stream_s
    return grid


def test_the_eta_falls_while_a_batch_runs():
    """Three cells decoding together at 6 tokens/s: 40 s left, then 30 s, then 20 s (the old ETA,
    elapsed / finished cells × cells left, had nothing to go on inside a batch and grew with time)."""
    etas = []
    for seconds in (10, 20, 30):
        grid = grid_of(["running"] * 3, [2 * seconds] * 3, budget=100, stream_s=seconds)
        assert grid.tokens == 6 * seconds and grid.tokens_per_s == pytest.approx(6.0)
        etas.append(grid.eta_s)
    assert etas == pytest.approx([40.0, 30.0, 20.0])
    # once cells end, the rest are expected to take as many tokens as those did
    grid = grid_of(["done", "running", "pending"], [30, 20, 0], budget=100, stream_s=10)
    assert grid.eta_s == pytest.approx((10 + 30) / 5.0)


def test_a_stopped_grid_counts_what_became_of_each_cell():
    grid = grid_of(
        ["done", "cached", "stopped", "stopped", "error", "not run", "not run", "not run"], [9] * 8
    )
    grid.finished, grid.stopped, grid.elapsed_s = True, True, 12.0
    assert grid.counts == {
        "done": 1,
        "cached": 1,
        "running": 0,
        "pending": 0,
        "stopped": 2,
        "error": 1,
        "not run": 3,
    }
    shown = progress_html(grid)
    assert "2 / 8 cells · 1 from earlier runs · 2 stopped · 1 failed · 3 not run" in shown
    assert "stopped after 12.0 s" in shown and "finished" not in shown
    assert "width:25.00%" in shown and "width:100" not in shown  # the bar: a quarter done, not full
    assert grid.as_json()["done"] == 8  # the API's count of settled cells


def test_inside_a_batch_the_line_shows_tokens_speed_and_what_runs():
    grid = grid_of(["running", "running", "pending"], [12, 10, 0], stream_s=4.0)
    grid.phase = "SmolLM2: generating 2 cells"
    shown = progress_html(grid)
    assert "0 / 3 cells · 2 running · 1 waiting · 22 tokens · 5.5 tok/s" in shown
    assert "SmolLM2: generating 2 cells" in shown and "s left" in shown


def test_one_parser_reads_the_tab_and_the_api_alike():
    from_api = NotebookRequest.parse(
        '["a", "b"]', '[{"lang": "French", "text": "Hi"}]', "To {lang}: {text}", '{"a": {"top_k": 5}}', 2, 7
    )
    from_tab = NotebookRequest.parse(
        ["a", "b"], [{"lang": "French", "text": "Hi"}], "To {lang}: {text}", {"a": {"top_k": 5}}, 2.0, 7.0, 32
    )
    assert from_api.rows[0].user == from_tab.rows[0].user == "To French: Hi"
    assert (from_api.samples, from_api.seed, from_api.params) == (2, 7, {"a": {"top_k": 5}})
    assert from_tab.params == {"a": {"top_k": 5, "max_new_tokens": 32}, "b": {"max_new_tokens": 32}}
    with pytest.raises(PlaygroundError, match=r"translations.csv, row 1: the template uses \{prompt\}"):
        NotebookRequest.parse(["a"], [{"lang": "x"}], "{prompt}", source="translations.csv")
    with pytest.raises(PlaygroundError, match="per-model overrides is not valid JSON"):
        NotebookRequest.parse(["a"], [{"prompt": "x"}], overrides="{oops")
    with pytest.raises(PlaygroundError, match="must be a JSON object like"):
        NotebookRequest.parse(["a"], [{"prompt": "x"}], overrides='{"a": 1}')
    with pytest.raises(PlaygroundError, match="samples must be a whole number"):
        NotebookRequest.parse(["a"], [{"prompt": "x"}], samples="two")
