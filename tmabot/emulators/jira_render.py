"""Turns the Jira dataset into the JSON shapes of Jira's REST API (Cloud and Data Center)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from typing import Any
from zoneinfo import ZoneInfo

from tmabot.emulators.dataset import (
    DONE,
    INDETERMINATE,
    NEW,
    UNDEFINED,
    JiraComment,
    JiraDataset,
    JiraHistory,
    JiraIssue,
    JiraStatus,
    JiraUser,
    JiraWorklog,
)
from tmabot.emulators.http import json_text as dumps

# Every field the emulator can render, in the order Jira tends to list them.
ISSUE_FIELDS: tuple[str, ...] = (
    "summary", "description", "issuetype", "labels", "components", "priority", "status",
    "created", "updated", "resolutiondate", "assignee", "reporter", "parent", "project",
    "timeoriginalestimate", "timespent", "worklog", "comment",
)
_ID_ONLY = frozenset({"id", "key"})
ISSUE_EXPAND = "operations,versionedRepresentations,editmeta,changelog,renderedFields"

# Jira's fixed status categories: (id, display name, colour).
_CATEGORIES: dict[str, tuple[int, str, str]] = {
    UNDEFINED: (1, "No Category", "medium-gray"),
    NEW: (2, "To Do", "blue-gray"),
    DONE: (3, "Done", "green"),
    INDETERMINATE: (4, "In Progress", "yellow"),
}
_ISSUE_TYPE_IDS = {"epic": "10000", "story": "10001", "task": "10002", "sub-task": "10003",
                   "subtask": "10003", "bug": "10004"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_q = encode_basestring  # a str as a JSON string literal (the C encoder when available)


def _qn(value: str | None) -> str:
    return "null" if value is None else _q(value)


def resolve_fields(requested: Sequence[str] | None, default: str,
                   custom: Sequence[str] = ()) -> tuple[str, ...]:
    """The rendered fields for a `fields` parameter (None → `default`), in canonical order,
    then the site's `custom` fields (Jira Service Management SLA fields) asked for.

    Understands `*all`, `*navigable`, `-name` exclusions, id/key (no field), and ignores
    unknown names as Jira does.
    """
    names = [n.strip() for item in (requested if requested is not None else [default])
             for n in item.split(",") if n.strip()]
    wanted: set[str] = set()
    excluded: set[str] = set()
    for name in names:
        if name == "*all":
            wanted.update(ISSUE_FIELDS, custom)
        elif name == "*navigable":  # comments are not navigable: asked for by name
            wanted.update(f for f in ISSUE_FIELDS if f != "comment")
            wanted.update(custom)
        elif name.startswith("-"):
            excluded.add(name[1:])
        else:
            wanted.add(name)
    return tuple(f for f in (*ISSUE_FIELDS, *custom) if f in wanted and f not in excluded)


def ids_only(requested: Sequence[str] | None) -> bool:
    """True when a search asks nothing but ids/keys (Jira then allows far bigger pages)."""
    if requested is None:
        return True
    names = {n.strip() for item in requested for n in item.split(",") if n.strip()}
    return names <= _ID_ONLY


def epoch_ms(dt: datetime) -> int:
    return (dt - _EPOCH) // _MS


def time_spent_text(seconds: int) -> str:
    """Jira's duration text with its default 8h days and 5d weeks: 5400 → '1h 30m'."""
    minutes = seconds // 60
    parts = []
    for unit, size in (("w", 5 * 8 * 60), ("d", 8 * 60), ("h", 60), ("m", 1)):
        amount, minutes = divmod(minutes, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts) or "0m"


def adf(text: str) -> dict[str, Any]:
    """A plain text as an Atlassian Document Format document (what v3 returns)."""
    paragraphs = text.split("\n\n") if text else []
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": p}] if p else []}
        for p in paragraphs
    ]}


class JiraRenderer:
    """Renders dataset objects for one emulator.

    Only small things are cached (users, statuses, zone offsets), and dropped whenever
    the dataset's revision or issue count moves: edits made through the dataset's
    methods (or followed by `dataset.touch()`) are always visible.
    """

    def __init__(self, dataset: JiraDataset, *, cloud: bool, inline_changelog_cap: int,
                 inline_worklog_cap: int, inline_comment_cap: int = 50) -> None:
        self.dataset = dataset
        self.cloud = cloud
        self.inline_changelog_cap = inline_changelog_cap
        self.inline_worklog_cap = inline_worklog_cap
        self.inline_comment_cap = inline_comment_cap
        self.base_url = ""
        self._stamp: tuple[int, int] = (-1, -1)
        self._zone_name = ""
        self._zone: ZoneInfo = ZoneInfo("UTC")
        self._offsets: dict[int, tuple[timedelta, str]] = {}  # epoch hour -> zone offset
        self._users: dict[str | None, dict[str, Any] | None] = {}
        self._user_texts: dict[str | None, str] = {}
        self._statuses: dict[str, dict[str, Any]] = {}
        self._issue_types: dict[str, dict[str, Any]] = {}
        self._component_ids: dict[str, str] = {}
        self._users_by_id: dict[str, JiraUser] = {}

    # -- cache upkeep --------------------------------------------------------
    def refresh(self) -> None:
        """Drop caches if the dataset changed since the last request."""
        ds = self.dataset
        stamp = (ds.revision, len(ds.issues))
        if ds.user_time_zone != self._zone_name:
            self._zone_name = ds.user_time_zone
            self._zone = ZoneInfo(ds.user_time_zone)
            self._offsets = {}
        if stamp != self._stamp:
            self._stamp = stamp
            self._users = {}
            self._user_texts = {}
            self._statuses = {}
            self._users_by_id = {u.account_id: u for u in ds.users}

    # -- scalars -------------------------------------------------------------
    def date(self, dt: datetime | None) -> str | None:
        """Jira's timestamp format in the API user's zone: 2026-10-05T10:12:00.000+0200."""
        if dt is None:
            return None
        if dt.tzinfo is not UTC:
            dt = dt.astimezone(UTC)
        # Offsets only change on hour boundaries: one zone lookup per hour, not per date
        # (this formatter runs ~20 times per issue and dominated page rendering).
        hour = int(dt.timestamp() // 3600)
        offset = self._offsets.get(hour)
        if offset is None:
            delta = datetime.fromtimestamp(hour * 3600, self._zone).utcoffset() or timedelta()
            minutes = int(delta.total_seconds()) // 60
            sign = "+" if minutes >= 0 else "-"
            offset = (delta, f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}")
            self._offsets[hour] = offset
        local = dt + offset[0]
        return (f"{local.year:04d}-{local.month:02d}-{local.day:02d}T{local.hour:02d}:"
                f"{local.minute:02d}:{local.second:02d}.{local.microsecond // 1000:03d}"
                f"{offset[1]}")

    def rich_text(self, text: str | None, version: int) -> Any:
        if text is None:
            return None
        return adf(text) if version == 3 else text

    # -- small objects -------------------------------------------------------
    def user(self, account_id: str | None) -> dict[str, Any] | None:
        if account_id is None:
            return None
        if account_id in self._users:
            return self._users[account_id]
        u = self._users_by_id.get(account_id)
        out: dict[str, Any]
        # Lean on purpose (no self/avatarUrls): users repeat in every history and worklog,
        # and their bulk decides how fast a 20k-issue sync can go.
        if self.cloud:
            out = {"accountId": account_id}
            if u is None:  # a deleted account: Jira shows it this way
                out.update(displayName="Former user", active=False, accountType="atlassian")
            else:
                if u.email and u.email_visible:
                    out["emailAddress"] = u.email
                out.update(displayName=u.display_name, active=True, timeZone=u.time_zone,
                           accountType="atlassian")
        else:
            name = u.name if u else account_id
            out = {"name": name, "key": account_id}
            if u is None:
                out.update(displayName=account_id, active=False)
            else:
                if u.email:
                    out["emailAddress"] = u.email
                out.update(displayName=u.display_name, active=True, timeZone=u.time_zone)
        self._users[account_id] = out
        return out

    # Issue fields carry the short forms the brief lists (no self/iconUrl): see `user`.
    def status_category(self, category: str) -> dict[str, Any]:
        cid, name, colour = _CATEGORIES.get(category, _CATEGORIES[UNDEFINED])
        return {"id": cid, "key": category, "colorName": colour, "name": name}

    def status(self, status: JiraStatus) -> dict[str, Any]:
        out = self._statuses.get(status.id)
        if out is None:
            out = {"id": status.id, "name": status.name,
                   "statusCategory": self.status_category(status.category)}
            self._statuses[status.id] = out
        return out

    def status_details(self, status: JiraStatus) -> dict[str, Any]:
        """The fuller StatusDetails of GET /status."""
        return {"self": f"{self.base_url}/rest/api/2/status/{status.id}", "description": "",
                "iconUrl": f"{self.base_url}/images/icons/statuses/generic.png",
                **self.status(status)}

    def priority(self, name: str) -> dict[str, Any]:
        try:
            pid = str(self.dataset.priorities.index(name) + 1)
        except ValueError:
            pid = str(10000 + zlib.crc32(name.encode()) % 10000)
        return {"id": pid, "name": name}

    def issue_type(self, name: str) -> dict[str, Any]:
        out = self._issue_types.get(name)
        if out is None:
            tid = _ISSUE_TYPE_IDS.get(name.lower()) or str(10100 + len(self._issue_types))
            subtask = name.lower() in ("sub-task", "subtask")
            out = {"id": tid, "name": name, "subtask": subtask}
            self._issue_types[name] = out
        return out

    def component(self, name: str) -> dict[str, Any]:
        cid = self._component_ids.setdefault(name, str(10000 + len(self._component_ids)))
        return {"id": cid, "name": name}

    def project_ref(self, key: str) -> dict[str, Any]:
        for p in self.dataset.projects:
            if p.key == key:
                return {"id": p.id, "key": p.key, "name": p.name}
        return {"key": key}

    # -- histories, worklogs and issues, as JSON text ------------------------
    # These are the bulk of every page (8 histories and 3 worklogs per issue in the
    # benchmark), so they are written straight to JSON text from templates: half the cost
    # of building dicts for json.dumps, and no dict churn for the garbage collector.
    # Nothing is cached: caching them cost ~200 MB for 20k issues.
    def user_json(self, account_id: str | None) -> str:
        text = self._user_texts.get(account_id)
        if text is None:
            text = dumps(self.user(account_id))
            self._user_texts[account_id] = text
        return text

    def history_json(self, h: JiraHistory, version: int, *, epoch: bool = False,
                     field_ids: set[str] | None = None) -> str:
        """One Changelog; `field_ids` keeps only those items (bulkfetch's fieldIds)."""
        items = ",".join(
            f'{{"field":{_q(it.field)},"fieldtype":"jira","fieldId":{_q(it.field)},'
            f'"from":{_qn(it.from_id)},"fromString":{_qn(it.from_string)},'
            f'"to":{_qn(it.to_id)},"toString":{_qn(it.to_string)}}}'
            for it in h.items if field_ids is None or it.field in field_ids
        )
        # Automation and anonymous changes carry no author.
        author = f',"author":{self.user_json(h.author_id)}' if h.author_id is not None else ""
        created = str(epoch_ms(h.created)) if epoch else f'"{self.date(h.created)}"'
        return f'{{"id":{_q(h.id)}{author},"created":{created},"items":[{items}]}}'

    def worklog_json(self, wl: JiraWorklog, version: int) -> str:
        created = wl.created or wl.started
        author = self.user_json(wl.author_id)
        comment = f',"comment":{dumps(self.rich_text(wl.comment, version))}' \
            if wl.comment else ""
        return (
            f'{{"self":"{self.base_url}/rest/api/{version}/issue/{wl.issue_id}/worklog/'
            f'{wl.id}","author":{author},"updateAuthor":{author}{comment},'
            f'"created":"{self.date(created)}","updated":"{self.date(wl.updated or created)}",'
            f'"started":"{self.date(wl.started)}",'
            f'"timeSpent":"{time_spent_text(wl.time_spent_seconds)}",'
            f'"timeSpentSeconds":{int(wl.time_spent_seconds)},"id":{_q(wl.id)},'
            f'"issueId":{_q(wl.issue_id)}}}'
        )

    def comment_json(self, c: JiraComment, version: int) -> dict[str, Any]:
        author = self.user(c.author_id) if c.author_id else None
        out: dict[str, Any] = {
            "self": f"{self.base_url}/rest/api/{version}/issue/{c.issue_id}/comment/{c.id}",
            "id": c.id, "body": self.rich_text(c.body, version),
            "created": self.date(c.created), "updated": self.date(c.updated or c.created),
            "jsdPublic": c.jsd_public,
        }
        if author is not None:
            out["author"] = out["updateAuthor"] = author
        if c.visibility:
            out["visibility"] = {"type": "role", "value": c.visibility,
                                 "identifier": c.visibility}
        return out

    def comment_page(self, comments: Sequence[JiraComment], version: int, *,
                     start: int = 0, size: int | None = None) -> dict[str, Any]:
        """A PageOfComments (the `comment` field inline is capped the same way)."""
        size = self.inline_comment_cap if size is None else size
        return {"comments": [self.comment_json(c, version) for c in comments[start:start + size]],
                "maxResults": size, "total": len(comments), "startAt": start}

    def changelog_inline_json(self, histories: Sequence[JiraHistory], version: int,
                              complete: bool) -> str:
        """The `changelog` of an issue bean: capped newest-first, or everything oldest-first."""
        total = len(histories)
        if complete:
            chosen: Iterable[JiraHistory] = histories
            max_results = total
        else:
            cap = self.inline_changelog_cap
            chosen = reversed(histories[-cap:]) if cap > 0 else ()
            max_results = cap
        rendered = ",".join(self.history_json(h, version) for h in chosen)
        return (f'{{"startAt":0,"maxResults":{max_results},"total":{total},'
                f'"histories":[{rendered}]}}')

    def worklog_inline_json(self, worklogs: Sequence[JiraWorklog], version: int) -> str:
        cap = self.inline_worklog_cap
        rendered = ",".join(self.worklog_json(wl, version) for wl in worklogs[:cap])
        return (f'{{"startAt":0,"maxResults":{cap},"total":{len(worklogs)},'
                f'"worklogs":[{rendered}]}}')

    def issue_json(self, issue: JiraIssue, fields: tuple[str, ...], version: int, *,
                   changelog: bool = False, complete_changelog: bool = False) -> str:
        """An IssueBean; without fields nor changelog just id, self and key, as Cloud does."""
        head = (f'"id":{_q(issue.id)},"self":"{self.base_url}/rest/api/{version}/issue/'
                f'{issue.id}","key":{_q(issue.key)}')
        if not fields and not changelog:
            return "{" + head + "}"
        parts = ['{"expand":"' + ISSUE_EXPAND + '",' + head]
        if fields:
            simple = {name: _FIELD_RENDERERS[name](self, issue, version)
                      if name in _FIELD_RENDERERS else issue.sla.get(name)
                      for name in fields if name != "worklog"}
            text = dumps(simple)
            if "worklog" in fields:
                worklog = self.worklog_inline_json(issue.worklogs, version)
                text = text[:-1] + ("," if simple else "") + '"worklog":' + worklog + "}"
            parts.append(',"fields":' + text)
        if changelog:
            parts.append(',"changelog":'
                         + self.changelog_inline_json(issue.histories, version,
                                                      complete_changelog))
        parts.append("}")
        return "".join(parts)


_FIELD_SCHEMAS: dict[str, dict[str, str]] = {
    "summary": {"type": "string"}, "description": {"type": "string"},
    "issuetype": {"type": "issuetype"}, "labels": {"type": "array", "items": "string"},
    "components": {"type": "array", "items": "component"}, "priority": {"type": "priority"},
    "status": {"type": "status"}, "created": {"type": "datetime"},
    "updated": {"type": "datetime"}, "resolutiondate": {"type": "datetime"},
    "assignee": {"type": "user"}, "reporter": {"type": "user"}, "parent": {"type": "issuelink"},
    "project": {"type": "project"}, "timeoriginalestimate": {"type": "number"},
    "timespent": {"type": "number"}, "worklog": {"type": "array", "items": "worklog"},
    "comment": {"type": "comments-page"},
}
_FIELD_NAMES = {"issuetype": "Issue Type", "resolutiondate": "Resolved",
                "timeoriginalestimate": "Original Estimate", "timespent": "Time Spent",
                "worklog": "Log Work"}
_FIELD_CLAUSES = {"issuetype": ["issuetype", "type"], "created": ["created", "createdDate"],
                  "updated": ["updated", "updatedDate"],
                  "resolutiondate": ["resolutiondate", "resolved"],
                  "timeoriginalestimate": ["originalEstimate", "timeoriginalestimate"]}


def sla_field_details(field_id: str, name: str) -> dict[str, Any]:
    """A Jira Service Management SLA custom field as GET /field lists it."""
    return {"id": field_id, "key": field_id, "name": name, "custom": True, "orderable": True,
            "navigable": True, "searchable": True,
            "clauseNames": [f"cf[{field_id.rsplit('_', 1)[-1]}]", name],
            "schema": {"type": "sd-servicelevelagreement",
                       "custom": "com.atlassian.servicedesk:sd-sla-field",
                       "customId": int(field_id.rsplit("_", 1)[-1])}}


def field_details(name: str) -> dict[str, Any]:
    """A system field as GET /field lists it (the jira library reads clauseNames)."""
    return {"id": name, "key": name, "name": _FIELD_NAMES.get(name, name.capitalize()),
            "custom": False, "orderable": name not in ("created", "updated", "timespent"),
            "navigable": True, "searchable": True,
            "clauseNames": _FIELD_CLAUSES.get(name, [name]),
            "schema": {**_FIELD_SCHEMAS[name], "system": name}}


def _parent(r: JiraRenderer, issue: JiraIssue) -> dict[str, Any] | None:
    if issue.parent_key is None:
        return None
    parent = r.dataset.issue(issue.parent_key)
    ref: dict[str, Any] = {"key": issue.parent_key}
    if parent is not None:
        ref = {"id": parent.id, "key": parent.key,
               "self": f"{r.base_url}/rest/api/2/issue/{parent.id}",
               "fields": {"summary": parent.summary}}
    return ref


def _status(r: JiraRenderer, issue: JiraIssue) -> dict[str, Any]:
    try:
        return r.status(r.dataset.status(issue.status_id))
    except KeyError:  # a status deleted from the workflow since: still shown by id
        return r.status(JiraStatus(issue.status_id, issue.status_id, UNDEFINED))


def comment_order(c: JiraComment) -> tuple[datetime, int]:
    """Oldest first, as Jira pages comments (inline and issue/{id}/comment alike)."""
    return (c.created, int(c.id) if c.id.isdigit() else 0)


def _time_spent(issue: JiraIssue) -> int | None:
    return sum(wl.time_spent_seconds for wl in issue.worklogs) if issue.worklogs else None


_FIELD_RENDERERS: dict[str, Any] = {
    "summary": lambda r, i, v: i.summary,
    "description": lambda r, i, v: r.rich_text(i.description, v),
    "issuetype": lambda r, i, v: r.issue_type(i.issue_type),
    "labels": lambda r, i, v: list(i.labels),
    "components": lambda r, i, v: [r.component(c) for c in i.components],
    "priority": lambda r, i, v: r.priority(i.priority) if i.priority else None,
    "status": lambda r, i, v: _status(r, i),
    "created": lambda r, i, v: r.date(i.created),
    "updated": lambda r, i, v: r.date(i.updated),
    "resolutiondate": lambda r, i, v: r.date(i.resolution_date),
    "assignee": lambda r, i, v: r.user(i.assignee_id),
    "reporter": lambda r, i, v: r.user(i.reporter_id),
    "parent": lambda r, i, v: _parent(r, i),
    "project": lambda r, i, v: r.project_ref(i.project_key),
    "timeoriginalestimate": lambda r, i, v: i.original_estimate_seconds,
    "timespent": lambda r, i, v: _time_spent(i),
    "comment": lambda r, i, v: r.comment_page(sorted(i.comments, key=comment_order), v),
    # "worklog" is spliced in as JSON text by JiraRenderer.issue_json.
}
assert set(_FIELD_RENDERERS) | {"worklog"} == set(ISSUE_FIELDS)
