"""The leaderboard: votes from the database → pairwise battles → Bradley–Terry table, stats, plots.

Counted by default: anonymous arena votes whose answers did not name their model. Optionally also
named side-by-side votes from the Compare tab (an N-column vote becomes pairwise battles: the best
column beats each other column; a tie ties every pair; "all bad" makes every pair both-bad) and
identity-leaked arena votes; optionally only votes in a date range (UTC). No Gradio here.

Besides the ratings (:mod:`playground.services.leaderboard.ratings`) the table has per-model statistics of the
counted votes' stored answers (read through an :class:`AnswerIndex`, kept in memory and brought
up to date incrementally), of their 👍/👎 and scores, and, with style control on, a second,
style-controlled ranking (:mod:`playground.services.leaderboard.style_control`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import Integer, Text, and_, false, func, or_, select, true, type_coerce

from playground.engine.models.presets import PresetRegistry
from playground.errors import PlaygroundError
from playground.services.leaderboard.answer_index import (
    TURN_STATS,
    AnswerIndex,
    AnswerSnapshot,
    CountedVotes,
    gc_paused,
)
from playground.services.leaderboard.battles import vote_battles, votes_to_battles  # noqa: F401 - public here too
from playground.services.leaderboard.plots import ratings_chart, win_rate_heatmap
from playground.services.leaderboard.ratings import (
    DEFAULT_MIN_BATTLES,
    DEFAULT_PRIOR_SD,
    Leaderboard,
    compute_leaderboard,
    l2_from_prior_sd,
)
from playground.services.leaderboard.style_control import (
    STYLE_FEATURES,
    StyleControlled,
    fit_style_control,
    normalized_differences,
)
from playground.store.db import Store
from playground.store.models import Rating, Score, Turn, Vote

RATING_STATS = ("ratings", "like_rate", "scores", "mean_score")
STYLE_STATS = ("sc_rank", "sc_rating", "sc_ci_low", "sc_ci_high")  # style-controlled; NaN when off
_STYLE_SOURCES = ("rank", "rating", "ci_low", "ci_high")  # their columns in StyleControlled.table


# --------------------------------------------------------------------------- filters


def _moment(value: Any, end: bool) -> datetime | None:
    """A filter bound: None / "" / a date / a datetime / an ISO string / a UNIX timestamp.

    A bare date as the end bound includes that whole day.
    """
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text) if len(text) > 10 else date.fromisoformat(text)
        except ValueError:
            raise PlaygroundError(f"not a date: {text!r}; use YYYY-MM-DD") from None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time()) + (timedelta(days=1) if end else timedelta())
    raise PlaygroundError(f"not a date: {value!r}; use YYYY-MM-DD")


@dataclass(frozen=True)
class LeaderboardFilters:
    include_compare: bool = False  # named side-by-side votes from the Compare tab
    include_leaked: bool = False  # arena votes where an answer named its own model
    since: datetime | None = None  # UTC, inclusive
    until: datetime | None = None  # UTC, exclusive

    @classmethod
    def parse(cls, include_compare=False, include_leaked=False, since=None, until=None) -> LeaderboardFilters:
        start, end = _moment(since, end=False), _moment(until, end=True)
        if start and end and start >= end:
            raise PlaygroundError(f"the date range is empty: from {since} to {until}")
        return cls(bool(include_compare), bool(include_leaked), start, end)

    def where(self):
        kinds = [and_(Vote.kind == "arena", Vote.anonymous == true())]
        if self.include_compare:
            kinds.append(and_(Vote.kind == "compare", Vote.anonymous == false()))
        clauses = [or_(*kinds)]
        if not self.include_leaked:
            clauses.append(Vote.identity_leaked == false())
        if self.since:
            clauses.append(Vote.created_at >= self.since)
        if self.until:
            clauses.append(Vote.created_at < self.until)
        return and_(*clauses)


# --------------------------------------------------------------------------- the service


@dataclass
class LeaderboardResult:
    """``table``: one row per model (ratings, stats, display name, answer and rating stats and the
    style-controlled ``sc_*`` columns, NaN when style control is off); ``style``: the style-
    controlled fit (its coefficients), None when off or when no battle has both answers stored."""

    table: pd.DataFrame
    board: Leaderboard
    votes: int
    filters: LeaderboardFilters
    style: StyleControlled | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step of the computation

    @property
    def battles(self) -> int:
        return self.board.n_battles

    def rows(self) -> list[dict]:
        """The table as JSON-ready rows (NaN → null)."""
        return json.loads(self.table.to_json(orient="records"))

    def ratings_figure(self, style: bool = False) -> go.Figure:
        """The ratings with their intervals; with ``style`` also the style-controlled ones."""
        return ratings_chart(self.table, style=style and self.style is not None)

    def win_rate_figure(self) -> go.Figure:
        return win_rate_heatmap(self.board.win_rate, self.board.battle_counts)


class _Clock:
    """Seconds per named step, for ``LeaderboardResult.timings``."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now


class LeaderboardService:
    """Reads the counted votes and their answers and fits the leaderboard (see the module docstring).

    ``prior_sd`` (Elo) sets the Bradley–Terry prior and ``min_battles`` the provisional threshold
    (see :mod:`playground.services.leaderboard.ratings`); ``style_control`` whether style control is available
    at all (see :mod:`playground.services.leaderboard.style_control`): :meth:`compute` fits it unless asked not
    to; off, the answers' markdown is never parsed.
    """

    def __init__(
        self,
        store: Store,
        registry: PresetRegistry,
        bootstrap_rounds: int = 100,
        seed: int = 0,
        *,
        prior_sd: float = DEFAULT_PRIOR_SD,
        min_battles: int = DEFAULT_MIN_BATTLES,
        style_control: bool = True,
    ):
        self.store, self.registry = store, registry
        self.bootstrap_rounds, self.seed = bootstrap_rounds, seed
        self.l2 = l2_from_prior_sd(prior_sd)
        self.min_battles = min_battles
        self.style_control = style_control
        self.answers = AnswerIndex(style=style_control)

    def warm_up(self) -> None:
        """Read every stored answer of the voted conversations into the answer index now (the first
        :meth:`compute` otherwise does it: ~2 s for 200k answers); e.g. in a thread at start-up."""
        with self.store.engine.connect() as connection:
            self.answers.refresh(connection)

    def read(self, filters: LeaderboardFilters) -> tuple[AnswerSnapshot, CountedVotes]:
        """The answer index, brought up to date, and the counted votes it covers (votes and answers
        as of the same moment)."""
        with self.store.engine.connect() as connection:
            snapshot = self.answers.refresh(connection)
            models = type_coerce(Vote.models, Text).label("models")  # JSON text, decoded once per value
            query = select(Vote.id, Vote.kind, Vote.turn_index, models, Vote.outcome).where(
                filters.where(), Vote.id <= snapshot.vote_mark
            )
            with gc_paused():  # the rows become five flat lists before the collector wakes up
                rows = connection.execute(query.order_by(Vote.id)).fetchall()
                columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(5)]
                del rows
        ids, kinds, rounds, texts, outcomes = columns
        votes = CountedVotes(
            conversation=snapshot.vote_conversation[np.asarray(ids, dtype=np.int64)],
            arena=np.asarray(kinds, dtype=object) == "arena",
            turn_index=np.asarray(rounds, dtype=np.int64),
            models=texts,
            outcome=outcomes,
        )
        return snapshot, votes

    def battles(self, filters: LeaderboardFilters) -> tuple[pd.DataFrame, int]:
        """The counted votes as pairwise battles, oldest first, and the number of votes."""
        _snapshot, votes = self.read(filters)
        return votes.battles(), len(votes)

    def answer_stats(self, filters: LeaderboardFilters) -> pd.DataFrame:
        """Per model, from the stored answers of the counted votes' conversations: average answer
        length (characters), median time to first token and median tokens/s."""
        snapshot, votes = self.read(filters)
        return snapshot.answer_stats(votes.conversation)

    @staticmethod
    def battle_style(snapshot: AnswerSnapshot, votes: CountedVotes, battles: pd.DataFrame) -> np.ndarray:
        """Normalised style differences ``(a - b) / (a + b)`` per battle (rows of
        ``votes.battles(positions=True)``), NaN where an answer is not stored.

        The answers a vote judged: for a Compare vote, the answers of its round; for an arena vote
        (stored with round 0, but a battle can have several rounds before the vote), the features
        summed over all rounds of each side, as in LMSYS's style control (the voter saw them all).
        Of several answers of one column in one round, the last stored counts.
        """
        if battles.empty:
            return np.empty((0, len(STYLE_FEATURES)))
        vote = battles["vote"].to_numpy()
        conversation, turn, arena = votes.conversation[vote], votes.turn_index[vote], votes.arena[vote]
        side_a = snapshot.style(conversation, battles["column_a"].to_numpy(), turn, arena)
        side_b = snapshot.style(conversation, battles["column_b"].to_numpy(), turn, arena)
        return normalized_differences(side_a, side_b)

    def rating_stats(self, filters: LeaderboardFilters) -> pd.DataFrame:
        """Per model, from every answer's 👍/👎 and 1–5 score (Compare, Arena and Notebook alike, in the
        filters' date range): how many ratings, the share of 👍, how many scores and their mean."""
        out = pd.DataFrame(columns=list(RATING_STATS), dtype="float64")
        with self.store.engine.connect() as connection:
            for table, value, count, mean in (
                (Rating, Rating.value, "ratings", "like_rate"),
                (Score, Score.score, "scores", "mean_score"),
            ):
                liked = func.avg((value > 0).cast(Integer)) if table is Rating else func.avg(value)
                query = select(Turn.preset_name, func.count(table.id), liked).join(
                    Turn, table.turn_id == Turn.id
                )
                if filters.since:
                    query = query.where(table.created_at >= filters.since)
                if filters.until:
                    query = query.where(table.created_at < filters.until)
                for model, n, average in connection.execute(query.group_by(Turn.preset_name)):
                    out.loc[model, count], out.loc[model, mean] = float(n), float(average)
        return out

    def compute(
        self, filters: LeaderboardFilters | None = None, style_control: bool | None = None
    ) -> LeaderboardResult:
        """The leaderboard for ``filters``, with the style-controlled ratings (``sc_*`` columns and
        ``result.style``) unless ``style_control`` is False or the service has style control off.
        The seconds each step took are in ``result.timings``."""
        filters = filters or LeaderboardFilters()
        clock = _Clock()
        snapshot, votes = self.read(filters)
        clock.lap("read answers + votes")
        battles = votes.battles(positions=True)
        clock.lap("votes → battles")
        board = compute_leaderboard(
            battles, self.bootstrap_rounds, self.seed, l2=self.l2, min_battles=self.min_battles
        )
        clock.lap("fit + bootstrap + elo")
        table = board.table.copy()
        table.insert(2, "display_name", [self._display_name(m) for m in table["model"]])
        stats = snapshot.answer_stats(votes.conversation).reindex(table["model"])
        for column in TURN_STATS:
            table[column] = stats[column].to_numpy(dtype="float64")
        clock.lap("answer stats")
        rated = self.rating_stats(filters).reindex(table["model"])
        for column in RATING_STATS:
            table[column] = rated[column].to_numpy(dtype="float64")
        clock.lap("rating stats")
        style = None
        if self.style_control and (style_control is None or style_control):
            differences = self.battle_style(snapshot, votes, battles)
            if (~np.isnan(differences).any(axis=1)).any():
                style = fit_style_control(battles, differences, l2=self.l2)
            clock.lap("style control")
        fitted = style.table.set_index("model").reindex(table["model"]) if style else None
        for column, source in zip(STYLE_STATS, _STYLE_SOURCES, strict=True):
            values = fitted[source].to_numpy() if style else np.full(len(table), np.nan)
            table[column] = pd.array(values, dtype="Int64" if column == "sc_rank" else "float64")
        return LeaderboardResult(
            table=table, board=board, votes=len(votes), filters=filters, style=style, timings=clock.laps
        )

    def _display_name(self, name: str) -> str:
        return self.registry.get(name).display_name if name in self.registry else name
