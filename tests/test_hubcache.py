"""The seeded offline hub (``tests/hubcache.py``) works through plain huggingface_hub / transformers / peft.

How offline mode is switched on here (no subprocess, nothing set before import): the hub is built once per
module, then every test calls ``conftest_hub.use_offline_hub(hf_home, monkeypatch)``, which patches
``huggingface_hub.constants.HF_HOME`` / ``HF_HUB_CACHE`` / ``HUGGINGFACE_HUB_CACHE`` / ``HF_HUB_OFFLINE``
(read at call time by every loader used here) and sets the same environment variables. No ``cache_dir=``
is passed anywhere: the real repo ids resolve exactly as in production.

GPTQ tests additionally call ``skip_gptqmodel_jit_kernels`` so gptqmodel does not spend ~3 minutes
JIT-compiling its AVX512-BF16 kernel on CPUs that have it; they are skipped when gptqmodel/optimum are
not installed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests import hubcache
from tests.conftest_hub import skip_gptqmodel_jit_kernels, use_offline_hub

FIXTURES = Path(
    os.environ.get("PLAYGROUND_FIXTURES") or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)
NOT_CACHED = "hubcache-tests/not-in-the-cache"


@pytest.fixture(scope="module")
def built(offline_hub):
    return offline_hub


@pytest.fixture
def hub(built, monkeypatch):
    use_offline_hub(built.hf_home, monkeypatch)
    return built


def _prompt(tokenizer, text="The quick brown fox"):
    return tokenizer(text, return_tensors="pt")


# ---------------------------------------------------------------------------------------------------
# cache layout
# ---------------------------------------------------------------------------------------------------


def test_layout_matches_the_huggingface_hub_cache(hub):
    cache = hub.hf_home / "hub"
    assert set(hub.info) == set(hubcache.REPO_IDS)
    for repo_id, info in hub.info.items():
        folder = cache / ("models--" + repo_id.replace("/", "--"))
        for revision, sha in info["revisions"].items():
            assert len(sha) == 40 and int(sha, 16) >= 0
            assert (folder / "refs" / revision).read_text() == sha
            snapshot = folder / "snapshots" / sha
            assert snapshot == info["snapshots"][revision]
            assert sorted(p.name for p in snapshot.iterdir()) == info["files"][revision]
            for link in snapshot.iterdir():
                assert link.is_symlink() and not os.path.isabs(os.readlink(link))
                blob = link.resolve()
                assert blob.parent == folder / "blobs"
                data = blob.read_bytes()
                expected = (
                    hashlib.sha256(data).hexdigest()
                    if link.name.endswith(hubcache.LFS_SUFFIXES)
                    else hubcache.git_blob_sha1(data)
                )
                assert blob.name == expected, link
    assert hub.info[hubcache.UPSTAGE]["gated"] is True
    assert len(set(hub.info[hubcache.TULU]["revisions"].values())) == len(hubcache.TULU_BRANCHES)


def test_scan_cache_dir_sees_every_repo_and_ref(hub):
    from huggingface_hub import scan_cache_dir

    report = scan_cache_dir(hub.hf_home / "hub")
    assert not report.warnings
    seen = {repo.repo_id: repo for repo in report.repos}
    assert set(seen) == set(hubcache.REPO_IDS)
    for repo_id, info in hub.info.items():
        refs = {ref: rev.commit_hash for rev in seen[repo_id].revisions for ref in rev.refs}
        assert refs == info["revisions"]


def test_build_is_deterministic(built, tmp_path):
    tokenizer_dir = built.hf_home.parent / "smollm2-tokenizer"
    again = hubcache.build_offline_hub(tmp_path / "hf_home", tokenizer_dir)
    assert {r: i["revisions"] for r, i in again.items()} == {r: i["revisions"] for r, i in built.info.items()}


def test_offline_downloads_resolve_branches_and_fail_for_uncached_repos(hub):
    from huggingface_hub import hf_hub_download, snapshot_download, try_to_load_from_cache
    from huggingface_hub.errors import LocalEntryNotFoundError

    for revision, sha in hub.info[hubcache.TULU]["revisions"].items():
        path = hf_hub_download(hubcache.TULU, "quantize_config.json", revision=revision)
        assert f"/snapshots/{sha}/" in path
        bits, group_size, desc_act = hubcache.TULU_BRANCHES[revision]
        qc = json.loads(Path(path).read_text())
        assert (qc["bits"], qc["group_size"], qc["desc_act"]) == (bits, group_size, desc_act)
        assert snapshot_download(hubcache.TULU, revision=revision) == str(
            hub.info[hubcache.TULU]["snapshots"][revision]
        )
    sha = hub.info[hubcache.FALCON_ADAPTER]["revisions"]["main"]
    assert f"/snapshots/{sha}/" in try_to_load_from_cache(hubcache.FALCON_ADAPTER, "adapter_config.json")
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(NOT_CACHED, "config.json")
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(hubcache.TULU, "config.json", revision="gptq-3bit-128g-actorder_False")


def test_transformers_offline_error_for_an_uncached_repo(hub):
    from transformers import AutoConfig

    with pytest.raises(OSError, match="offline|cached|connect|local"):
        AutoConfig.from_pretrained(NOT_CACHED)


def test_tokenizer_in_every_repo(hub):
    from transformers import AutoTokenizer

    for repo_id in hubcache.REPO_IDS:
        if repo_id == hubcache.FALCON_ADAPTER:  # adapter-only repo: no config.json, no tokenizer
            assert "tokenizer.json" not in hub.info[repo_id]["files"]["main"]
            continue
        tok = AutoTokenizer.from_pretrained(repo_id)
        assert len(tok) == hubcache.VOCAB
        assert (tok.bos_token_id, tok.eos_token_id) == (hubcache.BOS, hubcache.EOS)
        assert tok.decode(tok("hello world")["input_ids"]) == "hello world"


# ---------------------------------------------------------------------------------------------------
# upstage/llama-65b-instruct
# ---------------------------------------------------------------------------------------------------


def test_upstage_llama_loads_and_dynamic_rope_applies_past_max_positions(hub):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(hubcache.UPSTAGE, revision="main")
    assert config.rope_parameters["rope_type"] == "default"  # no rope_scaling in the repo
    assert config.max_position_embeddings == 64 and config.dtype == torch.float16
    model, loading = AutoModelForCausalLM.from_pretrained(hubcache.UPSTAGE, output_loading_info=True)
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float16
    assert not loading["missing_keys"] and not loading["unexpected_keys"]

    scaled = AutoConfig.from_pretrained(hubcache.UPSTAGE)
    scaled.rope_parameters = {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0}
    dynamic = AutoModelForCausalLM.from_pretrained(hubcache.UPSTAGE, config=scaled, dtype=torch.float32)
    plain = AutoModelForCausalLM.from_pretrained(hubcache.UPSTAGE, dtype=torch.float32)
    ids = torch.randint(3, hubcache.VOCAB, (1, 100), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        short = [m(ids[:, :48]).logits for m in (plain, dynamic)]
        long = [m(ids).logits for m in (plain, dynamic)]
    torch.testing.assert_close(short[0], short[1])  # within max_position_embeddings: identical
    assert (long[0][0, -1] - long[1][0, -1]).abs().max() > 1e-3  # beyond it: NTK-scaled base

    tok = AutoTokenizer.from_pretrained(hubcache.UPSTAGE)
    inputs = _prompt(tok)
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 5


# ---------------------------------------------------------------------------------------------------
# TheBloke/tulu-7B-GPTQ
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits,group_size,desc_act", sorted(set(hubcache.TULU_BRANCHES.values())))
def test_gptq_pack_roundtrip(bits, group_size, desc_act):
    weight = torch.randn(96, 256, generator=torch.Generator().manual_seed(bits + group_size))
    packed, dequant = hubcache.gptq_quantize(weight, bits, group_size, desc_act)
    groups = 1 if group_size == -1 else 256 // group_size
    assert packed["qweight"].shape == (256 * bits // 32, 96) and packed["qweight"].dtype == torch.int32
    assert packed["qzeros"].shape == (groups, 96 * bits // 32) and packed["scales"].shape == (groups, 96)
    assert packed["g_idx"].shape == (256,)
    assert (torch.bincount(packed["g_idx"].long()) == 256 // groups).all()
    assert (desc_act and groups > 1) == bool((packed["g_idx"].diff() < 0).any())
    torch.testing.assert_close(hubcache.gptq_unpack(packed, bits), dequant, rtol=0, atol=0)
    step = packed["scales"].float()[packed["g_idx"].long()].T
    assert ((dequant - weight).abs() <= step / 2 + 1e-6).float().mean() > 0.99


@pytest.fixture
def gptq_hub(hub, monkeypatch):
    pytest.importorskip("gptqmodel")
    pytest.importorskip("optimum")
    skip_gptqmodel_jit_kernels(monkeypatch)
    return hub


@pytest.mark.parametrize("revision", list(hubcache.TULU_BRANCHES))
def test_tulu_gptq_branch_loads_through_gptqmodel(gptq_hub, revision):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bits, group_size, desc_act = hubcache.TULU_BRANCHES[revision]
    model = AutoModelForCausalLM.from_pretrained(hubcache.TULU, revision=revision, device_map="cpu")
    qc = model.config.quantization_config
    qc = qc if isinstance(qc, dict) else qc.to_dict()
    assert (qc["quant_method"], qc["bits"], qc["group_size"], qc["desc_act"]) == (
        "gptq",
        bits,
        group_size,
        desc_act,
    )

    snapshot = gptq_hub.info[hubcache.TULU]["snapshots"][revision]
    reference = load_file(gptq_hub.info[hubcache.TULU]["reference_weights"])
    with safe_open(snapshot / "model.safetensors", "pt") as stored:
        layers = {name: module for name, module in model.named_modules() if name.endswith("proj")}
        assert len(layers) == 7 * 2
        for name, module in layers.items():
            cls = type(module)
            assert cls.__module__.startswith("gptqmodel.nn_modules.qlinear"), (name, cls)
            assert cls.__name__ == ("TorchAtenLinear" if bits == 4 else "TorchLinear")
            packed = {k: stored.get_tensor(f"{name}.{k}") for k in ("qweight", "qzeros", "scales", "g_idx")}
            exact = hubcache.gptq_unpack(packed, bits)
            with torch.no_grad():  # the kernel's own dequantised weight: W^T = layer(I)
                kernel = module(torch.eye(module.in_features, dtype=torch.float16)).T.float()
            torch.testing.assert_close(kernel, exact, rtol=2e-3, atol=2e-3)
            step = packed["scales"].float()[packed["g_idx"].long()].T
            original = reference[f"{name}.weight"].float()
            assert ((kernel - original).abs() <= step / 2 + 2e-3).all(), name

    tok = AutoTokenizer.from_pretrained(hubcache.TULU, revision=revision)
    inputs = _prompt(tok)
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 5


# ---------------------------------------------------------------------------------------------------
# tiiuae/falcon-7b + dfurman/falcon-7b-chat-oasst1
# ---------------------------------------------------------------------------------------------------


def _nf4_double_quant():
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def test_falcon_base_loads(hub):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(hubcache.FALCON)
    assert (config.multi_query, config.parallel_attn, config.new_decoder_architecture) == (True, True, False)
    assert (config.alibi, config.bias, config.model_type) == (False, False, "falcon")
    model, loading = AutoModelForCausalLM.from_pretrained(hubcache.FALCON, output_loading_info=True)
    assert type(model).__name__ == "FalconForCausalLM" and model.dtype == torch.bfloat16
    assert not loading["missing_keys"] and not loading["unexpected_keys"]


def test_falcon_adapter_on_a_4bit_nf4_base(hub):
    pytest.importorskip("bitsandbytes")
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = PeftConfig.from_pretrained(hubcache.FALCON_ADAPTER, revision="main")
    assert adapter.base_model_name_or_path == hubcache.FALCON and adapter.revision is None
    assert adapter.peft_type == "LORA" and set(adapter.target_modules) == {"query_key_value"}
    base = AutoModelForCausalLM.from_pretrained(
        adapter.base_model_name_or_path,
        revision=adapter.revision or "main",
        dtype=torch.bfloat16,
        quantization_config=_nf4_double_quant(),
        device_map="cpu",
    )
    assert base.is_quantized and base.config.quantization_config.bnb_4bit_use_double_quant
    tok = AutoTokenizer.from_pretrained(hubcache.FALCON)
    inputs = _prompt(tok)
    model = PeftModel.from_pretrained(base, hubcache.FALCON_ADAPTER, revision="main")

    stored = load_file(hub.info[hubcache.FALCON_ADAPTER]["snapshots"]["main"] / "adapter_model.safetensors")
    state = model.state_dict()
    assert len(stored) == 4
    for key, value in stored.items():
        loaded = state[key.replace(".weight", ".default.weight")]
        torch.testing.assert_close(loaded.float(), value.float())

    with torch.no_grad():
        adapted = model(**inputs).logits.float()
        with model.disable_adapter():
            plain = model(**inputs).logits.float()
    assert torch.isfinite(adapted).all() and torch.isfinite(plain).all()
    assert (adapted - plain).abs().max() > 0.1
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4


@pytest.mark.xfail(
    strict=False,
    reason="transformers 5.23 replace_with_bnb_linear converts only `type(m) is nn.Linear`; Falcon's "
    "FalconLinear subclasses nn.Linear, so a 4-bit Falcon load keeps bf16 FalconLinear layers",
)
def test_falcon_4bit_base_has_bnb_layers(hub):
    pytest.importorskip("bitsandbytes")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(
        hubcache.FALCON, dtype=torch.bfloat16, quantization_config=_nf4_double_quant(), device_map="cpu"
    )
    classes = {type(m).__name__ for n, m in base.named_modules() if n.endswith(("query_key_value", "dense"))}
    assert classes == {"Linear4bit"}


# ---------------------------------------------------------------------------------------------------
# Deci/DeciLM-7B-instruct and TRI-ML/DCLM-1B-IT (files only: their loader is the project's native one)
# ---------------------------------------------------------------------------------------------------


def _sharded_tensors(snapshot: Path) -> dict[str, torch.Tensor]:
    index = json.loads((snapshot / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    tensors: dict[str, torch.Tensor] = {}
    for shard in shards:
        part = load_file(snapshot / shard)
        assert all(index["weight_map"][k] == shard for k in part)
        tensors.update(part)
    assert set(tensors) == set(index["weight_map"])
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in tensors.values())
    return tensors


def _key_order(path: Path) -> list[str]:
    return list(json.loads(path.read_text(), object_pairs_hook=lambda pairs: dict(pairs)).keys())


def test_decilm_files(hub):
    snapshot = hub.info[hubcache.DECILM]["snapshots"]["main"]
    assert sorted(p.name for p in snapshot.glob("model-*.safetensors")) == [
        f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)
    ]
    config = json.loads((snapshot / "config.json").read_text())
    assert config["model_type"] == "deci" and "rope_theta" not in config
    assert config["rope_scaling"] == {"type": "dynamic", "factor": 2.0}
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_decilm.DeciLMForCausalLM"
    tensors = _sharded_tensors(snapshot)
    hidden, heads, vocab = config["hidden_size"], config["num_attention_heads"], config["vocab_size"]
    head_dim = hidden // heads
    assert vocab == hubcache.VOCAB
    assert tensors["model.embed_tokens.weight"].shape == (vocab, hidden)
    assert tensors["lm_head.weight"].shape == (vocab, hidden)
    for i, kv in enumerate(config["num_key_value_heads_per_layer"]):
        for proj in ("k_proj", "v_proj"):
            assert tensors[f"model.layers.{i}.self_attn.{proj}.weight"].shape == (kv * head_dim, hidden)
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
    fixture = FIXTURES / "decilm_tiny"
    if fixture.is_dir():
        assert _key_order(snapshot / "config.json") == _key_order(fixture / "config.json")
        theirs = json.loads((fixture / "model.safetensors.index.json").read_text())["weight_map"]
        assert set(tensors) == set(theirs)


def test_dclm_files(hub):
    snapshot = hub.info[hubcache.DCLM]["snapshots"]["main"]
    config_text = (snapshot / "config.json").read_text()
    config = json.loads(config_text)
    assert config["model_type"] == "openlm" and config["norm_type"] == "gain_only_lp_layer_norm"
    assert '\n    "dim": ' in config_text  # the hub file's leftover 4-space indentation
    tensors = _sharded_tensors(snapshot)
    dim, heads = config["dim"], config["n_heads"]
    head_dim = dim // heads
    assert tensors["model.tok_embeddings.weight"].shape == (hubcache.VOCAB, dim)
    assert tensors["model.output.weight"].shape == (hubcache.VOCAB, dim)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    for i in range(config["n_layers"]):
        torch.testing.assert_close(tensors[f"model.layers.{i}.attention.pos_embed.inv_freq"], inv_freq)
        gain = tensors[f"model.layers.{i}.attention_norm.weight"]
        assert (gain - 1).abs().max() < 1 and (gain != 1).any()
    assert {t.dtype for t in tensors.values()} == {torch.float32}
    fixture = FIXTURES / "openlm_dclm_tiny"
    if fixture.is_dir():
        assert _key_order(snapshot / "config.json") == _key_order(fixture / "config.json")
        theirs = json.loads((fixture / "model.safetensors.index.json").read_text())["weight_map"]
        assert set(tensors) == set(theirs)
        assert json.loads((fixture / "config.json").read_text())["norm_type"] == config["norm_type"]
