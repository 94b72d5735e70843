"""Each kind of server gets every stored sampling parameter under its own name (the table of
``engine/backends/remote_params.py`` and the README), and what it cannot take is refused. The servers
themselves are driven in ``test_remote.py`` (transformers serve) and ``test_remote_llamacpp.py``
(llama.cpp, whose ``/slots`` shows what it applied)."""

from __future__ import annotations

import json

import pytest

from playground.engine.backends.remote_models import ServedModel, described
from playground.engine.backends.remote_params import SERVERS, sent_params
from playground.engine.generation.params import GenerationParams
from playground.engine.models.presets import ModelSpec
from playground.errors import PlaygroundError

SAMPLED = GenerationParams(
    temperature=0.7, top_p=0.9, top_k=0, repetition_penalty=1.0, max_new_tokens=64, seed=5
)


def test_every_server_kind_is_in_the_preset_schema():
    assert set(SERVERS) == set(ModelSpec.model_fields["server"].annotation.__args__)


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("vllm", {"top_k": -1, "repetition_penalty": 1.0, "min_p": 0.0}),
        ("sglang", {"top_k": -1, "repetition_penalty": 1.0, "min_p": 0.0}),
        ("llama.cpp", {"top_k": 0, "repeat_penalty": 1.0, "min_p": 0.0}),
        ("tgi", {"repetition_penalty": 1.0}),
        ("openai", {}),
    ],
)
def test_defaults_the_playground_does_not_have_are_switched_off(server, expected):
    sent = sent_params(server, SAMPLED, 5)
    assert sent.standard == {"max_tokens": 64, "temperature": 0.7, "seed": 5, "top_p": 0.9}
    assert sent.extra == expected


def test_transformers_serve_takes_them_as_a_generation_config():
    sent = sent_params("transformers", SAMPLED.model_copy(update={"top_k": 20, "repetition_penalty": 1.3}), 5)
    assert json.loads(sent.extra["generation_config"]) == {
        "do_sample": True,
        "temperature": 0.7,
        "top_k": 20,
        "top_p": 0.9,
        "repetition_penalty": 1.3,
        "max_new_tokens": 64,
    }
    assert sent.standard["seed"] == 5


def test_greedy_is_temperature_zero_everywhere_and_the_penalty_is_still_sent():
    greedy = SAMPLED.model_copy(update={"do_sample": False, "repetition_penalty": 1.1, "top_k": 40})
    for server in ("vllm", "sglang", "llama.cpp", "transformers"):
        sent = sent_params(server, greedy, 9)
        assert sent.standard["temperature"] == 0.0 and sent.standard["seed"] == 9
        assert 1.1 in sent.extra.values() or json.loads(sent.extra["generation_config"])["do_sample"] is False
    assert sent_params("llama.cpp", greedy, 9).extra == {"top_k": 40, "repeat_penalty": 1.1, "min_p": 0.0}


def test_tgi_leaves_out_top_p_one_which_it_refuses_and_which_is_its_default():
    assert "top_p" not in sent_params("tgi", SAMPLED.model_copy(update={"top_p": 1.0}), 1).standard
    assert sent_params("tgi", SAMPLED, 1).standard["top_p"] == 0.9


@pytest.mark.parametrize(
    ("server", "update", "message"),
    [
        ("tgi", {"top_k": 40}, "a TGI-compatible server at http://h/v1 cannot take top_k (40)"),
        ("openai", {"top_k": 5}, "the OpenAI API at http://h/v1 cannot take top_k (5)"),
        (
            "openai",
            {"repetition_penalty": 1.2},
            "the OpenAI API at http://h/v1 cannot take repetition_penalty (1.2)",
        ),
    ],
)
def test_what_a_server_cannot_take_is_refused_with_what_to_do(server, update, message):
    with pytest.raises(
        PlaygroundError, match="set (top_k to 0|repetition_penalty to 1.0) for this preset"
    ) as err:
        sent_params(server, SAMPLED.model_copy(update=update), 1, "http://h/v1")
    assert str(err.value).startswith(message)


def test_what_the_server_reports_goes_into_the_revision_within_its_column():
    llama = described("smollm2-q4", {"meta": {"ftype": "Q4_1"}, "aliases": ["smollm2-q4"]})
    assert llama.revision("http://h/v1") == "smollm2-q4@http://h/v1 (quantization=Q4_1)"
    gguf = described("org/repo:model.Q8_0.gguf", {})
    assert gguf.revision("http://h/v1") == "org/repo:model.Q8_0.gguf@http://h/v1 (file=model.Q8_0.gguf)"
    vllm = described("my-name", {"root": "/models/Deci/DeciLM-7B-instruct"})
    assert vllm.revision("http://h/v1") == "my-name@http://h/v1 (root=/models/Deci/DeciLM-7B-instruct)"
    long = ServedModel("x" * 300).revision("http://h/v1")
    assert len(long) == 256 and long.endswith("…")
