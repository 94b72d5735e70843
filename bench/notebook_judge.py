"""The LLM judge's cost: a 16-row × 2-model notebook run judged pairwise (both orders: 32 judge prompts)
with all its judge prompts in one batched ``stream`` call (as the app does) against the same 32 prompts
one at a time, next to raw transformers' own batching gain on the same 32 prompts, machine and dtype.

Default model as the two contestants (greedy and sampled presets) and as the judge, greedy judging,
judge answers of up to ``--tokens`` tokens (the same text alone or batched: checked). The raw baseline
does the same work: each judge prompt alone for exactly its answer's length, then all of them as one
batch for the longest (judge answers are short and of different lengths, so the work is mostly
prefill; raw's gain with every answer a full ``--tokens`` long is printed beside it). Prints the
judge's wall times and tokens/s, the raw baseline, and as the last line: one at a time / batched (the
judge's speed-up), raw generate's speed-up on the same work, and their ratio (target >= 0.8).

    python bench/notebook_judge.py [--rows 16] [--tokens 32]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from harness import PeakMemory, cpu_description, load_default, raw_speedup, raw_speedup_on

from playground.engine.generation.params import GenerationParams
from playground.engine.generation.request import GenerationRequest

JUDGE = "smollm2-135m-instruct-greedy"
CONTESTANTS = ["smollm2-135m-instruct-greedy", "smollm2-135m-instruct"]
TOPICS = ["tea", "rain", "maps", "bees", "salt", "glass", "owls", "bread", "ice", "wool", "clocks", "sand"]
TOPICS += ["kites", "moss", "ink", "copper"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per judge answer (and per cell)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-judge-"))
    services, preset, loaded = load_default(folder, JUDGE)
    rows = [
        {"topic": TOPICS[k % len(TOPICS)] + ("" if k < len(TOPICS) else f" {k}")} for k in range(args.rows)
    ]
    document = {
        "name": "judge bench",
        "template": "Tell me one surprising fact about {topic}.",
        "rows": rows,
        "models": CONTESTANTS,
        "max_new_tokens": args.tokens,
        "judge": {"preset": JUDGE, "mode": "pairwise", "max_new_tokens": args.tokens},
    }
    notebook = services.saved.create(document, key="bench")
    print(cpu_description())
    print(
        f"device {loaded.device}, dtype {loaded.dtype}; {args.rows} rows × 2 models, judge {JUDGE}, {args.tokens} tokens"
    )
    grid = list(services.saved.run(notebook.id, "bench"))[-1].grid
    assert all(c.status == "done" for c in grid.cells), [c.error for c in grid.cells if c.error]

    list(
        services.saved.judge(notebook.id, "bench", settings={**document["judge"], "max_new_tokens": 4})
    )  # warm-up
    with PeakMemory() as memory:
        started = time.perf_counter()
        judged = list(services.saved.judge(notebook.id, "bench"))[-1]
        batched = time.perf_counter() - started
    calls = [call for verdict in judged.verdicts for call in verdict["calls"]]
    tokens = sum(len(loaded.tokenizer(c["output"], add_special_tokens=False)["input_ids"]) for c in calls)
    print(
        f"judge, batched (one stream call of {len(calls)} prompts): {batched:.2f} s, {tokens / batched:.1f} tok/s, peak RSS {memory.peak / 2**20:.0f} MiB"
    )

    with services.chat.backends.open(preset) as model:
        started = time.perf_counter()
        alone = []
        for c in calls:
            request = GenerationRequest.build(
                c["prompt"], GenerationParams(**c["params"]), preset.stop, model.context_length
            )
            alone.append(list(model.stream([request], threading.Event()))[-1].text)
        serial = time.perf_counter() - started
    same = sum(a == c["output"] for a, c in zip(alone, calls, strict=True))
    print(
        f"judge, one at a time: {serial:.2f} s, {tokens / serial:.1f} tok/s; same text alone as batched: {same} / {len(calls)}"
    )

    lengths = [len(loaded.tokenizer(c["output"], add_special_tokens=False)["input_ids"]) for c in calls]
    raw_serial, raw_batched = raw_speedup_on(loaded, [c["prompt"] for c in calls], lengths)
    raw_gain = raw_serial / raw_batched
    print(
        f"raw generate on the same work (each prompt for its answer's length, {min(lengths)}-{max(lengths)} "
        f"tokens): one by one {raw_serial:.2f} s, one batch {raw_batched:.2f} s: {raw_gain:.2f}x"
    )
    _serial_tps, _batched_tps, fixed_gain = raw_speedup(loaded, [c["prompt"] for c in calls], args.tokens)
    print(f"(raw generate with every answer exactly {args.tokens} tokens: one batch is {fixed_gain:.2f}x)")
    gain = serial / batched
    print("judge one at a time / batched, raw generate's gain, and their ratio (target >= 0.8):")
    print(f"{gain:.2f}x batched judge vs {raw_gain:.2f}x raw generate: {gain / raw_gain:.2f}")


if __name__ == "__main__":
    main()
