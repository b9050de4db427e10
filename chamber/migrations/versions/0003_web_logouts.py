"""Logged-out web sessions: a copied cookie of a session that logged out stays dead across a restart
(display/auth.py ``StoredLogouts``).

Revision ID: 0003_web_logouts
Revises: 0002_web_users
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_web_logouts"
down_revision: str | None = "0002_web_users"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "web_logouts",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("web_logouts")
