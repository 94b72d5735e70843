"""DeciLM (`Deci/DeciLM-7B`, `-instruct`) as an ordinary transformers model, no remote code.

DeciLM is Llama with a different number of key/value heads in each layer (`num_key_value_heads_per_layer`)
and dynamic-NTK RoPE. Everything but those two points is transformers' own Llama: the per-layer head count
is expressed with transformers' heterogeneous `per_layer_config`, so each layer is a stock `LlamaDecoderLayer`
(and `DynamicCache` / `StaticCache` size each layer from it). The RoPE is computed from each row's current
length on every call instead of being cached on the module, so an input is never affected by an earlier,
longer one.

Note: as the model is heterogeneous, `config.num_key_value_heads` raises transformers'
`AmbiguousGlobalPerLayerAttributeError`; read `config.num_key_value_heads_per_layer` instead.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.llama.modeling_llama import (
    LlamaDecoderLayer,
    LlamaForCausalLM,
    LlamaModel,
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
)


class DeciLMConfig(LlamaConfig):
    """`LlamaConfig` plus `num_key_value_heads_per_layer`; reads the hub `config.json` as it is.

    The hub file's `auto_map` (pointing at remote code that does not run on transformers 5) is dropped, and its
    legacy `rope_scaling` / absent `rope_theta` are turned into `rope_parameters` by `LlamaConfig`.
    """

    model_type = "deci"

    num_key_value_heads_per_layer: list[int] | None = None

    def __post_init__(self, **kwargs):
        kwargs.pop("auto_map", None)
        kwargs.pop("per_layer_config", None)  # saved copy of what is derived from the head counts below
        super().__post_init__(**kwargs)
        heads = self.num_key_value_heads_per_layer or [self.num_key_value_heads] * self.num_hidden_layers
        heads = [int(kv) for kv in heads]
        if len(heads) != self.num_hidden_layers or any(
            kv < 1 or self.num_attention_heads % kv for kv in heads
        ):
            raise ValueError(
                f"num_key_value_heads_per_layer={heads} needs {self.num_hidden_layers} entries, "
                f"each dividing num_attention_heads={self.num_attention_heads}"
            )
        self.num_key_value_heads_per_layer = heads
        self.per_layer_config = {i: {"num_key_value_heads": kv} for i, kv in enumerate(heads)}


class DeciLMRotaryEmbedding(LlamaRotaryEmbedding):
    """Llama RoPE whose dynamic-NTK base follows each row's current length (stateless).

    For a row of current length `L > max_position_embeddings` all its positions use
    `base' = theta * (factor * L / max_pos - (factor - 1)) ** (d / (d - 2))`, as DeciLM's reference; with left
    padding `L` counts the row's real tokens only, so a padded row matches its unpadded run.
    """

    @torch.no_grad()
    def forward(self, x, position_ids):
        if self.rope_type != "dynamic":
            return super().forward(x, position_ids)
        inv_freq = self.original_inv_freq
        row_len = position_ids.amax(dim=-1, keepdim=True) + 1  # [batch, 1]
        if bool((row_len > self.original_max_seq_len).any()):
            inv_freq, _ = ROPE_INIT_FUNCTIONS["dynamic"](self.config, x.device, seq_len=row_len)
        inv_freq = inv_freq.to(device=x.device, dtype=torch.float).reshape(-1, 1, inv_freq.shape[-1])
        freqs = position_ids[..., None].float() * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


class DeciLMModel(LlamaModel):
    """`LlamaModel` whose layers each get their own KV-head count; `forward` is Llama's."""

    config_class = DeciLMConfig

    def __init__(self, config: DeciLMConfig):
        super(LlamaModel, self).__init__(config)  # PreTrainedModel init; the modules differ from Llama's
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList(
            [LlamaDecoderLayer(config.per_layer_config[i], i) for i in range(config.num_hidden_layers)]
        )
        for layer in self.layers:
            # the layer config only sized the k/v projections; attention reads the attention implementation
            # from the model config at run time, so `set_attn_implementation` reaches every layer
            layer.self_attn.config = config
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = DeciLMRotaryEmbedding(config=config)
        self.gradient_checkpointing = False
        self.post_init()


class DeciLMForCausalLM(LlamaForCausalLM):
    """`LlamaForCausalLM` over a `DeciLMModel`; weight names are those of the hub checkpoint."""

    config_class = DeciLMConfig

    def __init__(self, config: DeciLMConfig):
        super(LlamaForCausalLM, self).__init__(config)
        self.model = DeciLMModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()


__all__ = ["DeciLMConfig", "DeciLMForCausalLM", "DeciLMModel"]
