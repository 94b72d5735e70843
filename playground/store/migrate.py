"""Schema migrations (Alembic), run by the store on start for SQLite and PostgreSQL alike.

- A new database is created by upgrading an empty one to the newest revision.
- A database made before migrations existed (tables, but no ``alembic_version``) is stamped with
  the first revision, which is exactly that schema, and then upgraded.
- A database stamped with a revision this version does not know was made by a newer playground:
  the store refuses it with a message instead of guessing.
- Replicas starting at once on PostgreSQL take an advisory lock, so only one of them migrates.

A schema change is a new file in ``migrations/versions`` (``down_revision`` = the previous head);
``tests/test_migrations.py`` fails while the models and the newest revision disagree. To draft
one: ``.venv/bin/python -m playground.store.migrate revision "what changed"``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from playground.errors import PlaygroundError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST = "0001"
_LOCK_ID = 7_042_113  # any constant: the advisory lock that serialises PostgreSQL replicas' upgrades


class DatabaseTooNew(PlaygroundError):
    pass


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(connection: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(connection).get_current_heads()


def upgrade(engine: Engine, where: str) -> str:
    """Bring the database to the newest revision; return the revision it was at ("" if new)."""
    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        was = current(connection)
        unknown = [rev for rev in was if rev not in known]
        if unknown:
            raise DatabaseTooNew(
                f"the database {where} was made by a newer version of the playground (schema revision "
                f"{', '.join(unknown)}; this version knows up to {script.get_current_head()}): "
                "upgrade the playground, or start it with another --db"
            )
        config = alembic_config(connection)
        if not was and inspect(connection).has_table("conversations"):
            command.stamp(config, FIRST)  # made by create_all before migrations existed
            was = (f"{FIRST} (unstamped)",)
        command.upgrade(config, "head")
    return ", ".join(was)


def _draft(message: str) -> None:
    """Write a new revision file from the difference between the models and a database at head."""
    from sqlalchemy import create_engine

    engine = create_engine("sqlite://")
    upgrade(engine, "(scratch)")
    with engine.begin() as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=True)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "revision":
        sys.exit('usage: python -m playground.store.migrate revision "what changed"')
    _draft(sys.argv[2])
