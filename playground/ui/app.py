"""The Gradio Blocks app: one module per tab, plus the API-only endpoints."""

from __future__ import annotations

import gradio as gr

from playground import __version__
from playground.services.container import Services
from playground.ui.api import register_api
from playground.ui.compare_tab import build_compare_tab

CSS = """
#vote-status, [id^=stats-] { font-size: 0.85em; opacity: 0.85; }
"""


def build_app(services: Services) -> gr.Blocks:
    with gr.Blocks(title="LLM Playground", fill_width=True) as demo:
        gr.Markdown(
            f"## LLM Playground <small>v{__version__} · {services.cache.device.device} · "
            f"{len(services.registry.names())} presets</small>"
        )
        with gr.Tabs():
            with gr.Tab("Compare", id="compare"):
                build_compare_tab(services)
        register_api(services)
    demo.queue(default_concurrency_limit=8)
    return demo
