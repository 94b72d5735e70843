"""Load time and memory of the embedded default model on CPU, per quantisation.

Prints: load time cold (first run: GGUF de-quantisation + conversion into a fresh cache) and warm
(from the converted safetensors), the memory footprint of bf16 / 8-bit / 4-bit NF4 weights with the
ratio to bf16 (the physical limit for 4-bit weights is ~0.25; embeddings and norms stay 16-bit), and
greedy tokens/s for each.

    python bench/load_and_memory.py [--tokens 48]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from playground.engine.models.device import DeviceInfo  # noqa: E402
from playground.engine.models.loader import LoadRequest, load  # noqa: E402
from playground.engine.models.presets import PresetRegistry  # noqa: E402
from playground.settings import ROOT, Settings  # noqa: E402

PROMPT = "<|im_start|>user\nWrite a short poem about the sea.<|im_end|>\n<|im_start|>assistant\n"


def tokens_per_s(loaded, tokens: int) -> float:
    encoded = loaded.tokenizer(PROMPT, return_tensors="pt")
    with torch.inference_mode():
        loaded.model.generate(**encoded, max_new_tokens=4, do_sample=False)  # warm-up
        start = time.perf_counter()
        out = loaded.model.generate(
            **encoded,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            pad_token_id=loaded.tokenizer.pad_token_id,
        )
    return (out.shape[1] - encoded["input_ids"].shape[1]) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=48)
    args = parser.parse_args()
    spec = PresetRegistry.from_folders(ROOT / "presets").get("smollm2-135m-instruct").model
    device = DeviceInfo.detect("cpu")
    print(f"CPU default dtype: {device.default_dtype} (bf16 matmul speed-up {device.bf16_speedup:.2f}x)")

    with tempfile.TemporaryDirectory() as fresh:
        cold = load(LoadRequest.from_spec(spec), device, Path(fresh))
        print(f"load cold (convert GGUF → safetensors, then load): {cold.load_s:6.2f} s")
        del cold
        warm = load(LoadRequest.from_spec(spec), device, Path(fresh))
        print(f"load warm (converted safetensors):                 {warm.load_s:6.2f} s")
        del warm

    cache = Settings().cache_dir
    results = {}
    for quant in ("none", "8bit", "4bit-nf4"):
        loaded = load(LoadRequest.from_spec(spec, quantization=quant), device, cache)
        results[quant] = (loaded.footprint_bytes, tokens_per_s(loaded, args.tokens), loaded.load_s)
        del loaded
    base = results["none"][0]
    print(f"{'weights':>10} {'footprint':>10} {'vs bf16':>8} {'tokens/s':>9} {'load s':>7}")
    for quant, (size, tps, load_s) in results.items():
        name = {"none": str(device.default_dtype).removeprefix("torch.")}.get(quant, quant)
        print(f"{name:>10} {size / 2**20:8.1f} MB {size / base:8.3f} {tps:9.2f} {load_s:7.2f}")


if __name__ == "__main__":
    main()
