"""Build every service once from the settings: the one model cache, the store, the use cases."""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from playground.engine import setup
from playground.engine.backends.base import Backends
from playground.engine.backends.local import LocalBackend
from playground.engine.backends.remote import RemoteBackend
from playground.engine.backends.zerogpu import SLOT_BYTES, ZeroGPUBackend
from playground.engine.models.cache import GB, ModelCache
from playground.engine.models.device import DeviceInfo
from playground.engine.models.footprint import estimate_bytes
from playground.engine.models.loader import LoadRequest
from playground.engine.models.presets import PresetRegistry
from playground.errors import PlaygroundError
from playground.services.access import Ownership
from playground.services.answers.arena import ArenaService
from playground.services.answers.chat import ChatService
from playground.services.answers.compare import CompareService
from playground.services.answers.conversation import Conversations
from playground.services.answers.feedback import FeedbackService
from playground.services.answers.limits import Gate
from playground.services.answers.replay import ReplayService
from playground.services.answers.runs import RunRegistry
from playground.services.data.service import DataService
from playground.services.leaderboard.judge_board import JudgeBoard
from playground.services.leaderboard.service import LeaderboardService
from playground.services.notebook.saved import SavedNotebooks
from playground.services.notebook.service import NotebookService
from playground.services.presets import PresetService
from playground.services.warmup import Warmup
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
    conversations: Conversations  # side-by-side conversations: rounds, Regenerate, Undo (tab and /compare)
    feedback: FeedbackService
    presets: PresetService
    runs: RunRegistry
    arena: ArenaService
    leaderboard: LeaderboardService
    judge_board: JudgeBoard  # the LLM judge's ranking and its agreement with people (never from votes)
    notebook: NotebookService
    saved: SavedNotebooks  # saved notebooks, their versions, checks and judge
    gate: Gate  # per-visitor limits on concurrent generations and votes
    replay: ReplayService
    warmup: Warmup  # the default model loaded and probed in the background at start-up
    data: DataService  # stored conversations out as files
    access: Ownership  # who made what: the access rules of a public deployment ask it


def check_zerogpu_fit(registry: PresetRegistry, device: DeviceInfo, slot_bytes: int = SLOT_BYTES) -> None:
    """Mark presets that cannot run on ZeroGPU as unavailable, with the reason."""
    for preset in registry:
        if preset.model.loader == "gptq" and importlib.util.find_spec("gptqmodel") is None:
            registry.mark_unavailable(
                preset.name,
                "GPTQ checkpoints load through gptqmodel, which needs torch >= 2.14.1; ZeroGPU runs torch 2.8-2.11",
            )
            continue
        needed = estimate_bytes(LoadRequest.from_spec(preset.model), device)
        if needed > slot_bytes * 0.9:
            registry.mark_unavailable(
                preset.name,
                f"its weights need about {needed / GB:.1f} GB of GPU memory and a ZeroGPU slot has "
                f"{slot_bytes / GB:.1f} GB; pick a quantised variant or run it on a bigger GPU",
            )


def preload(registry: PresetRegistry, cache: ModelCache, names: list[str]) -> None:
    """Load these presets now (a Space loads at start-up); one that fails is marked unavailable with its cause."""
    for name in names:
        preset = registry.get(name)
        if name in registry.unavailable:
            continue
        try:
            cache.get(LoadRequest.from_spec(preset.model))
        except PlaygroundError as exc:
            registry.mark_unavailable(name, str(exc))


def _warm_up(leaderboard: LeaderboardService) -> None:
    try:
        leaderboard.warm_up()
    except Exception:  # noqa: BLE001 - the first refresh will read (and report) it instead
        logging.getLogger(__name__).exception("the leaderboard's warm-up read failed")


def build_services(settings: Settings) -> Services:
    setup()
    registry = PresetRegistry.from_folders(settings.presets_dir, settings.user_presets_dir)
    for name in settings.columns:
        registry.get(name)
    zerogpu = settings.backend == "zerogpu"
    device = DeviceInfo.for_zerogpu() if zerogpu else DeviceInfo.detect(settings.device, settings.cache_dir)
    budget = int(settings.memory_budget_gb * GB) if settings.memory_budget_gb else None
    cache = ModelCache(device, settings.cache_dir, budget, estimate=partial(estimate_bytes, device=device))
    try:
        store = Store(settings.db)
    except Exception as exc:  # noqa: BLE001 - a bad --db is a start-up error with its cause
        raise PlaygroundError(f"cannot open the database {settings.db!r}: {exc}") from None
    if zerogpu:
        check_zerogpu_fit(registry, device)
    preload(registry, cache, settings.preload)
    if settings.sync_repo:
        from playground.store.hub_sync import start_sync

        sqlite = store.url.startswith("sqlite")
        data_dir = Path(store.url.removeprefix("sqlite:///")).parent if sqlite else settings.cache_dir
        start_sync(store, settings.sync_repo, data_dir, settings.sync_every_min)
    machine = (
        ZeroGPUBackend(cache, serving_rows=settings.serving_rows)
        if zerogpu
        else LocalBackend(cache, settings.serving_rows)
    )
    backends = Backends(machine, RemoteBackend())
    chat = ChatService(registry, cache, store, backends, settings.limits)
    compare = CompareService(chat, store)
    feedback = FeedbackService(store, settings.limits)
    leaderboard = LeaderboardService(
        store,
        registry,
        settings.bootstrap_rounds,
        prior_sd=settings.leaderboard_prior_sd,
        min_battles=settings.leaderboard_min_battles,
        style_control=settings.style_control,
    )
    notebook = NotebookService(chat, store, feedback)
    saved = SavedNotebooks(notebook, public=settings.public, allow_python=settings.open_data)
    access = Ownership(store)
    access.add_owned("saved_notebook", saved.owned_by)  # a saved notebook's id is also its share link
    access.add_share_links("saved_notebook", saved.is_link)
    # the first leaderboard reads every voted answer (~2 s for 200k): done now, off the request path
    threading.Thread(target=_warm_up, args=(leaderboard,), daemon=True, name="leaderboard-warm-up").start()
    return Services(
        settings=settings,
        registry=registry,
        cache=cache,
        store=store,
        chat=chat,
        compare=compare,
        conversations=Conversations(compare, store),
        feedback=feedback,
        presets=PresetService(
            registry, settings.user_presets_dir, settings.cache_dir, backends.batching, device.device
        ),
        runs=RunRegistry(),
        arena=ArenaService(registry, compare, store, settings.arena_pool, settings.arena_weights),
        leaderboard=leaderboard,
        judge_board=JudgeBoard(
            store,
            registry,
            settings.bootstrap_rounds,
            l2=leaderboard.l2,
            min_battles=settings.leaderboard_min_battles,
        ),
        notebook=notebook,
        saved=saved,
        gate=Gate(settings.limits),
        replay=ReplayService(chat),
        warmup=Warmup(),
        data=DataService(store),
        access=access,
    )
