"""The only place that joins a connector to the store: incremental pulls, completion, reconcile."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from connectors.base import Connector
from tmabot.store import Store

log = logging.getLogger("tmabot.sync")

FACTS_TTL = timedelta(hours=24)  # serverInfo / myself / status are re-read once a day


class ClientLike(Protocol):
    id: str
    tracker: str
    projects: Sequence[str]

    @property
    def sync_since(self) -> Any: ...


@dataclass
class ClientSyncStats:
    client_id: str
    tickets_seen: int = 0
    tickets_written: int = 0
    histories_completed: int = 0
    worklogs_completed: int = 0
    dropped: int = 0
    seconds: float = 0.0


@dataclass
class SyncResult:
    clients: dict[str, ClientSyncStats] = field(default_factory=dict)

    @property
    def tickets_seen(self) -> int:
        return sum(c.tickets_seen for c in self.clients.values())

    @property
    def tickets_written(self) -> int:
        return sum(c.tickets_written for c in self.clients.values())


ProgressCallback = Callable[[str, str, int], None]  # (client id, phase, tickets so far)


@contextmanager
def _bulk_allocation() -> Iterator[None]:
    """Fewer garbage-collector passes while a sync allocates ~100 small objects per issue.

    The records are acyclic, so collections find nothing; with the default thresholds
    they cost a tenth of a full sync's time. Objects alive before the sync are frozen
    out of the collector's scans for its duration.
    """
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def _since_date(client: ClientLike) -> datetime | None:
    since = getattr(client, "sync_since", None)
    if since is None:
        return None
    if isinstance(since, datetime):
        return since if since.tzinfo else since.replace(tzinfo=UTC)
    return datetime(since.year, since.month, since.day, tzinfo=UTC)


def _prepare(connector: Connector, store: Store, *, now: datetime, force: bool) -> None:
    """Use cached tracker facts when fresh; probe (serverInfo, myself, status) otherwise."""
    cached = store.tracker_facts(connector.name)
    if cached is not None and not force and now - cached[1] < FACTS_TTL:
        connector.use_facts(cached[0])
        return
    facts = connector.probe()
    store.save_tracker_facts(connector.name, facts, checked_at=now)


def sync_tracker(
    connector: Connector, store: Store, clients: Sequence[ClientLike], *, full: bool = False,
    reconcile: bool = False, now: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> SyncResult:
    """Pull every project of `clients` (all on this connector's tracker) into the store.

    Crash safety: each page is written with the project's cursor in one transaction; the
    cursor is the highest `updated` committed, never past this run's start, so an issue
    edited while we walk is read again next time. Truncated histories and worklogs are
    flagged in the store and completed afterwards (also the next run, after a crash).
    """
    run_start = now or datetime.now(UTC)
    result = SyncResult()
    _prepare(connector, store, now=run_start, force=full)
    statuses_before = connector.known_statuses()
    tracker = connector.name
    for client in clients:
        _sync_client(connector, store, client, result, full=full, reconcile=reconcile,
                     run_start=run_start, progress=progress)
    began = time.perf_counter()
    _complete(connector, store, clients, result, progress)
    log.info("%s: completion pass in %.2f s", tracker, time.perf_counter() - began)
    statuses_after = connector.known_statuses()
    if statuses_after != statuses_before:
        store.save_statuses(tracker, statuses_after)
    return result


def _sync_client(connector: Connector, store: Store, client: ClientLike, result: SyncResult,
                 *, full: bool, reconcile: bool, run_start: datetime,
                 progress: ProgressCallback | None) -> None:
    tracker = connector.name
    stats = result.clients.setdefault(client.id, ClientSyncStats(client.id))
    began = time.perf_counter()
    per_page = getattr(connector, "cursor_per_page", True)
    comments = connector.comments
    for project in client.projects:
        # Comments just turned on: the cursor of a walk without them starts over.
        cursor = None if full else store.cursor(tracker, project, comments=comments)
        from_start = cursor is None and _since_date(client) is None
        since = cursor if cursor is not None else _since_date(client)
        seen: set[str] = set()
        high = cursor
        for page in connector.pull(project, since):
            if page.tickets:
                page_high = max(t.updated_at for t in page.tickets)
                high = page_high if high is None else max(high, page_high)
            if per_page:
                cursor_at = min(high, run_start) if high is not None else None
            else:  # pages in no documented order: the cursor moves when the walk is done
                cursor_at = cursor
            skip = store.unchanged_ids(tracker, client.id, page)
            for ticket in page.tickets:  # comments cut from the page, on changed tickets only
                if not ticket.comments_complete and ticket.issue_id not in skip:
                    connector.complete_comments(ticket)
            stats.tickets_written += store.write_page(
                tracker, client.id, connector.source, page, project=project,
                cursor_at=cursor_at, run_at=run_start, skip=skip)
            stats.tickets_seen += len(page.tickets)
            seen.update(t.issue_id for t in page.tickets)
            if progress:
                progress(client.id, project, stats.tickets_seen)
        store.finish_project(tracker, project, client.id,
                             min(high, run_start) if high is not None else None,
                             run_start, full, comments=comments)
        if full and from_start:
            # A full walk from the beginning saw every issue: the rest is gone.
            stats.dropped += len(store.drop_missing(tracker, project, client.id, seen))
        elif reconcile:
            stats.dropped += len(store.drop_missing(
                tracker, project, client.id, connector.issue_ids(project)))
    stats.seconds += time.perf_counter() - began
    log.info("%s: %s: %d tickets read, %d written in %.2f s", tracker, client.id,
             stats.tickets_seen, stats.tickets_written, stats.seconds)


def _complete(connector: Connector, store: Store, clients: Sequence[ClientLike],
              result: SyncResult, progress: ProgressCallback | None) -> None:
    """Fetch the histories and worklogs the inline search truncated (this run's and leftovers)."""
    tracker = connector.name
    ids = [c.id for c in clients]
    owner: dict[str, str] = {}
    pending_hist = store.pending_histories(tracker, ids)
    pending_wl = store.pending_worklogs(tracker, ids)
    if not pending_hist and not pending_wl:
        return
    for row in store.tickets_owners(tracker, set(pending_hist) | set(pending_wl)):
        owner[row[0]] = row[1]
    for batch in connector.complete_histories(pending_hist):
        store.write_histories(tracker, batch)
        for issue_id in batch:
            result.clients[owner[issue_id]].histories_completed += 1
        if progress:
            progress("", "histories", len(batch))
    if pending_wl:
        for sets in connector.complete_worklogs(
                pending_wl, known=lambda: store.known_worklogs(tracker),
                site_worklogs_hint=store.worklog_count(tracker)):
            store.write_worklog_sets(tracker, sets)
            for issue_id in sets:
                result.clients[owner[issue_id]].worklogs_completed += 1
            if progress:
                progress("", "worklogs", len(sets))


def connector_for(settings: Any, tracker_name: str, *, retry: Any = None) -> Connector:
    """Build the connector a tracker section of the config describes."""
    from connectors.jira import JiraConnector
    from connectors.retry import RetryPolicy

    tracker = settings.trackers[tracker_name]
    policy = retry or RetryPolicy(max_attempts=max(1, tracker.max_retries + 1))
    if tracker.kind == "jira":
        kwargs: dict[str, Any] = {}
        if tracker.page_size:
            kwargs["page_size"] = tracker.page_size
        return JiraConnector(
            tracker_name, str(tracker.url), tracker.deployment,
            token=settings.secret(tracker.token_env), email=tracker.email,
            timeout=tracker.timeout_seconds, retry=policy,
            comments=settings.sla.response_on_comment,
            service_desk_sla=tracker.service_desk_sla, **kwargs)
    if tracker.kind == "linear":
        from connectors.linear import LinearConnector

        return LinearConnector(
            tracker_name, str(tracker.url) if tracker.url else None,
            token=settings.secret(tracker.token_env), timeout=tracker.timeout_seconds,
            retry=policy, page_size=tracker.page_size,
            comments=settings.sla.response_on_comment)
    from connectors.errors import TrackerConfigError

    raise TrackerConfigError(f"tracker kind {tracker.kind!r} is not supported yet",
                             tracker=tracker_name)


def sync(settings: Any, store: Store, *, client_ids: Sequence[str] | None = None,
         full: bool = False, reconcile: bool = False, now: datetime | None = None,
         progress: ProgressCallback | None = None) -> SyncResult:
    """Sync the selected clients (default: all), one tracker at a time."""
    selected = [settings.client(c) for c in client_ids] if client_ids else list(settings.clients)
    by_tracker: dict[str, list[Any]] = {}
    for client in selected:
        by_tracker.setdefault(client.tracker, []).append(client)
    result = SyncResult()
    for tracker_name, clients in by_tracker.items():
        connector = connector_for(settings, tracker_name)
        try:
            with _bulk_allocation():
                part = sync_tracker(connector, store, clients, full=full, reconcile=reconcile,
                                    now=now, progress=progress)
        finally:
            connector.close()
        result.clients.update(part.clients)
    return result
