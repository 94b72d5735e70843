"""Notebook grid: 16 prompts × 1 model through the app's notebook service vs the same cells one by one.

Default model on CPU, 64 new tokens, greedy. The batched side is ``NotebookService.run`` exactly as
the Notebook tab and ``/notebook_run`` call it (canonical-shape batches, every cell stored in a
throw-away SQLite file). The sequential side runs the same 16 cells one after another through
``engine.generation.stream``, the path every Compare column and ``/generate`` answer takes.
Prints wall time, tokens and tokens/s of both, the peak resident memory of each phase, and, as
the last line, the ratio sequential wall time / batched wall time as a bare number (target >= 8).

    python bench/notebook_grid.py [--prompts 16] [--tokens 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from playground.engine.generation.legacy import stream  # noqa: E402
from playground.engine.generation.params import GenerationParams  # noqa: E402
from playground.engine.models.loader import LoadRequest  # noqa: E402
from playground.services.container import build_services  # noqa: E402
from playground.services.notebook_grid import NotebookRequest  # noqa: E402
from playground.services.promptset import build_rows  # noqa: E402
from playground.settings import Settings  # noqa: E402

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


class PeakMemory:
    """Highest resident set size of this process while the block runs (sampled every 20 ms)."""

    def __enter__(self):
        self.process, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-notebook-"))
    services = build_services(Settings(db=str(folder / "bench.db"), user_presets_dir=folder / "presets"))
    preset = services.registry.get(PRESET)
    loaded = services.cache.get(LoadRequest.from_spec(preset.model))
    questions = [f"Write a long story about {s} and {t}." for t in THEMES for s in SUBJECTS][: args.prompts]
    rows = build_rows([{"prompt": q} for q in questions])
    overrides = {PRESET: {"do_sample": False, "max_new_tokens": args.tokens}}
    params = GenerationParams.model_validate({**preset.params.model_dump(), **overrides[PRESET], "seed": 0})
    print(
        f"device {loaded.device}, dtype {loaded.dtype}; {len(rows)} prompts × 1 model, {args.tokens} new tokens, greedy"
    )

    # warm-up: one short cell each way (first-call allocations, kernel selection)
    list(
        services.notebook.run(
            NotebookRequest([PRESET], rows[:1], {PRESET: {**overrides[PRESET], "max_new_tokens": 4}}, seed=99)
        )
    )
    list(
        stream(loaded.model, loaded.tokenizer, rows[0].user, params.model_copy(update={"max_new_tokens": 4}))
    )

    batched = []
    for seed in (1, 2):  # a new seed each time: otherwise the second run is served from the first
        with PeakMemory() as memory:
            start = time.perf_counter()
            grid = list(services.notebook.run(NotebookRequest([PRESET], rows, overrides, seed=seed)))[-1]
            wall = time.perf_counter() - start
        tokens = sum(c.stats.get("completion_tokens", 0) for c in grid.cells)
        assert all(c.status == "done" for c in grid.cells), [c.error for c in grid.cells if c.error]
        batched.append(wall)
        rows_per_batch = services.notebook.shape_for(loaded).rows
        print(
            f"batched (notebook service, {rows_per_batch}-row batches): {wall:.2f} s, {tokens} tokens, "
            f"{tokens / wall:.1f} tok/s, peak RSS {memory.peak / 2**20:.0f} MiB"
        )

    with PeakMemory() as memory:
        start, tokens = time.perf_counter(), 0
        for row in rows:
            prompt = preset.template.render(row.messages(), preset.system_prompt, tokenizer=loaded.tokenizer)
            last = list(stream(loaded.model, loaded.tokenizer, prompt, params, stop=preset.stop))[-1]
            tokens += last.stats.completion_tokens
        sequential = time.perf_counter() - start
    print(
        f"sequential (engine.stream, one cell after another): {sequential:.2f} s, {tokens} tokens, "
        f"{tokens / sequential:.1f} tok/s, peak RSS {memory.peak / 2**20:.0f} MiB"
    )
    mean_batched = sum(batched) / len(batched)
    print(f"sequential / batched wall time (mean of {len(batched)} batched runs):")
    print(f"{sequential / mean_batched:.2f}")


if __name__ == "__main__":
    main()
