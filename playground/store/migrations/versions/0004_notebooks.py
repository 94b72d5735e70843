"""Saved notebooks (a document with a link), each Run of one as a version with its grid run, and an
LLM judge's verdicts on runs, stored apart from human votes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notebooks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_notebooks_owner"), "notebooks", ["owner"], unique=False)
    op.create_table(
        "notebook_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notebook_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"]),
        sa.ForeignKeyConstraint(["notebook_id"], ["notebooks.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("notebook_id", "version", name="one_run_per_version"),
    )
    op.create_index(op.f("ix_notebook_runs_notebook_id"), "notebook_runs", ["notebook_id"], unique=False)
    op.create_table(
        "judge_verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("judging", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("sample_index", sa.Integer(), nullable=False),
        sa.Column("model_a", sa.String(length=128), nullable=False),
        sa.Column("model_b", sa.String(length=128), nullable=True),
        sa.Column("turn_a", sa.Integer(), nullable=False),
        sa.Column("turn_b", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("judge_preset", sa.String(length=128), nullable=False),
        sa.Column("judge_model_id", sa.String(length=256), nullable=False),
        sa.Column("judge_revision", sa.String(length=256), nullable=False),
        sa.Column("calls", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"]),
        sa.ForeignKeyConstraint(["turn_a"], ["turns.id"]),
        sa.ForeignKeyConstraint(["turn_b"], ["turns.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_judge_verdicts_conversation_id"), "judge_verdicts", ["conversation_id"], unique=False
    )
    op.create_index(op.f("ix_judge_verdicts_judging"), "judge_verdicts", ["judging"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_judge_verdicts_judging"), table_name="judge_verdicts")
    op.drop_index(op.f("ix_judge_verdicts_conversation_id"), table_name="judge_verdicts")
    op.drop_table("judge_verdicts")
    op.drop_index(op.f("ix_notebook_runs_notebook_id"), table_name="notebook_runs")
    op.drop_table("notebook_runs")
    op.drop_index(op.f("ix_notebooks_owner"), table_name="notebooks")
    op.drop_table("notebooks")
