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


def test_greedy_when_sampling_off_or_temperature_zero():
    from playground.engine.sampling import RowRepetitionPenalty, RowSeededSampler, processors

    def kinds(params):
        return [type(p).__name__ for p in processors(params, [1], [0])]

    assert kinds(GenerationParams(do_sample=False)) == [] and kinds(GenerationParams(temperature=0.0)) == []
    assert kinds(GenerationParams(temperature=0.7, top_k=40)) == [
        "TemperatureLogitsWarper",
        "TopKLogitsWarper",
        RowSeededSampler.__name__,
    ]
    assert kinds(GenerationParams(do_sample=False, repetition_penalty=1.2)) == [RowRepetitionPenalty.__name__]


def test_the_repetition_penalty_ignores_left_padding():
    import torch

    from playground.engine.sampling import RowRepetitionPenalty

    ids = torch.tensor([[0, 0, 5, 6], [7, 5, 6, 8]])  # row 0 is left-padded with token 0
    scores = torch.ones(2, 10)
    out = RowRepetitionPenalty(2.0, [2, 0])(ids, scores.clone())
    assert out[0, 0] == 1.0 and out[0, 5] == 0.5 and out[0, 6] == 0.5  # the pad token is not penalised
    assert out[1, 7] == 0.5 and out[1, 0] == 1.0
