"""Build every service once from the settings: the one model cache, the store, the use cases."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from playground.engine.cache import GB, ModelCache
from playground.engine.device import DeviceInfo
from playground.engine.footprint import estimate_bytes
from playground.engine.presets import PresetRegistry
from playground.errors import PlaygroundError
from playground.services.arena import ArenaService
from playground.services.chat import ChatService
from playground.services.compare import CompareService
from playground.services.feedback import FeedbackService
from playground.services.leaderboard import LeaderboardService
from playground.services.notebook import NotebookService
from playground.services.presets import PresetService
from playground.services.runs import RunRegistry
from playground.settings import Settings
from playground.store.db import Store


@dataclass
class Services:
    settings: Settings
    registry: PresetRegistry
    cache: ModelCache
    store: Store
    chat: ChatService
    compare: CompareService
    feedback: FeedbackService
    presets: PresetService
    runs: RunRegistry
    arena: ArenaService
    leaderboard: LeaderboardService
    notebook: NotebookService


def build_services(settings: Settings) -> Services:
    registry = PresetRegistry.from_folders(settings.presets_dir, settings.user_presets_dir)
    for name in settings.columns:
        registry.get(name)
    device = DeviceInfo.detect(settings.device, settings.cache_dir)
    budget = int(settings.memory_budget_gb * GB) if settings.memory_budget_gb else None
    cache = ModelCache(device, settings.cache_dir, budget, estimate=partial(estimate_bytes, device=device))
    try:
        store = Store(settings.db)
    except Exception as exc:  # noqa: BLE001 - a bad --db is a start-up error with its cause
        raise PlaygroundError(f"cannot open the database {settings.db!r}: {exc}") from None
    chat = ChatService(registry, cache, store)
    compare = CompareService(chat, store)
    feedback = FeedbackService(store)
    return Services(
        settings=settings,
        registry=registry,
        cache=cache,
        store=store,
        chat=chat,
        compare=compare,
        feedback=feedback,
        presets=PresetService(registry, settings.user_presets_dir, settings.cache_dir),
        runs=RunRegistry(),
        arena=ArenaService(registry, compare, store, settings.arena_pool, settings.arena_weights),
        leaderboard=LeaderboardService(store, registry, settings.bootstrap_rounds),
        notebook=NotebookService(chat, store, feedback, settings.notebook_batch_rows),
    )
