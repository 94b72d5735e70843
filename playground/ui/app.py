"""The Gradio Blocks app: one module per tab, plus the API-only endpoints."""

from __future__ import annotations

import gradio as gr

from playground import __version__
from playground.container import Services
from playground.ui.access import Guard, check_rules
from playground.ui.api import register_api
from playground.ui.arena_api import register_arena_api
from playground.ui.arena_tab import build_arena_tab
from playground.ui.common import browser_storage, remember_browser, session_id
from playground.ui.compare_tab import build_compare_tab
from playground.ui.data_tab import build_data_tab, register_data_api
from playground.ui.leaderboard_tab import build_leaderboard_tab
from playground.ui.notebook_api import register_notebook_api
from playground.ui.notebook_saved_api import register_notebook_saved_api
from playground.ui.notebook_tab import build_notebook_tab
from playground.ui.presets_tab import build_presets_tab

CSS = """
#vote-status, [id^=stats-] { font-size: 0.85em; opacity: 0.85; }
.nb-bar { display: flex; width: 100%; height: 10px; border-radius: 5px; overflow: hidden;
          background: var(--neutral-200); margin: 4px 0; }
.dark .nb-bar { background: var(--neutral-700); }
.nb-bar span { display: block; height: 100%; }
.nb-done { background: #16a34a; }
.nb-running { background: #2563eb; }
.nb-stopped { background: #d97706; }
.nb-failed { background: #dc2626; }
.nb-not-run { background: var(--neutral-400); }
/* a chat's own trash button would empty the page's copy only; Clear (and Undo) change the conversation */
[id^=chat-] button[aria-label="Clear"], [id^=arena-chat-] button[aria-label="Clear"] { display: none !important; }
/* plots on the dark theme: the page's text colour for titles, ticks, legends and colour bars */
.dark .js-plotly-plot :is(.gtitle, .xtitle, .ytitle, .legendtext, .annotation-text, .cbtitle text),
.dark .js-plotly-plot :is(.xtick, .ytick, .cbaxis) text { fill: var(--body-text-color) !important; }
/* small screens: a model's name wraps between words, never inside one */
#notebook-models .token, #notebook-models .token span { word-break: normal; overflow-wrap: normal; }
"""


def build_app(services: Services) -> gr.Blocks:
    with gr.Blocks(title="LLM Playground", fill_width=True) as demo:
        gr.Markdown(
            f"## LLM Playground <small>v{__version__} · {services.presets.device} · "
            f"{len(services.presets.names())} presets</small>"
        )
        warming = gr.Markdown(_warm_status(services), elem_id="warm-up", visible=bool(_warm_status(services)))
        timer = gr.Timer(1.0, active=not services.warmup.ready.is_set())
        guard = Guard(services)
        timer.tick(
            guard.anyone(lambda: _warm_update(services)), outputs=[warming, timer], api_visibility="private"
        )
        # public API endpoints first, so their stable names win over the tabs' private handlers
        register_api(services)
        register_arena_api(services)
        register_notebook_api(services)
        register_notebook_saved_api(services)
        register_data_api(services)
        stored = browser_storage()
        browser = stored.key
        with gr.Tabs():
            with gr.Tab("Compare", id="compare"):
                compare = build_compare_tab(services, stored)
            with gr.Tab("Notebook", id="notebook"):
                notebook = build_notebook_tab(services, stored)
            with gr.Tab("Arena", id="arena"):
                arena = build_arena_tab(services, stored)
            with gr.Tab("Leaderboard", id="leaderboard") as board_tab:
                build_leaderboard_tab(services, refresh_on=[board_tab.select, arena.voted.change])
            if services.settings.open_data:
                with gr.Tab("Data", id="data"):
                    build_data_tab(services)
            with gr.Tab("Presets", id="presets") as presets_tab:
                build_presets_tab(
                    services, [*compare.dropdowns, notebook.models], shown_on=[presets_tab.select]
                )
        # a reload (or a second tab of this browser) shows its conversation, battle and grid again;
        # anyone: each shows the caller's own only (the services check the browser key's ownership)
        loaded = demo.load(guard.anyone(remember_browser), [browser], [browser], api_visibility="private")
        for fn, inputs, outputs in (compare.on_load, arena.on_load, notebook.on_load):
            loaded.then(guard.anyone(fn), inputs, outputs, api_visibility="private")
        demo.unload(guard.owner(_page_gone(services)))  # stops only its own session's generations
    check_rules(demo)  # an endpoint or event without an access rule: the app does not start
    demo.queue(default_concurrency_limit=8)
    _calm_queue_polling(demo)
    return demo


def _page_gone(services: Services):
    def page_gone(request: gr.Request) -> None:
        """A page that is gone (reloaded, closed) stops what it was generating, within a token."""
        services.runs.cancel_session(session_id(request))

    return page_gone


def _warm_status(services: Services) -> str:
    status = services.warmup.status
    return f"⏳ Getting the default model ready: {status}" if status else ""


def _warm_update(services: Services):
    status = _warm_status(services)
    done = services.warmup.ready.is_set() or not status
    return gr.Markdown(status, visible=bool(status)), gr.Timer(active=not done)


def _calm_queue_polling(demo: gr.Blocks) -> None:
    """Poll Gradio's event queue every 10 ms instead of every 1 ms.

    Gradio's queue loop wakes up 1000 times a second while it has free slots, which is ~10% of a
    core on an idle 2-core machine and, during a generation, takes the GIL and a CPU away from the
    model between every pair of kernels. 10 ms adds at most 10 ms to an event's start.
    """
    queue = getattr(demo, "_queue", None)
    if queue is not None and hasattr(queue, "sleep_when_free"):
        queue.sleep_when_free = max(queue.sleep_when_free, 0.01)
        queue.progress_update_sleep_when_free = max(queue.progress_update_sleep_when_free, 0.05)
