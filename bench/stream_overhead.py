"""Streaming overhead: raw ``model.generate`` vs the same generation received through the running app.

Same default model, same prompt, greedy parameters (so both produce the same tokens). Prints
tokens/s and TTFT for both, then, as the last line, the ratio app/raw tokens/s as a bare number.
Target on CPU: ratio >= 0.95 and TTFT overhead <= 50 ms.

    python bench/stream_overhead.py [--tokens 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from gradio_client import Client  # noqa: E402
from transformers.generation.streamers import BaseStreamer  # noqa: E402

from playground.engine.loader import LoadRequest  # noqa: E402
from playground.engine.templates import Message  # noqa: E402
from playground.services.container import build_services  # noqa: E402
from playground.settings import Settings  # noqa: E402
from playground.ui.app import build_app  # noqa: E402

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


def raw_run(loaded, prompt: str, tokens: int) -> tuple[float, float, int]:
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


def app_run(client: Client, services, tokens: int) -> tuple[float, float, int]:
    messages = json.dumps([{"role": "user", "content": QUESTION}])
    params = json.dumps({"max_new_tokens": tokens, "do_sample": False, "repetition_penalty": 1.0})
    start = time.perf_counter()
    first = None
    job = client.submit(PRESET, messages, params, None, api_name="/generate")
    for _text in job:
        if first is None:
            first = time.perf_counter()
    total = time.perf_counter() - start
    row = services.store.turns()[-1]
    return row.completion_tokens / total, first - start, row.completion_tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    db = Path(tempfile.mkdtemp()) / "bench.db"
    services = build_services(Settings(db=str(db), user_presets_dir=db.parent / "user"))
    preset = services.registry.get(PRESET)
    loaded = services.cache.get(LoadRequest.from_spec(preset.model))
    prompt = preset.template.render(
        [Message(role="user", content=QUESTION)], preset.system_prompt, loaded.tokenizer
    )
    demo = build_app(services)
    _app, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_port=None)
    client = Client(url, verbose=False)
    raw_run(loaded, prompt, 8)  # warm-up both paths
    app_run(client, services, 8)
    raw, app = [], []
    for _ in range(args.repeats):  # alternate so both see the same machine load
        raw.append(raw_run(loaded, prompt, args.tokens))
        app.append(app_run(client, services, args.tokens))
    demo.close()
    raw_tps, app_tps = statistics.median(r[0] for r in raw), statistics.median(a[0] for a in app)
    raw_ttft, app_ttft = statistics.median(r[1] for r in raw), statistics.median(a[1] for a in app)
    print(f"device {services.cache.device.device}, dtype {loaded.dtype}, {raw[0][2]} / {app[0][2]} tokens")
    print(f"raw generate : {raw_tps:7.2f} tokens/s   TTFT {raw_ttft * 1000:7.1f} ms")
    print(f"through app  : {app_tps:7.2f} tokens/s   TTFT {app_ttft * 1000:7.1f} ms")
    print(f"TTFT overhead: {(app_ttft - raw_ttft) * 1000:.1f} ms")
    print(f"{app_tps / raw_tps:.3f}")


if __name__ == "__main__":
    main()
