"""Data out: stored conversations as JSONL, CSV, DPO pairs or ShareGPT, streamed from the database. No Gradio.

Every format is written row by row: conversations are read with ``yield_per`` (a server-side
cursor where the driver has one) and the turns, ratings, scores and votes of ``CHUNK``
conversations at a time, so memory holds one chunk of conversations, never the database (CSV
streams answers, DPO votes and rated answers, the same way). The CLI (``python app.py export``)
and the Data tab both call ``write_export`` / ``export_to_file``.

Formats (one JSON object per line, except CSV):

* ``jsonl``: one conversation per line: ``id, mode, models, created_at``, ``turns`` (every stored
  column of each answer: preset name and file hash, model id, resolved revision, quantisation,
  dtype, device, messages, system prompt, rendered prompt, params, seed, output, finish reason,
  error, timings, token counts, app version) each with its ``ratings`` and ``scores``, and the
  conversation's ``votes``.
* ``csv``: one answer per row, the same answer fields (lists and dicts JSON-encoded), plus the
  conversation's ``conversation_mode`` and ``conversation_created_at`` and the answer's latest
  👍/👎 (``rating``: 1 / -1) and latest 1–5 ``score``.
* ``dpo``: rows of exactly ``prompt``, ``chosen``, ``rejected`` and ``metadata`` (see
  ``dpo_pairs.py``): strings (TRL's "standard" format, the one it documents first, and the default)
  or, with ``dpo_format="conversational"``, lists of ``{role, content}`` messages.
* ``sharegpt``: ``{id, conversations: [{from: system|human|gpt, value}], model, ...}``, see
  ``sharegpt.py``: at most one system turn, first; complete answers only unless
  ``include_incomplete``.

Filters: ``since`` keeps conversations created on or after that date (UTC); ``mode`` keeps one
conversation mode (compare, arena, notebook, api). Arena battles that have no vote yet, whose model
names are still secret, are left out unless ``include_unvoted`` (the one rule of the CLI's
``--include-unvoted`` and the Data tab's option).

``open_database`` opens an existing database for export only: it never creates a file, never
migrates, and the exporters only ever read.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine, create_engine, exists, inspect, not_, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, aliased

from playground.errors import PlaygroundError
from playground.services.data.dpo_pairs import dpo_records
from playground.services.data.sharegpt import sharegpt_records
from playground.store.db import row_json
from playground.store.models import Conversation, Rating, Score, Turn, Vote

FORMATS = ("jsonl", "csv", "dpo", "sharegpt")
MODES = ("compare", "arena", "notebook", "api")
EXTENSIONS = {"jsonl": "jsonl", "csv": "csv", "dpo": "jsonl", "sharegpt": "jsonl"}
BATCH = 200  # rows read ahead per round trip
CHUNK = 50  # conversations whose turns, ratings, scores and votes are read together
TURN_FIELDS = [c.key for c in Turn.__table__.columns]
CSV_FIELDS = [
    "conversation_id",
    "conversation_mode",
    "conversation_created_at",
    "turn_id",
    *[k for k in TURN_FIELDS if k not in ("id", "conversation_id")],
    "rating",
    "score",
]
DPO_FORMATS = ("standard", "conversational")


@dataclass(frozen=True)
class ExportFilter:
    """Which conversations an export holds, and the two choices of its formats."""

    since: date | None = None
    mode: str | None = None
    include_unvoted: bool = False  # arena battles without a vote (their model names are still secret)
    include_incomplete: bool = False  # sharegpt: answers cut by length or stopped, too
    dpo_format: str = "standard"  # dpo: strings, or "conversational" messages

    @classmethod
    def parse(cls, since: str | None = None, mode: str | None = None, **kwargs) -> ExportFilter:
        """From text as typed: ``since`` YYYY-MM-DD (empty: no limit), ``mode`` one of MODES ("all"/empty: any)."""
        day = None
        since = (since or "").strip()
        if since:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", since):
                raise PlaygroundError(f"since must be a date as YYYY-MM-DD, got {since!r}")
            try:
                day = date.fromisoformat(since)
            except ValueError as exc:
                raise PlaygroundError(f"since {since!r} is not a real date: {exc}") from None
        mode = (mode or "").strip().lower()
        if mode in ("", "all"):
            mode = None
        elif mode not in MODES:
            raise PlaygroundError(f"mode must be one of {', '.join(MODES)} (or all), got {mode!r}")
        if kwargs.get("dpo_format", "standard") not in DPO_FORMATS:
            raise PlaygroundError(
                f"the DPO format must be {' or '.join(DPO_FORMATS)}, got {kwargs['dpo_format']!r}"
            )
        return cls(since=day, mode=mode, **kwargs)

    def apply(self, query):
        """Restrict a query that selects from (or joins) ``conversations``."""
        if self.since is not None:
            query = query.where(Conversation.created_at >= datetime.combine(self.since, time()))
        if self.mode is not None:
            query = query.where(Conversation.mode == self.mode)
        if not self.include_unvoted:
            vote = aliased(Vote)  # its own FROM, even inside a query that selects votes
            voted = exists(select(vote.id).where(vote.conversation_id == Conversation.id))
            query = query.where(not_((Conversation.mode == "arena") & ~voted))
        return query


def check_format(fmt: str) -> str:
    fmt = (fmt or "").strip().lower()
    if fmt not in FORMATS:
        raise PlaygroundError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


# ------------------------------------------------------------------ the database


def open_database(db: str) -> Engine:
    """An engine on an existing playground database (a SQLAlchemy URL or a SQLite file path).

    Unlike ``Store`` it creates nothing and migrates nothing: a missing file, a database that is
    not the playground's, or one at another schema revision is refused with the reason.
    """
    from playground.store.migrate import current, head

    url = db if "://" in db else f"sqlite:///{Path(db).expanduser().resolve()}"
    where = db
    if url.startswith("sqlite"):
        path = make_url(url).database
        if not path or path == ":memory:":
            raise PlaygroundError(
                "an in-memory SQLite database has nothing to export; give --db a file or URL"
            )
        where = path
        if not Path(path).is_file():
            raise PlaygroundError(
                f"there is no database at {path}: nothing to export (give --db the playground's database "
                "file or URL; the default is data/playground.db or $PLAYGROUND_DB)"
            )
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            if not inspect(connection).has_table("conversations"):
                raise PlaygroundError(f"{where} is not a playground database (it has no conversations table)")
            at, newest = current(connection), head()
    except PlaygroundError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad URL, a refused connection, a file that is not SQLite
        raise PlaygroundError(f"cannot open the database {where}: {exc}") from None
    if newest not in at:
        raise PlaygroundError(
            f"the database {where} is at schema revision {', '.join(at) or '(none)'} and this version exports "
            f"revision {newest}; start the playground once with --db on it to upgrade it (or upgrade the "
            "playground if the database is newer)"
        )
    return engine


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine (so an export never overwrites it)."""
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        return None
    return Path(engine.url.database).resolve()


# ------------------------------------------------------------------ records


def export_records(engine: Engine, fmt: str, flt: ExportFilter | None = None) -> Iterator[dict[str, Any]]:
    """The records of one format, one at a time (CSV: one dict per row), read as they are needed."""
    fmt, flt = check_format(fmt), flt or ExportFilter()
    with Session(engine) as session:
        if fmt == "dpo":
            yield from dpo_records(session, flt.apply, conversational=flt.dpo_format == "conversational")
        elif fmt == "csv":
            yield from _csv_rows(session, flt)
        else:
            for chunk in _conversation_chunks(session, flt):
                if fmt == "jsonl":
                    yield from _conversation_records(session, chunk)
                else:
                    for conversation, turns in chunk:
                        yield from sharegpt_records(conversation, turns, flt.include_incomplete)


def _conversations(session: Session, flt: ExportFilter) -> Iterator[Conversation]:
    query = flt.apply(select(Conversation)).order_by(Conversation.created_at, Conversation.id)
    yield from session.scalars(query.execution_options(yield_per=BATCH))


def _conversation_chunks(
    session: Session, flt: ExportFilter
) -> Iterator[list[tuple[Conversation, list[Turn]]]]:
    """The conversations in order, ``CHUNK`` at a time, each with its turns (one query per chunk)."""
    chunk: list[Conversation] = []
    for conversation in _conversations(session, flt):
        chunk.append(conversation)
        if len(chunk) == CHUNK:
            yield _with_turns(session, chunk)
            chunk = []
    if chunk:
        yield _with_turns(session, chunk)


def _with_turns(session: Session, conversations: list[Conversation]) -> list[tuple[Conversation, list[Turn]]]:
    turns: dict[str, list[Turn]] = {}
    query = select(Turn).where(Turn.conversation_id.in_([c.id for c in conversations])).order_by(Turn.id)
    for turn in session.scalars(query):
        turns.setdefault(turn.conversation_id, []).append(turn)
    return [(c, turns.get(c.id, [])) for c in conversations]


def _conversation_records(session: Session, chunk: list[tuple[Conversation, list[Turn]]]) -> Iterator[dict]:
    """JSONL records of a chunk of conversations: their ratings, scores and votes in three queries."""
    ids = [conversation.id for conversation, _ in chunk]
    ratings: dict[int, list] = {}
    scores: dict[int, list] = {}
    for table, into in ((Rating, ratings), (Score, scores)):
        query = select(table).join(Turn, Turn.id == table.turn_id).where(Turn.conversation_id.in_(ids))
        for row in session.scalars(query.order_by(table.id)):
            into.setdefault(row.turn_id, []).append(row_json(row))
    votes: dict[str, list] = {}
    for vote in session.scalars(select(Vote).where(Vote.conversation_id.in_(ids)).order_by(Vote.id)):
        votes.setdefault(vote.conversation_id, []).append(row_json(vote))
    for conversation, turns in chunk:
        yield {
            "id": conversation.id,
            "mode": conversation.mode,
            "models": conversation.models,
            "created_at": conversation.created_at.isoformat(),
            "turns": [
                row_json(t) | {"ratings": ratings.get(t.id, []), "scores": scores.get(t.id, [])}
                for t in turns
            ],
            "votes": votes.get(conversation.id, []),
        }


def _csv_rows(session: Session, flt: ExportFilter) -> Iterator[dict]:
    rating = (
        select(Rating.value)
        .where(Rating.turn_id == Turn.id)
        .order_by(Rating.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    score = (
        select(Score.score)
        .where(Score.turn_id == Turn.id)
        .order_by(Score.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = flt.apply(
        select(Turn, Conversation.mode, Conversation.created_at, rating, score).join(
            Conversation, Conversation.id == Turn.conversation_id
        )
    ).order_by(Conversation.created_at, Conversation.id, Turn.id)
    for turn, mode, created_at, rating_value, score_value in session.execute(
        query.execution_options(yield_per=BATCH)
    ):
        row = row_json(turn)
        row["turn_id"] = row.pop("id")
        row |= {
            "conversation_mode": mode,
            "conversation_created_at": created_at.isoformat(),
            "rating": rating_value,
            "score": score_value,
        }
        yield {
            k: json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v for k, v in row.items()
        }


# ------------------------------------------------------------------ writing


def write_export(engine: Engine, fmt: str, out: TextIO, flt: ExportFilter | None = None) -> int:
    """Write one format to an open text stream; return how many records (CSV: rows) were written."""
    fmt = check_format(fmt)
    records = export_records(engine, fmt, flt)
    n = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in records:
            writer.writerow(row)
            n += 1
        return n
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        n += 1
    return n


def export_to_file(engine: Engine, fmt: str, path: Path, flt: ExportFilter | None = None) -> int:
    """Write an export to ``path``, all or nothing: a failure leaves any earlier file there untouched."""
    fmt, path = check_format(fmt), Path(path).expanduser().resolve()
    if sqlite_file(engine) in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        raise PlaygroundError(f"{path} is the database being exported; write the export to another file")
    if path.is_dir():
        raise PlaygroundError(f"cannot write the export to {path}: it is a folder; give a file name")
    partial = path.with_name(f".{path.name}.partial")
    try:
        out = partial.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise PlaygroundError(f"cannot write the export to {path}: {exc.strerror or exc}") from None
    try:
        with out:
            n = write_export(engine, fmt, out, flt)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return n
