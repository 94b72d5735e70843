"""A seeded, offline Hugging Face Hub cache with tiny stand-ins for the playground's five cards.

``build_offline_hub(hf_home, tokenizer_dir)`` writes ``$HF_HOME/hub`` laid out exactly like the cache that
``huggingface_hub`` itself fills (``models--org--name/refs/<revision>`` holding a 40-hex commit sha,
``snapshots/<sha>/<file>`` relative symlinks into ``blobs/<etag>``; etag = sha256 for LFS-style weight
files, the git blob sha1 for small text files, as on the Hub). With ``HF_HUB_OFFLINE=1`` and that
``HF_HOME`` (see ``tests/conftest_hub.py`` for doing that inside one pytest process), the real repo ids
load unchanged through ``AutoConfig`` / ``AutoModelForCausalLM`` / ``AutoTokenizer`` / ``PeftConfig`` /
``PeftModel``.

Repos (tiny random weights, same architecture, config keys and file layout as the real repos; sizes
shrunk; ``vocab_size`` 49152 everywhere so the SmolLM2 tokenizer copied into every repo fits):

* ``upstage/llama-65b-instruct`` @ main: ``LlamaForCausalLM``, fp16, ``max_position_embeddings`` 64,
  no ``rope_scaling`` (the card adds dynamic x2 at load time); ``pytorch_model-0000N-of-00002.bin`` shards +
  ``pytorch_model.bin.index.json`` like the 2023 upload. Gated on the Hub (informational only here).
* ``TheBloke/tulu-7B-GPTQ``: one snapshot per branch (main = 4-bit/128g/no act-order, plus the act-order and
  8-bit branches the preset lists), each with ``model.safetensors`` in the GPTQ v1 layout
  (``qweight`` int32 ``[in*bits/32, out]``, ``qzeros`` int32 ``[groups, out*bits/32]`` holding zero-1,
  ``scales`` fp16 ``[groups, out]``, ``g_idx`` int32 ``[in]``), ``quantize_config.json`` and a
  ``quantization_config`` block in ``config.json`` as TheBloke's repos have. Quantisation is symmetric
  round-to-nearest done here (fast and deterministic; real GPTQ calibration on CPU takes ~50 s per
  branch), packed by hand; ``tests/test_hubcache.py`` proves the packing through gptqmodel's kernels.
  The fp16 weights that were quantised are written to ``$HF_HOME/hubcache_reference/`` (outside ``hub/``).
* ``tiiuae/falcon-7b`` @ main: ``FalconForCausalLM`` (multi-query, parallel attention, no bias, no
  alibi, old decoder architecture, tied embeddings), bf16, 2 safetensors shards + index.
* ``dfurman/falcon-7b-chat-oasst1`` @ main: a PEFT LoRA adapter (r 8, ``query_key_value``) on
  ``tiiuae/falcon-7b`` with non-zero ``lora_B``: ``adapter_config.json`` + ``adapter_model.safetensors``
  only (no config.json, no tokenizer: the tokenizer comes from the base repo).
* ``Deci/DeciLM-7B-instruct`` and ``TRI-ML/DCLM-1B-IT`` @ main: files only (the ``deci`` / ``openlm``
  architectures are the project's native ones): config text in the hub file's layout (the same layout as
  the parity fixtures), sharded safetensors (3 / 2 shards) + ``model.safetensors.index.json``.

Everything is a pure function of the seeds below and the tokenizer files: two builds give identical
bytes and identical commit shas.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes

VOCAB = 49152  # SmolLM2 tokenizer
# SmolLM2 special tokens: <|endoftext|> = 0, <|im_start|> = 1, <|im_end|> = 2. They sit where LLaMA's
# <unk>/<s>/</s> (0/1/2) do, so every tiny config uses bos 1, eos 2, pad 0 with the copied tokenizer.
BOS, EOS, PAD = 1, 2, 0

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
REFERENCE_DIR = "hubcache_reference"

UPSTAGE = "upstage/llama-65b-instruct"
TULU = "TheBloke/tulu-7B-GPTQ"
FALCON = "tiiuae/falcon-7b"
FALCON_ADAPTER = "dfurman/falcon-7b-chat-oasst1"
DECILM = "Deci/DeciLM-7B-instruct"
DCLM = "TRI-ML/DCLM-1B-IT"
REPO_IDS = (UPSTAGE, TULU, FALCON, FALCON_ADAPTER, DECILM, DCLM)

# branch -> (bits, group_size, desc_act); the names are the real branch names of TheBloke/tulu-7B-GPTQ.
TULU_BRANCHES: dict[str, tuple[int, int, bool]] = {
    "main": (4, 128, False),
    "gptq-4bit-32g-actorder_True": (4, 32, True),
    "gptq-4bit-64g-actorder_True": (4, 64, True),
    "gptq-4bit-128g-actorder_True": (4, 128, True),
    "gptq-8bit--1g-actorder_True": (8, -1, True),
    "gptq-8bit-128g-actorder_False": (8, 128, False),
}
TULU_QUANTISED = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

SEEDS = {UPSTAGE: 65, TULU: 7, FALCON: 40, FALCON_ADAPTER: 41, DECILM: 2023, DCLM: 2024}


# --------------------------------------------------------------------------------------------------
# cache writer
# --------------------------------------------------------------------------------------------------

LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".gguf", ".pt")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def file_etag(path: str, data: bytes) -> str:
    """The etag the Hub serves (and the cache names blobs by): sha256 for LFS files, git sha1 otherwise."""
    if path.endswith(LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return git_blob_sha1(data)


def repo_folder(cache_dir: Path, repo_id: str) -> Path:
    return Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))


def write_snapshot(cache_dir: Path, repo_id: str, revision: str, files: dict[str, bytes]) -> str:
    """Write one revision of a model repo into a hub cache; returns its (deterministic) commit sha."""
    folder = repo_folder(cache_dir, repo_id)
    etags = {path: file_etag(path, data) for path, data in files.items()}
    tree = "".join(f"{path}\0{etags[path]}\n" for path in sorted(files))
    commit = hashlib.sha1(f"commit {repo_id}@{revision}\n{tree}".encode()).hexdigest()
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    for path, data in files.items():
        blob = folder / "blobs" / etags[path]
        if not blob.exists():
            tmp = blob.with_name(blob.name + ".incomplete")
            tmp.write_bytes(data)
            os.replace(tmp, blob)
        link = folder / "snapshots" / commit / path
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.relpath(blob, link.parent), link)
    (folder / "refs" / revision).write_text(commit)
    return commit


def json_bytes(obj, indent: int = 2, sort_keys: bool = False) -> bytes:
    return (json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n").encode()


def st_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    return safetensors_bytes({k: v.contiguous() for k, v in tensors.items()}, metadata={"format": "pt"})


def bin_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.contiguous() for k, v in tensors.items()}, buf)
    return buf.getvalue()


def sharded(
    shards: list[list[str]], tensors: dict[str, torch.Tensor], kind: str = "safetensors"
) -> dict[str, bytes]:
    """Split ``tensors`` into the given shards (lists of keys) + the index file, as save_pretrained names them."""
    assert sorted(k for shard in shards for k in shard) == sorted(tensors), (
        "every tensor in exactly one shard"
    )
    n = len(shards)
    if kind == "safetensors":
        name, index_name, encode = (
            "model-{:05d}-of-{:05d}.safetensors",
            "model.safetensors.index.json",
            st_bytes,
        )
    else:
        name, index_name, encode = (
            "pytorch_model-{:05d}-of-{:05d}.bin",
            "pytorch_model.bin.index.json",
            bin_bytes,
        )
    files: dict[str, bytes] = {}
    weight_map: dict[str, str] = {}
    for i, keys in enumerate(shards, start=1):
        shard_name = name.format(i, n)
        files[shard_name] = encode({k: tensors[k] for k in keys})
        weight_map.update(dict.fromkeys(keys, shard_name))
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    files[index_name] = json_bytes(index)
    return files


def tokenizer_files(tokenizer_dir: Path) -> dict[str, bytes]:
    """The saved SmolLM2 tokenizer, minus the save-time bookkeeping keys (``is_local``/``local_files_only``)."""
    tokenizer_dir = Path(tokenizer_dir)
    files = {}
    for name in TOKENIZER_FILES:
        path = tokenizer_dir / name
        if not path.exists():
            if name == "chat_template.jinja":
                continue
            raise FileNotFoundError(f"{path} is missing: save the SmolLM2 tokenizer there first")
        files[name] = path.read_bytes()
    config = json.loads(files["tokenizer_config.json"])
    for key in ("is_local", "local_files_only", "name_or_path"):
        config.pop(key, None)
    files["tokenizer_config.json"] = json_bytes(config)
    return files


# --------------------------------------------------------------------------------------------------
# random weights
# --------------------------------------------------------------------------------------------------


def _linear(g: torch.Generator, out_f: int, in_f: int) -> torch.Tensor:
    return torch.randn(out_f, in_f, generator=g) / math.sqrt(in_f)


def _gain(g: torch.Generator, n: int, spread: float = 0.1) -> torch.Tensor:
    return 1 + spread * torch.randn(n, generator=g)


def llama_weights(g: torch.Generator, cfg: dict) -> dict[str, torch.Tensor]:
    """fp32 LLaMA state dict in the HF key layout (embeddings N(0,1), linears N(0,1)/sqrt(fan_in))."""
    hidden, inter, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads", heads)
    hd = hidden // heads
    sd = {"model.embed_tokens.weight": torch.randn(vocab, hidden, generator=g)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = _gain(g, hidden)
        sd[p + "self_attn.q_proj.weight"] = _linear(g, heads * hd, hidden)
        sd[p + "self_attn.k_proj.weight"] = _linear(g, kv * hd, hidden)
        sd[p + "self_attn.v_proj.weight"] = _linear(g, kv * hd, hidden)
        sd[p + "self_attn.o_proj.weight"] = _linear(g, hidden, heads * hd)
        sd[p + "post_attention_layernorm.weight"] = _gain(g, hidden)
        sd[p + "mlp.gate_proj.weight"] = _linear(g, inter, hidden)
        sd[p + "mlp.up_proj.weight"] = _linear(g, inter, hidden)
        sd[p + "mlp.down_proj.weight"] = _linear(g, hidden, inter)
    sd["model.norm.weight"] = _gain(g, hidden)
    sd["lm_head.weight"] = _linear(g, vocab, hidden)
    return sd


def _layer_of(key: str) -> int | None:
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        if part in ("layers", "h") and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return None


def split_by_layer(
    keys: Iterable[str], first: list[str], last: list[str], cuts: list[int]
) -> list[list[str]]:
    """Shards: ``first`` keys + layers < cuts[0]; ...; layers >= cuts[-1] + ``last`` keys."""
    bounds = [0, *cuts, 10**9]
    shards: list[list[str]] = [[] for _ in range(len(bounds) - 1)]
    for key in sorted(keys):
        layer = _layer_of(key)
        if key in first:
            shards[0].append(key)
        elif key in last:
            shards[-1].append(key)
        else:
            assert layer is not None, key
            shards[next(i for i in range(len(shards)) if bounds[i] <= layer < bounds[i + 1])].append(key)
    return shards


# --------------------------------------------------------------------------------------------------
# GPTQ (v1 checkpoint format, AutoGPTQ / TheBloke era)
# --------------------------------------------------------------------------------------------------


def gptq_quantize(
    weight: torch.Tensor, bits: int, group_size: int, desc_act: bool
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Symmetric round-to-nearest GPTQ quantisation of a ``[out, in]`` weight, packed in the GPTQ v1 layout.

    Returns ``({qweight, qzeros, scales, g_idx}, dequantised fp32 [out, in])``. Matches AutoGPTQ's
    ``Quantizer(sym=True)`` (scale = 2*absmax/maxq, zero = (maxq+1)/2) and ``QuantLinear.pack`` (qzeros
    store zero-1). With ``desc_act`` the input channels are grouped in descending order of their norm
    (standing in for the Hessian diagonal), so ``g_idx`` is a non-monotonic group map as in act-order
    checkpoints; qweight rows stay in the original channel order.
    """
    w = weight.detach().to(torch.float32)
    out_f, in_f = w.shape
    gs = in_f if group_size == -1 else group_size
    assert in_f % gs == 0 and (in_f * bits) % 32 == 0 and (out_f * bits) % 32 == 0, (w.shape, bits, gs)
    n_groups = in_f // gs
    maxq = 2**bits - 1
    zero = (maxq + 1) // 2
    if desc_act:
        order = torch.argsort(w.norm(dim=0), descending=True, stable=True)
        g_idx = torch.empty(in_f, dtype=torch.int32)
        g_idx[order] = (torch.arange(in_f) // gs).to(torch.int32)
    else:
        g_idx = (torch.arange(in_f) // gs).to(torch.int32)
    scales = torch.empty(n_groups, out_f, dtype=torch.float16)
    for grp in range(n_groups):
        absmax = w[:, g_idx == grp].abs().amax(dim=1).clamp_min(1e-5)
        scales[grp] = (2 * absmax / maxq).to(torch.float16)
    col_scale = scales.to(torch.float32)[g_idx.long()].T  # [out, in]
    q = torch.clamp(torch.round(w / col_scale) + zero, 0, maxq).to(torch.int64)
    dequant = col_scale * (q - zero)

    per = 32 // bits
    intweight = q.T.contiguous().numpy().astype(np.uint64)  # [in, out]
    shifts = (np.arange(per, dtype=np.uint64) * bits)[None, :, None]
    qweight = (intweight.reshape(in_f // per, per, out_f) << shifts).sum(axis=1, dtype=np.uint64)
    zeros = np.full((n_groups, out_f), zero - 1, dtype=np.uint64)
    qzeros = (zeros.reshape(n_groups, out_f // per, per) << shifts[:, :, 0][:, None, :]).sum(
        axis=2, dtype=np.uint64
    )
    packed = {
        "qweight": torch.from_numpy(qweight.astype(np.uint32).view(np.int32)),
        "qzeros": torch.from_numpy(qzeros.astype(np.uint32).view(np.int32)),
        "scales": scales,
        "g_idx": g_idx,
    }
    return packed, dequant


def gptq_unpack(packed: dict[str, torch.Tensor], bits: int) -> torch.Tensor:
    """Inverse of the packing above (GPTQ v1 convention): the dequantised ``[out, in]`` fp32 weight."""
    per = 32 // bits
    mask = np.uint32(2**bits - 1)
    qweight = packed["qweight"].numpy().view(np.uint32)
    qzeros = packed["qzeros"].numpy().view(np.uint32)
    shifts = np.arange(per, dtype=np.uint32) * bits
    q = ((qweight[:, None, :] >> shifts[None, :, None]) & mask).reshape(-1, qweight.shape[1])  # [in, out]
    z = ((qzeros[:, :, None] >> shifts[None, None, :]) & mask).reshape(qzeros.shape[0], -1) + 1
    g_idx = packed["g_idx"].long().numpy()
    scales = packed["scales"].to(torch.float32).numpy()
    w = scales[g_idx] * (q.astype(np.float32) - z[g_idx].astype(np.float32))  # [in, out]
    return torch.from_numpy(np.ascontiguousarray(w.T))


# --------------------------------------------------------------------------------------------------
# the repos
# --------------------------------------------------------------------------------------------------


def _upstage(tok: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    # Real: hidden 8192, intermediate 22016, 80 layers, 64 heads, vocab 32000, fp16, max positions 2048.
    # Tiny: every linear's out_features a multiple of 32 (bitsandbytes' CPU 4-bit kernel needs that).
    config = {
        "architectures": ["LlamaForCausalLM"],
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 192,
        "max_position_embeddings": 64,
        "model_type": "llama",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 4,
        "pad_token_id": PAD,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "transformers_version": "4.31.0.dev0",
        "use_cache": True,
        "vocab_size": VOCAB,
    }
    g = torch.Generator().manual_seed(SEEDS[UPSTAGE])
    sd = {k: v.to(torch.float16) for k, v in llama_weights(g, config).items()}
    shards = split_by_layer(sd, ["model.embed_tokens.weight"], ["model.norm.weight", "lm_head.weight"], [1])
    files = {
        "config.json": json_bytes(config),
        "generation_config.json": json_bytes(
            {
                "_from_model_config": True,
                "bos_token_id": BOS,
                "eos_token_id": EOS,
                "pad_token_id": PAD,
                "transformers_version": "4.31.0.dev0",
            }
        ),
        **sharded(shards, sd, kind="bin"),
        **tok,
    }
    return {"main": files}


def tulu_config() -> dict:
    # Real (Tulu 7B = LLaMA-1 7B): hidden 4096, intermediate 11008, 32 layers, 32 heads, vocab 32001.
    return {
        "architectures": ["LlamaForCausalLM"],
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "hidden_act": "silu",
        "hidden_size": 128,
        "initializer_range": 0.02,
        "intermediate_size": 256,
        "max_position_embeddings": 2048,
        "model_type": "llama",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "pad_token_id": PAD,
        "rms_norm_eps": 1e-06,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "transformers_version": "4.28.0.dev0",
        "use_cache": True,
        "vocab_size": VOCAB,
    }


def tulu_quantize_config(bits: int, group_size: int, desc_act: bool) -> dict:
    return {
        "bits": bits,
        "group_size": group_size,
        "damp_percent": 0.1 if desc_act else 0.01,
        "desc_act": desc_act,
        "sym": True,
        "true_sequential": True,
        "model_name_or_path": None,
        "model_file_base_name": "model",
    }


def tulu_fp16_weights() -> dict[str, torch.Tensor]:
    """The fp16 tiny Tulu every branch was quantised from (all branches share the unquantised tensors)."""
    g = torch.Generator().manual_seed(SEEDS[TULU])
    return {k: v.to(torch.float16) for k, v in llama_weights(g, tulu_config()).items()}


def _tulu(tok: dict[str, bytes], reference_dir: Path) -> tuple[dict[str, dict[str, bytes]], Path]:
    fp16 = tulu_fp16_weights()
    reference = reference_dir / "TheBloke--tulu-7B-GPTQ.fp16.safetensors"
    quantised = {
        k: v for k, v in fp16.items() if k.endswith(".weight") and k.rsplit(".", 2)[-2] in TULU_QUANTISED
    }
    reference.write_bytes(st_bytes(quantised))
    branches: dict[str, dict[str, bytes]] = {}
    for branch, (bits, group_size, desc_act) in TULU_BRANCHES.items():
        qc = tulu_quantize_config(bits, group_size, desc_act)
        config = tulu_config()
        config["quantization_config"] = {**qc, "quant_method": "gptq"}
        tensors: dict[str, torch.Tensor] = {}
        for key, value in fp16.items():
            module = key.rsplit(".", 2)
            if key.endswith(".weight") and module[-2] in TULU_QUANTISED:
                packed, _ = gptq_quantize(value.float(), bits, group_size, desc_act)
                for name, tensor in packed.items():
                    tensors[f"{module[0]}.{module[1]}.{name}"] = tensor
            else:
                tensors[key] = value
        branches[branch] = {
            "config.json": json_bytes(config),
            "generation_config.json": json_bytes(
                {
                    "_from_model_config": True,
                    "bos_token_id": BOS,
                    "eos_token_id": EOS,
                    "pad_token_id": PAD,
                    "transformers_version": "4.28.0.dev0",
                }
            ),
            "model.safetensors": st_bytes(dict(sorted(tensors.items()))),
            "quantize_config.json": json_bytes(qc),
            **tok,
        }
    return branches, reference


def falcon_config() -> dict:
    # Real: hidden 4544, 71 heads, 32 layers, vocab 65024, bf16, bos = eos = 11.
    return {
        "alibi": False,
        "apply_residual_connection_post_layernorm": False,
        "architectures": ["FalconForCausalLM"],
        "attention_dropout": 0.0,
        "bias": False,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "hidden_dropout": 0.0,
        "hidden_size": 64,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "falcon",
        "multi_query": True,
        "new_decoder_architecture": False,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "parallel_attn": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.27.4",
        "use_cache": True,
        "vocab_size": VOCAB,
    }


def _falcon(tok: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    cfg = falcon_config()
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = hidden // heads
    g = torch.Generator().manual_seed(SEEDS[FALCON])
    sd = {"transformer.word_embeddings.weight": torch.randn(VOCAB, hidden, generator=g)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"transformer.h.{i}."
        sd[p + "input_layernorm.weight"] = _gain(g, hidden)
        sd[p + "input_layernorm.bias"] = 0.05 * torch.randn(hidden, generator=g)
        # multi-query: heads query heads, then one key head and one value head
        sd[p + "self_attention.query_key_value.weight"] = _linear(g, (heads + 2) * hd, hidden)
        sd[p + "self_attention.dense.weight"] = _linear(g, hidden, hidden)
        sd[p + "mlp.dense_h_to_4h.weight"] = _linear(g, 4 * hidden, hidden)
        sd[p + "mlp.dense_4h_to_h.weight"] = _linear(g, hidden, 4 * hidden)
    sd["transformer.ln_f.weight"] = _gain(g, hidden)
    sd["transformer.ln_f.bias"] = 0.05 * torch.randn(hidden, generator=g)
    # lm_head is tied to the word embeddings (FalconConfig.tie_word_embeddings defaults to True)
    sd = {k: v.to(torch.bfloat16) for k, v in sd.items()}
    shards = split_by_layer(
        sd, ["transformer.word_embeddings.weight"], ["transformer.ln_f.weight", "transformer.ln_f.bias"], [1]
    )
    files = {
        "config.json": json_bytes(cfg),
        "generation_config.json": json_bytes(
            {
                "_from_model_config": True,
                "bos_token_id": BOS,
                "eos_token_id": EOS,
                "transformers_version": "4.27.4",
            }
        ),
        **sharded(shards, sd),
        **tok,
    }
    return {"main": files}


LORA_R, LORA_ALPHA = 8, 16


def _falcon_adapter() -> dict[str, dict[str, bytes]]:
    cfg = falcon_config()
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    qkv_out = (heads + 2) * (hidden // heads)
    adapter_config = {
        "auto_mapping": None,
        "base_model_name_or_path": FALCON,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "layers_pattern": None,
        "layers_to_transform": None,
        "lora_alpha": LORA_ALPHA,
        "lora_dropout": 0.05,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": LORA_R,
        "revision": None,
        "target_modules": ["query_key_value"],
        "task_type": "CAUSAL_LM",
    }
    g = torch.Generator().manual_seed(SEEDS[FALCON_ADAPTER])
    sd = {}
    for i in range(cfg["num_hidden_layers"]):
        p = f"base_model.model.transformer.h.{i}.self_attention.query_key_value."
        sd[p + "lora_A.weight"] = _linear(g, LORA_R, hidden)
        sd[p + "lora_B.weight"] = torch.randn(qkv_out, LORA_R, generator=g) / math.sqrt(LORA_R)
    # No tokenizer files: transformers 5 cannot build a tokenizer from a repo without config.json anyway,
    # so the tokenizer must come from the base repo (as the playground's loader does).
    files = {
        "adapter_config.json": json_bytes(adapter_config),
        "adapter_model.safetensors": st_bytes(dict(sorted(sd.items()))),
    }
    return {"main": files}


# DeciLM-7B-instruct's config.json text layout (2-space indent, inline lists/dicts, no trailing newline),
# tiny values; torch_dtype / use_bfloat16 as on the hub (bf16 weights). head_dim 32 so that every k/v
# projection (kv_i * head_dim rows) is a multiple of 32, which bitsandbytes' CPU 4-bit kernel requires.
DECILM_CONFIG = """{
  "architectures": [
    "DeciLMForCausalLM"
  ],
  "auto_map": {
    "AutoConfig": "configuration_decilm.DeciLMConfig",
    "AutoModelForCausalLM": "modeling_decilm.DeciLMForCausalLM"
  },
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 128,
  "initializer_range": 0.02,
  "intermediate_size": 256,
  "max_position_embeddings": 32,
  "model_type": "deci",
  "num_attention_heads": 4,
  "num_hidden_layers": 4,
  "num_key_value_heads_per_layer": [4, 2, 1, 2],
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"type": "dynamic", "factor": 2.0},
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "use_bfloat16": true,
  "transformers_version": "4.35.2",
  "use_cache": true,
  "vocab_size": 49152,
  "tokenizer_class": "LlamaTokenizer"
}"""

# TRI-ML/DCLM-1B-IT's main config.json text layout (incl. the leftover 4-space indentation), tiny values.
OPENLM_CONFIG = """{
  "architectures": [
    "OpenLMModel"
  ],
  "model_type": "openlm",
  "params": null,
    "apply_qk_norm": true,
    "attn_activation": null,
    "attn_name": "torch_attn",
    "attn_seq_scalar": null,
    "attn_seq_scalar_alpha": null,
    "dim": 64,
    "ffn_type": "swiglu_torch",
    "model": "open_lm_tiny_parity_swiglutorch",
    "norm_type": "gain_only_lp_layer_norm",
    "moe_capacity_factor": 1.25,
    "moe_expert_model_parallelism": false,
    "moe_freq": 0,
    "moe_loss_weight": 0.1,
    "moe_num_experts": null,
    "moe_top_k": 2,
    "moe_weight_parallelism": false,
    "n_heads": 4,
    "n_layers": 2,
    "norm_eps": 1e-05,
    "positional_embedding_type": "rotary",
    "post_embed_norm": false,
    "qk_norm": true,
    "seq_len": 128,
    "vocab_size": 49152,
    "weight_tying": false,
  "torch_dtype": "float32",
  "transformers_version": "4.40.2"
}
"""


def _decilm(tok: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    cfg = json.loads(DECILM_CONFIG)
    hidden, heads, inter = cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"]
    hd = hidden // heads
    g = torch.Generator().manual_seed(SEEDS[DECILM])
    sd = {"model.embed_tokens.weight": torch.randn(VOCAB, hidden, generator=g)}
    for i, kv in enumerate(cfg["num_key_value_heads_per_layer"]):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = _gain(g, hidden)
        sd[p + "self_attn.q_proj.weight"] = _linear(g, hidden, hidden)
        sd[p + "self_attn.k_proj.weight"] = _linear(g, kv * hd, hidden)
        sd[p + "self_attn.v_proj.weight"] = _linear(g, kv * hd, hidden)
        sd[p + "self_attn.o_proj.weight"] = _linear(g, hidden, hidden)
        sd[p + "post_attention_layernorm.weight"] = _gain(g, hidden)
        sd[p + "mlp.gate_proj.weight"] = _linear(g, inter, hidden)
        sd[p + "mlp.up_proj.weight"] = _linear(g, inter, hidden)
        sd[p + "mlp.down_proj.weight"] = _linear(g, hidden, inter)
    sd["model.norm.weight"] = _gain(g, hidden)
    sd["lm_head.weight"] = _linear(g, VOCAB, hidden)
    sd = {k: v.to(torch.bfloat16) for k, v in sd.items()}
    shards = split_by_layer(
        sd, ["model.embed_tokens.weight"], ["model.norm.weight", "lm_head.weight"], [2, 4]
    )
    return {"main": {"config.json": DECILM_CONFIG.encode(), **sharded(shards, sd), **tok}}


def _openlm(tok: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    cfg = json.loads(OPENLM_CONFIG)
    dim, heads = cfg["dim"], cfg["n_heads"]
    hd = dim // heads
    ffn = 256 * ((int(8 * dim / 3) + 255) // 256)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    g = torch.Generator().manual_seed(SEEDS[DCLM])
    sd = {"model.tok_embeddings.weight": torch.randn(VOCAB, dim, generator=g)}
    for i in range(cfg["n_layers"]):
        p = f"model.layers.{i}."
        sd[p + "attention.in_proj.weight"] = _linear(g, 3 * dim, dim)
        sd[p + "attention.out_proj.weight"] = _linear(g, dim, dim)
        sd[p + "attention.q_norm.weight"] = _gain(g, dim)
        sd[p + "attention.k_norm.weight"] = _gain(g, dim)
        sd[p + "attention.pos_embed.inv_freq"] = inv_freq.clone()
        sd[p + "attention_norm.weight"] = _gain(g, dim)
        sd[p + "feed_forward.w12.weight"] = _linear(g, 2 * ffn, dim)
        sd[p + "feed_forward.w3.weight"] = _linear(g, dim, ffn)
        sd[p + "ffn_norm.weight"] = _gain(g, dim)
    sd["model.norm.weight"] = _gain(g, dim)
    sd["model.output.weight"] = _linear(g, VOCAB, dim)
    shards = split_by_layer(
        sd, ["model.tok_embeddings.weight"], ["model.norm.weight", "model.output.weight"], [1]
    )
    return {"main": {"config.json": OPENLM_CONFIG.encode(), **sharded(shards, sd), **tok}}


def build_offline_hub(hf_home: Path, tokenizer_dir: Path) -> dict[str, dict]:
    """Write the tiny repos into ``hf_home/hub``; returns ``{repo_id: info}``.

    ``info``: ``repo_id``, ``revisions`` ({branch: commit sha}), ``snapshots`` ({branch: Path}),
    ``files`` ({branch: sorted file names}), ``gated``, ``architecture`` and, per repo, ``loadable``
    (False for the two native-architecture repos), ``base_model`` (adapter), ``quantization``
    ({branch: quantize_config}, GPTQ) and ``reference_weights`` (GPTQ: fp16 weights that were quantised).
    """
    hf_home = Path(hf_home)
    cache = hf_home / "hub"
    cache.mkdir(parents=True, exist_ok=True)
    reference_dir = hf_home / REFERENCE_DIR
    reference_dir.mkdir(parents=True, exist_ok=True)
    tok = tokenizer_files(tokenizer_dir)

    tulu_branches, tulu_reference = _tulu(tok, reference_dir)
    repos: dict[str, tuple[dict[str, dict[str, bytes]], dict]] = {
        UPSTAGE: (_upstage(tok), {"architecture": "LlamaForCausalLM", "gated": True}),
        TULU: (
            tulu_branches,
            {
                "architecture": "LlamaForCausalLM",
                "quantization": {b: tulu_quantize_config(*v) for b, v in TULU_BRANCHES.items()},
                "reference_weights": tulu_reference,
            },
        ),
        FALCON: (_falcon(tok), {"architecture": "FalconForCausalLM"}),
        FALCON_ADAPTER: (_falcon_adapter(), {"architecture": "peft-lora", "base_model": FALCON}),
        DECILM: (_decilm(tok), {"architecture": "DeciLMForCausalLM", "loadable": False}),
        DCLM: (_openlm(tok), {"architecture": "OpenLMModel", "loadable": False}),
    }
    info: dict[str, dict] = {}
    for repo_id, (branches, extra) in repos.items():
        revisions, snapshots, files = {}, {}, {}
        for branch, content in branches.items():
            sha = write_snapshot(cache, repo_id, branch, content)
            revisions[branch] = sha
            snapshots[branch] = repo_folder(cache, repo_id) / "snapshots" / sha
            files[branch] = sorted(content)
        info[repo_id] = {
            "repo_id": repo_id,
            "revisions": revisions,
            "snapshots": snapshots,
            "files": files,
            "gated": False,
            "loadable": True,
            **extra,
        }
    return info
