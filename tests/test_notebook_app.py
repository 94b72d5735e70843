"""The notebook grid through the running app (gradio_client) and through its service, on the real
SmolLM2 model and a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
import threading

import pytest
from gradio_client import Client

from playground.services.leaderboard.service import LeaderboardFilters
from playground.services.notebook.export import cell_records
from playground.services.notebook.grid import NotebookRequest
from playground.services.notebook.prompts import build_rows
from playground.store.models import NotebookCell, Turn

pytestmark = pytest.mark.slow

TWO = ["smollm2-135m-instruct", "smollm2-135m-instruct-greedy"]
SHORT = {name: {"max_new_tokens": 12} for name in TWO}


@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app, verbose=False)


def run_grid(client, rows, template="{prompt}", params=SHORT, samples=1):
    job = client.submit(
        json.dumps(TWO), json.dumps(rows), json.dumps(params), samples, template, 0, api_name="/notebook_run"
    )
    items = list(job)
    return items, job.result()


def test_a_grid_runs_is_stored_rated_and_exported(client, services):
    rows = [{"lang": lang, "text": "Good night"} for lang in ("French", "German", "Spanish", "Italian")]
    items, grid = run_grid(client, rows, template="Translate to {lang}: {text}")
    assert grid["finished"] and grid["done"] == grid["total"] == 8
    assert items[0]["done"] == 0 and len(items) > 2  # the empty grid first, then progress
    cells = grid["cells"]
    assert all(c["status"] == "done" and c["text"] and c["turn_id"] for c in cells)
    assert [(c["row"], c["model"]) for c in cells] == [(r, m) for r in range(4) for m in range(2)]

    conversation = services.store.conversation(grid["conversation_id"])
    assert conversation.mode == "notebook" and conversation.models == TWO
    turns = {t.id: t for t in services.store.turns(grid["conversation_id"])}
    assert len(turns) == 8
    for cell in cells:
        turn = turns[cell["turn_id"]]
        assert (turn.column, turn.turn_index, turn.preset_name) == (
            cell["model"],
            cell["row"],
            TWO[cell["model"]],
        )
        assert turn.output == cell["text"] and turn.seed == 0 and turn.params["max_new_tokens"] == 12
        assert turn.messages == [
            {"role": "user", "content": f"Translate to {rows[cell['row']]['lang']}: Good night"}
        ]
        assert turn.prompt.endswith("<|im_start|>assistant\n") and turn.preset_hash and turn.revision

    rated = cells[3]["turn_id"]
    answer = client.predict(rated, -1, 2, json.dumps(["wrong"]), "not Spanish", api_name="/notebook_rate")
    assert answer["rating_id"] and answer["score_id"]
    assert [(r.value, r.reasons, r.comment) for r in services.store.ratings(rated)] == [
        (-1, ["wrong"], "not Spanish")
    ]
    assert [s.score for s in services.store.scores(rated)] == [2]

    export = client.predict(grid["conversation_id"], "csv", api_name="/notebook_export")
    table = list(csv.DictReader(io.StringIO(export["content"])))
    assert [(int(r["row"]) - 1, TWO.index(r["model"]), r["output"]) for r in table] == [
        (c["row"], c["model"], c["text"]) for c in cells
    ]
    assert [r["row.lang"] for r in table][::2] == ["French", "German", "Spanish", "Italian"]
    marked = next(r for r in table if int(r["turn_id"]) == rated)
    assert (marked["rating"], marked["score"], marked["comment"]) == ("-1", "2", "not Spanish")
    lines = client.predict(grid["conversation_id"], "jsonl", api_name="/notebook_export")[
        "content"
    ].splitlines()
    assert [json.loads(line)["output"] for line in lines] == [c["text"] for c in cells]

    board = services.leaderboard.rating_stats(LeaderboardFilters())  # the leaderboard's per-model stats
    presets = {t.id: t.preset_name for t in services.store.turns()}
    given = [s.score for s in services.store.scores() if presets[s.turn_id] == TWO[1]]
    assert board.loc[TWO[1], "scores"] == len(given) and board.loc[TWO[1], "mean_score"] == sum(given) / len(
        given
    )


def test_running_the_same_grid_again_only_runs_changed_cells(client, services):
    rows = [{"prompt": "Name a fruit."}, {"prompt": "Name a tree."}]
    _items, first = run_grid(client, rows)
    before = services.store.count(Turn)
    _items, again = run_grid(client, [rows[0], {"prompt": "Name a flower."}])
    statuses = [(c["row"], c["status"]) for c in again["cells"]]
    assert statuses == [(0, "cached"), (0, "cached"), (1, "done"), (1, "done")]
    assert [c["text"] for c in again["cells"][:2]] == [c["text"] for c in first["cells"][:2]]
    assert again["cells"][0]["turn_id"] == first["cells"][0]["turn_id"]
    assert services.store.count(Turn) == before + 2  # only the changed row's two cells were generated
    assert len(services.store.notebook_cells(again["conversation_id"])) == 4


def test_bad_requests_give_the_real_cause(client):
    with pytest.raises(Exception, match=r"rows, row 2: the template uses \{lang\}"):
        run_grid(client, [{"lang": "French"}, {"text": "x"}], template="To {lang}")
    with pytest.raises(Exception, match="unknown preset 'nope'"):
        client.predict('["nope"]', '[{"prompt": "x"}]', "{}", 1, "{prompt}", 0, api_name="/notebook_run")
    with pytest.raises(Exception, match="temperature"):
        run_grid(client, [{"prompt": "x"}], params={TWO[0]: {"temperature": -1}})
    with pytest.raises(Exception, match="a score is a whole number from 1 to 5"):
        client.predict(1, 0, 9, "[]", "", api_name="/notebook_rate")


def test_stop_keeps_the_finished_cells_and_one_bad_row_fails_alone(services):
    notebook = services.notebook
    rows = build_rows([{"prompt": p} for p in ("Name a cat.", "Name a dog.", "Name a bird.", "Name a fish.")])
    names = [TWO[1], TWO[0]]
    request = NotebookRequest(names, rows, {n: {"max_new_tokens": 8} for n in names}, seed=4242)
    cancel = threading.Event()
    for grid in notebook.run(request, cancel=cancel):
        if grid.done >= 4:  # the first model's cells finished (they run as one batch): stop the rest
            cancel.set()
    first = [c for c in grid.cells if c.model == 0]
    second = [c for c in grid.cells if c.model == 1]
    assert [c.status for c in first] == ["done"] * 4 and grid.finished
    assert {c.status for c in second} <= {"stopped", "not run"}
    stored = services.store.notebook_cells(grid.conversation_id)
    assert [(cell.row_index, turn.output) for cell, turn in stored if cell.model_index == 0] == [
        (c.row, c.text) for c in first
    ]
    assert all(turn.finish_reason == "stopped" for cell, turn in stored if cell.model_index == 1)

    # 15,000 characters (under --max-input-chars), 15,000 tokens (over the 8,192 of the context)
    huge = build_rows([{"prompt": "Say yes."}, {"prompt": "0123456789" * 1500}])
    grid = list(notebook.run(NotebookRequest([TWO[1]], huge, {TWO[1]: {"max_new_tokens": 4}})))[-1]
    assert grid.cells[0].status == "done" and grid.cells[1].status == "error"
    assert "row 2" in grid.cells[1].error and "exceeds the model's context" in grid.cells[1].error
    errors = [t for t in services.store.turns(grid.conversation_id) if t.finish_reason == "error"]
    assert len(errors) == 1 and errors[0].turn_index == 1
    assert services.store.count(NotebookCell) >= 4
    exported = cell_records(services.store, grid.conversation_id)  # a failed cell is exported too
    assert [(r["row"], r["finish_reason"], bool(r["error"])) for r in exported] == [
        (1, grid.cells[0].finish_reason, False),
        (2, "error", True),
    ]
