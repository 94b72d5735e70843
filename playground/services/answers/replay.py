"""Replay: re-run a stored answer exactly and say whether the text matches. No Gradio here.

The model is fed the turn's **stored rendered prompt** (what it read then, not a re-render, so a
template edited since cannot change it), with the stored parameters and the seed that was used, on
the preset's model at the stored revision and quantisation, with the preset's stop strings, through
the same backend as every answer (``ChatService.backends``: for a local model the same engine). Sampling draws from a
per-request generator seeded with that seed, so greedy and seeded answers replay to the same text
on the same machine and dtype.

What could explain a different text is reported, never hidden:

* ``preset_changed``: the preset file's sha256 is not the turn's ``preset_hash`` (its stop strings
  or model may differ); the replay still runs on the current file. A preset that no longer exists
  cannot be replayed: an error names it.
* ``prompt_match``: whether the current template still renders the stored prompt from the stored
  messages and system prompt (the stored prompt is replayed either way).
* ``revision_match``: whether the weights resolve now to the stored revision (a commit, or the
  embedded model's package version and GGUF hash); a branch or tag the preset offers whose cached
  commit is the stored one is loaded for it.
* ``device`` / ``dtype`` and ``notes`` (in words): other kernels round differently; a stopped
  answer is replayed up to the number of tokens it had when stopped.

A generation that fails comes back with ``error`` (and ``match`` false), not as an exception.

Replays are **not stored**: a replay only reads the database, so the data, the leaderboard and
the exports are the same after any number of replays. An answer of an arena battle without a vote
is refused, since the replay would name its model before the vote.
"""

from __future__ import annotations

import json
import threading
from contextlib import closing
from dataclasses import asdict, dataclass, field

from sqlalchemy import exists, select

from playground.engine.generation.params import GenerationParams, parse_params
from playground.engine.generation.request import GenerationRequest
from playground.engine.models.presets import ModelSpec, Preset
from playground.engine.models.templates import parse_messages
from playground.errors import PlaygroundError
from playground.services.answers.chat import ChatService
from playground.store.models import Conversation, Turn, Vote


@dataclass
class ReplayResult:
    turn_id: int
    preset: str
    preset_changed: bool
    seed: int | None
    stored_output: str
    replayed_output: str
    match: bool
    prompt_match: bool | None  # the prompt rendered now is the stored one (None: not checked, the run failed)
    revision_match: bool | None  # the weights' resolved revision now is the stored one
    finish_reason: str | None
    error: str | None
    conversation_id: str = ""
    first_difference: int | None = None  # the first character where the texts differ
    stored_finish_reason: str = ""
    stored_preset_hash: str = ""
    preset_hash: str = ""
    stored_revision: str = ""
    revision: str = ""
    device: str = ""
    dtype: str = ""
    params: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class _Run:
    """What one replay generation produced, and on what."""

    text: str = ""
    finish_reason: str | None = None
    error: str | None = None
    stats: dict = field(default_factory=dict)
    revision: str = ""
    device: str = ""
    dtype: str = ""
    rendered: str | None = None


class ReplayService:
    def __init__(self, chat: ChatService):
        self.chat = chat

    def replay(self, turn_id: int | str, cancel: threading.Event | None = None) -> ReplayResult:
        turn = self._turn(turn_id)
        preset = self._preset(turn)
        params, notes = replay_params(turn)
        run = _Run()
        try:
            self._run(preset, turn, params, cancel or threading.Event(), run)
        except PlaygroundError as exc:
            run.error, run.finish_reason = str(exc), "error"
        result = ReplayResult(
            turn_id=turn.id,
            preset=preset.name,
            preset_changed=preset.file_hash != turn.preset_hash,
            seed=turn.seed,
            stored_output=turn.output,
            replayed_output=run.text,
            match=run.error is None and run.text == turn.output,
            prompt_match=None if run.rendered is None else run.rendered == turn.prompt,
            revision_match=(run.revision == turn.revision) if run.revision else None,
            finish_reason=run.finish_reason,
            error=run.error,
            conversation_id=turn.conversation_id,
            first_difference=first_difference(turn.output, run.text),
            stored_finish_reason=turn.finish_reason,
            stored_preset_hash=turn.preset_hash,
            preset_hash=preset.file_hash,
            stored_revision=turn.revision,
            revision=run.revision,
            device=run.device,
            dtype=run.dtype,
            params=params.model_dump(),
            stats=run.stats,
        )
        result.notes = _explain(result, turn) + notes
        return result

    # ------------------------------------------------------------------ internals

    def _turn(self, turn_id: int | str) -> Turn:
        try:
            number = int(str(turn_id).strip())
        except ValueError:
            raise PlaygroundError(
                f"a turn id is a whole number (an answer's turn_id), got {turn_id!r}"
            ) from None
        with self.chat.store.session() as s:
            turn = s.get(Turn, number)
            if turn is None:
                raise PlaygroundError(f"there is no stored answer with id {number} to replay")
            mode = s.scalar(select(Conversation.mode).where(Conversation.id == turn.conversation_id))
            voted = s.scalar(select(exists().where(Vote.conversation_id == turn.conversation_id)))
        if mode == "arena" and not voted:
            raise PlaygroundError(
                f"answer {number} belongs to an arena battle that has not been voted on yet; its model "
                "stays hidden until the vote, so it cannot be replayed before"
            )
        return turn

    def _preset(self, turn: Turn) -> Preset:
        registry = self.chat.registry
        if turn.preset_name not in registry:
            raise PlaygroundError(
                f"answer {turn.id} was made with preset {turn.preset_name!r} (file sha256 "
                f"{turn.preset_hash[:12]}…), which no longer exists here; known presets: "
                f"{', '.join(registry.names())}"
            )
        if turn.preset_name in registry.unavailable:
            raise PlaygroundError(
                f"cannot replay answer {turn.id}: preset {turn.preset_name!r} is unavailable here: "
                f"{registry.unavailable[turn.preset_name]}"
            )
        return registry.get(turn.preset_name)

    def _run(self, preset: Preset, turn: Turn, params: GenerationParams, cancel, run: _Run) -> None:
        """The stored prompt (or, for a server template, the stored messages) through the preset's
        backend, at the stored revision and quantisation where the preset still offers them."""
        spec = preset.model
        quantization = turn.quantization if turn.quantization in spec.all_quantizations() else None
        revision = None if spec.remote else revision_for(spec, turn.revision)
        with self.chat.backends.open(preset, revision, quantization) as model:
            origin = model.origin
            run.revision, run.device, run.dtype = origin.revision, origin.device, origin.dtype or turn.dtype
            messages = None
            if preset.template.kind == "server":
                try:
                    messages = json.loads(turn.prompt)
                except ValueError:
                    raise PlaygroundError(
                        f"answer {turn.id} was not sent as chat messages; its preset now uses `template: server`"
                    ) from None
            try:
                run.rendered = model.render(parse_messages(turn.messages), turn.system_prompt).text
            except PlaygroundError:
                run.rendered = (
                    None  # the stored messages no longer render (a template that needs a system turn)
                )
            request = GenerationRequest.build(
                turn.prompt, params, preset.stop, model.context_length, messages
            )
            _finish(model.stream([request], cancel), run)


def replay_params(turn: Turn) -> tuple[GenerationParams, list[str]]:
    """The stored parameters with the seed that was used (a stopped answer: capped at its length)."""
    notes = []
    try:
        params = parse_params({**(turn.params or {}), "seed": turn.seed}, base=GenerationParams())
    except PlaygroundError as exc:
        raise PlaygroundError(f"answer {turn.id}'s stored parameters no longer validate: {exc}") from None
    if turn.finish_reason == "stopped" and turn.completion_tokens:
        params = params.model_copy(
            update={"max_new_tokens": min(params.max_new_tokens, turn.completion_tokens)}
        )
        notes.append(
            f"the stored answer was stopped after {turn.completion_tokens} tokens; replayed up to there"
        )
    if turn.seed is None and params.do_sample:
        notes.append("the stored answer has no seed, so a sampled replay cannot be expected to match")
    return params, notes


def revision_for(spec: ModelSpec, stored: str) -> str | None:
    """The preset's named revision that resolves to the stored commit (None: the preset's default)."""
    names = spec.all_revisions()
    if stored in names:
        return stored
    if spec.loader != "embedded-gguf":
        from huggingface_hub import try_to_load_from_cache

        for name in names:
            try:
                found = try_to_load_from_cache(spec.id, "config.json", revision=name)
            except Exception:  # noqa: BLE001 - not in the local cache: not this one
                found = None
            if isinstance(found, str) and f"/snapshots/{stored}/" in found.replace("\\", "/"):
                return name
    return None


def first_difference(a: str, b: str) -> int | None:
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _finish(events, run: _Run) -> None:
    """Run a backend stream to its end and keep its last (``done``) event in ``run``."""
    last = None
    with closing(events):
        for last in events:  # noqa: B007 - the last event is the finished answer
            pass
    if last is None or not last.done:
        raise PlaygroundError("the replay ended without an answer")
    run.text, run.finish_reason, run.stats = last.text, last.finish_reason, last.stats.as_dict()
    if last.error:
        raise PlaygroundError(last.error)


def _explain(result: ReplayResult, turn: Turn) -> list[str]:
    notes = []
    if result.preset_changed:
        notes.append(
            f"preset {result.preset!r} changed since this answer (file sha256 {result.stored_preset_hash[:12]}… "
            f"then, {result.preset_hash[:12]}… now); replayed with the current file's model and stop strings"
        )
    if result.prompt_match is False:
        notes.append("the preset's template now renders another prompt; the stored prompt was replayed")
    if result.revision_match is False:
        notes.append(f"the model resolves to {result.revision!r} now, {result.stored_revision!r} then")
    if result.device and turn.device and (result.device, result.dtype) != (turn.device, turn.dtype):
        notes.append(f"ran on {result.device}/{result.dtype}, the answer on {turn.device}/{turn.dtype}")
    return notes
