"""A preset served by llama.cpp's own C++ server (``xllamacpp``, a wheel from PyPI) on the embedded
SmolLM2 GGUF, started as a process of its own on a free local port, through the app's services.

What is stored is what ran: the parameters the server applied (read back from its ``GET /slots``) are
the stored ones even where its defaults differ (started like ``llama-server --repeat-penalty 1.1
--min-p 0.05 --top-k 40``); the seed is drawn here, sent and stored; the model name is checked against
``GET /v1/models`` (llama.cpp answers any name) and its quantisation recorded; a server killed
mid-answer is said as such, with what arrived; a cut-off cell is never served from the Notebook's cache.
"""

from __future__ import annotations

import httpx
import pytest

from playground.engine.models.templates import Message
from playground.services.answers.chat import AnswerRequest
from playground.services.notebook.grid import NotebookRequest
from playground.services.notebook.prompts import build_rows
from tests.conftest_hub import use_offline_hub
from tests.served import LlamaCppServer, remote_preset

pytestmark = pytest.mark.slow

DEFAULTS = {"repeat_penalty": 1.1, "min_p": 0.05, "top_k": 40}  # llama-cpp-python's server defaults


@pytest.fixture(scope="module")
def llama():
    running = LlamaCppServer(**DEFAULTS)
    yield running
    running.kill()


def ask(services, name, text="Name a planet.", **params):
    conversation = services.compare.start([name])
    request = AnswerRequest(name, [Message(role="user", content=text)], params=params)
    updates = list(services.chat.answer(request, conversation))
    return updates[-1], services.store.turns(conversation)[-1]


def last_task(server: LlamaCppServer) -> dict:
    """The slot that ran the server's latest request: its id_task and the parameters it applied."""
    ran = [s for s in server.slots() if "params" in s and s.get("id_task", -1) >= 0]
    return max(ran, key=lambda s: s["id_task"]) if ran else {"id_task": -1, "params": {}}


def applied(server: LlamaCppServer) -> dict:
    p = last_task(server)["params"]
    return {
        k: round(p[k], 4) if isinstance(p[k], float) else p[k]
        for k in ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed", "n_predict")
    }


def stored(turn) -> dict:
    p = turn.params
    sampling = p["do_sample"] and p["temperature"] > 0
    return {
        "temperature": round(p["temperature"] if sampling else 0.0, 4),
        "top_p": round(p["top_p"], 4),
        "top_k": p["top_k"],
        "min_p": 0.0,
        "repeat_penalty": round(p["repetition_penalty"], 4),
        "seed": turn.seed,
        "n_predict": p["max_new_tokens"],
    }


def test_the_server_applies_exactly_the_stored_parameters(llama, services, tmp_path):
    name = remote_preset(services, tmp_path, "llama-params", llama.url, llama.model, server="llama.cpp")
    sampled = {"temperature": 0.9, "top_p": 0.95, "top_k": 0, "repetition_penalty": 1.0, "seed": 11}
    final, turn = ask(services, name, max_new_tokens=24, do_sample=True, **sampled)
    assert final.error is None and final.text and turn.finish_reason in ("eos", "length")
    assert (
        applied(llama)
        == stored(turn)
        == {
            **{k: v for k, v in sampled.items() if k != "repetition_penalty"},
            "min_p": 0.0,
            "repeat_penalty": 1.0,
            "n_predict": 24,
        }
    )
    # the server's own defaults would have applied to what a request leaves out
    httpx.post(
        f"{llama.url}/completions",
        json={"model": llama.model, "prompt": turn.prompt, "max_tokens": 4},
        timeout=60,
    ).raise_for_status()
    assert {k: applied(llama)[k] for k in DEFAULTS} == DEFAULTS
    # greedy: temperature 0, and the repetition penalty as stored (1.0), not the server's 1.1
    final, turn = ask(services, name, max_new_tokens=24, do_sample=False, repetition_penalty=1.0)
    assert applied(llama) == stored(turn) and applied(llama)["repeat_penalty"] == 1.0
    by_hand = httpx.post(
        f"{llama.url}/completions",
        timeout=60,
        json={
            "model": llama.model,
            "prompt": turn.prompt,
            "max_tokens": 24,
            "temperature": 0,
            "repeat_penalty": 1.0,
            "top_k": 0,
            "min_p": 0.0,
            "top_p": 1.0,
        },
    ).json()
    assert turn.output == by_hand["choices"][0]["text"].split("<|im_end|>")[0]
    assert turn.prompt_tokens == by_hand["usage"]["prompt_tokens"]  # the server's usage


def test_every_served_answer_gets_a_seed_drawn_here_sent_and_stored(llama, services, tmp_path):
    name = remote_preset(services, tmp_path, "llama-seed", llama.url, llama.model, server="llama.cpp")
    story = {"text": "Tell me a story.", "max_new_tokens": 32, "temperature": 1.2, "do_sample": True}
    final, turn = ask(services, name, seed=None, **story)
    assert turn.seed is not None and turn.params["seed"] == turn.seed
    assert applied(llama)["seed"] == turn.seed  # the server sampled with the stored seed
    again, _ = ask(services, name, seed=turn.seed, **story)
    assert again.text == turn.output  # so the stored seed reproduces the answer


def test_a_stop_string_is_stop_string_not_the_servers_eos(llama, services, tmp_path):
    """Stop strings are cut here and never sent, so the server cannot end an answer on one and say
    "stop" (which reads as its end of sequence): the stored reason says a stop string ended it."""
    name = remote_preset(
        services, tmp_path, "llama-stop", llama.url, llama.model, server="llama.cpp", stop=["e"]
    )
    final, turn = ask(services, name, text="Describe the sea in one sentence.", max_new_tokens=40)
    assert turn.finish_reason == "stop_string" and turn.output and "e" not in turn.output, turn.output
    assert final.finish_reason == "stop_string"


def test_the_model_name_is_checked_and_what_the_server_reports_is_recorded(llama, services, tmp_path):
    wrong = remote_preset(services, tmp_path, "llama-wrong", llama.url, "gpt-4o", server="llama.cpp")
    before = last_task(llama)["id_task"]
    final, turn = ask(services, wrong)
    assert final.error == (
        f"{llama.url} does not serve a model named 'gpt-4o': GET {llama.url}/models lists 'smollm2-q4'; "
        "fix model.served_model in the preset"
    )
    assert turn.finish_reason == "error" and last_task(llama)["id_task"] == before  # nothing was generated
    right = remote_preset(services, tmp_path, "llama-right", llama.url, llama.model, server="llama.cpp")
    final, turn = ask(services, right, max_new_tokens=4)
    assert turn.revision == f"smollm2-q4@{llama.url} (quantization=Q4_1)" and turn.quantization == "Q4_1"


def test_a_parameter_the_server_cannot_take_is_refused_before_the_request(llama, services, tmp_path):
    before = last_task(llama)["id_task"]
    for server, field, value, words in (
        ("openai", "top_k", 40, "the OpenAI API at {url} cannot take top_k (40)"),
        ("openai", "repetition_penalty", 1.2, "the OpenAI API at {url} cannot take repetition_penalty (1.2)"),
        ("tgi", "top_k", 5, "a TGI-compatible server at {url} cannot take top_k (5)"),
    ):
        name = remote_preset(
            services, tmp_path, f"as-{server}-{field}", llama.url, llama.model, server=server
        )
        final, turn = ask(services, name, **{"top_k": 0, "repetition_penalty": 1.0, field: value})
        assert final.error.startswith(words.format(url=llama.url)), final.error
        assert turn.finish_reason == "error" and turn.params[field] == value
        rows = build_rows([{"prompt": "Hi"}, {"prompt": "Yo"}])
        grid = list(services.notebook.run(NotebookRequest([name], rows, {name: {field: value}})))[-1]
        assert all(c.status == "error" and "cannot take" in c.error for c in grid.cells)
    assert last_task(llama)["id_task"] == before  # no request reached the server
    plain = remote_preset(services, tmp_path, "as-openai-ok", llama.url, llama.model, server="openai")
    final, _ = ask(services, plain, top_k=0, repetition_penalty=1.0, max_new_tokens=4)
    assert final.error is None and final.text  # what it can take goes through


def test_two_columns_on_one_server_both_finish(llama, services, tmp_path):
    name = remote_preset(services, tmp_path, "llama-two", llama.url, llama.model, server="llama.cpp")
    conversation = services.compare.start([name, name])
    requests = [
        AnswerRequest(
            name,
            [Message(role="user", content="Name a color.")],
            params={"max_new_tokens": 40, "seed": s, "temperature": 0.8},
        )
        for s in (1, 2)
    ]
    final = list(services.compare.run(conversation, requests))[-1]
    turns = services.store.turns(conversation)
    assert {t.column: t.finish_reason for t in turns} == {i: f.finish_reason for i, f in enumerate(final)}
    assert all(t.finish_reason in ("eos", "length", "stop_string") and t.error is None for t in turns)


def test_a_server_killed_mid_answer_and_a_cut_off_grid_never_cached(
    services, tmp_path, tmp_path_factory, monkeypatch
):
    use_offline_hub(tmp_path_factory.mktemp("empty_hf_home"), monkeypatch)  # no tokenizer of the preset here
    doomed = LlamaCppServer(parallel=4)
    port = doomed.port
    try:
        # a repo id no test has loaded a tokenizer for (the session's backend remembers those it found)
        name = remote_preset(
            services,
            tmp_path,
            "llama-doomed",
            doomed.url,
            doomed.model,
            server="llama.cpp",
            model={"id": "nobody/never-downloaded"},
        )
        rows = build_rows(
            [{"prompt": f"Write a long story about a {w}."} for w in ("dragon", "ship", "city")]
        )
        request = NotebookRequest([name], rows, {name: {"max_new_tokens": 300, "do_sample": False}})
        grid = None
        for grid in services.notebook.run(request):
            if any(len(c.text) > 20 for c in grid.cells) and doomed.process.poll() is None:
                doomed.kill()  # the server dies while the cells stream
        broken = [c for c in grid.cells if c.status == "error"]
        assert broken and all("broke off after" in c.error or "cannot reach" in c.error for c in broken)
        cut = next(c for c in broken if "broke off after" in c.error)
        assert "cannot reach" not in cut.error and "base_url" not in cut.error
        turn = services.store.turns_by_id([cut.turn_id])[cut.turn_id]
        assert turn.output == cut.text and turn.finish_reason == "error" and turn.prompt_tokens is None

        down = list(services.notebook.run(request))[-1]  # the server is down: nothing is served as cached
        assert all(c.status == "error" and "cannot reach" in c.error for c in down.cells)

        doomed = LlamaCppServer(parallel=4, port=port)  # restarted: the cut-off cells run again
        again = list(services.notebook.run(request))[-1]
        assert all(c.status == "done" and c.finish_reason in ("eos", "length") for c in again.cells)
        third = list(services.notebook.run(request))[-1]
        assert [c.status for c in third.cells] == ["cached"] * 3
        assert [c.text for c in third.cells] == [c.text for c in again.cells]
    finally:
        doomed.kill()
