"""Decode speed of the native DeciLM / OpenLM implementations (CPU, random mid-size weights).

DeciLM is compared with the same weights in stock `LlamaForCausalLM`, its per-layer KV heads repeated to full
multi-head attention (what one would have to do without a native implementation); the two give the same
logits, which is checked before timing. OpenLM has no stock counterpart, its speed is printed on its own.

    .venv/bin/python bench/native_archs.py [--dtype float32|bfloat16] [--new-tokens 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground.engine.models.archs import DeciLMConfig, DeciLMForCausalLM, OpenLMConfig, OpenLMForCausalLM  # noqa: E402

KV_HEADS = [4, 4, 2, 2, 1, 1, 2, 4]
SIZE = {"hidden_size": 1024, "num_hidden_layers": 8, "num_attention_heads": 16, "vocab_size": 32000}


def decilm_pair(dtype: torch.dtype) -> tuple[DeciLMForCausalLM, LlamaForCausalLM]:
    config = DeciLMConfig(
        **SIZE,
        intermediate_size=2816,
        num_key_value_heads_per_layer=KV_HEADS,
        max_position_embeddings=4096,
        rope_scaling={"type": "dynamic", "factor": 2.0},
    )
    torch.manual_seed(0)
    native = DeciLMForCausalLM(config).eval()
    stock_config = LlamaConfig(
        **SIZE,
        intermediate_size=2816,
        num_key_value_heads=SIZE["num_attention_heads"],
        max_position_embeddings=4096,
        rope_parameters=dict(config.rope_parameters),
    )
    stock = LlamaForCausalLM(stock_config).eval()
    state = native.state_dict()
    head_dim = config.head_dim
    for i, kv in enumerate(KV_HEADS):
        group = config.num_attention_heads // kv
        for proj in ("k_proj", "v_proj"):
            key = f"model.layers.{i}.self_attn.{proj}.weight"
            weight = state[key].view(
                kv, head_dim, -1
            )  # KV head j serves query heads j*group .. j*group+group-1
            state[key] = weight.repeat_interleave(group, dim=0).reshape(-1, config.hidden_size)
    stock.load_state_dict(state, strict=True)
    prompt = torch.randint(0, SIZE["vocab_size"], (1, 32))
    with torch.no_grad():
        torch.testing.assert_close(native(prompt).logits, stock(prompt).logits, atol=1e-4, rtol=1e-4)
    return native.to(dtype), stock.to(dtype)


def openlm_model(dtype: torch.dtype) -> OpenLMForCausalLM:
    config = OpenLMConfig(dim=1024, n_layers=8, n_heads=16, vocab_size=32000, seq_len=2048)
    torch.manual_seed(0)
    return OpenLMForCausalLM(config).eval().to(dtype)


def tokens_per_second(
    models: dict[str, torch.nn.Module], prompt, new_tokens: int, repeats: int
) -> dict[str, float]:
    """Best-of-`repeats` greedy decode speed; the models take turns so background load hits them alike."""
    kwargs = {
        "do_sample": False,
        "max_new_tokens": new_tokens,
        "min_new_tokens": new_tokens,
        "pad_token_id": 0,
    }
    for model in models.values():
        model.generate(prompt, **{**kwargs, "max_new_tokens": 8, "min_new_tokens": 8})  # warm-up
    best = dict.fromkeys(models, float("inf"))
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            out = model.generate(prompt, **kwargs)
            best[name] = min(best[name], time.perf_counter() - start)
            assert out.shape[1] == prompt.shape[1] + new_tokens
    return {name: new_tokens / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(1)
    prompt = torch.randint(0, SIZE["vocab_size"], (1, args.prompt_tokens))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.dtype}, "
        f"greedy {args.new_tokens} new tokens after {args.prompt_tokens}, best of {args.repeats}"
    )
    print(f"config: {SIZE}, DeciLM kv heads per layer {KV_HEADS}")

    native, stock = decilm_pair(dtype)
    speed = tokens_per_second({"native": native, "stock": stock}, prompt, args.new_tokens, args.repeats)
    print(f"DeciLM native (per-layer KV heads)  : {speed['native']:8.1f} tokens/s")
    print(f"DeciLM as stock Llama (full MHA)    : {speed['stock']:8.1f} tokens/s")
    print(f"ratio native/stock                  : {speed['native'] / speed['stock']:8.2f}")
    del native, stock

    speed = tokens_per_second({"openlm": openlm_model(dtype)}, prompt, args.new_tokens, args.repeats)
    print(f"OpenLM native                       : {speed['openlm']:8.1f} tokens/s")


if __name__ == "__main__":
    main()
