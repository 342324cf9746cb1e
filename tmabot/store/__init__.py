"""The local store: engine, migrations, idempotent upserts and sync cursors."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from connectors.base import (
    CommentRecord,
    Page,
    TicketRecord,
    TrackerFacts,
    TransitionRecord,
    WorklogRecord,
    WorklogSet,
)
from tmabot.store.tables import (
    WALL_CLOCK_COLUMNS,
    deliveries,
    job_runs,
    metadata,
    nudges,
    sync_cursors,
    tickets,
    time_entries,
    tracker_meta,
    transitions,
    worklogs,
)

log = logging.getLogger("tmabot.store")
_MIGRATION_LOCK = threading.Lock()
MIGRATIONS = Path(__file__).with_name("migrations")
_IN_CHUNK = 500  # bound IN (...) lists: SQLite's variable limit, PostgreSQL plan size


class StoreError(Exception):
    """The store cannot be opened or written; `str()` is one line for the user."""


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# Row builders for the sync's hot path: tuples in table column order (see tables.py),
# datetimes/JSON/booleans already converted by the dialect's functions `c`.
def _ticket_row(c: _Conv, tracker: str, client_id: str, source: str,
                t: TicketRecord) -> tuple[Any, ...]:
    dt = c.dt
    return (
        tracker, t.issue_id, client_id, source, t.project, t.key, t.url, t.title,
        t.description, t.issue_type, c.js(list(t.labels)), c.js(list(t.components)),
        t.parent_key, t.tracker_priority, t.status, t.status_id, t.status_category,
        dt(t.created_at), dt(t.updated_at), dt(t.resolved_at), t.assignee_email,
        t.assignee_name, t.reporter_email, t.estimate_hours, c.b(t.history_complete),
        c.b(t.worklogs_complete), t.worklog_total, t.status_type,
        c.js(t.extra), c.js(_comments_json(t.comments)),
    )


def _comments_json(comments: Sequence[CommentRecord] | None) -> list[list[Any]] | None:
    if comments is None:
        return None
    return [[cm.created_at.astimezone(UTC).isoformat(), cm.author_email, cm.public]
            for cm in sorted(comments, key=lambda cm: cm.created_at)]


def _transition_row(c: _Conv, tracker: str, t: TransitionRecord) -> tuple[Any, ...]:
    return (tracker, t.issue_id, t.history_id, t.seq, c.dt(t.at), t.author, t.from_status_id,
            t.from_status, t.from_category, t.to_status_id, t.to_status, t.to_category)


def _worklog_row(c: _Conv, tracker: str, w: WorklogRecord) -> tuple[Any, ...]:
    return (tracker, w.worklog_id, w.issue_id, w.author_id, w.author_email, w.author_name,
            c.dt(w.started_at), w.seconds, w.comment, c.dt(w.updated_at), "tracker")


@dataclass
class Receipt:
    """What a send says about itself, for the ledger (message id, channel...)."""

    detail: str = ""


class Store:
    """One database (SQLite by default, PostgreSQL via `database_url`)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        try:
            self.engine: Engine = create_engine(url)
        except (ArgumentError, ImportError, SQLAlchemyError) as exc:
            raise StoreError(f"database_url: cannot use {self._safe_url()}: {exc}") from None
        self.dialect = self.engine.dialect.name
        self._plans: dict[tuple[str, bool], str] = {}
        self._conv = _SQLITE if self.dialect == "sqlite" else _POSTGRES
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", self._sqlite_pragmas)
        if migrate:
            self.upgrade()

    def _safe_url(self) -> str:
        try:
            from sqlalchemy.engine import make_url

            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - only for an error message
            return "the configured database"

    @staticmethod
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL lets readers (reports, /tma) work during a sync; wait for a lock, do not fail.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    def close(self) -> None:
        self.engine.dispose()

    # -- migrations --------------------------------------------------------------
    def upgrade(self) -> None:
        """Apply every Alembic migration not yet applied (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with _MIGRATION_LOCK, self.engine.begin() as conn:  # alembic keeps module state
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreError(
                f"database {self._safe_url()} is not reachable: {exc.orig}".splitlines()[0]
            ) from None

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

    # -- bulk writes -------------------------------------------------------------------
    def _bulk_sql(self, table: Table, upsert: bool) -> str:
        """A raw INSERT (or upsert) for executemany on the sync's hot path.

        SQLAlchemy's per-row parameter processing cost more than SQLite itself; the
        values written are those of the typed path (see _Conv and UTCDateTime).
        """
        key = (table.name, upsert)
        sql = self._plans.get(key)
        if sql is None:
            names = [c.name for c in table.columns]
            ph = "?" if self.dialect == "sqlite" else "%s"
            cols = ", ".join('"' + n + '"' for n in names)
            sql = f"INSERT INTO {table.name} ({cols}) VALUES ({', '.join([ph] * len(names))})"
            if upsert:
                keys = [c.name for c in table.primary_key.columns]
                sets = ", ".join(f'"{n}" = excluded."{n}"' for n in names if n not in keys)
                sql += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
            self._plans[key] = sql
        return sql

    def _bulk(self, conn: Connection, table: Table, rows: list[tuple[Any, ...]], *,
              upsert: bool) -> None:
        if not rows:
            return
        if len(rows[0]) != len(table.columns):
            raise AssertionError(f"{table.name}: row builder out of step with the table")
        conn.exec_driver_sql(self._bulk_sql(table, upsert), rows)  # type: ignore[arg-type]

    # -- dialect-specific upsert ----------------------------------------------------
    def _insert(self, table: Any) -> Any:
        return (postgresql.insert(table) if self.dialect == "postgresql"
                else sqlite.insert(table))

    def _upsert(self, conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        stmt = self._insert(table)
        keys = [c.name for c in table.primary_key.columns]
        stmt = stmt.on_conflict_do_update(
            index_elements=keys,
            set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys})
        conn.execute(stmt, rows)

    # -- tracker facts and cursors ------------------------------------------------
    def tracker_facts(self, tracker: str) -> tuple[TrackerFacts, datetime] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(tracker_meta).where(
                tracker_meta.c.tracker == tracker)).mappings().first()
        if row is None:
            return None
        statuses = {k: (v[0], v[1]) for k, v in (row["statuses"] or {}).items()}
        return (TrackerFacts(row["deployment"], row["version"], row["user_time_zone"], statuses),
                row["checked_at"])

    def save_tracker_facts(self, tracker: str, facts: TrackerFacts, *, checked_at: datetime,
                           statuses: dict[str, tuple[str, str]] | None = None) -> None:
        with self.engine.begin() as conn:
            self._upsert(conn, tracker_meta, [{
                "tracker": tracker, "deployment": facts.deployment, "version": facts.version,
                "user_time_zone": facts.user_time_zone,
                "statuses": {k: list(v) for k, v in
                             sorted((statuses or facts.status_categories).items())},
                "checked_at": checked_at,
            }])

    def save_statuses(self, tracker: str, statuses: dict[str, tuple[str, str]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(tracker_meta).where(tracker_meta.c.tracker == tracker).values(
                statuses={k: list(v) for k, v in sorted(statuses.items())}))

    def cursor(self, tracker: str, project: str, *, comments: bool = False) -> datetime | None:
        """Where the next incremental walk starts; None (from the beginning) when `comments`
        are wanted and the last complete walk did not read them."""
        with self.engine.connect() as conn:
            row = conn.execute(select(sync_cursors.c.cursor_at, sync_cursors.c.with_comments)
                               .where(sync_cursors.c.tracker == tracker,
                                      sync_cursors.c.project == project)).first()
        if row is None or (comments and not row.with_comments):
            return None
        return row.cursor_at

    def _set_cursor(self, conn: Connection, tracker: str, project: str, client_id: str,
                    cursor_at: datetime | None, run_at: datetime, full: bool) -> None:
        row: dict[str, Any] = {"tracker": tracker, "project": project, "client_id": client_id,
                               "cursor_at": cursor_at, "last_run_at": run_at}
        stmt = self._insert(sync_cursors)
        set_: dict[str, Any] = {"client_id": stmt.excluded.client_id,
                                "cursor_at": stmt.excluded.cursor_at,
                                "last_run_at": stmt.excluded.last_run_at}
        if full:
            row["last_full_at"] = run_at
            set_["last_full_at"] = stmt.excluded.last_full_at
        conn.execute(stmt.on_conflict_do_update(index_elements=["tracker", "project"],
                                                set_=set_), [row])

    def finish_project(self, tracker: str, project: str, client_id: str,
                       cursor_at: datetime | None, run_at: datetime, full: bool,
                       *, comments: bool = False) -> None:
        """The walk of a project is complete: its cursor, and whether it read comments."""
        with self.engine.begin() as conn:
            self._set_cursor(conn, tracker, project, client_id, cursor_at, run_at, full)
            conn.execute(update(sync_cursors).where(
                sync_cursors.c.tracker == tracker, sync_cursors.c.project == project).values(
                    with_comments=comments))

    # -- writing what the connectors pulled --------------------------------------------
    def unchanged_ids(self, tracker: str, client_id: str, page: Page) -> set[str]:
        """Tickets of the page already stored, complete, at the same `updated` (overlap reads)."""
        by_id = {t.issue_id: t for t in page.tickets}
        if not by_id:
            return set()
        same: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(list(by_id)):
                rows = conn.execute(select(
                    tickets.c.issue_id, tickets.c.updated_at, tickets.c.client_id,
                    tickets.c.history_complete, tickets.c.worklogs_complete,
                    tickets.c.comments, tickets.c.extra,
                ).where(tickets.c.tracker == tracker, tickets.c.issue_id.in_(chunk)))
                for issue_id, updated_at, owner, hist_ok, wl_ok, stored_comments, extra in rows:
                    t = by_id[issue_id]
                    # Same `updated` and complete in the store: nothing to read again,
                    # even when the search truncated its inline changelog or worklogs.
                    # Comments that differ (read for the first time, or a new comment that
                    # did not move `updated`, as on Linear) are written. Comments cut from
                    # the inline page are not compared: the ticket is unchanged if its
                    # `updated` is, and completing them would cost requests for nothing.
                    # Tracker facts that moved without `updated` (a JSM SLA cycle) too.
                    if (updated_at == t.updated_at and owner == client_id and hist_ok and wl_ok
                            and (t.extra is None or extra == t.extra)
                            and (t.comments is None or (stored_comments is not None and (
                                not t.comments_complete
                                or stored_comments == _comments_json(t.comments))))):
                        same.add(issue_id)
        return same

    def write_page(self, tracker: str, client_id: str, source: str, page: Page, *,
                   project: str, cursor_at: datetime | None, run_at: datetime,
                   skip: set[str] = frozenset()) -> int:  # type: ignore[assignment]
        """Upsert one page and move the project's cursor, in one transaction."""
        fresh = [t for t in page.tickets if t.issue_id not in skip]
        with self.engine.begin() as conn:
            c = self._conv
            self._bulk(conn, tickets, [_ticket_row(c, tracker, client_id, source, t)
                                       for t in fresh], upsert=True)
            hist = {i: page.transitions[i] for i in (t.issue_id for t in fresh)
                    if i in page.transitions}
            hist.update({i: page.partial_transitions[i] for i in (t.issue_id for t in fresh)
                         if i in page.partial_transitions})
            self._replace_transitions(conn, tracker, hist)
            complete_wl = {t.issue_id: page.worklogs[t.issue_id] for t in fresh
                           if t.issue_id in page.worklogs}
            self._replace_worklogs(conn, tracker, {
                i: WorklogSet(i, ws) for i, ws in complete_wl.items()})
            self._set_cursor(conn, tracker, project, client_id, cursor_at, run_at, False)
        return len(fresh)

    def _replace_transitions(self, conn: Connection,
                             tracker: str, hist: dict[str, list[TransitionRecord]]) -> None:
        ids = list(hist)
        for chunk in _chunks(ids):
            conn.execute(delete(transitions).where(transitions.c.tracker == tracker,
                                                   transitions.c.issue_id.in_(chunk)))
        c = self._conv
        self._bulk(conn, transitions, [_transition_row(c, tracker, t) for ts in hist.values()
                                       for t in ts], upsert=False)

    def _replace_worklogs(self, conn: Connection, tracker: str,
                          sets: dict[str, WorklogSet]) -> None:
        """Each issue's worklogs become exactly `records` + `keep_ids` (deleted ones go)."""
        for chunk in _chunks(list(sets)):
            keep = [(i, w) for i in chunk for w in sets[i].keep_ids]
            stmt = delete(worklogs).where(worklogs.c.tracker == tracker,
                                          worklogs.c.issue_id.in_(chunk))
            if keep:
                stmt = stmt.where(tuple_(worklogs.c.issue_id, worklogs.c.worklog_id).not_in(keep))
            conn.execute(stmt)
        c = self._conv
        self._bulk(conn, worklogs, [_worklog_row(c, tracker, w) for s in sets.values()
                                    for w in s.records], upsert=True)

    def write_histories(self, tracker: str, hist: dict[str, list[TransitionRecord]]) -> None:
        with self.engine.begin() as conn:
            self._replace_transitions(conn, tracker, hist)
            for chunk in _chunks(list(hist)):
                conn.execute(update(tickets).where(
                    tickets.c.tracker == tracker, tickets.c.issue_id.in_(chunk)).values(
                        history_complete=True))

    def write_worklog_sets(self, tracker: str, sets: dict[str, WorklogSet]) -> None:
        with self.engine.begin() as conn:
            self._replace_worklogs(conn, tracker, sets)
            for chunk in _chunks(list(sets)):
                conn.execute(update(tickets).where(
                    tickets.c.tracker == tracker, tickets.c.issue_id.in_(chunk)).values(
                        worklogs_complete=True))

    def pending_histories(self, tracker: str, client_ids: Iterable[str]) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(tickets.c.issue_id).where(
                tickets.c.tracker == tracker, tickets.c.client_id.in_(list(client_ids)),
                tickets.c.history_complete.is_(False)).order_by(tickets.c.issue_id)).scalars())

    def pending_worklogs(self, tracker: str, client_ids: Iterable[str]) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(tickets.c.issue_id, tickets.c.worklog_total).where(
                tickets.c.tracker == tracker, tickets.c.client_id.in_(list(client_ids)),
                tickets.c.worklogs_complete.is_(False)).order_by(tickets.c.issue_id)).all())

    def tickets_owners(self, tracker: str, issue_ids: Iterable[str]) -> list[tuple[str, str]]:
        """(issue id, client id) of the given tickets."""
        out: list[tuple[str, str]] = []
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(issue_ids)):
                out.extend((i, c) for i, c in conn.execute(select(
                    tickets.c.issue_id, tickets.c.client_id).where(
                        tickets.c.tracker == tracker, tickets.c.issue_id.in_(chunk))))
        return out

    def worklog_count(self, tracker: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(tickets.c.worklog_total), 0))
                                    .where(tickets.c.tracker == tracker)).scalar() or 0)

    def known_worklogs(self, tracker: str) -> dict[str, tuple[str, datetime | None]]:
        with self.engine.connect() as conn:
            return {wid: (iid, upd) for wid, iid, upd in conn.execute(select(
                worklogs.c.worklog_id, worklogs.c.issue_id, worklogs.c.updated_at).where(
                    worklogs.c.tracker == tracker))}

    def drop_missing(self, tracker: str, project: str, client_id: str,
                     alive: set[str]) -> list[str]:
        """Remove tickets of a project the tracker no longer has there (deleted or moved)."""
        with self.engine.begin() as conn:
            stored = list(conn.execute(select(tickets.c.issue_id).where(
                tickets.c.tracker == tracker, tickets.c.project == project,
                tickets.c.client_id == client_id)).scalars())
            gone = sorted(set(stored) - alive)
            for chunk in _chunks(gone):
                for table in (transitions, worklogs, tickets):
                    conn.execute(delete(table).where(table.c.tracker == tracker,
                                                     table.c.issue_id.in_(chunk)))
        return gone

    # -- reading -------------------------------------------------------------------
    def client_tickets(self, client_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(tickets).where(
                tickets.c.client_id == client_id).order_by(
                    tickets.c.created_at, tickets.c.key)).mappings()]

    def client_transitions(self, client_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(transitions).join(tickets, (
                tickets.c.tracker == transitions.c.tracker) & (
                tickets.c.issue_id == transitions.c.issue_id)).where(
                    tickets.c.client_id == client_id).order_by(
                        transitions.c.issue_id, transitions.c.at, transitions.c.history_id,
                        transitions.c.seq)).mappings()]

    def client_worklogs(self, client_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(worklogs).join(tickets, (
                tickets.c.tracker == worklogs.c.tracker) & (
                tickets.c.issue_id == worklogs.c.issue_id)).where(
                    tickets.c.client_id == client_id).order_by(
                        worklogs.c.started_at, worklogs.c.worklog_id)).mappings()]

    # -- timesheet imports ------------------------------------------------------------
    def ticket_keys(self, client_id: str) -> dict[str, tuple[str, str]]:
        """The client's issue keys (upper case) -> (tracker, issue id)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(tickets.c.key, tickets.c.tracker, tickets.c.issue_id)
                                .where(tickets.c.client_id == client_id))
            return {key.upper(): (tracker, issue_id) for key, tracker, issue_id in rows}

    def save_time_entries(self, client_id: str, rows: list[dict[str, Any]]) -> set[str]:
        """Insert the entries not stored yet (by entry id); returns the new entries' ids."""
        if not rows:
            return set()
        with self.engine.begin() as conn:
            known: set[str] = set()
            ids = [r["entry_id"] for r in rows]
            for chunk in _chunks(ids):
                known.update(conn.execute(select(time_entries.c.entry_id).where(
                    time_entries.c.client_id == client_id,
                    time_entries.c.entry_id.in_(chunk))).scalars())
            fresh = {r["entry_id"]: {**r, "client_id": client_id}
                     for r in rows if r["entry_id"] not in known}
            if fresh:
                stmt = self._insert(time_entries).on_conflict_do_nothing(
                    index_elements=["client_id", "entry_id"])
                conn.execute(stmt, list(fresh.values()))
        return set(fresh)

    def client_time_entries(self, client_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(time_entries).where(
                time_entries.c.client_id == client_id).order_by(
                    time_entries.c.started_at, time_entries.c.entry_id)).mappings()]

    # -- the deliveries ledger -------------------------------------------------------
    def delivery(self, client_id: str, period: str, channel: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(deliveries).where(
                deliveries.c.client_id == client_id, deliveries.c.period == period,
                deliveries.c.channel == channel)).mappings().first()
            return dict(row) if row else None

    def claim_delivery(self, client_id: str, period: str, channel: str, *, now: datetime,
                       force: bool = False) -> bool:
        """Take the right to send (client, period, channel). False when it was sent or is
        being sent — by this process earlier, a crashed run or another instance. The unique
        key makes two instances racing for it get one winner."""
        key = {"client_id": client_id, "period": period, "channel": channel}
        return self._claim(deliveries, key, now=now, force=force)

    @contextmanager
    def sending(self, client_id: str, period: str, channel: str) -> Iterator[Receipt]:
        """Around a send whose claim this process holds: if the send raises, the claim is
        released (the next run sends); when it returns, it is recorded as sent with the
        receipt's detail."""
        receipt = Receipt()
        try:
            yield receipt
        except BaseException:
            self.release_delivery(client_id, period, channel)
            raise
        self.mark_delivered(client_id, period, channel, now=datetime.now(UTC),
                            detail=receipt.detail)

    def _claim(self, table: Table, key: dict[str, str], *, now: datetime,
               force: bool = False) -> bool:
        """Insert a "sending" ledger row keyed by `key`; False when the key exists. The
        table's unique key makes two instances racing for it get one winner."""
        from sqlalchemy.exc import IntegrityError

        where = [table.c[name] == value for name, value in key.items()]
        with self.engine.begin() as conn:
            if force:
                conn.execute(delete(table).where(*where))
            savepoint = conn.begin_nested()  # a failed insert must not poison the outer one
            try:
                conn.execute(table.insert().values(**key, status="sending", claimed_at=now))
                savepoint.commit()
            except IntegrityError:
                savepoint.rollback()
                return False
        return True

    def deliveries_of(self, client_id: str, channel: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(deliveries).where(
                deliveries.c.client_id == client_id, deliveries.c.channel == channel)
                .order_by(deliveries.c.period)).mappings()]

    def stuck_deliveries(self, before: datetime) -> list[dict[str, Any]]:
        """Claims never recorded as sent (a crash between the claim and the record)."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(deliveries).where(
                deliveries.c.status == "sending", deliveries.c.claimed_at < before))
                .mappings()]

    def mark_delivered(self, client_id: str, period: str, channel: str, *, now: datetime,
                       detail: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(deliveries).where(
                deliveries.c.client_id == client_id, deliveries.c.period == period,
                deliveries.c.channel == channel).values(status="sent", sent_at=now,
                                                        detail=detail))

    def release_delivery(self, client_id: str, period: str, channel: str) -> None:
        """The send failed before anything left: forget the claim (no ledger row)."""
        with self.engine.begin() as conn:
            conn.execute(delete(deliveries).where(
                deliveries.c.client_id == client_id, deliveries.c.period == period,
                deliveries.c.channel == channel, deliveries.c.status == "sending"))

    # -- the nudges ledger ------------------------------------------------------------
    def claim_nudge(self, client_id: str, ticket_key: str, indicator: str, level: str, *,
                    now: datetime) -> bool:
        """The right to post this nudge; False when it was posted (or is being posted)."""
        return self._claim(nudges, {"client_id": client_id, "ticket_key": ticket_key,
                                    "indicator": indicator, "level": level}, now=now)

    def _nudge_where(self, client_id: str, ticket_key: str, indicator: str, level: str) -> Any:
        return ((nudges.c.client_id == client_id) & (nudges.c.ticket_key == ticket_key)
                & (nudges.c.indicator == indicator) & (nudges.c.level == level))

    def mark_nudged(self, client_id: str, ticket_key: str, indicator: str, level: str, *,
                    channel: str | None, ts: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(nudges).where(self._nudge_where(
                client_id, ticket_key, indicator, level)).values(
                    status="sent", channel=channel, message_ts=ts))

    def release_nudge(self, client_id: str, ticket_key: str, indicator: str, level: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(nudges).where(self._nudge_where(
                client_id, ticket_key, indicator, level) & (nudges.c.status == "sending")))

    def take_nudge(self, client_id: str, ticket_key: str, indicator: str, level: str, *,
                   user: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(nudges).where(self._nudge_where(
                client_id, ticket_key, indicator, level)).values(taken_by=user, taken_at=now))

    def nudges_sent(self, client_id: str | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            stmt = select(nudges)
            if client_id is not None:
                stmt = stmt.where(nudges.c.client_id == client_id)
            return [dict(r) for r in conn.execute(stmt.order_by(
                nudges.c.client_id, nudges.c.ticket_key, nudges.c.indicator,
                nudges.c.level)).mappings()]

    # -- scheduler jobs ----------------------------------------------------------------
    def job_success(self, job: str) -> datetime | None:
        with self.engine.connect() as conn:
            return conn.execute(select(job_runs.c.last_success_at).where(
                job_runs.c.job == job)).scalar()

    def record_job(self, job: str, *, success: datetime | None = None,
                   error: str | None = None, at: datetime | None = None) -> None:
        values: dict[str, Any] = {"job": job}
        if success is not None:
            values["last_success_at"] = success
        if error is not None:
            values["last_error"] = error
            values["last_error_at"] = at
        with self.engine.begin() as conn:
            stmt = self._insert(job_runs).values(**values)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["job"], set_={k: v for k, v in values.items() if k != "job"}))

    def job_runs(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            return {r["job"]: dict(r) for r in conn.execute(select(job_runs)).mappings()}

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
                    for t in (tickets, transitions, worklogs)}

    def dump(self, *, include_wall_clock: bool = False) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's rows, sorted: two stores with equal dumps hold the same data."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.engine.connect() as conn:
            for table in metadata.sorted_tables:
                cols = [c for c in table.columns if include_wall_clock
                        or (table.name, c.name) not in WALL_CLOCK_COLUMNS]
                rows = conn.execute(select(*cols)).all()
                out[table.name] = sorted((tuple(_normal(v) for v in r) for r in rows), key=repr)
        return out

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except SQLAlchemyError:
            return False


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _sqlite_dt(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite DATETIME storage format (string order = time order)."""
    if value is None:
        return None
    v = value if value.tzinfo is UTC else value.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031 - fastest form here
        v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond)


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(bool(value))


@dataclass(frozen=True)
class _Conv:
    dt: Callable[[datetime | None], Any]
    js: Callable[[Any], Any]
    b: Callable[[bool | None], Any]


_SQLITE = _Conv(_sqlite_dt, _json_text, _sqlite_bool)
_POSTGRES = _Conv(_naive_utc, _json_text, lambda v: v)


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _normal(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_normal(v) for v in value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value
