"""Every engine check that needs a GPU, in one run, into one JSON report (``make gpu-check``).

Runs on a bare CUDA machine that has torch, transformers, peft, accelerate and safetensors, plus the
wheels listed in ``WHEELS`` (the engine's parameter model is pydantic); gradio, the store and the
Hub are not needed. The model is a Llama of TinyLlama's shape (1.1B) with random weights in bf16 and a
byte-level tokenizer built here, so nothing is downloaded. With ``--device cpu`` it runs the same
checks on a tiny model in seconds: CI runs it that way so the script never rots.

Checks (each a key of the report):

* ``probe``: the layout the start-up probe chose on this device and why (packed, fixed or single);
* ``identity``: one request (greedy, and seeded sampling with top-k, top-p, repetition penalty) with a
  stop string gives byte-identical text alone, among 15 concurrent requests, as one row of a 16-request
  group (a Notebook grid's call) and on replay;
* ``lone``: a lone answer through the engine vs raw ``model.generate`` (tokens/s and TTFT);
* ``concurrency``: 16 concurrent requests vs the same one at a time, next to raw batched vs raw serial;
* ``grid``: 16 requests in one call (as the Notebook sends them);
* ``two_models``: two models answering at once on the shared compute loop vs one after the other;
* ``bitsandbytes``: the probe and the identity check on 4-bit and 8-bit weights, when bitsandbytes is
  installed (skipped with the reason otherwise).

Before CUDA starts it sets what vLLM's batch-invariant mode sets (``engine/models/device.py``:
``configure_cuda``); the probe then decides whether batching keeps every row's numbers.

    python bench/gpu_check.py [--device cuda|cpu] [--out gpu-check.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playground.engine.models.device import configure_cuda  # noqa: E402 - before anything touches CUDA

WHEELS = ["pydantic", "pydantic-core", "annotated-types", "typing-inspection"]
SIZES = {
    "cuda": dict(
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=32,
        num_key_value_heads=4,
        tokens=128,
    ),
    "cpu": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tokens=16,
    ),
}
QUESTION = "Tell me about the sea, the ships on it and the people who sail them."
OTHERS = [f"Question {i}: what do you know about the number {i}?" for i in range(15)]


def byte_tokenizer():
    """A byte-level tokenizer (256 bytes + an end-of-sequence token), built here: nothing downloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    vocab["</s>"] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="</s>", pad_token="</s>")


def random_llama(tokenizer, device: str, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    size = {k: v for k, v in SIZES[device].items() if k != "tokens"}
    config = LlamaConfig(
        **size,
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(dtype=torch.bfloat16, device=device).eval()
    return model


def params(**extra):
    from playground.engine.generation.params import GenerationParams

    return GenerationParams(**{"max_new_tokens": 32, **extra})


def requests(text: str, p, stop=()):
    from playground.engine.generation.request import GenerationRequest

    return GenerationRequest.build(text, p, stop)


def finals(engine, reqs, cancel=None) -> list:
    done = {}
    for event in engine.stream(reqs, cancel):
        if event.done:
            done[event.index] = event
    return [done[i] for i in range(len(reqs))]


def concurrently(fns) -> list:
    results = [None] * len(fns)
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, fns[k]())) for k in range(len(fns))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def identity(engine, tokens: int) -> dict:
    """The same text alone, among 15 concurrent requests, in a 16-request group and on replay."""
    report = {}
    for name, p in {
        "greedy": params(do_sample=False, max_new_tokens=tokens, seed=11),
        "sampled": params(
            do_sample=True,
            temperature=0.8,
            top_k=40,
            top_p=0.9,
            repetition_penalty=1.15,
            max_new_tokens=tokens,
            seed=1234,
        ),
    }.items():
        pilot = finals(engine, [requests(QUESTION, p)])[0].text
        stop = pilot[len(pilot) // 2 : len(pilot) // 2 + 2] if len(pilot) > 4 else "\x00"
        target = requests(QUESTION, p, (stop,))
        alone = finals(engine, [target])[0]
        crowd = concurrently(
            [lambda target=target: finals(engine, [target])[0]]
            + [
                lambda i=i, p=p: finals(
                    engine, [requests(OTHERS[i], p.model_copy(update={"seed": 500 + i}))]
                )[0]
                for i in range(15)
            ]
        )
        group = finals(
            engine, [requests(q, p) for q in OTHERS[:7]] + [target] + [requests(q, p) for q in OTHERS[7:15]]
        )
        replay = finals(engine, [target])[0]
        texts = {
            "alone": alone.text,
            "among_15": crowd[0].text,
            "grid_row": group[7].text,
            "replay": replay.text,
        }
        report[name] = {
            "same_text": len(set(texts.values())) == 1,
            "finish_reason": alone.finish_reason,
            "characters": len(alone.text),
            "differs": [k for k, v in texts.items() if v != alone.text],
        }
    return report


def raw_generate(model, tokenizer, prompts, tokens: int, device: str) -> tuple[float, float]:
    """Raw ``generate`` of ``prompts`` as one left-padded batch, greedy, exactly ``tokens`` new tokens;
    (seconds, seconds to the first token)."""
    import torch
    from transformers.generation.streamers import BaseStreamer

    class First(BaseStreamer):
        def __init__(self):
            self.calls, self.at = 0, None

        def put(self, value):
            self.calls += 1
            if self.calls == 2:
                self.at = time.perf_counter()

        def end(self):
            pass

    tokenizer.padding_side = "left"
    encoded = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
    streamer = First() if len(prompts) == 1 else None
    sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        model.generate(
            **encoded,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            streamer=streamer,
        )
    sync(device)
    end = time.perf_counter()
    return end - start, (streamer.at - start) if streamer and streamer.at else 0.0


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(engine, reqs) -> tuple[float, int, float]:
    start = time.perf_counter()
    done = finals(engine, reqs)
    return time.perf_counter() - start, sum(e.stats.completion_tokens for e in done), done[0].stats.ttft_s


def speed(engine, model, tokenizer, device: str, tokens: int) -> dict:
    from playground.engine.threads import isolated

    prompts = [f"Write a long story about the number {i} and the sea." for i in range(16)]
    greedy = params(do_sample=False, max_new_tokens=tokens, seed=0)
    finals(engine, [requests(prompts[0], greedy.model_copy(update={"max_new_tokens": 4}))])  # warm-up
    isolated(raw_generate, model, tokenizer, prompts[:1], 4, device)
    raw_alone_s, raw_ttft = isolated(raw_generate, model, tokenizer, prompts[:1], tokens, device)
    lone_s, lone_tokens, lone_ttft = timed(engine, [requests(prompts[0], greedy)])
    raw_serial = sum(isolated(raw_generate, model, tokenizer, [p], tokens, device)[0] for p in prompts)
    raw_batched, _ = isolated(raw_generate, model, tokenizer, prompts, tokens, device)
    serial = sum(timed(engine, [requests(p, greedy)])[0] for p in prompts)
    start = time.perf_counter()
    concurrently([lambda p=p: finals(engine, [requests(p, greedy)]) for p in prompts])
    together = time.perf_counter() - start
    grid_s, grid_tokens, _ = timed(engine, [requests(p, greedy) for p in prompts])
    raw_gain, app_gain = raw_serial / raw_batched, serial / together
    return {
        "lone": {
            "engine_tokens_per_s": lone_tokens / lone_s,
            "raw_tokens_per_s": tokens / raw_alone_s,
            "ratio": (lone_tokens / lone_s) / (tokens / raw_alone_s),
            "engine_ttft_ms": lone_ttft * 1000,
            "raw_ttft_ms": raw_ttft * 1000,
        },
        "concurrency": {
            "raw_gain": raw_gain,
            "engine_gain": app_gain,
            "engine_gain_over_raw_gain": app_gain / raw_gain,
        },
        "grid": {
            "tokens_per_s": grid_tokens / grid_s,
            "gain_over_serial": serial / grid_s,
            "gain_over_raw_gain": (serial / grid_s) / raw_gain,
        },
    }


def two_models(tokenizer, device: str, tokens: int) -> dict:
    from playground.engine.generation.engine import ComputeLoop, Engine
    from playground.engine.generation.probe import probe

    loop = ComputeLoop()
    models = [random_llama(tokenizer, device, seed) for seed in (1, 2)]
    engines = [Engine(m, tokenizer, probe(m, tokenizer, 16).layout, loop) for m in models]
    greedy = params(do_sample=False, max_new_tokens=tokens, seed=0)
    for engine in engines:
        finals(engine, [requests("warm", greedy.model_copy(update={"max_new_tokens": 2}))])
    start = time.perf_counter()
    alone = [finals(e, [requests(QUESTION, greedy)])[0].text for e in engines]
    sequential = time.perf_counter() - start
    start = time.perf_counter()
    both = concurrently([lambda e=e: finals(e, [requests(QUESTION, greedy)])[0].text for e in engines])
    side_by_side = time.perf_counter() - start
    return {
        "sequential_s": sequential,
        "side_by_side_s": side_by_side,
        "same_text": both == alone,
        "speedup": sequential / side_by_side,
    }


def bitsandbytes_checks(tokenizer, device: str, tokens: int, folder: Path) -> dict:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"bitsandbytes is not installed: {exc}"}
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from playground.engine.generation.engine import Engine
    from playground.engine.generation.probe import probe

    random_llama(tokenizer, "cpu").save_pretrained(folder / "bnb-base")
    report = {}
    for name, config in {
        "8bit": BitsAndBytesConfig(load_in_8bit=True),
        "4bit-nf4": BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        ),
    }.items():
        model = AutoModelForCausalLM.from_pretrained(
            folder / "bnb-base", quantization_config=config, dtype=torch.bfloat16, device_map=device
        ).eval()
        result = probe(model, tokenizer, 16)
        report[name] = {
            "probe": result.as_json(),
            "identity": identity(Engine(model, tokenizer, result.layout), tokens),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", type=Path, default=Path("gpu-check.json"))
    args = parser.parse_args()
    settings = configure_cuda() if args.device == "cuda" else {}
    import tempfile

    import torch
    import transformers

    from playground.engine import setup
    from playground.engine.generation.engine import Engine
    from playground.engine.generation.probe import probe
    from playground.engine.threads import isolated

    setup()
    started = time.perf_counter()
    tokens = SIZES[args.device]["tokens"]
    tokenizer = byte_tokenizer()
    model = random_llama(tokenizer, args.device)
    report: dict = {
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda_settings": settings,
        "model": {k: v for k, v in SIZES[args.device].items()},
    }
    result = isolated(probe, model, tokenizer, 16)
    report["probe"] = result.as_json()
    engine = Engine(model, tokenizer, result.layout)
    report["identity"] = identity(engine, tokens)
    report.update(speed(engine, model, tokenizer, args.device, tokens))
    report["two_models"] = two_models(tokenizer, args.device, tokens)
    with tempfile.TemporaryDirectory() as folder:
        report["bitsandbytes"] = bitsandbytes_checks(tokenizer, args.device, tokens, Path(folder))
    report["seconds"] = time.perf_counter() - started
    report["imported_outside_the_engine"] = sorted(
        m for m in ("gradio", "sqlalchemy", "bitsandbytes", "yaml", "pandas") if m in sys.modules
    )
    report["ok"] = (
        all(v["same_text"] for v in report["identity"].values()) and report["two_models"]["same_text"]
    )
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    print(f"identity {'ok' if report['ok'] else 'FAILED'}; lone engine/raw tokens/s:")
    print(f"{report['lone']['ratio']:.3f}")


if __name__ == "__main__":
    main()
