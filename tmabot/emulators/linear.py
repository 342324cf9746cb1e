"""A Linear GraphQL emulator: real HTTP on loopback, executed by graphql-core.

Serves a `LinearDataset` through the part of Linear's schema tmabot uses
(`linear_schema.graphql`, checked field by field against the published schema in the
tests). Wire behaviour follows Linear: `POST /graphql`, `Authorization: <API key>` or
`Bearer <OAuth token>`, cursor connections with `pageInfo`, `issues(orderBy: updatedAt)`
newest first, archived issues hidden unless asked, HTTP 400 with
`extensions.code = "RATELIMITED"` and `x-ratelimit-*` headers (reset in epoch ms) once a
request or complexity budget is spent, and the complexity of each query in
`x-complexity`. Every request is logged; faults can be injected (see EmulatorServer).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import graphql
from graphql import GraphQLSchema

from tmabot.emulators.http import EmulatorServer, Request, Response

SCHEMA_FILE = Path(__file__).with_name("linear_schema.graphql")
PRIORITY_LABELS = {0: "No priority", 1: "Urgent", 2: "High", 3: "Medium", 4: "Low"}


@cache
def schema() -> GraphQLSchema:
    return graphql.build_ast_schema(graphql.parse(SCHEMA_FILE.read_text(encoding="utf-8")))


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- the dataset ------------------------------------------------------------------------


@dataclass
class LinearTeam:
    id: str
    key: str
    name: str


@dataclass
class LinearState:
    id: str
    name: str
    type: str  # triage | backlog | unstarted | started | completed | canceled | duplicate
    team_key: str
    position: float = 0.0


@dataclass
class LinearUser:
    id: str
    name: str
    email: str


@dataclass
class LinearHistory:
    id: str
    created_at: datetime
    actor_id: str | None = None
    from_state_id: str | None = None
    to_state_id: str | None = None


@dataclass
class LinearComment:
    id: str
    created_at: datetime
    user_id: str | None = None  # None: an integration or a bot wrote it
    body: str = ""


@dataclass
class LinearIssue:
    id: str
    identifier: str
    team_key: str
    title: str
    state_id: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    priority: int = 0
    estimate: float | None = None
    assignee_id: str | None = None
    creator_id: str | None = None
    labels: list[str] = field(default_factory=list)
    project: str | None = None
    cycle: tuple[int, str | None] | None = None
    parent_identifier: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    canceled_at: datetime | None = None
    archived_at: datetime | None = None
    sla_type: str | None = None
    sla_started_at: datetime | None = None
    sla_medium_risk_at: datetime | None = None
    sla_high_risk_at: datetime | None = None
    sla_breaches_at: datetime | None = None
    history: list[LinearHistory] = field(default_factory=list)
    comments: list[LinearComment] = field(default_factory=list)


@dataclass
class LinearDataset:
    org_name: str = "Agence"
    url_key: str = "agence"
    teams: list[LinearTeam] = field(default_factory=list)
    states: list[LinearState] = field(default_factory=list)
    users: list[LinearUser] = field(default_factory=list)
    issues: list[LinearIssue] = field(default_factory=list)

    def state(self, state_id: str) -> LinearState:
        for s in self.states:
            if s.id == state_id:
                return s
        raise KeyError(state_id)

    def user(self, user_id: str | None) -> LinearUser | None:
        return next((u for u in self.users if u.id == user_id), None)

    def issue(self, ref: str) -> LinearIssue:
        for i in self.issues:
            if ref in (i.id, i.identifier):
                return i
        raise KeyError(ref)

    def comment(self, ref: str, user_id: str | None, at: datetime, body: str = ""
                ) -> LinearComment:
        """A comment on an issue. The issue's updatedAt stays: Linear does not document that
        a comment moves it, so tmabot must not rely on it (it asks for recent comments)."""
        issue = self.issue(ref)
        entry = LinearComment(f"{issue.id}-c{len(issue.comments) + 1}", at, user_id, body)
        issue.comments.append(entry)
        return entry

    def move(self, ref: str, to_state_id: str, at: datetime, actor_id: str | None = None,
             ) -> LinearIssue:
        """Change an issue's state as Linear would: a history entry, updatedAt, dates."""
        issue = self.issue(ref)
        entry = LinearHistory(f"{issue.id}-h{len(issue.history) + 1}", at, actor_id,
                              issue.state_id, to_state_id)
        issue.history.append(entry)
        issue.state_id = to_state_id
        issue.updated_at = at
        kind = self.state(to_state_id).type
        if kind == "started" and issue.started_at is None:
            issue.started_at = at
        issue.completed_at = at if kind == "completed" else None
        issue.canceled_at = at if kind in ("canceled", "duplicate") else None
        return issue


# -- paging ------------------------------------------------------------------------------


def _cursor(key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode("|".join(map(str, key)).encode()).decode()


def _uncursor(text: str) -> tuple[str, ...]:
    try:
        return tuple(base64.urlsafe_b64decode(text.encode()).decode().split("|"))
    except (ValueError, UnicodeDecodeError):
        raise graphql.GraphQLError("Invalid cursor", extensions={"code": "INVALID_INPUT"},
                                   ) from None


def _connection(items: list[Any], keys: list[tuple[Any, ...]], first: int | None,
                after: str | None, render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """A forward page after the cursor, the items in the order of their keys (as text, which
    is how a cursor compares)."""
    size = 50 if first is None else first
    if size < 0 or size > 250:
        raise graphql.GraphQLError("first must be between 0 and 250",
                                   extensions={"code": "INVALID_INPUT"})
    text_keys = [tuple(map(str, k)) for k in keys]
    order = sorted(range(len(items)), key=text_keys.__getitem__)
    items, keys = [items[i] for i in order], [keys[i] for i in order]
    text_keys = [text_keys[i] for i in order]
    start = 0
    if after:
        mark = _uncursor(after)
        start = next((i for i, k in enumerate(text_keys) if k > mark), len(items))
    chunk = items[start:start + size]
    end_key = keys[start + len(chunk) - 1] if chunk else None
    return {
        "nodes": [render(x) for x in chunk],
        "pageInfo": {"hasNextPage": start + size < len(items), "hasPreviousPage": start > 0,
                     "startCursor": _cursor(keys[start]) if chunk else None,
                     "endCursor": _cursor(end_key) if end_key else None},
    }


def _desc(value: datetime) -> str:
    """A string that sorts newest first (for keys compared as text)."""
    return f"{10**15 - int(value.timestamp() * 1000):016d}"


# -- complexity ----------------------------------------------------------------------------


def complexity(document: graphql.DocumentNode, variables: dict[str, Any]) -> float:
    """Linear's cost model: 0.1 per scalar, 1 per object, connections × `first` (50)."""
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, graphql.FragmentDefinitionNode)}

    def arg(node: graphql.FieldNode, name: str) -> Any:
        for a in node.arguments or ():
            if a.name.value == name:
                if isinstance(a.value, graphql.VariableNode):
                    return variables.get(a.value.name.value)
                return graphql.value_from_ast_untyped(a.value, variables)
        return None

    def included(node: graphql.SelectionNode) -> bool:
        for d in node.directives or ():
            if d.name.value in ("include", "skip"):
                value = graphql.value_from_ast_untyped(d.arguments[0].value, variables)
                if bool(value) != (d.name.value == "include"):
                    return False
        return True

    def cost(selection_set: graphql.SelectionSetNode | None) -> float:
        total = 0.0
        for sel in selection_set.selections if selection_set else ():
            if not included(sel):
                continue
            if isinstance(sel, graphql.FragmentSpreadNode):
                total += cost(fragments[sel.name.value].selection_set)
            elif isinstance(sel, graphql.InlineFragmentNode):
                total += cost(sel.selection_set)
            elif isinstance(sel, graphql.FieldNode):
                if sel.selection_set is None:
                    total += 0.1
                elif any(s.name.value == "nodes" for s in sel.selection_set.selections
                         if isinstance(s, graphql.FieldNode)):
                    first = arg(sel, "first")
                    inner = 0.0
                    for s in sel.selection_set.selections:
                        if isinstance(s, graphql.FieldNode) and s.name.value == "nodes":
                            inner += cost(s.selection_set)
                        elif isinstance(s, graphql.FieldNode):
                            inner += 1 + cost(s.selection_set) if s.selection_set else 0.1
                    total += (50 if first is None else int(first)) * max(inner, 1.0)
                else:
                    total += 1 + cost(sel.selection_set)
        return total

    ops = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    return sum(cost(op.selection_set) for op in ops)


# -- the server ------------------------------------------------------------------------------


class LinearEmulator(EmulatorServer):
    """Linear's GraphQL API over a LinearDataset (see the module docstring).

    `requests_per_window` / `complexity_per_window` are the rate-limit budgets of a
    window of `window_seconds`; `clock` replaces the wall clock (epoch seconds).
    """

    def __init__(self, dataset: LinearDataset, *, api_key: str = "lin_api_test",
                 oauth_token: str | None = None, requests_per_window: int = 5000,
                 complexity_per_window: float = 3_000_000, window_seconds: float = 3600.0,
                 url: str = "https://linear.app", clock: Callable[[], float] = time.time,
                 host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.dataset = dataset
        self._api_key = api_key
        self._oauth = oauth_token
        self.requests_per_window = requests_per_window
        self.complexity_per_window = complexity_per_window
        self.window_seconds = window_seconds
        self.site_url = url.rstrip("/")
        self.clock = clock
        self.max_complexity_seen = 0.0
        self._budget_lock = threading.Lock()
        self._window_start = clock()
        self._requests_used = 0
        self._complexity_used = 0.0
        self.add_route("POST", r"/graphql", self._graphql)

    @property
    def endpoint(self) -> str:
        return f"{self.url}/graphql"

    def reset_budget(self) -> None:
        """Start a fresh rate-limit window (as if an hour had passed)."""
        with self._budget_lock:
            self._window_start = self.clock()
            self._requests_used, self._complexity_used = 0, 0.0

    # -- answers ---------------------------------------------------------------------
    def error_response(self, status: int, message: str) -> Response:
        return Response.json({"errors": [{"message": message,
                                          "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]},
                             status)

    def authenticate(self, request: Request) -> Response | None:
        given = request.headers.get("authorization", "")
        if given == self._api_key or (self._oauth and given == f"Bearer {self._oauth}"):
            return None
        return Response.json({"errors": [{
            "message": "Authentication required, not authenticated",
            "extensions": {"type": "authentication error", "code": "AUTHENTICATION_ERROR",
                           "statusCode": 401,
                           "userPresentableMessage": "You need to authenticate to access "
                                                     "this operation."}}]}, 400)

    def _rate_headers(self, reset_ms: int) -> dict[str, str]:
        return {
            "x-ratelimit-requests-limit": str(self.requests_per_window),
            "x-ratelimit-requests-remaining": str(max(0, self.requests_per_window
                                                      - self._requests_used)),
            "x-ratelimit-requests-reset": str(reset_ms),
            "x-ratelimit-complexity-limit": str(int(self.complexity_per_window)),
            "x-ratelimit-complexity-remaining": str(max(0, int(self.complexity_per_window
                                                               - self._complexity_used))),
            "x-ratelimit-complexity-reset": str(reset_ms),
        }

    def _graphql(self, request: Request) -> Response:
        try:
            body = request.json() or {}
            source = str(body["query"])
        except (ValueError, KeyError, TypeError):
            return Response.json({"errors": [{"message": "Must provide query string.",
                                              "extensions": {"code": "BAD_USER_INPUT"}}]}, 400)
        variables = body.get("variables") or {}
        try:
            document = graphql.parse(source)
        except graphql.GraphQLError as exc:
            return Response.json({"errors": [exc.formatted]}, 400)
        errors = graphql.validate(schema(), document)
        if errors:
            return Response.json({"errors": [e.formatted for e in errors]}, 400)
        cost = complexity(document, variables)
        now = self.clock()
        with self._budget_lock:
            if now - self._window_start >= self.window_seconds:
                self._window_start, self._requests_used, self._complexity_used = now, 0, 0.0
            reset_ms = int((self._window_start + self.window_seconds) * 1000)
            if (self._requests_used + 1 > self.requests_per_window
                    or self._complexity_used + cost > self.complexity_per_window):
                headers = self._rate_headers(reset_ms)
                return Response.json({"errors": [{
                    "message": "Rate limit exceeded",
                    "extensions": {"code": "RATELIMITED", "type": "ratelimited",
                                   "userPresentableMessage": "Too many requests."}}]},
                    400, headers)
            self._requests_used += 1
            self._complexity_used += cost
            self.max_complexity_seen = max(self.max_complexity_seen, cost)
            headers = self._rate_headers(reset_ms)
        headers["x-complexity"] = str(int(cost))
        result = graphql.execute(schema(), document, root_value=self._root(),
                                 variable_values=variables,
                                 operation_name=body.get("operationName"))
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        return Response.json(out, 200, headers)

    # -- resolvers --------------------------------------------------------------------
    def _root(self) -> dict[str, Any]:
        ds = self.dataset
        users = {u.id: u for u in ds.users}
        states = {s.id: s for s in ds.states}
        teams = {t.key: t for t in ds.teams}

        def user(u: LinearUser | None) -> dict[str, Any] | None:
            if u is None:
                return None
            return {"id": u.id, "name": u.name, "displayName": u.name.split()[0],
                    "email": u.email, "active": True}

        def team(key: str) -> dict[str, Any]:
            t = teams.get(key) or LinearTeam(f"team-{key}", key, key)
            return {"id": t.id, "key": t.key, "name": t.name}

        def state(state_id: str | None) -> dict[str, Any] | None:
            s = states.get(state_id or "")
            if s is None:
                return None
            return {"id": s.id, "name": s.name, "type": s.type, "position": s.position,
                    "team": lambda _info: team(s.team_key)}

        def history_node(h: LinearHistory) -> dict[str, Any]:
            return {"id": h.id, "createdAt": _iso(h.created_at), "updatedAt": _iso(h.created_at),
                    "actor": user(users.get(h.actor_id or "")),
                    "fromState": state(h.from_state_id), "toState": state(h.to_state_id),
                    "fromStateId": h.from_state_id, "toStateId": h.to_state_id}

        owner = {c.id: i for i in ds.issues for c in i.comments}

        def comment_node(c: LinearComment) -> dict[str, Any]:
            return {"id": c.id, "body": c.body, "createdAt": _iso(c.created_at),
                    "updatedAt": _iso(c.created_at), "user": user(users.get(c.user_id or "")),
                    "issue": lambda _info: issue_node(owner[c.id])}

        def comments_(_info: Any, first: int | None = None, after: str | None = None,
                      filter: dict[str, Any] | None = None,  # noqa: A002 - GraphQL's name
                      **_: Any) -> dict[str, Any]:
            flt = filter or {}
            issue_flt = flt.get("issue") or {}
            chosen = [c for i in ds.issues if i.archived_at is None
                      and _match_issue(i, issue_flt) for c in i.comments
                      if _match_dates({"createdAt": c.created_at}, flt)]
            keyed = sorted(((_desc(c.created_at), c.id), c) for c in chosen)
            return _connection([c for _k, c in keyed], [k for k, _c in keyed], first, after,
                               comment_node)

        def issue_node(i: LinearIssue) -> dict[str, Any]:
            def labels(_info: Any, first: int | None = None, after: str | None = None,
                       **_: Any) -> dict[str, Any]:
                names = sorted(i.labels)
                return _connection(names, [(n,) for n in names], first, after,
                                   lambda n: {"id": f"label-{n}", "name": n})

            def history(_info: Any, first: int | None = None, after: str | None = None,
                        **_: Any) -> dict[str, Any]:
                keyed = sorted(((_desc(h.created_at), h.id), h) for h in i.history)
                return _connection([h for _k, h in keyed], [k for k, _h in keyed], first,
                                   after, history_node)

            def comments(_info: Any, first: int | None = None, after: str | None = None,
                         **_: Any) -> dict[str, Any]:
                keyed = sorted(((_desc(c.created_at), c.id), c) for c in i.comments)
                return _connection([c for _k, c in keyed], [k for k, _c in keyed], first,
                                   after, comment_node)

            parent = (next((p for p in ds.issues if p.identifier == i.parent_identifier), None)
                      if i.parent_identifier else None)
            return {
                "id": i.id, "identifier": i.identifier, "title": i.title,
                "description": i.description,
                "url": f"{self.site_url}/{ds.url_key}/issue/{i.identifier}",
                "priority": float(i.priority), "priorityLabel": PRIORITY_LABELS[i.priority],
                "estimate": i.estimate, "createdAt": _iso(i.created_at),
                "updatedAt": _iso(i.updated_at), "startedAt": _iso(i.started_at),
                "completedAt": _iso(i.completed_at), "canceledAt": _iso(i.canceled_at),
                "archivedAt": _iso(i.archived_at), "slaType": i.sla_type,
                "slaStartedAt": _iso(i.sla_started_at),
                "slaMediumRiskAt": _iso(i.sla_medium_risk_at),
                "slaHighRiskAt": _iso(i.sla_high_risk_at),
                "slaBreachesAt": _iso(i.sla_breaches_at),
                "state": state(i.state_id), "team": team(i.team_key),
                "project": {"id": f"project-{i.project}", "name": i.project} if i.project
                else None,
                "cycle": {"id": f"cycle-{i.cycle[0]}", "number": float(i.cycle[0]),
                          "name": i.cycle[1]} if i.cycle else None,
                "parent": issue_node(parent) if parent is not None else None,
                "assignee": user(users.get(i.assignee_id or "")),
                "creator": user(users.get(i.creator_id or "")),
                "labels": labels, "history": history, "comments": comments,
            }

        def issues(_info: Any, first: int | None = None, after: str | None = None,
                   filter: dict[str, Any] | None = None,  # noqa: A002 - GraphQL's name
                   includeArchived: bool | None = None,  # noqa: N803 - GraphQL's name
                   orderBy: str | None = None, **_: Any) -> dict[str, Any]:  # noqa: N803
            flt = filter or {}
            chosen = [i for i in ds.issues if (includeArchived or i.archived_at is None)
                      and _match_issue(i, flt)]
            by = "updatedAt" if orderBy == "updatedAt" else "createdAt"
            stamp = (lambda i: i.updated_at) if by == "updatedAt" else (lambda i: i.created_at)
            keyed = sorted(((_desc(stamp(i)), i.id), i) for i in chosen)  # newest first
            return _connection([i for _k, i in keyed], [k for k, _i in keyed], first, after,
                               issue_node)

        def issue(_info: Any, id: str) -> dict[str, Any]:  # noqa: A002 - GraphQL's name
            try:
                return issue_node(ds.issue(id))
            except KeyError:
                raise graphql.GraphQLError("Entity not found: Issue",
                                           extensions={"code": "INVALID_INPUT"}) from None

        def teams_(_info: Any, first: int | None = None, after: str | None = None,
                   filter: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:  # noqa: A002
            wanted = ((filter or {}).get("key") or {}).get("eq")
            chosen = [t for t in ds.teams if wanted is None or t.key == wanted]
            return _connection(chosen, [(t.id,) for t in chosen], first, after,
                               lambda t: team(t.key))

        def workflow_states(_info: Any, first: int | None = None, after: str | None = None,
                            **_: Any) -> dict[str, Any]:
            return _connection(ds.states, [(s.id,) for s in ds.states], first, after,
                               lambda s: state(s.id))

        viewer = ds.users[0] if ds.users else LinearUser("user-bot", "Bot", "bot@example.com")
        return {
            "viewer": user(viewer),
            "organization": {"id": "org-1", "name": ds.org_name, "urlKey": ds.url_key},
            "issues": issues, "issue": issue, "teams": teams_, "comments": comments_,
            "team": lambda _info, id: team(id),  # noqa: A002
            "workflowStates": workflow_states,
        }


def _match_issue(issue: LinearIssue, flt: dict[str, Any]) -> bool:
    key = ((flt.get("team") or {}).get("key") or {})
    if "eq" in key and issue.team_key != key["eq"]:
        return False
    if "in" in key and issue.team_key not in key["in"]:
        return False
    ids = flt.get("id") or {}
    if "eq" in ids and issue.id != ids["eq"]:
        return False
    if "in" in ids and issue.id not in ids["in"]:
        return False
    return _match_dates({"updatedAt": issue.updated_at, "createdAt": issue.created_at}, flt)


def _match_dates(stamps: dict[str, datetime], flt: dict[str, Any]) -> bool:
    """DateComparator filters (gte, gt, lte, lt, eq) on the named instants."""
    for name, stamp in stamps.items():
        cmp = flt.get(name) or {}
        for op, value in cmp.items():
            bound = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            ok = {"gte": stamp >= bound, "gt": stamp > bound, "lte": stamp <= bound,
                  "lt": stamp < bound, "eq": stamp == bound}.get(op, True)
            if not ok:
                return False
    return True
