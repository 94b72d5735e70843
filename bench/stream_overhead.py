"""A lone answer: raw ``model.generate`` vs the same answer streamed through the running app.

The app runs as users run it, ``app.py`` in its own process on a free port (throw-away database),
called as a browser or ``curl`` calls it (``/generate`` through Gradio's REST call API, its stream read
as it arrives); the raw side is a plain ``model.generate`` in this process with the model loaded the way the app loads it.
Same default model, prompt and greedy parameters (both produce the same number of tokens), runs
alternated so both see the same machine load. Prints tokens/s and TTFT of both, the engine's own
view from inside the app, and as the last line the ratio app/raw tokens/s.
Targets: ratio >= 0.97, TTFT overhead <= 60 ms.

    python bench/stream_overhead.py [--tokens 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from harness import call, cpu_description, load_default, render, start_app, stop_app
from transformers.generation.streamers import BaseStreamer

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
            min_new_tokens=tokens,
            do_sample=False,
            streamer=streamer,
            pad_token_id=loaded.tokenizer.pad_token_id,
        )
    total = time.perf_counter() - start
    n = out.shape[1] - encoded["input_ids"].shape[1]
    return n / total, streamer.first - start, n


def app_run(url: str, store, tokens: int) -> tuple:
    messages = json.dumps([{"role": "user", "content": QUESTION}])
    params = json.dumps({"max_new_tokens": tokens, "do_sample": False, "repetition_penalty": 1.0})
    first = total = None
    for seconds, _text in call(url, "generate", [PRESET, messages, params, None]):
        first = first if first is not None else seconds
        total = seconds
    start = 0.0
    row = store.turns()[-1]
    inside = (row.tokens_per_s, row.ttft_s)  # the engine's own view, inside the app process
    return row.completion_tokens / total, first - start, row.completion_tokens, inside


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    from playground.store.db import Store

    _services, preset, loaded = load_default(folder, PRESET)
    prompt = render(preset, loaded, QUESTION)
    app, client, _up = start_app(folder)
    try:
        store = Store(str(folder / "bench.db"))
        raw_run(loaded, prompt, 8)  # warm-up both paths (the app loads and probes its model here)
        app_run(client.src, store, 8)
        raw, through_app = [], []
        for _ in range(args.repeats):  # alternate so both see the same machine load
            raw.append(raw_run(loaded, prompt, args.tokens))
            through_app.append(app_run(client.src, store, args.tokens))
    finally:
        stop_app(app)
    raw_tps, app_tps = statistics.median(r[0] for r in raw), statistics.median(a[0] for a in through_app)
    raw_ttft, app_ttft = statistics.median(r[1] for r in raw), statistics.median(a[1] for a in through_app)
    print(cpu_description())
    print(f"device {loaded.device}, dtype {loaded.dtype}, {raw[0][2]} / {through_app[0][2]} tokens")
    print(f"raw generate : {raw_tps:7.2f} tokens/s   TTFT {raw_ttft * 1000:7.1f} ms")
    print(f"through app  : {app_tps:7.2f} tokens/s   TTFT {app_ttft * 1000:7.1f} ms")
    inside_tps = statistics.median(a[3][0] for a in through_app)
    inside_ttft = statistics.median(a[3][1] for a in through_app)
    print(f"(engine inside the app: {inside_tps:7.2f} tokens/s   TTFT {inside_ttft * 1000:7.1f} ms)")
    print(f"TTFT overhead: {(app_ttft - raw_ttft) * 1000:.1f} ms (target <= 60)")
    print("app / raw tokens/s (target >= 0.97):")
    print(f"{app_tps / raw_tps:.3f}")


if __name__ == "__main__":
    main()
