"""The journal: sittings, hash-chained records, and the chain head of each sitting.

Revision ID: 0001_journal
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001_journal"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "sittings",
        sa.Column("uid", sa.String(64), primary_key=True),
        sa.Column("ord", sa.Integer, nullable=False, unique=True),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "journal",
        sa.Column("sitting", sa.String(64), sa.ForeignKey("sittings.uid"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("sitting", "seq", name="pk_journal"),
    )
    op.create_table(
        "chain_head",
        sa.Column("sitting", sa.String(64), sa.ForeignKey("sittings.uid"), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chain_head")
    op.drop_table("journal")
    op.drop_table("sittings")
