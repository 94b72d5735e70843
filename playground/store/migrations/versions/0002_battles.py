"""Arena battles: the hidden pairing and the finished rounds of every battle, so a vote after a
restart still works and reveals the right names.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "battles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("presets", sa.JSON(), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=True),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("turn_ids", sa.JSON(), nullable=False),
        sa.Column("leaked", sa.Boolean(), nullable=False),
        sa.Column("vote_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"]),
        sa.ForeignKeyConstraint(["vote_id"], ["votes.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_battles_session_id"), "battles", ["session_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_battles_session_id"), table_name="battles")
    op.drop_table("battles")
