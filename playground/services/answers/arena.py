"""Arena: anonymous A/B battles between two presets drawn at random. No Gradio here.

Secrecy: which presets fight lives only in this service and in the database's ``battles`` table
(stored when the battle starts and after each finished round, so a vote after a restart still
works), keyed by an unguessable battle id bound to the session that started it. Until the vote, nothing returned from here names them: answers
are "Model A" / "Model B", loading status is not passed on, and error messages have the presets'
names, model ids and identity terms blanked out. ``vote`` records the vote once and reveals them.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field

from playground.engine.models.presets import Preset, PresetRegistry
from playground.engine.models.templates import parse_messages
from playground.errors import PlaygroundError
from playground.services.answers.chat import AnswerRequest, AnswerUpdate
from playground.services.answers.compare import CompareService
from playground.services.answers.identity import identity_terms, names_itself, term_pattern, weights_available
from playground.services.answers.runs import wait_if_stopping
from playground.store.db import Store

SIDES = ("Model A", "Model B")
OUTCOMES = ("0", "1", "tie", "all_bad")  # as in the compare tab: A, B, tie, both bad
HIDDEN = "[hidden]"


@dataclass
class ArenaView:
    """What the page and the API may see of a battle before the vote: no names."""

    battle_id: str
    round: int  # the round shown, 1-based; 0 before the first message
    texts: list[str]
    finished: list[bool]
    errors: list[str | None]
    chats: list[list[dict]]  # each side's conversation for display
    can_vote: bool

    def as_json(self) -> dict:
        return {
            "battle_id": self.battle_id,
            "round": self.round,
            **dict(zip(SIDES, self.texts, strict=True)),
            "finished": dict(zip(SIDES, self.finished, strict=True)),
            "errors": dict(zip(SIDES, self.errors, strict=True)),
            "can_vote": self.can_vote,
        }


@dataclass
class Reveal:
    vote_id: int
    outcome: str
    identity_leaked: bool
    models: list[dict]  # per side: preset, display_name, model_id

    def as_json(self) -> dict:
        return {
            "vote_id": self.vote_id,
            "outcome": self.outcome,
            "identity_leaked": self.identity_leaked,
            **dict(zip(SIDES, self.models, strict=True)),
        }


def _set_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


@dataclass
class _Battle:
    id: str
    session: str
    presets: tuple[str, str]
    conversation_id: str | None = None
    histories: list[list[dict]] = field(default_factory=lambda: [[], []])
    turn_ids: list[list[int]] = field(default_factory=lambda: [[], []])
    rounds: int = 0
    cancel: threading.Event | None = None  # set while both answers are being generated
    idle: threading.Event = field(default_factory=_set_event)  # set while no round runs
    leaked: bool = False
    vote_id: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ArenaService:
    def __init__(
        self,
        registry: PresetRegistry,
        compare: CompareService,
        store: Store,
        pool: list[str] | None = None,
        weights: dict[str, float] | None = None,
        available: Callable[[Preset], bool] = weights_available,
        rng: random.Random | None = None,
        max_battles: int = 10_000,
    ):
        self.registry, self.compare, self.store = registry, compare, store
        self.weights = dict(weights or {})
        unknown = [n for n in [*(pool or []), *self.weights] if n not in registry]
        if unknown:
            raise PlaygroundError(
                f"the arena pool names unknown preset(s) {unknown}; known: {registry.names()}"
            )
        self._pool, self._available = pool, available
        self._rng = rng or random.SystemRandom()
        self._battles: OrderedDict[str, _Battle] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_battles

    def pool(self) -> list[str]:
        """Presets a battle may draw: the configured pool, or every preset whose weights are here."""
        names = (
            self._pool if self._pool is not None else [p.name for p in self.registry if self._available(p)]
        )
        unavailable = self.registry.unavailable  # e.g. too big for a ZeroGPU slot
        return [n for n in dict.fromkeys(names) if self.weights.get(n, 1.0) > 0 and n not in unavailable]

    def new_battle(self, session: str | None) -> str:
        """Start a battle between two presets from ``draw``; return the battle id only."""
        if not session:
            raise PlaygroundError("the arena needs a session (a browser tab or a gradio_client Client)")
        battle = _Battle(id=secrets.token_urlsafe(18), session=session, presets=self.draw())
        self._save(battle, session_id=session, presets=list(battle.presets))
        with self._lock:
            self._battles[battle.id] = battle
            while len(self._battles) > self._max:
                self._battles.popitem(last=False)
        return battle.id

    def draw(self) -> tuple[str, str]:
        """Two different presets from the pool, weighted, in random left/right order."""
        names = self.pool()
        if len(names) < 2:
            raise PlaygroundError(
                f"the arena needs at least two presets whose weights are available, found {names}; "
                "download another model or set --arena-pool"
            )
        first = self._rng.choices(names, [self.weights.get(n, 1.0) for n in names])[0]
        rest = [n for n in names if n != first]
        pair = [first, self._rng.choices(rest, [self.weights.get(n, 1.0) for n in rest])[0]]
        self._rng.shuffle(pair)
        return pair[0], pair[1]

    def view(self, battle_id: str, session: str | None) -> ArenaView:
        battle = self._get(battle_id, session)
        return self._view(battle, [], None)

    def restore(self, battle_id: str | None, session: str | None) -> ArenaView | None:
        """For a page that (re)loads: the session's battle, after its round stops if its page went
        away (a reload stops it; a round answering in another tab is shown as it stands); None if
        the battle is not the session's."""
        if not self.owns(battle_id, session):
            return None
        battle = self._get(battle_id, session)
        wait_if_stopping(battle.cancel, battle.idle)
        return self._view(battle, [], None)

    def send(
        self, battle_id: str, session: str | None, text: str, cancel: threading.Event | None = None
    ) -> Iterator[ArenaView]:
        """Both models answer ``text`` at once, each with its preset's template and defaults."""
        text = (text or "").strip()
        battle = self._get(battle_id, session)
        if not text:
            raise PlaygroundError("type a message first")
        wait_if_stopping(battle.cancel, battle.idle)  # a round whose page went away
        with battle.lock:
            if battle.vote_id is not None:
                raise PlaygroundError(
                    "this battle is over (you voted and the names are revealed); start a new battle"
                )
            if battle.cancel is not None:
                raise PlaygroundError(
                    "Model A and Model B are still answering; wait for both answers or stop them"
                )
            if battle.conversation_id is None:
                battle.conversation_id = self.compare.start(list(battle.presets), "arena", battle.session)
                self._save(battle, conversation_id=battle.conversation_id)
            battle.cancel = cancel or threading.Event()
            battle.idle.clear()
            round_index = battle.rounds
            requests = [
                AnswerRequest(
                    preset=name,
                    messages=parse_messages([*battle.histories[i], {"role": "user", "content": text}]),
                    turn_index=round_index,
                )
                for i, name in enumerate(battle.presets)
            ]
        # the worker storing the last answer ends the round, so a round whose page went away (reloaded,
        # closed: its run is cancelled) still counts, and the battle can be voted on from a new page
        stream = self.compare.run(
            battle.conversation_id,
            requests,
            battle.cancel,
            on_finish=lambda final: self._end_round(battle, text, final),
        )
        snapshot: list[AnswerUpdate] = []
        began = False
        try:
            yield self._view(battle, [text], [AnswerUpdate(), AnswerUpdate()])
            began = True  # the workers start with the stream's first step
            with closing(stream):
                for snapshot in stream:
                    if not all(u.done for u in snapshot):  # the final one: the round ended, shown below
                        yield self._view(battle, [text], snapshot)
        finally:
            if not began:  # nobody read the round: it never started
                with battle.lock:
                    battle.cancel = None
                battle.idle.set()
        complete = _complete(snapshot)
        yield self._view(battle, [] if complete else [text], None if complete else snapshot)

    def stop(self, battle_id: str, session: str | None) -> bool:
        battle = self._get(battle_id, session)
        cancel = battle.cancel
        if cancel is not None:
            cancel.set()
        return cancel is not None

    def vote(self, battle_id: str, session: str | None, outcome: str) -> Reveal:
        """Record the one vote of a battle whose answers have finished, then reveal the names."""
        battle = self._get(battle_id, session)
        outcome = str(outcome).strip()
        if outcome not in OUTCOMES:
            raise PlaygroundError(
                f"vote must be one of {list(OUTCOMES)} (A, B, tie, both bad), got {outcome!r}"
            )
        with battle.lock:
            if battle.vote_id is not None:
                raise PlaygroundError("this battle already has a vote; each battle can be voted on once")
            if battle.cancel is not None:
                raise PlaygroundError(
                    "vote after both answers have finished: Model A and Model B are still answering"
                )
            if not battle.rounds:
                raise PlaygroundError(
                    "vote after both answers have finished: nothing has been answered in this battle yet"
                )
            battle.vote_id = self.store.record_vote(
                battle.conversation_id,
                "arena",
                0,
                outcome,
                list(battle.presets),
                anonymous=True,
                identity_leaked=battle.leaked,
            )
            self._save(battle, vote_id=battle.vote_id)
        models = [self.registry.get(n) for n in battle.presets]
        return Reveal(
            vote_id=battle.vote_id,
            outcome=outcome,
            identity_leaked=battle.leaked,
            models=[
                {"preset": p.name, "display_name": p.display_name, "model_id": p.model.id} for p in models
            ],
        )

    def turn_ids(self, battle_id: str | None, side: int) -> list[int]:
        """Stored answer ids of one side, one per finished round (for per-answer ratings)."""
        with self._lock:
            battle = self._battles.get(battle_id or "")
        if battle is None and battle_id:
            battle = self._load(battle_id)
        return list(battle.turn_ids[side]) if battle else []

    # ------------------------------------------------------------------ internals

    def owns(self, battle_id: str | None, session: str | None) -> bool:
        """Whether ``battle_id`` is one of ``session``'s battles (in memory or stored)."""
        try:
            self._get(battle_id, session)
        except PlaygroundError:
            return False
        return True

    def _save(self, battle: _Battle, **fields) -> None:
        self.store.save_battle(battle.id, **fields)

    def _load(self, battle_id: str) -> _Battle | None:
        """A stored battle (after a restart, or evicted from memory), its rounds rebuilt from its turns."""
        row = self.store.battle(battle_id)
        if row is None or len(row.presets) != 2:
            return None
        battle = _Battle(
            id=row.id,
            session=row.session_id,
            presets=(row.presets[0], row.presets[1]),
            conversation_id=row.conversation_id,
            rounds=row.rounds,
            leaked=row.leaked,
            vote_id=row.vote_id,
        )
        turns = self.store.turns_by_id([t for side in row.turn_ids for t in side])
        for side, ids in enumerate(row.turn_ids):
            for turn_id in ids:
                turn = turns[turn_id]
                asked = next(m["content"] for m in reversed(turn.messages) if m["role"] == "user")
                battle.histories[side] += [
                    {"role": "user", "content": asked},
                    {"role": "assistant", "content": turn.output.strip()},
                ]
                battle.turn_ids[side].append(turn_id)
        return battle

    def _get(self, battle_id: str | None, session: str | None) -> _Battle:
        with self._lock:
            battle = self._battles.get(battle_id or "")
            if battle is not None:
                self._battles.move_to_end(battle.id)
        if battle is None and battle_id and session:
            battle = self._load(battle_id)
            if battle is not None and battle.session == session:
                with self._lock:
                    battle = self._battles.setdefault(battle.id, battle)
        if battle is None or not session or battle.session != session:
            raise PlaygroundError(
                f"battle {battle_id!r} is not one of this session's battles; start one with New battle (/arena_new)"
            )
        return battle

    def _end_round(self, battle: _Battle, text: str, snapshot: list[AnswerUpdate]) -> bool:
        """Keep a round whose two answers both finished without error (stopped ones too: a stopped
        answer is a finished one); note self-naming answers."""
        presets = [self.registry.get(n) for n in battle.presets]
        complete = _complete(snapshot)
        with battle.lock:
            battle.leaked |= any(names_itself(u.text, p) for u, p in zip(snapshot, presets, strict=False))
            if complete:
                for i, update in enumerate(snapshot):
                    battle.histories[i] += [
                        {"role": "user", "content": text},
                        {"role": "assistant", "content": update.text.strip()},
                    ]
                    battle.turn_ids[i].append(update.turn_id)
                battle.rounds += 1
            battle.cancel = None
            rounds, turn_ids, leaked = battle.rounds, [list(t) for t in battle.turn_ids], battle.leaked
        try:
            self._save(battle, rounds=rounds, turn_ids=turn_ids, leaked=leaked)
        finally:
            battle.idle.set()
        return complete

    def _view(self, battle: _Battle, pending: list[str], snapshot: list[AnswerUpdate] | None) -> ArenaView:
        updates = snapshot or [AnswerUpdate(done=True), AnswerUpdate(done=True)]
        errors = [self._redact(u.error, battle) if u.error else None for u in updates]
        chats = []
        for i, update in enumerate(updates):
            shown = [dict(m) for m in battle.histories[i]]
            if pending:
                answer = f"⚠️ {errors[i]}" if errors[i] else (update.text or "…")
                shown += [{"role": "user", "content": pending[0]}, {"role": "assistant", "content": answer}]
            chats.append(shown)
        with battle.lock:
            can_vote = battle.rounds > 0 and battle.cancel is None and battle.vote_id is None
        return ArenaView(
            battle_id=battle.id,
            round=battle.rounds + (1 if pending else 0),
            texts=[
                u.text if pending else (battle.histories[i][-1]["content"] if battle.histories[i] else "")
                for i, u in enumerate(updates)
            ],
            finished=[u.done for u in updates],
            errors=errors,
            chats=chats,
            can_vote=can_vote,
        )

    def _redact(self, message: str, battle: _Battle) -> str:
        terms: list[str] = []
        for name in battle.presets:
            preset = self.registry.get(name)
            terms += [preset.name, preset.display_name, preset.model.id, *identity_terms(preset)]
        pattern = term_pattern(terms)
        return pattern.sub(HIDDEN, message) if pattern else message


def _complete(snapshot: list[AnswerUpdate]) -> bool:
    """Whether both answers of a round are finished and stored, without an error."""
    return len(snapshot) == 2 and all(u.done and not u.error for u in snapshot)
