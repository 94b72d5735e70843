"""Alembic migrations: a database made before migrations is upgraded with nothing lost, a new one is
created at the newest revision, a newer one is refused, and the models match the newest revision."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from playground.store.db import Store
from playground.store.migrate import DatabaseTooNew, head, upgrade
from playground.store.models import Base

ROOT = Path(__file__).resolve().parents[1]
# made by the app as it was before migrations (create_all), through its real services: a compare
# round with ratings and a vote, an arena battle with its vote, a notebook run with a score
PRE_ALEMBIC = ROOT / "tests" / "data" / "pre-alembic.sqlite"
TABLES = ("conversations", "turns", "ratings", "votes", "notebook_cells", "scores")


def dump(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as connection:
        return {t: connection.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}


def test_a_database_made_before_migrations_is_upgraded_with_nothing_lost(tmp_path):
    db = tmp_path / "old.sqlite"
    shutil.copy(PRE_ALEMBIC, db)
    before = dump(db)
    assert all(before[t] for t in TABLES), "the fixture has rows in every table"
    store = Store(str(db))
    assert store.migrated_from == "0001 (unstamped)"
    assert dump(db) == before
    with store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_heads() == (head(),)
    # the upgraded database works: a new battle row, and the old rows read through the models
    store.save_battle("b" * 24, session_id="s", presets=["x", "y"], turn_ids=[[], []])
    assert store.battle("b" * 24).presets == ["x", "y"]
    with sqlite3.connect(PRE_ALEMBIC) as connection:
        outputs = [r[0] for r in connection.execute("SELECT output FROM turns ORDER BY id")]
    assert [t.output for t in store.turns()] == outputs
    assert Store(str(db)).migrated_from == head()  # a second start has nothing to do
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_the_upgraded_old_database_serves_its_leaderboard(tmp_path, services):
    from playground.services.leaderboard.service import LeaderboardFilters, LeaderboardService

    db = tmp_path / "old.sqlite"
    shutil.copy(PRE_ALEMBIC, db)
    board = LeaderboardService(Store(str(db)), services.registry, 10).compute(
        LeaderboardFilters(include_compare=True)
    )
    assert {r["model"] for r in board.rows()} == {"smollm2-135m-instruct", "smollm2-135m-instruct-greedy"}


def test_the_models_match_the_newest_revision():
    """Fails when a model changes without a migration (write one: see playground/store/migrate.py)."""
    engine = create_engine("sqlite://")
    upgrade(engine, "(memory)")
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_a_database_from_a_newer_version_is_refused_with_a_message(tmp_path, capsys):
    from playground.cli import main

    db = tmp_path / "newer.sqlite"
    Store(str(db)).engine.dispose()
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'f00dcafe'")
    before = dump(db)
    with pytest.raises(
        DatabaseTooNew, match="newer version of the playground.*f00dcafe.*upgrade the playground"
    ):
        Store(str(db))
    assert main(["--db", str(db), "--port", "0"]) == 2  # what app.py exits with
    assert "made by a newer version of the playground" in capsys.readouterr().err
    assert dump(db) == before


def test_postgresql_is_migrated_and_a_newer_one_refused(postgres_url):
    store = Store(postgres_url)
    assert store.migrated_from == ""
    with store.engine.begin() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == head()
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe'"))
    with pytest.raises(DatabaseTooNew):
        Store(postgres_url)


def test_postgresql_models_match_the_newest_revision(postgres_url):
    store = Store(postgres_url)
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
