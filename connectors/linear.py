"""Linear: issues, state history and native SLA fields over GraphQL with `gql` 4.x.

Queries live next to this module (`linear_*.graphql`, fragments in
`linear_fragments.graphql`) and are validated against Linear's published schema in the
tests. Incremental pull per team key: `issues(orderBy: updatedAt, filter: {team: {key:
{eq}}, updatedAt: {gte: since - overlap}})`, cursor pagination on `pageInfo`. The order
of the pages is not relied on (Linear does not document the direction), so the sync
cursor only moves once a team's walk is complete (`cursor_per_page = False`).

Each issue brings its first history entries inline; an issue with more is flagged and its
whole history is read afterwards (`complete_histories`). Linear has no worklogs: time comes
from imported timesheets (tmabot.timesheets) or estimates.

Rate limits: Linear answers HTTP 400 (or 429) with `errors[0].extensions.code ==
"RATELIMITED"`; we wait until the reset given in `x-ratelimit-requests-reset` /
`x-ratelimit-complexity-reset` (epoch ms) or `retry-after`, bounded by the retry policy,
and never assume a budget.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from gql import Client, GraphQLRequest
from gql.transport.exceptions import (
    TransportConnectionFailed,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.requests import RequestsHTTPTransport

from connectors.base import (
    DONE,
    IN_PROGRESS,
    TODO,
    CommentRecord,
    Page,
    TicketRecord,
    TrackerFacts,
    TransitionRecord,
    WorklogSet,
    prefetch,
    user_email,
)
from connectors.errors import (
    TrackerConfigError,
    TrackerError,
    TrackerProtocolError,
    TrackerUnavailable,
)
from connectors.retry import RetryPolicy

log = logging.getLogger("tmabot.linear")

QUERIES = Path(__file__).parent
DEFAULT_URL = "https://api.linear.app/graphql"
# Linear's state types → our categories; canceled/duplicate stay apart in `status_type`.
STATE_CATEGORY = {
    "triage": TODO, "backlog": TODO, "unstarted": TODO, "started": IN_PROGRESS,
    "completed": DONE, "canceled": DONE, "duplicate": DONE,
}
PRIORITY_LABELS = {0: "No priority", 1: "Urgent", 2: "High", 3: "Medium", 4: "Low"}
OVERLAP = timedelta(minutes=10)
MAX_PAGES = 100_000
HISTORY_PAGE = 100
COMPLEXITY_LIMIT = 10_000  # Linear's documented per-query cap
AUTH_CODES = {"AUTHENTICATION_ERROR", "FORBIDDEN", "UNAUTHENTICATED"}


@cache
def _fragments() -> dict[str, str]:
    text = (QUERIES / "linear_fragments.graphql").read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for block in re.split(r"\n(?=fragment )", text):
        match = re.match(r"fragment (\w+) ", block.strip())
        if match:
            out[match.group(1)] = block.strip()
    return out


@cache
def query_text(name: str) -> str:
    """A query file plus the fragments it uses (transitively): a valid document."""
    text = (QUERIES / f"linear_{name}.graphql").read_text(encoding="utf-8")
    fragments = _fragments()
    wanted: list[str] = []
    pending = re.findall(r"\.\.\.(\w+)", text)
    while pending:
        name_ = pending.pop()
        if name_ not in wanted and name_ in fragments:
            wanted.append(name_)
            pending.extend(re.findall(r"\.\.\.(\w+)", fragments[name_]))
    return "\n\n".join([text.strip()] + [fragments[w] for w in wanted]) + "\n"


QUERY_NAMES = ("issues", "issue_history", "issue_comments", "recent_comments", "issue_ids",
               "viewer", "states", "team")
# Comments per issue in the issues page (more are read per issue): 5 keeps a page of 50
# issues with 10 history entries inline under half the complexity cap.
COMMENTS_INLINE = 5


def estimated_complexity(page: int, history: int, labels: int, comments: int = 0) -> float:
    """Linear's cost model: 0.1 per property, 1 per object, connections × `first`."""
    history_node = 1 + 0.2 + 3 * (1 + 0.3)  # id, createdAt; actor, fromState, toState
    comment_node = 1 + 0.2 + 1 + 0.1  # id, createdAt; user { email }
    issue = (1 + 2.3 + 7 * 1.2 + labels * 1.1 + 1.2 + history * history_node
             + (1.2 + comments * comment_node if comments else 0))
    return page * issue


def page_sizes(requested: int | None, comments: int = 0) -> tuple[int, int, int]:
    """(issues per page, history entries inline, labels inline) kept under half the cap."""
    labels = 20
    page = requested or 50
    history = 25

    def cost() -> float:
        return estimated_complexity(page, history, labels, comments)

    while cost() > COMPLEXITY_LIMIT / 2 and history > 5:
        history -= 5
    while cost() > COMPLEXITY_LIMIT / 2 and page > 10:
        page -= 10
    return page, history, labels


def _comment_records(nodes: Iterable[dict[str, Any]] | None) -> list[CommentRecord]:
    """Who commented when. A comment with no user (an integration, a bot) has no email."""
    out = []
    for n in nodes or ():
        created = parse_time(n.get("createdAt"))
        if created is not None and n.get("id"):
            out.append(CommentRecord(str(n["id"]), created, user_email(n.get("user"))))
    return out


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def transitions_from_history(issue_id: str, nodes: Iterable[dict[str, Any]]
                             ) -> list[TransitionRecord]:
    """State changes only, oldest first (Linear lists the newest first)."""
    out: list[TransitionRecord] = []
    for n in nodes:
        to, frm = n.get("toState"), n.get("fromState")
        if not to or not frm:  # not a state change, or the creation's initial state
            continue
        at = parse_time(n.get("createdAt"))
        if at is None:
            continue
        out.append(TransitionRecord(
            issue_id=issue_id, history_id=str(n["id"]), seq=0, at=at,
            author=user_email(n.get("actor")),
            from_status_id=frm.get("id"), from_status=frm.get("name"),
            from_category=STATE_CATEGORY.get(frm.get("type") or "", TODO),
            to_status_id=to.get("id"), to_status=to.get("name"),
            to_category=STATE_CATEGORY.get(to.get("type") or "", TODO)))
    out.sort(key=lambda t: (t.at, t.history_id))
    return out


def _reset_wait(headers: Any, now_ms: float) -> float | None:
    """Seconds until the rate-limit window resets, from Linear's headers."""
    if not headers:
        return None
    waits: list[float] = []
    for name in ("x-ratelimit-requests-reset", "x-ratelimit-complexity-reset",
                 "x-ratelimit-endpoint-requests-reset"):
        value = headers.get(name)
        if value:
            try:
                waits.append(max(0.0, (float(value) - now_ms) / 1000.0))
            except ValueError:
                continue
    retry_after = headers.get("retry-after")
    if retry_after:
        try:
            waits.append(max(0.0, float(retry_after)))
        except ValueError:
            pass
    return max(waits) if waits else None


class _Transport(RequestsHTTPTransport):
    """gql's requests transport, remembering the HTTP status of the last answer (a JSON
    error body is turned into a query error, which would otherwise hide a 5xx)."""

    last_status: int | None = None

    def _prepare_result(self, response: Any) -> Any:
        self.last_status = response.status_code
        return super()._prepare_result(response)


class LinearConnector:
    """One Linear workspace. Stateless between calls apart from the cached state map."""

    source = "linear"
    cursor_per_page = False  # page order is not documented: move the cursor at the end

    def __init__(self, name: str, url: str | None, *, token: str, timeout: float = 30.0,
                 retry: RetryPolicy | None = None, page_size: int | None = None,
                 overlap: timedelta = OVERLAP, schema: str | None = None,
                 clock: Callable[[], float] = time.time, comments: bool = False) -> None:
        self.name = name
        self.url = (url or DEFAULT_URL).rstrip("/")
        self.retry = retry or RetryPolicy()
        self.overlap = overlap
        self.comments = comments  # read who commented when (`[sla] response_on_comment`)
        self.page_size, self.history_size, self.labels_size = page_sizes(
            page_size, COMMENTS_INLINE if comments else 0)
        self.clock = clock
        # A personal API key goes as is; an OAuth access token as a Bearer token.
        auth = f"Bearer {token}" if token.startswith("lin_oauth_") else token
        self.transport = _Transport(
            url=self.url, headers={"Authorization": auth, "User-Agent": "tmabot"},
            timeout=math.ceil(timeout), retries=0, json_deserialize=orjson.loads)
        self.client = Client(transport=self.transport, schema=schema,
                             fetch_schema_from_transport=False)
        self.session = self.client.connect_sync()
        self.statuses: dict[str, tuple[str, str]] = {}
        self._requests: dict[str, GraphQLRequest] = {}

    # -- plumbing --------------------------------------------------------------------
    def _request(self, name: str) -> GraphQLRequest:
        req = self._requests.get(name)
        if req is None:
            req = GraphQLRequest(query_text(name))
            self._requests[name] = req
        return req

    def _execute(self, name: str, variables: dict[str, Any], *, what: str) -> dict[str, Any]:
        """Run one query: rate limits waited out, transient failures retried, the rest
        turned into one clear TrackerError."""
        request = GraphQLRequest(self._request(name), variable_values=variables)
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                return dict(self.session.execute(request))
            except TransportQueryError as exc:
                error = (exc.errors or [{}])[0] if isinstance(exc.errors, list) else {}
                ext = error.get("extensions") or {}
                code = str(ext.get("code") or "").upper()
                message = str(error.get("message") or exc)
                if code == "RATELIMITED":
                    retry_after = _reset_wait(self.transport.response_headers,
                                              self.clock() * 1000)
                    reason = "rate limited"
                elif code in AUTH_CODES or str(ext.get("type", "")).startswith("authentication"):
                    raise TrackerConfigError(
                        f"{what}: authentication failed: check the API key env var ({message})",
                        tracker=self.name) from None
                elif (self.transport.last_status or 0) >= 500 \
                        or self.transport.last_status == 429:
                    retry_after = _reset_wait(self.transport.response_headers,
                                              self.clock() * 1000)
                    reason = f"HTTP {self.transport.last_status}: {message}"
                else:
                    raise TrackerError(f"{what}: {message}", tracker=self.name) from None
            except TransportServerError as exc:
                status = exc.code
                if status in (401, 403):
                    raise TrackerConfigError(
                        f"{what}: HTTP {status}: authentication failed: check the API key "
                        "env var", tracker=self.name, status=status) from None
                if status is not None and status < 500 and status != 429:
                    raise TrackerError(f"{what}: HTTP {status}", tracker=self.name,
                                       status=status) from None
                retry_after = _reset_wait(self.transport.response_headers, self.clock() * 1000)
                reason = f"HTTP {status}"
            except (TransportConnectionFailed, TransportProtocolError) as exc:
                reason = "malformed response" if isinstance(exc, TransportProtocolError) \
                    else "connection failed"
            if attempt >= self.retry.max_attempts:
                raise TrackerUnavailable(f"{what}: still failing after {attempt} attempts "
                                         f"({reason})", tracker=self.name)
            wait = self.retry.delay(attempt, retry_after)
            log.warning("%s: %s: %s, retry %d/%d in %.1fs", self.name, what, reason, attempt,
                        self.retry.max_attempts - 1, wait)
            self.retry.sleep(wait)

    def close(self) -> None:
        try:
            self.client.close_sync()
        except Exception:  # noqa: BLE001 - closing must not hide the real outcome
            pass

    # -- probe -----------------------------------------------------------------------
    def probe(self) -> TrackerFacts:
        data = self._execute("viewer", {}, what="viewer")
        org = data.get("organization") or {}
        self._fetch_states()
        return TrackerFacts("cloud", f"linear:{org.get('urlKey', '?')}", None,
                            dict(self.statuses))

    def use_facts(self, facts: TrackerFacts) -> None:
        self.statuses = dict(facts.status_categories)

    def known_statuses(self) -> dict[str, tuple[str, str]]:
        return dict(self.statuses)

    def _fetch_states(self) -> None:
        after: str | None = None
        for _ in range(MAX_PAGES):
            data = self._execute("states", {"first": 250, "after": after},
                                 what="workflow states")["workflowStates"]
            for s in data.get("nodes") or []:
                self.statuses[str(s["id"])] = (str(s["name"]),
                                               STATE_CATEGORY.get(s.get("type") or "", TODO))
            info = data.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            after = info.get("endCursor")
        raise TrackerProtocolError("workflow states paging did not end", tracker=self.name)

    def check_project(self, project: str) -> None:
        data = self._execute("team", {"key": project}, what=f"team {project}")
        if not (data.get("teams") or {}).get("nodes"):
            raise TrackerConfigError(f"team {project!r} not found (or not visible to this key)",
                                     tracker=self.name)

    # -- issues ------------------------------------------------------------------------
    def _ticket(self, node: dict[str, Any]) -> tuple[TicketRecord, list[TransitionRecord]]:
        issue_id = str(node["id"])
        state = node.get("state") or {}
        state_type = state.get("type") or ""
        history = node.get("history") or {}
        created = parse_time(node.get("createdAt"))
        updated = parse_time(node.get("updatedAt")) or created
        if created is None or updated is None:
            raise TrackerProtocolError(f"issue {node.get('identifier')} has no creation date",
                                       tracker=self.name)
        priority = node.get("priority")
        label = node.get("priorityLabel") or PRIORITY_LABELS.get(
            int(priority) if priority is not None else 0)
        team = (node.get("team") or {}).get("key") or str(node["identifier"]).split("-")[0]
        if state.get("id") and state.get("name"):
            self.statuses.setdefault(str(state["id"]), (str(state["name"]),
                                                        STATE_CATEGORY.get(state_type, TODO)))
        cycle = node.get("cycle")
        extra = {
            "estimate": node.get("estimate"),
            "project": (node.get("project") or {}).get("name"),
            "cycle": ({"number": cycle.get("number"), "name": cycle.get("name")}
                      if cycle else None),
            "sla": {k: node.get(k) for k in ("slaType", "slaStartedAt", "slaMediumRiskAt",
                                             "slaHighRiskAt", "slaBreachesAt")},
            "started_at": node.get("startedAt"),
        }
        resolved = parse_time(node.get("completedAt")) or parse_time(node.get("canceledAt"))
        ticket = TicketRecord(
            issue_id=issue_id, key=str(node["identifier"]), project=team,
            url=str(node.get("url") or ""), title=str(node.get("title") or ""),
            description=str(node.get("description") or ""), issue_type=None,
            labels=tuple(str(x["name"]) for x in (node.get("labels") or {}).get("nodes") or []),
            components=(), parent_key=(node.get("parent") or {}).get("identifier"),
            tracker_priority=label, status=str(state.get("name") or ""),
            status_id=state.get("id"), status_category=STATE_CATEGORY.get(state_type, TODO),
            created_at=created, updated_at=updated,
            resolved_at=resolved if STATE_CATEGORY.get(state_type) == DONE else None,
            assignee_email=user_email(node.get("assignee")),
            assignee_name=(node.get("assignee") or {}).get("name"),
            reporter_email=user_email(node.get("creator")),
            estimate_hours=None,
            history_complete=not (history.get("pageInfo") or {}).get("hasNextPage"),
            worklogs_complete=True, worklog_total=0, status_type=state_type or None,
            extra=extra, comments=_comment_records((node.get("comments") or {}).get("nodes"))
            if self.comments else None)
        return ticket, transitions_from_history(issue_id, history.get("nodes") or [])

    def _walk(self, name: str, variables: dict[str, Any], *path: str, what: str,
              after: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """The nodes of a connection (at `path` in the answer), page by page, following its
        cursors from `after`; a cursor that repeats or a page that stalls is an error."""
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            data: Any = self._execute(name, {**variables, "after": after}, what=what)
            for key in path:
                data = data.get(key) or {}
            nodes = data.get("nodes") or []
            yield nodes
            info = data.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            cursor = info.get("endCursor")
            if not cursor or cursor in seen or not nodes:
                raise TrackerProtocolError(f"{what}: paging repeated or stalled",
                                           tracker=self.name)
            seen.add(cursor)
            after = cursor
        raise TrackerProtocolError(f"{what}: paging did not end", tracker=self.name)

    def _more_comments(self, issue_id: str, after: str | None) -> list[CommentRecord]:
        """The comments of an issue after the cursor (those that did not fit inline)."""
        return _comment_records(node for nodes in self._walk(
            "issue_comments", {"id": issue_id, "first": HISTORY_PAGE}, "issue", "comments",
            what=f"comments of issue {issue_id}", after=after) for node in nodes)

    def _issue_pages(self, project: str, since: datetime | None,
                     ids: list[str] | None = None) -> Iterator[list[dict]]:
        flt: dict[str, Any] = {"team": {"key": {"eq": project}}}
        if ids is not None:
            flt["id"] = {"in": ids}
        if since is not None:
            flt["updatedAt"] = {"gte": iso(since - self.overlap)}
        return self._walk("issues", {
            "first": self.page_size, "filter": flt,
            "historyFirst": self.history_size, "labelsFirst": self.labels_size,
            "commentsFirst": COMMENTS_INLINE, "withComments": self.comments,
        }, "issues", what=f"issues of {project}")

    def pull(self, project: str, since: datetime | None) -> Iterator[Page]:
        """Every issue of team `project` updated since `since` (minus the overlap); with
        comments on, also those commented since then (Linear does not document that a new
        comment moves the issue's updatedAt)."""
        # Issues with more comments than fit inline wait for the end of the walk: the
        # rest of their comments is read then, outside the prefetch thread's requests.
        held: list[tuple[TicketRecord, list[TransitionRecord], str | None]] = []
        seen: set[str] = set()
        for nodes in prefetch(self._issue_pages(project, since)):
            yield self._page(nodes, held, seen)
        if self.comments and since is not None:
            recent = sorted(self._recently_commented(project, since) - seen)
            for i in range(0, len(recent), self.page_size):
                for nodes in self._issue_pages(project, None, ids=recent[i:i + self.page_size]):
                    yield self._page(nodes, held, seen)
        if held:
            page = Page(worklogs={})
            for ticket, trans, after in held:
                ticket.comments = (ticket.comments or []) + self._more_comments(
                    ticket.issue_id, after)
                page.tickets.append(ticket)
                (page.transitions if ticket.history_complete
                 else page.partial_transitions)[ticket.issue_id] = trans
            yield page

    def _page(self, nodes: list[dict[str, Any]],
              held: list[tuple[TicketRecord, list[TransitionRecord], str | None]],
              seen: set[str]) -> Page:
        page = Page(worklogs={})
        for node in nodes:
            ticket, trans = self._ticket(node)
            seen.add(ticket.issue_id)
            info = (node.get("comments") or {}).get("pageInfo") or {}
            if self.comments and info.get("hasNextPage"):
                held.append((ticket, trans, info.get("endCursor")))
                continue
            page.tickets.append(ticket)
            (page.transitions if ticket.history_complete
             else page.partial_transitions)[ticket.issue_id] = trans
        return page

    def _recently_commented(self, project: str, since: datetime) -> set[str]:
        """Ids of the team's issues commented since `since` (minus the overlap)."""
        flt = {"createdAt": {"gte": iso(since - self.overlap)},
               "issue": {"team": {"key": {"eq": project}}}}
        return {str(n["issue"]["id"]) for nodes in self._walk(
            "recent_comments", {"first": HISTORY_PAGE, "filter": flt}, "comments",
            what=f"recent comments of {project}") for n in nodes if n.get("issue")}

    def complete_histories(self, issue_ids: Iterable[str]
                           ) -> Iterator[dict[str, list[TransitionRecord]]]:
        """The whole history of issues whose inline history was cut, 100 entries a call."""
        batch: dict[str, list[TransitionRecord]] = {}
        for issue_id in dict.fromkeys(issue_ids):
            nodes = [node for page in self._walk(
                "issue_history", {"id": issue_id, "first": HISTORY_PAGE}, "issue", "history",
                what=f"history of issue {issue_id}") for node in page]
            batch[issue_id] = transitions_from_history(issue_id, nodes)
            if len(batch) >= 50:
                yield batch
                batch = {}
        if batch:
            yield batch

    def complete_comments(self, ticket: TicketRecord) -> None:
        """Every comment of a ticket. `pull` already completes long threads itself, after
        the walk (this transport must not serve two threads), so sync never needs this."""
        ticket.comments = self._more_comments(ticket.issue_id, None)
        ticket.comments_complete = True

    def complete_worklogs(self, expected: dict[str, int], *,
                          known: Callable[[], dict[str, tuple[str, datetime | None]]]
                          | None = None, site_worklogs_hint: int = 0,
                          ) -> Iterator[dict[str, WorklogSet]]:
        """Linear has no worklogs: nothing is ever pending."""
        return iter(())

    def issue_ids(self, project: str) -> set[str]:
        flt = {"team": {"key": {"eq": project}}}
        return {str(n["id"]) for nodes in self._walk(
            "issue_ids", {"first": 250, "filter": flt}, "issues",
            what=f"issue ids of {project}") for n in nodes}
