"""The store: every finished turn, rating and vote, in any SQLAlchemy database (SQLite by default)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from playground import __version__
from playground.errors import PlaygroundError
from playground.store.migrate import upgrade
from playground.store.models import (
    Battle,
    CompareRounds,
    Conversation,
    NotebookCell,
    Rating,
    Score,
    Turn,
    Vote,
    utcnow,
)


@dataclass
class TurnRecord:
    conversation_id: str
    column: int
    turn_index: int
    preset_name: str
    preset_hash: str
    model_id: str
    revision: str
    quantization: str
    dtype: str
    device: str
    messages: list[dict]
    system_prompt: str
    prompt: str
    params: dict
    seed: int | None
    output: str
    finish_reason: str
    started_at: datetime
    error: str | None = None
    stats: dict = field(default_factory=dict)


def database_url(value: str) -> str:
    """Accept a SQLAlchemy URL or a plain file path (made into a SQLite URL, folder created)."""
    if "://" in value:
        return value
    path = Path(value).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class Store:
    def __init__(self, url: str):
        self.url = database_url(url)
        sqlite = self.url.startswith("sqlite")
        self.engine = create_engine(
            self.url, connect_args={"check_same_thread": False, "timeout": 30} if sqlite else {}
        )
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.where = _where(self.url)
        self.migrated_from = upgrade(self.engine, self.where)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self.listeners: list = []  # called as listener(kind, id) after a rating, score or vote is stored

    def _notify(self, kind: str, row_id: int) -> None:
        """Tell listeners (the dataset sync) about a stored row; the row is stored whatever they do."""
        for listener in self.listeners:
            try:
                listener(kind, row_id)
            except Exception:  # noqa: BLE001 - logged: a failed copy must not undo or hide the stored row
                logging.getLogger(__name__).exception("listener %r failed for %s %s", listener, kind, row_id)

    def session(self) -> Session:
        return self._session()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A write transaction; a database that refuses writes (read-only, full, locked, gone) is a
        ``PlaygroundError`` naming the database and the cause. Nothing already stored is touched."""
        try:
            with self.session() as s, s.begin():
                yield s
        except OperationalError as exc:
            raise PlaygroundError(f"the database {self.where} refused the write: {_problem(exc)}") from None

    def new_conversation(self, mode: str, models: list[str], session_id: str | None = None) -> str:
        conversation_id = uuid.uuid4().hex
        with self._write() as s:
            s.add(Conversation(id=conversation_id, mode=mode, models=models, session_id=session_id))
        return conversation_id

    def conversation(self, conversation_id: str) -> Conversation | None:
        with self.session() as s:
            return s.get(Conversation, conversation_id)

    def record_turn(self, record: TurnRecord) -> int:
        stats = record.stats
        row = Turn(
            conversation_id=record.conversation_id,
            column=record.column,
            turn_index=record.turn_index,
            preset_name=record.preset_name,
            preset_hash=record.preset_hash,
            model_id=record.model_id,
            revision=record.revision,
            quantization=record.quantization,
            dtype=record.dtype,
            device=record.device,
            messages=record.messages,
            system_prompt=record.system_prompt,
            prompt=record.prompt,
            params=record.params,
            seed=record.seed,
            output=record.output,
            finish_reason=record.finish_reason,
            error=record.error,
            ttft_s=stats.get("ttft_s"),
            total_s=stats.get("total_s"),
            prompt_tokens=stats.get("prompt_tokens"),
            completion_tokens=stats.get("completion_tokens"),
            tokens_per_s=stats.get("tokens_per_s"),
            started_at=record.started_at,
            finished_at=utcnow(),
            app_version=__version__,
        )
        with self._write() as s:
            s.add(row)
            s.flush()
            return row.id

    def record_rating(self, turn_id: int, value: int, reasons: list[str] = (), comment: str = "") -> int:
        if value not in (1, -1):
            raise PlaygroundError(f"a rating is +1 (like) or -1 (dislike), got {value!r}")
        with self._write() as s:
            if s.get(Turn, turn_id) is None:
                raise PlaygroundError(f"there is no stored answer with id {turn_id} to rate")
            rating = Rating(turn_id=turn_id, value=value, reasons=list(reasons), comment=comment or "")
            s.add(rating)
            s.flush()
        self._notify("rating", rating.id)
        return rating.id

    def update_rating(self, rating_id: int, reasons: list[str], comment: str = "") -> None:
        with self._write() as s:
            rating = s.get(Rating, rating_id)
            if rating is None:
                raise PlaygroundError(f"there is no rating with id {rating_id}")
            rating.reasons, rating.comment = list(reasons), comment or ""
        self._notify("rating", rating_id)

    def record_vote(
        self,
        conversation_id: str,
        kind: str,
        turn_index: int,
        outcome: str,
        models: list[str],
        anonymous: bool = False,
        identity_leaked: bool = False,
    ) -> int:
        vote = Vote(
            conversation_id=conversation_id,
            kind=kind,
            turn_index=turn_index,
            outcome=outcome,
            models=models,
            anonymous=anonymous,
            identity_leaked=identity_leaked,
        )
        try:
            with self._write() as s:
                s.add(vote)
                s.flush()
        except IntegrityError:
            raise PlaygroundError("this round already has a vote; each round can be voted on once") from None
        self._notify("vote", vote.id)
        return vote.id

    def record_score(self, turn_id: int, score: int, comment: str = "") -> int:
        if not isinstance(score, int) or not 1 <= score <= 5:
            raise PlaygroundError(f"a score is a whole number from 1 to 5, got {score!r}")
        with self._write() as s:
            if s.get(Turn, turn_id) is None:
                raise PlaygroundError(f"there is no stored answer with id {turn_id} to score")
            row = Score(turn_id=turn_id, score=score, comment=comment or "")
            s.add(row)
            s.flush()
        self._notify("score", row.id)
        return row.id

    def scores(self, turn_id: int | None = None) -> list[Score]:
        with self.session() as s:
            query = select(Score).order_by(Score.id)
            if turn_id is not None:
                query = query.where(Score.turn_id == turn_id)
            return list(s.scalars(query))

    def record_cell(self, cell: NotebookCell) -> int:
        with self._write() as s:
            s.add(cell)
            s.flush()
            return cell.id

    def cached_turn(self, cache_key: str) -> Turn | None:
        """The latest complete answer stored for a notebook cell with these inputs (not stopped or failed)."""
        query = (
            select(Turn)
            .join(NotebookCell, NotebookCell.turn_id == Turn.id)
            .where(
                NotebookCell.cache_key == cache_key,
                Turn.error.is_(None),
                Turn.finish_reason.in_(("eos", "stop_string", "length")),
            )
            .order_by(Turn.id.desc())
            .limit(1)
        )
        with self.session() as s:
            return s.scalars(query).first()

    def notebook_cells(self, conversation_id: str) -> list[tuple[NotebookCell, Turn]]:
        """A grid run's cells in row, model, sample order, each with its turn."""
        query = (
            select(NotebookCell, Turn)
            .join(Turn, NotebookCell.turn_id == Turn.id)
            .where(NotebookCell.conversation_id == conversation_id)
            .order_by(NotebookCell.row_index, NotebookCell.model_index, NotebookCell.sample_index)
        )
        with self.session() as s:
            return [(cell, turn) for cell, turn in s.execute(query)]

    def save_battle(self, battle_id: str, **fields) -> None:
        """Insert or update an arena battle's row (its hidden pairing and finished rounds)."""
        with self._write() as s:
            row = s.get(Battle, battle_id)
            if row is None:
                s.add(Battle(id=battle_id, **fields))
            else:
                for key, value in fields.items():
                    setattr(row, key, value)

    def turn_owner(self, turn_id: int) -> tuple[bool, str | None]:
        """Whether the turn exists, and the session its conversation belongs to."""
        query = (
            select(Conversation.session_id)
            .join(Turn, Turn.conversation_id == Conversation.id)
            .where(Turn.id == turn_id)
        )
        with self.session() as s:
            rows = s.execute(query).all()
        return (bool(rows), rows[0][0] if rows else None)

    def save_rounds(self, conversation_id: str, rounds: list[dict]) -> None:
        """Which answers make up each round of a side-by-side conversation now (``CompareRounds``)."""
        with self._write() as s:
            row = s.get(CompareRounds, conversation_id)
            if row is None:
                s.add(CompareRounds(conversation_id=conversation_id, rounds=rounds))
            else:
                row.rounds = rounds

    def rounds(self, conversation_id: str) -> list[dict] | None:
        """The saved rounds of a side-by-side conversation; None when none were saved."""
        with self.session() as s:
            row = s.get(CompareRounds, conversation_id)
            return None if row is None else list(row.rounds)

    def battle(self, battle_id: str) -> Battle | None:
        with self.session() as s:
            return s.get(Battle, battle_id)

    def turns_by_id(self, turn_ids: list[int]) -> dict[int, Turn]:
        if not turn_ids:
            return {}
        with self.session() as s:
            return {t.id: t for t in s.scalars(select(Turn).where(Turn.id.in_(turn_ids)))}

    def turns(self, conversation_id: str | None = None) -> list[Turn]:
        with self.session() as s:
            query = select(Turn).order_by(Turn.id)
            if conversation_id:
                query = query.where(Turn.conversation_id == conversation_id)
            return list(s.scalars(query))

    def ratings(self, turn_id: int | None = None) -> list[Rating]:
        with self.session() as s:
            query = select(Rating).order_by(Rating.id)
            if turn_id is not None:
                query = query.where(Rating.turn_id == turn_id)
            return list(s.scalars(query))

    def latest_feedback(self, turn_ids: list[int]) -> dict[int, tuple[int | None, int | None]]:
        """Per turn: its latest 👍/👎 value and its latest 1–5 score (None where there is none)."""
        found: dict[int, list] = {t: [None, None] for t in turn_ids}
        if not turn_ids:
            return {}
        with self.session() as s:
            for rating in s.scalars(select(Rating).where(Rating.turn_id.in_(turn_ids)).order_by(Rating.id)):
                found[rating.turn_id][0] = rating.value
            for score in s.scalars(select(Score).where(Score.turn_id.in_(turn_ids)).order_by(Score.id)):
                found[score.turn_id][1] = score.score
        return {t: (v[0], v[1]) for t, v in found.items()}

    def votes(
        self, kinds: tuple[str, ...] = ("compare", "arena"), conversation_id: str | None = None
    ) -> list[Vote]:
        query = select(Vote).where(Vote.kind.in_(kinds)).order_by(Vote.id)
        if conversation_id is not None:
            query = query.where(Vote.conversation_id == conversation_id)
        with self.session() as s:
            return list(s.scalars(query))

    def count(self, table) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(table)) or 0)


def row_dict(obj) -> dict[str, Any]:
    """A stored row's columns by name."""
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


def row_json(obj) -> dict[str, Any]:
    """A stored row's columns by name, datetimes as ISO text (for JSON files)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row_dict(obj).items()}


def _problem(exc: OperationalError) -> str:
    text = str(getattr(exc, "orig", exc))
    lowered = text.lower()
    if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
        return f"it is read-only ({text}); check the file's permissions or the --db URL"
    if "full" in lowered or "no space" in lowered:
        return f"the disk or the database is full ({text}); free some space and try again"
    if "locked" in lowered:
        return f"it is locked by another process ({text}); try again"
    return text


def _where(url: str) -> str:
    """The database for messages: the file of a SQLite URL, the URL without its password otherwise."""
    if url.startswith("sqlite"):
        return url.split("///", 1)[-1] or "(in memory)"
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
