"""The small interface every tracker connector implements, and the normalized records it yields."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# Normalized status categories (DOMAIN.md §2): Jira new/undefined -> todo,
# indeterminate -> in_progress, done -> done.
TODO, IN_PROGRESS, DONE = "todo", "in_progress", "done"


def user_email(user: dict[str, Any] | None, key: str = "email") -> str | None:
    """A tracker user's address, trimmed and lower-cased (None when absent or hidden)."""
    email = (user or {}).get(key)
    return email.strip().lower() if isinstance(email, str) and email.strip() else None


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and a sync makes ~12 per issue
class TicketRecord:
    issue_id: str
    key: str
    project: str
    url: str
    title: str
    description: str
    issue_type: str | None
    labels: tuple[str, ...]
    components: tuple[str, ...]
    parent_key: str | None
    tracker_priority: str | None
    status: str
    status_id: str | None
    status_category: str  # TODO / IN_PROGRESS / DONE
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    assignee_email: str | None
    assignee_name: str | None
    reporter_email: str | None
    estimate_hours: float | None
    # False when the tracker truncated the inline data and a completion pass is owed.
    history_complete: bool = True
    worklogs_complete: bool = True
    worklog_total: int = 0
    status_type: str | None = None  # the tracker's own category key (Linear: canceled...)
    extra: dict[str, Any] | None = None  # tracker-specific facts (Linear's native SLA fields)
    # Every comment (when the connector was asked for them): who wrote it and when, never the
    # text. None = comments not read; [] = none. Public = visible to the client (a Jira
    # comment restricted to a role/group or a JSM internal note is not).
    comments: list[CommentRecord] | None = None
    comments_complete: bool = True  # False: the inline page was cut (see complete_comments)


@dataclass(frozen=True, slots=True)
class CommentRecord:
    comment_id: str
    created_at: datetime
    author_email: str | None
    public: bool = True


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and a sync makes ~12 per issue
class TransitionRecord:
    issue_id: str
    history_id: str
    seq: int  # position of the status item inside its history entry
    at: datetime
    author: str | None
    from_status_id: str | None
    from_status: str | None
    from_category: str | None
    to_status_id: str | None
    to_status: str | None
    to_category: str | None


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and a sync makes ~12 per issue
class WorklogRecord:
    worklog_id: str
    issue_id: str
    author_id: str | None
    author_email: str | None
    author_name: str | None
    started_at: datetime
    seconds: int
    comment: str
    updated_at: datetime | None


@dataclass(frozen=True)
class WorklogSet:
    """An issue's complete worklogs: `records` plus stored ones to keep unchanged (`keep_ids`)."""

    issue_id: str
    records: list[WorklogRecord]
    keep_ids: frozenset[str] = frozenset()

    @property
    def count(self) -> int:
        return len(self.records) + len(self.keep_ids)


@dataclass
class Page:
    """One page of a tracker walk: tickets plus whatever is complete for them."""

    tickets: list[TicketRecord] = field(default_factory=list)
    # Only for tickets whose history is complete: their full status history.
    transitions: dict[str, list[TransitionRecord]] = field(default_factory=dict)
    # Only for tickets whose worklogs are complete: their full worklog set.
    worklogs: dict[str, list[WorklogRecord]] = field(default_factory=dict)
    # Partial inline history of truncated tickets (kept until completed).
    partial_transitions: dict[str, list[TransitionRecord]] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackerFacts:
    """What a probe of the tracker learned; cached in the store between runs."""

    deployment: str  # "cloud" | "server"
    version: str
    user_time_zone: str | None
    status_categories: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (name, cat)


class Connector(Protocol):
    """Stateless: given a project and a window, yield normalized records. No DB, no config."""

    name: str  # the tracker's name in the config
    source: str  # "jira" | "linear"
    comments: bool  # whether tickets come with their comments

    def probe(self) -> TrackerFacts: ...

    def use_facts(self, facts: TrackerFacts) -> None: ...

    def check_project(self, project: str) -> None: ...

    def pull(self, project: str, since: datetime | None) -> Iterator[Page]: ...

    def complete_histories(
        self, issue_ids: Iterable[str]
    ) -> Iterator[dict[str, list[TransitionRecord]]]: ...

    def complete_worklogs(
        self, expected: dict[str, int], *,
        known: Callable[[], dict[str, tuple[str, datetime | None]]] | None = None,
        site_worklogs_hint: int = 0,
    ) -> Iterator[dict[str, WorklogSet]]: ...

    def complete_comments(self, ticket: TicketRecord) -> None:
        """Fill in the comments of a ticket whose inline page was cut (comments_complete
        False); a connector that never cuts them need not be called."""
        ...

    def issue_ids(self, project: str) -> set[str]: ...

    def known_statuses(self) -> dict[str, tuple[str, str]]: ...

    def close(self) -> None: ...


def prefetch(pages: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run a page walk one or two pages ahead in a thread.

    The tracker renders the next page (and the socket waits for it) while we normalize
    and store the current one. Exceptions reach the consumer at the page they happened;
    closing the consumer stops the walk at the next page boundary.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        q.put(("page", page), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed over to the consumer
            q.put(("error", exc))

    thread = threading.Thread(target=worker, name="tmabot-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)
