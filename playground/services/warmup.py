"""Start-up warm-up: the default columns' model is converted (first run), loaded and probed in the
background while the page comes up, so the first answer does not pay for it. Its progress, in words,
is what the page shows until it is ready."""

from __future__ import annotations

import logging
import threading

from playground.engine.backends.base import Backends
from playground.engine.generation.params import GenerationParams
from playground.engine.generation.request import GenerationRequest
from playground.engine.models.presets import PresetRegistry

log = logging.getLogger(__name__)


class Warmup:
    def __init__(self):
        self.status = ""  # empty: nothing to warm up (or not started)
        self.ready = threading.Event()
        self.error: str | None = None

    def start(self, backends: Backends, registry: PresetRegistry, names: list[str]) -> threading.Thread:
        """Warm the distinct local models of ``names`` on a background thread."""
        self.status = "warming up…"
        thread = threading.Thread(
            target=self._run, args=(backends, registry, names), name="warm-up", daemon=True
        )
        thread.start()
        return thread

    def _run(self, backends: Backends, registry: PresetRegistry, names: list[str]) -> None:
        seen = set()
        try:
            for name in names:
                preset = registry.get(name)
                if preset.model.remote or preset.name in registry.unavailable or preset.model.id in seen:
                    continue
                seen.add(preset.model.id)
                with backends.open(preset, progress=self._progress) as model:
                    self.status = f"checking how {preset.display_name} batches on this machine…"
                    warm = GenerationRequest.build("Hi", GenerationParams(do_sample=False, max_new_tokens=1))
                    for _event in model.stream([warm]):
                        pass
            self.status = ""
        except Exception as exc:  # noqa: BLE001 - the first request will load (and report) it instead
            log.exception("the start-up warm-up failed")
            self.error, self.status = str(exc), ""
        finally:
            self.ready.set()

    def _progress(self, fraction: float, description: str) -> None:
        self.status = f"{description} ({fraction:.0%})"
