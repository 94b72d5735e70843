"""Which device and dtype a model runs on.

On CUDA: bf16 where supported, else fp16. On CPU: bf16 unless it is clearly slower than fp32 for a
lone answer on this machine (a short matmul benchmark at the engine's lone-decode shape, two rows, run
once per machine and remembered in the cache folder). bf16 is preferred because its matrix products
give a row the same bits whatever the number of rows (two or more), so the engine can batch answers
without changing them (the start-up probe checks it); fp32 products do not, and fp32 models run one
answer at a time. fp16 on CPU falls back to that choice. ``PLAYGROUND_CPU_DTYPE`` overrides.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from playground.engine.threads import isolated

# What vLLM's batch-invariant mode sets on Hopper, so a row's numbers do not depend on the shape of the
# batch around it: one cuBLAS workspace size (no split-K choices that depend on it), no reduced-precision
# reductions, no TF32. Set before CUDA starts; the start-up probe then checks what the device does.
CUDA_ENV = {"CUBLAS_WORKSPACE_CONFIG": ":16:8", "CUBLASLT_WORKSPACE_SIZE": "1"}


def configure_cuda() -> dict:
    """Apply ``CUDA_ENV`` (where not set already) and turn off TF32 and reduced-precision reductions;
    returns what is in effect. Harmless without CUDA; must run before CUDA is first used."""
    for name, value in CUDA_ENV.items():
        os.environ.setdefault(name, value)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    return {name: os.environ[name] for name in CUDA_ENV} | {
        "tf32": False,
        "reduced_precision_reductions": False,
    }


ZEROGPU_SLOT_BYTES = 70 * 1024**3  # a "large" ZeroGPU slot: half of an H200

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


BF16_AT_LEAST = 0.9  # bf16 is chosen unless fp32 is more than ~10% faster for a lone answer


def _time_linear(dtype: torch.dtype, reps: int = 20) -> float:
    layer = torch.nn.Linear(1024, 4096, bias=False).to(dtype)
    x = torch.randn(
        2, 1024, dtype=dtype
    )  # a lone answer's decode pass: two rows (engine/generation/runner.py)
    with torch.inference_mode():
        layer(x)
        start = time.perf_counter()
        for _ in range(reps):
            layer(x)
    return time.perf_counter() - start


def measure_cpu_bf16_speedup(rounds: int = 5) -> float:
    """fp32 time / bf16 time for a lone-decode-shaped linear layer (> 1 means bf16 is faster).

    The two are timed alternately and the best of each is kept, so load from other processes hits
    both alike.
    """
    fp32, bf16 = [], []
    for _ in range(rounds):
        fp32.append(_time_linear(torch.float32))
        bf16.append(_time_linear(torch.bfloat16))
    return min(fp32) / min(bf16)


def machine_key() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} | {os.cpu_count()} cpus | torch {torch.__version__} | lone decode (2 rows)"


def cpu_bf16_speedup(cache_dir: Path | None) -> float:
    """The measured speed-up, remembered per machine in ``cache_dir`` so every start decides the same."""
    record = cache_dir / "cpu-dtype.json" if cache_dir else None
    key = machine_key()
    if record and record.is_file():
        try:
            saved = json.loads(record.read_text())
            if saved.get("machine") == key:
                return float(saved["bf16_speedup"])
        except (ValueError, KeyError):
            pass
    speedup = isolated(measure_cpu_bf16_speedup)
    if record:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"machine": key, "bf16_speedup": speedup}))
    return speedup


@dataclass(frozen=True)
class DeviceInfo:
    device: str
    default_dtype: torch.dtype
    bf16_speedup: float | None = None
    zerogpu: bool = False  # load on the CPU, then ``.to("cuda")``: ZeroGPU replays it in each worker

    @classmethod
    def for_zerogpu(cls) -> DeviceInfo:
        """A ZeroGPU Space: CUDA exists only inside ``@spaces.GPU`` workers, on H200-class GPUs (bf16)."""
        return cls("cuda", torch.bfloat16, zerogpu=True)

    @classmethod
    def detect(cls, device: str | None = None, cache_dir: Path | None = None) -> DeviceInfo:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device.startswith("cuda"):
            return cls(device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        forced = os.environ.get("PLAYGROUND_CPU_DTYPE")
        if forced:
            return cls(device, DTYPES[forced])
        speedup = cpu_bf16_speedup(cache_dir)
        return cls(device, torch.bfloat16 if speedup >= BF16_AT_LEAST else torch.float32, speedup)

    def resolve(self, requested: str) -> torch.dtype:
        """The dtype to load with, given a preset's ``dtype`` field."""
        if requested == "auto":
            return self.default_dtype
        dtype = DTYPES[requested]
        if self.device == "cpu" and dtype == torch.float16:
            return self.default_dtype
        if self.device.startswith("cuda") and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            return torch.float16
        return dtype

    def free_memory_bytes(self) -> int:
        if self.zerogpu:
            return ZEROGPU_SLOT_BYTES
        if self.device.startswith("cuda"):
            free, _total = torch.cuda.mem_get_info()
            return int(free)
        import psutil

        return int(psutil.virtual_memory().available)
