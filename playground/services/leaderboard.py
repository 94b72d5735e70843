"""The leaderboard: votes from the database → pairwise battles → Bradley–Terry table, stats, plots.

Counted by default: anonymous arena votes whose answers did not name their model. Optionally also
named side-by-side votes from the Compare tab (an N-column vote becomes pairwise battles: the best
column beats each other column; a tie ties every pair; "all bad" makes every pair both-bad) and
identity-leaked arena votes; optionally only votes in a date range (UTC). No Gradio here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import Integer, Text, and_, false, func, or_, select, true, type_coerce

from playground.engine.presets import PresetRegistry
from playground.errors import PlaygroundError
from playground.services.ratings import Leaderboard, compute_leaderboard
from playground.services.ratings_plots import ratings_chart, win_rate_heatmap
from playground.store.db import Store
from playground.store.models import Rating, Score, Turn, Vote

TURN_STATS = ("avg_answer_chars", "median_ttft_s", "median_tokens_per_s")
RATING_STATS = ("ratings", "like_rate", "scores", "mean_score")
_TWO = {"0": "a", "1": "b", "tie": "tie", "all_bad": "both_bad"}


def vote_battles(models: list[str], outcome: str) -> list[tuple[str, str, str]]:
    """One vote → pairwise battles ``(model_a, model_b, outcome)`` with columns in their order.

    ``outcome`` is the best column's index ("0", "1", …), "tie" or "all_bad"; a 2-column vote is
    one battle. An outcome that does not fit the columns gives no battles.
    """
    pairs = [(i, j) for i in range(len(models)) for j in range(i + 1, len(models))]
    if outcome in ("tie", "all_bad"):
        result = "tie" if outcome == "tie" else "both_bad"
        return [(models[i], models[j], result) for i, j in pairs]
    try:
        best = int(outcome)
    except (TypeError, ValueError):
        return []
    return [(models[i], models[j], "a" if i == best else "b") for i, j in pairs if best in (i, j)]


def votes_to_battles(votes: Iterable[Any]) -> pd.DataFrame:
    """Votes → a battles table (in vote order). A vote is a mapping or an object (e.g. a ``Vote``
    or a result row) with ``models`` and ``outcome``, or a ``(models, outcome)`` pair; ``models`` is
    a list of preset names or its JSON text (as read from the database).

    Streams: only three flat lists of names grow, and each distinct ``models`` text is decoded
    once, so 100k votes do not create 100k small containers for the garbage collector to chase.
    """
    a, b, o = [], [], []
    decoded: dict[str, list] = {}
    for vote in votes:
        if type(vote) is tuple:
            models, outcome = vote
        elif hasattr(vote, "models"):
            models, outcome = vote.models, vote.outcome
        else:
            models, outcome = vote["models"], vote["outcome"]
        if isinstance(models, str):
            models = decoded[models] if models in decoded else decoded.setdefault(models, json.loads(models))
        models = models or []
        if len(models) == 2 and outcome in _TWO:  # the common case, without the general loop
            a.append(models[0])
            b.append(models[1])
            o.append(_TWO[outcome])
            continue
        for model_a, model_b, result in vote_battles(list(models), str(outcome)):
            a.append(model_a)
            b.append(model_b)
            o.append(result)
    return pd.DataFrame({"model_a": a, "model_b": b, "outcome": o}, dtype="str")


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


@dataclass
class LeaderboardResult:
    table: pd.DataFrame  # one row per model: ratings, stats, display name and answer stats
    board: Leaderboard
    votes: int
    filters: LeaderboardFilters

    @property
    def battles(self) -> int:
        return self.board.n_battles

    def rows(self) -> list[dict]:
        """The table as JSON-ready rows (NaN → null)."""
        return json.loads(self.table.to_json(orient="records"))

    def ratings_figure(self) -> go.Figure:
        return ratings_chart(self.board.table)

    def win_rate_figure(self) -> go.Figure:
        return win_rate_heatmap(self.board.win_rate, self.board.battle_counts)


class LeaderboardService:
    def __init__(self, store: Store, registry: PresetRegistry, bootstrap_rounds: int = 100, seed: int = 0):
        self.store, self.registry = store, registry
        self.bootstrap_rounds, self.seed = bootstrap_rounds, seed

    def battles(self, filters: LeaderboardFilters) -> tuple[pd.DataFrame, int]:
        """The counted votes as pairwise battles, oldest first, and the number of votes."""
        where = filters.where()
        models = type_coerce(Vote.models, Text).label("models")  # JSON text, decoded once per value
        with self.store.engine.connect() as connection:
            votes = connection.execute(select(func.count()).select_from(Vote).where(where)).scalar_one()
            rows = connection.execute(select(models, Vote.outcome).where(where).order_by(Vote.id))
            return votes_to_battles(rows), votes

    def answer_stats(self, filters: LeaderboardFilters) -> pd.DataFrame:
        """Per model, from the stored answers of the counted votes' conversations: average answer
        length (characters), median time to first token and median tokens/s."""
        voted = select(Vote.id).where(Vote.conversation_id == Turn.conversation_id, filters.where()).exists()
        query = select(Turn.preset_name, func.length(Turn.output), Turn.ttft_s, Turn.tokens_per_s).where(
            voted, Turn.error.is_(None)
        )
        columns: dict[str, list] = {"model": [], "chars": [], "ttft": [], "tps": []}
        with self.store.engine.connect() as connection:
            for row in connection.execute(query):  # streamed into flat lists, as for the votes
                for values, value in zip(columns.values(), row, strict=True):
                    values.append(value)
        turns = pd.DataFrame(columns).astype({"chars": "float64", "ttft": "float64", "tps": "float64"})
        grouped = turns.groupby("model")
        return pd.DataFrame(
            {
                "avg_answer_chars": grouped["chars"].mean(),
                "median_ttft_s": grouped["ttft"].median(),
                "median_tokens_per_s": grouped["tps"].median(),
            }
        )

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

    def compute(self, filters: LeaderboardFilters | None = None) -> LeaderboardResult:
        filters = filters or LeaderboardFilters()
        battles, votes = self.battles(filters)
        board = compute_leaderboard(battles, self.bootstrap_rounds, self.seed)
        table = board.table.copy()
        table.insert(2, "display_name", [self._display_name(m) for m in table["model"]])
        stats = self.answer_stats(filters).reindex(table["model"])
        for column in TURN_STATS:
            table[column] = stats[column].to_numpy(dtype="float64")
        rated = self.rating_stats(filters).reindex(table["model"])
        for column in RATING_STATS:
            table[column] = rated[column].to_numpy(dtype="float64")
        return LeaderboardResult(table=table, board=board, votes=votes, filters=filters)

    def _display_name(self, name: str) -> str:
        return self.registry.get(name).display_name if name in self.registry else name
