"""A Jira Cloud / Data Center REST emulator serving a JiraDataset on loopback."""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import hmac
import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Self

from tmabot.emulators.dataset import JiraDataset, JiraHistory, JiraIssue, JiraWorklog
from tmabot.emulators.http import EmulatorServer, RawJSON, Request, Response, compose_json
from tmabot.emulators.jira_jql import JqlError, JqlQuery, parse_jql
from tmabot.emulators.jira_pages import (
    BadToken,
    PagePrefetcher,
    decode_bulk_token,
    decode_search_token,
    encode_bulk_token,
    encode_search_token,
)
from tmabot.emulators.jira_render import (
    ISSUE_FIELDS,
    JiraRenderer,
    comment_order,
    epoch_ms,
    field_details,
    ids_only,
    resolve_fields,
    sla_field_details,
)

Flavour = Literal["cloud", "server"]

NOT_AUTHENTICATED = "Client must be authenticated to access this resource."
ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
SEARCH_GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
UNBOUNDED_JQL = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)

_SNAPSHOTS_KEPT = 64  # search results kept for paging; older tokens re-run their JQL


def jira_error(status: int, *messages: str) -> Response:
    """Jira's error body: {"errorMessages": [...], "errors": {}}."""
    return Response.json({"errorMessages": list(messages), "errors": {}}, status)


class BadRequest(ValueError):
    """Raised by parameter readers; becomes a 400 with Jira's error shape."""


@dataclass
class _Snapshot:
    query_hash: str
    issues: list[JiraIssue]
    stamp: tuple[int, int]


@dataclass
class _WorklogIndex:
    stamp: tuple[int, int, int]
    by_id: dict[str, JiraWorklog]
    updated: list[tuple[int, int]]  # (updated epoch ms, worklog id), sorted
    deleted: list[tuple[int, int]]


class JiraEmulator(EmulatorServer):
    """Jira's REST API over a JiraDataset: Cloud (v2 + v3) or Data Center (v2).

    Knobs mirror the limits of real sites: page caps for search, the inline
    changelog/worklog caps, and whether changelog bulkfetch dates are epoch ms.
    `clock` replaces the wall clock (serverTime, the worklog feed's last minute).
    `prefetch` renders the next search page while the client digests the current one.

    Edit the dataset through its methods (or call `dataset.touch()` after editing
    objects directly) so that cached indexes and pages rendered ahead are refreshed.
    """

    def __init__(
        self, dataset: JiraDataset, *, flavour: Flavour = "cloud",
        email: str = "bot@agency.example", token: str = "secret-token",
        max_results_cap: int = 100, id_only_cap: int = 5000,
        inline_changelog_cap: int = 40, inline_worklog_cap: int = 20,
        inline_comment_cap: int = 50, comment_page_cap: int = 100,
        bulkfetch_epoch_ms: bool = False, changelog_page_cap: int = 100,
        worklog_page_cap: int = 5000, worklog_feed_page: int = 1000,
        worklog_feed_lag_seconds: float = 60.0,
        prefetch: bool = True,
        clock: Callable[[], datetime] | None = None, host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host)
        if flavour not in ("cloud", "server"):
            raise ValueError(f"flavour must be 'cloud' or 'server', not {flavour!r}")
        self.dataset = dataset
        self.flavour: Flavour = flavour
        self.email = email
        self._token = token
        self.max_results_cap = max_results_cap
        self.id_only_cap = id_only_cap
        self.bulkfetch_epoch_ms = bulkfetch_epoch_ms
        self.changelog_page_cap = changelog_page_cap
        self.worklog_page_cap = worklog_page_cap
        self.comment_page_cap = comment_page_cap
        self.worklog_feed_page = worklog_feed_page
        self.worklog_feed_lag_seconds = worklog_feed_lag_seconds
        self.clock = clock or (lambda: datetime.now(UTC))
        self.renderer = JiraRenderer(
            dataset, cloud=self.cloud, inline_changelog_cap=inline_changelog_cap,
            inline_worklog_cap=inline_worklog_cap, inline_comment_cap=inline_comment_cap,
        )
        self._snapshots: OrderedDict[str, _Snapshot] = OrderedDict()
        self._snapshot_ids = itertools.count(1)
        self._state_lock = threading.Lock()
        self._worklog_index: _WorklogIndex | None = None
        self._pages = PagePrefetcher(self._stamp, enabled=prefetch)
        self._register_routes()

    @property
    def cloud(self) -> bool:
        return self.flavour == "cloud"

    @property
    def inline_changelog_cap(self) -> int:
        return self.renderer.inline_changelog_cap

    @inline_changelog_cap.setter
    def inline_changelog_cap(self, value: int) -> None:
        self.renderer.inline_changelog_cap = value

    @property
    def inline_worklog_cap(self) -> int:
        return self.renderer.inline_worklog_cap

    @inline_worklog_cap.setter
    def inline_worklog_cap(self, value: int) -> None:
        self.renderer.inline_worklog_cap = value

    def start(self) -> Self:
        super().start()
        self.renderer.base_url = self.url
        return self

    # -- plumbing ------------------------------------------------------------
    def _register_routes(self) -> None:
        api = r"/rest/api/(?P<v>[23])" if self.cloud else r"/rest/api/(?P<v>2)"
        issue = api + r"/issue/(?P<key>[^/]+)"
        routes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("GET", api + "/serverInfo", self._server_info),
            ("GET", api + "/myself", self._myself),
            ("GET", api + "/status", self._statuses),
            ("GET", api + "/priority", self._priorities),
            ("GET", api + r"/project/(?P<key>[^/]+)", self._project),
            ("GET", api + "/field", self._fields),
            ("GET", api + "/search", self._search_legacy),
            ("POST", api + "/search", self._search_legacy),
            ("GET", issue, self._issue),
            ("GET", issue + "/worklog", self._issue_worklogs),
            ("GET", issue + "/comment", self._issue_comments),
        ]
        if self.cloud:
            routes += [
                ("GET", api + "/search/jql", self._search_jql),
                ("POST", api + "/search/jql", self._search_jql),
                ("POST", api + "/changelog/bulkfetch", self._changelog_bulkfetch),
                ("GET", issue + "/changelog", self._issue_changelog),
                ("GET", api + "/worklog/updated", self._worklogs_updated),
                ("GET", api + "/worklog/deleted", self._worklogs_deleted),
                ("POST", api + "/worklog/list", self._worklog_list),
            ]
        for method, pattern, handler in routes:
            self.add_route(method, pattern, self._guarded(handler))

    def _guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            self.renderer.refresh()
            try:
                return handler(request)
            except (BadRequest, BadToken) as exc:
                return jira_error(400, str(exc))
            except JqlError as exc:
                return jira_error(400, exc.message)
        return run

    def error_response(self, status: int, message: str) -> Response:
        return jira_error(status, message)

    def authenticate(self, request: Request) -> Response | None:
        if request.path.endswith("/serverInfo"):
            return None  # anonymous on real sites too; the jira library calls it first
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, secret = base64.b64decode(credential).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, secret = "", ""
            if hmac.compare_digest(user.encode(), self.email.encode()) and hmac.compare_digest(
                    secret.encode(), self._token.encode()):
                return None
        elif scheme.lower() == "bearer" and not self.cloud:
            # Data Center personal access tokens; Cloud API tokens only work with basic auth.
            if hmac.compare_digest(credential.strip().encode(), self._token.encode()):
                return None
        return jira_error(401, NOT_AUTHENTICATED)

    @staticmethod
    def _version(request: Request) -> int:
        assert request.match is not None
        return int(request.match.group("v"))

    def _now(self) -> datetime:
        return self.clock()

    def _find_issue(self, request: Request) -> JiraIssue | None:
        assert request.match is not None
        return self.dataset.issue(request.match.group("key"))

    # -- site metadata -------------------------------------------------------
    def _server_info(self, request: Request) -> Response:
        now = self.renderer.date(self._now())
        if self.cloud:
            version, numbers, deployment, build = "1001.0.0-SNAPSHOT", [1001, 0, 0], "Cloud", 100292
        else:
            version, numbers, deployment, build = "9.12.0", [9, 12, 0], "Server", 9120000
        return Response.json({
            "baseUrl": self.url, "displayUrl": self.url, "version": version,
            "versionNumbers": numbers, "deploymentType": deployment, "buildNumber": build,
            "buildDate": "2026-01-05T00:00:00.000+0000", "serverTime": now,
            "scmInfo": "tmabot-emulator", "serverTitle": "Jira",
        })

    def _myself(self, request: Request) -> Response:
        ds = self.dataset
        me = next((u for u in ds.users if u.email == self.email), None)
        account_id = me.account_id if me else "712020:tmabot-bot"
        name = me.name if me else "tmabot"
        display = me.display_name if me else "TMA Bot"
        out: dict[str, Any] = {"self": f"{self.url}/rest/api/{self._version(request)}/myself"}
        if self.cloud:
            out.update(accountId=account_id, accountType="atlassian")
        else:
            out.update(name=name, key=account_id)
        out.update(emailAddress=self.email, displayName=display, active=True,
                   timeZone=ds.user_time_zone, locale="en_US")
        return Response.json(out)

    def _statuses(self, request: Request) -> Response:
        return Response.json([self.renderer.status_details(s) for s in self.dataset.statuses])

    def _priorities(self, request: Request) -> Response:
        out = []
        for name in self.dataset.priorities:
            item = self.renderer.priority(name)
            out.append({"self": f"{self.url}/rest/api/2/priority/{item['id']}",
                        "statusColor": "#ff0000", "description": name,
                        "iconUrl": f"{self.url}/images/icons/priorities/{name.lower()}.svg",
                        **item, "isDefault": name == "Medium"})
        return Response.json(out)

    def _project(self, request: Request) -> Response:
        assert request.match is not None
        wanted = request.match.group("key")
        for p in self.dataset.projects:
            if p.id == wanted or p.key.upper() == wanted.upper():
                return Response.json({
                    "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
                    "self": f"{self.url}/rest/api/{self._version(request)}/project/{p.id}",
                    "id": p.id, "key": p.key, "name": p.name, "projectTypeKey": "software",
                    "simplified": False, "style": "classic", "isPrivate": False,
                    "properties": {},
                })
        return jira_error(404, f"No project could be found with key '{wanted}'.")

    def _fields(self, request: Request) -> Response:
        return Response.json([field_details(name) for name in ISSUE_FIELDS]
                             + [sla_field_details(fid, name)
                                for fid, name in self.dataset.sla_fields.items()])

    # -- search --------------------------------------------------------------
    def _parse_query(self, jql: str) -> JqlQuery:
        return parse_jql(jql, time_zone=self.dataset.user_time_zone,
                         resolve_project=self._resolve_project)

    def _resolve_project(self, value: str) -> str | None:
        for p in self.dataset.projects:
            if value.upper() == p.key.upper() or value == p.id or value.lower() == p.name.lower():
                return p.key
        return None

    def _run_query(self, query: JqlQuery) -> list[JiraIssue]:
        with self.dataset.lock:
            return query.run(self.dataset.issues)

    def _stamp(self) -> tuple[int, int]:
        return (self.dataset.revision, len(self.dataset.issues))

    def _keep_snapshot(self, snapshot: _Snapshot) -> str:
        with self._state_lock:
            snap_id = str(next(self._snapshot_ids))
            self._snapshots[snap_id] = snapshot
            while len(self._snapshots) > _SNAPSHOTS_KEPT:
                self._snapshots.popitem(last=False)
            return snap_id

    def _snapshot(self, snap_id: str) -> _Snapshot | None:
        with self._state_lock:
            snapshot = self._snapshots.get(snap_id)
            if snapshot is not None:
                self._snapshots.move_to_end(snap_id)
            return snapshot

    def _search_args(self, request: Request) -> dict[str, Any]:
        """GET parameters or POST body, normalized: fields as a list or None."""
        if request.method == "POST":
            try:
                body = request.json() or {}
            except ValueError:
                raise BadRequest("Invalid request payload. Refer to the REST API documentation "
                                 "and try again.") from None
            if not isinstance(body, dict):
                raise BadRequest("Invalid request payload.")
            fields = body.get("fields")
            if isinstance(fields, str):
                fields = [fields]
            if fields is not None and not (
                    isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
                raise BadRequest("fields must be a list of field names.")
            expand = body.get("expand")
            if isinstance(expand, list):
                expand = ",".join(expand)
            return {"jql": body.get("jql") or "", "token": body.get("nextPageToken"),
                    "maxResults": body.get("maxResults"), "startAt": body.get("startAt"),
                    "fields": fields, "expand": expand or ""}
        return {"jql": request.param("jql", "") or "", "token": request.param("nextPageToken"),
                "maxResults": request.param("maxResults"), "startAt": request.param("startAt"),
                "fields": request.params("fields") or None,
                "expand": ",".join(request.params("expand"))}

    def _search_jql(self, request: Request) -> Response:
        version = self._version(request)
        args = self._search_args(request)
        jql: str = args["jql"]
        query = self._parse_query(jql)
        if not query.bounded:
            raise BadRequest(UNBOUNDED_JQL)
        changelog = "changelog" in {e.strip() for e in args["expand"].split(",")}
        cap = self.id_only_cap if ids_only(args["fields"]) and not changelog \
            else self.max_results_cap
        size = max(1, min(_int_arg(args["maxResults"], 50, "maxResults"), cap))
        fields = resolve_fields(args["fields"], "id", tuple(self.dataset.sla_fields))
        query_hash = hashlib.sha1(jql.strip().encode()).hexdigest()[:16]

        token = args["token"]
        snapshot: _Snapshot | None = None
        if token:
            snap_id, offset = decode_search_token(token, query_hash)
            snapshot = self._snapshot(snap_id)
        else:
            offset = 0
        if snapshot is None:  # a new search, or one evicted since: Jira re-runs it too
            snapshot = _Snapshot(query_hash, self._run_query(query), self._stamp())
            snap_id = self._keep_snapshot(snapshot)

        def render(start: int) -> bytes:
            page = snapshot.issues[start:start + size]
            with self.dataset.lock:
                issues = [RawJSON(self.renderer.issue_json(i, fields, version,
                                                           changelog=changelog))
                          for i in page]
            out: dict[str, Any] = {"issues": issues}
            end = start + len(page)
            if end < len(snapshot.issues):
                out["nextPageToken"] = encode_search_token(snap_id, end, query_hash)
            out["isLast"] = end >= len(snapshot.issues)
            return compose_json(out).encode("utf-8")

        page_key = ("jql", snap_id, size, fields, changelog, version)
        body = self._pages.serve((*page_key, offset), lambda: render(offset))
        if offset + size < len(snapshot.issues):
            self._pages.prefetch((*page_key, offset + size), lambda: render(offset + size))
        return Response(200, body)

    def _search_legacy(self, request: Request) -> Response:
        if self.cloud:
            return jira_error(410, SEARCH_GONE)
        args = self._search_args(request)
        jql: str = args["jql"]
        query = self._parse_query(jql)
        start = _int_arg(args["startAt"], 0, "startAt")
        if start < 0:
            raise BadRequest("startAt must be 0 or more.")
        size = max(1, min(_int_arg(args["maxResults"], 50, "maxResults"),
                          self.max_results_cap))
        fields = resolve_fields(args["fields"], "*navigable", tuple(self.dataset.sla_fields))
        changelog = "changelog" in {e.strip() for e in args["expand"].split(",")}
        # Page 1 runs the query; later pages reuse it while the dataset is unchanged,
        # so paging 20k issues is not quadratic.
        key = "dc:" + jql.strip()
        snapshot = self._snapshot(key) if start > 0 else None
        if snapshot is None or snapshot.stamp != self._stamp():
            snapshot = _Snapshot(key, self._run_query(query), self._stamp())
            with self._state_lock:
                self._snapshots[key] = snapshot
                while len(self._snapshots) > _SNAPSHOTS_KEPT:
                    self._snapshots.popitem(last=False)

        def render(offset: int) -> bytes:
            page = snapshot.issues[offset:offset + size]
            with self.dataset.lock:
                issues = [RawJSON(self.renderer.issue_json(i, fields, 2, changelog=changelog))
                          for i in page]
            return compose_json({"expand": "schema,names", "startAt": offset,
                                 "maxResults": size, "total": len(snapshot.issues),
                                 "issues": issues}).encode("utf-8")

        page_key = ("dc", id(snapshot), size, fields, changelog)
        body = self._pages.serve((*page_key, start), lambda: render(start))
        if start + size < len(snapshot.issues):
            self._pages.prefetch((*page_key, start + size), lambda: render(start + size))
        return Response(200, body)

    # -- one issue -----------------------------------------------------------
    def _issue(self, request: Request) -> Response:
        issue = self._find_issue(request)
        if issue is None:
            return jira_error(404, ISSUE_NOT_FOUND)
        fields = resolve_fields(request.params("fields") or None, "*all",
                                tuple(self.dataset.sla_fields))
        expand = {e.strip() for v in request.params("expand") for e in v.split(",")}
        with self.dataset.lock:
            # A single issue's changelog is complete: Data Center clients rely on it.
            return Response.composed(RawJSON(self.renderer.issue_json(
                issue, fields, self._version(request), changelog="changelog" in expand,
                complete_changelog=True)))

    def _issue_changelog(self, request: Request) -> Response:
        issue = self._find_issue(request)
        if issue is None:
            return jira_error(404, ISSUE_NOT_FOUND)
        version = self._version(request)
        start = max(0, _int_arg(request.param("startAt"), 0, "startAt"))
        size = max(1, min(_int_arg(request.param("maxResults"), self.changelog_page_cap,
                                   "maxResults"), self.changelog_page_cap))
        with self.dataset.lock:
            histories = list(issue.histories)
            values = [RawJSON(self.renderer.history_json(h, version))
                      for h in histories[start:start + size]]
        total = len(histories)
        base = f"{self.url}/rest/api/{version}/issue/{issue.key}/changelog"
        out: dict[str, Any] = {"self": f"{base}?maxResults={size}&startAt={start}",
                               "maxResults": size, "startAt": start, "total": total,
                               "isLast": start + len(values) >= total, "values": values}
        if not out["isLast"]:
            out["nextPage"] = f"{base}?maxResults={size}&startAt={start + len(values)}"
        return Response.composed(out)

    def _issue_worklogs(self, request: Request) -> Response:
        issue = self._find_issue(request)
        if issue is None:
            return jira_error(404, ISSUE_NOT_FOUND)
        version = self._version(request)
        start = max(0, _int_arg(request.param("startAt"), 0, "startAt"))
        size = max(1, min(_int_arg(request.param("maxResults"), self.worklog_page_cap,
                                   "maxResults"), self.worklog_page_cap))
        after = request.param("startedAfter")
        before = request.param("startedBefore")
        with self.dataset.lock:
            worklogs = list(issue.worklogs)
            if after is not None:
                after_ms = _int_arg(after, 0, "startedAfter")
                worklogs = [w for w in worklogs if epoch_ms(w.started) >= after_ms]
            if before is not None:
                before_ms = _int_arg(before, 0, "startedBefore")
                worklogs = [w for w in worklogs if epoch_ms(w.started) < before_ms]
            page = [RawJSON(self.renderer.worklog_json(w, version))
                    for w in worklogs[start:start + size]]
        return Response.composed({"startAt": start, "maxResults": size,
                                  "total": len(worklogs), "worklogs": page})

    def _issue_comments(self, request: Request) -> Response:
        """PageOfComments: `startAt`, `maxResults` (≤ the cap), `orderBy` (±created)."""
        issue = self._find_issue(request)
        if issue is None:
            return jira_error(404, ISSUE_NOT_FOUND)
        order = request.param("orderBy") or "created"
        if order not in ("created", "+created", "-created"):
            return jira_error(400, f"Invalid orderBy value: {order}")
        start = max(0, _int_arg(request.param("startAt"), 0, "startAt"))
        size = max(1, min(_int_arg(request.param("maxResults"), self.comment_page_cap,
                                   "maxResults"), self.comment_page_cap))
        with self.dataset.lock:
            comments = sorted(issue.comments, key=comment_order, reverse=order == "-created")
            page = self.renderer.comment_page(comments, self._version(request), start=start,
                                              size=size)
        return Response.composed(page)

    # -- changelog bulkfetch -------------------------------------------------
    def _changelog_bulkfetch(self, request: Request) -> Response:
        version = self._version(request)
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise BadRequest("Invalid request payload. Refer to the REST API documentation.")
        keys = body.get("issueIdsOrKeys")
        if not isinstance(keys, list) or not keys:
            raise BadRequest("issueIdsOrKeys must contain between 1 and 1000 issues.")
        if len(keys) > 1000:
            raise BadRequest("issueIdsOrKeys must contain between 1 and 1000 issues.")
        field_ids = body.get("fieldIds") or []
        if not isinstance(field_ids, list) or len(field_ids) > 10:
            raise BadRequest("fieldIds must contain at most 10 fields.")
        size = _int_arg(body.get("maxResults"), 1000, "maxResults")
        if not 1 <= size <= 10000:
            raise BadRequest("maxResults must be between 1 and 10000.")
        request_hash = hashlib.sha1(
            json.dumps([[str(k) for k in keys], sorted(map(str, field_ids))]).encode()
        ).hexdigest()[:16]
        issue_pos, hist_pos = 0, 0
        if body.get("nextPageToken"):
            issue_pos, hist_pos = decode_bulk_token(body["nextPageToken"], request_hash)

        wanted = set(map(str, field_ids))
        with self.dataset.lock:
            issues = _unique_issues(self.dataset, keys)
            changelogs: list[dict[str, Any]] = []
            budget = size
            next_token: str | None = None
            pos = issue_pos
            while pos < len(issues):
                histories = _filter_histories(issues[pos].histories, wanted)
                start = hist_pos if pos == issue_pos else 0
                chunk = histories[start:start + budget]
                if chunk:
                    budget -= len(chunk)
                    changelogs.append({"issueId": issues[pos].id, "changeHistories": [
                        RawJSON(self.renderer.history_json(
                            h, version, epoch=self.bulkfetch_epoch_ms,
                            field_ids=wanted or None))
                        for h in chunk]})
                if start + len(chunk) < len(histories):
                    # Budget spent inside this issue: the next page resumes it.
                    next_token = encode_bulk_token(pos, start + len(chunk), request_hash)
                    break
                pos += 1
                if budget == 0:
                    if any(_filter_histories(i.histories, wanted) for i in issues[pos:]):
                        next_token = encode_bulk_token(pos, 0, request_hash)
                    break
        out: dict[str, Any] = {"issueChangeLogs": changelogs}
        if next_token:
            out["nextPageToken"] = next_token
        return Response.composed(out)

    # -- worklog feeds -------------------------------------------------------
    def _worklogs(self) -> _WorklogIndex:
        ds = self.dataset
        stamp = (ds.revision, len(ds.issues), len(ds.deleted_worklogs))
        index = self._worklog_index
        if index is not None and index.stamp == stamp:
            return index
        with ds.lock:
            by_id: dict[str, JiraWorklog] = {}
            updated: list[tuple[int, int]] = []
            for issue in ds.issues:
                for wl in issue.worklogs:
                    by_id[wl.id] = wl
                    updated.append((epoch_ms(wl.updated or wl.created or wl.started),
                                    int(wl.id)))
            deleted = [(epoch_ms(at), int(wid)) for wid, at in ds.deleted_worklogs]
        updated.sort()
        deleted.sort()
        index = _WorklogIndex(stamp, by_id, updated, deleted)
        self._worklog_index = index
        return index

    def _worklogs_updated(self, request: Request) -> Response:
        return self._worklog_feed(request, "updated", self._worklogs().updated)

    def _worklogs_deleted(self, request: Request) -> Response:
        return self._worklog_feed(request, "deleted", self._worklogs().deleted)

    def _worklog_feed(self, request: Request, kind: str,
                      feed: Sequence[tuple[int, int]]) -> Response:
        """ChangedWorklogs: items after `since`, oldest first, never the last minute."""
        version = self._version(request)
        since = _int_arg(request.param("since"), 0, "since")
        horizon = epoch_ms(self._now()) - int(self.worklog_feed_lag_seconds * 1000)
        lo = bisect.bisect_right(feed, (since, float("inf")))  # `since` itself is excluded
        hi = bisect.bisect_right(feed, (horizon, float("inf")))
        end = min(lo + self.worklog_feed_page, hi)
        # Never split one millisecond across pages: `since` is exclusive, that would lose items.
        while lo < end < hi and feed[end][0] == feed[end - 1][0]:
            end += 1
        values = [{"worklogId": wid, "updatedTime": ms, "properties": []}
                  for ms, wid in feed[lo:end]]
        until = values[-1]["updatedTime"] if values else since
        base = f"{self.url}/rest/api/{version}/worklog/{kind}"
        out: dict[str, Any] = {"values": values, "since": since, "until": until,
                               "self": f"{base}?since={since}", "lastPage": end >= hi}
        if end < hi:
            out["nextPage"] = f"{base}?since={until}"
        return Response.json(out)

    def _worklog_list(self, request: Request) -> Response:
        version = self._version(request)
        try:
            body = request.json()
        except ValueError:
            body = None
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            raise BadRequest("Worklog IDs must be provided.")
        if len(ids) > 1000:
            raise BadRequest("The number of worklog IDs must be less than or equal to 1000.")
        index = self._worklogs()
        out = []
        seen: set[str] = set()
        with self.dataset.lock:
            for raw in ids:
                wid = str(raw)
                wl = index.by_id.get(wid)
                if wl is not None and wid not in seen:
                    seen.add(wid)
                    out.append(RawJSON(self.renderer.worklog_json(wl, version)))
        return Response.composed(out)


# -- helpers -------------------------------------------------------------------
def _int_arg(raw: Any, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"The value '{raw}' is not valid for '{name}'.") from None


def _unique_issues(dataset: JiraDataset, keys: list[Any]) -> list[JiraIssue]:
    """The requested issues in request order, once each; unknown ones are skipped."""
    seen: set[str] = set()
    out = []
    for key in keys:
        issue = dataset.issue(str(key))
        if issue is not None and issue.id not in seen:
            seen.add(issue.id)
            out.append(issue)
    return out


def _filter_histories(histories: list[JiraHistory], wanted: set[str]) -> list[JiraHistory]:
    if not wanted:
        return histories
    return [h for h in histories if any(it.field in wanted for it in h.items)]
