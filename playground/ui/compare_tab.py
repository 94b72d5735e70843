"""The Compare tab: 2–4 columns, one prompt, every column streaming at once."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.container import Services
from playground.services.answers.chat import AnswerRequest
from playground.services.answers.chat import messages_from as parse_messages
from playground.ui.access import Guard
from playground.ui.common import (
    GENERATION,
    ParamWidgets,
    card_line,
    chat_display,
    generation_slot,
    load_progress,
    param_widgets,
    params_dict,
    preset_choices,
    session_key,
    user_errors,
    visitor,
)
from playground.ui.rating import RatingPanel

MAX_COLUMNS = 4
PER_COLUMN = 2 + 7  # preset, system prompt, the generation parameters


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


def new_state() -> dict:
    return {
        "conversation_id": None,
        "histories": [[] for _ in range(MAX_COLUMNS)],
        "turn_ids": [[] for _ in range(MAX_COLUMNS)],
        "rounds": 0,
        "voted": [],
        "last_prompt": "",
    }


def vote_labels(ncols: int) -> list[str]:
    if ncols == 2:
        return ["👈 Left is better", "👉 Right is better", "", ""]
    return [f"🥇 Column {i + 1} is best" for i in range(MAX_COLUMNS)]


def build_compare_tab(services: Services) -> list[gr.Dropdown]:
    """Build the tab; returns the model dropdowns (other tabs refresh their choices)."""
    settings, registry = services.settings, services.presets
    state = gr.State(new_state())
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
                with gr.Accordion("Generation settings", open=False):
                    system = gr.Textbox(preset.system_prompt, label="System prompt", lines=2)
                    params = param_widgets(preset.params, key=f"col{i}")
            columns.append(ColumnUI(box, dropdown, card, chatbot, stats, system, params))
    with gr.Row():
        prompt = gr.Textbox(
            placeholder="Message every column…", show_label=False, scale=8, elem_id="compare-prompt", lines=2
        )
        send_btn = gr.Button("Send", variant="primary", scale=1, elem_id="compare-send")
    with gr.Row():
        stop_btn = gr.Button("⏹ Stop", size="sm")
        regen_btn = gr.Button("🔁 Regenerate", size="sm")
        undo_btn = gr.Button("↩ Undo", size="sm")
        clear_btn = gr.Button("🗑 Clear", size="sm")
    with gr.Row():
        labels = vote_labels(len(settings.columns))
        best_btns = [
            gr.Button(labels[i], visible=i < len(settings.columns), elem_id=f"vote-{i}")
            for i in range(MAX_COLUMNS)
        ]
        tie_btn = gr.Button("🤝 Tie", elem_id="vote-tie")
        bad_btn = gr.Button(
            "👎 Both are bad" if len(settings.columns) == 2 else "👎 All are bad", elem_id="vote-bad"
        )
    vote_status = gr.Markdown("", elem_id="vote-status")
    rating = RatingPanel.build(services, "compare")

    all_inputs = [c for col in columns for c in col.inputs()]
    stream_outputs = [*(c.chatbot for c in columns), *(c.stats for c in columns), state, prompt, vote_status]

    def run_round(text: str, st: dict, n: int, values: list, request: gr.Request, regenerate: bool, progress):
        if regenerate:
            if not st["rounds"]:
                raise gr.Error("nothing to regenerate yet")
            text = st["last_prompt"]
            for i in range(n):
                if len(st["histories"][i]) >= 2 and st["turn_ids"][i]:
                    st["histories"][i] = st["histories"][i][:-2]
                    st["turn_ids"][i] = st["turn_ids"][i][:-1]
            st["rounds"] -= 1
        if not text or not text.strip():
            raise gr.Error("type a message first")
        column_values = [values[i * PER_COLUMN : (i + 1) * PER_COLUMN] for i in range(n)]
        presets = [v[0] for v in column_values]
        if st["conversation_id"] is None:
            st["conversation_id"] = services.compare.start(presets, session_id=request.session_hash)
        round_index = st["rounds"]
        requests = [
            AnswerRequest(
                preset=v[0],
                messages=parse_messages([*st["histories"][i], {"role": "user", "content": text}]),
                params=params_dict(v[2:]),
                system_prompt=v[1],
                turn_index=round_index,
            )
            for i, v in enumerate(column_values)
        ]
        key = session_key(request, "compare")
        cancel = services.runs.start(key)  # a round still running in this tab stops here
        snapshot, cleared = [], ""  # the prompt box is emptied once: what is typed meanwhile stays
        try:
            for snapshot in services.compare.run(
                st["conversation_id"], requests, cancel, load_progress(progress)
            ):
                yield _render(st, n, text, snapshot, finished=False) + [st, cleared, ""]
                cleared = gr.skip()
            if services.runs.superseded(cancel):
                return  # a newer message took over this tab; its round owns the columns now
        finally:
            services.runs.finish(key, cancel)
        for i, update in enumerate(snapshot):
            if update.done and not update.error:
                st["histories"][i] += [
                    {"role": "user", "content": text},
                    {"role": "assistant", "content": update.text.strip()},
                ]
                st["turn_ids"][i].append(update.turn_id)
        st["rounds"], st["last_prompt"] = round_index + 1, text
        yield _render(st, n, text, snapshot, finished=True) + [st, "", ""]

    def _render(st, n, text, snapshot, finished: bool) -> list:
        chats, stats = [], []
        for i in range(MAX_COLUMNS):
            if i >= n or i >= len(snapshot):
                chats.append(gr.skip())
                stats.append(gr.skip())
                continue
            update = snapshot[i]
            if update.error:
                chats.append(chat_display(st["histories"][i], text, f"⚠️ {update.error}"))
                stats.append(f"**error:** {update.error}")
            elif finished:
                chats.append(chat_display(st["histories"][i]))
                stats.append(update.stats_line())
            else:
                chats.append(chat_display(st["histories"][i], text, update.text or "…"))
                stats.append(update.stats_line())
        return chats + stats

    @user_errors
    @generation_slot(services.gate)
    def send(request: gr.Request, text, st, n, progress=gr.Progress(track_tqdm=True), *values):  # noqa: B034
        yield from run_round(text, st, n, list(values), request, False, progress)

    @user_errors
    @generation_slot(services.gate)
    def regenerate(request: gr.Request, st, n, progress=gr.Progress(track_tqdm=True), *values):  # noqa: B034
        yield from run_round("", st, n, list(values), request, True, progress)

    def stop_columns(request: gr.Request):
        services.runs.cancel(session_key(request, "compare"))

    def undo(st, n):
        if st["rounds"]:
            for i in range(n):
                if st["histories"][i]:
                    st["histories"][i] = st["histories"][i][:-2]
                    st["turn_ids"][i] = st["turn_ids"][i][:-1]
            st["rounds"] -= 1
        return [chat_display(st["histories"][i]) for i in range(MAX_COLUMNS)] + [st]

    def clear():
        st = new_state()
        return [[] for _ in range(MAX_COLUMNS)] + ["" for _ in range(MAX_COLUMNS)] + [st, ""]

    @user_errors
    def vote(outcome: str, st: dict, n: int, request: gr.Request):
        services.gate.vote(visitor(request))
        if not st["rounds"]:
            raise gr.Error("send a message before voting")
        round_index = st["rounds"] - 1
        services.compare.vote(st["conversation_id"], round_index, outcome)
        st["voted"].append(round_index)
        names = {"tie": "Tie", "all_bad": "Both are bad" if n == 2 else "All are bad"}
        label = names.get(outcome) or vote_labels(n)[int(outcome)]
        return f"✅ Vote saved for round {round_index + 1}: {label}", st

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

    # access rules (ui/access.py): what these events act on is this tab's own session state
    guard = Guard(services)
    # "multiple": a message sent while a round streams is not dropped; it stops that round and
    # starts its own (RunRegistry.start), and the superseded round leaves the columns to it.
    send_args = dict(
        inputs=[prompt, state, ncols, *all_inputs],
        outputs=stream_outputs,
        api_visibility="private",
        trigger_mode="multiple",
        concurrency_id=GENERATION,
        concurrency_limit=services.settings.limits.total_generations,
    )
    send_event = send_btn.click(guard.owner(send), **send_args)
    submit_event = prompt.submit(guard.owner(send), **send_args)
    regen_event = regen_btn.click(
        guard.owner(regenerate),
        inputs=[state, ncols, *all_inputs],
        outputs=stream_outputs,
        api_visibility="private",
        concurrency_id=GENERATION,
        concurrency_limit=services.settings.limits.total_generations,
    )
    stop_btn.click(
        guard.owner(stop_columns),
        None,
        None,
        cancels=[send_event, submit_event, regen_event],
        api_visibility="private",
    )
    undo_btn.click(
        guard.owner(undo), [state, ncols], [*(c.chatbot for c in columns), state], api_visibility="private"
    )
    clear_btn.click(
        guard.owner(clear),
        None,
        [*(c.chatbot for c in columns), *(c.stats for c in columns), state, vote_status],
        api_visibility="private",
    )

    def bind_vote(outcome: str):
        def on_vote(st: dict, n: int, request: gr.Request):
            return vote(outcome, st, n, request)

        return on_vote

    for btn, outcome in [
        *((b, str(i)) for i, b in enumerate(best_btns)),
        (tie_btn, "tie"),
        (bad_btn, "all_bad"),
    ]:
        btn.click(
            guard.owner(bind_vote(outcome)), [state, ncols], [vote_status, state], api_visibility="private"
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
        rating.attach(col.chatbot, lambda st, i=i: st["turn_ids"][i], state)
    return [c.preset for c in columns]
