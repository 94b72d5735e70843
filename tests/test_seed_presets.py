"""Every seed preset loads by its real repo id through the production loader, from the seeded offline
Hub cache, on CPU, and streams text; quantisation, the adapter and RoPE scaling are really in effect."""

import json

import pytest
import torch
from gradio_client import Client

from playground.engine.models.loader import LoadRequest
from playground.engine.models.templates import Message
from playground.errors import PlaygroundError
from playground.services.answers.chat import AnswerRequest

pytestmark = pytest.mark.slow
SEEDS = ["decilm-7b-instruct", "dclm-1b-it", "llama-65b-instruct", "tulu-7b-gptq", "falcon-7b-chat-oasst1"]
HELLO = [Message(role="user", content="Hello there")]


def load(services, name, **kwargs):
    return services.cache.get(LoadRequest.from_spec(services.registry.get(name).model, **kwargs))


def module_types(model) -> set[str]:
    return {type(m).__name__ for m in model.modules()}


def answer(services, name, **kwargs):
    cid = services.compare.start([name])
    request = AnswerRequest(name, HELLO, params={"max_new_tokens": 8, "seed": 1}, **kwargs)
    updates = list(services.chat.answer(request, cid))
    return updates, services.store.turns(cid)[-1]


@pytest.mark.parametrize("name", SEEDS)
def test_seed_preset_streams_through_the_chat_service(hub, services, name):
    updates, row = answer(services, name)
    last = updates[-1]
    assert last.error is None, last.error
    assert last.done and last.stats["completion_tokens"] > 0
    assert row.prompt == services.registry.get(name).template.render(
        HELLO, services.registry.get(name).system_prompt
    )
    assert row.revision and row.revision != "main"  # the resolved commit sha is logged


def test_native_architectures_load_without_remote_code(hub, services):
    from playground.engine.models.archs import DeciLMForCausalLM, OpenLMForCausalLM

    assert isinstance(load(services, "decilm-7b-instruct").model, DeciLMForCausalLM)
    assert isinstance(load(services, "dclm-1b-it").model, OpenLMForCausalLM)


def test_upstage_is_8bit_with_dynamic_rope_scaling(hub, services):
    loaded = load(services, "llama-65b-instruct")
    assert "Linear8bitLt" in module_types(loaded.model)
    rotary = loaded.model.model.rotary_emb
    assert rotary.rope_type == "dynamic" and loaded.details["rope_parameters"]["factor"] == 2.0
    original = rotary.inv_freq.clone()
    limit = loaded.model.config.max_position_embeddings
    ids = torch.randint(3, 1000, (1, limit + 40))
    with torch.inference_mode():
        loaded.model(ids)
    assert not torch.allclose(rotary.inv_freq, original), "a longer input must stretch the RoPE base"
    fp = load(services, "llama-65b-instruct", quantization="none")
    quantised = linear_weight_bytes(loaded.model)
    assert {w.dtype for w in quantised.values()} == {torch.int8}
    full = linear_weight_bytes(fp.model)
    assert quantised.keys() == full.keys()
    assert all(full[k].is_floating_point() and full[k].numel() == quantised[k].numel() for k in full)
    int8_bytes = sum(w.numel() * w.element_size() for w in quantised.values())
    assert int8_bytes * full[next(iter(full))].element_size() == sum(
        w.numel() * w.element_size() for w in full.values()
    )


def linear_weight_bytes(model) -> dict:
    """The weights of the decoder's linear layers (embeddings and lm_head stay 16-bit in both recipes)."""
    return {
        name: module.weight
        for name, module in model.named_modules()
        if ".layers." in name and isinstance(module, torch.nn.Linear)
    }


@pytest.mark.parametrize("revision", ["main", "gptq-4bit-32g-actorder_True", "gptq-8bit-128g-actorder_False"])
def test_tulu_gptq_branch_is_the_revision(hub, services, revision):
    loaded = load(services, "tulu-7b-gptq", revision=revision)
    quant = [
        m
        for m in loaded.model.modules()
        if "QuantLinear" in type(m).__name__ or "gptqmodel" in type(m).__module__
    ]
    assert quant, module_types(loaded.model)
    bits = loaded.model.config.quantization_config.bits
    assert bits == (8 if "8bit" in revision else 4)
    assert loaded.resolved_revision == hub.info["TheBloke/tulu-7B-GPTQ"]["revisions"][revision]
    _updates, row = answer(services, "tulu-7b-gptq", revision=revision)
    assert row.revision == loaded.resolved_revision and row.output is not None


def test_falcon_adapter_on_a_4bit_base_is_active(hub, services):
    loaded = load(services, "falcon-7b-chat-oasst1")
    model = loaded.model
    assert type(model).__name__.startswith("PeftModel")
    assert "Linear4bit" in module_types(model)
    assert loaded.details["base_model"] == "tiiuae/falcon-7b"
    assert loaded.tokenizer.pad_token == loaded.tokenizer.eos_token
    ids = torch.randint(3, 1000, (1, 12))
    with torch.inference_mode():
        with_adapter = model(ids).logits
        with model.disable_adapter():
            base = model(ids).logits
    assert (with_adapter - base).abs().max() > 1e-3


def test_repo_missing_from_the_cache_says_what_to_do(hub, services):
    spec = services.registry.get("llama-65b-instruct").model.model_copy(
        update={"id": "upstage/llama-30b-instruct"}
    )
    with pytest.raises(PlaygroundError) as err:
        services.cache.get(LoadRequest.from_spec(spec))
    message = str(err.value)
    assert "upstage/llama-30b-instruct@main" in message and "not in the local Hugging Face cache" in message
    assert "huggingface-cli download upstage/llama-30b-instruct" in message


def test_seed_presets_side_by_side_through_the_app(hub, live_app):
    client = Client(live_app, verbose=False)
    names = SEEDS[:4]
    job = client.submit(
        json.dumps(names),
        json.dumps([m.model_dump() for m in HELLO]),
        json.dumps({"max_new_tokens": 6}),
        "",
        "",
        api_name="/compare",
    )
    final = job.result()
    for column in final["columns"]:
        assert column["error"] is None, column
        assert column["done"] and column["stats"]["completion_tokens"] > 0
