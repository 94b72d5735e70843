"""The start-up probe: which layout gives every row the same numbers alone and batched, on this model
and device. Nothing else proves it: kernels pick their reduction order by shape, and that differs
between CPUs, GPUs, dtypes and even weight shapes.

For each candidate layout, fastest first (packed, then fixed, then single: ``runner.py``), the probe
runs ``rows`` prompts of different lengths (some crossing a ``BUCKET`` boundary while decoding):

1. each alone, as the engine runs a lone answer in that layout;
2. all together: prefilled in one pass (where the layout does that), then decoded together;
3. staggered: half of them start, decode two steps, then the rest join beside their decode;

feeding the greedy token each step, and requires every row's logits to be bit-identical to its
alone run at every step. The first layout that passes is the one the engine uses for the model on
every path. ``single`` always passes (one answer at a time is the alone run).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from playground.engine.generation.attention import BUCKET
from playground.engine.generation.runner import Layout, RowState, make_runner, uses_attention_interface

log = logging.getLogger(__name__)
STEPS = 4


@dataclass(frozen=True)
class ProbeResult:
    layout: Layout
    reason: str  # in words: what was checked, or why batching is off
    rows_checked: int = 0
    seconds: float = 0.0

    @property
    def batched(self) -> bool:
        return self.layout.batched

    def summary(self) -> str:
        if self.batched:
            how = (
                "prefilled and decoded together"
                if self.layout.name == "packed"
                else "decoded in fixed-width passes"
            )
            return (
                f"batched ({how}, up to {self.layout.rows} answers): each answer is the same text alone or "
                f"batched ({self.reason})"
            )
        return f"one answer at a time: answers are reproducible, batching is off ({self.reason})"

    def as_json(self) -> dict:
        return {
            "layout": self.layout.name,
            "rows": self.layout.rows,
            "batched": self.batched,
            "reason": self.reason,
            "rows_checked": self.rows_checked,
            "seconds": round(self.seconds, 3),
            "summary": self.summary(),
        }


class ProbeRecord:
    """Probe results remembered in the cache folder, per machine, model, dtype, device and software:
    the same weights through the same code on the same CPU or GPU give the same result, so a later
    start (and every test process) does not pay for the probe again. Any change of the engine's code,
    torch, transformers or the machine asks for a new probe."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()

    @staticmethod
    def key(loaded, rows: int) -> str:
        import transformers

        from playground.engine.models.device import machine_key

        code = hashlib.sha256()
        for source in sorted(Path(__file__).parent.glob("*.py")):
            code.update(source.read_bytes())
        return " | ".join(
            [
                machine_key(),
                f"transformers {transformers.__version__}",
                f"engine {code.hexdigest()[:16]}",
                loaded.request.label(),
                loaded.resolved_revision,
                loaded.dtype,
                loaded.device,
                f"rows {rows}",
            ]
        )

    def get(self, key: str) -> ProbeResult | None:
        saved = self._read().get(key)
        if not saved:
            return None
        layout = Layout(saved["layout"], saved["rows"])
        return ProbeResult(
            layout, saved["reason"] + " (remembered from an earlier probe)", saved["checked"], 0.0
        )

    def put(self, key: str, result: ProbeResult) -> None:
        if self.path is None:
            return
        with self._lock:
            records = self._read()
            records[key] = {
                "layout": result.layout.name,
                "rows": result.layout.rows,
                "reason": result.reason,
                "checked": result.rows_checked,
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(f".{os.getpid()}.partial")  # another process may write too
            partial.write_text(json.dumps(records, indent=1))
            partial.replace(self.path)

    def _read(self) -> dict:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            return json.loads(self.path.read_text())
        except ValueError:
            return {}


def probe(model, tokenizer, rows: int) -> ProbeResult:
    """The fastest layout under which batching changes no row's logits (``rows``: the most rows)."""
    started = time.perf_counter()
    if rows < 2:
        return ProbeResult(Layout("single", 1), "serving rows set below 2", 0, 0.0)
    if not uses_attention_interface(model):
        return ProbeResult(
            Layout("single", 1),
            f"{type(model).__name__} computes attention itself, outside transformers' attention interface",
        )
    prompts = probe_prompts(tokenizer, rows)
    failures = []
    for name in ("packed", "fixed"):
        layout = Layout(name, rows)
        try:
            checked = _same_alone_and_batched(model, layout, prompts)
        except Exception as exc:  # noqa: BLE001 - a layout the model cannot run is not used
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            log.info("layout %s failed for %s: %s", name, type(model).__name__, exc)
            continue
        if checked:
            return ProbeResult(
                layout,
                f"{checked} rows compared bit for bit over {STEPS} decode steps, across a {BUCKET}-token boundary",
                checked,
                time.perf_counter() - started,
            )
        failures.append(f"{name}: a row's logits changed when batched")
    return ProbeResult(
        Layout("single", 1),
        "batched rows were not bit-identical to the same rows alone on this device ("
        + "; ".join(failures)
        + ")",
        0,
        time.perf_counter() - started,
    )


def probe_prompts(tokenizer, count: int) -> list[list[int]]:
    """Token ids of ``count`` prompts with lengths around bucket boundaries (some cross one while decoding)."""
    vocab = min(len(tokenizer), 30000)
    lengths = [BUCKET - 2, 5, BUCKET - 1, 33, 17, BUCKET, 1, 40]
    prompts = []
    for i in range(count):
        n = lengths[i % len(lengths)] + (i // len(lengths))
        prompts.append([100 + (i * 7919 + j * 104729) % (vocab - 100) for j in range(n)])
    return prompts


def _same_alone_and_batched(model, layout: Layout, prompts: list[list[int]]) -> int:
    alone = [_run(model, layout, [p], joins=[0])[0] for p in prompts]
    together = _run(model, layout, prompts, joins=[0] * len(prompts))
    half = len(prompts) // 2
    staggered = _run(model, layout, prompts, joins=[0] * half + [2] * (len(prompts) - half))
    for run in (together, staggered):
        for mine, reference in zip(run, alone, strict=True):
            if len(mine) != len(reference) or not all(
                torch.equal(a, b) for a, b in zip(mine, reference, strict=True)
            ):
                return 0
    return len(prompts)


@torch.inference_mode()
def _run(model, layout: Layout, prompts: list[list[int]], joins: list[int]) -> list[list[torch.Tensor]]:
    """Greedy logits of each prompt per step; prompt i starts at step ``joins[i]``. Rows are kept in
    slots 0..n-1 as the engine keeps them."""
    runner = make_runner(model, layout)
    runner.reserve(max(len(p) for p in prompts) + STEPS + 2, len(prompts))
    states = [RowState(list(p)) for p in prompts]
    history: list[list[torch.Tensor]] = [[] for _ in prompts]
    live: list[int] = []
    step = 0
    while any(len(h) < STEPS + 1 for h in history):
        fresh = [i for i, j in enumerate(joins) if j == step and len(history[i]) == 0]
        fresh = fresh[: max(0, layout.rows - len(live))]
        decoding = [i for i in live if len(history[i]) < STEPS + 1]
        for k, i in enumerate(fresh):
            states[i].slot = len(decoding) + k
        for k, i in enumerate(decoding):
            if states[i].slot != k:
                runner.move(states[i].slot, k)
                states[i].slot = k
        if layout.name != "packed" and len(fresh) > 1:  # the engine admits one prompt per pass there
            for i in fresh[1:]:
                joins[i] = step + 1
            fresh = fresh[:1]
        logits = runner.forward([states[i] for i in decoding], [states[i] for i in fresh])
        for i, row in zip(decoding + fresh, logits, strict=True):
            history[i].append(row.float().cpu())
            states[i].next_token = int(row.argmax())
        live = [i for i in decoding + fresh if len(history[i]) < STEPS + 1]
        step += 1
        if step > 10 * (STEPS + 2) + len(prompts):
            raise RuntimeError("the probe did not finish")
    return history
