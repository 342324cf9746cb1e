"""Jira Cloud and Data Center connector: incremental search, complete histories and worklogs."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from jira import JIRA
from jira.resilientsession import raise_on_error
from requests import Response

from connectors.base import (
    DONE,
    IN_PROGRESS,
    TODO,
    CommentRecord,
    Page,
    TicketRecord,
    TrackerFacts,
    TransitionRecord,
    WorklogRecord,
    WorklogSet,
    prefetch,
    user_email,
)
from connectors.errors import TrackerConfigError, TrackerProtocolError
from connectors.retry import RetryPolicy

log = logging.getLogger("tmabot.connectors.jira")

# -- the connector's facts, as data ------------------------------------------
SOURCE = "jira"
PRIMARY_KEY = "id"
CURSOR_FIELD = "updated"
SEARCH_FIELDS = [
    "summary", "description", "issuetype", "labels", "components", "priority", "status",
    "created", "updated", "resolutiondate", "assignee", "reporter", "parent", "project",
    "timeoriginalestimate", "worklog",
]
PAGE_SIZE = 100  # Cloud caps field-heavy searches near 100; we count what comes back anyway
ID_PAGE_SIZE = 5000  # Cloud allows up to 5000 when only ids are asked
OVERLAP = timedelta(minutes=10)  # JQL is minute-grained and search is eventually consistent
CHANGELOG_BATCH = 1000  # changelog/bulkfetch: issueIdsOrKeys <= 1000
CHANGELOG_PAGE = 10000  # changelog/bulkfetch: maxResults <= 10000
WORKLOG_PAGE = 5000  # issue/{id}/worklog page size
COMMENT_PAGE = 100  # issue/{id}/comment: Cloud's default and cap
WORKLOG_LIST_BATCH = 1000  # worklog/list: ids <= 1000
JSM_SLA_FIELD = "com.atlassian.servicedesk:sd-sla-field"  # schema.custom of JSM SLA fields
_NO_SLA_FIELDS_TOLD: set[str] = set()  # sites already warned about (`tmabot run` loops)
DC_DEEP_PAGING_LIMIT = 9000  # DC search fails past 10,000 results: restart by date before that
MAX_PAGES = 200_000

# Jira status category keys -> ours. `undefined` counts as new (DOMAIN.md §2).
CATEGORY = {"new": TODO, "undefined": TODO, "indeterminate": IN_PROGRESS, "done": DONE}


# -- pure helpers (tested directly) -------------------------------------------
def decode(response: Response) -> Any:
    """Raise on an HTTP error (JIRAError, with the response); else the JSON body.

    orjson: search pages with inline changelogs weigh ~6 KB an issue, and decoding them
    is most of a sync's CPU time.
    """
    raise_on_error(response)
    body = response.content
    return orjson.loads(body) if body else {}

def parse_jira_time(value: str | int | float | None) -> datetime | None:
    """Jira timestamps: `2022-05-17T04:28:19.523-0700`, ISO with colon, or epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def jql_date(instant: datetime, tz_name: str | None) -> str:
    """Format an instant for JQL: in the API user's profile zone, floored to the minute."""
    tz = ZoneInfo(tz_name) if tz_name else UTC
    local = instant.astimezone(tz).replace(second=0, microsecond=0)
    return local.strftime("%Y-%m-%d %H:%M")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_jql(project: str, since: datetime | None, tz_name: str | None,
              overlap: timedelta = OVERLAP) -> str:
    """The bounded, ordered JQL of an incremental (or, without `since`, full) pull."""
    clauses = [f"project = {_quote(project)}"]
    if since is not None:
        clauses.append(f"updated >= {_quote(jql_date(since - overlap, tz_name))}")
    return " AND ".join(clauses) + " ORDER BY updated ASC, key ASC"


def adf_to_text(node: Any) -> str:
    """Plain text of an Atlassian Document Format value (v3 descriptions and comments)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    out: list[str] = []

    def walk(n: Any) -> None:
        if isinstance(n, dict):
            if n.get("type") == "text":
                out.append(str(n.get("text", "")))
            elif n.get("type") == "hardBreak":
                out.append("\n")
            elif n.get("type") in ("mention", "emoji", "status", "date"):
                attrs = n.get("attrs") or {}
                out.append(str(attrs.get("text") or attrs.get("shortName") or ""))
            for child in n.get("content") or []:
                walk(child)
            if n.get("type") in ("paragraph", "heading", "listItem", "codeBlock", "blockquote"):
                out.append("\n")
        elif isinstance(n, list):
            for child in n:
                walk(child)

    walk(node)
    return "".join(out).strip()


def _user_email(user: dict[str, Any] | None) -> str | None:
    return user_email(user, "emailAddress")


def _user_name(user: dict[str, Any] | None) -> str | None:
    if not user:
        return None
    return user.get("displayName") or user.get("name")


def _user_id(user: dict[str, Any] | None) -> str | None:
    if not user:
        return None
    return user.get("accountId") or user.get("key") or user.get("name")


class StatusMap:
    """Status id -> (name, category); historical ids may no longer be current."""

    def __init__(self, known: dict[str, tuple[str, str]] | None = None) -> None:
        self.by_id: dict[str, tuple[str, str]] = dict(known or {})

    def category(self, status_id: str | None, name: str | None) -> str | None:
        if status_id and status_id in self.by_id:
            return self.by_id[status_id][1]
        if name:
            lowered = name.lower()
            for st_name, cat in self.by_id.values():
                if st_name.lower() == lowered:
                    return cat
        return None

    def missing(self, status_id: str | None) -> bool:
        return bool(status_id) and status_id not in self.by_id


def _history_order(t: TransitionRecord) -> tuple[datetime, int, int]:
    return (t.at, int(t.history_id) if t.history_id.isdigit() else 0, t.seq)


def transitions_from_histories(issue_id: str, histories: Iterable[dict[str, Any]],
                               statuses: StatusMap) -> list[TransitionRecord]:
    """Status items of a changelog, oldest first (inline changelogs come newest first)."""
    out: list[TransitionRecord] = []
    category = statuses.category
    for h in histories:
        seq = 0
        for item in h.get("items") or ():
            if (item.get("fieldId") or item.get("field")) != "status":
                continue
            if seq == 0:
                at = parse_jira_time(h.get("created"))
                if at is None:
                    break
                author_obj = h.get("author")
                author = _user_email(author_obj) or _user_name(author_obj)
                history_id = str(h.get("id"))
            frm, to = item.get("from"), item.get("to")
            frm_s, to_s = item.get("fromString"), item.get("toString")
            out.append(TransitionRecord(issue_id, history_id, seq, at, author, frm, frm_s,
                                        category(frm, frm_s), to, to_s, category(to, to_s)))
            seq += 1
    if len(out) > 1:
        out.sort(key=_history_order)
    return out


def worklog_record(w: dict[str, Any], issue_id: str | None = None) -> WorklogRecord:
    author = w.get("author")
    return WorklogRecord(
        worklog_id=str(w["id"]), issue_id=str(w.get("issueId") or issue_id),
        author_id=_user_id(author), author_email=_user_email(author),
        author_name=_user_name(author),
        started_at=parse_jira_time(w.get("started")) or datetime.fromtimestamp(0, UTC),
        seconds=int(w.get("timeSpentSeconds") or 0), comment=adf_to_text(w.get("comment")),
        updated_at=parse_jira_time(w.get("updated")),
    )


def comment_record(c: dict[str, Any]) -> CommentRecord | None:
    """Who wrote a comment and when. Restricted comments (a role or group `visibility`) and
    Jira Service Management internal notes (`jsdPublic: false`) are not seen by the client."""
    created = parse_jira_time(c.get("created"))
    if created is None or c.get("id") is None:
        return None
    public = not c.get("visibility") and c.get("jsdPublic", True) is not False
    return CommentRecord(str(c["id"]), created, _user_email(c.get("author")), public)


def _jsm_time(value: dict[str, Any] | None) -> str | None:
    ms = (value or {}).get("epochMillis")
    return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat() if ms is not None else None


def _jsm_hours(value: dict[str, Any] | None) -> float | None:
    ms = (value or {}).get("millis")
    return round(int(ms) / 3_600_000, 2) if ms is not None else None


def jsm_sla(value: Any) -> dict[str, Any] | None:
    """A Jira Service Management SLA field (SlaInformation) in a few comparable figures:
    the ongoing cycle if there is one, else the last completed one."""
    if not isinstance(value, dict):
        return None
    ongoing = value.get("ongoingCycle")
    completed = value.get("completedCycles") or []
    cycle = ongoing or (completed[-1] if completed else None)
    if not isinstance(cycle, dict):
        return {"state": "none", "cycles": 0}
    if cycle.get("breached"):
        state = "breached"
    elif ongoing:
        state = "paused" if ongoing.get("paused") else "running"
    else:
        state = "met"
    return {
        "state": state, "goal_hours": _jsm_hours(cycle.get("goalDuration")),
        "elapsed_hours": _jsm_hours(cycle.get("elapsedTime")),
        "remaining_hours": _jsm_hours(cycle.get("remainingTime")),
        "started_at": _jsm_time(cycle.get("startTime")),
        "stopped_at": None if ongoing else _jsm_time(cycle.get("stopTime")),
        "breach_at": _jsm_time(cycle.get("breachTime")),
        "cycles": len(completed) + (1 if ongoing else 0),
    }


# -- the connector --------------------------------------------------------------
class JiraConnector:
    source = SOURCE

    def __init__(
        self, name: str, url: str, deployment: str, *, token: str, email: str | None = None,
        timeout: float = 30.0, retry: RetryPolicy | None = None, page_size: int = PAGE_SIZE,
        overlap: timedelta = OVERLAP, comments: bool = False, service_desk_sla: bool = False,
    ) -> None:
        if deployment not in ("cloud", "server"):
            raise TrackerConfigError(f"unknown deployment {deployment!r}", tracker=name)
        self.name = name
        self.url = url.rstrip("/")
        self.deployment = deployment
        self.page_size = page_size
        self.overlap = overlap
        self.comments = comments  # read who commented when (`[sla] response_on_comment`)
        self.service_desk_sla = service_desk_sla
        self._sla_fields: dict[str, str] | None = None  # JSM SLA field id -> name
        self.retry = retry or RetryPolicy()
        self.user_time_zone: str | None = None
        self.statuses = StatusMap()
        self._statuses_fetched = False
        cloud = deployment == "cloud"
        auth: dict[str, Any] = (
            {"basic_auth": (email or "", token)} if cloud else {"token_auth": token}
        )
        # Retries are ours (one policy for every tracker): the client's own session must not.
        self._jira = JIRA(
            server=self.url, get_server_info=False, max_retries=0, timeout=timeout,
            options={"rest_api_version": "3" if cloud else "2", "check_update": False},
            **auth,
        )

    # -- transport ---------------------------------------------------------------
    def _get(self, path: str, params: dict[str, Any] | None = None, *, what: str,
             any_flavour: bool = False) -> Any:
        url = self._jira._get_url(path)
        if any_flavour:  # v2 exists on Cloud and Data Center alike
            url = f"{self.url}/rest/api/2/{path}"
        return self.retry.call(
            lambda: decode(self._jira._session.get(url, params=params)),
            tracker=self.name, what=what)

    def _post(self, path: str, body: dict[str, Any], *, what: str) -> Any:
        url = self._jira._get_url(path)
        data = json.dumps(body)
        return self.retry.call(
            lambda: decode(self._jira._session.post(url, data=data)),
            tracker=self.name, what=what)

    def close(self) -> None:
        self._jira.close()

    # -- facts -------------------------------------------------------------------
    def probe(self) -> TrackerFacts:
        """serverInfo (checked against `deployment`), the API user's zone, the statuses."""
        info = self._get("serverInfo", what="serverInfo", any_flavour=True)
        kind = str(info.get("deploymentType") or "")
        is_cloud = kind.lower() == "cloud"
        if is_cloud != (self.deployment == "cloud"):
            said = "Cloud" if is_cloud else f"Data Center/Server ({kind or 'unknown'})"
            raise TrackerConfigError(
                f'deployment = "{self.deployment}" in the config, but the server says it is '
                f"{said}", tracker=self.name)
        me = self._get("myself", what="myself")
        self.user_time_zone = me.get("timeZone") or None
        self._fetch_statuses()
        return TrackerFacts(
            deployment=self.deployment, version=str(info.get("version") or ""),
            user_time_zone=self.user_time_zone, status_categories=dict(self.statuses.by_id))

    def check_project(self, project: str) -> None:
        """Fail with a config error when the API user cannot see `project`."""
        self._get(f"project/{project}", what=f"project {project}")

    def use_facts(self, facts: TrackerFacts) -> None:
        self.user_time_zone = facts.user_time_zone
        self.statuses = StatusMap(facts.status_categories)

    def known_statuses(self) -> dict[str, tuple[str, str]]:
        return dict(self.statuses.by_id)

    def _fetch_statuses(self) -> None:
        data = self._get("status", what="status list")
        for st in data or []:
            cat = CATEGORY.get(((st.get("statusCategory") or {}).get("key") or "undefined"), TODO)
            self.statuses.by_id[str(st["id"])] = (str(st.get("name") or ""), cat)
        self._statuses_fetched = True

    def _ensure_statuses(self, issues: Iterable[dict[str, Any]]) -> None:
        """Fetch /status once per run, only if a history names a status we do not know."""
        if self._statuses_fetched:
            return
        for issue in issues:
            for h in (issue.get("changelog") or {}).get("histories") or issue.get(
                    "changeHistories") or []:
                for item in h.get("items") or []:
                    if (item.get("fieldId") or item.get("field")) == "status" and (
                            self.statuses.missing(item.get("from"))
                            or self.statuses.missing(item.get("to"))):
                        self._fetch_statuses()
                        return

    # -- search ------------------------------------------------------------------
    def _search_pages(self, jql: str, fields: list[str], expand: str | None,
                      page_size: int) -> Iterator[list[dict[str, Any]]]:
        if self.deployment == "cloud":
            yield from self._search_cloud(jql, fields, expand, page_size)
        else:
            yield from self._search_dc(jql, fields, expand, page_size)

    def _search_cloud(self, jql: str, fields: list[str], expand: str | None,
                      page_size: int) -> Iterator[list[dict[str, Any]]]:
        token: str | None = None
        seen_tokens: set[str] = set()
        for _ in range(MAX_PAGES):
            body: dict[str, Any] = {"jql": jql, "maxResults": page_size, "fields": fields}
            if expand:
                body["expand"] = expand
            if token:
                body["nextPageToken"] = token
            data = self._post("search/jql", body, what="search")
            issues = data.get("issues") or []
            yield issues
            token = data.get("nextPageToken")
            if not token or data.get("isLast") is True:
                return
            if not issues:
                raise TrackerProtocolError("search returned an empty page with a next page token",
                                           tracker=self.name)
            if token in seen_tokens:
                raise TrackerProtocolError("search returned the same page token twice",
                                           tracker=self.name)
            seen_tokens.add(token)
        raise TrackerProtocolError(f"search did not end after {MAX_PAGES} pages",
                                   tracker=self.name)

    def _search_dc(self, jql: str, fields: list[str], expand: str | None,
                   page_size: int) -> Iterator[list[dict[str, Any]]]:
        """startAt paging; before the 10,000-result wall, restart from the last `updated`."""
        base_jql, order = jql.split(" ORDER BY ")
        lower: str | None = None  # a restart bound "YYYY-MM-DD HH:mm"
        seen_at_bound: set[str] = set()
        start = 0
        for _ in range(MAX_PAGES):
            q = base_jql + (f" AND updated >= {_quote(lower)}" if lower else "")
            params: dict[str, Any] = {"jql": q + " ORDER BY " + order, "startAt": start,
                                      "maxResults": page_size, "fields": ",".join(fields)}
            if expand:
                params["expand"] = expand
            data = self._get("search", params, what="search")
            issues = [i for i in data.get("issues") or [] if i["id"] not in seen_at_bound]
            yield issues
            got = len(data.get("issues") or [])
            total = int(data.get("total") or 0)
            start += got
            if got == 0 or start >= total:
                return
            if start >= DC_DEEP_PAGING_LIMIT and issues:
                last = parse_jira_time((issues[-1].get("fields") or {}).get("updated"))
                if last is None:
                    raise TrackerProtocolError("cannot page past 10,000 results without "
                                               "`updated`", tracker=self.name)
                new_lower = jql_date(last, self.user_time_zone)
                if new_lower == lower:
                    raise TrackerProtocolError(
                        f"more than {DC_DEEP_PAGING_LIMIT} issues updated in one minute",
                        tracker=self.name)
                lower, start = new_lower, 0
                # Issues of that minute already read come back first: skip them.
                seen_at_bound = {
                    i["id"] for i in issues
                    if jql_date(parse_jira_time(i["fields"]["updated"]) or last,
                                self.user_time_zone) == new_lower}
        raise TrackerProtocolError(f"search did not end after {MAX_PAGES} pages",
                                   tracker=self.name)

    # -- normalization -------------------------------------------------------------
    def _ticket(self, issue: dict[str, Any]) -> tuple[TicketRecord, list[TransitionRecord],
                                                     list[WorklogRecord] | None]:
        f = issue.get("fields") or {}
        status = f.get("status") or {}
        status_id = str(status["id"]) if status.get("id") is not None else None
        cat_key = (status.get("statusCategory") or {}).get("key") or "undefined"
        changelog = issue.get("changelog")
        histories = (changelog or {}).get("histories") or []
        history_complete = changelog is not None and int(
            changelog.get("total", len(histories)) or 0) <= len(histories)
        transitions = transitions_from_histories(str(issue["id"]), histories, self.statuses)
        wl = f.get("worklog") or {}
        wl_items = wl.get("worklogs") or []
        wl_total = int(wl.get("total", len(wl_items)) or 0)
        worklogs_complete = wl_total <= len(wl_items)
        worklogs = [worklog_record(w, str(issue["id"])) for w in wl_items]
        extra = None
        if self._sla_fields:
            slas = {name: jsm_sla(f.get(fid)) for fid, name in self._sla_fields.items()}
            extra = {"sla": {k: v for k, v in slas.items() if v is not None}}
        comments, comments_complete = None, True
        if self.comments:
            inline = f.get("comment") or {}
            items = inline.get("comments") or []
            comments_complete = int(inline.get("total", len(items)) or 0) <= len(items)
            comments = [r for r in map(comment_record, items) if r is not None]
        project = (f.get("project") or {}).get("key") or issue["key"].rsplit("-", 1)[0]
        estimate = f.get("timeoriginalestimate")
        created = parse_jira_time(f.get("created"))
        updated = parse_jira_time(f.get("updated")) or created
        if created is None or updated is None:
            raise TrackerProtocolError(f"issue {issue.get('key')} has no creation date",
                                       tracker=self.name)
        ticket = TicketRecord(
            issue_id=str(issue["id"]), key=str(issue["key"]), project=project,
            url=f"{self.url}/browse/{issue['key']}",
            title=str(f.get("summary") or ""), description=adf_to_text(f.get("description")),
            issue_type=(f.get("issuetype") or {}).get("name"),
            labels=tuple(str(x) for x in f.get("labels") or []),
            components=tuple(str(c.get("name")) for c in f.get("components") or []),
            parent_key=(f.get("parent") or {}).get("key"),
            tracker_priority=(f.get("priority") or {}).get("name"),
            status=str(status.get("name") or ""), status_id=status_id,
            status_category=CATEGORY.get(cat_key, TODO),
            created_at=created, updated_at=updated,
            resolved_at=parse_jira_time(f.get("resolutiondate")),
            assignee_email=_user_email(f.get("assignee")),
            assignee_name=_user_name(f.get("assignee")),
            reporter_email=_user_email(f.get("reporter")),
            estimate_hours=(int(estimate) / 3600.0) if estimate else None,
            history_complete=history_complete, worklogs_complete=worklogs_complete,
            worklog_total=wl_total, status_type=cat_key, comments=comments,
            comments_complete=comments_complete, extra=extra,
        )
        if status_id and status.get("name"):
            self.statuses.by_id.setdefault(status_id, (ticket.status, ticket.status_category))
        return ticket, transitions, worklogs

    def sla_fields(self) -> dict[str, str]:
        """The site's Jira Service Management SLA fields (id -> name), read once from /field."""
        if self._sla_fields is None:
            found = {}
            for fld in self._get("field", what="field list") or []:
                if (fld.get("schema") or {}).get("custom") == JSM_SLA_FIELD and fld.get("id"):
                    found[str(fld["id"])] = str(fld.get("name") or fld["id"])
            if not found and self.url not in _NO_SLA_FIELDS_TOLD:  # once per process
                _NO_SLA_FIELDS_TOLD.add(self.url)
                log.warning("%s: service_desk_sla is on but the site has no Jira Service "
                            "Management SLA field", self.name)
            self._sla_fields = found
        return self._sla_fields

    def complete_comments(self, ticket: TicketRecord) -> None:
        """Every comment of an issue whose inline page was cut: issue/{id}/comment, oldest
        first (rare: only issues with many comments, and only when they changed)."""
        items = self._start_at_pages(
            f"issue/{ticket.issue_id}/comment", "comments",
            {"maxResults": COMMENT_PAGE, "orderBy": "created"},
            what=f"comments of issue {ticket.key}")
        ticket.comments = [r for r in map(comment_record, items) if r is not None]
        ticket.comments_complete = True

    def pull(self, project: str, since: datetime | None) -> Iterator[Page]:
        """Every issue of `project` updated since `since` (minus the overlap), page by page."""
        jql = build_jql(project, since, self.user_time_zone, self.overlap)
        fields = SEARCH_FIELDS + ["comment"] if self.comments else SEARCH_FIELDS
        if self.service_desk_sla:
            fields = fields + list(self.sla_fields())
        walk = self._search_pages(jql, fields, "changelog", self.page_size)
        for issues in prefetch(walk):
            self._ensure_statuses(issues)
            page = Page()
            for issue in issues:
                ticket, transitions, worklogs = self._ticket(issue)
                page.tickets.append(ticket)
                if ticket.history_complete:
                    page.transitions[ticket.issue_id] = transitions
                else:
                    page.partial_transitions[ticket.issue_id] = transitions
                if ticket.worklogs_complete and worklogs is not None:
                    page.worklogs[ticket.issue_id] = worklogs
            yield page

    def issue_ids(self, project: str) -> set[str]:
        """Ids-only walk of a project: what still exists there (for the reconcile)."""
        jql = build_jql(project, None, self.user_time_zone)
        ids: set[str] = set()
        fields = ["id"] if self.deployment == "cloud" else ["id", "updated"]
        for issues in self._search_pages(jql, fields, None, ID_PAGE_SIZE):
            ids.update(str(i["id"]) for i in issues)
        return ids

    # -- completion passes -----------------------------------------------------------
    def complete_histories(
        self, issue_ids: Iterable[str]
    ) -> Iterator[dict[str, list[TransitionRecord]]]:
        """Full status histories of issues whose inline changelog was truncated."""
        ids = list(dict.fromkeys(issue_ids))
        if self.deployment == "cloud":
            for start in range(0, len(ids), CHANGELOG_BATCH):
                yield self._bulkfetch_changelogs(ids[start:start + CHANGELOG_BATCH])
        else:
            batch: dict[str, list[TransitionRecord]] = {}
            for issue_id in ids:
                issue = self._get(f"issue/{issue_id}", {"fields": "status",
                                                        "expand": "changelog"},
                                  what=f"changelog of issue {issue_id}")
                self._ensure_statuses([issue])
                histories = (issue.get("changelog") or {}).get("histories") or []
                batch[issue_id] = transitions_from_histories(issue_id, histories, self.statuses)
                if len(batch) >= 100:
                    yield batch
                    batch = {}
            if batch:
                yield batch

    def _bulkfetch_changelogs(self, ids: list[str]) -> dict[str, list[TransitionRecord]]:
        histories: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        token: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            body: dict[str, Any] = {"issueIdsOrKeys": ids, "fieldIds": ["status"],
                                    "maxResults": CHANGELOG_PAGE}
            if token:
                body["nextPageToken"] = token
            data = self._post("changelog/bulkfetch", body, what="changelog bulkfetch")
            logs = data.get("issueChangeLogs") or []
            self._ensure_statuses(logs)
            for entry in logs:
                # One issue's histories may continue on the next page: accumulate.
                histories.setdefault(str(entry.get("issueId")), []).extend(
                    entry.get("changeHistories") or [])
            token = data.get("nextPageToken")
            if not token:
                break
            if token in seen:
                raise TrackerProtocolError("changelog bulkfetch repeated a page token",
                                           tracker=self.name)
            seen.add(token)
        return {i: transitions_from_histories(i, h, self.statuses) for i, h in histories.items()}

    def complete_worklogs(
        self, expected: dict[str, int], *,
        known: Callable[[], dict[str, tuple[str, datetime | None]]] | None = None,
        site_worklogs_hint: int = 0,
    ) -> Iterator[dict[str, WorklogSet]]:
        """Full worklog sets of issues with more worklogs than the inline 20.

        `expected` maps issue id -> the total Jira announced. Per issue costs one request
        each; on Cloud the bulk feed (worklog/updated + worklog/list) costs about one
        request per 1,000 worklogs of the site, so it wins when many issues are truncated.
        `known` gives the stored worklogs (id -> (issue id, updated)) so that unchanged ones
        are not listed again.
        """
        pending = dict(expected)
        if not pending:
            return
        per_issue_cost = len(pending)
        bulk_cost = math.ceil(site_worklogs_hint / 1000) + math.ceil(
            sum(pending.values()) / 1000) + 1
        if self.deployment == "cloud" and known is not None and bulk_cost < per_issue_cost:
            found = self._bulk_worklogs(set(pending), known(), budget=per_issue_cost)
            if found is not None:
                # A worklog logged in the last minute is not in the feed yet: such issues
                # fall back to the per-issue route below.
                done = {i: ws for i, ws in found.items() if ws.count == pending[i]}
                if done:
                    yield done
                for i in done:
                    pending.pop(i)
        batch: dict[str, WorklogSet] = {}
        for issue_id in pending:
            batch[issue_id] = WorklogSet(issue_id, self._issue_worklogs(issue_id))
            if len(batch) >= 100:
                yield batch
                batch = {}
        if batch:
            yield batch

    def _start_at_pages(self, path: str, key: str, params: dict[str, Any], *,
                        what: str) -> list[dict[str, Any]]:
        """Every item of a `startAt`/`maxResults`/`total` listing (issue worklogs, comments)."""
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            data = self._get(path, {**params, "startAt": len(items)}, what=what)
            got = data.get(key) or []
            items.extend(got)
            if not got or len(items) >= int(data.get("total") or 0):
                return items
        raise TrackerProtocolError(f"{what}: paging did not end", tracker=self.name)

    def _issue_worklogs(self, issue_id: str) -> list[WorklogRecord]:
        return [worklog_record(w, issue_id) for w in self._start_at_pages(
            f"issue/{issue_id}/worklog", "worklogs", {"maxResults": WORKLOG_PAGE},
            what=f"worklogs of issue {issue_id}")]

    def _bulk_worklogs(self, pending: set[str], known: dict[str, tuple[str, datetime | None]],
                       *, budget: int) -> dict[str, WorklogSet] | None:
        """Walk the site's worklog feed; None when it costs more than `budget` requests."""
        alive: dict[str, int] = {}  # worklog id -> updatedTime (ms)
        since: int | None = 0
        requests_made = 0
        seen_next: set[str] = set()
        while since is not None:
            if requests_made >= budget:
                return None  # the site is bigger than our issues suggest: per issue is cheaper
            data = self._get("worklog/updated", {"since": since}, what="worklog feed")
            requests_made += 1
            for v in data.get("values") or []:
                alive[str(v["worklogId"])] = int(v.get("updatedTime") or 0)
            nxt = data.get("nextPage")
            if data.get("lastPage", True) or not nxt:
                since = None
            else:
                if nxt in seen_next:
                    raise TrackerProtocolError("worklog feed repeated a page", tracker=self.name)
                seen_next.add(nxt)
                since = int(data.get("until") or 0)
        keep: dict[str, set[str]] = {i: set() for i in pending}
        to_list: list[str] = []
        for wid, upd in alive.items():
            stored = known.get(wid)
            if stored is None or stored[1] is None or int(stored[1].timestamp() * 1000) != upd:
                to_list.append(wid)
            elif stored[0] in keep:
                keep[stored[0]].add(wid)  # alive, unchanged, already stored
        records: dict[str, list[WorklogRecord]] = {i: [] for i in pending}
        for start in range(0, len(to_list), WORKLOG_LIST_BATCH):
            chunk = [int(x) for x in to_list[start:start + WORKLOG_LIST_BATCH]]
            for w in self._post("worklog/list", {"ids": chunk}, what="worklog list") or []:
                rec = worklog_record(w)
                if rec.issue_id in records:
                    records[rec.issue_id].append(rec)
        return {i: WorklogSet(i, records[i], frozenset(keep[i])) for i in pending}
