"""Replay: re-run a stored answer exactly (same preset, revision, quantisation, prompt, params and
seed) and say whether the text matches. No Gradio here.

A stored resolved revision (a commit) is matched against the weights loaded now
(``revision_match``); a branch the preset offers is loaded as it was.

The replay is not stored: it is a check of the stored turn, not a new answer. When the preset's
file changed since (its sha256 differs from the turn's ``preset_hash``), the replay still runs on
the current file and says so (``preset_changed``), since a changed template or stop string can
explain a different text. Greedy and seeded answers replay to the same text on the same machine
and dtype; an unseeded sampled answer cannot exist (every stored turn records its seed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from playground.engine.templates import parse_messages
from playground.errors import PlaygroundError
from playground.services.chat import AnswerRequest, ChatService
from playground.store.models import Turn


@dataclass
class ReplayResult:
    turn_id: int
    preset: str
    preset_changed: bool
    seed: int | None
    stored_output: str
    replayed_output: str
    match: bool
    prompt_match: bool  # the prompt rendered now is the stored one
    revision_match: bool  # the weights' resolved revision now is the stored one
    finish_reason: str | None
    error: str | None

    def as_json(self) -> dict:
        return asdict(self)


class ReplayService:
    def __init__(self, chat: ChatService):
        self.chat = chat

    def replay(self, turn_id: int) -> ReplayResult:
        with self.chat.store.session() as s:
            turn = s.get(Turn, int(turn_id))
        if turn is None:
            raise PlaygroundError(f"there is no stored answer with id {turn_id} to replay")
        if turn.preset_name not in self.chat.registry:
            raise PlaygroundError(
                f"answer {turn_id} was made with preset {turn.preset_name!r}, which no longer exists here"
            )
        preset = self.chat.preset(turn.preset_name)
        local = not preset.model.remote
        request = AnswerRequest(
            preset=turn.preset_name,
            messages=parse_messages(turn.messages),
            params={**turn.params, "seed": turn.seed},
            system_prompt=turn.system_prompt,
            revision=turn.revision if local and turn.revision in preset.model.all_revisions() else None,
            quantization=turn.quantization if local and turn.quantization else None,
            turn_index=turn.turn_index,
        )
        *_, last = self.chat.answer(request, conversation_id="")  # no conversation: nothing stored
        text = last.text
        return ReplayResult(
            turn_id=turn.id,
            preset=turn.preset_name,
            preset_changed=preset.file_hash != turn.preset_hash,
            seed=turn.seed,
            stored_output=turn.output,
            replayed_output=text,
            match=text == turn.output and not last.error,
            prompt_match=self._prompt(request) == turn.prompt,
            revision_match=self._revision(request, preset) == turn.revision,
            finish_reason=last.finish_reason,
            error=last.error,
        )

    def _revision(self, request: AnswerRequest, preset) -> str:
        if preset.model.remote:
            return self.chat.remote.where(preset.model)["revision"]
        return self.chat.cache.get(self.chat.load_request(request)).resolved_revision

    def _prompt(self, request: AnswerRequest) -> str:
        preset = self.chat.preset(request.preset)
        loaded = self.chat.cache.get(self.chat.load_request(request)) if not preset.model.remote else None
        return self.chat.render(
            preset, request.messages, request.system_prompt, loaded.tokenizer if loaded else None
        )
