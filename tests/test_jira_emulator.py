"""The Jira emulator over real HTTP: spec-valid shapes, JQL, paging, truncation, auth, faults."""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tmabot.emulators.dataset import (
    DONE,
    INDETERMINATE,
    NEW,
    ChangeItem,
    JiraComment,
    JiraDataset,
    JiraHistory,
    JiraIssue,
    JiraProject,
    JiraStatus,
    JiraUser,
    JiraWorklog,
)
from tmabot.emulators.jira import JiraEmulator
from tmabot.emulators.jira_render import epoch_ms

EMAIL, TOKEN = "bot@agency.example", "secret-token"
T0 = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)  # 10:00 in Paris (CEST), the API user's zone
NOW = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)  # the emulator's clock in feed tests


# -- builders --------------------------------------------------------------------
def status_change(hid: str, at: datetime, old: str, new: str, author: str | None = "u-alice"
                  ) -> JiraHistory:
    names = {"1": "To Do", "3": "In Progress", "5": "Done"}
    return JiraHistory(hid, at, author, [ChangeItem("status", old, names[old], new, names[new])])


def make_dataset(n_acme: int = 12) -> JiraDataset:
    """ACME-1..n updated one minute apart from T0 (ACME-1 at 10:01 Paris), plus BETA-1..3."""
    ds = JiraDataset(
        projects=[JiraProject("10000", "ACME", "Acme Web"), JiraProject("10001", "BETA", "Beta")],
        statuses=[JiraStatus("1", "To Do", NEW), JiraStatus("3", "In Progress", INDETERMINATE),
                  JiraStatus("5", "Done", DONE)],
        users=[JiraUser("u-alice", "alice", "Alice Martin", "alice@agency.example"),
               JiraUser("u-bob", "bob", "Bob Hidden", "bob@agency.example", email_visible=False)],
    )
    for n in range(1, n_acme + 1):
        ds.issues.append(JiraIssue(
            id=str(10000 + n), key=f"ACME-{n}", project_key="ACME", summary=f"Acme issue {n}",
            issue_type="Bug", status_id="1", created=T0 - timedelta(days=n),
            updated=T0 + timedelta(minutes=n), reporter_id="u-alice",
        ))
    for n in range(1, 4):
        ds.issues.append(JiraIssue(
            id=str(20000 + n), key=f"BETA-{n}", project_key="BETA", summary=f"Beta issue {n}",
            issue_type="Task", status_id="1", created=T0, updated=T0 + timedelta(hours=n),
        ))
    full = ds.issues[0]  # ACME-1 carries every field
    full.description = "Checkout fails\n\nOn Safari only"
    full.labels = ["tma", "prod"]
    full.components = ["Checkout"]
    full.priority = "High"
    full.assignee_id = "u-bob"
    full.parent_key = "ACME-2"
    full.original_estimate_seconds = 7200
    full.status_id = "5"
    full.resolution_date = T0 + timedelta(hours=3)
    full.histories = [status_change("900001", T0 - timedelta(hours=2), "1", "3"),
                      status_change("900002", T0 - timedelta(hours=1), "3", "5", author=None)]
    full.worklogs = [JiraWorklog("800001", full.id, "u-bob", T0 - timedelta(hours=3), 5400,
                                 "Investigated", created=NOW - timedelta(days=1))]
    full.comments = [JiraComment("700001", full.id, "u-alice", T0 - timedelta(hours=2, minutes=30),
                                 "Pris en compte"),
                     JiraComment("700002", full.id, "u-bob", T0 - timedelta(hours=2),
                                 "Note interne", visibility="Developers")]
    return ds


def many_histories(issue: JiraIssue, count: int, first_id: int) -> None:
    """`count` alternating status changes an hour apart; every 5th also reassigns."""
    issue.histories = []
    for k in range(count):
        old, new = ("1", "3") if k % 2 == 0 else ("3", "1")
        h = status_change(str(first_id + k), T0 - timedelta(hours=count - k), old, new)
        if k % 5 == 4:
            h.items.append(ChangeItem("assignee", None, None, "u-bob", "Bob Hidden"))
        if k % 7 == 6:  # an assignee-only change: dropped when only status is asked
            h.items = [ChangeItem("assignee", "u-bob", "Bob Hidden", None, None)]
        issue.histories.append(h)


# -- fixtures --------------------------------------------------------------------
def _session(auth: Any = (EMAIL, TOKEN)) -> requests.Session:
    s = requests.Session()
    s.auth = auth
    return s


@pytest.fixture
def session() -> Iterator[requests.Session]:
    s = _session()
    yield s
    s.close()


@pytest.fixture(scope="module")
def cloud() -> Iterator[tuple[JiraEmulator, requests.Session]]:
    """A read-only Cloud site shared by the tests that do not mutate or inject."""
    with JiraEmulator(make_dataset(), clock=lambda: NOW) as emu:
        s = _session()
        yield emu, s
        s.close()
        assert emu.handler_errors == []


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., JiraEmulator]]:
    started: list[JiraEmulator] = []

    def make(dataset: JiraDataset | None = None, **knobs: Any) -> JiraEmulator:
        knobs.setdefault("clock", lambda: NOW)
        emu = JiraEmulator(dataset or make_dataset(), **knobs).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()
        assert emu.handler_errors == []


# -- spec validation -------------------------------------------------------------
def _spec_path() -> Path:
    shared = os.environ.get("TMABOT_SHARED")
    if shared:
        return Path(shared) / "api" / "jira" / "swagger-v3.v3.json"
    return Path(__file__).resolve().parents[2] / "shared" / "api" / "jira" / "swagger-v3.v3.json"


@pytest.fixture(scope="session")
def spec_validate() -> Callable[[Any, str], None]:
    """validate(instance, where): `where` is a components schema name or 'METHOD /path'."""
    path = _spec_path()
    if not path.exists():
        pytest.skip("../shared/api not found: schema checks need the shared API specs")
    from jsonschema import Draft7Validator  # type: ignore[import-untyped]
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    spec = json.loads(path.read_text(encoding="utf-8"))
    # Jira sends null for an unset `from`/`to` (see the Cloud sample) although its spec says
    # string: accept exactly that, nothing looser.
    for name in ("from", "fromString", "to", "toString"):
        spec["components"]["schemas"]["ChangeDetails"]["properties"][name]["type"] = [
            "string", "null"]
    registry = Registry().with_resource(
        "urn:jira-spec", Resource.from_contents(spec, default_specification=DRAFT7))

    def pointer(*parts: str) -> str:
        return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)

    def validate(instance: Any, where: str) -> None:
        if " " in where:
            method, api_path = where.split(" ", 1)
            assert api_path in spec["paths"], api_path
            ref = "#/" + pointer("paths", api_path, method.lower(), "responses", "200",
                                 "content", "application/json", "schema")
        else:
            ref = "#/components/schemas/" + where
        validator = Draft7Validator({"$ref": "urn:jira-spec" + ref}, registry=registry)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, f"{where}: " + "; ".join(
            f"{list(e.path)}: {e.message[:200]}" for e in errors[:5])

    return validate


API3 = "/rest/api/3"
SCHEMA_CASES: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None, str]] = [
    ("GET", "/serverInfo", None, None, "ServerInformation"),
    ("GET", "/myself", None, None, "GET /rest/api/3/myself"),
    ("GET", "/status", None, None, "GET /rest/api/3/status"),
    ("GET", "/priority", None, None, "GET /rest/api/3/priority"),
    ("GET", "/project/ACME", None, None, "GET /rest/api/3/project/{projectIdOrKey}"),
    ("GET", "/field", None, None, "GET /rest/api/3/field"),
    ("GET", "/search/jql", {"jql": "project = ACME", "fields": "*all", "expand": "changelog",
                            "maxResults": 5}, None, "GET /rest/api/3/search/jql"),
    ("POST", "/search/jql", None, {"jql": "project = ACME", "fields": ["*all"],
                                   "expand": "changelog"}, "POST /rest/api/3/search/jql"),
    ("GET", "/search/jql", {"jql": "project = ACME"}, None, "SearchAndReconcileResults"),
    ("POST", "/changelog/bulkfetch", None, {"issueIdsOrKeys": ["ACME-1", "ACME-2"]},
     "POST /rest/api/3/changelog/bulkfetch"),
    ("GET", "/issue/ACME-1/changelog", {"maxResults": 1}, None,
     "GET /rest/api/3/issue/{issueIdOrKey}/changelog"),
    ("GET", "/issue/ACME-1", {"expand": "changelog"}, None,
     "GET /rest/api/3/issue/{issueIdOrKey}"),
    ("GET", "/issue/ACME-1/worklog", None, None,
     "GET /rest/api/3/issue/{issueIdOrKey}/worklog"),
    ("GET", "/issue/ACME-1/comment", {"orderBy": "created"}, None,
     "GET /rest/api/3/issue/{issueIdOrKey}/comment"),
    ("GET", "/worklog/updated", {"since": 0}, None, "GET /rest/api/3/worklog/updated"),
    ("GET", "/worklog/deleted", {"since": 0}, None, "GET /rest/api/3/worklog/deleted"),
    ("POST", "/worklog/list", None, {"ids": [800001]}, "POST /rest/api/3/worklog/list"),
]


@pytest.mark.parametrize(("method", "path", "params", "body", "schema"), SCHEMA_CASES,
                         ids=[f"{c[0]} {c[1]}" for c in SCHEMA_CASES])
def test_cloud_responses_match_the_spec(
    cloud: tuple[JiraEmulator, requests.Session], spec_validate: Callable[[Any, str], None],
    method: str, path: str, params: dict[str, Any] | None, body: dict[str, Any] | None,
    schema: str,
) -> None:
    emu, s = cloud
    r = s.request(method, emu.url + API3 + path, params=params, json=body)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json;charset=UTF-8"
    data = r.json()
    assert data, "an empty answer proves nothing"
    spec_validate(data, schema)


@pytest.mark.parametrize("version", [2, 3])
def test_search_issues_are_valid_issue_beans(
    cloud: tuple[JiraEmulator, requests.Session], spec_validate: Callable[[Any, str], None],
    version: int,
) -> None:
    emu, s = cloud
    r = s.get(f"{emu.url}/rest/api/{version}/search/jql",
              params={"jql": "project in (ACME, BETA)", "fields": "*all",
                      "expand": "changelog", "maxResults": "100"})
    issues = r.json()["issues"]
    assert len(issues) == 15
    for issue in issues:
        spec_validate(issue, "IssueBean")
    full = next(i for i in issues if i["key"] == "ACME-1")["fields"]
    description = full["description"]
    if version == 3:
        assert description["type"] == "doc"
        assert description["content"][1]["content"][0]["text"] == "On Safari only"
    else:
        assert description == "Checkout fails\n\nOn Safari only"
    for history in next(i for i in issues if i["key"] == "ACME-1")["changelog"]["histories"]:
        spec_validate(history, "Changelog")
    for worklog in full["worklog"]["worklogs"]:
        spec_validate(worklog, "Worklog")
    spec_validate(full["comment"], "PageOfComments")
    assert [c["id"] for c in full["comment"]["comments"]] == ["700001", "700002"]
    assert full["comment"]["comments"][1]["visibility"]["value"] == "Developers"


def test_issue_fields_have_jira_shapes(cloud: tuple[JiraEmulator, requests.Session]) -> None:
    emu, s = cloud
    issue = s.get(f"{emu.url}{API3}/issue/ACME-1").json()
    f = issue["fields"]
    assert issue["id"] == "10001" and issue["key"] == "ACME-1"
    assert f["status"] == {"id": "5", "name": "Done", "statusCategory": {
        "id": 3, "key": "done", "colorName": "green", "name": "Done"}}
    assert f["priority"] == {"id": "2", "name": "High"}
    assert f["issuetype"]["name"] == "Bug" and f["issuetype"]["subtask"] is False
    assert f["components"][0]["name"] == "Checkout"
    assert f["parent"]["key"] == "ACME-2" and f["parent"]["id"] == "10002"
    assert f["project"] == {"id": "10000", "key": "ACME", "name": "Acme Web"}
    # Rendered in the API user's zone, Jira's format (CEST in October).
    assert f["created"] == "2026-10-04T10:00:00.000+0200"
    assert f["resolutiondate"] == "2026-10-05T13:00:00.000+0200"
    assert f["timeoriginalestimate"] == 7200 and f["timespent"] == 5400
    # Bob hides his email: Cloud omits it.
    assert "emailAddress" not in f["assignee"] and f["assignee"]["accountId"] == "u-bob"
    assert f["reporter"]["emailAddress"] == "alice@agency.example"
    wl = f["worklog"]["worklogs"][0]
    assert wl["timeSpent"] == "1h 30m" and wl["timeSpentSeconds"] == 5400
    assert wl["comment"]["type"] == "doc"  # ADF in v3
    unset = s.get(f"{emu.url}{API3}/issue/BETA-1").json()["fields"]
    assert unset["priority"] is None and unset["timespent"] is None
    assert unset["assignee"] is None and unset["resolutiondate"] is None


def test_site_metadata(cloud: tuple[JiraEmulator, requests.Session]) -> None:
    emu, s = cloud
    info = s.get(f"{emu.url}{API3}/serverInfo").json()
    assert info["deploymentType"] == "Cloud" and info["versionNumbers"][0] == 1001
    me = s.get(f"{emu.url}{API3}/myself").json()
    assert me["timeZone"] == "Europe/Paris" and me["emailAddress"] == EMAIL and me["accountId"]
    statuses = s.get(f"{emu.url}{API3}/status").json()
    assert [(x["id"], x["statusCategory"]["key"]) for x in statuses] == [
        ("1", "new"), ("3", "indeterminate"), ("5", "done")]
    assert [p["name"] for p in s.get(f"{emu.url}{API3}/priority").json()][:2] == [
        "Highest", "High"]
    assert s.get(f"{emu.url}{API3}/project/10001").json()["key"] == "BETA"
    missing = s.get(f"{emu.url}{API3}/project/NOPE")
    assert missing.status_code == 404 and missing.json()["errorMessages"]


def test_unknown_issue_and_route_are_404(cloud: tuple[JiraEmulator, requests.Session]) -> None:
    emu, s = cloud
    r = s.get(f"{emu.url}{API3}/issue/ACME-999")
    assert r.status_code == 404
    assert r.json() == {"errorMessages": [
        "Issue does not exist or you do not have permission to see it."], "errors": {}}
    r = s.get(f"{emu.url}/rest/api/3/nothing/here")
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("application/json")
    assert r.json()["errorMessages"]


def test_awkward_text_survives_json(make_emulator: Callable[..., JiraEmulator],
                                    session: requests.Session) -> None:
    odd = 'Quote " back\\slash \n new\tline é 😀 </script> \u2028 \x01'
    ds = make_dataset(2)
    ds.users[0].display_name = odd
    issue = ds.issues[1]
    issue.summary = odd
    issue.labels = [odd]
    issue.histories = [JiraHistory("1", T0, "u-alice", [ChangeItem("status", odd, odd, "3", "x")])]
    issue.worklogs = [JiraWorklog("2", issue.id, "u-alice", T0, 60, comment=odd)]
    emu = make_emulator(ds)
    for version in (2, 3):
        got = session.get(f"{emu.url}/rest/api/{version}/issue/ACME-2",
                          params={"expand": "changelog"}).json()
        f = got["fields"]
        assert f["summary"] == odd and f["labels"] == [odd]
        wl = f["worklog"]["worklogs"][0]
        assert wl["author"]["displayName"] == odd
        assert (wl["comment"] if version == 2 else wl["comment"]["content"][0]["content"][0][
            "text"]) == odd
        item = got["changelog"]["histories"][0]["items"][0]
        assert item["from"] == odd and item["fromString"] == odd
        assert got["changelog"]["histories"][0]["author"]["displayName"] == odd


# -- the jira library ------------------------------------------------------------
def test_jira_library_constructs_and_pages(cloud: tuple[JiraEmulator, requests.Session]) -> None:
    from jira import JIRA

    emu, _ = cloud
    client = JIRA(server=emu.url, basic_auth=(EMAIL, TOKEN), max_retries=0)
    try:
        assert client._is_cloud
        assert client.myself()["timeZone"] == "Europe/Paris"
        keys: list[str] = []
        token = None
        while True:
            page = client.enhanced_search_issues(
                "project = ACME ORDER BY key ASC", nextPageToken=token, maxResults=5,
                fields=["summary", "status"])
            keys += [i.key for i in page]
            token = page.nextPageToken
            if not token:
                break
        assert keys == [f"ACME-{n}" for n in range(1, 13)]
        assert client.issue("ACME-1").fields.status.name == "Done"
    finally:
        client.close()


# -- JQL ---------------------------------------------------------------------------
def _keys(emu: JiraEmulator, s: requests.Session, jql: str, **params: Any) -> list[str]:
    r = s.post(f"{emu.url}{API3}/search/jql", json={"jql": jql, "maxResults": 100, **params})
    assert r.status_code == 200, r.text
    return [i["key"] for i in r.json()["issues"]]


def test_jql_reads_dates_in_the_user_zone_to_the_minute(
    make_emulator: Callable[..., JiraEmulator], session: requests.Session,
) -> None:
    ds = make_dataset(2)
    ds.issues[0].updated = T0 + timedelta(seconds=59)  # 10:00:59 Paris
    ds.issues[1].updated = T0 + timedelta(minutes=1)  # 10:01:00 Paris
    emu = make_emulator(ds)
    cases = {
        'updated >= "2026-10-05 10:00"': ["ACME-1", "ACME-2"],
        'updated < "2026-10-05 10:01"': ["ACME-1"],
        'updated <= "2026-10-05 10:00"': [],  # 10:00:59 is after the minute's first instant
        'updated > "2026-10-05 10:00"': ["ACME-1", "ACME-2"],
        'updated >= "2026-10-05 10:01"': ["ACME-2"],
        'updated >= "2026/10/05 10:01"': ["ACME-2"],
        'updated >= 2026-10-05': ["ACME-1", "ACME-2"],
        'updated < "2026-10-05"': [],
        # Read as UTC, 08:30 would precede both; in Paris it is two hours earlier still:
        'updated >= "2026-10-05 10:02"': [],
        'updated >= "2026-10-05 08:30" AND updated < "2026-10-05 09:59"': [],
        'created >= "2026-10-04 00:00" AND created < "2026-10-05 00:00"': ["ACME-1"],
    }
    for clause, expected in cases.items():
        assert _keys(emu, session, f"project = ACME AND {clause} ORDER BY key") == expected, clause


@pytest.mark.parametrize(("order", "expected"), [
    ("ORDER BY key ASC", ["ACME-1", "ACME-2", "ACME-3", "ACME-10", "ACME-11", "ACME-12"]),
    ("ORDER BY key DESC", ["ACME-12", "ACME-11", "ACME-10", "ACME-3", "ACME-2", "ACME-1"]),
    ("ORDER BY updated ASC", ["ACME-1", "ACME-2", "ACME-3", "ACME-10", "ACME-11", "ACME-12"]),
    ("ORDER BY updated", ["ACME-12", "ACME-11", "ACME-10", "ACME-3", "ACME-2", "ACME-1"]),
    ("order by created desc, key asc",
     ["ACME-1", "ACME-2", "ACME-3", "ACME-10", "ACME-11", "ACME-12"]),
])
def test_jql_order_by(cloud: tuple[JiraEmulator, requests.Session], order: str,
                      expected: list[str]) -> None:
    emu, s = cloud
    keys = _keys(emu, s, f"project = ACME {order}")
    assert [k for k in keys if k in expected] == expected


def test_jql_projects(cloud: tuple[JiraEmulator, requests.Session]) -> None:
    emu, s = cloud
    assert len(_keys(emu, s, 'project in (ACME, "BETA")')) == 15
    assert _keys(emu, s, "PROJECT = beta ORDER BY key") == ["BETA-1", "BETA-2", "BETA-3"]
    assert _keys(emu, s, "project = 10001 AND project = BETA ORDER BY key")[0] == "BETA-1"


@pytest.mark.parametrize(("jql", "message"), [
    ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
    ("project in (ACME, XYZ)", "The value 'XYZ' does not exist for the field 'project'."),
    ('updated >= "2026-10-05 10:00"', "Unbounded JQL queries are not allowed"),
    ("", "Unbounded JQL queries are not allowed"),
    ("project = ACME OR project = BETA", "Error in the JQL Query"),
    ("project = ACME AND status = Done", "Error in the JQL Query"),
    ("project = ACME AND foo = bar", "Field 'foo' does not exist"),
    ('project = ACME AND updated >= "2026-10-05 10:00:30"', "Date value '2026-10-05 10:00:30'"),
    ('project = ACME AND updated >= "yesterday"', "for field 'updated' is invalid"),
    ('project = "ACME', "Error in the JQL Query"),
    ("project = ACME AND", "Error in the JQL Query: Expecting a field name"),
    ("project = ACME ORDER BY priority", "Error in the JQL Query"),
    ("project ACME", "Error in the JQL Query: Expecting operator"),
])
def test_bad_jql_is_a_400_with_jiras_message(
    cloud: tuple[JiraEmulator, requests.Session], jql: str, message: str,
) -> None:
    emu, s = cloud
    for r in (s.post(f"{emu.url}{API3}/search/jql", json={"jql": jql}),
              s.get(f"{emu.url}/rest/api/2/search/jql", params={"jql": jql})):
        assert r.status_code == 400
        body = r.json()
        assert body["errors"] == {}
        assert message in body["errorMessages"][0]


# -- paging and caps ---------------------------------------------------------------
def _walk(emu: JiraEmulator, s: requests.Session, jql: str, **body: Any
          ) -> tuple[list[str], list[int]]:
    keys: list[str] = []
    sizes: list[int] = []
    token = None
    for _ in range(100):
        payload = {"jql": jql, **body}
        if token:
            payload["nextPageToken"] = token
        data = s.post(f"{emu.url}{API3}/search/jql", json=payload).json()
        keys += [i["key"] for i in data["issues"]]
        sizes.append(len(data["issues"]))
        token = data.get("nextPageToken")
        assert data["isLast"] is (token is None)
        if not token:
            return keys, sizes
    raise AssertionError("the token never ran out")


def test_token_paging_until_absent(make_emulator: Callable[..., JiraEmulator],
                                   session: requests.Session) -> None:
    emu = make_emulator(make_dataset(25))
    keys, sizes = _walk(emu, session, "project = ACME ORDER BY key", maxResults=10)
    assert keys == [f"ACME-{n}" for n in range(1, 26)]
    assert sizes == [10, 10, 5]
    # Default fields are the id only (plus key and self).
    first = session.post(f"{emu.url}{API3}/search/jql", json={"jql": "project = ACME"}).json()
    assert set(first["issues"][0]) == {"id", "key", "self"}
    # GET with repeated `fields` params works the same.
    r = session.get(f"{emu.url}{API3}/search/jql", params=[
        ("jql", "project = BETA"), ("fields", "summary"), ("fields", "status")])
    assert set(r.json()["issues"][0]["fields"]) == {"summary", "status"}


def test_page_caps(make_emulator: Callable[..., JiraEmulator], session: requests.Session) -> None:
    emu = make_emulator(make_dataset(60), max_results_cap=7, id_only_cap=40)
    assert _walk(emu, session, "project = ACME", maxResults=50, fields=["summary"])[1][:2] == [
        7, 7]
    assert _walk(emu, session, "project = ACME", maxResults=5000, fields=["id"])[1] == [40, 20]
    assert _walk(emu, session, "project = ACME", maxResults=50, fields=["id"],
                 expand="changelog")[1][0] == 7
    big = make_emulator(make_dataset(60))
    assert _walk(big, session, "project = ACME")[1] == [50, 10]  # default maxResults 50


def test_bad_tokens_are_400(cloud: tuple[JiraEmulator, requests.Session]) -> None:
    emu, s = cloud
    url = f"{emu.url}{API3}/search/jql"
    token = s.post(url, json={"jql": "project = ACME", "maxResults": 2}).json()["nextPageToken"]
    for jql, bad in [("project = ACME", "not-a-token!"), ("project = ACME", "czpmb28="),
                     ("project = BETA", token)]:
        r = s.post(url, json={"jql": jql, "nextPageToken": bad})
        assert r.status_code == 400, bad
        assert r.json()["errorMessages"]


def test_old_search_is_gone_on_cloud(cloud: tuple[JiraEmulator, requests.Session]) -> None:
    emu, s = cloud
    for version in (2, 3):
        url = f"{emu.url}/rest/api/{version}/search"
        for r in (s.get(url, params={"jql": "project = ACME"}),
                  s.post(url, json={"jql": "project = ACME"})):
            assert r.status_code == 410
            assert "/rest/api/3/search/jql" in r.json()["errorMessages"][0]


# -- Data Center -------------------------------------------------------------------
def test_data_center_flavour(make_emulator: Callable[..., JiraEmulator]) -> None:
    ds = make_dataset(25)
    many_histories(ds.issues[1], 50, 700000)
    emu = make_emulator(ds, flavour="server")
    s = _session(None)
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    try:
        assert s.get(f"{emu.url}/rest/api/2/serverInfo").json()["deploymentType"] == "Server"
        me = s.get(f"{emu.url}/rest/api/2/myself").json()
        assert "accountId" not in me and me["name"] and me["timeZone"] == "Europe/Paris"
        keys: list[str] = []
        start = 0
        while True:
            data = s.get(f"{emu.url}/rest/api/2/search", params={
                "jql": "project = ACME ORDER BY key", "startAt": str(start), "maxResults": "10",
            }).json()
            assert data["total"] == 25 and data["startAt"] == start
            keys += [i["key"] for i in data["issues"]]
            start += len(data["issues"])
            if start >= data["total"]:
                break
        assert keys == [f"ACME-{n}" for n in range(1, 26)]
        first = s.post(f"{emu.url}/rest/api/2/search", json={"jql": "", "maxResults": 1}).json()
        assert first["total"] == 28  # unbounded JQL is fine on Data Center
        assert "summary" in first["issues"][0]["fields"]  # default *navigable
        user = s.get(f"{emu.url}/rest/api/2/issue/ACME-1").json()["fields"]["reporter"]
        assert user["name"] == "alice" and user["key"] == "u-alice" and "accountId" not in user
        # Inline changelog is capped; the single-issue read is complete, oldest first.
        inline = s.get(f"{emu.url}/rest/api/2/search", params={
            "jql": "project = ACME ORDER BY key", "maxResults": "2", "expand": "changelog",
            "fields": "status"}).json()["issues"][1]["changelog"]
        assert inline["total"] == 50 and len(inline["histories"]) == 40
        full = s.get(f"{emu.url}/rest/api/2/issue/ACME-2",
                     params={"fields": "status", "expand": "changelog"}).json()["changelog"]
        assert [h["id"] for h in full["histories"]] == [str(700000 + k) for k in range(50)]
        for path in ("/rest/api/2/search/jql", "/rest/api/3/search", "/rest/api/2/worklog/updated",
                     "/rest/api/2/issue/ACME-1/changelog"):
            assert s.get(emu.url + path, params={"jql": "project = ACME"}).status_code == 404
        assert s.post(f"{emu.url}/rest/api/2/changelog/bulkfetch",
                      json={"issueIdsOrKeys": ["ACME-1"]}).status_code == 404
        assert s.get(f"{emu.url}/rest/api/2/issue/ACME-1/worklog").json()["total"] == 1
    finally:
        s.close()


# -- truncation and completion -----------------------------------------------------
def test_inline_changelog_keeps_the_newest(make_emulator: Callable[..., JiraEmulator],
                                           session: requests.Session) -> None:
    ds = make_dataset(3)
    many_histories(ds.issues[1], 50, 700000)
    emu = make_emulator(ds)
    issue = session.post(f"{emu.url}{API3}/search/jql", json={
        "jql": "project = ACME AND updated >= \"2026-10-05 10:02\" AND updated < "
               "\"2026-10-05 10:03\"", "fields": ["status"], "expand": "changelog"},
    ).json()["issues"][0]
    changelog = issue["changelog"]
    assert issue["key"] == "ACME-2"
    assert changelog["total"] == 50 and changelog["maxResults"] == 40
    assert [h["id"] for h in changelog["histories"]] == [
        str(700000 + k) for k in range(49, 9, -1)]  # newest first, the 10 oldest lost

    pages = []
    start = 0
    while True:
        page = session.get(f"{emu.url}{API3}/issue/ACME-2/changelog",
                           params={"startAt": start, "maxResults": 500}).json()
        assert page["maxResults"] == 100  # asked 500: capped
        pages.append(page)
        start += len(page["values"])
        if page["isLast"]:
            break
    assert [h["id"] for p in pages for h in p["values"]] == [str(700000 + k) for k in range(50)]
    two = session.get(f"{emu.url}{API3}/issue/ACME-2/changelog",
                      params={"startAt": 0, "maxResults": 20}).json()
    assert len(two["values"]) == 20 and two["isLast"] is False and two["total"] == 50
    assert "startAt=20" in two["nextPage"]


def _bulkfetch(emu: JiraEmulator, s: requests.Session, **body: Any) -> list[dict[str, Any]]:
    pages = []
    token = None
    while True:
        payload = dict(body, **({"nextPageToken": token} if token else {}))
        r = s.post(f"{emu.url}{API3}/changelog/bulkfetch", json=payload)
        assert r.status_code == 200, r.text
        pages.append(r.json())
        token = pages[-1].get("nextPageToken")
        if not token:
            return pages


def test_bulkfetch_completes_histories_across_pages(
    make_emulator: Callable[..., JiraEmulator], session: requests.Session,
) -> None:
    ds = make_dataset(3)
    many_histories(ds.issues[1], 50, 700000)  # ACME-2
    many_histories(ds.issues[2], 10, 710000)  # ACME-3
    emu = make_emulator(ds)
    pages = _bulkfetch(emu, session, issueIdsOrKeys=["ACME-2", "10003", "ACME-404"],
                       maxResults=30)
    per_page = [[(c["issueId"], len(c["changeHistories"])) for c in p["issueChangeLogs"]]
                for p in pages]
    # 30 of ACME-2, then its last 20 with all 10 of ACME-3: one issue split over two pages.
    assert per_page == [[("10002", 30)], [("10002", 20), ("10003", 10)]]
    ids = [h["id"] for p in pages for c in p["issueChangeLogs"] if c["issueId"] == "10002"
           for h in c["changeHistories"]]
    assert ids == [str(700000 + k) for k in range(50)]  # complete, oldest first

    status_only = _bulkfetch(emu, session, issueIdsOrKeys=["ACME-2"], fieldIds=["status"])
    histories = [h for p in status_only for c in p["issueChangeLogs"]
                 for h in c["changeHistories"]]
    assert len(histories) == 50 - len([k for k in range(50) if k % 7 == 6])
    assert all(it["fieldId"] == "status" for h in histories for it in h["items"])
    assert isinstance(histories[0]["created"], str)

    too_many = session.post(f"{emu.url}{API3}/changelog/bulkfetch",
                            json={"issueIdsOrKeys": [str(n) for n in range(1001)]})
    assert too_many.status_code == 400
    assert session.post(f"{emu.url}{API3}/changelog/bulkfetch", json={
        "issueIdsOrKeys": ["ACME-2"], "nextPageToken": "garbage"}).status_code == 400


def test_bulkfetch_epoch_ms_mode(make_emulator: Callable[..., JiraEmulator],
                                 session: requests.Session) -> None:
    emu = make_emulator(make_dataset(3), bulkfetch_epoch_ms=True)
    page = _bulkfetch(emu, session, issueIdsOrKeys=["ACME-1"])[0]
    created = page["issueChangeLogs"][0]["changeHistories"][0]["created"]
    assert created == epoch_ms(T0 - timedelta(hours=2))


def test_comments_inline_are_capped_and_paged_per_issue(
    make_emulator: Callable[..., JiraEmulator], session: requests.Session,
) -> None:
    ds = make_dataset(3)
    for k in range(7):
        ds.add_comment("ACME-3", "u-alice", f"Commentaire {k}", T0 + timedelta(hours=k))
    emu = make_emulator(ds, inline_comment_cap=5, comment_page_cap=4)
    issue = ds.issue("ACME-3")
    assert issue is not None and issue.updated == T0 + timedelta(hours=6)  # commenting updates
    inline = session.get(f"{emu.url}{API3}/search/jql",
                         params={"jql": "project = ACME", "fields": "comment"}).json()
    page = next(i for i in inline["issues"] if i["key"] == "ACME-3")["fields"]["comment"]
    assert page["total"] == 7 and len(page["comments"]) == 5 and page["maxResults"] == 5
    navigable = session.get(f"{emu.url}{API3}/search/jql",
                            params={"jql": "project = ACME", "fields": "*navigable"}).json()
    assert all("comment" not in i["fields"] for i in navigable["issues"])  # asked for by name only
    first = session.get(f"{emu.url}{API3}/issue/ACME-3/comment",
                        params={"maxResults": 50}).json()
    assert first["maxResults"] == 4 and len(first["comments"]) == 4  # capped
    rest = session.get(f"{emu.url}{API3}/issue/ACME-3/comment",
                       params={"startAt": 4, "orderBy": "created"}).json()
    assert [c["body"]["content"][0]["content"][0]["text"] for c in rest["comments"]] == [
        "Commentaire 4", "Commentaire 5", "Commentaire 6"]
    newest = session.get(f"{emu.url}/rest/api/2/issue/ACME-3/comment",
                         params={"orderBy": "-created", "maxResults": 1}).json()
    assert newest["comments"][0]["body"] == "Commentaire 6"  # plain text in v2
    bad = session.get(f"{emu.url}{API3}/issue/ACME-3/comment", params={"orderBy": "author"})
    assert bad.status_code == 400


def test_worklogs_inline_are_capped_and_complete_per_issue(
    make_emulator: Callable[..., JiraEmulator], session: requests.Session,
) -> None:
    ds = make_dataset(3)
    issue = ds.issues[2]
    for k in range(25):
        issue.worklogs.append(JiraWorklog(str(600000 + k), issue.id, "u-alice",
                                          T0 + timedelta(hours=k), 900 * (k + 1)))
    emu = make_emulator(ds)
    inline = session.get(f"{emu.url}/rest/api/2/issue/ACME-3",
                         params={"fields": "worklog,timespent"}).json()["fields"]
    assert inline["worklog"]["total"] == 25 and len(inline["worklog"]["worklogs"]) == 20
    assert inline["worklog"]["worklogs"][0]["id"] == "600000"  # oldest first
    assert inline["timespent"] == sum(900 * (k + 1) for k in range(25))
    everything = session.get(f"{emu.url}{API3}/issue/ACME-3/worklog").json()
    assert everything["total"] == 25 and len(everything["worklogs"]) == 25
    paged = session.get(f"{emu.url}{API3}/issue/ACME-3/worklog",
                        params={"startAt": 20, "maxResults": 10}).json()
    assert [w["id"] for w in paged["worklogs"]] == [str(600000 + k) for k in range(20, 25)]
    assert everything["worklogs"][3]["timeSpent"] == "1h"


def test_worklog_feeds(make_emulator: Callable[..., JiraEmulator],
                       session: requests.Session) -> None:
    ds = make_dataset(3)
    issue = ds.issues[1]
    for k in range(7):  # updated 10 minutes apart, the last one 30 s before NOW
        at = NOW - timedelta(seconds=30) - timedelta(minutes=10 * (6 - k))
        issue.worklogs.append(JiraWorklog(str(500000 + k), issue.id, "u-alice", at, 600,
                                          created=at, updated=at))
    emu = make_emulator(ds, worklog_feed_page=2)
    url = f"{emu.url}{API3}/worklog/updated?since={epoch_ms(NOW - timedelta(hours=2))}"
    seen: list[int] = []
    pages = 0
    while url:
        page = session.get(url).json()
        pages += 1
        seen += [v["worklogId"] for v in page["values"]]
        assert page["lastPage"] is ("nextPage" not in page)
        url = page.get("nextPage")
    # The newest (30 s old) is held back: the feed never shows the last minute.
    assert seen == [500000 + k for k in range(6)] and pages == 3
    since = epoch_ms(NOW - timedelta(seconds=30) - timedelta(minutes=10))  # worklog 500005's
    page = session.get(f"{emu.url}{API3}/worklog/updated", params={"since": since}).json()
    assert page["values"] == [] and page["lastPage"] is True  # `since` itself is excluded

    listed = session.post(f"{emu.url}{API3}/worklog/list",
                          json={"ids": [500001, "500002", 999]}).json()
    assert [w["id"] for w in listed] == ["500001", "500002"]
    assert session.post(f"{emu.url}{API3}/worklog/list",
                        json={"ids": list(range(1001))}).status_code == 400

    ds.delete_worklog("500003", at=NOW - timedelta(minutes=2))
    ds.delete_worklog("500004", at=NOW - timedelta(seconds=10))
    deleted = session.get(f"{emu.url}{API3}/worklog/deleted", params={"since": 0}).json()
    assert [v["worklogId"] for v in deleted["values"]] == [500003]
    after = session.get(f"{emu.url}{API3}/worklog/updated", params={"since": 0}).json()
    assert 500003 not in [v["worklogId"] for v in after["values"]]


# -- auth ----------------------------------------------------------------------------
@pytest.mark.parametrize(("flavour", "auth", "headers", "status"), [
    ("cloud", (EMAIL, TOKEN), {}, 200),
    ("cloud", (EMAIL, "wrong"), {}, 401),
    ("cloud", ("other@agency.example", TOKEN), {}, 401),
    ("cloud", None, {}, 401),
    ("cloud", None, {"Authorization": f"Bearer {TOKEN}"}, 401),  # Cloud wants basic
    ("server", None, {"Authorization": f"Bearer {TOKEN}"}, 200),
    ("server", None, {"Authorization": "Bearer wrong"}, 401),
    ("server", (EMAIL, TOKEN), {}, 200),
    ("server", None, {"Authorization": "Basic %%%"}, 401),
])
def test_auth(make_emulator: Callable[..., JiraEmulator], flavour: str, auth: Any,
              headers: dict[str, str], status: int) -> None:
    emu = make_emulator(flavour=flavour)
    with _session(auth) as s:
        r = s.get(f"{emu.url}/rest/api/2/myself", headers=headers)
        assert r.status_code == status
        if status == 401:
            assert r.json()["errorMessages"] == [
                "Client must be authenticated to access this resource."]
        assert TOKEN not in r.text
        # serverInfo stays anonymous, as on real sites: the jira library calls it first.
        assert s.get(f"{emu.url}/rest/api/2/serverInfo", headers=headers).status_code == 200


# -- faults and the request log --------------------------------------------------------
def test_fault_status_fires_times_then_clears(make_emulator: Callable[..., JiraEmulator],
                                              session: requests.Session) -> None:
    emu = make_emulator()
    emu.inject(r"/search/jql$", status=429, headers={"Retry-After": "0"}, times=2)
    emu.inject(r"/myself$", status=503, body={"errorMessages": ["busy"]})
    url = f"{emu.url}{API3}/search/jql"
    answers = [session.get(url, params={"jql": "project = ACME"}) for _ in range(3)]
    assert [r.status_code for r in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "0"
    assert answers[0].json()["errorMessages"]
    myself = [session.get(f"{emu.url}{API3}/myself") for _ in range(2)]
    assert [r.status_code for r in myself] == [503, 200]
    assert myself[0].json() == {"errorMessages": ["busy"]}
    log = emu.requests
    assert [(e.status, e.faulted) for e in log] == [
        (429, True), (429, True), (200, False), (503, True), (200, False)]
    assert log[0].param("jql") == "project = ACME" and log[0].query == {"jql": ["project = ACME"]}
    assert emu.count() == 5
    assert emu.count(method="GET", path_prefix="/rest/api/3/search") == 3
    assert emu.count(method="POST") == 0
    emu.reset_log()
    assert emu.requests == [] and emu.count() == 0


def test_fault_method_filter(make_emulator: Callable[..., JiraEmulator],
                             session: requests.Session) -> None:
    emu = make_emulator()
    emu.inject(r"/search/jql$", method="POST", status=500)
    url = f"{emu.url}{API3}/search/jql"
    assert session.get(url, params={"jql": "project = ACME"}).status_code == 200
    assert session.post(url, json={"jql": "project = ACME"}).status_code == 500
    assert session.post(url, json={"jql": "project = ACME"}).status_code == 200


def test_fault_delay_triggers_client_timeouts(make_emulator: Callable[..., JiraEmulator],
                                              session: requests.Session) -> None:
    emu = make_emulator()
    emu.inject(r"/myself$", delay=0.4)
    with pytest.raises(requests.Timeout):
        session.get(f"{emu.url}{API3}/myself", timeout=0.1)
    assert session.get(f"{emu.url}{API3}/myself", timeout=2).status_code == 200
    emu.inject(r"/myself$", delay=0.05, status=503)
    assert session.get(f"{emu.url}{API3}/myself", timeout=2).status_code == 503


def test_fault_malformed_body(make_emulator: Callable[..., JiraEmulator],
                              session: requests.Session) -> None:
    emu = make_emulator()
    emu.inject(r"/search/jql$", malformed=True, times=2)
    url = f"{emu.url}{API3}/search/jql"
    for _ in range(2):
        r = session.get(url, params={"jql": "project = ACME"})
        assert r.status_code == 200
        with pytest.raises(requests.JSONDecodeError):
            r.json()
    assert session.get(url, params={"jql": "project = ACME"}).json()["issues"]
    assert [e.faulted for e in emu.requests] == [True, True, False]


def test_fault_drop_closes_the_connection(make_emulator: Callable[..., JiraEmulator],
                                          session: requests.Session) -> None:
    emu = make_emulator()
    emu.inject(r"^/rest/api/3/issue/ACME-1$", drop=True)
    with pytest.raises(requests.ConnectionError):
        session.get(f"{emu.url}{API3}/issue/ACME-1")
    assert session.get(f"{emu.url}{API3}/issue/ACME-1").status_code == 200
    assert [e.status for e in emu.requests] == [0, 200]


def test_spec_validation_catches_drift(spec_validate: Callable[[Any, str], None]) -> None:
    with pytest.raises(AssertionError, match="issueChangeLogs"):
        spec_validate({"issueChangeLogs": [{"issueId": 10002}]},
                      "POST /rest/api/3/changelog/bulkfetch")
    with pytest.raises(AssertionError, match="Additional properties"):
        spec_validate({"issues": [], "total": 3}, "SearchAndReconcileResults")


def test_keep_alive_serves_many_requests_on_one_connection(
    cloud: tuple[JiraEmulator, requests.Session],
) -> None:
    emu, _ = cloud
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/rest/api/3/serverInfo")
            r = conn.getresponse()
            assert r.status == 200 and json.loads(r.read())["deploymentType"] == "Cloud"
            assert r.getheader("Connection") != "close"
    finally:
        conn.close()


# -- dataset hooks the emulator relies on ---------------------------------------------
def test_dataset_edits_are_visible(make_emulator: Callable[..., JiraEmulator],
                                   session: requests.Session) -> None:
    ds = make_dataset(3)
    emu = make_emulator(ds)
    url = f"{emu.url}{API3}/issue/ACME-3"
    assert session.get(url).json()["fields"]["status"]["name"] == "To Do"
    ds.transition("ACME-3", "In Progress", at=T0 + timedelta(days=1), author_id="u-bob")
    fields = session.get(url, params={"expand": "changelog"}).json()
    assert fields["fields"]["status"]["name"] == "In Progress"
    assert fields["changelog"]["total"] == 1
    ds.issues.append(JiraIssue(id="30001", key="ACME-77", project_key="ACME", summary="new",
                               issue_type="Task", status_id="1", created=T0, updated=T0))
    assert ds.issue("ACME-77") is ds.issues[-1]  # the index follows direct appends
    assert session.get(f"{emu.url}{API3}/issue/30001").status_code == 200
    ds.edit_issue("ACME-77", key="ACME-78")
    assert ds.issue("ACME-78") is not None and ds.issue("ACME-77") is None
    ds.delete_issue("ACME-78")
    assert session.get(f"{emu.url}{API3}/issue/30001").status_code == 404
