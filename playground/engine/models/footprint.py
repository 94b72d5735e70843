"""Estimate how much memory a model will take before loading it (from files already on disk)."""

from __future__ import annotations

import json
from pathlib import Path

from playground.engine.models.device import DeviceInfo
from playground.engine.models.loader import LoadRequest

BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
QUANT_BYTES = {"8bit": 1.0, "4bit-nf4": 0.55}


def estimate_bytes(request: LoadRequest, device: DeviceInfo, local_dir: Path | None = None) -> int:
    """Weights size at the dtype/quantisation they will be loaded with; 0 when unknown."""
    folder = local_dir or _snapshot_dir(request)
    if folder is None:
        return 0
    stored = _weights_bytes(folder)
    if not stored:
        return 0
    if request.loader == "gptq":
        return stored
    config = _read_json(folder / "config.json")
    stored_bpp = BYTES.get(str(config.get("torch_dtype") or config.get("dtype") or "float32"), 4)
    params = stored / stored_bpp
    if request.quantization in QUANT_BYTES:
        return int(params * QUANT_BYTES[request.quantization])
    target = device.resolve(request.dtype)
    return int(params * BYTES.get(str(target).removeprefix("torch."), 4))


def _snapshot_dir(request: LoadRequest) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    if request.loader == "peft-adapter":
        adapter = try_to_load_from_cache(request.model_id, "adapter_config.json", revision=request.revision)
        if not isinstance(adapter, str):
            return None
        base = _read_json(Path(adapter)).get("base_model_name_or_path")
        found = try_to_load_from_cache(base, "config.json") if base else None
    else:
        found = try_to_load_from_cache(request.model_id, "config.json", revision=request.revision)
    return Path(found).parent if isinstance(found, str) else None


def _weights_bytes(folder: Path) -> int:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        total = _read_json(index).get("metadata", {}).get("total_size")
        if total:
            return int(total)
    return sum(f.stat().st_size for f in folder.glob("*.safetensors"))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
