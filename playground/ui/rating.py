"""The rating panel under a tab's chats: Like/Dislike on an answer, then reasons and a comment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from playground.errors import PlaygroundError
from playground.services.answers.feedback import reasons_for
from playground.ui.access import Guard
from playground.ui.common import inline_errors, owner


@dataclass
class RatingPanel:
    services: object
    box: gr.Group
    title: gr.Markdown
    reasons: gr.CheckboxGroup
    comment: gr.Textbox
    save: gr.Button
    current: gr.State

    @classmethod
    def build(cls, services, scope: str) -> RatingPanel:
        current = gr.State(None)
        with gr.Group(visible=False) as box:
            title = gr.Markdown("")
            reasons = gr.CheckboxGroup([], label="Why?", elem_id=f"{scope}-reasons")
            comment = gr.Textbox(label="Comment (optional)", lines=1, elem_id=f"{scope}-comment")
            save = gr.Button("Save reasons", size="sm", elem_id=f"{scope}-save-reasons")
        panel = cls(services, box, title, reasons, comment, save, current)

        @inline_errors(title)
        def save_reasons(rating: dict | None, chosen: list[str], text: str, request: gr.Request):
            if not rating:
                raise PlaygroundError("rate an answer first (👍 / 👎 under it)")
            services.feedback.explain(rating["id"], rating["value"], chosen, text)
            return gr.update(visible=False), None, "✅ Rating saved with your reasons."

        # the rating it explains is the one this session just gave (kept in its server-side state)
        save_reasons = Guard(services).owner(save_reasons, spends="ratings")
        save.click(save_reasons, [current, reasons, comment], [box, current, title], api_visibility="private")
        return panel

    def attach(self, chatbot: gr.Chatbot, turn_ids_of: Callable[..., list], inputs: list) -> None:
        """👍/👎 under ``chatbot``'s answers: ``inputs`` are the page's id of what it shows and the
        browser key; ``turn_ids_of(id, key, request)`` gives the stored answer behind each answer."""
        services = self.services

        def on_like(first, key, data: gr.LikeData, request: gr.Request):
            value = {True: 1, "Like": 1, False: -1, "Dislike": -1}.get(data.liked)
            index = data.index[0] if isinstance(data.index, list | tuple) else data.index
            try:
                turn_ids = turn_ids_of(first, key, request)
                if (
                    value is None
                    or index is None
                    or index // 2 >= len(turn_ids)
                    or turn_ids[index // 2] is None
                ):
                    return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
                # only an answer of this browser's conversations (its key owns them, see ``owner``)
                rating_id = services.feedback.rate(turn_ids[index // 2], value, session=owner(key, request))
            except PlaygroundError as exc:  # shown in the panel, which opens for it
                return None, gr.update(visible=True), f"⚠️ {exc}", gr.skip(), gr.skip()
            word = "Liked" if value > 0 else "Disliked"
            return (
                {"id": rating_id, "value": value},
                gr.update(visible=True),
                f"{word} answer {index // 2 + 1}. Add reasons?",
                gr.update(choices=reasons_for(value), value=[]),
                "",
            )

        chatbot.like(  # the answer is checked to be this browser's (ids come from the page's storage)
            Guard(services).owner(on_like, spends="ratings"),
            inputs,
            [self.current, self.box, self.title, self.reasons, self.comment],
            api_visibility="private",
        )
