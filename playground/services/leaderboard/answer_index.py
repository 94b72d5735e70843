"""Counted votes and their stored answers, read once and then brought up to date incrementally.

``AnswerIndex`` keeps, per stored answer, the few numbers the leaderboard needs (conversation,
column, round, model, length, TTFT, tokens/s and, with style control, markdown counts); each
refresh reads only rows added since the last one. The store only ever appends turns and votes; a
database that shrank, or a read that failed half-way, makes the index start over.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from playground.services.leaderboard.battles import battles_table
from playground.services.leaderboard.style_control import (
    STYLE_FEATURES,
    style_matrix,
)
from playground.store.models import Turn, Vote

TURN_STATS = ("avg_answer_chars", "median_ttft_s", "median_tokens_per_s")
_PARTITION = 20_000  # answers read at a time

# --------------------------------------------------------------------------- counted votes, stored answers


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk read.

    Fetching 100k rows allocates 100k short-lived row tuples; each allocation burst triggers
    collections that walk the whole heap (measured: a 0.13 s fetch took 0.4–0.5 s). Reference
    counting still frees everything; the collector is switched back on (if it was on) at the end.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class CountedVotes:
    """The counted votes, oldest first, as flat columns: ``conversation`` (codes of an
    :class:`AnswerSnapshot`), ``arena`` (an arena vote, not a Compare one), ``turn_index`` (the
    voted round), ``models`` (JSON text) and ``outcome``."""

    conversation: np.ndarray
    arena: np.ndarray
    turn_index: np.ndarray
    models: list[str]
    outcome: list[str]

    def __len__(self) -> int:
        return len(self.outcome)

    def battles(self, positions: bool = False) -> pd.DataFrame:
        """:func:`votes_to_battles` of these votes."""
        return battles_table(self.models, self.outcome, positions)


@dataclass(frozen=True)
class AnswerSnapshot:
    """The :class:`AnswerIndex` as of one :meth:`~AnswerIndex.refresh`.

    ``answers``: one row per kept answer, ``id, conversation, column, turn_index, model`` (codes),
    ``ttft, tps`` and the style features (``length`` is the answer's characters). ``vote_mark``:
    the highest vote id covered; ``vote_conversation[vote id]`` is that vote's conversation code
    (-1: none). Look up answer statistics with :meth:`answer_stats` and the style of a column with
    :meth:`style`.
    """

    vote_mark: int
    answers: pd.DataFrame
    vote_conversation: np.ndarray
    conversations: int  # how many conversation codes there are
    model_names: np.ndarray

    def __post_init__(self) -> None:
        a = self.answers
        ordered = a if a["id"].is_monotonic_increasing else a.sort_values("id")
        latest = ordered.drop_duplicates(["conversation", "column", "turn_index"], keep="last")
        width = int(latest["column"].max()) + 1 if len(latest) else 1
        depth = int(latest["turn_index"].max()) + 1 if len(latest) else 1
        column_key = latest["conversation"].to_numpy() * width + latest["column"].to_numpy()
        features = latest[list(STYLE_FEATURES)]
        summed = features.groupby(column_key).sum()
        unknown = np.full((1, len(STYLE_FEATURES)), np.nan)  # row -1: not found
        lookups = {
            "_width": width,
            "_depth": depth,
            "_by_round": pd.Index(column_key * depth + latest["turn_index"].to_numpy()),
            "_round_style": np.vstack([features.to_numpy(dtype=np.float64), unknown]),
            "_by_column": pd.Index(summed.index.to_numpy()),
            "_column_style": np.vstack([summed.to_numpy(dtype=np.float64), unknown]),
        }
        for name, value in lookups.items():
            object.__setattr__(self, name, value)

    def answer_stats(self, conversations: np.ndarray) -> pd.DataFrame:
        """Per model (index), over the answers of these conversations (codes): average answer length
        (characters), median time to first token and median tokens/s (:data:`TURN_STATS`)."""
        counted = np.zeros(self.conversations, dtype=bool)
        counted[conversations[conversations >= 0]] = True
        kept = self.answers[counted[self.answers["conversation"].to_numpy()]]
        if kept.empty:
            return pd.DataFrame(columns=list(TURN_STATS), dtype="float64")
        grouped = kept.groupby("model")
        stats = pd.DataFrame(
            {
                "avg_answer_chars": grouped["length"].mean(),
                "median_ttft_s": grouped["ttft"].median(),
                "median_tokens_per_s": grouped["tps"].median(),
            }
        )
        stats.index = pd.Index(self.model_names[stats.index.to_numpy()], name="model")
        return stats

    def style(self, conversation: np.ndarray, column: np.ndarray, turn_index: np.ndarray, summed: np.ndarray):
        """Style features (rows of :data:`STYLE_FEATURES`) of a column of a conversation: of the
        last answer of round ``turn_index``, or, where ``summed``, summed over all its rounds' last
        answers; NaN where there is none."""
        key = conversation * self._width + column
        by_column = self._column_style[self._by_column.get_indexer(key)]
        by_round = self._round_style[self._by_round.get_indexer(key * self._depth + turn_index)]
        found = np.where(summed[:, None], by_column, by_round)
        known = (conversation >= 0) & (column < self._width) & (summed | (turn_index < self._depth))
        found[~known] = np.nan  # keys out of range would alias another conversation's
        return found


class AnswerIndex:
    """The stored answers of voted conversations, read once and kept in memory, narrowly.

    Per answer (a ``Turn`` without an error) it keeps the turn id, a conversation code, column,
    round, model code, TTFT, tokens/s and the :data:`~playground.services.leaderboard.style_control.
    STYLE_FEATURES` of its text — not the text; per vote, its conversation's code. Turns and votes
    are append-only, so :meth:`refresh` reads only what was added since its last call (the votes
    and turns with higher ids): bringing 200k stored answers up to date then costs milliseconds,
    where reading them took 1–2 s (SQLite visits every wide turn row: no narrow index to read).

    A conversation is *tracked* once it has a vote: from then on all its answers are kept, the
    ones stored before its first vote (read by conversation id, once) and those after (read with
    the new turns). Answers of conversations nobody voted on (notebook runs, …) are never read.
    If the database has fewer votes or turns than last time (a different or rebuilt file), the
    index starts over. Thread-safe.

    With ``style=False`` only the length of each text is read (``length(output)`` in SQL: no text
    crosses over, no markdown is counted); the style of every answer is then unknown.
    """

    _KEYS = (Turn.id, Turn.conversation_id, Turn.column, Turn.turn_index, Turn.preset_name)
    _STATS = (Turn.ttft_s, Turn.tokens_per_s)
    _FRAME = ("id", "conversation", "column", "turn_index", "model", "ttft", "tps", *STYLE_FEATURES)

    def __init__(self, style: bool = True) -> None:
        self.style = style
        self._columns = (*self._KEYS, *self._STATS, Turn.output if style else func.length(Turn.output))
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.vote_mark = self.turn_mark = 0  # the highest vote / turn id read
        self._conversations: dict[str, int] = {}  # conversation id → code
        self._models: dict[str, int] = {}  # preset name → code
        self._vote_conversation = np.full(1, -1, dtype=np.int64)  # vote id → conversation code
        self._chunks: list[dict[str, np.ndarray]] = []
        self._snapshot: AnswerSnapshot | None = None

    def refresh(self, connection) -> AnswerSnapshot:
        """Read what was added since the last call; return the index as of now. If reading fails
        half-way, the index starts over next time (nothing is counted twice)."""
        with self._lock, gc_paused():
            try:
                return self._refresh(connection)
            except BaseException:
                self._reset()
                raise

    def _refresh(self, connection) -> AnswerSnapshot:
        vmax = connection.execute(select(func.max(Vote.id))).scalar() or 0
        tmax = connection.execute(select(func.max(Turn.id))).scalar() or 0
        if vmax < self.vote_mark or tmax < self.turn_mark:
            self._reset()
        new = self._read_votes(connection, vmax) if vmax > self.vote_mark else []
        if tmax > self.turn_mark:  # new answers of conversations that have a vote (by now)
            voted = select(Vote.id).where(Vote.conversation_id == Turn.conversation_id, Vote.id <= vmax)
            query = select(*self._columns).where(
                Turn.id > self.turn_mark, Turn.id <= tmax, Turn.error.is_(None), voted.exists()
            )
            self._ingest_all(connection, query)
        if new and self.turn_mark:  # older answers of conversations voted on for the first time
            for start in range(0, len(new), 500):
                query = select(*self._columns).where(
                    Turn.conversation_id.in_(new[start : start + 500]),
                    Turn.id <= self.turn_mark,
                    Turn.error.is_(None),
                )
                self._ingest_all(connection, query)
        if self._snapshot is None or self._snapshot.vote_mark != vmax:
            self._snapshot = AnswerSnapshot(
                vote_mark=vmax,
                answers=self._frame(),
                vote_conversation=self._vote_conversation[: vmax + 1],
                conversations=len(self._conversations),
                model_names=np.array(list(self._models), dtype=object),
            )
        self.vote_mark, self.turn_mark = vmax, tmax
        return self._snapshot

    def _read_votes(self, connection, vmax: int) -> list[str]:
        """Record the conversation of each vote added since last time; return the conversations
        voted on for the first time."""
        query = select(Vote.id, Vote.conversation_id).where(Vote.id > self.vote_mark, Vote.id <= vmax)
        rows = connection.execute(query).fetchall()
        codes, new = self._conversations, []
        grown = np.full(vmax + 1, -1, dtype=np.int64)
        grown[: len(self._vote_conversation)] = self._vote_conversation
        for vote_id, conversation in rows:
            code = codes.get(conversation)
            if code is None:
                code = codes[conversation] = len(codes)
                new.append(conversation)
            grown[vote_id] = code
        self._vote_conversation = grown
        return new

    def _ingest_all(self, connection, query) -> None:
        """Ingest a query's answers 20k at a time, so that the texts of a first read of 200k answers
        are not all in memory at once."""
        result = connection.execution_options(stream_results=True, yield_per=_PARTITION).execute(query)
        for rows in result.partitions():
            self._ingest(rows)

    def _ingest(self, rows: list) -> None:
        if not rows:
            return
        ids, conversations, columns, rounds, models, ttft, tps, outputs = zip(*rows, strict=True)
        codes, names, n = self._conversations, self._models, len(rows)
        self._chunks.append(
            {
                "id": np.fromiter(ids, np.int64, n),
                "conversation": np.fromiter(
                    (codes.setdefault(c, len(codes)) for c in conversations), np.int64, n
                ),
                "column": np.fromiter(columns, np.int64, n),
                "turn_index": np.fromiter(rounds, np.int64, n),
                "model": np.fromiter((names.setdefault(m, len(names)) for m in models), np.int64, n),
                "ttft": np.array(ttft, dtype=np.float64),
                "tps": np.array(tps, dtype=np.float64),
                **dict(zip(STYLE_FEATURES, self._style(outputs).T, strict=True)),
            }
        )
        self._snapshot = None

    def _style(self, outputs: tuple) -> np.ndarray:
        """Style features of the texts, or with ``style=False``, of their lengths (NaN markdown)."""
        if self.style:
            return style_matrix(outputs)
        features = np.full((len(outputs), len(STYLE_FEATURES)), np.nan)
        features[:, 0] = np.asarray(outputs, dtype=np.float64)
        return features

    def _frame(self) -> pd.DataFrame:
        if not self._chunks:
            return pd.DataFrame({c: np.empty(0, np.int64) for c in self._FRAME})
        if len(self._chunks) > 1:  # keep one chunk: the next snapshot concatenates less
            self._chunks = [{c: np.concatenate([k[c] for k in self._chunks]) for c in self._FRAME}]
        return pd.DataFrame(self._chunks[0], columns=list(self._FRAME))
