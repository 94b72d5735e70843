"""Alembic environment: run on the connection the store hands over (``config.attributes["connection"]``).

Migrations run from ``playground.store.migrate`` at start-up, never from a separate command; to
write a new revision, see that module's docstring.
"""

from alembic import context

from playground.store.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
