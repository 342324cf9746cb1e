"""initial tables

Revision ID: 0001
Revises: 
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tmabot.store.tables import UTCDateTime

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sync_cursors',
    sa.Column('tracker', sa.String(length=64), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('cursor_at', UTCDateTime(), nullable=True),
    sa.Column('last_run_at', UTCDateTime(), nullable=True),
    sa.Column('last_full_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('tracker', 'project', name=op.f('pk_sync_cursors'))
    )
    op.create_table('tickets',
    sa.Column('tracker', sa.String(length=64), nullable=False),
    sa.Column('issue_id', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('issue_type', sa.String(length=128), nullable=True),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('components', sa.JSON(), nullable=False),
    sa.Column('parent_key', sa.String(length=64), nullable=True),
    sa.Column('tracker_priority', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=128), nullable=False),
    sa.Column('status_id', sa.String(length=64), nullable=True),
    sa.Column('status_category', sa.String(length=16), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('resolved_at', UTCDateTime(), nullable=True),
    sa.Column('assignee_email', sa.String(length=255), nullable=True),
    sa.Column('assignee_name', sa.String(length=255), nullable=True),
    sa.Column('reporter_email', sa.String(length=255), nullable=True),
    sa.Column('estimate_hours', sa.Float(), nullable=True),
    sa.Column('history_complete', sa.Boolean(), nullable=False),
    sa.Column('worklogs_complete', sa.Boolean(), nullable=False),
    sa.Column('worklog_total', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tracker', 'issue_id', name=op.f('pk_tickets')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tickets_client_id_created_at'), ['client_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_tracker_project'), ['tracker', 'project'], unique=False)

    op.create_table('tracker_meta',
    sa.Column('tracker', sa.String(length=64), nullable=False),
    sa.Column('deployment', sa.String(length=16), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('user_time_zone', sa.String(length=64), nullable=True),
    sa.Column('statuses', sa.JSON(), nullable=False),
    sa.Column('checked_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tracker', name=op.f('pk_tracker_meta'))
    )
    op.create_table('transitions',
    sa.Column('tracker', sa.String(length=64), nullable=False),
    sa.Column('issue_id', sa.String(length=64), nullable=False),
    sa.Column('history_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.Column('author', sa.String(length=255), nullable=True),
    sa.Column('from_status_id', sa.String(length=64), nullable=True),
    sa.Column('from_status', sa.String(length=128), nullable=True),
    sa.Column('from_category', sa.String(length=16), nullable=True),
    sa.Column('to_status_id', sa.String(length=64), nullable=True),
    sa.Column('to_status', sa.String(length=128), nullable=True),
    sa.Column('to_category', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('tracker', 'issue_id', 'history_id', 'seq', name=op.f('pk_transitions')),
    sqlite_with_rowid=False
    )
    op.create_table('worklogs',
    sa.Column('tracker', sa.String(length=64), nullable=False),
    sa.Column('worklog_id', sa.String(length=64), nullable=False),
    sa.Column('issue_id', sa.String(length=64), nullable=False),
    sa.Column('author_id', sa.String(length=128), nullable=True),
    sa.Column('author_email', sa.String(length=255), nullable=True),
    sa.Column('author_name', sa.String(length=255), nullable=True),
    sa.Column('started_at', UTCDateTime(), nullable=False),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('tracker', 'worklog_id', name=op.f('pk_worklogs')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('worklogs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_worklogs_tracker_issue_id'), ['tracker', 'issue_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('worklogs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_worklogs_tracker_issue_id'))

    op.drop_table('worklogs')
    op.drop_table('transitions')
    op.drop_table('tracker_meta')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_tracker_project'))
        batch_op.drop_index(batch_op.f('ix_tickets_client_id_created_at'))

    op.drop_table('tickets')
    op.drop_table('sync_cursors')
