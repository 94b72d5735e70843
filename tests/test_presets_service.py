"""Preset listing, the prompt inspector and user presets, through the service and the running app."""

import json

import pytest
import yaml
from gradio_client import Client

from playground.engine.models.presets import PresetRegistry
from playground.engine.models.templates import Message
from playground.errors import PlaygroundError
from tests.conftest import PRESETS

pytestmark = pytest.mark.slow
QUESTION = [Message(role="user", content="Tell me about AI")]


def test_render_prompt_counts_tokens_with_the_real_tokenizer(services, smollm):
    result = services.presets.render_prompt("smollm2-135m-instruct", QUESTION, "Be brief.")
    assert result["prompt"].startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert result["tokens"] == len(smollm.tokenizer(result["prompt"])["input_ids"])


def test_render_prompt_without_a_cached_tokenizer_still_shows_the_prompt(services):
    result = services.presets.render_prompt("llama-65b-instruct", QUESTION)
    assert result["prompt"] == "### User:\nTell me about AI\n\n### Assistant:\n"
    assert result["tokens"] is None or result["tokens"] > 5


def test_saved_user_preset_is_a_valid_file_and_selectable(services):
    saved = services.presets.save_user_preset(
        "smollm2-135m-instruct", "smollm2-hot", "SmolLM2 hot", {"temperature": 1.3, "seed": 7}, "Be wild."
    )
    assert saved.name in services.registry and saved.params.temperature == 1.3 and saved.params.top_p == 0.9
    path = services.settings.user_presets_dir / "smollm2-hot.yaml"
    data = yaml.safe_load(path.read_text())
    assert data["params"]["seed"] == 7 and data["system_prompt"] == "Be wild."
    reloaded = PresetRegistry.from_folders(PRESETS, services.settings.user_presets_dir).get("smollm2-hot")
    assert reloaded.params == saved.params and reloaded.file_hash == saved.file_hash
    assert any(p["name"] == "smollm2-hot" and p["user_preset"] for p in services.presets.list())


def test_bad_user_presets_are_refused_and_nothing_is_written(services):
    user_dir = services.settings.user_presets_dir
    before = sorted(p.name for p in user_dir.glob("*"))
    with pytest.raises(PlaygroundError, match="built-in preset"):
        services.presets.save_user_preset("smollm2-135m-instruct", "tulu-7b-gptq", "", {})
    with pytest.raises(PlaygroundError, match="must be lower-case"):
        services.presets.save_user_preset("smollm2-135m-instruct", "Bad Name!", "", {})
    with pytest.raises(PlaygroundError, match="temperature"):
        services.presets.save_user_preset("smollm2-135m-instruct", "smollm2-cold", "", {"temperature": -2})
    assert sorted(p.name for p in user_dir.glob("*")) == before


def test_presets_and_render_prompt_endpoints(live_app):
    client = Client(live_app, verbose=False)
    listed = client.predict(api_name="/presets")
    tulu = next(p for p in listed if p["name"] == "tulu-7b-gptq")
    assert tulu["loader"] == "gptq" and "gptq-4bit-32g-actorder_True" in tulu["revisions"]
    upstage = next(p for p in listed if p["name"] == "llama-65b-instruct")
    assert upstage["gated"] and "on-commercial" in upstage["license_note"]
    rendered = client.predict(
        "falcon-7b-chat-oasst1",
        json.dumps([{"role": "user", "content": "Hi"}]),
        None,
        api_name="/render_prompt",
    )
    assert rendered["prompt"] == "<human>: Hi\n<bot>:"
    with pytest.raises(Exception, match="must end with a user message"):
        client.predict(
            "tulu-7b-gptq",
            json.dumps([{"role": "assistant", "content": "x"}]),
            None,
            api_name="/render_prompt",
        )


def test_presets_say_how_each_model_is_batched_here_once_probed(services, smollm, live_app):
    """The probe's verdict per model, in the service and in /presets: not checked before first use,
    then the layout and why (here the embedded model batches reproducibly or says it does not)."""
    presets = {p["name"]: p for p in services.presets.list()}
    assert (
        presets["smollm2-135m-instruct"]["batching"] is None or presets["smollm2-135m-instruct"]["batching"]
    )
    services.chat.backends.machine.engine(smollm)  # what the first answer does
    for listing in (services.presets.list(), Client(live_app, verbose=False).predict(api_name="/presets")):
        batching = {p["name"]: p["batching"] for p in listing}
        verdict = batching["smollm2-135m-instruct"]
        assert verdict == batching["smollm2-135m-instruct-greedy"]  # one model, one verdict
        assert verdict["layout"] in ("packed", "fixed", "single") and verdict["summary"]
        if verdict["batched"]:
            assert "same text alone or batched" in verdict["summary"]
        else:
            assert "one answer at a time: answers are reproducible" in verdict["summary"]


def test_the_list_names_files_relative_to_their_folder_and_the_quantisation_applied(services, hub):
    """No server paths; a GPTQ checkpoint's quantisation is read from its config in the (offline) Hub
    cache, or from its branch name, not the preset's ``quantization: none``."""
    from playground.services.presets import applied_quantization

    listed = {p["name"]: p for p in services.presets.list()}
    assert listed["llama-65b-instruct"]["source"] == "llama-65b-instruct.yaml"
    assert all("/" not in p["source"] for p in listed.values() if not p["user_preset"])
    gptq = services.registry.get("tulu-7b-gptq")
    assert gptq.model.quantization == "none"
    assert listed["tulu-7b-gptq"]["applied_quantization"] == "GPTQ 4-bit, group 128"  # its main branch
    assert (
        applied_quantization(gptq.model, "gptq-4bit-32g-actorder_True") == "GPTQ 4-bit, group 32, act-order"
    )
    assert applied_quantization(gptq.model, "gptq-8bit-128g-actorder_False") == "GPTQ 8-bit, group 128"
    assert listed["smollm2-135m-instruct"]["applied_quantization"] == "none"
