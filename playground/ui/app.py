"""The Gradio Blocks app: one module per tab, plus the API-only endpoints."""

from __future__ import annotations

import gradio as gr

from playground import __version__
from playground.services.container import Services
from playground.ui.api import register_api
from playground.ui.arena_api import register_arena_api
from playground.ui.arena_tab import build_arena_tab
from playground.ui.compare_tab import build_compare_tab
from playground.ui.leaderboard_tab import build_leaderboard_tab
from playground.ui.presets_tab import build_presets_tab

CSS = """
#vote-status, [id^=stats-] { font-size: 0.85em; opacity: 0.85; }
"""


def build_app(services: Services) -> gr.Blocks:
    with gr.Blocks(title="LLM Playground", fill_width=True) as demo:
        gr.Markdown(
            f"## LLM Playground <small>v{__version__} · {services.cache.device.device} · "
            f"{len(services.registry.names())} presets</small>"
        )
        # public API endpoints first, so their stable names win over the tabs' private handlers
        register_api(services)
        register_arena_api(services)
        with gr.Tabs():
            with gr.Tab("Compare", id="compare"):
                dropdowns = build_compare_tab(services)
            with gr.Tab("Arena", id="arena"):
                arena = build_arena_tab(services)
            with gr.Tab("Leaderboard", id="leaderboard") as board_tab:
                build_leaderboard_tab(services, refresh_on=[board_tab.select, arena.voted.change])
            with gr.Tab("Presets", id="presets"):
                build_presets_tab(services, dropdowns)
    demo.queue(default_concurrency_limit=8)
    return demo
