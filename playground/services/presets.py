"""Preset use cases: list them, show the exact prompt a model receives, save tuned copies as user presets."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import yaml

from playground.engine.generation.params import parse_params
from playground.engine.models import embedded
from playground.engine.models.presets import NAME_RE, ModelSpec, Preset, PresetRegistry, load_preset_file
from playground.engine.models.templates import Message, chat_messages, resolve_system
from playground.errors import PlaygroundError


class PresetService:
    def __init__(
        self, registry: PresetRegistry, user_dir: Path, cache_root: Path, batching=None, device: str = ""
    ):
        self.registry = registry
        self.batching = batching or (lambda preset: None)  # preset → the engine's probe result, once probed
        self.device = device  # where local models run ("cpu", "cuda", …)
        self.user_dir = user_dir
        self.cache_root = cache_root
        self._tokenizers: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Preset:
        return self.registry.get(name)

    def all(self) -> list[Preset]:
        return list(self.registry)

    def __iter__(self):
        return iter(self.registry)

    @property
    def unavailable(self) -> dict[str, str]:
        """Presets that cannot run here, with the reason (e.g. too big for a ZeroGPU slot)."""
        return self.registry.unavailable

    def names(self) -> list[str]:
        return self.registry.names()

    def batching_of(self, name: str) -> dict | None:
        return self.batching(self.registry.get(name))

    def list(self) -> list[dict[str, Any]]:
        """Every preset's summary; ``source`` is its file relative to its presets folder (no server
        paths), ``applied_quantization`` what the loader really does to the weights."""
        return [
            p.summary()
            | {
                "source": self.source_label(p),
                "user_preset": self._is_user(p),
                "batching": self.batching(p),
                "applied_quantization": applied_quantization(p.model),
            }
            for p in self.registry
        ]

    def source_label(self, preset: Preset) -> str:
        """The preset's file relative to its folder: ``x.yaml``, or ``user presets/x.yaml``."""
        if not preset.source:
            return ""
        name = Path(preset.source).name
        return f"user presets/{name}" if self._is_user(preset) else name

    def render_prompt(
        self, name: str, messages: list[Message], system_prompt: str | None = None
    ) -> dict[str, Any]:
        """The exact string the model receives, and its token count when the tokenizer is at hand."""
        preset = self.registry.get(name)
        system = resolve_system(messages, system_prompt, preset.system_prompt)
        if preset.template.kind == "server":
            payload = json.dumps(chat_messages(messages, system), ensure_ascii=False, indent=1)
            note = f"rendered by the server at {preset.model.base_url}: these are the messages sent"
            return {"preset": name, "prompt": payload, "tokens": None, "note": note}
        tokenizer, note = self._tokenizer(preset)
        prompt = preset.template.render(messages, system, tokenizer=tokenizer)
        tokens = len(tokenizer(prompt)["input_ids"]) if tokenizer is not None else None
        return {"preset": name, "prompt": prompt, "tokens": tokens, "note": note}

    def save_user_preset(
        self,
        base: str,
        name: str,
        display_name: str,
        params: dict[str, Any],
        system_prompt: str | None = None,
    ) -> Preset:
        """Write a copy of ``base`` with new parameters to the user folder and make it selectable."""
        source = self.registry.get(base)
        if not NAME_RE.match(name or ""):
            raise PlaygroundError(
                f"preset name {name!r} must be lower-case letters, digits, '.', '_' or '-' (e.g. tulu-creative)"
            )
        if name in self.registry and not self._is_user(self.registry.get(name)):
            raise PlaygroundError(f"{name!r} is a built-in preset; choose another name")
        data = source.model_dump(mode="json")
        data.update(
            name=name,
            display_name=display_name or f"{source.display_name} ({name})",
            params=parse_params(params, base=source.params).model_dump(),
        )
        if system_prompt is not None:
            data["system_prompt"] = system_prompt
        self.user_dir.mkdir(parents=True, exist_ok=True)
        path = self.user_dir / f"{name}.yaml"
        scratch = path.with_suffix(".yaml.tmp")
        scratch.write_text(
            f"# Saved from the playground, based on preset {base!r}.\n"
            + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        )
        try:
            preset = load_preset_file(scratch).model_copy(update={"source": str(path)})
        except PlaygroundError:
            scratch.unlink(missing_ok=True)
            raise
        scratch.replace(path)
        self.registry.add(preset.model_copy(update={"file_hash": load_preset_file(path).file_hash}))
        return self.registry.get(name)

    def _is_user(self, preset: Preset) -> bool:
        return bool(preset.source) and Path(preset.source).resolve().parent == self.user_dir.resolve()

    def _tokenizer(self, preset: Preset) -> tuple[Any, str]:
        spec = preset.model
        if spec.remote:
            return None, f"served by {spec.base_url}: token count unavailable here"
        key = (spec.id, spec.revision)
        with self._lock:
            if key in self._tokenizers:
                return self._tokenizers[key], ""
        from transformers import AutoTokenizer

        try:
            if spec.loader == "embedded-gguf":
                folder, _record = embedded.converted_dir(self.cache_root)
                tokenizer = AutoTokenizer.from_pretrained(folder)
            elif spec.loader == "peft-adapter":
                from peft import PeftConfig

                base = PeftConfig.from_pretrained(spec.id, revision=spec.revision).base_model_name_or_path
                tokenizer = AutoTokenizer.from_pretrained(base)
            else:
                tokenizer = AutoTokenizer.from_pretrained(spec.id, revision=spec.revision)
        except Exception as exc:  # noqa: BLE001 - the prompt is still shown, without a token count
            if preset.template.kind == "tokenizer":
                raise PlaygroundError(
                    f"the tokenizer of {spec.id} is needed for its chat template: {exc}"
                ) from None
            return None, f"token count unavailable: the tokenizer of {spec.id} is not in the local cache"
        with self._lock:
            self._tokenizers[key] = tokenizer
        return tokenizer, ""


_BNB = {"8bit": "8-bit LLM.int8 (bitsandbytes)", "4bit-nf4": "4-bit NF4 (bitsandbytes)"}
_GPTQ_BRANCH = re.compile(r"gptq-(\d+)bit-(-?\d+)g(?:-actorder_(True|False))?", re.IGNORECASE)


def applied_quantization(spec: ModelSpec, revision: str | None = None) -> str:
    """How the loader really quantises the weights (a GPTQ checkpoint is quantised already, whatever
    the ``quantization`` field says: its bits come from the checkpoint or its branch name)."""
    if spec.remote:
        return "as the server runs it"
    if spec.loader == "gptq":
        return "GPTQ " + _gptq_layout(spec, revision or spec.revision)
    if spec.quantization == "none":
        return "none"
    words = _BNB[spec.quantization]
    if spec.quantization == "4bit-nf4":
        double = ", double quant" if spec.bnb_4bit_double_quant else ""
        words = words[:-1] + f"{double}, {spec.bnb_4bit_compute_dtype} compute)"
    return f"{words} on the base model" if spec.loader == "peft-adapter" else words


def _gptq_layout(spec: ModelSpec, revision: str) -> str:
    """ "4-bit, group 128, act-order" from the checkpoint's quantisation config when it is in the local
    Hub cache, else from a branch name like ``gptq-4bit-32g-actorder_True``."""
    config = _cached_gptq_config(spec.id, revision)
    if config:
        bits, group, act = config.get("bits"), config.get("group_size"), config.get("desc_act")
    else:
        match = _GPTQ_BRANCH.search(revision)
        if not match:
            return "(bits and group size as in the checkpoint)"
        bits, group, act = int(match[1]), int(match[2]), match[3] == "True" if match[3] else None
    parts = [f"{bits}-bit" if bits else None, f"group {group}" if group and group > 0 else None]
    parts.append("act-order" if act else None)
    return ", ".join(p for p in parts if p) or "(as in the checkpoint)"


def _cached_gptq_config(repo: str, revision: str) -> dict | None:
    from huggingface_hub import try_to_load_from_cache

    for filename in ("quantize_config.json", "config.json"):
        try:
            path = try_to_load_from_cache(repo, filename, revision=revision)
        except Exception:  # noqa: BLE001 - a malformed id or cache: the branch name decides
            path = None
        if isinstance(path, str):
            try:
                data = json.loads(Path(path).read_text())
            except (OSError, ValueError):
                continue
            config = data.get("quantization_config", data) if filename == "config.json" else data
            if isinstance(config, dict) and config.get("bits"):
                return config
    return None
