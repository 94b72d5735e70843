"""Native DeciLM and OpenLM: parity with the reference fixtures, and the transformers features on top.

Fixtures: `$PLAYGROUND_FIXTURES`, else `<repo>/../shared/fixtures` (see its README.md for how they were made).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

import playground.engine  # noqa: F401 - registers the native architectures
from playground.engine.models.archs import (
    DeciLMConfig,
    DeciLMForCausalLM,
    OpenLMConfig,
    OpenLMForCausalLM,
    register_native_architectures,
)

FIXTURES = Path(
    os.environ.get("PLAYGROUND_FIXTURES") or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)
ARCHS = {
    "decilm": (
        "decilm_tiny",
        DeciLMForCausalLM,
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    ),
    "openlm": ("openlm_dclm_tiny", OpenLMForCausalLM, ["in_proj", "out_proj", "w12", "w3"]),
}
STRICT = {"atol": 2e-5, "rtol": 1e-5}


def fixture_dir(arch: str) -> Path:
    path = FIXTURES / ARCHS[arch][0]
    if not path.is_dir():
        pytest.fail(
            f"fixture directory {path} is missing; set PLAYGROUND_FIXTURES to the shared fixtures folder"
        )
    return path


def expected(arch: str) -> dict[str, torch.Tensor]:
    return load_file(FIXTURES / f"{ARCHS[arch][0]}.expected.safetensors")


def load(arch_or_path, **kwargs):
    path = fixture_dir(arch_or_path) if arch_or_path in ARCHS else arch_or_path
    kwargs.setdefault("dtype", torch.float32)
    return AutoModelForCausalLM.from_pretrained(path, **kwargs).eval()


@pytest.fixture(scope="module", params=list(ARCHS))
def arch(request):
    return request.param


@pytest.fixture(scope="module")
def model(arch):
    return load(arch)


def greedy(model, input_ids, **kwargs):
    kwargs.setdefault("max_new_tokens", 8)
    kwargs.setdefault("min_new_tokens", kwargs["max_new_tokens"])  # no early stop on the tiny vocab's eos
    return model.generate(input_ids, do_sample=False, pad_token_id=0, **kwargs)


def test_register_is_idempotent_and_auto_classes_resolve(arch):
    register_native_architectures()
    register_native_architectures()
    config = AutoConfig.from_pretrained(fixture_dir(arch))
    assert type(config) is {"decilm": DeciLMConfig, "openlm": OpenLMConfig}[arch]
    assert not hasattr(config, "auto_map")  # DeciLM's hub auto_map (remote code) is dropped


@pytest.mark.parametrize("trust_remote_code", [None, False, True])
def test_decilm_loads_natively_despite_auto_map(trust_remote_code):
    path = fixture_dir("decilm")
    assert "auto_map" in json.loads((path / "config.json").read_text())
    model, info = AutoModelForCausalLM.from_pretrained(
        path, trust_remote_code=trust_remote_code, output_loading_info=True
    )
    assert type(model) is DeciLMForCausalLM
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"))


def test_configs_read_hub_layouts():
    deci = AutoConfig.from_pretrained(fixture_dir("decilm"))
    assert deci.num_key_value_heads_per_layer == [4, 2, 1, 8]
    assert [layer.num_key_value_heads for layer in deci.per_layer_config] == [4, 2, 1, 8]
    assert deci.rope_parameters["rope_type"] == "dynamic" and deci.rope_parameters["factor"] == 2.0
    assert deci.rope_parameters["rope_theta"] == 10000.0
    openlm = AutoConfig.from_pretrained(fixture_dir("openlm"))
    assert (openlm.hidden_size, openlm.num_hidden_layers, openlm.num_attention_heads) == (64, 2, 4)
    assert openlm.intermediate_size == 256 and openlm.norm_type == "gain_only_lp_layer_norm"


def test_openlm_checkpoint_loads_without_key_warnings(caplog):
    with caplog.at_level(logging.WARNING):
        _, info = AutoModelForCausalLM.from_pretrained(fixture_dir("openlm"), output_loading_info=True)
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"))
    assert "inv_freq" not in caplog.text


def test_logits_and_final_hidden_match_reference(arch, model):
    exp = expected(arch)
    with torch.no_grad():
        out = model(exp["input_ids"], output_hidden_states=True)
    torch.testing.assert_close(out.logits, exp["logits"], **STRICT)
    torch.testing.assert_close(out.hidden_states[-1], exp["final_hidden"], **STRICT)


def test_greedy_generation_matches_reference(arch, model):
    exp = expected(arch)
    out = greedy(model, exp["generate_prompt_ids"], output_logits=True, return_dict_in_generate=True)
    assert torch.equal(out.sequences, exp["generate_output_ids"])
    torch.testing.assert_close(torch.cat(out.logits), exp["generate_step_logits"], **STRICT)


def test_openlm_legacy_params_args_dict_config(tmp_path):
    folder = tmp_path / "dclm"
    shutil.copytree(fixture_dir("openlm"), folder)
    shutil.copy(FIXTURES / "openlm_dclm_tiny.legacy_params_args_dict.config.json", folder / "config.json")
    model = load(folder)
    assert model.config.norm_type == "gain_only_lp_layer_norm" and model.config.hidden_size == 64
    exp = expected("openlm")
    with torch.no_grad():
        torch.testing.assert_close(model(exp["input_ids"]).logits, exp["logits"], **STRICT)


def test_decilm_dynamic_ntk_long_input_and_no_stale_state():
    exp = expected("decilm")
    model = load("decilm")
    with torch.no_grad():
        fresh_short = model(exp["input_ids"]).logits
        long_logits = model(exp["long_input_ids"]).logits
        short_after_long = model(exp["input_ids"]).logits
        long_again = model(exp["long_input_ids"][:, :40]).logits
        fresh_long40 = load("decilm")(exp["long_input_ids"][:, :40]).logits
    torch.testing.assert_close(long_logits, exp["long_logits"], **STRICT)
    assert torch.equal(short_after_long, fresh_short)
    torch.testing.assert_close(long_again, fresh_long40, atol=0, rtol=0)


def left_pad(rows: list[torch.Tensor], pad_id: int = 0):
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row) :] = row
        attention_mask[i, width - len(row) :] = 1
    return input_ids, attention_mask


def test_left_padded_batch_matches_unpadded_runs(arch, model):
    exp = expected(arch)
    # for DeciLM the long row (40 > max_position_embeddings 32) takes the dynamic-NTK path: per row
    source = exp["long_input_ids"][0] if arch == "decilm" else exp["input_ids"].flatten()
    rows = [source[:40], exp["input_ids"][1, :11]]
    input_ids, attention_mask = left_pad(rows)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        batch_logits = model(input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
        for i, row in enumerate(rows):
            single = model(row[None]).logits[0]
            torch.testing.assert_close(batch_logits[i, -len(row) :], single, atol=1e-4, rtol=1e-4)
    batch_out = greedy(model, input_ids, attention_mask=attention_mask, max_new_tokens=6)
    for i, row in enumerate(rows):
        single_out = greedy(model, row[None], max_new_tokens=6)
        assert torch.equal(batch_out[i, -6:], single_out[0, -6:])


def test_sampling_generate_is_seeded(arch, model):
    prompt = expected(arch)["generate_prompt_ids"]
    runs = []
    for _ in range(2):
        torch.manual_seed(1234)
        runs.append(
            model.generate(
                prompt, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=8, min_new_tokens=8
            )
        )
    assert torch.equal(runs[0], runs[1]) and runs[0].shape == (1, 24)
    assert int(runs[0].max()) < model.config.vocab_size


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision(arch, dtype):
    exp = expected(arch)
    model = load(arch, dtype=dtype, device_map="cpu")
    assert all(p.dtype == dtype for p in model.parameters())
    with torch.no_grad():
        logits = model(exp["input_ids"]).logits
    assert logits.dtype == dtype
    assert (logits.float() - exp["logits"]).abs().max() < (0.25 if dtype == torch.bfloat16 else 0.05)
    assert greedy(model, exp["generate_prompt_ids"]).shape == (1, 24)


def _bnb_skip_modules(arch: str) -> list[str]:
    # bitsandbytes 0.50 on CPUs with AVX512-BF16 repacks 4-bit weights for inference and asserts that
    # out_features % 32 == 0; the tiny DeciLM has 16- and 8-row k/v projections (the real one: 128 * kv).
    skip = ["lm_head", "output"]
    if arch == "decilm":
        config = AutoConfig.from_pretrained(fixture_dir(arch))
        for i, kv in enumerate(config.num_key_value_heads_per_layer):
            if kv * config.head_dim % 32:
                skip += [f"model.layers.{i}.self_attn.k_proj", f"model.layers.{i}.self_attn.v_proj"]
    return skip


def _assert_quantized_model_generates(arch, model, linear_cls):
    exp = expected(arch)
    quantized = {name for name, module in model.named_modules() if isinstance(module, linear_cls)}
    assert any(name.endswith(ARCHS[arch][2][0]) for name in quantized)  # attention projections quantized
    assert any(name.endswith(ARCHS[arch][2][-1]) for name in quantized)  # MLP projections quantized
    with torch.no_grad():
        logits = model(exp["input_ids"]).logits.float()
    assert torch.isfinite(logits).all()
    # quantization noise on a tiny random model is large, but the logits must still track the reference
    assert torch.corrcoef(torch.stack([logits.flatten(), exp["logits"].flatten()]))[0, 1] > 0.8
    out = greedy(model, exp["generate_prompt_ids"])
    assert out.shape == (1, 24) and torch.equal(out[:, :16], exp["generate_prompt_ids"])


def test_bitsandbytes_4bit_nf4_on_cpu(arch):
    from bitsandbytes.nn import Linear4bit

    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
        llm_int8_skip_modules=_bnb_skip_modules(arch),
    )
    model = load(arch, quantization_config=config, device_map="cpu")
    _assert_quantized_model_generates(arch, model, Linear4bit)


def test_bitsandbytes_8bit_on_cpu(arch):
    from bitsandbytes.nn import Linear8bitLt

    model = load(
        arch, dtype=torch.float16, quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map="cpu"
    )
    _assert_quantized_model_generates(arch, model, Linear8bitLt)


def test_peft_lora_on_native_linear_layers(arch):
    from peft import LoraConfig, get_peft_model

    exp = expected(arch)
    model = load(arch)
    targets = ARCHS[arch][2]
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] in targets:
            assert type(module) is torch.nn.Linear, name
    with torch.no_grad():
        before = model(exp["input_ids"]).logits
    torch.manual_seed(0)
    lora = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False)
    )
    wrapped = {name.rsplit(".", 1)[-1] for name, module in lora.named_modules() if hasattr(module, "lora_A")}
    assert wrapped == set(targets)
    with torch.no_grad():
        after = lora(input_ids=exp["input_ids"]).logits
    assert (after - before).abs().max() > 1e-3
    assert lora.generate(input_ids=exp["generate_prompt_ids"], do_sample=False, max_new_tokens=4).shape == (
        1,
        20,
    )
