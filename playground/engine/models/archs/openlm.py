"""OpenLM (`TRI-ML/DCLM-1B`, `DCLM-1B-IT`) as an ordinary transformers model, no `open_lm` package.

Pre-norm transformer with gain-only LayerNorms, a LayerNorm over the whole q and k vectors before the head
split (qk-norm), a fused `in_proj` (q, k, v = its three row blocks), GPT-NeoX rotary with base 10000 and a
SwiGLU whose fused `w12` holds gate then up. Module names follow the open_lm checkpoints; rotary, attention
kernels, cache and masks are transformers' Llama ones. The per-layer `attention.pos_embed.inv_freq` buffers
of the checkpoints are constants (`10000^(-2j/head_dim)`) and are skipped on load: one float32 rotary table
is computed for the whole model instead.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedConfig
from transformers.generation import GenerationMixin
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_rope_utils import RopeParameters
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.models.llama.modeling_llama import (
    LlamaForCausalLM,
    LlamaModel,
    LlamaRotaryEmbedding,
    apply_rotary_pos_emb,
    eager_attention_forward,
)


class OpenLMConfig(PreTrainedConfig):
    """open_lm `Params` under their own names; reads both hub layouts of DCLM's `config.json`.

    Accepts the current flat layout (`norm_type`) and the first-upload one (`params_args_dict` wrapper,
    `model_norm`); it is saved in the flat layout. The `"model"` registry name is kept but not needed.
    """

    model_type = "openlm"
    keys_to_ignore_at_inference = ["past_key_values"]
    attribute_map = {
        "hidden_size": "dim",
        "num_hidden_layers": "n_layers",
        "num_attention_heads": "n_heads",
        "max_position_embeddings": "seq_len",
        "tie_word_embeddings": "weight_tying",
    }

    dim: int = 2048
    n_layers: int = 24
    n_heads: int = 16
    vocab_size: int = 50432
    seq_len: int = 2048
    norm_eps: float = 1e-5
    norm_type: str = "gain_only_lp_layer_norm"
    apply_qk_norm: bool = True
    ffn_type: str = "swiglu_torch"
    positional_embedding_type: str = "rotary"
    post_embed_norm: bool = False
    weight_tying: bool = False
    rope_parameters: RopeParameters | dict | None = None
    initializer_range: float = 0.02
    use_cache: bool = True
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None

    def __post_init__(self, **kwargs):
        # first-upload layout: everything inside `params_args_dict`, and `model_norm` for `norm_type`
        given = {**(kwargs.pop("params_args_dict", None) or {}), **kwargs}
        if "model_norm" in given:
            given.setdefault("norm_type", given.pop("model_norm"))
        for key in [key for key in given if key in self.__dataclass_fields__]:
            setattr(self, key, given.pop(key))
        super().__post_init__(**given)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def intermediate_size(self) -> int:
        """open_lm's SwiGLU width: 8/3 * dim rounded up to a multiple of 256 (2048 -> 5632)."""
        return 256 * ((int(8 * self.dim / 3) + 255) // 256)

    def check_supported(self) -> None:
        """Raise for open_lm options this implementation does not cover (none of them is used by DCLM)."""
        unsupported = {
            "norm_type": self.norm_type not in ("gain_only_lp_layer_norm", "gain_only_layer_norm"),
            "ffn_type": self.ffn_type not in ("swiglu_torch", "swiglu"),
            "positional_embedding_type": self.positional_embedding_type != "rotary",
            "post_embed_norm": bool(self.post_embed_norm),
            "attn_activation": getattr(self, "attn_activation", None) is not None,
            "attn_seq_scalar": getattr(self, "attn_seq_scalar", None) is not None,
            "moe_freq": bool(getattr(self, "moe_freq", 0)),
        }
        bad = [f"{name}={getattr(self, name)!r}" for name, is_bad in unsupported.items() if is_bad]
        if bad:
            raise NotImplementedError(f"OpenLM options not supported natively: {', '.join(bad)}")


class OpenLMLayerNorm(nn.LayerNorm):
    """open_lm `gain_only_(lp_)layer_norm`: LayerNorm with a gain and no bias."""

    def __init__(self, dim: int, eps: float):
        super().__init__(dim, eps=eps, bias=False)


class OpenLMAttention(nn.Module):
    """Causal MHA: fused `in_proj`, qk-norm over the full q/k width before the head split, rotary, `out_proj`."""

    def __init__(self, config: OpenLMConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.num_key_value_groups = 1
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = 0.0
        self.is_causal = True
        self.in_proj = nn.Linear(config.dim, 3 * config.dim, bias=False)
        self.out_proj = nn.Linear(config.dim, config.dim, bias=False)
        self.q_norm = OpenLMLayerNorm(config.dim, config.norm_eps) if config.apply_qk_norm else nn.Identity()
        self.k_norm = OpenLMLayerNorm(config.dim, config.norm_eps) if config.apply_qk_norm else nn.Identity()

    def forward(
        self, hidden_states, position_embeddings, attention_mask=None, past_key_values=None, **kwargs
    ):
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query, key, value = self.in_proj(hidden_states).chunk(3, dim=-1)
        query = self.q_norm(query).view(hidden_shape).transpose(1, 2)
        key = self.k_norm(key).view(hidden_shape).transpose(1, 2)
        value = value.reshape(hidden_shape).transpose(1, 2)
        query, key = apply_rotary_pos_emb(query, key, *position_embeddings)
        if past_key_values is not None:
            key, value = past_key_values.update(key, value, self.layer_idx)
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self, query, key, value, attention_mask, dropout=0.0, scaling=self.scaling, **kwargs
        )
        attn_output = self.out_proj(attn_output.reshape(*input_shape, -1).contiguous())
        return attn_output, attn_weights


class OpenLMSwiGLU(nn.Module):
    """`w3(silu(gate) * up)` with `gate, up = w12(x).chunk(2)`."""

    def __init__(self, config: OpenLMConfig):
        super().__init__()
        self.w12 = nn.Linear(config.dim, 2 * config.intermediate_size, bias=False)
        self.w3 = nn.Linear(config.intermediate_size, config.dim, bias=False)

    def forward(self, x):
        gate, up = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * up)


class OpenLMDecoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: OpenLMConfig, layer_idx: int):
        super().__init__()
        self.attention = OpenLMAttention(config, layer_idx)
        self.feed_forward = OpenLMSwiGLU(config)
        self.attention_norm = OpenLMLayerNorm(config.dim, config.norm_eps)
        self.ffn_norm = OpenLMLayerNorm(config.dim, config.norm_eps)

    def forward(
        self, hidden_states, attention_mask=None, position_embeddings=None, past_key_values=None, **kwargs
    ):
        attn_output, _ = self.attention(
            self.attention_norm(hidden_states), position_embeddings, attention_mask, past_key_values, **kwargs
        )
        hidden_states = hidden_states + attn_output
        return hidden_states + self.feed_forward(self.ffn_norm(hidden_states))


class OpenLMPreTrainedModel(PreTrainedModel):
    config_class = OpenLMConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["OpenLMDecoderLayer"]
    _skip_keys_device_placement = ["past_key_values"]
    _keys_to_ignore_on_load_unexpected = {r"attention\.pos_embed\.inv_freq$"}
    _input_embed_layer = "tok_embeddings"
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    _can_record_outputs = {"hidden_states": OpenLMDecoderLayer, "attentions": OpenLMAttention}


class OpenLMModel(OpenLMPreTrainedModel):
    """open_lm `Transformer`: `tok_embeddings`, `layers`, final `norm`, and the `output` head the LM applies.

    The forward pass (embed, rotary table, causal mask, layers, final norm) is `LlamaModel.forward` itself.
    """

    def __init__(self, config: OpenLMConfig):
        super().__init__(config)
        config.check_supported()
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList([OpenLMDecoderLayer(config, i) for i in range(config.n_layers)])
        self.norm = OpenLMLayerNorm(config.dim, config.norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config=config)
        self.output = nn.Linear(config.dim, config.vocab_size, bias=False)
        self.gradient_checkpointing = False
        self.post_init()

    @property
    def embed_tokens(self) -> nn.Embedding:
        return self.tok_embeddings

    forward = LlamaModel.forward


class OpenLMForCausalLM(OpenLMPreTrainedModel, GenerationMixin):
    """Causal LM over `OpenLMModel`; `forward` is `LlamaForCausalLM.forward` with `model.output` as LM head."""

    _tied_weights_keys = {"model.output.weight": "model.tok_embeddings.weight"}  # only if `weight_tying`

    def __init__(self, config: OpenLMConfig):
        super().__init__(config)
        self.model = OpenLMModel(config)
        self.vocab_size = config.vocab_size
        self.post_init()

    @property
    def lm_head(self) -> nn.Linear:
        return self.model.output

    def get_output_embeddings(self):
        return self.model.output

    def set_output_embeddings(self, new_embeddings):
        self.model.output = new_embeddings

    forward = LlamaForCausalLM.forward


__all__ = ["OpenLMConfig", "OpenLMForCausalLM", "OpenLMModel"]
