"""nudges ledger: overdue-SLA reminders at most once per ticket, indicator and level

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tmabot.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nudges",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("ticket_key", sa.String(length=64), nullable=False),
        sa.Column("indicator", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.Column("taken_by", sa.String(length=32), nullable=True),
        sa.Column("taken_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("client_id", "ticket_key", "indicator", "level",
                                name=op.f("pk_nudges")),
    )


def downgrade() -> None:
    op.drop_table("nudges")
