"""Leaderboard speed: 100k votes over 20 models in a fresh SQLite file, then the full leaderboard.

Votes are real ``Vote`` rows (each with its ``Conversation``), bulk-inserted through the store's
engine in one transaction; outcomes follow a Bradley–Terry model with ties and both-bad, ~5 % of
votes are identity-leaked and ~10 % are named 3-column compare votes. ``--turns-per-vote 2`` also
stores two answers per vote, so the per-model answer statistics read real rows too. Each
repetition times ``LeaderboardService.compute`` (DB read + vote→battle conversion + Bradley–Terry
fit + bootstrap + online Elo + answer statistics) with a fresh ``Store`` on the same file.

    .venv/bin/python bench/leaderboard.py [--votes 100000] [--models 20] [--rounds 100] [--repeats 3]
        [--turns-per-vote 0] [--db PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground.engine.presets import PresetRegistry  # noqa: E402
from playground.services.leaderboard import LeaderboardFilters, LeaderboardService  # noqa: E402
from playground.services.ratings import compute_leaderboard  # noqa: E402
from playground.store.db import Store  # noqa: E402
from playground.store.models import Conversation, Turn, Vote  # noqa: E402


def fill(store: Store, votes: int, models: int, turns_per_vote: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    names = [f"model-{i:02d}" for i in range(models)]
    strength = rng.normal(0, 1.0, models)
    start = datetime(2024, 1, 1)
    conversations, vote_rows, turn_rows = [], [], []
    for k in range(votes):
        cid = uuid.uuid4().hex
        created = start + timedelta(seconds=int(k * 90 * 86400 / votes))
        compare = rng.random() < 0.10
        cols = rng.choice(models, 3 if compare else 2, replace=False)
        r = rng.random()
        if r < 0.10:
            outcome = "tie"
        elif r < 0.15:
            outcome = "all_bad"
        else:
            p = np.exp(strength[cols])
            outcome = str(int(rng.choice(len(cols), p=p / p.sum())))
        picked = [names[c] for c in cols]
        kind = "compare" if compare else "arena"
        conversations.append({"id": cid, "mode": kind, "models": picked, "created_at": created})
        vote_rows.append(
            {
                "conversation_id": cid,
                "kind": kind,
                "turn_index": 0,
                "outcome": outcome,
                "models": picked,
                "anonymous": not compare,
                "identity_leaked": (not compare) and rng.random() < 0.05,
                "created_at": created,
            }
        )
        for column in range(min(turns_per_vote, len(picked))):
            turn_rows.append(
                {
                    "conversation_id": cid, "column": column, "turn_index": 0, "preset_name": picked[column],
                    "preset_hash": "h", "model_id": f"org/{picked[column]}", "revision": "r",
                    "quantization": "none", "dtype": "float32", "device": "cpu", "messages": [],
                    "system_prompt": "", "prompt": "p", "params": {}, "seed": 1,
                    "output": "x" * int(rng.integers(20, 800)), "finish_reason": "eos",
                    "ttft_s": float(rng.uniform(0.05, 2.0)), "tokens_per_s": float(rng.uniform(5, 80)),
                    "completion_tokens": 100, "started_at": created, "finished_at": created, "app_version": "bench",
                }
            )  # fmt: skip
    started = time.perf_counter()
    with store.session() as s, s.begin():
        s.execute(insert(Conversation), conversations)
        s.execute(insert(Vote), vote_rows)
        if turn_rows:
            s.execute(insert(Turn), turn_rows)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--turns-per-vote", type=int, default=0, choices=[0, 1, 2])
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: a fresh temporary one)")
    args = parser.parse_args()

    db = args.db or Path(tempfile.mkdtemp(prefix="leaderboard-bench-")) / "bench.db"
    if db.exists():
        sys.exit(f"{db} exists; the benchmark needs a fresh file")
    seconds = fill(Store(str(db)), args.votes, args.models, args.turns_per_vote)
    store = Store(str(db))
    print(
        f"inserted {store.count(Vote):,} votes, {store.count(Conversation):,} conversations and "
        f"{store.count(Turn):,} answers over {args.models} models into {db} in {seconds:.2f} s"
    )
    registry = PresetRegistry([])
    cases = {
        "default (anonymous, not leaked)": LeaderboardFilters(),
        "all votes (+ leaked, + compare)": LeaderboardFilters(include_compare=True, include_leaked=True),
    }
    for label, filters in cases.items():
        for repeat in range(args.repeats):
            service = LeaderboardService(Store(str(db)), registry, bootstrap_rounds=args.rounds)
            t0 = time.perf_counter()
            result = service.compute(filters)
            total = time.perf_counter() - t0
            # the same steps one by one, for the breakdown
            t0 = time.perf_counter()
            battles, _votes = service.battles(filters)
            t2 = t1 = time.perf_counter()
            compute_leaderboard(battles, args.rounds, 0)
            t3 = time.perf_counter()
            service.answer_stats(filters)
            t4 = time.perf_counter()
            print(
                f"{label} #{repeat + 1}: {total:.3f} s for {result.votes:,} votes → {result.battles:,} battles, "
                f"{len(result.table)} models, {args.rounds} bootstrap rounds "
                f"[read votes → battles {t1 - t0:.3f} · fit+bootstrap+elo {t3 - t2:.3f} · "
                f"answer stats {t4 - t3:.3f}]"
            )
    print(result.table.head(5).to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
