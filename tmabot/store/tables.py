"""The store's tables (SQLAlchemy Core): tickets, status transitions, worklogs, sync state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC on every backend."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
})

# Natural primary keys only: a re-sync writes the same rows, so dumps compare equal.
tickets = Table(
    "tickets", metadata,
    Column("tracker", String(64), primary_key=True),
    Column("issue_id", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("project", String(64), nullable=False),
    Column("key", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("issue_type", String(128)),
    Column("labels", JSON, nullable=False),
    Column("components", JSON, nullable=False),
    Column("parent_key", String(64)),
    Column("tracker_priority", String(64)),
    Column("status", String(128), nullable=False),
    Column("status_id", String(64)),
    Column("status_category", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("assignee_email", String(255)),
    Column("assignee_name", String(255)),
    Column("reporter_email", String(255)),
    Column("estimate_hours", Float),
    Column("history_complete", Boolean, nullable=False),
    Column("worklogs_complete", Boolean, nullable=False),
    Column("worklog_total", Integer, nullable=False),
    # 0002: the tracker's own category key (Jira statusCategory, Linear state type: keeps
    # "canceled" apart from "completed") and tracker-specific facts (Linear's native SLA
    # fields, cycle, project).
    Column("status_type", String(32)),
    Column("extra", JSON),
    # 0006: the ticket's comments as [[created ISO UTC, author email or null, public], ...],
    # oldest first; null when comments were not read (`[sla] response_on_comment` off).
    Column("comments", JSON),
    Index(None, "client_id", "created_at"),
    Index(None, "tracker", "project"),
    sqlite_with_rowid=False,
)

transitions = Table(
    "transitions", metadata,
    Column("tracker", String(64), primary_key=True),
    Column("issue_id", String(64), primary_key=True),
    Column("history_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("author", String(255)),
    Column("from_status_id", String(64)),
    Column("from_status", String(128)),
    Column("from_category", String(16)),
    Column("to_status_id", String(64)),
    Column("to_status", String(128)),
    Column("to_category", String(16)),
    sqlite_with_rowid=False,  # one B-tree keyed by the natural key, not a rowid + index
)

worklogs = Table(
    "worklogs", metadata,
    Column("tracker", String(64), primary_key=True),
    Column("worklog_id", String(64), primary_key=True),
    Column("issue_id", String(64), nullable=False),
    Column("author_id", String(128)),
    Column("author_email", String(255)),
    Column("author_name", String(255)),
    Column("started_at", UTCDateTime, nullable=False),
    Column("seconds", Integer, nullable=False),
    Column("comment", Text, nullable=False),
    Column("updated_at", UTCDateTime),
    Column("source", String(32), nullable=False),  # "tracker" (later: timesheet imports)
    Index(None, "tracker", "issue_id"),
    sqlite_with_rowid=False,
)

# 0002: time imported from timesheet exports (Linear has no worklogs), per client.
time_entries = Table(
    "time_entries", metadata,
    Column("client_id", String(64), primary_key=True),
    Column("entry_id", String(64), primary_key=True),  # stable hash of the export row
    Column("tracker", String(64), nullable=False),
    Column("issue_id", String(64), nullable=False),
    Column("issue_key", String(64), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("seconds", Integer, nullable=False),
    Column("person_email", String(255)),
    Column("person_name", String(255)),
    Column("comment", Text, nullable=False),
    Column("source_format", String(16), nullable=False),  # toggl | clockify | harvest | generic
    Column("file_name", Text, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Index(None, "tracker", "issue_id"),
)

# 0003: what went out, once per client-month and channel (email, slack). A row is claimed
# (status "sending") before the send and marked "sent" after; a claim left by a crash
# blocks automatic resends (`--resend` forces one).
deliveries = Table(
    "deliveries", metadata,
    Column("client_id", String(64), primary_key=True),
    Column("period", String(16), primary_key=True),  # "2026-10"
    Column("channel", String(16), primary_key=True),  # email | slack
    Column("status", String(16), nullable=False),  # sending | sent
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("detail", Text),  # message id, recipients (never secrets)
)

# 0004: overdue-SLA nudges, at most once per (ticket, indicator, level), claimed before the
# post (a crash or a second instance never posts twice); who took the ticket from Slack.
nudges = Table(
    "nudges", metadata,
    Column("client_id", String(64), primary_key=True),
    Column("ticket_key", String(64), primary_key=True),
    Column("indicator", String(16), primary_key=True),
    Column("level", String(16), primary_key=True),  # at_risk | breached
    Column("status", String(16), nullable=False),  # sending | sent
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("channel", String(32)),
    Column("message_ts", String(32)),
    Column("taken_by", String(32)),
    Column("taken_at", UTCDateTime),
)

# 0005: the scheduler's jobs: last success and last error, for catch-up and /healthz.
job_runs = Table(
    "job_runs", metadata,
    Column("job", String(32), primary_key=True),
    Column("last_success_at", UTCDateTime),
    Column("last_error_at", UTCDateTime),
    Column("last_error", Text),
)

sync_cursors = Table(
    "sync_cursors", metadata,
    Column("tracker", String(64), primary_key=True),
    Column("project", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    # High-water mark of `updated` over committed data, never past a run's start.
    Column("cursor_at", UTCDateTime),
    Column("last_run_at", UTCDateTime),  # wall clock: not compared between runs
    Column("last_full_at", UTCDateTime),
    # 0006: whether the last complete walk read comments (`[sla] response_on_comment`);
    # a cursor from a walk without them cannot serve a sync that needs them.
    Column("with_comments", Boolean, nullable=False, server_default=false()),
)

tracker_meta = Table(
    "tracker_meta", metadata,
    Column("tracker", String(64), primary_key=True),
    Column("deployment", String(16), nullable=False),
    Column("version", String(64), nullable=False),
    Column("user_time_zone", String(64)),
    Column("statuses", JSON, nullable=False),  # id -> [name, category]
    Column("checked_at", UTCDateTime, nullable=False),
)

# Columns that record when tmabot ran, not what the tracker holds.
WALL_CLOCK_COLUMNS = {("sync_cursors", "last_run_at"), ("sync_cursors", "last_full_at"),
                      ("tracker_meta", "checked_at"), ("time_entries", "imported_at"),
                      ("deliveries", "claimed_at"), ("deliveries", "sent_at"),
                      ("nudges", "claimed_at"), ("nudges", "taken_at"),
                      ("job_runs", "last_success_at"), ("job_runs", "last_error_at")}
