"""Columns PostgreSQL enforces and SQLite does not: seeds up to 2**32 - 1 (what generation draws)
need 64-bit integers (PostgreSQL's INTEGER is 32-bit signed), and a served model's device
("remote:<base url>") needs more than 32 characters. SQLite already stores both and is left alone
(copying ``turns`` there would trip the foreign keys of ratings and scores).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "turns", "seed", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True
        )
        op.alter_column(
            "turns", "device", existing_type=sa.String(32), type_=sa.String(256), existing_nullable=False
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "turns", "seed", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True
        )
        op.alter_column(
            "turns", "device", existing_type=sa.String(256), type_=sa.String(32), existing_nullable=False
        )
