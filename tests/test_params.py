import pytest

from playground.engine.generation.params import GenerationParams, parse_params
from playground.errors import PlaygroundError


def test_overrides_keep_base_values():
    base = GenerationParams(temperature=0.1, top_k=40, max_new_tokens=100)
    params = parse_params({"temperature": 0.9}, base=base)
    assert (params.temperature, params.top_k, params.max_new_tokens) == (0.9, 40, 100)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"seed": -5}, "seed"),
        ({"temprature": 1.0}, "temprature"),
    ],
)
def test_bad_values_name_the_field(raw, field):
    with pytest.raises(PlaygroundError, match=f"invalid generation parameters: {field}"):
        parse_params(raw)


def test_context_limit_is_checked_with_numbers():
    params = GenerationParams(max_new_tokens=500)
    params.check_context(100, 1000)
    with pytest.raises(PlaygroundError, match=r"prompt \(600 tokens\) \+ max_new_tokens \(500\).*1000"):
        params.check_context(600, 1000)
