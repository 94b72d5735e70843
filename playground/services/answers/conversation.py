"""A side-by-side conversation as a state machine: its rounds, each column's history, and Send, Stop,
Regenerate and Undo on it. No Gradio here.

The Compare tab and the ``/compare`` endpoint both go through ``Conversations``:

- A round is the user's message and each column's answer. A stopped answer is a finished round
  like any other (its text is kept, in the view and in the history); so is a failed one (shown
  with its error; the model read nothing from it).
- The one turn-index rule (``round_index``): a round's ``turn_index`` is its position in the
  conversation, the number of user messages before its own. The tab sends each column the whole
  history (every kept round: the answer's text, empty where the column failed or had no answer),
  the API client sends its own; so a next message gets the next index, and a round run again
  (Regenerate, or the same messages resent) keeps its index.
- Running round ``k`` keeps rounds ``0…k-1`` and replaces everything after them (truncation):
  Regenerate re-runs the last round, whether it finished, stopped or failed; Undo removes exactly
  one round. Every answer ever generated stays stored; which ones make up the conversation now is
  saved with it (``Store.save_rounds``), so a reloaded page gets it back from the server.
- A round is finished by the worker that stores its last answer (``CompareService.run``'s
  ``on_finish``), not by whoever reads the stream, so a round whose page went away is kept too.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field

from playground.engine.models.loader import Progress
from playground.engine.models.templates import Message, parse_messages
from playground.errors import PlaygroundError
from playground.services.answers.chat import AnswerRequest, AnswerUpdate
from playground.services.answers.compare import CompareService
from playground.services.answers.rounds import (
    ColumnSetup,
    ConversationView,
    Round,
    history,
    round_index,
    stored_answer,
)
from playground.services.answers.runs import wait_if_stopping
from playground.store.db import Store


@dataclass
class _Conversation:
    id: str
    owner: str | None
    rounds: list[Round]
    voted: dict[int, str] = field(default_factory=dict)  # round index → vote outcome
    cancel: threading.Event | None = None  # the running round's, None while idle
    lock: threading.Lock = field(default_factory=threading.Lock)
    idle: threading.Event = field(default_factory=threading.Event)


class Conversations:
    def __init__(self, compare: CompareService, store: Store, max_kept: int = 10_000):
        self.compare, self.store = compare, store
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, _Conversation] = OrderedDict()
        self._max = max_kept

    # ------------------------------------------------------------------ what a page asks

    def view(self, conversation_id: str | None, owner: str | None) -> ConversationView:
        """The conversation as it stands (an empty one when there is none yet)."""
        if not conversation_id:
            return ConversationView(None)
        return self._view(self._get(conversation_id, owner))

    def restore(self, conversation_id: str | None, owner: str | None) -> ConversationView:
        """For a page that (re)loads: the owner's conversation, or an empty one if it is not theirs or
        gone. A round whose page went away is waited for while it stops."""
        try:
            conversation = self._get(conversation_id, owner) if conversation_id else None
        except PlaygroundError:
            conversation = None
        if conversation is None:
            return ConversationView(None)
        wait_if_stopping(conversation.cancel, conversation.idle)
        return self._view(conversation)

    def send(
        self,
        conversation_id: str | None,
        owner: str | None,
        text: str,
        columns: list[ColumnSetup],
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> Iterator[ConversationView]:
        """A new round: ``text`` to every column, after the whole conversation so far."""
        if not (text or "").strip():
            raise PlaygroundError("the message is empty; type a message first")
        if conversation_id:
            conversation = self._get(conversation_id, owner)
        else:  # over a limit: refused before anything is stored
            self._check(columns, [parse_messages([{"role": "user", "content": text}])] * len(columns))
            conversation = self._start(columns, owner)
        yield from self._run(conversation, None, text, columns, None, cancel, progress)

    def regenerate(
        self,
        conversation_id: str | None,
        owner: str | None,
        columns: list[ColumnSetup],
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> Iterator[ConversationView]:
        """Run the last round again (finished, stopped or failed), after the same history."""
        conversation = self._get(conversation_id, owner) if conversation_id else None
        if conversation is None or not conversation.rounds:
            raise PlaygroundError("nothing to regenerate yet: send a message first")
        index = len(conversation.rounds) - 1
        yield from self._run(conversation, index, None, columns, None, cancel, progress)

    def undo(self, conversation_id: str | None, owner: str | None) -> ConversationView:
        """Remove the last round from the conversation (its answers stay stored)."""
        conversation = self._get(conversation_id, owner) if conversation_id else None
        if conversation is None or not conversation.rounds:
            raise PlaygroundError("nothing to undo yet")
        self._claim(conversation, None)
        try:
            conversation.rounds = conversation.rounds[:-1]
            self._save(conversation)
        finally:
            self._release(conversation)
        return self._view(conversation)

    def vote(
        self, conversation_id: str | None, owner: str | None, outcome: str, index: int | None = None
    ) -> tuple[int, ConversationView]:
        """Vote on round ``index`` (by default the last one, once it has finished); returns the vote
        id and the view after it."""
        if index is None:
            view = self.view(conversation_id, owner)
            if not view.rounds:
                raise PlaygroundError("send a message before voting")
            if view.running:
                raise PlaygroundError("vote once every column has answered")
            index = len(view.rounds) - 1
        vote_id = self.compare.vote(conversation_id, int(index), outcome, owner)
        with self._lock:
            conversation = self._kept.get(conversation_id)
        if conversation is None:
            return vote_id, ConversationView(conversation_id)
        with conversation.lock:
            conversation.voted[int(index)] = outcome
        return vote_id, self._view(conversation)

    # ------------------------------------------------------------------ what the API asks

    def answer(
        self,
        conversation_id: str | None,
        owner: str | None,
        columns: list[ColumnSetup],
        messages: list[list[Message]],
        cancel: threading.Event | None = None,
    ) -> Iterator[ConversationView]:
        """A round whose history the client holds: each column's messages end with the user's."""
        if len({round_index(m) for m in messages}) != 1:
            raise PlaygroundError("every column's messages need the same number of user messages")
        self._check(columns, messages)
        conversation = self._get(conversation_id, owner) if conversation_id else self._start(columns, owner)
        yield from self._run(conversation, round_index(messages[0]), None, columns, messages, cancel, None)

    # ------------------------------------------------------------------ internals

    def _run(
        self, conversation, index, text, columns, messages, cancel, progress
    ) -> Iterator[ConversationView]:
        cancel = cancel or threading.Event()
        self._claim(conversation, cancel)
        try:
            if index is None:
                index = len(conversation.rounds)
            if messages is None:  # the tab: the history is the conversation's own
                text = conversation.rounds[index].user if text is None else text
                before = conversation.rounds[:index]
                messages = [
                    parse_messages([*history(before, i), {"role": "user", "content": text}])
                    for i in range(len(columns))
                ]
            text = messages[0][-1].content
            requests = [self._request(c, m, index) for c, m in zip(columns, messages, strict=True)]
            for request in requests:
                self.compare.chat.check(request)
            stream = self.compare.run(
                conversation.id,
                requests,
                cancel,
                progress,
                on_finish=lambda final: self._finish(conversation, index, text, final),
            )
        except BaseException:
            self._release(conversation)
            raise
        with conversation.lock:
            before = conversation.rounds
            earlier = before[:index] + [Round("", []) for _ in range(index - len(before))]  # the API's
            conversation.rounds = [*earlier, Round(text, [AnswerUpdate(status="waiting…") for _ in columns])]
        began = False
        try:
            yield self._view(conversation)
            began = True  # the workers start with the stream's first step; they finish the round
            with closing(stream):
                for snapshot in stream:
                    with conversation.lock:
                        if conversation.cancel is cancel:  # not yet finished by the last worker
                            conversation.rounds[index] = Round(text, snapshot)
                    yield self._view(conversation)
        finally:
            if not began:  # nobody read the round: it never started
                with conversation.lock:
                    conversation.rounds = before
                self._release(conversation)
        yield self._view(conversation)

    def _finish(self, conversation: _Conversation, index: int, text: str, final: list[AnswerUpdate]) -> None:
        """The last answer of a round is stored: the round is part of the conversation now."""
        with conversation.lock:
            conversation.rounds[index] = Round(text, final)
        try:
            self._save(conversation)
        finally:
            self._release(conversation)

    def _claim(self, conversation: _Conversation, cancel: threading.Event | None) -> None:
        """Mark a round as running (``cancel``) or the conversation as being changed; a round that is
        stopping is waited for, one still answering (in another tab) is not taken over."""
        with conversation.lock:
            running = conversation.cancel
        wait_if_stopping(running, conversation.idle)
        with conversation.lock:
            if conversation.cancel is not None:
                raise PlaygroundError(
                    "the last message is still being answered (in another tab?); stop it or wait for it"
                )
            conversation.cancel = cancel or threading.Event()
            conversation.idle.clear()

    def _release(self, conversation: _Conversation) -> None:
        with conversation.lock:
            conversation.cancel = None
        conversation.idle.set()

    def _check(self, columns: list[ColumnSetup], messages: list[list[Message]]) -> None:
        for column, asked in zip(columns, messages, strict=True):
            self.compare.chat.check(self._request(column, asked, round_index(asked)))

    def _start(self, columns: list[ColumnSetup], owner: str | None) -> _Conversation:
        conversation_id = self.compare.start([c.preset for c in columns], session_id=owner)
        conversation = _Conversation(conversation_id, owner, [])
        conversation.idle.set()
        return self._keep(conversation)

    @staticmethod
    def _request(column: ColumnSetup, messages: list[Message], index: int) -> AnswerRequest:
        return AnswerRequest(
            preset=column.preset,
            messages=messages,
            params=column.params,
            system_prompt=column.system_prompt,
            turn_index=index,
        )

    def _save(self, conversation: _Conversation) -> None:
        rounds = [
            {"user": r.user, "turns": [a.turn_id if a is not None else None for a in r.answers]}
            for r in conversation.rounds
        ]
        self.store.save_rounds(conversation.id, rounds)

    def _view(self, conversation: _Conversation) -> ConversationView:
        with conversation.lock:
            rounds = [Round(r.user, [copy.copy(a) for a in r.answers]) for r in conversation.rounds]
            running, voted = conversation.cancel is not None, dict(conversation.voted)
        return ConversationView(conversation.id, rounds, running, voted)

    def _keep(self, conversation: _Conversation) -> _Conversation:
        with self._lock:
            kept = self._kept.setdefault(conversation.id, conversation)
            self._kept.move_to_end(kept.id)
            while len(self._kept) > self._max:
                self._kept.popitem(last=False)
        return kept

    def _get(self, conversation_id: str, owner: str | None) -> _Conversation:
        with self._lock:
            conversation = self._kept.get(conversation_id)
        if conversation is None:
            conversation = self._load(conversation_id)
        if conversation.owner not in (None, owner):
            raise PlaygroundError(
                f"conversation {conversation_id!r} belongs to another session; you can only continue your own"
            )
        return conversation

    def _load(self, conversation_id: str) -> _Conversation:
        """A stored conversation: its saved rounds, or (saved before rounds were) each round's latest
        answer per column."""
        row = self.store.conversation(conversation_id)
        if row is None or row.mode != "compare":
            raise PlaygroundError(f"there is no side-by-side conversation {conversation_id!r}")
        saved = self.store.rounds(conversation_id)
        if saved is None:
            latest: dict[int, dict[int, int]] = {}
            for turn in self.store.turns(conversation_id):
                latest.setdefault(turn.turn_index, {})[turn.column] = turn.id
            saved = [
                {"turns": [by_column.get(c) for c in range(max(by_column) + 1)]}
                for _, by_column in sorted(latest.items())
            ]
        turns = self.store.turns_by_id([t for r in saved for t in r["turns"] if t is not None])
        rounds = []
        for entry in saved:
            answers = [stored_answer(turns[t]) if t in turns else None for t in entry["turns"]]
            user = entry.get("user")
            if user is None:
                asked = next((turns[t] for t in entry["turns"] if t in turns), None)
                user = asked.messages[-1]["content"] if asked is not None else ""
            rounds.append(Round(user, answers))
        votes = {v.turn_index: v.outcome for v in self.store.votes(("compare",), conversation_id)}
        conversation = _Conversation(row.id, row.session_id, rounds, votes)
        conversation.idle.set()
        return self._keep(conversation)
