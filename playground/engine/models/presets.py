"""Presets: one YAML file per model card, validated at start-up.

A broken file fails with the file name, the field and what was wrong, e.g.
``presets/tulu.yaml: template.user: must contain {content} exactly once``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from playground.engine.generation.params import GenerationParams
from playground.engine.models.templates import Template
from playground.errors import PlaygroundError

Loader = Literal["embedded-gguf", "transformers", "peft-adapter", "gptq"]
Quantization = Literal["none", "8bit", "4bit-nf4"]
DType = Literal["auto", "bfloat16", "float16", "float32"]
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MAX_NAME = 100


class ModelSpec(BaseModel):
    """Where the weights come from and how to load them."""

    model_config = ConfigDict(extra="forbid")

    id: str
    revision: str = "main"
    revisions: list[str] = Field(default_factory=list, description="other selectable revisions (branches)")
    loader: Loader = "transformers"
    dtype: DType = "auto"
    quantization: Quantization = "none"
    quantization_choices: list[Quantization] = Field(default_factory=list)
    bnb_4bit_compute_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    bnb_4bit_double_quant: bool = True
    trust_remote_code: bool = False
    rope_scaling: dict[str, Any] | None = None
    context_length: int | None = Field(None, ge=1)
    pad_token: Literal["eos"] | None = None
    gguf_file: str | None = None
    # Served elsewhere: an OpenAI-compatible server (engine/backends/remote.py) instead of loading weights here.
    backend: Literal["local", "openai-compatible"] = "local"
    base_url: str | None = Field(None, description="the server's API root, e.g. http://gpu-box:8000/v1")
    served_model: str | None = Field(None, description="the model name the server serves it under")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    server: Literal["vllm", "sglang", "llama.cpp", "transformers", "tgi", "openai"] = Field(
        "vllm", description="which server: decides the names the sampling parameters are sent under"
    )

    @model_validator(mode="after")
    def _remote_needs_a_server(self) -> ModelSpec:
        if self.backend == "openai-compatible":
            missing = [f for f in ("base_url", "served_model") if not getattr(self, f)]
            if missing:
                raise ValueError(f"backend openai-compatible needs {' and '.join(missing)}")
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError(f"base_url must start with http:// or https:// (got {self.base_url!r})")
        return self

    @property
    def remote(self) -> bool:
        return self.backend == "openai-compatible"

    def all_revisions(self) -> list[str]:
        return [self.revision, *[r for r in self.revisions if r != self.revision]]

    def all_quantizations(self) -> list[str]:
        return [self.quantization, *[q for q in self.quantization_choices if q != self.quantization]]


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    display_name: str
    card_url: str = ""
    license: str = ""
    license_note: str = ""
    gated: bool = False
    model: ModelSpec
    template: Template
    system_prompt: str = ""
    stop: list[str] = Field(default_factory=list)
    params: GenerationParams = Field(default_factory=GenerationParams)
    identity_terms: list[str] = Field(
        default_factory=list, description="names/makers that reveal the model in an answer (arena)"
    )
    file_hash: str = Field("", exclude=True)
    source: str = Field("", exclude=True)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("must be lower-case letters, digits, '.', '_' or '-'")
        if len(value) > MAX_NAME:  # stored in String(128) columns, which PostgreSQL enforces
            raise ValueError(f"must be at most {MAX_NAME} characters, got {len(value)}")
        return value

    @model_validator(mode="after")
    def _server_template_is_remote(self) -> Preset:
        if self.template.kind == "server" and not self.model.remote:
            raise ValueError(
                "template kind 'server' (the server's own chat template) needs model.backend openai-compatible"
            )
        if self.model.remote and self.template.kind == "tokenizer":
            raise ValueError(
                "a remote model has no local tokenizer: give an explicit template (the card's), or kind 'server'"
            )
        return self

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, value: list[str]) -> list[str]:
        if any(not s for s in value):
            raise ValueError("stop strings must not be empty")
        return value

    def summary(self) -> dict[str, Any]:
        """Metadata shown in the UI and returned by the ``/presets`` endpoint."""
        spec = self.model
        return {
            "name": self.name,
            "display_name": self.display_name,
            "model_id": spec.id,
            "revision": spec.revision,
            "revisions": spec.all_revisions(),
            "loader": spec.loader,
            "dtype": spec.dtype,
            "quantization": spec.quantization,
            "quantizations": spec.all_quantizations(),
            "trust_remote_code": spec.trust_remote_code,
            "rope_scaling": spec.rope_scaling,
            "context_length": spec.context_length,
            "backend": spec.backend,
            "base_url": spec.base_url,
            "served_model": spec.served_model,
            "server": spec.server,
            "card_url": self.card_url,
            "license": self.license,
            "license_note": self.license_note,
            "gated": self.gated,
            "template": self.template.kind,
            "system_prompt": self.system_prompt,
            "stop": self.stop,
            "params": self.params.model_dump(),
            "file_hash": self.file_hash,
            "source": self.source,
        }


def load_preset_file(path: Path) -> Preset:
    raw_bytes = path.read_bytes()
    try:
        data = yaml.safe_load(raw_bytes)
    except yaml.YAMLError as exc:
        raise PlaygroundError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PlaygroundError(f"{path}: expected a mapping of preset fields at the top level")
    data.setdefault("name", path.stem)
    try:
        preset = Preset.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {_message(err)}" for err in exc.errors()
        )
        raise PlaygroundError(f"{path}: {problems}") from None
    return preset.model_copy(update={"file_hash": hashlib.sha256(raw_bytes).hexdigest(), "source": str(path)})


def _message(err: dict[str, Any]) -> str:
    if err["type"] == "missing":
        return "field missing"
    if err["type"] == "extra_forbidden":
        return "unknown field"
    message = err["msg"].removeprefix("Value error, ")
    given = err.get("input")
    return message if isinstance(given, dict | list) else f"{message} (got {given!r})"


class PresetRegistry:
    """All presets by name, from the built-in folder and the user folder (read-only once built)."""

    def __init__(self, presets: Iterable[Preset]):
        self._by_name: dict[str, Preset] = {}
        self.unavailable: dict[str, str] = {}  # name → why it cannot run here (shown, and refused at once)
        for preset in presets:
            if preset.name in self._by_name:
                other = self._by_name[preset.name].source
                raise PlaygroundError(
                    f"preset name {preset.name!r} is used by both {other} and {preset.source}"
                )
            self._by_name[preset.name] = preset

    @classmethod
    def from_folders(cls, *folders: Path) -> PresetRegistry:
        files = [f for folder in folders if folder and folder.is_dir() for f in sorted(folder.glob("*.y*ml"))]
        registry = cls(load_preset_file(f) for f in files)
        if not registry._by_name:
            raise PlaygroundError(f"no presets found in {', '.join(str(f) for f in folders)}")
        return registry

    def get(self, name: str) -> Preset:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name)
            raise PlaygroundError(f"unknown preset {name!r}; known presets: {known}") from None

    def mark_unavailable(self, name: str, reason: str) -> None:
        self.unavailable[name] = reason

    def add(self, preset: Preset) -> None:
        self._by_name[preset.name] = preset

    def remove(self, name: str) -> None:
        self._by_name.pop(name, None)
        self.unavailable.pop(name, None)

    def names(self) -> list[str]:
        return list(self._by_name)

    def __iter__(self):
        return iter(self._by_name.values())

    def __contains__(self, name: str) -> bool:
        return name in self._by_name
