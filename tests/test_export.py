"""Data out: the export CLI in every format on real stored data, streaming, bad arguments; replay."""

from __future__ import annotations

import csv
import inspect
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client
from sqlalchemy import update

from playground.engine.templates import parse_messages
from playground.errors import PlaygroundError
from playground.services.chat import AnswerRequest
from playground.services.export import ExportFilter, export_records, open_database
from playground.settings import Settings
from playground.store.models import Turn
from tests.conftest import PRESETS

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SMOL, GREEDY = "smollm2-135m-instruct", "smollm2-135m-instruct-greedy"


def ask(text: str):
    return parse_messages([{"role": "user", "content": text}])


@pytest.fixture(scope="module")
def data(tmp_path_factory, model_cache_dir):
    """A database filled through the real services: a compare round with 👍/👎 and a vote, a voted
    and an unvoted arena battle, a notebook run with a score."""
    from playground.services.container import build_services
    from playground.services.notebook_grid import NotebookRequest
    from playground.services.promptset import PromptRow

    folder = tmp_path_factory.mktemp("export")
    services = build_services(
        Settings(
            db=str(folder / "data.db"),
            presets_dir=PRESETS,
            user_presets_dir=folder / "user",
            cache_dir=model_cache_dir,
        )
    )
    conversation = services.compare.start([SMOL, GREEDY], session_id="s1")
    requests = [
        AnswerRequest(
            preset=p, messages=ask("Name a color."), params={"max_new_tokens": 6, "seed": 5}, turn_index=0
        )
        for p in (SMOL, GREEDY)
    ]
    *_, final = services.compare.run(conversation, requests)
    liked, disliked = final[1].turn_id, final[0].turn_id
    services.feedback.rate(liked, 1, ["accurate"])
    services.feedback.rate(disliked, -1, ["wrong"])
    services.compare.vote(conversation, 0, "1")
    for outcome in ("0", None):
        battle = services.arena.new_battle("s2")
        for _ in services.arena.send(battle, "s2", "Say hi."):
            pass
        if outcome:
            services.arena.vote(battle, "s2", outcome)
    grid = NotebookRequest(
        presets=[GREEDY],
        rows=[PromptRow(index=0, variables={"x": "1"}, user="Say hi")],
        params={GREEDY: {"max_new_tokens": 4}},
    )
    *_, done = services.notebook.run(grid, "s3")
    services.store.record_score(done.cells[0].turn_id, 4, "fine")
    return services, folder / "data.db", {"liked": liked, "disliked": disliked, "compare": conversation}


def export(db: Path, fmt: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "app.py"),
            "export",
            "--format",
            fmt,
            "--out",
            str(out),
            "--db",
            str(db),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def rows(db: Path) -> list:
    with sqlite3.connect(db) as connection:
        return [
            connection.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
            for t in ("turns", "votes", "ratings")
        ]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_jsonl_has_every_conversation_with_turns_ratings_scores_and_votes(data, tmp_path):
    services, db, ids = data
    done = export(db, "jsonl", tmp_path / "all.jsonl")
    assert done.returncode == 0, done.stderr
    assert "wrote 4 jsonl record(s)" in done.stderr
    records = lines(tmp_path / "all.jsonl")
    assert sorted(r["mode"] for r in records) == ["arena", "arena", "compare", "notebook"]
    compare = next(r for r in records if r["id"] == ids["compare"])
    turns = {t["id"]: t for t in compare["turns"]}
    assert (
        turns[ids["liked"]]["ratings"][0]["value"] == 1
        and turns[ids["disliked"]]["ratings"][0]["value"] == -1
    )
    assert compare["votes"][0]["outcome"] == "1"
    assert {"preset_hash", "revision", "prompt", "params", "seed", "output"} <= set(turns[ids["liked"]])
    notebook = next(r for r in records if r["mode"] == "notebook")
    assert notebook["turns"][0]["scores"][0]["score"] == 4


def test_csv_is_one_answer_per_row_with_its_reproducibility_fields(data, tmp_path):
    services, db, ids = data
    assert export(db, "csv", tmp_path / "turns.csv").returncode == 0
    rows = list(csv.DictReader((tmp_path / "turns.csv").open(encoding="utf-8")))
    assert len(rows) == len(services.store.turns())
    liked = next(r for r in rows if int(r["turn_id"]) == ids["liked"])
    assert (
        liked["rating"] == "1" and liked["seed"] == "5" and json.loads(liked["params"])["max_new_tokens"] == 6
    )
    assert liked["conversation_mode"] == "compare" and liked["preset_hash"]


def test_dpo_pairs_come_from_decisive_votes_and_opposite_ratings(data, tmp_path):
    services, db, ids = data
    assert export(db, "dpo", tmp_path / "pairs.jsonl").returncode == 0
    pairs = lines(tmp_path / "pairs.jsonl")
    turns = {t.id: t for t in services.store.turns()}
    compare = [p for p in pairs if p["conversation_id"] == ids["compare"]]
    assert len(compare) == 1  # the vote's pair; the 👍/👎 pair is the same one and is not repeated
    [pair] = compare
    assert pair["chosen"] == turns[ids["liked"]].output and pair["rejected"] == turns[ids["disliked"]].output
    assert pair["prompt"] == turns[ids["liked"]].prompt and pair["source"] == "vote"
    arena = [p for p in pairs if p["vote_kind"] == "arena"]
    assert len(arena) <= 1 and all(
        p["chosen_model"] != p["rejected_model"] or p["chosen"] != p["rejected"] for p in arena
    )


def test_sharegpt_threads_and_the_filters(data, tmp_path):
    _, db, _ = data
    assert export(db, "sharegpt", tmp_path / "chat.jsonl", "--mode", "compare").returncode == 0
    records = lines(tmp_path / "chat.jsonl")
    assert len(records) == 2  # one thread per column
    assert [m["from"] for m in records[0]["conversations"]] == ["system", "human", "gpt"]
    done = export(db, "jsonl", tmp_path / "none.jsonl", "--since", "2999-01-01")
    assert done.returncode == 0 and (tmp_path / "none.jsonl").read_text() == ""


def test_bad_arguments_name_the_cause_and_touch_nothing(data, tmp_path):
    _, db, _ = data
    before = rows(db)
    missing = export(tmp_path / "missing.db", "jsonl", tmp_path / "x.jsonl")
    assert missing.returncode == 2 and "there is no database at" in missing.stderr
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "x.jsonl").exists()
    assert "invalid choice: 'xml'" in export(db, "xml", tmp_path / "x").stderr
    assert "not a real date" in export(db, "csv", tmp_path / "x", "--since", "2024-02-30").stderr
    assert "mode must be one of" in export(db, "csv", tmp_path / "x", "--mode", "chat").stderr
    assert "it is a folder" in export(db, "csv", tmp_path).stderr
    assert "is the database being exported" in export(db, "csv", db).stderr
    assert rows(db) == before


def test_records_stream_one_by_one(data):
    services, db, _ = data
    engine = open_database(str(db))
    for fmt in ("jsonl", "csv", "dpo", "sharegpt"):
        records = export_records(engine, fmt, ExportFilter())
        assert inspect.isgenerator(records)
        assert next(records)  # the first record arrives before the rest is read
        records.close()


def test_replay_reproduces_seeded_and_greedy_answers_and_flags_a_changed_one(data):
    services, _, ids = data
    for turn_id in (ids["liked"], ids["disliked"]):  # greedy, and seeded sampling
        result = services.replay.replay(turn_id)
        assert result.match and result.prompt_match and result.revision_match and not result.preset_changed
    with services.store.session() as s, s.begin():
        s.execute(update(Turn).where(Turn.id == ids["liked"]).values(output="edited by hand"))
    changed = services.replay.replay(ids["liked"])
    assert not changed.match and changed.replayed_output != "edited by hand"
    with pytest.raises(PlaygroundError, match="there is no stored answer with id 987654"):
        services.replay.replay(987654)


def test_replay_through_the_api(live_app, services):
    client = Client(live_app, verbose=False)
    messages = json.dumps([{"role": "user", "content": "Name a bird."}])
    job = client.submit(json.dumps([GREEDY]), messages, '{"max_new_tokens": 6}', "", "", api_name="/compare")
    turn_id = job.result(timeout=120)["columns"][0]["turn_id"]
    result = client.predict(turn_id, api_name="/replay")
    assert (
        result["match"]
        and result["turn_id"] == turn_id
        and result["stored_output"] == result["replayed_output"]
    )
    with pytest.raises(Exception, match="there is no stored answer with id 99999999"):
        client.predict(99999999, api_name="/replay")
