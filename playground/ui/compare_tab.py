"""The Compare tab: 2–4 columns, one prompt, every column streaming at once.

The conversation lives in the server (``services.conversations``): the page keeps only its id (in
browser storage, so a reload or a second tab shows it again) and shows what the service returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.container import Services
from playground.services.answers.conversation import ColumnSetup, ConversationView
from playground.ui.access import Guard
from playground.ui.common import (
    GENERATION,
    BrowserStorage,
    ParamWidgets,
    card_line,
    generation_slot,
    inline_errors,
    load_progress,
    owner,
    param_widgets,
    params_dict,
    preset_choices,
    session_key,
    visitor,
)
from playground.ui.rating import RatingPanel

MAX_COLUMNS = 4
PER_COLUMN = 2 + 7  # preset, system prompt, the generation parameters
SEND_HINT = "Enter sends · Shift+Enter adds a line"


@dataclass
class ColumnUI:
    box: gr.Column
    preset: gr.Dropdown
    card: gr.Markdown
    chatbot: gr.Chatbot
    stats: gr.Markdown
    system: gr.Textbox
    params: ParamWidgets

    def inputs(self) -> list:
        return [self.preset, self.system, *self.params.components()]


@dataclass
class CompareTab:
    dropdowns: list[gr.Dropdown]  # other tabs refresh their choices
    on_load: tuple  # (fn, inputs, outputs) for the page's load event: show this browser's conversation


def vote_labels(ncols: int) -> list[str]:
    if ncols == 2:
        return ["👈 Left is better", "👉 Right is better", "", ""]
    return [f"🥇 Column {i + 1} is best" for i in range(MAX_COLUMNS)]


def column_setups(values: list, n: int) -> list[ColumnSetup]:
    """The first ``n`` columns' widget values (preset, system prompt, parameters) as setups."""
    chunks = [values[i * PER_COLUMN : (i + 1) * PER_COLUMN] for i in range(n)]
    return [ColumnSetup(v[0], params_dict(v[2:]), v[1]) for v in chunks]


def build_compare_tab(services: Services, stored: BrowserStorage) -> CompareTab:
    settings, registry, conversations = services.settings, services.presets, services.conversations
    browser, conversation = stored.key, stored.compare  # the browser's key, the conversation's id
    ncols = gr.State(len(settings.columns))
    with gr.Row():
        add_btn = gr.Button("➕ Add column", size="sm", scale=0)
        remove_btn = gr.Button("➖ Remove column", size="sm", scale=0)
    columns: list[ColumnUI] = []
    with gr.Row(equal_height=False):
        for i in range(MAX_COLUMNS):
            name = settings.columns[i] if i < len(settings.columns) else settings.columns[0]
            preset = registry.get(name)
            with gr.Column(visible=i < len(settings.columns), min_width=280) as box:
                dropdown = gr.Dropdown(
                    preset_choices(registry), value=name, label=f"Model {i + 1}", elem_id=f"model-{i}"
                )
                card = gr.Markdown(card_line(preset))
                chatbot = gr.Chatbot(
                    height=420, label=f"Column {i + 1}", elem_id=f"chat-{i}", buttons=["copy"]
                )
                stats = gr.Markdown("", elem_id=f"stats-{i}")
                with gr.Accordion("Generation settings", open=False, elem_id=f"settings-{i}"):
                    system = gr.Textbox(preset.system_prompt, label="System prompt", lines=2)
                    params = param_widgets(preset.params, key=f"col{i}")
            columns.append(ColumnUI(box, dropdown, card, chatbot, stats, system, params))
    with gr.Row():
        prompt = gr.Textbox(
            placeholder=f"Message every column… ({SEND_HINT})",
            show_label=False,
            scale=8,
            elem_id="compare-prompt",
            lines=1,
            max_lines=8,
        )
        send_btn = gr.Button("Send", variant="primary", scale=1, elem_id="compare-send")
    status = gr.Markdown("", elem_id="compare-status")
    with gr.Row():
        stop_btn = gr.Button("⏹ Stop", size="sm", elem_id="compare-stop")
        regen_btn = gr.Button("🔁 Regenerate", size="sm", elem_id="compare-regenerate")
        undo_btn = gr.Button("↩ Undo", size="sm", elem_id="compare-undo")
        clear_btn = gr.Button("🗑 Clear", size="sm", elem_id="compare-clear")
    with gr.Row():
        labels = vote_labels(len(settings.columns))
        best_btns = [
            gr.Button(labels[i], visible=i < len(settings.columns), interactive=False, elem_id=f"vote-{i}")
            for i in range(MAX_COLUMNS)
        ]
        tie_btn = gr.Button("🤝 Tie", interactive=False, elem_id="vote-tie")
        bad_btn = gr.Button(
            "👎 Both are bad" if len(settings.columns) == 2 else "👎 All are bad",
            interactive=False,
            elem_id="vote-bad",
        )
    vote_status = gr.Markdown("", elem_id="vote-status")
    rating = RatingPanel.build(services, "compare")

    vote_btns = [*best_btns, tie_btn, bad_btn]
    chats, stat_lines = [c.chatbot for c in columns], [c.stats for c in columns]
    all_inputs = [c for col in columns for c in col.inputs()]
    shown = [*chats, *stat_lines, *vote_btns, conversation]  # what a view sets

    def render(view: ConversationView, n: int) -> list:
        """The view on the page: each shown column's chat and stats, the vote buttons, the id."""
        visible = range(min(n, MAX_COLUMNS))
        return [
            *(view.chat(i) if i in visible else gr.skip() for i in range(MAX_COLUMNS)),
            *(view.stats_line(i) if i in visible else gr.skip() for i in range(MAX_COLUMNS)),
            *(gr.update(interactive=view.can_vote) for _ in vote_btns),
            view.conversation_id,
        ]

    def stream(views, n: int, cancel):
        cleared = ""  # the prompt box is emptied once: what is typed meanwhile stays
        for view in views:
            if services.runs.superseded(cancel):
                return  # a newer message took over this tab; its round owns the columns now
            yield [*render(view, n), cleared, ""]
            cleared = gr.skip()

    @inline_errors(status)
    @generation_slot(services.gate)
    def send(request: gr.Request, text, cid, key, n, progress=gr.Progress(track_tqdm=True), *values):  # noqa: B034
        with services.runs.run(session_key(request, "compare")) as cancel:
            setups, who = column_setups(list(values), n), owner(key, request)
            views = conversations.send(cid, who, text, setups, cancel, load_progress(progress))
            yield from stream(views, n, cancel)

    @inline_errors(status)
    @generation_slot(services.gate)
    def regenerate(request: gr.Request, cid, key, n, progress=gr.Progress(track_tqdm=True), *values):  # noqa: B034
        with services.runs.run(session_key(request, "compare")) as cancel:
            setups, who = column_setups(list(values), n), owner(key, request)
            views = conversations.regenerate(cid, who, setups, cancel, load_progress(progress))
            yield from stream(views, n, cancel)

    def stop_columns(request: gr.Request):
        services.runs.cancel(session_key(request, "compare"))

    @inline_errors(status)
    def undo(cid, key, n, request: gr.Request):
        return [*render(conversations.undo(cid, owner(key, request)), n), "", ""]

    def clear(n: int):
        return [*render(ConversationView(None), n), "", ""]

    def restore(cid, key, n, request: gr.Request):
        return render(conversations.restore(cid, owner(key, request)), n)

    @inline_errors(vote_status)
    def vote(outcome: str, cid, key, n: int, request: gr.Request):
        services.gate.vote(visitor(request))
        _vote_id, view = conversations.vote(cid, owner(key, request), outcome)
        names = {"tie": "Tie", "all_bad": "Both are bad" if n == 2 else "All are bad"}
        label = names.get(outcome) or vote_labels(n)[int(outcome)]
        saved = f"✅ Vote saved for round {len(view.rounds)}: {label}"
        return [saved, *(gr.update(interactive=view.can_vote) for _ in vote_btns)]

    def resize(n: int, delta: int):
        n = max(2, min(MAX_COLUMNS, n + delta))
        labels = vote_labels(n)
        return (
            [n]
            + [gr.update(visible=i < n) for i in range(MAX_COLUMNS)]
            + [gr.update(visible=i < n, value=labels[i]) for i in range(MAX_COLUMNS)]
            + [gr.update(value="👎 Both are bad" if n == 2 else "👎 All are bad")]
        )

    def choose_preset(name: str):
        preset = registry.get(name)
        return [card_line(preset), preset.system_prompt, *ParamWidgets.updates(preset.params)]

    # access rules (ui/access.py): these events act on this browser's own conversation only: the page
    # keeps its id with the browser's key (``owner``), and the service refuses a conversation that is
    # not the key's (Conversations._get), so the rules name no conversation argument
    guard = Guard(services)
    # "multiple": a message sent while a round streams is not dropped; it stops that round (which is
    # kept, as stopped) and starts its own (RunRegistry.run); the superseded round leaves the columns
    # to it. Stop sets the round's cancel event (no ``cancels=``): the round ends itself, is stored and
    # shown as stopped.
    generating = dict(
        outputs=[*shown, prompt, status],
        api_visibility="private",
        concurrency_id=GENERATION,
        concurrency_limit=services.settings.limits.total_generations,
    )
    send_inputs = [prompt, conversation, browser, ncols, *all_inputs]
    send_btn.click(guard.owner(send), send_inputs, trigger_mode="multiple", **generating)
    prompt.submit(guard.owner(send), send_inputs, trigger_mode="multiple", **generating)
    regen_btn.click(guard.owner(regenerate), [conversation, browser, ncols, *all_inputs], **generating)
    stop_btn.click(guard.owner(stop_columns), None, None, api_visibility="private")
    undo_btn.click(
        guard.owner(undo),
        [conversation, browser, ncols],
        [*shown, vote_status, status],
        api_visibility="private",
    )
    clear_btn.click(guard.owner(clear), [ncols], [*shown, vote_status, status], api_visibility="private")

    def bind_vote(outcome: str):
        def on_vote(cid, key, n: int, request: gr.Request):
            return vote(outcome, cid, key, n, request)

        return on_vote

    for btn, outcome in [
        *((b, str(i)) for i, b in enumerate(best_btns)),
        (tie_btn, "tie"),
        (bad_btn, "all_bad"),
    ]:
        btn.click(
            guard.owner(bind_vote(outcome)),
            [conversation, browser, ncols],
            [vote_status, *vote_btns],
            api_visibility="private",
        )
    resize_outputs = [ncols, *(c.box for c in columns), *best_btns, bad_btn]
    add_btn.click(guard.anyone(lambda n: resize(n, +1)), [ncols], resize_outputs, api_visibility="private")
    remove_btn.click(guard.anyone(lambda n: resize(n, -1)), [ncols], resize_outputs, api_visibility="private")
    for i, col in enumerate(columns):
        col.preset.change(
            guard.anyone(choose_preset),
            [col.preset],
            [col.card, col.system, *col.params.components()],
            api_visibility="private",
        )
        rating.attach(
            col.chatbot,
            lambda cid, key, request, i=i: conversations.view(cid, owner(key, request)).turn_ids(i),
            [conversation, browser],
        )
    return CompareTab([c.preset for c in columns], (restore, [conversation, browser, ncols], shown))
