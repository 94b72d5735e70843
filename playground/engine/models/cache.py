"""The model cache: loaded models shared by every column, within a memory budget.

One load per model even when several requests ask at the same moment (the others wait on
the first); least-recently-used idle models are unloaded to make room; a model that cannot
fit is refused with the numbers. Models that are generating are never evicted.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

import torch

from playground.engine.models.device import DeviceInfo
from playground.engine.models.loader import LoadedModel, LoadRequest, Progress, load
from playground.engine.threads import isolated
from playground.errors import PlaygroundError

GB = 1024**3
Loader = Callable[[LoadRequest, DeviceInfo, Path, Progress | None], LoadedModel]


class ModelCache:
    def __init__(
        self,
        device: DeviceInfo,
        cache_root: Path,
        budget_bytes: int | None = None,
        estimate: Callable[[LoadRequest], int] | None = None,
        loader: Loader = load,
    ):
        self.device = device
        self.cache_root = cache_root
        self.budget_bytes = (
            budget_bytes if budget_bytes is not None else int(device.free_memory_bytes() * 0.8)
        )
        self._estimate = estimate or (lambda request: 0)
        self._loader = loader
        self._lock = threading.Lock()
        self._models: OrderedDict[LoadRequest, LoadedModel] = OrderedDict()
        self._loading: dict[LoadRequest, Future] = {}
        self._in_use: dict[LoadRequest, int] = {}
        self.load_count = 0

    @contextmanager
    def use(self, request: LoadRequest, progress: Progress | None = None) -> Iterator[LoadedModel]:
        """The loaded model for ``request``, loading it if needed; it is not evicted while held."""
        loaded = self.get(request, progress, hold=True)
        try:
            yield loaded
        finally:
            with self._lock:
                self._in_use[request] -= 1

    def get(self, request: LoadRequest, progress: Progress | None = None, hold: bool = False) -> LoadedModel:
        with self._lock:
            if request in self._models:
                self._models.move_to_end(request)
                if hold:
                    self._in_use[request] = self._in_use.get(request, 0) + 1
                return self._models[request]
            future = self._loading.get(request)
            owner = future is None
            if owner:
                future = self._loading[request] = Future()
        if not owner:
            loaded = future.result()
            return self.get(request, progress, hold) if hold else loaded
        try:
            self._make_room(request, self._estimate(request))
            loaded = isolated(self._loader, request, self.device, self.cache_root, progress)
            self.load_count += 1
        except BaseException as exc:
            with self._lock:
                del self._loading[request]
            future.set_exception(exc)
            raise
        with self._lock:
            self._models[request] = loaded
            del self._loading[request]
            if hold:
                self._in_use[request] = self._in_use.get(request, 0) + 1
        future.set_result(loaded)
        self._make_room(request, 0, strict=False)
        return loaded

    def _make_room(self, request: LoadRequest, needed: int, strict: bool = True) -> None:
        """Evict idle models, oldest first, until ``needed`` more bytes fit in the budget."""
        evicted = []
        with self._lock:
            if strict and needed > self.budget_bytes:
                raise PlaygroundError(
                    f"{request.label()} needs about {needed / GB:.1f} GB but the memory budget is "
                    f"{self.budget_bytes / GB:.1f} GB (set --memory-budget-gb, or pick a quantised variant)"
                )
            for key in list(self._models):
                if self.used_bytes() + needed <= self.budget_bytes:
                    break
                if self._in_use.get(key, 0) == 0:
                    evicted.append(self._models.pop(key))
            if strict and self.used_bytes() + needed > self.budget_bytes:
                busy = self.used_bytes()
                raise PlaygroundError(
                    f"{request.label()} needs about {needed / GB:.1f} GB; "
                    f"{busy / GB:.1f} GB of the {self.budget_bytes / GB:.1f} GB budget is held by models that "
                    "are generating right now; try again when they finish"
                )
        if evicted:
            del evicted
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def used_bytes(self) -> int:
        return sum(m.footprint_bytes for m in self._models.values())

    def loaded(self) -> list[LoadRequest]:
        with self._lock:
            return list(self._models)

    def unload_all(self) -> None:
        with self._lock:
            self._models.clear()
        gc.collect()
