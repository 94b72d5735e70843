"""The exports read by the software that consumes them, on answers of the real model stored by the
real services: ``datasets``, pandas and TRL's own data utilities under several ``PYTHONHASHSEED``
values (identical results every time), and the ShareGPT file by the conventions of LLaMA-Factory's
and axolotl's ShareGPT readers. A system message inside an API request's messages is what the model
saw, what is stored, and the one system turn of its ShareGPT record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from playground.engine.models import embedded
from playground.engine.models.templates import parse_messages
from playground.services.answers.chat import AnswerRequest
from playground.services.notebook.grid import NotebookRequest
from playground.services.notebook.prompts import build_rows
from tests.conftest import ROOT, fresh_services

pytestmark = pytest.mark.slow

SMOL, GREEDY = "smollm2-135m-instruct", "smollm2-135m-instruct-greedy"
PIRATE = "You are a pirate. Answer in one short line."
HASH_SEEDS = ("0", "1", "2", "3", "4")  # with the old DPO rows, seed 4 took them as conversational


def answer(services, conversation, preset, messages, column=0, cancel_after=None, **params):
    request = AnswerRequest(preset, parse_messages(messages), params={"seed": 3, **params})
    cancel = threading.Event()
    final = None
    for final in services.chat.answer(request, conversation, column, cancel=cancel):
        if cancel_after and len(final.text) >= cancel_after:
            cancel.set()
    return final


@pytest.fixture(scope="module")
def stored(tmp_path_factory, model_cache_dir):
    """A database filled through the real services on the embedded model."""
    folder = tmp_path_factory.mktemp("consumers")
    services = fresh_services(folder, model_cache_dir)
    ids = {}
    api = services.compare.start([GREEDY], mode="api")
    pirate = [{"role": "system", "content": PIRATE}, {"role": "user", "content": "Say hi."}]
    ids["pirate"] = answer(services, api, GREEDY, pirate, max_new_tokens=32).turn_id
    for question, winner in (("Name a color.", "1"), ("Name a fruit.", "0")):
        conversation = services.compare.start([SMOL, GREEDY], session_id="s")
        requests = [
            AnswerRequest(
                p, parse_messages([{"role": "user", "content": question}]), params={"max_new_tokens": 12}
            )
            for p in (SMOL, GREEDY)
        ]
        *_, final = services.compare.run(conversation, requests)
        services.compare.vote(conversation, 0, winner)
        services.feedback.rate(final[int(winner)].turn_id, 1, ["accurate"])
        services.feedback.rate(final[1 - int(winner)].turn_id, -1, ["wrong"])
    cut = services.compare.start([GREEDY], mode="api")
    ids["length"] = answer(
        services, cut, GREEDY, [{"role": "user", "content": "Count to fifty."}], max_new_tokens=3
    ).turn_id
    stopped = services.compare.start([GREEDY], mode="api")
    ids["stopped"] = answer(
        services,
        stopped,
        GREEDY,
        [{"role": "user", "content": "Write a long poem."}],
        cancel_after=5,
        max_new_tokens=200,
    ).turn_id
    rows = build_rows([{"prompt": "Say yes.", "system": "Answer with one word."}])
    *_, grid = services.notebook.run(NotebookRequest([GREEDY], rows, {GREEDY: {"max_new_tokens": 16}}), "n")
    ids["cell"] = grid.cells[0].turn_id
    return services, folder / "playground.db", ids


def export(db: Path, fmt: str, out: Path, *flags: str) -> list[dict] | str:
    done = subprocess.run(
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
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    return text if fmt == "csv" else [json.loads(line) for line in text.splitlines()]


def test_a_system_message_is_what_the_model_saw_what_is_stored_and_one_system_turn(stored, tmp_path):
    services, db, ids = stored
    turn = services.store.turns_by_id([ids["pirate"]])[ids["pirate"]]
    assert turn.system_prompt == PIRATE  # not the preset's, which the model never saw
    expected = services.presets.render_prompt(
        GREEDY, parse_messages([{"role": "user", "content": "Say hi."}]), PIRATE
    )["prompt"]
    assert turn.prompt == expected and "SmolLM" not in turn.prompt
    exported = export(
        db, "sharegpt", tmp_path / "s.jsonl", "--include-incomplete"
    )  # complete or cut by length
    [record] = [r for r in exported if r["turn_id"] == ids["pirate"]]
    assert record["conversations"] == [
        {"from": "system", "value": PIRATE},
        {"from": "human", "value": "Say hi."},
        {"from": "gpt", "value": turn.output},
    ]


def llama_factory_sharegpt(example: dict) -> tuple[str, list[dict]] | None:
    """LLaMA-Factory's ShareGPT reading (``SharegptDatasetConverter.__call__`` in
    src/llamafactory/data/converter.py, with the default tags of its dataset_info: ``conversations``,
    ``from``/``value``, ``human``/``gpt``/``system``): a leading ``system`` message is taken as the
    system prompt; then even positions must be human (or observation), odd ones gpt (or function_call),
    and the count must be even; anything else is "abnormal" and the example is skipped (None here)."""
    messages = example["conversations"]
    system = ""
    if messages and messages[0]["from"] == "system":
        system, messages = messages[0]["value"], messages[1:]
    accept = (("human", "observation"), ("gpt", "function_call"))
    if any(m["from"] not in accept[i % 2] for i, m in enumerate(messages)) or len(messages) % 2:
        return None
    roles = {"human": "user", "gpt": "assistant"}
    return system, [{"role": roles[m["from"]], "content": m["value"]} for m in messages]


def axolotl_sharegpt(example: dict, tokenizer) -> str:
    """axolotl's ``chat_template`` strategy on ShareGPT (src/axolotl/prompt_strategies/chat_template.py:
    ``field_messages: conversations``, ``message_property_mappings: {role: from, content: value}``,
    default roles human→user, gpt→assistant, system→system): every ``from`` must be a known role, the
    turns go to the tokenizer's chat template, which (like most: Llama's, Mistral's) takes a system
    message only first and user / assistant alternating after it."""
    roles = {
        "human": "user",
        "user": "user",
        "gpt": "assistant",
        "assistant": "assistant",
        "system": "system",
    }
    turns = [{"role": roles[m["from"]], "content": m["value"]} for m in example["conversations"]]
    body = turns[1:] if turns and turns[0]["role"] == "system" else turns
    assert [t["role"] for t in body] == ["user", "assistant"] * (len(body) // 2), turns
    return tokenizer.apply_chat_template(turns, tokenize=False)


def test_sharegpt_reads_the_same_in_llama_factory_and_axolotl_and_holds_complete_answers(stored, tmp_path):
    from transformers import AutoTokenizer

    services, db, ids = stored
    tokenizer = AutoTokenizer.from_pretrained(embedded.converted_dir(services.settings.cache_dir)[0])
    records = export(db, "sharegpt", tmp_path / "s.jsonl")
    turns = {t.id: t for t in services.store.turns()}
    assert records and {turns[r["turn_id"]].finish_reason for r in records} <= {"eos", "stop_string"}
    assert ids["length"] not in {r["turn_id"] for r in records} and ids["stopped"] not in {
        r["turn_id"] for r in records
    }
    for record in records:
        system, chat = llama_factory_sharegpt(record)
        assert system == turns[record["turn_id"]].system_prompt.strip()  # exactly the one the model saw
        assert chat[-1] == {"role": "assistant", "content": turns[record["turn_id"]].output}
        assert axolotl_sharegpt(record, tokenizer)
        assert [m["from"] for m in record["conversations"]].count("system") <= 1
    everything = export(db, "sharegpt", tmp_path / "all.jsonl", "--include-incomplete")
    assert {ids["length"], ids["stopped"]} <= {r["turn_id"] for r in everything}
    assert {r["finish_reason"] for r in everything} <= {"eos", "stop_string", "length", "stopped"}
    cell = next(r for r in everything if r["turn_id"] == ids["cell"])  # a notebook row's own system prompt
    assert cell["conversations"][0] == {"from": "system", "value": "Answer with one word."}


def test_every_export_reads_the_same_under_every_hash_seed(stored, tmp_path):
    services, db, _ = stored
    files = {}
    for kind, fmt, flags in (
        ("dpo", "dpo", ()),
        ("dpo_conv", "dpo", ("--dpo-format", "conversational")),
        ("sharegpt", "sharegpt", ()),
        ("jsonl", "jsonl", ()),
        ("csv", "csv", ()),
    ):
        files[kind] = tmp_path / f"{kind}.{'csv' if fmt == 'csv' else 'jsonl'}"
        export(db, fmt, files[kind], *flags)
    dpo = [json.loads(line) for line in files["dpo"].read_text().splitlines()]
    assert len(dpo) >= 2 and all(set(row) == {"prompt", "chosen", "rejected", "metadata"} for row in dpo)
    tokenizer_dir = embedded.converted_dir(services.settings.cache_dir)[0]
    readers = [  # one process per hash seed, all at once (each spends most of its time importing)
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.export_readers",
                str(tokenizer_dir),
                *(f"{k}={v}" for k, v in files.items()),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed, "HF_HUB_OFFLINE": "1"},
        )
        for seed in HASH_SEEDS
    ]
    runs = []
    for reader in readers:
        out, err = reader.communicate(timeout=600)
        assert reader.returncode == 0, err[-3000:]
        runs.append(json.loads(out.splitlines()[-1]))
    first = runs[0]
    assert all(run == first for run in runs[1:])  # every consumer reads every file the same way each time
    eos = first["eos_token_id"]
    assert first["dpo"]["conversational"] == [False] * len(dpo)  # the standard format, always
    assert all(chosen[-1] == eos and rejected[-1] == eos for _, chosen, rejected in first["dpo"]["tokens"])
    assert first["dpo_conv"]["conversational"] == [True] * len(dpo)
    assert first["dpo"]["columns"] == ["prompt", "chosen", "rejected", "metadata"]
    assert first["sharegpt"]["conversational"] == [True] * first["sharegpt"]["rows"]
    for kind in files:
        assert first[kind]["rows"] == first[kind]["pandas"][1] > 0
