"""Leaderboard speed: 100k votes over 20 models in a fresh SQLite file, then the full leaderboard.

Votes are real ``Vote`` rows (each with its ``Conversation``), bulk-inserted through the store's
engine in one transaction; outcomes follow a Bradley–Terry model with ties and both-bad, ~5 % of
votes are identity-leaked and ~10 % are named 3-column compare votes. ``--turns-per-vote 2`` also
stores two answers per vote (markdown-ish texts whose length and markup depend on the model; the
longer answer of a battle wins a little more often), so the per-model answer statistics and the
style control read real rows too.

``LeaderboardService.compute`` (DB read + vote→battle conversion + Bradley–Terry fit + bootstrap +
online Elo + answer statistics + rating statistics + style control, which is on by default) is
timed in two ways per filter case:

* cold: a fresh ``LeaderboardService`` and ``Store`` on the file, so its answer index reads every
  voted conversation's answers once (what the first leaderboard after a server start costs, unless
  ``LeaderboardService.warm_up`` ran at start-up);
* warm: ``--repeats`` more calls on that service (what every later refresh costs; the index only
  reads what was stored since its last call, here nothing).

Each line shows the steps' seconds (``result.timings``).

    .venv/bin/python bench/leaderboard.py [--votes 100000] [--models 20] [--rounds 100] [--repeats 3]
        [--turns-per-vote 0] [--no-style-control] [--db PATH]
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

from playground.engine.models.presets import PresetRegistry  # noqa: E402
from playground.services.leaderboard.service import LeaderboardFilters, LeaderboardService  # noqa: E402
from playground.store.db import Store  # noqa: E402
from playground.store.models import Conversation, Turn, Vote  # noqa: E402

_WORDS = "the model answers this question with a short clear and careful explanation of each step".split()


def answer_pool(rng: np.random.Generator, size: int = 4000) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts of varied length and markup, their lengths and their "markup level" (0 plain … 1 rich)."""
    texts, lengths, levels = [], [], []
    for _ in range(size):
        level = rng.random()
        parts = []
        for _ in range(int(rng.integers(1, 6))):
            r = rng.random()
            if r < 0.15 * level:
                parts.append("## " + " ".join(rng.choice(_WORDS, 3)))
            elif r < 0.5 * level:
                mark = "**" if rng.random() < level else ""
                items = (
                    f"- {mark}{w}{mark} " + " ".join(rng.choice(_WORDS, 5)) for w in rng.choice(_WORDS, 3)
                )
                parts.append("\n".join(items))
            else:
                parts.append(" ".join(rng.choice(_WORDS, int(rng.integers(5, 40)))) + ".")
        text = "\n\n".join(parts)
        texts.append(text)
        lengths.append(len(text))
        levels.append(level)
    return texts, np.asarray(lengths, dtype=np.float64), np.asarray(levels)


def fill(store: Store, votes: int, models: int, turns_per_vote: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    names = [f"model-{i:02d}" for i in range(models)]
    strength = rng.normal(0, 1.0, models)
    verbosity = rng.random(models)  # which part of the answer pool a model draws from
    texts, lengths, levels = answer_pool(rng)
    order = np.argsort(lengths + 400.0 * levels)  # short and plain … long and rich
    start = datetime(2024, 1, 1)
    conversations, vote_rows, turn_rows = [], [], []
    for k in range(votes):
        cid = uuid.uuid4().hex
        created = start + timedelta(seconds=int(k * 90 * 86400 / votes))
        compare = rng.random() < 0.10
        cols = rng.choice(models, 3 if compare else 2, replace=False)
        picks = [order[int(np.clip(rng.normal(verbosity[c], 0.15), 0, 0.999) * len(order))] for c in cols]
        style = 0.0
        if turns_per_vote:  # voters like longer answers a little
            chars = lengths[picks]
            style = 0.6 * (chars - chars.mean()) / chars.sum()
        r = rng.random()
        if r < 0.10:
            outcome = "tie"
        elif r < 0.15:
            outcome = "all_bad"
        else:
            p = np.exp(strength[cols] + style)
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
                    "output": texts[picks[column]], "finish_reason": "eos",
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


def line(label: str, seconds: float, result) -> str:
    steps = " · ".join(f"{name} {value:.3f}" for name, value in result.timings.items())
    return (
        f"{label}: {seconds:.3f} s for {result.votes:,} votes → {result.battles:,} battles, "
        f"{len(result.table)} models [{steps}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds")
    parser.add_argument("--repeats", type=int, default=3, help="warm calls per case")
    parser.add_argument("--turns-per-vote", type=int, default=0, choices=[0, 1, 2])
    parser.add_argument(
        "--no-style-control", action="store_true", help="time without the style-controlled fit"
    )
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: a fresh temporary one)")
    args = parser.parse_args()

    db = args.db or Path(tempfile.mkdtemp(prefix="leaderboard-bench-")) / "bench.db"
    if db.exists():
        sys.exit(f"{db} exists; the benchmark needs a fresh file")
    seconds = fill(Store(str(db)), args.votes, args.models, args.turns_per_vote)
    store = Store(str(db))
    print(
        f"inserted {store.count(Vote):,} votes, {store.count(Conversation):,} conversations and "
        f"{store.count(Turn):,} answers over {args.models} models into {db} in {seconds:.2f} s; "
        f"{args.rounds} bootstrap rounds, style control {'off' if args.no_style_control else 'on'}"
    )
    registry = PresetRegistry([])
    cases = {
        "default (anonymous, not leaked)": LeaderboardFilters(),
        "all votes (+ leaked, + compare)": LeaderboardFilters(include_compare=True, include_leaked=True),
    }
    for label, filters in cases.items():
        service = LeaderboardService(
            Store(str(db)), registry, bootstrap_rounds=args.rounds, style_control=not args.no_style_control
        )
        t0 = time.perf_counter()
        result = service.compute(filters)
        print(line(f"{label} cold", time.perf_counter() - t0, result))
        for repeat in range(args.repeats):
            t0 = time.perf_counter()
            result = service.compute(filters)
            print(line(f"{label} warm #{repeat + 1}", time.perf_counter() - t0, result))
    columns = [
        "rank",
        "model",
        "rating",
        "ci_low",
        "ci_high",
        "battles",
        "avg_answer_chars",
        "sc_rank",
        "sc_rating",
    ]
    print(result.table[columns].head(8).to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    if result.style is not None:
        print("style coefficients (log-odds per RMS unit of the normalised difference):")
        print(result.style.coefficients.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
