"""Side by side: the same message to every column, all streaming at the same time."""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections.abc import Callable, Iterator

from playground.engine.models.loader import Progress
from playground.engine.threads import start_thread
from playground.errors import PlaygroundError
from playground.services.answers.chat import AnswerRequest, AnswerUpdate, ChatService
from playground.store.db import Store

_DONE = object()
# the most often a round's columns are passed on together (an answer that ends is passed on at once):
# every update costs the page a render of every column, which three long answers at 20 updates a
# second each made take seconds
SNAPSHOT_EVERY_S = 0.2


def vote_outcomes(columns: int) -> list[str]:
    """Valid vote outcomes for ``columns`` columns: the best column's index, a tie, or all bad."""
    return [str(i) for i in range(columns)] + ["tie", "all_bad"]


class CompareService:
    def __init__(self, chat: ChatService, store: Store):
        self.chat = chat
        self.store = store

    def start(self, presets: list[str], mode: str = "compare", session_id: str | None = None) -> str:
        for name in presets:
            self.chat.preset(name)
        return self.store.new_conversation(mode, presets, session_id)

    def run(
        self,
        conversation_id: str,
        requests: list[AnswerRequest],
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
        on_finish: Callable[[list[AnswerUpdate]], None] | None = None,
    ) -> Iterator[list[AnswerUpdate]]:
        """Yield a snapshot of every column when any of them has new text, at most every
        ``SNAPSHOT_EVERY_S`` (and at once when an answer ends).

        ``on_finish`` gets every column's final update once the last one is stored, from the worker
        thread that finished last and before the last snapshot is yielded: a round is finished even
        when nobody reads this generator any more (its page was reloaded or closed)."""
        for request in requests:
            self.chat.check(request)  # over a limit: refused before any column starts
        cancel = cancel or threading.Event()
        updates: queue.Queue = queue.Queue()
        state = [AnswerUpdate(status="waiting…") for _ in requests]
        finals = [AnswerUpdate(status="waiting…") for _ in requests]
        remaining, lock = [len(requests)], threading.Lock()

        def work(column: int, request: AnswerRequest) -> None:
            try:
                for update in self.chat.answer(request, conversation_id, column, cancel, progress):
                    finals[column] = copy.copy(update)
                    updates.put((column, finals[column]))
            finally:
                with lock:
                    remaining[0] -= 1
                    last = remaining[0] == 0
                try:
                    if last and on_finish is not None:
                        on_finish([copy.copy(u) for u in finals])
                finally:
                    updates.put((column, _DONE))

        threads = [start_thread(work, i, r, name=f"column-{i}") for i, r in enumerate(requests)]
        running, last, due = len(threads), 0.0, False  # due: new text not shown yet
        try:
            while running:
                wait = max(last + SNAPSHOT_EVERY_S - time.monotonic(), 0.0) if due else None
                try:
                    column, update = updates.get(timeout=wait)
                except queue.Empty:  # new text waited its turn: show it now
                    column, update = None, None
                ended = False
                while update is not None:  # take whatever else arrived meanwhile
                    if update is _DONE:
                        running -= 1
                    else:
                        ended |= update.done
                        state[column], due = update, True
                    column, update = updates.get_nowait() if not updates.empty() else (None, None)
                now = time.monotonic()
                if (due and (ended or now - last >= SNAPSHOT_EVERY_S)) or not running:
                    last, due = now, False
                    yield [copy.copy(s) for s in state]
        finally:
            cancel.set()
            for thread in threads:
                thread.join(timeout=30)

    def vote(self, conversation_id: str, turn_index: int, outcome: str, session: str | None = None) -> int:
        """Vote on a round; with ``session``, only on that session's own conversation."""
        conversation = self.store.conversation(conversation_id)
        if conversation is None or conversation.mode != "compare":
            raise PlaygroundError(f"there is no side-by-side conversation {conversation_id!r} to vote on")
        if session is not None and conversation.session_id not in (None, session):
            raise PlaygroundError(
                f"conversation {conversation_id!r} belongs to another session; you can only vote on your own rounds"
            )
        turns = [t for t in self.store.turns(conversation_id) if t.turn_index == turn_index]
        columns = sorted({t.column for t in turns})
        if len(columns) < 2:
            raise PlaygroundError(f"round {turn_index + 1} needs finished answers from at least two columns")
        if outcome not in vote_outcomes(len(columns)):
            raise PlaygroundError(f"vote must be one of {vote_outcomes(len(columns))}, got {outcome!r}")
        models = [next(t.preset_name for t in reversed(turns) if t.column == c) for c in columns]
        return self.store.record_vote(conversation_id, "compare", turn_index, outcome, models)
