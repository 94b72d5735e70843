"""The real app (``app.py --db postgresql+psycopg://…``, its own process) on a real PostgreSQL server, with
the embedded SmolLM2 model, driven through gradio_client: answer, rate, vote, then the rows are read
back from PostgreSQL and the leaderboard counts the vote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from gradio_client import Client
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from playground.settings import ROOT
from playground.store.models import Conversation, Rating, Turn, Vote
from tests.conftest import PRESETS, free_port
from tests.test_app_integration import QUESTION, TWO, stream_compare

pytestmark = pytest.mark.slow

# Seeds run up to 2**32 - 1 and a random one is drawn from that whole range; these fixed ones are
# above 2**31 - 1 on purpose (PostgreSQL's INTEGER), so a too-small column fails every time, not 1 in 2.
SEED = 3_000_000_000


class App:
    """``python app.py`` as its own process, on a free port; ``stop()`` ends its process group."""

    def __init__(self, db_url: str, cache_dir, user_presets, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
        env.pop("SPACES_ZERO_GPU", None)
        command = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--db", db_url, "--presets", str(PRESETS), "--user-presets", str(user_presets)]
        command += ["--cache-dir", str(cache_dir), "--bootstrap-rounds", "10"]
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the app exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise AssertionError(f"the app did not answer within 180 s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture(scope="module")
def pg_db(postgres_server):
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(scope="module")
def pg_app(pg_db, model_cache_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pg_app")
    app = App(pg_db, model_cache_dir, folder / "user_presets", folder / "app.log")
    yield app
    app.stop()


def test_answer_rate_vote_are_stored_in_postgresql_and_counted(pg_app, pg_db):
    client = Client(pg_app.url, verbose=False)

    # one answer through /generate, then 👍 on its stored turn (its id read from PostgreSQL)
    answer = client.predict(
        TWO[1],
        json.dumps(QUESTION),
        json.dumps({"max_new_tokens": 16, "seed": SEED}),
        None,
        api_name="/generate",
    )
    assert answer.strip()
    engine = create_engine(pg_db)
    try:
        with Session(engine) as s:
            generated = s.scalars(
                select(Turn).join(Conversation).where(Conversation.mode == "api").order_by(Turn.id)
            ).all()
        assert [(t.preset_name, t.output) for t in generated] == [(TWO[1], answer)]
        turn_id = generated[0].id
        rating = client.predict(turn_id, 1, json.dumps(["accurate"]), "good", api_name="/rate")

        # a side-by-side round, and a vote for its first column
        params = json.dumps([{"max_new_tokens": 16, "seed": SEED + i} for i in range(2)])
        _items, final = stream_compare(client, TWO, QUESTION, params=params)
        assert all(c["done"] and c["error"] is None and c["text"] for c in final["columns"]), final
        vote = client.predict(final["conversation_id"], 0, "0", api_name="/vote")
        with pytest.raises(Exception, match="already has a vote"):
            client.predict(final["conversation_id"], 0, "tie", api_name="/vote")

        with Session(engine) as s:
            assert s.get(Turn, turn_id).params["max_new_tokens"] == 16  # JSON read back as JSON
            assert s.get(Turn, turn_id).seed == SEED
            stored = s.get(Rating, rating["rating_id"])
            assert (stored.turn_id, stored.value, stored.reasons, stored.comment) == (
                turn_id,
                1,
                ["accurate"],
                "good",
            )
            votes = s.scalars(select(Vote)).all()
            assert [(v.id, v.conversation_id, v.kind, v.outcome, v.models) for v in votes] == [
                (vote["vote_id"], final["conversation_id"], "compare", "0", TWO)
            ]
            compared = s.scalars(select(Turn).where(Turn.conversation_id == final["conversation_id"])).all()
            assert sorted((t.column, t.output, t.seed) for t in compared) == [
                (i, c["text"], SEED + i) for i, c in enumerate(final["columns"])
            ]
            counts = s.execute(
                text(
                    "SELECT (SELECT count(*) FROM turns), (SELECT count(*) FROM ratings), current_database()"
                )
            ).one()
            assert counts == (3, 1, pg_db.rsplit("/", 1)[1])
    finally:
        engine.dispose()

    # the leaderboard reads the vote and the rating back from PostgreSQL
    rows = {r["model"]: r for r in client.predict(True, False, "", "", api_name="/leaderboard")}
    assert set(rows) == set(TWO)
    assert [(rows[m]["battles"], rows[m]["wins"]) for m in TWO] == [(1, 1), (1, 0)]
    assert rows[TWO[0]]["rating"] > rows[TWO[1]]["rating"]
    assert (rows[TWO[1]]["ratings"], rows[TWO[1]]["like_rate"]) == (1.0, 1.0)
    assert all(r["avg_answer_chars"] > 0 and r["median_ttft_s"] > 0 for r in rows.values())
    assert client.predict(False, False, "", "", api_name="/leaderboard") == []  # compare votes left out
