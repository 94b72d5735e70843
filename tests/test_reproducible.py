"""The promise: an answer is a function of (model, prompt, params, seed). For every loader kind, one
request, greedy and seeded-sampled (top-k, top-p, repetition penalty) with a stop string, gives the same
text alone in Compare, among 15 concurrent requests, as a cell of a 16-row grid, in the Arena, and on
replay (which reports a match). Everything goes through the real services, engine and database."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml

from playground.engine.models.presets import load_preset_file
from playground.engine.models.templates import Message
from playground.services.answers.arena import ArenaService
from playground.services.answers.chat import AnswerRequest
from playground.services.notebook.grid import NotebookRequest
from playground.services.notebook.prompts import build_rows
from playground.settings import ROOT
from playground.store.models import Turn

pytestmark = pytest.mark.slow
QUESTION = "Tell me about the sea and the ships on it."
OTHERS = [f"Question {i}: what do you know about the number {i}?" for i in range(15)]
GREEDY = {"do_sample": False, "max_new_tokens": 14, "seed": 11}
SAMPLED = {
    "do_sample": True,
    "temperature": 0.8,
    "top_k": 40,
    "top_p": 0.9,
    "repetition_penalty": 1.15,
    "max_new_tokens": 14,
    "seed": 1234,
}
KINDS = {  # loader kind → (seed preset, quantization)
    "embedded": ("smollm2-135m-instruct", None),
    "native-decilm": ("decilm-7b-instruct", None),
    "native-openlm": ("dclm-1b-it", None),
    "bnb-8bit": ("llama-65b-instruct", "8bit"),
    "bnb-4bit": ("llama-65b-instruct", "4bit-nf4"),
    "gptq": ("tulu-7b-gptq", None),
    "peft-lora": ("falcon-7b-chat-oasst1", None),
}


def make_preset(services, folder: Path, base: str, name: str, quantization, params, stop) -> str:
    """A user preset: the seed card with these params, this quantisation and one more stop string."""
    data = yaml.safe_load((ROOT / "presets" / f"{base}.yaml").read_text())
    if quantization:
        data["model"]["quantization"] = quantization
        choices = set(data["model"].get("quantization_choices", [])) | {"none"}
        data["model"]["quantization_choices"] = sorted(choices - {quantization})
    data["params"] = {**data.get("params", {}), **params}
    data["stop"] = [*data.get("stop", []), *stop]
    data["name"] = name
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    services.registry.add(load_preset_file(path))
    return name


def ask(services, name, text, params=None, conversation=None):
    request = AnswerRequest(name, [Message(role="user", content=text)], params=params or {})
    return list(services.chat.answer(request, conversation or services.compare.start([name])))[-1]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("params", [GREEDY, SAMPLED], ids=["greedy", "sampled"])
def test_one_request_gives_the_same_text_on_every_path(hub, services, tmp_path, kind, params):
    base, quantization = KINDS[kind]
    tag = f"xp-{kind}-{'g' if params is GREEDY else 's'}"
    plain = make_preset(services, tmp_path, base, f"{tag}-plain", quantization, params, [])
    pilot = ask(services, plain, QUESTION)
    assert pilot.error is None and len(pilot.text) > 6, pilot
    stop = pilot.text[len(pilot.text) // 2 : len(pilot.text) // 2 + 3]
    name = make_preset(services, tmp_path, base, tag, quantization, params, [stop])

    # alone, in Compare
    conversation = services.compare.start([name])
    request = AnswerRequest(name, [Message(role="user", content=QUESTION)])
    alone = list(services.compare.run(conversation, [request]))[-1][0]
    assert alone.error is None and alone.finish_reason == "stop_string"
    assert alone.text == pilot.text[: pilot.text.index(stop)]

    # among 15 concurrent requests (other prompts, other seeds) on the same model
    results: list = [None] * 16
    jobs = [lambda: ask(services, name, QUESTION)] + [
        lambda i=i: ask(services, name, OTHERS[i], {"seed": 500 + i}) for i in range(15)
    ]
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, jobs[k]())) for k in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert results[0].text == alone.text and results[0].finish_reason == "stop_string"
    assert all(r is not None and r.error is None for r in results)

    # as a cell of a 16-row grid
    questions = OTHERS[:7] + [QUESTION] + OTHERS[7:15]
    rows = build_rows([{"prompt": q} for q in questions])
    grid = list(services.notebook.run(NotebookRequest([name], rows, seed=params["seed"])))[-1]
    assert grid.cell(7, 0).text == alone.text and grid.cell(7, 0).finish_reason == "stop_string"

    # in the Arena (against another preset of the same model, either side)
    rival = {**params, "seed": params["seed"] + 1}
    other = make_preset(services, tmp_path, base, f"{tag}-rival", quantization, rival, [])
    arena = ArenaService(services.registry, services.compare, services.store, pool=[name, other])
    battle = arena.new_battle("reproducible-test")
    *_, view = arena.send(battle, "reproducible-test", QUESTION)
    with services.store.session() as s:
        sides = [s.get(Turn, arena.turn_ids(battle, side)[0]) for side in (0, 1)]
    mine = [t for t in sides if t.preset_name == name]
    assert len(mine) == 1 and mine[0].output == alone.text and view.finished == [True, True]

    # on replay
    replay = services.replay.replay(alone.turn_id)
    assert replay.match and replay.replayed_output == alone.text, replay.as_json()
