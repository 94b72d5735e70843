"""Data out: every export format on a real SQLite store (the DPO and ShareGPT rules, the filters,
streaming over a few thousand conversations, the CLI's errors), then on answers of the real model."""

from __future__ import annotations

import csv
import inspect
import io
import json
import os
import sqlite3
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gradio_client import Client
from sqlalchemy import update

from playground.cli import main
from playground.engine.models.templates import parse_messages
from playground.errors import PlaygroundError
from playground.services.answers.chat import AnswerRequest
from playground.services.data.export import (
    ExportFilter,
    export_records,
    export_to_file,
    open_database,
    write_export,
)
from playground.store.db import Store, TurnRecord
from playground.store.models import Conversation, Rating, Turn, Vote
from tests.conftest import free_port, fresh_services

ROOT = Path(__file__).resolve().parents[1]
SMOL, GREEDY = "smollm2-135m-instruct", "smollm2-135m-instruct-greedy"
slow = pytest.mark.slow


def ask(text: str):
    return parse_messages([{"role": "user", "content": text}])


def user(*texts: str) -> list[dict]:
    """A conversation: user, assistant, user, … (the odd texts are the assistant's)."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


def answer(store: Store, cid: str, column: int, turn_index: int, output: str, **fields) -> int:
    messages = fields.pop("messages", user("Name a color."))
    system = fields.pop("system_prompt", "Be brief.")
    preset = fields.pop("preset", f"preset-{column}")
    record = TurnRecord(
        conversation_id=cid,
        column=column,
        turn_index=turn_index,
        preset_name=preset,
        preset_hash="f" * 64,
        model_id=f"org/{preset}",
        revision="abc123",
        quantization="none",
        dtype="float32",
        device="cpu",
        messages=messages,
        system_prompt=system,
        prompt=f"<{preset}>{system}|{json.dumps(messages)}|",
        params={"temperature": 0.7, "max_new_tokens": 32},
        seed=11,
        output=output,
        finish_reason=fields.pop("finish_reason", "eos"),
        started_at=datetime.now(),
        stats={
            "prompt_tokens": 5,
            "completion_tokens": 3,
            "ttft_s": 0.01,
            "total_s": 0.02,
            "tokens_per_s": 150.0,
        },
        **fields,
    )
    return store.record_turn(record)


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    """Hand-made rounds through the real Store on SQLite: every DPO / ShareGPT rule has a case here."""
    store = Store(str(tmp_path_factory.mktemp("rules") / "rules.db"))
    return store, build_rules(store)


def build_rules(store: Store) -> dict:
    ids: dict = {}
    # a 3-column round: column 0 regenerated before the vote, column 1 regenerated after it; column 2 wins
    c = ids["compare"] = store.new_conversation("compare", ["preset-0", "preset-1", "preset-2"])
    ids["old0"] = answer(store, c, 0, 0, "red?")
    ids["a0"], ids["b0"], ids["c0"] = (
        answer(store, c, i, 0, t) for i, t in enumerate(["red", "blue", "green"])
    )
    store.record_vote(c, "compare", 0, "2", ["preset-0", "preset-1", "preset-2"])
    ids["late1"] = answer(store, c, 1, 0, "BLUE (regenerated after the vote)")
    # round 2 of the same conversation: a tie, no pair
    for i, t in enumerate(["pink", "gray", "teal"]):
        answer(store, c, i, 1, t, messages=user("Name a color.", ["red", "blue", "green"][i], "Another?"))
    store.record_vote(c, "compare", 1, "tie", ["preset-0", "preset-1", "preset-2"])
    # the same liked/disliked pair as the vote: not repeated as a rating pair
    store.record_rating(ids["c0"], 1)
    store.record_rating(ids["a0"], -1)

    # an arena battle of two rounds (and a third stopped on one side, not in the battle's record); B wins
    a = ids["arena"] = store.new_conversation("arena", ["preset-0", "preset-1"], "s")
    r0 = [answer(store, a, s, 0, t, messages=user("Hi")) for s, t in enumerate(["hello A", "hello B"])]
    r1 = [
        answer(store, a, s, 1, t, messages=user("Hi", h, "And?"))
        for s, (t, h) in enumerate([("more A", "hello A"), ("more B", "hello B")])
    ]
    answer(store, a, 0, 2, "partial A", messages=user("Hi", "hello A", "And?", "more A", "Last?"))
    store.save_battle("battle1", session_id="s", presets=["preset-0", "preset-1"], conversation_id=a)
    store.save_battle("battle1", rounds=2, turn_ids=[[r0[0], r1[0]], [r0[1], r1[1]]])
    ids["arena_rounds"] = (r0, r1)
    store.record_vote(a, "arena", 0, "1", ["preset-0", "preset-1"], anonymous=True)
    # an arena battle without a vote: its names are still secret
    ids["open_arena"] = o = store.new_conversation("arena", ["preset-0", "preset-1"], "s2")
    answer(store, o, 0, 0, "secret A", messages=user("Yo"))

    # ratings across API conversations on the same messages
    question = user("What is 2+2?")
    api = [store.new_conversation("api", ["p"]) for _ in range(5)]
    ids["liked"] = answer(store, api[0], 0, 0, "4", messages=question, preset="good")
    ids["disliked"] = answer(
        store, api[1], 0, 0, "5", messages=question, preset="bad", system_prompt="Other."
    )
    ids["changed_mind"] = answer(store, api[2], 0, 0, "four", messages=question, preset="good")
    ids["failed"] = answer(store, api[3], 0, 0, "", messages=question, finish_reason="error", error="boom")
    ids["same_text"] = answer(store, api[4], 0, 0, "4", messages=question, preset="bad")
    store.record_rating(ids["liked"], 1)
    store.record_rating(ids["disliked"], -1)
    store.record_rating(ids["changed_mind"], -1)
    store.record_rating(ids["changed_mind"], 1)  # the latest rating counts
    store.record_rating(ids["failed"], -1)
    store.record_rating(ids["same_text"], -1)
    # notebook: two cells of one grid
    n = ids["notebook"] = store.new_conversation("notebook", ["good"])
    answer(store, n, 0, 0, "cell 1", messages=user("row 1"), preset="good")
    answer(store, n, 0, 1, "cell 2", messages=user("row 2"), preset="good")
    # an old conversation, for --since
    ids["old"] = old = store.new_conversation("api", ["p"])
    answer(store, old, 0, 0, "old answer", messages=user("Long ago"))
    with store.session() as s, s.begin():
        s.execute(update(Conversation).where(Conversation.id == old).values(created_at=datetime(2020, 1, 1)))
    return ids


def records(store: Store, fmt: str, **flt) -> list[dict]:
    """The export's records; a DPO row's ``metadata`` is flattened beside prompt/chosen/rejected."""
    out = list(export_records(store.engine, fmt, ExportFilter(**flt)))
    return [flat(r) for r in out] if fmt == "dpo" else out


def flat(row: dict) -> dict:
    assert set(row) == {"prompt", "chosen", "rejected", "metadata"}, row.keys()
    return {**row["metadata"], "prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}


def test_dpo_from_votes_winner_against_each_loser_of_the_round_judged(rules):
    store, ids = rules
    pairs = [p for p in records(store, "dpo") if p["conversation_id"] == ids["compare"]]
    assert [(p["chosen_turn_id"], p["rejected_turn_id"]) for p in pairs] == [
        (ids["c0"], ids["a0"]),  # column 0's answer regenerated before the vote: the later one
        (ids["c0"], ids["b0"]),  # column 1's answer regenerated after the vote is not the one judged
    ]
    first = pairs[0]
    turn = store.turns_by_id([ids["c0"]])[ids["c0"]]
    assert (first["prompt"], first["chosen"], first["rejected"]) == (turn.prompt, "green", "red")
    assert first["messages"] == turn.messages and first["system_prompt"] == "Be brief."
    assert (first["chosen_model"], first["rejected_model"], first["source"]) == (
        "preset-2",
        "preset-0",
        "vote",
    )
    assert first["vote_kind"] == "compare" and first["same_context"] is True and first["turn_index"] == 0


def test_dpo_arena_votes_pair_every_finished_round_of_the_battle(rules):
    store, ids = rules
    pairs = [p for p in records(store, "dpo") if p["conversation_id"] == ids["arena"]]
    r0, r1 = ids["arena_rounds"]
    assert [(p["chosen"], p["rejected"], p["turn_index"]) for p in pairs] == [
        ("hello B", "hello A", 0),
        ("more B", "more A", 1),
    ]
    assert [(p["chosen_turn_id"], p["rejected_turn_id"]) for p in pairs] == [(r0[1], r0[0]), (r1[1], r1[0])]
    # round 2 onwards each side answered its own history
    assert [p["same_context"] for p in pairs] == [True, False]
    assert pairs[1]["rejected_messages"][1]["content"] == "hello A"


def test_dpo_from_ratings_latest_rating_same_messages_no_failed_or_identical_answers(rules):
    store, ids = rules
    pairs = [p for p in records(store, "dpo") if p["source"] == "rating"]
    assert sorted((p["chosen_turn_id"], p["rejected_turn_id"]) for p in pairs) == [
        (ids["liked"], ids["disliked"]),
        (ids["changed_mind"], ids["disliked"]),
        (ids["changed_mind"], ids["same_text"]),
    ]  # not (liked, same_text): both say "4"; never the failed answer; not the vote's (c0, a0) again
    pair = next(p for p in pairs if p["chosen_turn_id"] == ids["liked"])
    assert pair["same_context"] is False and pair["rejected_system_prompt"] == "Other."
    assert pair["chosen_rating_id"] and pair["rejected_rating_id"] and pair["vote_id"] is None
    assert pair["conversation_id"] != pair["rejected_conversation_id"]
    keys = {tuple(p) for p in records(store, "dpo")}
    assert len(keys) == 1  # one schema for every record (and every metadata)


def test_sharegpt_one_thread_per_column_and_one_record_per_notebook_cell(rules):
    store, ids = rules
    threads = records(store, "sharegpt")
    compare = [t for t in threads if t["conversation_id"] == ids["compare"]]
    assert [t["column"] for t in compare] == [0, 1, 2]
    assert compare[0]["conversations"] == [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "Name a color."},
        {"from": "gpt", "value": "red"},
        {"from": "human", "value": "Another?"},
        {"from": "gpt", "value": "pink"},
    ]
    assert compare[0]["id"] == f"{ids['compare']}-0" and compare[0]["model"] == "org/preset-0"
    notebook = [t for t in threads if t["conversation_id"] == ids["notebook"]]
    assert [t["conversations"][-1]["value"] for t in notebook] == ["cell 1", "cell 2"]
    assert ids["failed"] not in {t["turn_id"] for t in threads}


def test_jsonl_and_csv_carry_ratings_scores_votes_and_the_filters_apply(rules):
    store, ids = rules
    store.record_score(ids["b0"], 3, "ok")
    conversations = records(store, "jsonl")
    compare = next(c for c in conversations if c["id"] == ids["compare"])
    turns = {t["id"]: t for t in compare["turns"]}
    assert [r["value"] for r in turns[ids["a0"]]["ratings"]] == [-1]
    assert [s["score"] for s in turns[ids["b0"]]["scores"]] == [3]
    assert [v["outcome"] for v in compare["votes"]] == ["2", "tie"]
    assert set(turns[ids["a0"]]) >= {
        "preset_hash",
        "revision",
        "quantization",
        "dtype",
        "device",
        "seed",
        "params",
    }
    rows = records(store, "csv", include_unvoted=True)
    assert len(rows) == store.count(Turn)
    assert len(records(store, "csv")) == store.count(Turn) - 1  # the unvoted battle's answer: left out
    row = next(r for r in rows if r["turn_id"] == ids["changed_mind"])
    assert row["rating"] == 1 and row["conversation_mode"] == "api" and json.loads(row["messages"])[0]["role"]

    assert {c["mode"] for c in records(store, "jsonl", mode="arena")} == {"arena"}
    assert ids["old"] not in {c["id"] for c in records(store, "jsonl", since=datetime.now().date())}
    assert ids["old"] in {c["id"] for c in records(store, "jsonl")}
    shown = {c["id"] for c in records(store, "jsonl")}  # by default, unvoted battles are left out
    assert ids["arena"] in shown and ids["open_arena"] not in shown
    assert ids["open_arena"] in {c["id"] for c in records(store, "jsonl", include_unvoted=True)}
    for fmt in ("dpo", "csv", "sharegpt"):  # the filter also composes with the queries on votes and turns
        hidden = records(store, fmt)
        assert 0 < len(hidden) and "secret A" not in json.dumps(hidden)
        assert "secret A" in json.dumps(records(store, fmt, include_unvoted=True)) or fmt == "dpo"


def test_the_same_pairs_threads_and_filters_on_postgresql(rules, postgres_url):
    """The queries that differ between databases (messages compared as text, server-side cursors
    read while other queries run, the open-battle filter) give the same export on PostgreSQL."""
    sqlite_store, sqlite_ids = rules
    store = Store(postgres_url)
    ids = build_rules(store)
    engine = open_database(postgres_url)
    assert engine.dialect.name == "postgresql"

    def shape(store_: Store, ids_: dict, fmt: str, **flt) -> list:
        names = {v: k for k, v in ids_.items() if isinstance(v, int | str)}
        out = []
        for r in export_records(
            store_.engine if store_ is sqlite_store else engine, fmt, ExportFilter(**flt)
        ):
            if fmt == "dpo":
                r = flat(r)
                out.append(
                    (
                        r["source"],
                        r["chosen"],
                        r["rejected"],
                        names.get(r["chosen_turn_id"]),
                        r["same_context"],
                    )
                )
            elif fmt == "sharegpt":
                out.append((r["mode"], r["column"], r["conversations"]))
            elif fmt == "csv":
                out.append((r["conversation_mode"], r["output"], r["rating"]))
            else:
                out.append((r["mode"], len(r["turns"]), len(r["votes"])))
        return sorted(out, key=repr)

    for fmt in ("dpo", "sharegpt", "csv", "jsonl"):
        for flt in ({}, {"include_unvoted": True}, {"mode": "api"}):
            assert shape(store, ids, fmt, **flt) == shape(sqlite_store, sqlite_ids, fmt, **flt), (fmt, flt)


def test_filter_parsing_names_the_bad_value():
    assert ExportFilter.parse("2024-03-01", "ALL") == ExportFilter(since=datetime(2024, 3, 1).date())
    for since, mode, message in (
        ("01/03/2024", "", "since must be a date as YYYY-MM-DD"),
        ("2024-02-30", "", "not a real date"),
        ("", "chat", "mode must be one of compare, arena, notebook, api"),
    ):
        with pytest.raises(PlaygroundError, match=message):
            ExportFilter.parse(since, mode)


def fill(store: Store, first: int, count: int, answer_chars: int = 1500) -> None:
    """Compare conversations ``first`` … ``first + count - 1`` (two answers, a vote and a 👍 each),
    inserted through the store's session in one transaction."""
    start = datetime(2025, 1, 1)
    body = ("word " * answer_chars)[:answer_chars]
    with store.session() as s, s.begin():
        for i in range(first, first + count):
            cid = f"c{i:06d}"
            when = start + timedelta(seconds=i)
            s.add(Conversation(id=cid, mode="compare", models=["x", "y"], created_at=when))
            for column in (0, 1):
                s.add(
                    Turn(
                        id=2 * i + column + 1,
                        conversation_id=cid,
                        column=column,
                        turn_index=0,
                        preset_name="xy"[column],
                        preset_hash="h",
                        model_id="org/m",
                        revision="r",
                        quantization="none",
                        dtype="float32",
                        device="cpu",
                        messages=user(f"question {i}"),
                        system_prompt="",
                        prompt=f"Q{i}",
                        params={},
                        seed=i,
                        output=f"{column} {i} {body}",
                        finish_reason="eos",
                        started_at=when,
                        finished_at=when,
                        app_version="t",
                    )
                )
            s.add(
                Vote(
                    conversation_id=cid,
                    kind="compare",
                    turn_index=0,
                    outcome="0",
                    models=["x", "y"],
                    created_at=when + timedelta(seconds=1),
                )
            )
            s.add(Rating(turn_id=2 * i + 1, value=1))


def peaks(store: Store, folder: Path, expected: int) -> dict[str, tuple[int, int]]:
    """Each format's (peak traced memory, file size) for an export of ``expected`` conversations."""
    out = {}
    for fmt, per_conversation in (("jsonl", 1), ("csv", 2), ("sharegpt", 2), ("dpo", 1)):
        path = folder / f"{fmt}-{expected}"
        tracemalloc.start()
        try:
            assert export_to_file(store.engine, fmt, path) == expected * per_conversation
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        out[fmt] = (peak, path.stat().st_size)
    return out


def test_a_few_thousand_conversations_stream_in_memory_that_does_not_grow_with_the_database(tmp_path):
    store = Store(str(tmp_path / "big.db"))
    fill(store, 0, 1000)
    small = peaks(store, tmp_path, 1000)
    fill(store, 1000, 2000)
    assert store.count(Turn) == 6000
    records_ = export_records(store.engine, "jsonl")
    assert inspect.isgenerator(records_)
    first = next(records_)
    assert first["id"] == "c000000" and [t["column"] for t in first["turns"]] == [0, 1]
    records_.close()
    large = peaks(store, tmp_path, 3000)
    for fmt, (peak, size) in large.items():
        small_peak, small_size = small[fmt]
        assert size > 2.5 * small_size  # three times the data …
        # … in about the same memory (holding every row would take ~3x as much, and more than the file)
        assert peak < 1.5 * small_peak + 500_000, f"{fmt}: {small_peak / 1e6:.1f} MB → {peak / 1e6:.1f} MB"
        assert peak < size / 2, f"{fmt}: peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB export"


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def table_rows(db: Path) -> list:
    with sqlite3.connect(db) as connection:
        return [
            connection.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
            for t in ("conversations", "turns", "votes", "ratings", "scores", "battles")
        ]


def test_cli_writes_stdout_reads_playground_db_and_touches_nothing(rules, tmp_path):
    store, _ = rules
    db = Path(store.url.removeprefix("sqlite:///"))
    before = table_rows(db)
    done = cli("export", "--format", "dpo", "--out", "-", env={"PLAYGROUND_DB": str(db)})
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["metadata"]["source"] for line in done.stdout.splitlines()].count("vote") == 4
    assert done.stderr.strip() == "wrote 7 dpo record(s) to -"
    out = tmp_path / "turns.csv"
    done = cli("export", "--format", "csv", "--out", str(out), "--db", str(db), "--mode", "notebook")
    assert done.returncode == 0 and f"wrote 2 csv record(s) to {out}" in done.stderr
    assert [r["output"] for r in csv.DictReader(out.open(encoding="utf-8"))] == ["cell 1", "cell 2"]
    assert table_rows(db) == before


def test_cli_bad_arguments_name_the_cause_create_nothing_and_keep_an_earlier_file(rules, tmp_path, capsys):
    store, _ = rules
    db = Path(store.url.removeprefix("sqlite:///"))
    before = table_rows(db)
    keep = tmp_path / "keep.jsonl"
    keep.write_text("earlier export\n")

    def fails(*args: str, message: str) -> None:
        """``python app.py export ARGS``, in this process: exit status 2 and the cause on stderr."""
        try:
            status = main(["export", *args])
        except SystemExit as exc:  # argparse's own errors
            status = exc.code
        err = capsys.readouterr().err
        assert status == 2 and message in err, err
        assert keep.read_text() == "earlier export\n"

    fails(
        "--format",
        "jsonl",
        "--out",
        str(keep),
        "--db",
        str(tmp_path / "no.db"),
        message="there is no database at",
    )
    assert not (tmp_path / "no.db").exists()
    fails("--format", "xml", "--out", str(keep), "--db", str(db), message="invalid choice: 'xml'")
    fails(
        "--format", "csv", "--out", str(keep), "--db", str(db), "--since", "yesterday", message="YYYY-MM-DD"
    )
    fails(
        "--format",
        "csv",
        "--out",
        str(keep),
        "--db",
        str(db),
        "--mode",
        "chat",
        message="mode must be one of",
    )
    fails("--format", "csv", "--out", str(tmp_path / "no" / "x.csv"), "--db", str(db), message="cannot write")
    fails("--format", "csv", "--out", str(tmp_path), "--db", str(db), message="it is a folder")
    fails("--format", "csv", "--out", str(db), "--db", str(db), message="is the database being exported")
    not_ours = tmp_path / "other.db"
    sqlite3.connect(not_ours).execute("CREATE TABLE t (x)").connection.commit()
    fails(
        "--format", "csv", "--out", str(keep), "--db", str(not_ours), message="is not a playground database"
    )
    assert table_rows(db) == before
    # the real command line: a missing database is an error there too, and without "export" it is the app
    done = cli("export", "--format", "csv", "--out", str(keep), "--db", str(tmp_path / "no.db"))
    assert (
        done.returncode == 2
        and "there is no database at" in done.stderr
        and not (tmp_path / "no.db").exists()
    )
    assert "--columns" in cli("--help").stdout


def test_write_export_to_a_stream_counts_what_it_wrote(rules):
    store, _ = rules
    out = io.StringIO()
    engine = open_database(store.url)
    n = write_export(engine, "sharegpt", out, ExportFilter(mode="compare"))
    assert n == 3 and len(out.getvalue().splitlines()) == 3


# ---------------------------------------------------------------- on the real model


@pytest.fixture(scope="module")
def data(tmp_path_factory, model_cache_dir):
    """A database filled through the real services: a compare round with 👍/👎 and a vote, a voted
    and an unvoted arena battle, a notebook run with a score."""
    from playground.services.notebook.grid import NotebookRequest
    from playground.services.notebook.prompts import PromptRow

    folder = tmp_path_factory.mktemp("export")
    services = fresh_services(folder, model_cache_dir)
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
    return services, folder / "playground.db", {"liked": liked, "disliked": disliked, "compare": conversation}


def export(db: Path, fmt: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return cli("export", "--format", fmt, "--out", str(out), "--db", str(db), *extra)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@slow
def test_jsonl_has_every_conversation_with_turns_ratings_scores_and_votes(data, tmp_path):
    services, db, ids = data
    done = export(db, "jsonl", tmp_path / "all.jsonl")
    assert done.returncode == 0, done.stderr
    assert "wrote 3 jsonl record(s)" in done.stderr  # the battle without a vote is left out …
    records = lines(tmp_path / "all.jsonl")
    assert sorted(r["mode"] for r in records) == ["arena", "compare", "notebook"]
    assert all(r["votes"] for r in records if r["mode"] == "arena")
    done = export(db, "jsonl", tmp_path / "with.jsonl", "--include-unvoted")  # … unless asked for
    assert done.returncode == 0 and "wrote 4 jsonl record(s)" in done.stderr
    assert sorted(r["mode"] for r in lines(tmp_path / "with.jsonl")) == [
        "arena",
        "arena",
        "compare",
        "notebook",
    ]
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


@slow
def test_the_cli_and_the_web_export_leave_out_the_same_unvoted_battles(data, tmp_path):
    """One rule for both: an arena battle without a vote is left out unless asked for (the CLI's
    --include-unvoted, the Data tab's option), in every format."""
    from playground.ui.app import CSS, build_app

    services, db, _ = data
    demo = build_app(services)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CSS)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        for fmt in ("jsonl", "csv", "dpo", "sharegpt"):
            for cli_flags, web_options in (((), []), (("--include-unvoted",), ["include unvoted battles"])):
                out = tmp_path / f"{fmt}-{len(cli_flags)}.{'csv' if fmt == 'csv' else 'jsonl'}"
                assert export(db, fmt, out, *cli_flags).returncode == 0
                web, _status = client.predict(fmt, "", "all", web_options, api_name="/export")
                assert Path(web).read_text(encoding="utf-8") == out.read_text(encoding="utf-8"), (
                    fmt,
                    cli_flags,
                )
        default, _ = client.predict("jsonl", "", "all", api_name="/export")  # the option's default: left out
        assert len(lines(Path(default))) == 3
    finally:
        demo.close()


@slow
def test_csv_is_one_answer_per_row_with_its_reproducibility_fields(data, tmp_path):
    services, db, ids = data
    assert export(db, "csv", tmp_path / "turns.csv", "--include-unvoted").returncode == 0
    rows = list(csv.DictReader((tmp_path / "turns.csv").open(encoding="utf-8")))
    assert len(rows) == len(services.store.turns())
    assert export(db, "csv", tmp_path / "voted.csv").returncode == 0  # the unvoted battle's two answers: out
    assert len(list(csv.DictReader((tmp_path / "voted.csv").open(encoding="utf-8")))) == len(rows) - 2
    liked = next(r for r in rows if int(r["turn_id"]) == ids["liked"])
    assert (
        liked["rating"] == "1" and liked["seed"] == "5" and json.loads(liked["params"])["max_new_tokens"] == 6
    )
    assert liked["conversation_mode"] == "compare" and liked["preset_hash"]


@slow
def test_dpo_pairs_come_from_decisive_votes_and_opposite_ratings(data, tmp_path):
    services, db, ids = data
    assert export(db, "dpo", tmp_path / "pairs.jsonl").returncode == 0
    pairs = [flat(p) for p in lines(tmp_path / "pairs.jsonl")]
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


@slow
def test_sharegpt_threads_and_the_filters(data, tmp_path):
    services, db, ids = data
    finish = {t.id: t.finish_reason for t in services.store.turns(ids["compare"])}  # one answer per column
    assert export(db, "sharegpt", tmp_path / "complete.jsonl", "--mode", "compare").returncode == 0
    complete = {i for i, reason in finish.items() if reason in ("eos", "stop_string")}
    assert {r["turn_id"] for r in lines(tmp_path / "complete.jsonl")} == complete  # by default, complete only
    flags = ("--mode", "compare", "--include-incomplete")  # also those cut by max_new_tokens (6 here)
    assert export(db, "sharegpt", tmp_path / "chat.jsonl", *flags).returncode == 0
    records = lines(tmp_path / "chat.jsonl")
    assert len(records) == 2 and {r["turn_id"] for r in records} == set(finish)  # one thread per column
    assert [m["from"] for m in records[0]["conversations"]] == ["system", "human", "gpt"]
    done = export(db, "jsonl", tmp_path / "none.jsonl", "--since", "2999-01-01")
    assert done.returncode == 0 and (tmp_path / "none.jsonl").read_text() == ""


@slow
def test_records_stream_one_by_one(data):
    services, db, _ = data
    engine = open_database(str(db))
    for fmt in ("jsonl", "csv", "dpo", "sharegpt"):
        records = export_records(engine, fmt, ExportFilter())
        assert inspect.isgenerator(records)
        assert next(records)  # the first record arrives before the rest is read
        records.close()


@slow
def test_export_through_the_api(live_app, services):
    client = Client(live_app, verbose=False)
    messages = json.dumps([{"role": "user", "content": "Name a tree."}])
    job = client.submit(json.dumps([GREEDY]), messages, '{"max_new_tokens": 6}', "", "", api_name="/compare")
    conversation_id = job.result(timeout=120)["conversation_id"]
    today = datetime.now(UTC).date().isoformat()
    path, status = client.predict("jsonl", today, "compare", api_name="/export")
    exported = {r["id"]: r for r in lines(Path(path))}
    assert conversation_id in exported and {r["mode"] for r in exported.values()} == {"compare"}
    assert status.startswith(f"✅ {len(exported)} record(s)")
    with pytest.raises(Exception, match="not a real date"):
        client.predict("csv", "2024-02-30", "all", api_name="/export")
    with pytest.raises(Exception, match="xml is not in the list of choices"):
        client.predict("xml", "", "all", api_name="/export")
