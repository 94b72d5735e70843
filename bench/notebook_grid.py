"""Notebook grid: 16 prompts × 1 model through the notebook service vs the same 16 answers one at a time
through the chat service (as Compare runs them), next to raw transformers' batching gain on the same
16 prompts, machine and dtype; and a one-row grid against the same answer in Compare.

Default model on CPU, 64 new tokens, greedy. Both app sides go through the one engine (the grid as one
``stream`` call of 16 requests, prefilled together). Prints wall times, tokens/s, the peak resident
memory of the grid, the one-row grid / Compare ratio (target <= 1.1), and as the last line
app gain / raw gain (target >= 0.9).

    python bench/notebook_grid.py [--prompts 16] [--tokens 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness import PeakMemory, cpu_description, load_default, raw_speedup, render

from playground.engine.models.templates import Message
from playground.services.answers.chat import AnswerRequest
from playground.services.notebook.grid import NotebookRequest
from playground.services.notebook.prompts import build_rows

PRESET = "smollm2-135m-instruct"
SUBJECTS = [
    "a lighthouse keeper",
    "a dragon",
    "a robot",
    "a pirate",
    "a baker",
    "a cat",
    "an astronaut",
    "a river",
]
THEMES = ["a storm", "a lost key"]


def grid(services, rows, overrides, seed: int):
    started = time.perf_counter()
    final = list(services.notebook.run(NotebookRequest([PRESET], rows, overrides, seed=seed)))[-1]
    wall = time.perf_counter() - started
    assert all(c.status == "done" for c in final.cells), [c.error for c in final.cells if c.error]
    return wall, sum(c.stats.get("completion_tokens", 0) for c in final.cells)


def one_by_one(services, questions, params) -> tuple[float, int]:
    started, tokens = time.perf_counter(), 0
    for question in questions:
        request = AnswerRequest(PRESET, [Message(role="user", content=question)], params=params)
        last = list(services.chat.answer(request, services.compare.start([PRESET])))[-1]
        tokens += last.stats["completion_tokens"]
    return time.perf_counter() - started, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-notebook-"))
    services, preset, loaded = load_default(folder, PRESET)
    questions = [f"Write a long story about {s} and {t}." for t in THEMES for s in SUBJECTS][: args.prompts]
    rows = build_rows([{"prompt": q} for q in questions])
    overrides = {PRESET: {"do_sample": False, "max_new_tokens": args.tokens}}
    print(cpu_description())
    print(
        f"device {loaded.device}, dtype {loaded.dtype}; {len(rows)} prompts × 1 model, {args.tokens} new tokens, greedy"
    )

    raw_serial, raw_batched, raw_gain = raw_speedup(
        loaded, [render(preset, loaded, q) for q in questions], args.tokens
    )
    print(
        f"raw generate: one by one {raw_serial:.1f} tokens/s, one batch {raw_batched:.1f} tokens/s: {raw_gain:.2f}x"
    )

    grid(services, rows[:1], {PRESET: {**overrides[PRESET], "max_new_tokens": 4}}, seed=99)  # warm-up + probe
    walls = []
    for seed in (1, 2):  # a new seed each time: otherwise the second run is served from the first
        with PeakMemory() as memory:
            wall, tokens = grid(services, rows, overrides, seed)
        walls.append(wall)
        print(
            f"grid (one stream call): {wall:.2f} s, {tokens} tokens, {tokens / wall:.1f} tok/s, peak RSS {memory.peak / 2**20:.0f} MiB"
        )
    serial, serial_tokens = one_by_one(services, questions, {**overrides[PRESET], "seed": 3})
    print(
        f"one at a time (chat service): {serial:.2f} s, {serial_tokens} tokens, {serial_tokens / serial:.1f} tok/s"
    )

    one_row = [grid(services, rows[:1], overrides, seed)[0] for seed in (10, 11, 12)]
    compare = [one_by_one(services, questions[:1], {**overrides[PRESET], "seed": s})[0] for s in (13, 14, 15)]
    print(
        f"one-row grid {min(one_row):.2f} s vs the same answer in Compare {min(compare):.2f} s: {min(one_row) / min(compare):.2f} (target <= 1.1)"
    )

    app_gain = (serial / serial_tokens) / (min(walls) / tokens)
    print(f"app gain {app_gain:.2f}x; app gain / raw gain (target >= 0.9):")
    print(f"{app_gain / raw_gain:.2f}")


if __name__ == "__main__":
    main()
