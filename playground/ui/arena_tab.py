"""The Arena tab: two anonymous models answer the same prompt; vote, then see who they were.

The page holds only the battle id (a ``gr.BrowserState``, so a page that stays open across a
server restart still votes on its battle, and a reloaded page or a second tab of the same browser
shows it again); which presets fight is known to ``ArenaService`` and its database row alone until
the vote reveals it.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.container import Services
from playground.services.answers.arena import SIDES, ArenaView, Reveal
from playground.ui.access import Guard
from playground.ui.common import (
    GENERATION,
    BrowserStorage,
    generation_slot,
    inline_errors,
    owner,
    session_key,
    visitor,
)
from playground.ui.compare_tab import SEND_HINT
from playground.ui.rating import RatingPanel

VOTES = [  # (elem_id suffix, outcome, label)
    ("a", "0", "👈 A is better"),
    ("b", "1", "👉 B is better"),
    ("tie", "tie", "🤝 Tie"),
    ("bad", "all_bad", "👎 Both are bad"),
]
WELCOME = "Two anonymous models were drawn. Ask anything; vote when both have answered."


@dataclass
class ArenaTab:
    voted: gr.State  # a counter that changes after each vote (the leaderboard refreshes on it)
    on_load: tuple  # (fn, inputs, outputs) for the page's load event: resume this session's battle


def status_line(view: ArenaView) -> str:
    errors = [f"⚠️ {side}: {e}" for side, e in zip(SIDES, view.errors, strict=True) if e]
    if errors:
        return "  \n".join(errors)
    if not all(view.finished):
        return "Model A and Model B are answering…"
    return "Both answers are in: vote below, or keep talking." if view.can_vote else ""


def reveal_text(reveal: Reveal) -> str:
    label = next(text for _, outcome, text in VOTES if outcome == reveal.outcome)
    lines = [f"✅ Vote saved: **{label}**."]
    for side, model in zip(SIDES, reveal.models, strict=True):
        lines.append(f"**{side}** was **{model['display_name']}** (`{model['preset']}`, {model['model_id']})")
    if reveal.identity_leaked:
        lines.append(
            "⚠️ An answer named its own model, so this vote is left out of the leaderboard by default."
        )
    return "  \n".join(lines) + "  \nPress **New battle** to play again."


def _bind(vote, outcome: str):
    def on_vote(battle_id: str | None, key: str | None, count: int, request: gr.Request):
        return vote(outcome, battle_id, key, count, request)

    return on_vote


def build_arena_tab(services: Services, stored: BrowserStorage) -> ArenaTab:
    arena = services.arena
    browser, battle = stored.key, stored.arena  # the browser's key, the battle id
    voted = gr.State(0)
    gr.Markdown(
        "Two models, drawn at random, answer the same prompt side by side. Their names stay hidden "
        "until you vote; each battle takes one vote."
    )
    with gr.Row(equal_height=False):
        chats = [
            gr.Chatbot(height=420, label=side, elem_id=f"arena-chat-{key}", buttons=["copy"])
            for side, key in zip(SIDES, "ab", strict=True)
        ]
    with gr.Row():
        prompt = gr.Textbox(
            placeholder=f"Ask both models… ({SEND_HINT})",
            show_label=False,
            scale=8,
            lines=1,
            max_lines=8,
            elem_id="arena-prompt",
        )
        send_btn = gr.Button("Send", variant="primary", scale=1, elem_id="arena-send")
    with gr.Row():
        vote_btns = [
            gr.Button(label, interactive=False, elem_id=f"arena-vote-{key}") for key, _, label in VOTES
        ]
    with gr.Row():
        new_btn = gr.Button("🎲 New battle", size="sm", elem_id="arena-new")
        stop_btn = gr.Button("⏹ Stop", size="sm", elem_id="arena-stop")
    status = gr.Markdown("", elem_id="arena-status")
    rating = RatingPanel.build(services, "arena")

    def voting(enabled: bool) -> list:
        return [gr.update(interactive=enabled) for _ in vote_btns]

    @inline_errors(status)
    @generation_slot(services.gate)
    def send(text: str, battle_id: str | None, key: str | None, request: gr.Request):
        who = owner(key, request)
        battle_id = battle_id if arena.owns(battle_id, who) else arena.new_battle(who)
        with services.runs.run(session_key(request, "arena")) as cancel:
            for view in arena.send(battle_id, who, text, cancel):
                yield [*view.chats, battle_id, "", *voting(view.can_vote), status_line(view)]

    @inline_errors(status)
    def new_battle(battle_id: str | None, key: str | None, request: gr.Request):
        who = owner(key, request)
        if arena.owns(battle_id, who):
            arena.stop(battle_id, who)
        new_id = arena.new_battle(who)
        chat_updates = [gr.update(value=[], label=side) for side in SIDES]
        open_prompt = [gr.update(value="", interactive=True), gr.update(interactive=True)]
        return [*chat_updates, new_id, *open_prompt, *voting(False), WELCOME]

    @inline_errors(status)
    def vote(outcome: str, battle_id: str | None, key: str | None, count: int, request: gr.Request):
        services.gate.vote(visitor(request))
        reveal = arena.vote(battle_id, owner(key, request), outcome)
        labels = [
            gr.update(label=f"{side}: {m['display_name']}")
            for side, m in zip(SIDES, reveal.models, strict=True)
        ]
        closed = [gr.update(interactive=False), gr.update(interactive=False)]
        return [*labels, *closed, *voting(False), reveal_text(reveal), count + 1]

    @inline_errors(status)
    def stop(battle_id: str | None, key: str | None, request: gr.Request):
        if battle_id:
            arena.stop(battle_id, owner(key, request))

    # access rules (ui/access.py): the battle id comes from the page's storage and belongs to this
    # browser's key (``owner``), which a reloaded page keeps while its session changes: the service
    # refuses a battle that is not the key's (ArenaService._get), so the rules name no battle argument
    guard = Guard(services)
    send_outputs = [*chats, battle, prompt, *vote_btns, status]
    limit = services.settings.limits.total_generations
    generating = dict(api_visibility="private", concurrency_id=GENERATION, concurrency_limit=limit)
    sending = [
        send_btn.click(guard.owner(send), [prompt, battle, browser], send_outputs, **generating),
        prompt.submit(guard.owner(send), [prompt, battle, browser], send_outputs, **generating),
    ]
    new_btn.click(  # cancels a running send, so its last update cannot land in the new battle
        guard.anyone(new_battle),
        [battle, browser],
        [*chats, battle, prompt, send_btn, *vote_btns, status],
        cancels=sending,
        api_visibility="private",
    )
    stop_btn.click(guard.owner(stop), [battle, browser], [status], api_visibility="private")
    for btn, (_, outcome, _) in zip(vote_btns, VOTES, strict=True):
        btn.click(
            guard.owner(_bind(vote, outcome)),
            [battle, browser, voted],
            [*chats, prompt, send_btn, *vote_btns, status, voted],
            api_visibility="private",
        )
    for side, chatbot in enumerate(chats):
        rating.attach(
            chatbot, lambda bid, _key, _request, side=side: arena.turn_ids(bid, side), [battle, browser]
        )

    def resume(battle_id: str | None, key: str | None, request: gr.Request):
        """On page load: show this browser's battle again (still votable, or revealed if voted), or
        forget an id that is not its own."""
        view = arena.restore(battle_id, owner(key, request))
        if view is None:
            return [[], [], None, *voting(False), ""]
        return [*view.chats, battle_id, *voting(view.can_vote), status_line(view)]

    # anyone: it shows the caller's own battle only, and forgets an id that is not this browser's
    return ArenaTab(voted=voted, on_load=(resume, [battle, browser], [*chats, battle, *vote_btns, status]))
