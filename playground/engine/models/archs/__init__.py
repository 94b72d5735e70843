"""Native implementations of architectures that transformers does not ship (no remote code needed).

`register_native_architectures()` makes `AutoConfig` / `AutoModelForCausalLM` resolve them:

* `deci` (Deci/DeciLM-7B, -instruct) -> `DeciLMConfig`, `DeciLMForCausalLM`
* `openlm` (TRI-ML/DCLM-1B, DCLM-1B-IT) -> `OpenLMConfig`, `OpenLMForCausalLM`
"""

from transformers import AutoConfig, AutoModelForCausalLM

from .decilm import DeciLMConfig, DeciLMForCausalLM, DeciLMModel
from .openlm import OpenLMConfig, OpenLMForCausalLM, OpenLMModel

NATIVE_ARCHITECTURES = {
    DeciLMConfig.model_type: (DeciLMConfig, DeciLMForCausalLM),
    OpenLMConfig.model_type: (OpenLMConfig, OpenLMForCausalLM),
}


def register_native_architectures() -> None:
    """Register the native configs and causal-LM classes with the transformers Auto classes (idempotent)."""
    for model_type, (config_class, model_class) in NATIVE_ARCHITECTURES.items():
        AutoConfig.register(model_type, config_class, exist_ok=True)
        AutoModelForCausalLM.register(config_class, model_class, exist_ok=True)


__all__ = [
    "NATIVE_ARCHITECTURES",
    "DeciLMConfig",
    "DeciLMForCausalLM",
    "DeciLMModel",
    "OpenLMConfig",
    "OpenLMForCausalLM",
    "OpenLMModel",
    "register_native_architectures",
]
