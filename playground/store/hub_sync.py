"""Rated data → append-only JSONL files that ``huggingface_hub.CommitScheduler`` pushes to a dataset repo.

A Space's local disk is lost on restart, and a live SQLite file must never be uploaded. So every
rating, score and vote is also appended, with the conversation and the answers it judges (each
written once), as a JSON line to a file of this process's own (a new name per start), under the
scheduler's lock. The scheduler uploads the folder every few minutes. On start, an empty local
database is rebuilt from the dataset's files (``restore``), so the leaderboard survives restarts.

``file:///path`` as the repo is a dataset kept in a local folder (a mounted bucket volume, say):
``LocalFolderApi`` answers the scheduler's two Hub calls, ``create_repo`` and ``create_commit``,
by writing files, which is also how the tests replace the network.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from huggingface_hub import CommitScheduler, HfApi
from sqlalchemy import DateTime, select

from playground.store.db import Store, row_json
from playground.store.models import Conversation, Rating, Score, Turn, Vote

TABLES = {"conversation": Conversation, "turn": Turn, "rating": Rating, "score": Score, "vote": Vote}


class LocalFolderApi(HfApi):
    """The Hub calls ``CommitScheduler`` and ``restore`` make, answered by a local folder of repos."""

    def __init__(self, root: str | Path):
        super().__init__(token=False)
        self.root = Path(root)

    def create_repo(self, repo_id: str, *, exist_ok: bool = False, **_kwargs) -> Any:
        (self.root / repo_id).mkdir(parents=True, exist_ok=True)
        return SimpleNamespace(repo_id=repo_id)

    def create_commit(self, repo_id: str, operations, commit_message: str = "", **_kwargs) -> Any:
        for operation in operations:
            target = self.root / repo_id / operation.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            source = operation.path_or_fileobj
            data = source.read() if hasattr(source, "read") else Path(source).read_bytes()
            scratch = target.with_name(f".{target.name}.partial")
            scratch.write_bytes(data)
            scratch.replace(target)
        return SimpleNamespace(commit_message=commit_message)

    def snapshot_download(self, repo_id: str, **_kwargs) -> str:
        return str(self.root / repo_id)


def hub_api(repo: str) -> tuple[HfApi, str]:
    """The API and repo id for ``--sync-repo``: ``user/name`` (the Hub) or ``file:///folder/user/name``."""
    if repo.startswith("file://"):
        path = Path(repo.removeprefix("file://"))
        return LocalFolderApi(path.parent.parent), f"{path.parent.name}/{path.name}"
    return HfApi(), repo


class DatasetSync:
    """Appends every rating, score and vote (and, once each, what it judges) to this process's file."""

    def __init__(self, store: Store, folder: Path, lock: threading.Lock | None = None):
        self.store, self.folder = store, Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.path = self.folder / f"rated-{stamp}-{uuid.uuid4().hex[:8]}.jsonl"
        self.lock = lock or threading.Lock()
        self.written: set[tuple[str, Any]] = set()
        for kind, row in read_records(self.folder):
            if kind in ("conversation", "turn"):
                self.written.add((kind, row["id"]))
        store.listeners.append(self.on_event)

    def seen(self, records: list[tuple[str, dict]]) -> None:
        """Mark restored conversations and turns as written (they are in the dataset already)."""
        for kind, row in records:
            if kind in ("conversation", "turn"):
                self.written.add((kind, row["id"]))

    def on_event(self, kind: str, row_id: int) -> None:
        with self.store.session() as s:
            row = s.get(TABLES[kind], row_id)
            if row is None:
                return
            if kind in ("rating", "score"):
                turns = [s.get(Turn, row.turn_id)]
            else:  # a vote judges its round's answers (an arena battle: every round)
                query = select(Turn).where(Turn.conversation_id == row.conversation_id)
                if kind == "vote" and row.kind != "arena":
                    query = query.where(Turn.turn_index == row.turn_index)
                turns = list(s.scalars(query.order_by(Turn.id)))
            lines = []
            conversation = s.get(Conversation, turns[0].conversation_id if turns else row.conversation_id)
            for obj, name in [(conversation, "conversation"), *[(t, "turn") for t in turns]]:
                if obj is not None and (name, obj.id) not in self.written:
                    lines.append((name, row_json(obj)))
            lines.append((kind, row_json(row)))
        with self.lock:  # the scheduler's lock: never upload a half-written line
            with self.path.open("a", encoding="utf-8") as out:
                for name, data in lines:
                    out.write(json.dumps({"kind": name, "row": data}, ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())
            for name, data in lines:
                if name in ("conversation", "turn"):
                    self.written.add((name, data["id"]))


def read_records(folder: Path) -> list[tuple[str, dict]]:
    records = []
    for path in sorted(Path(folder).glob("**/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                records.append((item["kind"], item["row"]))
    return records


def restore(store: Store, folder: Path) -> list[tuple[str, dict]]:
    """Rebuild an empty database from the dataset's files (the latest line of a row wins)."""
    if store.count(Conversation):
        return []
    records = read_records(folder)
    latest: dict[tuple[str, Any], dict] = {}
    for kind, row in records:
        latest[(kind, row["id"])] = row
    with store.session() as s, s.begin():
        for kind in ("conversation", "turn", "rating", "score", "vote"):
            table = TABLES[kind]
            dates = {c.key for c in table.__table__.columns if isinstance(c.type, DateTime)}
            for (name, _id), row in sorted(latest.items(), key=lambda item: str(item[0][1])):
                if name == kind:
                    values = {k: datetime.fromisoformat(v) if k in dates and v else v for k, v in row.items()}
                    s.add(table(**values))
            s.flush()
    return records


def start_sync(
    store: Store, repo: str, data_dir: Path, every_minutes: float
) -> tuple[DatasetSync, CommitScheduler]:
    """Restore an empty database from ``repo``, then append rated data and push it every few minutes."""
    api, repo_id = hub_api(repo)
    folder = Path(data_dir) / "dataset-sync"
    scheduler = CommitScheduler(
        repo_id=repo_id, repo_type="dataset", folder_path=folder, every=every_minutes, hf_api=api
    )
    sync = DatasetSync(store, folder, scheduler.lock)
    snapshot = api.snapshot_download(repo_id, repo_type="dataset")
    sync.seen(restore(store, Path(snapshot)))
    return sync, scheduler
