"""A preset served by a real OpenAI-compatible server: ``transformers serve`` on the embedded model,
started on a free local port. Streaming, stop strings, a stop mid-answer, a server killed mid-answer,
a wrong model name, a refused connection: through the app's services and its HTTP API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml
from gradio_client import Client

from playground.engine.backends.base import render_with
from playground.engine.models import embedded
from playground.engine.models.presets import load_preset_file
from playground.engine.models.templates import Message
from playground.errors import PlaygroundError
from playground.services.answers.chat import AnswerRequest
from playground.services.notebook.grid import NotebookRequest
from playground.services.notebook.prompts import build_rows
from tests.conftest import free_port

pytestmark = pytest.mark.slow

SMOL = "smollm2-135m-instruct-greedy"


class Server:
    """``transformers serve`` as its own process; ``kill()`` is a SIGKILL."""

    def __init__(self, cache_dir: Path):
        self.folder = str(embedded.converted_dir(cache_dir)[0])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        cli = Path(sys.executable).with_name("transformers")
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        self.process = subprocess.Popen(
            [str(cli), "serve", "--port", str(self.port), "--host", "127.0.0.1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1)
                return
            except httpx.HTTPError:
                assert self.process.poll() is None, "transformers serve exited"
                time.sleep(0.5)
        raise AssertionError("transformers serve did not start within 120 s")

    def kill(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture(scope="module")
def server(model_cache_dir):
    running = Server(model_cache_dir)
    yield running
    running.kill()


def remote_preset(services, tmp_path, name: str, url: str, model: str, **template) -> str:
    """Write a user preset for the served SmolLM2 (its card's ChatML template, written out) and register it."""
    local = services.registry.get(SMOL)
    data = {
        "display_name": f"SmolLM2 served ({name})",
        "model": {
            "id": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "backend": "openai-compatible",
            "base_url": url,
            "served_model": model,
            "server": "transformers",
        },
        "template": template
        or {
            "system": "<|im_start|>system\n{content}<|im_end|>\n",
            "user": "<|im_start|>user\n{content}<|im_end|>\n",
            "assistant": "<|im_start|>assistant\n{content}<|im_end|>\n",
            "generation_prefix": "<|im_start|>assistant\n",
        },
        "system_prompt": local.system_prompt,
        "stop": ["<|im_end|>"],
        "params": {**local.params.model_dump(), "max_new_tokens": 32},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    preset = load_preset_file(path)
    services.registry.add(preset)
    return preset.name


def ask(services, name, text="Name a planet.", **params):
    conversation = services.compare.start([name])
    request = AnswerRequest(name, [Message(role="user", content=text)], params=params)
    return list(services.chat.answer(request, conversation)), conversation


def test_the_card_template_is_rendered_here_and_streams_from_the_server(server, services, tmp_path):
    name = remote_preset(services, tmp_path, "served", server.url, server.folder)
    updates, conversation = ask(services, name, max_new_tokens=24)
    final = updates[-1]
    assert final.error is None and final.text and len(updates) > 3
    local, _ = ask(services, SMOL, max_new_tokens=24)
    assert final.text == local[-1].text  # greedy: the same answer as the same card run here
    turn = services.store.turns(conversation)[-1]
    assert turn.device == f"remote:{server.url}" and turn.revision == f"{server.folder}@{server.url}"
    assert (
        turn.prompt
        == render_with(
            services.registry.get(name), [Message(role="user", content="Name a planet.")], None
        ).text
    )
    assert turn.output == final.text and final.stats["completion_tokens"] > 0 and final.stats["ttft_s"] > 0


def test_stop_strings_are_cut_even_across_chunks(server, services, tmp_path):
    name = remote_preset(services, tmp_path, "stops", server.url, server.folder)
    # the first four go to the server (OpenAI's limit); the fifth, the letter "e", is cut here alone
    services.registry.get(name).stop.extend(["zq1", "zq2", "zq3", "e"])
    updates, _ = ask(services, name, text="Describe the sea in one sentence.", max_new_tokens=40)
    assert updates[-1].finish_reason == "stop_string" and "e" not in updates[-1].text, repr(updates[-1].text)
    assert updates[-1].text and all("e" not in u.text for u in updates)  # never shown, not even briefly


def test_stop_mid_answer_closes_the_stream(server, services, tmp_path):
    name = remote_preset(services, tmp_path, "stopped", server.url, server.folder)
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


def test_failures_name_the_server_and_other_columns_keep_working(server, services, tmp_path, model_cache_dir):
    wrong = remote_preset(services, tmp_path, "wrong", server.url, "no/such-model")
    refused = remote_preset(
        services, tmp_path, "refused", f"http://127.0.0.1:{free_port()}/v1", server.folder
    )
    conversation = services.compare.start([wrong, refused, SMOL])
    requests = [
        AnswerRequest(n, [Message(role="user", content="Hi")], params={"max_new_tokens": 8})
        for n in (wrong, refused, SMOL)
    ]
    final = list(services.compare.run(conversation, requests))[-1]
    assert server.url in final[0].error and "no/such-model" in final[0].error
    assert "cannot reach" in final[1].error and "is the server running" in final[1].error
    assert final[2].error is None and final[2].text  # the local column is unaffected

    doomed = Server(model_cache_dir)
    name = remote_preset(services, tmp_path, "doomed", doomed.url, doomed.folder)
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
    stored = next(t for t in services.store.turns() if t.id == last.turn_id)
    assert stored.error == last.error and len(stored.output) > 20  # what arrived before is kept


def test_through_the_app_api_and_the_notebook(server, services, tmp_path, live_app):
    name = remote_preset(services, tmp_path, "api", server.url, server.folder)
    client = Client(live_app, verbose=False)
    text = client.predict(
        name,
        json.dumps([{"role": "user", "content": "Name a fruit."}]),
        '{"max_new_tokens": 16}',
        None,
        api_name="/generate",
    )
    assert text and services.store.turns()[-1].device == f"remote:{server.url}"
    with pytest.raises(Exception, match="does not serve|failed with HTTP"):
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
