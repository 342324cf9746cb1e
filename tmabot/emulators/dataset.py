"""The in-memory tracker data that the emulators serve and the sample agency generates."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# Jira status category keys (as in /rest/api/3/status -> statusCategory.key)
NEW, INDETERMINATE, DONE, UNDEFINED = "new", "indeterminate", "done", "undefined"


@dataclass
class JiraStatus:
    id: str
    name: str
    category: str  # one of NEW / INDETERMINATE / DONE / UNDEFINED


@dataclass
class JiraUser:
    account_id: str  # Cloud accountId; on Data Center used as `key`
    name: str  # Data Center username
    display_name: str
    email: str | None
    email_visible: bool = True  # Cloud hides emails per the user's privacy settings
    time_zone: str = "Europe/Paris"


@dataclass
class ChangeItem:
    field: str  # "status", "assignee", "priority", ...
    from_id: str | None
    from_string: str | None
    to_id: str | None
    to_string: str | None


@dataclass
class JiraHistory:
    id: str
    created: datetime  # aware
    author_id: str | None  # JiraUser.account_id
    items: list[ChangeItem]


@dataclass
class JiraWorklog:
    id: str
    issue_id: str
    author_id: str  # JiraUser.account_id
    started: datetime  # aware
    time_spent_seconds: int
    comment: str = ""
    created: datetime | None = None  # defaults to `started`
    updated: datetime | None = None  # defaults to `created`


@dataclass
class JiraComment:
    id: str
    issue_id: str
    author_id: str | None  # JiraUser.account_id
    created: datetime  # aware
    body: str = ""
    visibility: str | None = None  # a role name: restricted, the client does not see it
    jsd_public: bool = True  # False: a Jira Service Management internal note
    updated: datetime | None = None  # defaults to `created`


@dataclass
class JiraIssue:
    id: str
    key: str
    project_key: str
    summary: str
    issue_type: str
    status_id: str
    created: datetime
    updated: datetime
    description: str | None = None
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    priority: str | None = None  # priority *name*; None = no priority
    resolution_date: datetime | None = None
    assignee_id: str | None = None
    reporter_id: str | None = None
    parent_key: str | None = None
    original_estimate_seconds: int | None = None
    histories: list[JiraHistory] = field(default_factory=list)  # oldest first
    worklogs: list[JiraWorklog] = field(default_factory=list)  # oldest first
    comments: list[JiraComment] = field(default_factory=list)  # oldest first
    # Jira Service Management SLA custom fields: field id -> the value JSM renders
    # (SlaInformation: name, completedCycles, ongoingCycle); see JiraDataset.sla_fields.
    sla: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class JiraProject:
    id: str
    key: str
    name: str


@dataclass
class JiraDataset:
    """A whole Jira site: what the emulator serves.

    Mutations go through the methods below so that `updated` timestamps, the
    deleted-worklog feed and id sequences behave as Jira's do.
    """

    projects: list[JiraProject] = field(default_factory=list)
    statuses: list[JiraStatus] = field(default_factory=list)
    priorities: list[str] = field(
        default_factory=lambda: ["Highest", "High", "Medium", "Low", "Lowest"]
    )
    users: list[JiraUser] = field(default_factory=list)
    issues: list[JiraIssue] = field(default_factory=list)
    # (worklog id, deleted at) — served by /worklog/deleted
    deleted_worklogs: list[tuple[str, datetime]] = field(default_factory=list)
    # Jira Service Management SLA custom fields of the site: field id -> name.
    sla_fields: dict[str, str] = field(default_factory=dict)
    # The API user's profile time zone: JQL dates are read in it.
    user_time_zone: str = "Europe/Paris"
    next_id: int = 100000
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    # Bumped by every mutation method (and `touch`): servers key their caches on it.
    revision: int = field(default=0, repr=False, compare=False)
    # id and key -> issue; rebuilt lazily because callers may append to `issues` directly.
    _issue_index: dict[str, JiraIssue] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _indexed_count: int = field(default=-1, init=False, repr=False, compare=False)

    # -- lookups -------------------------------------------------------------
    def issue(self, id_or_key: str) -> JiraIssue | None:
        """O(1) lookup by id or key (the index follows direct edits of `issues`)."""
        if self._indexed_count == len(self.issues):
            hit = self._issue_index.get(id_or_key)
            if hit is not None and (hit.id == id_or_key or hit.key == id_or_key):
                return hit
        # A miss may be a stale index (a key edited, an issue swapped in place): rebuild once.
        with self.lock:
            self._reindex()
            return self._issue_index.get(id_or_key)

    def _reindex(self) -> None:
        index: dict[str, JiraIssue] = {}
        for issue in self.issues:
            index[issue.id] = issue
            index[issue.key] = issue
        self._issue_index = index
        self._indexed_count = len(self.issues)

    def touch(self) -> None:
        """Tell servers that issues were edited directly (not through the methods below)."""
        with self.lock:
            self.revision += 1

    def status(self, status_id: str) -> JiraStatus:
        for st in self.statuses:
            if st.id == status_id:
                return st
        raise KeyError(status_id)

    def status_by_name(self, name: str) -> JiraStatus:
        for st in self.statuses:
            if st.name.lower() == name.lower():
                return st
        raise KeyError(name)

    def user(self, account_id: str | None) -> JiraUser | None:
        if account_id is None:
            return None
        for u in self.users:
            if u.account_id == account_id:
                return u
        return None

    def new_id(self) -> str:
        with self.lock:
            self.next_id += 1
            return str(self.next_id)

    # -- mutations (what a user does in Jira) --------------------------------
    def edit_issue(self, id_or_key: str, at: datetime | None = None, **fields: object) -> JiraIssue:
        """Change fields of an issue (summary, labels, priority...) and bump `updated`."""
        at = at or datetime.now(UTC)
        with self.lock:
            issue = self.issue(id_or_key)
            assert issue is not None, id_or_key
            for name, value in fields.items():
                if not hasattr(issue, name):
                    raise AttributeError(name)
                setattr(issue, name, value)
            issue.updated = at
            self.revision += 1
            return issue

    def transition(
        self, id_or_key: str, to_status_name: str, at: datetime | None = None,
        author_id: str | None = None,
    ) -> JiraHistory:
        """Move an issue to another status, recording a changelog entry."""
        at = at or datetime.now(UTC)
        with self.lock:
            issue = self.issue(id_or_key)
            assert issue is not None, id_or_key
            old = self.status(issue.status_id)
            new = self.status_by_name(to_status_name)
            history = JiraHistory(
                id=self.new_id(), created=at, author_id=author_id,
                items=[ChangeItem("status", old.id, old.name, new.id, new.name)],
            )
            issue.histories.append(history)
            issue.status_id = new.id
            if new.category == DONE and old.category != DONE:
                issue.resolution_date = at
            elif new.category != DONE:
                issue.resolution_date = None
            issue.updated = at
            self.revision += 1
            return history

    def add_worklog(
        self, id_or_key: str, author_id: str, started: datetime, seconds: int,
        comment: str = "", at: datetime | None = None,
    ) -> JiraWorklog:
        at = at or datetime.now(UTC)
        with self.lock:
            issue = self.issue(id_or_key)
            assert issue is not None, id_or_key
            wl = JiraWorklog(
                id=self.new_id(), issue_id=issue.id, author_id=author_id, started=started,
                time_spent_seconds=seconds, comment=comment, created=at, updated=at,
            )
            issue.worklogs.append(wl)
            issue.updated = at  # logging work updates the issue, as in Jira
            self.revision += 1
            return wl

    def add_comment(self, id_or_key: str, author_id: str | None, body: str = "",
                    at: datetime | None = None, *, visibility: str | None = None,
                    jsd_public: bool = True) -> JiraComment:
        at = at or datetime.now(UTC)
        with self.lock:
            issue = self.issue(id_or_key)
            assert issue is not None, id_or_key
            comment = JiraComment(id=self.new_id(), issue_id=issue.id, author_id=author_id,
                                  created=at, body=body, visibility=visibility,
                                  jsd_public=jsd_public)
            issue.comments.append(comment)
            issue.updated = max(issue.updated, at)  # commenting updates the issue, as in Jira
            self.revision += 1
            return comment

    def delete_worklog(self, worklog_id: str, at: datetime | None = None) -> None:
        at = at or datetime.now(UTC)
        with self.lock:
            for issue in self.issues:
                for wl in issue.worklogs:
                    if wl.id == worklog_id:
                        issue.worklogs.remove(wl)
                        self.deleted_worklogs.append((worklog_id, at))
                        issue.updated = at
                        self.revision += 1
                        return
            raise KeyError(worklog_id)

    def delete_issue(self, id_or_key: str) -> None:
        with self.lock:
            issue = self.issue(id_or_key)
            assert issue is not None, id_or_key
            self.issues.remove(issue)
            self.revision += 1


# -- Jira Service Management SLA values ---------------------------------------------------


def jsm_date(dt: datetime) -> dict[str, Any]:
    """JSM's DateDTO."""
    return {"iso8601": dt.strftime("%Y-%m-%dT%H:%M:%S%z"), "jira": dt.isoformat(),
            "friendly": dt.strftime("%d/%m/%y %H:%M"), "epochMillis": int(dt.timestamp() * 1000)}


def jsm_duration(delta: timedelta) -> dict[str, Any]:
    """JSM's DurationDTO."""
    ms = int(delta.total_seconds() * 1000)
    return {"millis": ms, "friendly": f"{ms // 60000} m"}


def jsm_completed_sla(sla_id: str, name: str, *, goal: timedelta, start: datetime,
                      stop: datetime) -> dict[str, Any]:
    """An SlaInformation value with one completed cycle, timed on a 24/7 calendar."""
    breach = start + goal
    cycle = {"startTime": jsm_date(start), "stopTime": jsm_date(stop),
             "breachTime": jsm_date(breach), "breached": stop > breach,
             "goalDuration": jsm_duration(goal), "elapsedTime": jsm_duration(stop - start),
             "remainingTime": jsm_duration(breach - stop)}
    return {"id": sla_id, "name": name, "completedCycles": [cycle],
            "_links": {"self": f"https://jsm.example/rest/servicedeskapi/request/sla/{sla_id}"}}
