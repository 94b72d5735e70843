"""What a served answer sends: every stored sampling parameter, under each kind of server's own name.

A stored turn must say what ran, so nothing is left to a server's defaults: every parameter the
playground stores (temperature, top_p, top_k, repetition_penalty, max_new_tokens, seed) is sent
explicitly, and samplers a server applies by default that the playground does not have are switched
off (llama.cpp's ``min_p`` 0.05; vLLM and SGLang fill unset values from the model's
``generation_config.json``). A value a server cannot take is refused here, before the request, with
what to do; it is never dropped silently. Greedy answers (``do_sample`` off or temperature 0) send
temperature 0, which every one of these servers reads as greedy decoding.

================  ==================================================================================
server            fields (beyond ``max_tokens``, ``temperature``, ``top_p`` and ``seed``)
================  ==================================================================================
``vllm``          ``top_k`` (-1 = off), ``repetition_penalty``, ``min_p`` 0
``sglang``        ``top_k`` (-1 = off), ``repetition_penalty``, ``min_p`` 0
``llama.cpp``     ``top_k`` (0 = off), ``repeat_penalty``, ``min_p`` 0 (its server's own names)
``transformers``  ``generation_config``: ``do_sample``, ``temperature``, ``top_k``, ``top_p``,
                  ``repetition_penalty``, ``max_new_tokens`` as a JSON GenerationConfig (``transformers
                  serve`` refuses unknown top-level fields)
``tgi``           ``repetition_penalty``; no ``top_k`` (refused unless 0); ``top_p`` 1.0 (no nucleus
                  cut) is not sent because TGI refuses 1.0 and its default is exactly that
``openai``        neither ``top_k`` nor ``repetition_penalty`` (refused unless 0 / 1.0)
================  ==================================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from playground.engine.generation.params import GenerationParams
from playground.errors import PlaygroundError

SERVERS = ("vllm", "sglang", "llama.cpp", "transformers", "tgi", "openai")
LABELS = {
    "vllm": "vLLM",
    "sglang": "SGLang",
    "llama.cpp": "llama.cpp's server",
    "transformers": "transformers serve",
    "tgi": "a TGI-compatible server",
    "openai": "the OpenAI API",
}


@dataclass(frozen=True)
class SentParams:
    """The request's sampling fields: OpenAI's own (``standard``) and the server's extra body fields."""

    standard: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {**self.standard, **self.extra}


def sent_params(server: str, params: GenerationParams, seed: int, where: str = "") -> SentParams:
    """Every stored sampling parameter as ``server`` takes it; PlaygroundError for one it cannot take."""
    sampling = params.do_sample and params.temperature > 0
    temperature = params.temperature if sampling else 0.0
    standard = {"max_tokens": params.max_new_tokens, "temperature": temperature, "seed": seed}
    standard["top_p"] = params.top_p
    penalty = params.repetition_penalty
    if server in ("vllm", "sglang"):
        return SentParams(
            standard, {"top_k": params.top_k or -1, "repetition_penalty": penalty, "min_p": 0.0}
        )
    if server == "llama.cpp":
        return SentParams(standard, {"top_k": params.top_k, "repeat_penalty": penalty, "min_p": 0.0})
    if server == "transformers":
        config = {
            "do_sample": sampling,
            "temperature": temperature if sampling else None,
            "top_k": params.top_k,
            "top_p": params.top_p,
            "repetition_penalty": penalty,
            "max_new_tokens": params.max_new_tokens,
        }
        return SentParams(standard, {"generation_config": json.dumps(config)})
    label = f"{LABELS.get(server, server)}{f' at {where}' if where else ''}"
    if params.top_k:
        raise PlaygroundError(
            f"{label} cannot take top_k ({params.top_k}): its OpenAI-compatible API has no top-k sampling; "
            "set top_k to 0 for this preset, or serve the model with vLLM, SGLang or llama.cpp"
        )
    if server == "tgi":
        if params.top_p >= 1.0:
            del standard["top_p"]  # TGI refuses 1.0; left out, it applies no nucleus cut, which 1.0 means
        return SentParams(standard, {"repetition_penalty": penalty})
    if penalty != 1.0:
        raise PlaygroundError(
            f"{label} cannot take repetition_penalty ({penalty}): its API has no repetition penalty "
            "(frequency_penalty is another rule); set repetition_penalty to 1.0 for this preset"
        )
    return SentParams(standard)
