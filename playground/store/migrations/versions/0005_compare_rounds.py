"""Side-by-side conversations remember which answers make up each round (after Regenerate and Undo),
so a reloaded page shows the conversation as it was left and the next message carries that history.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compare_rounds",
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("rounds", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"]),
        sa.PrimaryKeyConstraint("conversation_id"),
    )


def downgrade() -> None:
    op.drop_table("compare_rounds")
