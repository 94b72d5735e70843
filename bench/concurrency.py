"""Many users on one model: 16 concurrent API clients against the same 16 requests one at a time.

The app runs as ``app.py`` in its own process (as in ``stream_overhead.py``); each client is its own
``gradio_client`` session asking ``/generate`` on the default greedy preset for up to 64 new tokens.
Prints the total tokens/s of both ways, p50/p95 TTFT as the clients saw it, and as the last line
the ratio concurrent / one-at-a-time throughput as a bare number.

Concurrent requests for one model share forward passes in its serving engine (continuous
batching, ``engine/serving.py``); the app is started with ``--max-generations`` = clients so the
Gradio queue lets them all in. ``--serving-rows 0`` measures the app without batched serving
(each request its own ``generate`` on its own thread). Issue 13's target: >= 6 on 2 cores.

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

from gradio_client import Client
from stream_overhead import PRESET, receive, start_app

SUBJECTS = ["a lighthouse", "a dragon", "a robot", "a pirate", "a baker", "a cat", "an astronaut", "a river"]


def ask(client: Client, question: str, tokens: int) -> float:
    """One request; the time to its first streamed text as the client saw it."""
    messages = json.dumps([{"role": "user", "content": question}])
    params = json.dumps({"max_new_tokens": tokens, "do_sample": False, "repetition_penalty": 1.0})
    start, first = time.perf_counter(), None
    job = client.submit(PRESET, messages, params, None, api_name="/generate")
    for _text in receive(job):
        first = first or time.perf_counter()
    job.result()
    return (first or time.perf_counter()) - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--serving-rows", type=int, default=16)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    extra = ["--max-generations", str(args.clients), "--serving-rows", str(args.serving_rows)]
    app, first_client = start_app(folder, extra)
    try:
        url = first_client.src
        clients = [first_client] + [Client(url, verbose=False) for _ in range(args.clients - 1)]
        questions = [
            f"Write a long story about {SUBJECTS[i % len(SUBJECTS)]} (number {i})."
            for i in range(args.clients)
        ]
        ask(clients[0], "Hi", 4)  # warm-up: the app loads its model
        from playground.store.db import Store

        store = Store(str(folder / "bench.db"))

        def tokens_since(mark: int) -> int:
            return sum(t.completion_tokens or 0 for t in store.turns() if t.id > mark)

        mark = max((t.id for t in store.turns()), default=0)
        start, ttfts = time.perf_counter(), []
        for client, question in zip(clients, questions, strict=True):
            ttfts.append(ask(client, question, args.tokens))
        one_by_one = time.perf_counter() - start
        serial_tokens = tokens_since(mark)

        mark = max(t.id for t in store.turns())
        results: list[float] = [0.0] * args.clients

        def run(i: int) -> None:
            results[i] = ask(clients[i], questions[i], args.tokens)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(args.clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        concurrent = time.perf_counter() - start
        concurrent_tokens = tokens_since(mark)
    finally:
        app.terminate()
        app.wait(timeout=30)
    serial_tps, concurrent_tps = serial_tokens / one_by_one, concurrent_tokens / concurrent
    together = results
    print(f"{args.clients} requests, up to {args.tokens} new tokens each, greedy, {PRESET}")
    print(
        f"one at a time: {one_by_one:.1f} s, {serial_tokens} tokens, {serial_tps:.1f} tokens/s, "
        f"TTFT p50 {statistics.median(ttfts) * 1000:.0f} ms p95 {percentile(ttfts, 0.95) * 1000:.0f} ms"
    )
    print(
        f"concurrent   : {concurrent:.1f} s, {concurrent_tokens} tokens, {concurrent_tps:.1f} tokens/s, "
        f"TTFT p50 {statistics.median(together) * 1000:.0f} ms p95 {percentile(together, 0.95) * 1000:.0f} ms"
    )
    print(f"{concurrent_tps / serial_tps:.2f}")


if __name__ == "__main__":
    main()
