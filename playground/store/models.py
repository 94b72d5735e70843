"""Tables: conversations, turns (one model answer each), ratings of a turn, votes between columns,
notebook cells, scores, arena battles, the rounds a side-by-side conversation shows, saved notebooks
with their runs, and an LLM judge's verdicts (apart from human votes)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))  # compare | arena | api | notebook
    session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    models: Mapped[list] = mapped_column(JSON, default=list)  # preset name per column
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    turns: Mapped[list[Turn]] = relationship(back_populates="conversation", order_by="Turn.id")


class Turn(Base):
    """One finished answer of one column, with everything needed to reproduce it."""

    __tablename__ = "turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    column: Mapped[int] = mapped_column(Integer)
    turn_index: Mapped[int] = mapped_column(Integer)
    preset_name: Mapped[str] = mapped_column(String(128), index=True)
    preset_hash: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(256))
    revision: Mapped[str] = mapped_column(String(256))
    quantization: Mapped[str] = mapped_column(String(32))
    dtype: Mapped[str] = mapped_column(String(32))
    # a served model's device is "remote:<base url>"; SQLite ignores lengths, so its column stays as made
    device: Mapped[str] = mapped_column(String(256).with_variant(String(32), "sqlite"))
    messages: Mapped[list] = mapped_column(JSON)
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    prompt: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSON)
    seed: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))  # up to 2**32-1
    output: Mapped[str] = mapped_column(Text)
    finish_reason: Mapped[str] = mapped_column(String(16))  # eos | stop_string | length | stopped | error
    error: Mapped[str | None] = mapped_column(Text)
    ttft_s: Mapped[float | None] = mapped_column(Float)
    total_s: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    tokens_per_s: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    app_version: Mapped[str] = mapped_column(String(32))
    conversation: Mapped[Conversation] = relationship(back_populates="turns")
    ratings: Mapped[list[Rating]] = relationship(back_populates="turn")


class Rating(Base):
    """Like (+1) or dislike (-1) of one turn, with reasons and an optional comment."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id"), index=True)
    value: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    turn: Mapped[Turn] = relationship(back_populates="ratings")


class Vote(Base):
    """A judgement between columns after round ``turn_index`` (arena battles: one per battle, index 0)."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("conversation_id", "kind", "turn_index", name="one_vote_per_round"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # compare | arena
    turn_index: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # column index as text | tie | all_bad
    models: Mapped[list] = mapped_column(JSON)  # preset name per column at vote time
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    identity_leaked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class NotebookCell(Base):
    """One cell of a notebook grid run: (row, model, sample) → the stored turn that answers it.

    The run is a conversation of mode ``notebook``; ``Turn.column`` is the model's index and
    ``Turn.turn_index`` the row's. A cell served from an earlier run's identical inputs points at
    that run's turn (``cached``) instead of storing the same answer twice.
    """

    __tablename__ = "notebook_cells"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    row_index: Mapped[int] = mapped_column(Integer)
    model_index: Mapped[int] = mapped_column(Integer)
    sample_index: Mapped[int] = mapped_column(Integer, default=0)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id"), index=True)
    cache_key: Mapped[str] = mapped_column(String(64), index=True)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    variables: Mapped[dict] = mapped_column(JSON, default=dict)  # the row's columns
    batch_rows: Mapped[int] = mapped_column(Integer, default=1)  # the canonical batch shape it ran at
    padded_length: Mapped[int] = mapped_column(Integer, default=0)


class Score(Base):
    """A 1–5 score of one turn with an optional comment (the notebook's alternative to 👍/👎)."""

    __tablename__ = "scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Battle(Base):
    """An arena battle's hidden pairing and finished rounds (never sent to the page before the vote).

    Stored when the battle starts and after each finished round, so a vote after a server restart
    still finds the pairing; ``turn_ids`` holds each side's answer ids, one per finished round.
    """

    __tablename__ = "battles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    presets: Mapped[list] = mapped_column(JSON)
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id"))
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    turn_ids: Mapped[list] = mapped_column(JSON, default=lambda: [[], []])
    leaked: Mapped[bool] = mapped_column(Boolean, default=False)
    vote_id: Mapped[int | None] = mapped_column(ForeignKey("votes.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CompareRounds(Base):
    """The rounds a side-by-side conversation shows, after Regenerate and Undo: per round the user's
    message and each column's answer (a turn id, or null where that column has none).

    Every answer ever generated stays in ``turns``; this row says which of them make up the
    conversation now (a regenerated round points at its new answers, an undone round is gone), so a
    reloaded page shows the conversation as it was left and the next message carries that history.
    """

    __tablename__ = "compare_rounds"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    rounds: Mapped[list] = mapped_column(JSON, default=list)  # [{"user": str, "turns": [id | null]}]
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Notebook(Base):
    """A saved notebook: a document (prompt set, template, models, checks, judge settings) with a link.

    ``id`` is the link's token (128 random bits), never a run or conversation id; ``owner`` the
    SHA-256 of the creating visitor's key (on a public deployment only its holder may edit or run).
    """

    __tablename__ = "notebooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(64), index=True)
    document: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class NotebookRun(Base):
    """One Run of a saved notebook (its version ``version``): the grid run's conversation, whose cells
    are its ``notebook_cells``, and the document as it was run."""

    __tablename__ = "notebook_runs"
    __table_args__ = (UniqueConstraint("notebook_id", "version", name="one_run_per_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notebook_id: Mapped[str] = mapped_column(ForeignKey("notebooks.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    document: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class JudgeVerdict(Base):
    """An LLM judge's verdict on a notebook run, kept apart from human votes (no leaderboard of votes
    reads this table).

    Pairwise: ``turn_a`` against ``turn_b`` (models ``model_a``/``model_b``), judged in both orders;
    ``outcome`` is ``a`` or ``b`` when both orders named the same winner, else ``tie``. Rubric: the
    answer ``turn_a`` scored 1–5 (``score``; None when the judge gave no score). ``calls`` holds each
    judge generation as it ran (rendered prompt, params with the seed, output, finish reason).
    """

    __tablename__ = "judge_verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    judging: Mapped[str] = mapped_column(String(32), index=True)  # one judge pass over a run
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # pairwise | rubric
    row_index: Mapped[int] = mapped_column(Integer)
    sample_index: Mapped[int] = mapped_column(Integer, default=0)
    model_a: Mapped[str] = mapped_column(String(128))
    model_b: Mapped[str | None] = mapped_column(String(128))
    turn_a: Mapped[int] = mapped_column(ForeignKey("turns.id"))
    turn_b: Mapped[int | None] = mapped_column(ForeignKey("turns.id"))
    outcome: Mapped[str | None] = mapped_column(String(16))  # a | b | tie (pairwise)
    score: Mapped[int | None] = mapped_column(Integer)  # 1–5 (rubric)
    rationale: Mapped[str] = mapped_column(Text, default="")
    judge_preset: Mapped[str] = mapped_column(String(128))
    judge_model_id: Mapped[str] = mapped_column(String(256))
    judge_revision: Mapped[str] = mapped_column(String(256))
    calls: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
