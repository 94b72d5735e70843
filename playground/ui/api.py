"""API-only endpoints (stable ``api_name``s), each a thin call into a service.

JSON arguments are passed as strings so every client (gradio_client, curl, JS) sends the same
thing. Errors come back as the real cause (a ``gr.Error`` message).
"""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from playground.container import Services
from playground.errors import PlaygroundError
from playground.services.answers.chat import AnswerRequest, messages_from
from playground.services.answers.conversation import ColumnSetup, round_index
from playground.services.types import parse_json
from playground.ui.access import Guard
from playground.ui.common import GENERATION, generation_slot, session_id, session_key, user_errors, visitor


def register_api(services: Services) -> None:
    guard = Guard(services)
    slot = generation_slot(services.gate)
    generating = dict(concurrency_id=GENERATION, concurrency_limit=services.settings.limits.total_generations)

    @user_errors
    @slot
    def generate(
        preset: str,
        messages: str,
        params: str = "{}",
        system_prompt: str | None = None,
        request: gr.Request = None,
    ) -> Iterator[str]:
        """Stream one answer: preset name, messages as a JSON list of {role, content}, params as JSON."""
        answer = AnswerRequest(
            preset=preset,
            messages=messages_from(messages),
            params=parse_json(params, "params", {}),
            system_prompt=system_prompt,
        )
        services.chat.check(answer)
        conversation_id = services.compare.start([preset], mode="api", session_id=session_id(request))
        with services.runs.run(session_key(request, "api-generate")) as cancel:
            for update in services.chat.answer(answer, conversation_id, cancel=cancel):
                if update.error:
                    raise PlaygroundError(update.error)
                if update.text:
                    yield update.text

    @user_errors
    @slot
    def compare(
        presets: str,
        messages: str,
        params: str = "{}",
        system_prompts: str = "",
        conversation_id: str = "",
        request: gr.Request = None,
    ) -> Iterator[dict]:
        """Side by side: presets as a JSON list; messages one JSON list for all columns or one per column."""
        names = parse_json(presets, "presets", [])
        if not isinstance(names, list) or not 1 <= len(names) <= 4:
            raise PlaygroundError("presets must be a JSON list of 1 to 4 preset names")
        raw_messages = parse_json(messages, "messages", [])
        per_column = (
            raw_messages
            if raw_messages and isinstance(raw_messages[0], list)
            else [raw_messages] * len(names)
        )
        raw_params = parse_json(params, "params", {})
        per_params = raw_params if isinstance(raw_params, list) else [raw_params] * len(names)
        systems = parse_json(system_prompts, "system_prompts", [None] * len(names))
        if len(per_column) != len(names) or len(per_params) != len(names) or len(systems) != len(names):
            raise PlaygroundError(
                "messages, params and system_prompts need one entry per preset (or one shared)"
            )
        setups = [ColumnSetup(n, p or {}, s) for n, p, s in zip(names, per_params, systems, strict=True)]
        asked = [messages_from(m) for m in per_column]
        turn_index = round_index(asked[0])
        with services.runs.run(session_key(request, "api-compare")) as cancel:
            views = services.conversations.answer(
                conversation_id or None, session_id(request), setups, asked, cancel
            )
            for view in views:
                answers = view.rounds[turn_index].answers
                yield {
                    "conversation_id": view.conversation_id,
                    "turn_index": turn_index,
                    "columns": [
                        {
                            "preset": n,
                            "text": u.text,
                            "done": u.done,
                            "finish_reason": u.finish_reason,
                            "error": u.error,
                            "turn_id": u.turn_id,
                            "stats": u.stats,
                        }
                        for n, u in zip(names, answers, strict=True)
                    ],
                }

    @user_errors
    def rate(
        turn_id: int, value: int, reasons: str = "[]", comment: str = "", request: gr.Request = None
    ) -> dict:
        """Like (1) or dislike (-1) one of this session's stored answers, with reasons (JSON list) and a comment."""
        chosen = parse_json(reasons, "reasons", [])
        rating_id = services.feedback.rate(int(turn_id), int(value), chosen, comment, session_id(request))
        return {"rating_id": rating_id}

    @user_errors
    def vote(conversation_id: str, turn_index: int, outcome: str, request: gr.Request = None) -> dict:
        """Vote on a side-by-side round of this session: the best column's index ("0", "1", …), "tie" or "all_bad"."""
        services.gate.vote(visitor(request))
        vote_id, _view = services.conversations.vote(
            conversation_id, session_id(request), str(outcome), int(turn_index)
        )
        return {"vote_id": vote_id}

    @user_errors
    def stop(request: gr.Request = None) -> dict:
        """Stop every generation this API session is running (answers, comparisons, notebook grids)."""
        return {
            "stopped": sum(
                services.runs.cancel(session_key(request, s))
                for s in ("api-generate", "api-compare", "api-notebook")
            )
        }

    def presets() -> list[dict]:
        """Every preset with its metadata (card link, license, loader, quantisation, template, defaults)."""
        return services.presets.list()

    @user_errors
    def render_prompt(preset: str, messages: str, system_prompt: str | None = None) -> dict:
        """The exact prompt string (and token count) the preset's model receives for these messages."""
        return services.presets.render_prompt(preset, messages_from(messages), system_prompt)

    @user_errors
    def save_preset(
        base: str, name: str, display_name: str = "", params: str = "{}", system_prompt: str | None = None
    ) -> dict:
        """Save a copy of preset ``base`` with other parameters as user preset ``name``."""
        saved = services.presets.save_user_preset(
            base, name, display_name, parse_json(params, "params", {}), system_prompt
        )
        return saved.summary()

    gr.api(guard.anyone(generate), api_name="generate", **generating)
    gr.api(guard.anyone(presets), api_name="presets")
    gr.api(guard.anyone(render_prompt), api_name="render_prompt")
    gr.api(guard.nobody(save_preset, "saving a user preset"), api_name="save_preset")
    # an empty conversation_id starts a new conversation; a given one is continued by its owner only
    gr.api(
        guard.owner(compare, conversation="conversation_id", action="continue it"),
        api_name="compare",
        **generating,
    )
    gr.api(guard.owner(rate, answer="turn_id", action="rate it", spends="ratings"), api_name="rate")
    gr.api(guard.owner(vote, conversation="conversation_id", action="vote on it"), api_name="vote")
    gr.api(guard.owner(stop), api_name="stop")  # stops only the caller's own generations
