"""Saved notebooks, their runs (versions) and judge verdicts in the store's database."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from playground.errors import PlaygroundError
from playground.store.db import Store
from playground.store.models import JudgeVerdict, Notebook, NotebookRun, Rating, Score, utcnow


class NotebookStore:
    """Reads and writes the ``notebooks``, ``notebook_runs`` and ``judge_verdicts`` tables of ``store``."""

    def __init__(self, store: Store):
        self.store = store

    def create(self, notebook_id: str, name: str, owner: str, document: dict) -> None:
        with self.store._write() as s:
            s.add(Notebook(id=notebook_id, name=name, owner=owner, document=document))

    def get(self, notebook_id: str) -> Notebook | None:
        with self.store.session() as s:
            return s.get(Notebook, notebook_id)

    def update(self, notebook_id: str, name: str, document: dict) -> None:
        with self.store._write() as s:
            row = s.get(Notebook, notebook_id)
            if row is None:
                raise PlaygroundError(f"there is no saved notebook {notebook_id!r}")
            row.name, row.document, row.updated_at = name, document, utcnow()

    def listed(self, owner: str | None = None) -> list[Notebook]:
        """Every notebook (or ``owner``'s), the most recently saved first."""
        query = select(Notebook).order_by(Notebook.updated_at.desc(), Notebook.id)
        if owner is not None:
            query = query.where(Notebook.owner == owner)
        with self.store.session() as s:
            return list(s.scalars(query))

    def delete(self, notebook_id: str) -> None:
        """The notebook and its list of runs; the runs' stored answers and verdicts stay."""
        with self.store._write() as s:
            s.execute(delete(NotebookRun).where(NotebookRun.notebook_id == notebook_id))
            s.execute(delete(Notebook).where(Notebook.id == notebook_id))

    def add_run(self, notebook_id: str, conversation_id: str, document: dict) -> int:
        """Record a Run as the notebook's next version; returns the version number."""
        with self.store._write() as s:
            latest = s.scalar(
                select(func.max(NotebookRun.version)).where(NotebookRun.notebook_id == notebook_id)
            )
            version = int(latest or 0) + 1
            s.add(
                NotebookRun(
                    notebook_id=notebook_id,
                    version=version,
                    conversation_id=conversation_id,
                    document=document,
                )
            )
        return version

    def runs(self, notebook_id: str) -> list[NotebookRun]:
        query = (
            select(NotebookRun).where(NotebookRun.notebook_id == notebook_id).order_by(NotebookRun.version)
        )
        with self.store.session() as s:
            return list(s.scalars(query))

    def record_verdicts(self, verdicts: list[JudgeVerdict]) -> list[int]:
        with self.store._write() as s:
            s.add_all(verdicts)
            s.flush()
            return [v.id for v in verdicts]

    def verdicts(self, conversation_id: str | None = None, kind: str | None = None) -> list[JudgeVerdict]:
        """Judge verdicts, oldest first: of one run, and/or of one kind (``pairwise``/``rubric``)."""
        query = select(JudgeVerdict).order_by(JudgeVerdict.id)
        if conversation_id is not None:
            query = query.where(JudgeVerdict.conversation_id == conversation_id)
        if kind is not None:
            query = query.where(JudgeVerdict.kind == kind)
        with self.store.session() as s:
            return list(s.scalars(query))

    def latest_ratings(self, turn_ids: set[int]) -> tuple[dict[int, int], dict[int, int]]:
        """The latest 1–5 score and the latest 👍/👎 (1/-1) of each of these answers that has one."""
        scores: dict[int, int] = {}
        thumbs: dict[int, int] = {}
        ids = sorted(turn_ids)
        with self.store.session() as s:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for row in s.scalars(select(Score).where(Score.turn_id.in_(chunk)).order_by(Score.id)):
                    scores[row.turn_id] = row.score
                for row in s.scalars(select(Rating).where(Rating.turn_id.in_(chunk)).order_by(Rating.id)):
                    thumbs[row.turn_id] = row.value
        return scores, thumbs
