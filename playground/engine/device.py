"""Which device and dtype a model runs on.

On CUDA: bf16 where supported, else fp16. On CPU: bf16 only if it is measurably faster than
fp32 on this machine (a short matmul benchmark at decode-like shapes, run once per process
by the model cache); fp16 on CPU falls back to that choice. ``PLAYGROUND_CPU_DTYPE`` overrides.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _time_linear(dtype: torch.dtype, reps: int = 20) -> float:
    layer = torch.nn.Linear(1024, 4096, bias=False).to(dtype)
    x = torch.randn(4, 1024, dtype=dtype)
    with torch.inference_mode():
        layer(x)
        start = time.perf_counter()
        for _ in range(reps):
            layer(x)
    return time.perf_counter() - start


def measure_cpu_bf16_speedup() -> float:
    """fp32 time / bf16 time for a decode-shaped linear layer (> 1 means bf16 is faster)."""
    fp32 = min(_time_linear(torch.float32) for _ in range(3))
    bf16 = min(_time_linear(torch.bfloat16) for _ in range(3))
    return fp32 / bf16


@dataclass(frozen=True)
class DeviceInfo:
    device: str
    default_dtype: torch.dtype
    bf16_speedup: float | None = None

    @classmethod
    def detect(cls, device: str | None = None) -> DeviceInfo:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device.startswith("cuda"):
            return cls(device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        forced = os.environ.get("PLAYGROUND_CPU_DTYPE")
        if forced:
            return cls(device, DTYPES[forced])
        speedup = measure_cpu_bf16_speedup()
        return cls(device, torch.bfloat16 if speedup > 1.05 else torch.float32, speedup)

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
        if self.device.startswith("cuda"):
            free, _total = torch.cuda.mem_get_info()
            return int(free)
        import psutil

        return int(psutil.virtual_memory().available)
