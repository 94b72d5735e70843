"""llama-cpp-python's own server (``python -m llama_cpp.server``) on the embedded SmolLM2 GGUF: by
default it ends a running stream with ``[DONE]`` and no finish reason when another request arrives
(``interrupt_requests``). Such an answer was stored as a finished ``eos`` answer; it is an ``error``
with the text that arrived, and a Notebook run never serves it from its cache.

llama-cpp-python has no wheel on PyPI: it builds llama.cpp from source (~28 minutes on 2 cores), too
long for every CI run, so these tests run apart: ``make test-llama-cpp-python`` builds it into its own
virtual environment (``.venv-llama-cpp``) and runs them with ``LLAMA_CPP_PYTHON`` pointing at that
environment's python. Without it they are skipped, and ``pytest`` deselects them by default (marker
``llama_cpp_python``); CI keeps ``transformers serve`` and llama.cpp's C++ server (``xllamacpp``).
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from playground.engine.models import embedded
from playground.engine.models.templates import Message
from playground.services.answers.chat import AnswerRequest
from playground.services.notebook.grid import NotebookRequest
from playground.services.notebook.prompts import build_rows
from tests.conftest import free_port
from tests.served import Process, remote_preset

PYTHON = os.environ.get("LLAMA_CPP_PYTHON", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.llama_cpp_python,
    pytest.mark.skipif(
        not (PYTHON and Path(PYTHON).is_file()),
        reason="LLAMA_CPP_PYTHON is not the python of an environment with llama-cpp-python[server] "
        "(make test-llama-cpp-python builds one)",
    ),
]


class LlamaCppPythonServer(Process):
    def __init__(self):
        self.port, self.model = free_port(), "smollm2"
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "llama_cpp.server",
                "--model",
                str(embedded.gguf_path()),
                "--model_alias",
                self.model,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                "2048",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_until_up(f"{self.url}/models", "llama-cpp-python's server")


@pytest.fixture(scope="module")
def server():
    running = LlamaCppPythonServer()
    yield running
    running.kill()


def test_a_stream_cut_off_by_the_next_request_is_an_error_with_what_arrived(server, services, tmp_path):
    name = remote_preset(services, tmp_path, "lcp", server.url, server.model, server="llama.cpp")
    conversation = services.compare.start([name, name])
    long = [Message(role="user", content="Write a long story about a dragon.")]
    first_text = threading.Event()
    results = {}

    def column(i: int) -> None:
        request = AnswerRequest(name, long, params={"max_new_tokens": 200, "seed": i})
        for update in services.chat.answer(request, conversation, column=i):
            if update.text:
                first_text.set()
            results[i] = update

    first = threading.Thread(target=column, args=(0,))
    first.start()
    assert first_text.wait(120)  # the first answer is streaming …
    column(1)  # … when the second request arrives: the server ends the first stream
    first.join(120)
    cut = results[0]
    assert cut.finish_reason == "error" and "without a finish reason" in cut.error, cut
    turn = services.store.turns_by_id([cut.turn_id])[cut.turn_id]
    assert turn.finish_reason == "error" and turn.output == cut.text and turn.output  # what arrived is kept
    assert results[1].finish_reason in ("eos", "length")


def test_a_cut_off_cell_is_never_served_from_the_cache(server, services, tmp_path):
    name = remote_preset(services, tmp_path, "lcp-grid", server.url, server.model, server="llama.cpp")
    rows = build_rows([{"prompt": f"Write a long story about a {w}."} for w in ("dragon", "ship")])
    request = NotebookRequest([name], rows, {name: {"max_new_tokens": 100, "do_sample": False}})
    first = list(services.notebook.run(request))[-1]  # two rows at once: the second cuts the first off
    cut = [c for c in first.cells if c.status == "error"]
    assert cut and all("without a finish reason" in c.error for c in cut)
    server.kill()  # and then the server is down
    again = list(services.notebook.run(request))[-1]
    assert not any(c.status == "cached" and c.row in {x.row for x in cut} for c in again.cells)
