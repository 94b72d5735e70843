"""Crash safety under load: N concurrent API sessions for T seconds, then SIGKILL the app.

Each session loops ``/compare`` on one preset (the embedded model) and counts an answer as
*acknowledged* when its final update, carrying the stored turn id, has reached the client. After
the kill the database must hold every acknowledged answer with exactly the streamed text and pass
``PRAGMA integrity_check``, and the app must start again on it. Prints acknowledged / lost /
answers per second; exits 1 if anything was lost.

    .venv/bin/python bench/load.py [--sessions 16] [--seconds 60] [--max-new-tokens 16] [--db PATH]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gradio_client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.appproc import AppProcess  # noqa: E402

PRESET = "smollm2-135m-instruct"
TOPICS = ["a river", "the moon", "bread", "a violin", "winter", "a lighthouse", "salt", "a fox"]


@dataclass
class LoadResult:
    acknowledged: dict[int, str] = field(default_factory=dict)  # turn id → streamed text
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lost: list[int] = field(default_factory=list)
    mismatched: list[int] = field(default_factory=list)
    integrity: str = ""
    restarted: bool = False

    def summary(self) -> str:
        rate = len(self.acknowledged) / self.seconds if self.seconds else 0.0
        return (
            f"acknowledged {len(self.acknowledged)} · lost {len(self.lost)} · text mismatches "
            f"{len(self.mismatched)} · integrity {self.integrity} · restarted {self.restarted} · "
            f"{rate:.2f} answers/s ({len(self.errors)} client errors)"
        )


def session_loop(
    url: str, index: int, stop: threading.Event, max_new_tokens: int, result: LoadResult, lock
) -> None:
    try:
        client = Client(url, verbose=False)
    except Exception as exc:  # noqa: BLE001 - reported, the others go on
        with lock:
            result.errors.append(f"session {index}: {exc}")
        return
    k = 0
    while not stop.is_set():
        topic = TOPICS[(index + k) % len(TOPICS)]
        messages = [{"role": "user", "content": f"Write one sentence about {topic}. ({index}.{k})"}]
        params = {"max_new_tokens": max_new_tokens, "seed": index * 1000 + k}
        k += 1
        try:
            job = client.submit(
                json.dumps([PRESET]), json.dumps(messages), json.dumps(params), "", "", api_name="/compare"
            )
            final = None
            for update in job:  # the final update is the one with the turn id
                final = update
        except Exception as exc:  # noqa: BLE001 - the kill ends every session this way
            with lock:
                result.errors.append(f"session {index}: {type(exc).__name__}")
            return
        column = (final or {}).get("columns", [{}])[0]
        if column.get("done") and column.get("turn_id"):
            with lock:
                result.acknowledged[column["turn_id"]] = column["text"]
                lock.notify_all()


def run_load(
    db: Path,
    sessions: int,
    max_new_tokens: int,
    seconds: float | None = None,
    answers: int | None = None,
    app_args=(),
    timeout: float = 600,
) -> LoadResult:
    """Start the app, load it until ``seconds`` have passed or ``answers`` answers were acknowledged
    (whichever is given), SIGKILL it mid-load, check the database, restart on it."""
    app = AppProcess(str(db), args=list(app_args)).start()
    result, lock, stop = LoadResult(), threading.Condition(), threading.Event()
    started = time.time()
    threads = [
        threading.Thread(
            target=session_loop, args=(app.url, i, stop, max_new_tokens, result, lock), daemon=True
        )
        for i in range(sessions)
    ]
    for thread in threads:
        thread.start()
    with lock:
        if answers is not None:  # wait for the count, not for a time window
            lock.wait_for(lambda: len(result.acknowledged) >= answers, timeout=timeout)
        else:
            lock.wait_for(lambda: False, timeout=seconds)
        acknowledged = dict(result.acknowledged)  # what the clients had been told before the kill
    stop.set()
    app.kill()  # the other sessions are mid-answer: their answers are the ones at risk
    result.seconds = time.time() - started
    for thread in threads:
        thread.join(timeout=5)  # daemon threads: one still waiting on the dead server is left behind
    result.acknowledged = acknowledged
    with sqlite3.connect(db) as connection:
        result.integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        stored = dict(connection.execute("SELECT id, output FROM turns").fetchall())
    result.lost = [t for t in acknowledged if t not in stored]
    result.mismatched = [t for t, text in acknowledged.items() if t in stored and stored[t] != text]
    again = AppProcess(str(db), args=list(app_args))
    try:
        again.start()
        Client(again.url, verbose=False).predict(False, False, "", "", api_name="/leaderboard")
        result.restarted = True
    finally:
        again.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp()) / "load.db"
    # every session may run its request at once: the overall limit is not what is measured here
    limits = ["--max-generations", str(max(8, args.sessions))]
    result = run_load(db, args.sessions, args.max_new_tokens, seconds=args.seconds, app_args=limits)
    print(f"{args.sessions} sessions for {args.seconds:.0f} s, then SIGKILL; database {db}")
    print(result.summary())
    return 0 if not result.lost and not result.mismatched and result.integrity == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
