"""A preset served by a real OpenAI-compatible server: ``transformers serve`` on the embedded model,
published in a Hugging Face cache under the card's repo id and started on a free local port.
Streaming, stop strings, a stop mid-answer, a server killed mid-answer, a wrong model name, a refused
connection: through the app's services and its HTTP API. (llama.cpp's server: ``test_remote_llamacpp.py``.)"""

from __future__ import annotations

import json
import threading

import pytest
import yaml
from gradio_client import Client

from playground.engine.backends.base import render_with
from playground.engine.models.presets import load_preset_file
from playground.engine.models.templates import Message
from playground.errors import PlaygroundError
from playground.services.answers.chat import AnswerRequest
from playground.services.notebook.grid import NotebookRequest
from playground.services.notebook.prompts import build_rows
from tests.conftest import free_port
from tests.conftest_hub import use_offline_hub
from tests.served import SMOL_REPO, TransformersServe, remote_preset

pytestmark = pytest.mark.slow

SMOL = "smollm2-135m-instruct-greedy"


@pytest.fixture(scope="module")
def server(model_cache_dir, tmp_path_factory):
    running = TransformersServe(model_cache_dir, tmp_path_factory.mktemp("hf_home"))
    yield running
    running.kill()


def smol_tokens(text: str) -> int:
    from transformers import AutoTokenizer

    from playground.engine.models import embedded
    from playground.settings import Settings

    folder = embedded.converted_dir(Settings().cache_dir)[0]
    return len(AutoTokenizer.from_pretrained(folder)(text)["input_ids"])


def ask(services, name, text="Name a planet.", **params):
    conversation = services.compare.start([name])
    request = AnswerRequest(name, [Message(role="user", content=text)], params=params)
    return list(services.chat.answer(request, conversation)), conversation


def test_the_card_template_is_rendered_here_and_streams_from_the_server(server, services, tmp_path):
    name = remote_preset(services, tmp_path, "served", server.url, server.model)
    updates, conversation = ask(services, name, max_new_tokens=24)
    final = updates[-1]
    assert final.error is None and final.text and len(updates) > 3
    local, _ = ask(services, SMOL, max_new_tokens=24)
    assert final.text == local[-1].text  # greedy: the same answer as the same card run here
    turn = services.store.turns(conversation)[-1]
    # what GET /v1/models reports for the served name (transformers serve: the repo id it loads)
    assert turn.device == f"remote:{server.url}" and turn.revision == f"{SMOL_REPO}@{server.url}"
    assert (
        turn.prompt_tokens == final.stats["prompt_tokens"] == smol_tokens(turn.prompt)
    )  # the server's usage
    assert (
        turn.prompt
        == render_with(
            services.registry.get(name), [Message(role="user", content="Name a planet.")], None
        ).text
    )
    assert turn.output == final.text and final.stats["completion_tokens"] > 0 and final.stats["ttft_s"] > 0


def test_top_k_and_the_rest_reach_transformers_serve_in_its_generation_config(server, services, tmp_path):
    """transformers serve refuses unknown fields, so top_k travels inside ``generation_config``: top_k 1
    keeps only the likeliest token, so a hot sampled answer is the greedy one (without it, it is not)."""
    name = remote_preset(services, tmp_path, "topk", server.url, server.model)
    question = "Write two sentences about the moon."
    greedy, _ = ask(services, name, text=question, max_new_tokens=24, do_sample=False, repetition_penalty=1.0)
    hot = {"do_sample": True, "temperature": 1.5, "top_p": 1.0, "repetition_penalty": 1.0, "seed": 7}
    top1, conversation = ask(services, name, text=question, max_new_tokens=24, top_k=1, **hot)
    assert services.store.turns(conversation)[-1].params["top_k"] == 1
    assert top1[-1].text == greedy[-1].text
    wide, _ = ask(services, name, text=question, max_new_tokens=24, top_k=0, **hot)
    assert wide[-1].text != greedy[-1].text  # so top_k 1 was applied, not ignored


def test_stop_strings_are_cut_even_across_chunks(server, services, tmp_path):
    name = remote_preset(services, tmp_path, "stops", server.url, server.model)
    # stop strings are never sent: all of them are cut here, the letter "e" too
    services.registry.get(name).stop.extend(["zq1", "zq2", "zq3", "e"])
    updates, _ = ask(services, name, text="Describe the sea in one sentence.", max_new_tokens=40)
    assert updates[-1].finish_reason == "stop_string" and "e" not in updates[-1].text, repr(updates[-1].text)
    assert updates[-1].text and all("e" not in u.text for u in updates)  # never shown, not even briefly


def test_stop_mid_answer_closes_the_stream(server, services, tmp_path):
    name = remote_preset(services, tmp_path, "stopped", server.url, server.model)
    cancel = threading.Event()
    conversation = services.compare.start([name])
    request = AnswerRequest(
        name,
        [Message(role="user", content="Write a long story about the sea.")],
        params={"max_new_tokens": 300},
    )
    updates = []
    for update in services.chat.answer(request, conversation, cancel=cancel):
        updates.append(update)
        if len(update.text) > 20:
            cancel.set()
    assert updates[-1].finish_reason == "stopped" and updates[-1].stats["completion_tokens"] < 300
    assert services.store.turns(conversation)[-1].finish_reason == "stopped"


def test_failures_name_the_server_and_other_columns_keep_working(
    server, services, tmp_path, model_cache_dir, tmp_path_factory, monkeypatch
):
    wrong = remote_preset(services, tmp_path, "wrong", server.url, "no/such-model")
    refused = remote_preset(services, tmp_path, "refused", f"http://127.0.0.1:{free_port()}/v1", server.model)
    conversation = services.compare.start([wrong, refused, SMOL])
    requests = [
        AnswerRequest(n, [Message(role="user", content="Hi")], params={"max_new_tokens": 8})
        for n in (wrong, refused, SMOL)
    ]
    final = list(services.compare.run(conversation, requests))[-1]
    # the name is checked against GET /v1/models before anything is generated
    assert final[0].error == (
        f"{server.url} does not serve a model named 'no/such-model': GET {server.url}/models lists "
        f"'{SMOL_REPO}'; fix model.served_model in the preset"
    )
    assert "cannot reach" in final[1].error and "is the server running" in final[1].error
    assert final[2].error is None and final[2].text  # the local column is unaffected
    stored = {t.preset_name: t for t in services.store.turns(conversation)}
    assert stored[wrong].prompt_tokens is None and stored[refused].prompt_tokens is None  # nothing ran

    doomed = TransformersServe(model_cache_dir, tmp_path_factory.mktemp("hf_home"))
    use_offline_hub(doomed.hf_home, monkeypatch)  # the preset's tokenizer is in the local cache
    name = remote_preset(services, tmp_path, "doomed", doomed.url, doomed.model)
    stream = services.chat.answer(
        AnswerRequest(
            name,
            [Message(role="user", content="Write a long story about a dragon.")],
            params={"max_new_tokens": 400},
        ),
        services.compare.start([name]),
    )
    last = None
    for update in stream:
        last = update
        if len(update.text) > 20 and doomed.process.poll() is None:
            doomed.kill()  # the server dies mid-answer
    assert last.finish_reason == "error" and doomed.url in last.error and last.turn_id
    assert "broke off after" in last.error and "the text that arrived is kept" in last.error.lower()
    assert "cannot reach" not in last.error and "base_url" not in last.error  # it had been reached
    stored = next(t for t in services.store.turns() if t.id == last.turn_id)
    assert stored.error == last.error and len(stored.output) > 20  # what arrived before is kept
    # no usage arrived: the prompt was counted here, with the preset's tokenizer from the local cache
    from transformers import AutoTokenizer

    assert stored.prompt_tokens == len(AutoTokenizer.from_pretrained(SMOL_REPO)(stored.prompt)["input_ids"])
    assert stored.prompt_tokens == smol_tokens(stored.prompt)


def test_through_the_app_api_and_the_notebook(server, services, tmp_path, live_app):
    name = remote_preset(services, tmp_path, "api", server.url, server.model)
    client = Client(live_app, verbose=False)
    text = client.predict(
        name,
        json.dumps([{"role": "user", "content": "Name a fruit."}]),
        '{"max_new_tokens": 16}',
        None,
        api_name="/generate",
    )
    assert text and services.store.turns()[-1].device == f"remote:{server.url}"
    with pytest.raises(Exception, match="does not serve a model named 'no/such-model'"):
        wrong = remote_preset(services, tmp_path, "api-wrong", server.url, "no/such-model")
        client.predict(
            wrong, json.dumps([{"role": "user", "content": "Hi"}]), "{}", None, api_name="/generate"
        )
    rows = build_rows([{"prompt": p} for p in ("Name a cat.", "Name a dog.", "Name a bird.")])
    grid = list(services.notebook.run(NotebookRequest([name], rows, {name: {"max_new_tokens": 12}})))[-1]
    assert [c.status for c in grid.cells] == ["done"] * 3 and all(c.text for c in grid.cells)
    again = list(services.notebook.run(NotebookRequest([name], rows, {name: {"max_new_tokens": 12}})))[-1]
    assert [c.status for c in again.cells] == ["cached"] * 3


def test_a_remote_preset_needs_a_server_and_an_explicit_or_server_template(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"display_name": "x", "model": {"id": "a/b", "backend": "openai-compatible"}, "template": {}}
        )
    )
    with pytest.raises(PlaygroundError, match="needs base_url and served_model"):
        load_preset_file(bad)
    bad.write_text(
        yaml.safe_dump(
            {
                "display_name": "x",
                "model": {
                    "id": "a/b",
                    "backend": "openai-compatible",
                    "base_url": "http://h:1/v1",
                    "served_model": "m",
                },
                "template": {"kind": "tokenizer"},
            }
        )
    )
    with pytest.raises(PlaygroundError, match="no local tokenizer"):
        load_preset_file(bad)
    data = yaml.safe_load(bad.read_text())
    data["model"]["server"], data["template"] = "ollama", {"user": "{content}"}
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(PlaygroundError, match="model.server: Input should be 'vllm', 'sglang', 'llama.cpp'"):
        load_preset_file(bad)
