"""Many users on one model: 16 concurrent API clients against the same 16 requests one at a time, next
to what raw transformers reaches batching the same 16 prompts on this machine and dtype.

The app runs as ``app.py`` in its own process; each client asks ``/generate`` through Gradio's REST call
API (as a browser or ``curl`` does), on the default greedy preset for up to 64 new tokens (``--max-generations`` = clients,
so the Gradio queue lets them all in). Concurrent requests of one model share passes of the engine
(continuous batching). The raw side: ``model.generate`` one prompt at a time, then all 16 as one
left-padded batch, in this process. Prints both gains, the dtype, TTFTs, the app's peak memory while
the 16 ran, and as the last line app gain / raw gain. Target: >= 0.8.

    python bench/concurrency.py [--clients 16] [--tokens 64] [--serving-rows 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from harness import (
    PeakMemory,
    call,
    cpu_description,
    load_default,
    raw_speedup,
    render,
    start_app,
    stop_app,
)
from stream_overhead import PRESET

SUBJECTS = ["a lighthouse", "a dragon", "a robot", "a pirate", "a baker", "a cat", "an astronaut", "a river"]


def ask(url: str, question: str, tokens: int) -> float:
    """One request; the time to its first streamed text as the caller saw it."""
    messages = json.dumps([{"role": "user", "content": question}])
    params = json.dumps({"max_new_tokens": tokens, "do_sample": False, "repetition_penalty": 1.0})
    first = None
    for seconds, _text in call(url, "generate", [PRESET, messages, params, None]):
        first = seconds if first is None else first
    return first


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    from playground.store.db import Store

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--serving-rows", type=int, default=16)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    questions = [
        f"Write a long story about {SUBJECTS[i % len(SUBJECTS)]} (number {i})." for i in range(args.clients)
    ]

    _services, preset, loaded = load_default(folder, PRESET)
    raw_serial, raw_batched, raw_gain = raw_speedup(
        loaded, [render(preset, loaded, q) for q in questions], args.tokens
    )
    dtype = loaded.dtype
    del loaded, _services

    extra = ["--max-generations", str(args.clients), "--serving-rows", str(args.serving_rows)]
    app, client, _up = start_app(folder, extra)
    try:
        url = client.src
        ask(url, "Hi", 4)  # warm-up: the app loads and probes its model
        store = Store(str(folder / "bench.db"))

        def tokens_since(mark: int) -> int:
            return sum(t.completion_tokens or 0 for t in store.turns() if t.id > mark)

        mark = max((t.id for t in store.turns()), default=0)
        start, ttfts = time.perf_counter(), []
        for question in questions:
            ttfts.append(ask(url, question, args.tokens))
        one_by_one = time.perf_counter() - start
        serial_tokens = tokens_since(mark)

        mark = max(t.id for t in store.turns())
        results: list[float] = [0.0] * args.clients

        def run(i: int) -> None:
            results[i] = ask(url, questions[i], args.tokens)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(args.clients)]
        with PeakMemory(app.pid) as memory:
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            concurrent = time.perf_counter() - start
        concurrent_tokens = tokens_since(mark)
    finally:
        stop_app(app)
    serial_tps, concurrent_tps = serial_tokens / one_by_one, concurrent_tokens / concurrent
    app_gain = concurrent_tps / serial_tps
    print(cpu_description())
    print(f"{args.clients} requests, up to {args.tokens} new tokens each, greedy, {PRESET}, dtype {dtype}")
    print(
        f"raw generate : one by one {raw_serial:.1f} tokens/s, one batch {raw_batched:.1f} tokens/s: {raw_gain:.2f}x"
    )
    print(
        f"app, serial  : {one_by_one:.1f} s, {serial_tokens} tokens, {serial_tps:.1f} tokens/s, "
        f"TTFT p50 {statistics.median(ttfts) * 1000:.0f} ms p95 {percentile(ttfts, 0.95) * 1000:.0f} ms"
    )
    print(
        f"app, 16 at once: {concurrent:.1f} s, {concurrent_tokens} tokens, {concurrent_tps:.1f} tokens/s, "
        f"TTFT p50 {statistics.median(results) * 1000:.0f} ms p95 {percentile(results, 0.95) * 1000:.0f} ms, "
        f"app peak RSS {memory.peak / 2**20:.0f} MiB"
    )
    print(f"app gain {app_gain:.2f}x; app gain / raw gain (target >= 0.8):")
    print(f"{app_gain / raw_gain:.2f}")


if __name__ == "__main__":
    main()
