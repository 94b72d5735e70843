"""Streaming overhead: raw ``model.generate`` vs the same generation received through the running app.

The app runs as users run it, ``app.py`` in its own process on a free port (with a throw-away
database); the raw side is a plain ``model.generate`` on this script's main thread with the
model loaded the way the app loads it. Same default model, same prompt, greedy parameters (so
both produce the same tokens), runs alternated so both see the same machine load. Prints
tokens/s and TTFT for both, then, as the last line, the ratio app/raw tokens/s as a bare
number. Target on CPU: ratio >= 0.95 and TTFT overhead <= 50 ms.

    python bench/stream_overhead.py [--tokens 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from gradio_client import Client  # noqa: E402
from transformers.generation.streamers import BaseStreamer  # noqa: E402

from playground.engine.models.loader import LoadRequest  # noqa: E402
from playground.engine.models.templates import Message  # noqa: E402
from playground.services.container import build_services  # noqa: E402
from playground.settings import Settings  # noqa: E402
from playground.store.db import Store  # noqa: E402

PRESET = "smollm2-135m-instruct-greedy"
QUESTION = "Write a long, detailed story about a lighthouse keeper and a storm."


class _FirstToken(BaseStreamer):
    def __init__(self):
        self.calls, self.first = 0, None

    def put(self, value):
        self.calls += 1
        if self.calls == 2 and self.first is None:  # call 1 is the prompt
            self.first = time.perf_counter()

    def end(self):
        pass


def raw_run(loaded, prompt: str, tokens: int) -> tuple:
    encoded = loaded.tokenizer(prompt, return_tensors="pt")
    streamer = _FirstToken()
    start = time.perf_counter()
    with torch.inference_mode():
        out = loaded.model.generate(
            **encoded,
            max_new_tokens=tokens,
            do_sample=False,
            streamer=streamer,
            pad_token_id=loaded.tokenizer.pad_token_id,
        )
    total = time.perf_counter() - start
    n = out.shape[1] - encoded["input_ids"].shape[1]
    return n / total, streamer.first - start, n


def receive(job):
    """Each streamed update of ``job`` as it arrives, like iterating the job, but polling every 5 ms.

    ``Job.__iter__`` polls every 1 ms. On a 2-core machine that measuring process then wakes
    1000 times a second next to the app it measures and preempts the model's OpenMP threads.
    Polling every 5 ms costs the app's numbers at most 5 ms per update, never helps them.
    """
    seen = 0
    while True:
        done = job.done()
        outputs = job.outputs()
        yield from outputs[seen:]
        seen = len(outputs)
        if done:
            return
        time.sleep(0.005)


def app_run(client: Client, store: Store, tokens: int) -> tuple:
    messages = json.dumps([{"role": "user", "content": QUESTION}])
    params = json.dumps({"max_new_tokens": tokens, "do_sample": False, "repetition_penalty": 1.0})
    start = time.perf_counter()
    first = None
    job = client.submit(PRESET, messages, params, None, api_name="/generate")
    for _text in receive(job):
        if first is None:
            first = time.perf_counter()
    total = time.perf_counter() - start
    job.result()  # raises what the app raised
    row = store.turns()[-1]
    inside = (row.tokens_per_s, row.ttft_s)  # the engine's own view, inside the app process
    return row.completion_tokens / total, first - start, row.completion_tokens, inside


def start_app(folder: Path, extra: list[str] = ()) -> tuple[subprocess.Popen, Client]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--db", str(folder / "bench.db"), "--user-presets", str(folder / "user"), *extra]
    app = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while True:
        if app.poll() is not None:
            raise SystemExit(f"app.py exited with {app.returncode}: {app.stderr.read()[-2000:]}")
        try:
            return app, Client(f"http://127.0.0.1:{port}/", verbose=False)
        except Exception:  # noqa: BLE001 - not listening yet
            if time.monotonic() > deadline:
                app.kill()
                raise
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    services = build_services(Settings(db=str(folder / "raw.db"), user_presets_dir=folder / "user"))
    preset = services.registry.get(PRESET)
    loaded = services.cache.get(LoadRequest.from_spec(preset.model))
    prompt = preset.template.render(
        [Message(role="user", content=QUESTION)], preset.system_prompt, loaded.tokenizer
    )
    app, client = start_app(folder)
    try:
        store = Store(str(folder / "bench.db"))
        raw_run(loaded, prompt, 8)  # warm-up both paths (the app loads its model here)
        app_run(client, store, 8)
        raw, through_app = [], []
        for _ in range(args.repeats):  # alternate so both see the same machine load
            raw.append(raw_run(loaded, prompt, args.tokens))
            through_app.append(app_run(client, store, args.tokens))
    finally:
        app.terminate()
        app.wait(timeout=30)
    raw_tps, app_tps = statistics.median(r[0] for r in raw), statistics.median(a[0] for a in through_app)
    raw_ttft, app_ttft = statistics.median(r[1] for r in raw), statistics.median(a[1] for a in through_app)
    print(
        f"device {services.cache.device.device}, dtype {loaded.dtype}, {raw[0][2]} / {through_app[0][2]} tokens"
    )
    print(f"raw generate : {raw_tps:7.2f} tokens/s   TTFT {raw_ttft * 1000:7.1f} ms")
    print(f"through app  : {app_tps:7.2f} tokens/s   TTFT {app_ttft * 1000:7.1f} ms")
    inside_tps = statistics.median(a[3][0] for a in through_app)
    inside_ttft = statistics.median(a[3][1] for a in through_app)
    print(f"(engine inside the app: {inside_tps:7.2f} tokens/s   TTFT {inside_ttft * 1000:7.1f} ms)")
    print(f"TTFT overhead: {(app_ttft - raw_ttft) * 1000:.1f} ms")
    print(f"{app_tps / raw_tps:.3f}")


if __name__ == "__main__":
    main()
