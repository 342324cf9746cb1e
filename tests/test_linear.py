"""Linear: the real `gql` client against the emulator, queries checked against the real
schema, incremental sync, rate limits, errors, timesheets and a mixed Jira + Linear agency."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import graphql
import pytest
from gql import gql

from connectors.errors import TrackerConfigError
from connectors.linear import (
    QUERY_NAMES,
    LinearConnector,
    estimated_complexity,
    query_text,
)
from connectors.retry import RetryPolicy
from tests import jira_data
from tests.conftest import shared_path
from tests.linear_data import BASE, KEY, STATES, build, write_config
from tmabot.cli import main
from tmabot.emulators.jira import JiraEmulator
from tmabot.emulators.linear import SCHEMA_FILE, LinearEmulator
from tmabot.store import Store
from tmabot.sync import sync

RATELIMITED = {"errors": [{"message": "Rate limit exceeded",
                           "extensions": {"code": "RATELIMITED"}}]}


@pytest.fixture(scope="session")
def real_schema_sdl() -> str:
    path = shared_path("api/linear/schema.graphql")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def real_schema(real_schema_sdl: str) -> graphql.GraphQLSchema:
    return graphql.build_ast_schema(graphql.parse(real_schema_sdl))


def _connector(emu: LinearEmulator, **kw: Any) -> LinearConnector:
    kw.setdefault("retry", RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=2.0))
    return LinearConnector("agency-linear", emu.endpoint, token=KEY, **kw)


# -- the schema ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_every_query_validates_against_linears_published_schema(
        name: str, real_schema: graphql.GraphQLSchema) -> None:
    assert graphql.validate(real_schema, graphql.parse(query_text(name))) == []


def test_the_emulators_schema_is_a_faithful_subset_of_the_real_one(
        real_schema: graphql.GraphQLSchema) -> None:
    ours = graphql.build_ast_schema(graphql.parse(SCHEMA_FILE.read_text(encoding="utf-8")))
    checked = 0
    for name, t in ours.type_map.items():
        if name.startswith("__"):
            continue
        real = real_schema.type_map.get(name)
        assert real is not None, f"type {name} is not in Linear's schema"
        for field_name, f in getattr(t, "fields", {}).items():
            rf = real.fields.get(field_name)  # type: ignore[union-attr]
            assert rf is not None, f"{name}.{field_name} is not in Linear's schema"
            assert str(rf.type) == str(f.type), f"{name}.{field_name}"
            for arg, a in getattr(f, "args", {}).items():
                assert arg in rf.args and str(rf.args[arg].type) == str(a.type), \
                    f"{name}.{field_name}({arg})"
            checked += 1
    assert checked > 80


def test_a_full_sync_through_gql_validating_every_request_locally(
        real_schema_sdl: str, tmp_path: Path) -> None:
    """gql.Client(schema=...) validates each query before sending it."""
    ds = build(130, long_history={7})
    with LinearEmulator(ds, api_key=KEY) as emu:
        conn = _connector(emu, schema=real_schema_sdl)
        conn.probe()
        conn.check_project("INI")
        pages = list(conn.pull("INI", None))
        assert sum(len(p.tickets) for p in pages) == 130
        assert conn.issue_ids("INI") == {i.id for i in ds.issues}
        batches = list(conn.complete_histories(["issue-00007"]))
        assert [len(b["issue-00007"]) for b in batches] == [27]  # the 27 state changes
        # The schema is used: a query it rejects never leaves the client.
        sent = emu.count()
        with pytest.raises(graphql.GraphQLError):
            conn.session.execute(gql("query { issues { nodes { noSuchField } } }"))
        assert emu.count() == sent
        conn.close()
        assert emu.handler_errors == []


# -- sync ---------------------------------------------------------------------------------


def test_multi_page_issues_and_long_histories_are_complete(tmp_path: Path) -> None:
    ds = build(130, long_history={3, 77})
    with LinearEmulator(ds, api_key=KEY) as emu:
        conn = _connector(emu)
        pages = list(conn.pull("INI", None))
        assert len(pages) == 3  # 50 + 50 + 30
        truncated = [t.issue_id for p in pages for t in p.tickets if not t.history_complete]
        assert sorted(truncated) == ["issue-00003", "issue-00077"]
        full = {k: v for batch in conn.complete_histories(truncated) for k, v in batch.items()}
        # 40 history entries, one in three a label change: 27 state changes, oldest first.
        assert [len(full[i]) for i in truncated] == [27, 27]
        assert all(a.at <= b.at for a, b in zip(full["issue-00003"], full["issue-00003"][1:],
                                                strict=False))
        # Well within Linear's complexity cap of 10,000 per query.
        assert 0 < emu.max_complexity_seen <= 5000
        assert estimated_complexity(conn.page_size, conn.history_size, conn.labels_size) \
            <= 5000
        conn.close()


def test_mapping_of_an_issue(tmp_path: Path) -> None:
    ds = build(6)
    ds.move("INI-5", "st-canceled", BASE + timedelta(days=1))
    with LinearEmulator(ds, api_key=KEY) as emu:
        conn = _connector(emu)
        tickets = {t.key: t for p in conn.pull("INI", None) for t in p.tickets}
        conn.close()
    one = tickets["INI-1"]  # priority 1 → Urgent; labels Bug; cycle 42; SLA fields
    assert (one.tracker_priority, one.labels, one.project) == ("High", ("Bug",), "INI")
    assert one.url.endswith("/agence-test/issue/INI-1")
    assert one.assignee_email == "lea@agence.fr" and one.reporter_email == "bot@agence.fr"
    assert one.extra is not None and one.extra["cycle"] == {"number": 42.0, "name": "Cycle 42"}
    assert one.extra["sla"]["slaType"] == "all" and one.extra["sla"]["slaBreachesAt"]
    assert one.extra["estimate"] == 2.0 and one.estimate_hours is None
    five = tickets["INI-5"]
    assert (five.status, five.status_category, five.status_type) == ("Canceled", "done",
                                                                     "canceled")
    assert five.resolved_at == BASE + timedelta(days=1)
    assert tickets["INI-4"].tracker_priority == "No priority"


def test_incremental_sync_picks_up_only_changes(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LINEAR_KEY", KEY)
    ds = build(120)
    with LinearEmulator(ds, api_key=KEY) as emu:
        cfg = write_config(tmp_path, emu.endpoint)
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        store = Store(f"sqlite:///{tmp_path / 'tmabot.db'}")
        before = store.dump()
        emu.reset_log()
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        assert emu.count() == 1  # one page, nothing new
        assert store.dump() == before
        later = ds.issues[-1].updated_at + timedelta(hours=1)
        ds.move("INI-10", "st-done", later, "u-lea")
        emu.reset_log()
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        assert emu.count() == 1
        after = store.dump()
        changed = {r[1] for r in after["tickets"]} ^ {r[1] for r in before["tickets"]}
        assert changed == set()
        assert [r for r in after["tickets"] if r not in before["tickets"]][0][1] == "issue-00010"
        assert len(after["transitions"]) == len(before["transitions"]) + 1
        store.close()


def test_a_crash_mid_walk_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cursor moves only when a team's walk is complete (pages come newest first)."""
    monkeypatch.setenv("TEST_LINEAR_KEY", KEY)
    ds = build(120)
    with LinearEmulator(ds, api_key=KEY) as emu:
        cfg = write_config(tmp_path, emu.endpoint, extra="")
        text = cfg.read_text().replace("max_retries = 4", "max_retries = 0")
        cfg.write_text(text)
        emu.inject(r"/graphql", status=503, times=1)  # the probe fails: nothing written
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 1
        # Now fail on the second issues page: the first page is stored, the cursor is not.
        emu.reset_log()
        calls = {"n": 0}
        original = emu._graphql

        def flaky(request: Any) -> Any:
            body = request.json() or {}
            if "TmabotIssues" in body.get("query", ""):
                calls["n"] += 1
                if calls["n"] == 2:
                    return emu.error_response(503, "boom")
            return original(request)

        emu._routes.clear()
        emu.add_route("POST", r"/graphql", flaky)
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 1
        store = Store(f"sqlite:///{tmp_path / 'tmabot.db'}")
        assert store.cursor("agency-linear", "INI") is None
        assert 0 < store.counts()["tickets"] < 120
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        assert store.counts()["tickets"] == 120
        store.close()


def test_ratelimited_is_waited_out_until_the_reset_header(tmp_path: Path) -> None:
    ds = build(60)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with LinearEmulator(ds, api_key=KEY) as emu:
        reset = int((time.time() + 0.8) * 1000)
        emu.inject(r"/graphql", status=400, body=RATELIMITED, times=2,
                   headers={"x-ratelimit-requests-reset": str(reset),
                            "x-ratelimit-requests-remaining": "0"})
        conn = _connector(emu, retry=RetryPolicy(max_attempts=5, base_delay=0.01,
                                                 max_delay=5.0, jitter=0.0, sleep=sleep))
        assert sum(len(p.tickets) for p in conn.pull("INI", None)) == 60
        conn.close()
    assert len(waits) == 2
    # Until the reset, not a fixed backoff: the wait is what was left of the window when the
    # refusal came (measured from the emulator's clock, so a slow start does not matter).
    left = reset / 1000 - emu.requests[0].timestamp
    assert waits[0] <= 0.85 and abs(waits[0] - left) < 0.15, (waits, left)
    assert emu.count() == 2 + 2  # two refused, then two pages


def test_a_spent_budget_in_the_emulator_is_survived(tmp_path: Path) -> None:
    ds = build(60)
    with LinearEmulator(ds, api_key=KEY, requests_per_window=2, window_seconds=0.5) as emu:
        conn = _connector(emu, page_size=20)
        assert sum(len(p.tickets) for p in conn.pull("INI", None)) == 60
        conn.close()
        refused = [r for r in emu.requests if r.status == 400]
        assert len(refused) >= 1  # the budget of 2 per 0.5 s was hit, and waited out
        assert len(emu.requests) == len(refused) + 3  # 3 pages of 20


def test_server_errors_and_malformed_bodies_are_retried(tmp_path: Path) -> None:
    ds = build(30)
    with LinearEmulator(ds, api_key=KEY) as emu:
        emu.inject(r"/graphql", status=502, times=2)
        emu.inject(r"/graphql", malformed=True, times=1)
        conn = _connector(emu)
        assert sum(len(p.tickets) for p in conn.pull("INI", None)) == 30
        conn.close()


def test_bad_key_is_a_config_error_with_one_line(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_LINEAR_KEY", "lin_api_wrong")
    with LinearEmulator(build(3), api_key=KEY) as emu:
        cfg = write_config(tmp_path, emu.endpoint)
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 2
        assert emu.count() == 1  # not retried
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "authentication failed" in err
    assert "lin_api_wrong" not in err and "Traceback" not in err
    with LinearEmulator(build(3), api_key=KEY) as emu:
        conn = LinearConnector("x", emu.endpoint, token="nope")
        with pytest.raises(TrackerConfigError):
            conn.probe()
        conn.close()


def test_oauth_tokens_go_as_bearer(tmp_path: Path) -> None:
    with LinearEmulator(build(3), api_key=KEY, oauth_token="lin_oauth_abc") as emu:
        conn = LinearConnector("x", emu.endpoint, token="lin_oauth_abc")
        assert conn.probe().version == "linear:agence-test"
        conn.close()


def test_unknown_team_is_reported(tmp_path: Path) -> None:
    with LinearEmulator(build(3), api_key=KEY) as emu:
        conn = _connector(emu)
        conn.check_project("INI")
        with pytest.raises(TrackerConfigError, match="team 'NOPE' not found"):
            conn.check_project("NOPE")
        conn.close()


def test_archived_issues_are_not_synced_and_reconcile_drops_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LINEAR_KEY", KEY)
    ds = build(10)
    with LinearEmulator(ds, api_key=KEY) as emu:
        cfg = write_config(tmp_path, emu.endpoint)
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        ds.issue("INI-4").archived_at = BASE + timedelta(days=30)
        assert main(["sync", "--config", str(cfg), "--quiet", "--reconcile"]) == 0
    store = Store(f"sqlite:///{tmp_path / 'tmabot.db'}")
    keys = {r["key"] for r in store.client_tickets("initech")}
    store.close()
    assert "INI-4" not in keys and len(keys) == 9


# -- time, and tickets from Linear ----------------------------------------------------------


def test_timesheet_import_gives_linear_tickets_their_hours(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_LINEAR_KEY", KEY)
    sheet = tmp_path / "temps.csv"
    sheet.write_text("date,issue,hours,person,comment\n"
                     "2026-11-03,INI-1,1.5,lea@agence.fr,Analyse\n"
                     "2026-11-04,ini-1,0.25,lea@agence.fr,Correctif\n"
                     "2026-11-04,INI-2,2,lea@agence.fr,Mise à jour\n"
                     "2026-11-05,ACME-9,1,lea@agence.fr,Autre client\n"
                     "2026-11-05,,1,lea@agence.fr,Réunion interne\n", encoding="utf-8")
    with LinearEmulator(build(6), api_key=KEY) as emu:
        cfg = write_config(tmp_path, emu.endpoint, extra='''
[clients.estimate_hours]
"1" = 0.5
"3" = 2
''')
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
    capsys.readouterr()
    args = ["import-timesheet", str(sheet), "--client", "initech", "--config", str(cfg)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "3 entrée(s) importée(s)" in captured.out and "3,75 h" in captured.out
    assert "ACME-9: not a ticket of initech (1 row(s)" in captured.err
    assert "line 6" in captured.err
    assert main(args) == 0  # again: nothing new
    assert "0 entrée(s) importée(s) pour initech (0,00 h), 3 déjà importée(s)" \
        in capsys.readouterr().out
    assert main(["tickets", "--client", "initech", "--format", "json", "--config",
                 str(cfg)]) == 0
    items = {t["key"]: t for t in json.loads(capsys.readouterr().out)}
    assert (items["INI-1"]["time_spent_hours"], items["INI-1"]["time_source"]) == (1.75,
                                                                                  "timesheet")
    assert items["INI-2"]["time_spent_hours"] == 2.0
    # No timesheet: the estimate table (INI-6 has estimate 3 → 2 h; INI-3 none → 0 h).
    assert (items["INI-6"]["time_spent_hours"], items["INI-6"]["time_source"]) == (2.0,
                                                                                  "estimate")
    assert (items["INI-3"]["time_spent_hours"], items["INI-3"]["time_source"]) == (0.0, "none")
    assert items["INI-4"]["priority"] == "P3" and items["INI-4"]["priority_known"] is False
    assert items["INI-1"]["source"] == "linear"
    assert items["INI-1"]["tracker_sla"]["slaType"] == "all"  # Linear's own, for comparison
    assert items["INI-2"]["tracker_sla"]["slaBreachesAt"] is None


def test_unreadable_timesheet_is_one_line_exit_2(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_LINEAR_KEY", KEY)
    cfg = write_config(tmp_path, "http://127.0.0.1:9/graphql")
    bad = tmp_path / "x.csv"
    bad.write_text("foo,bar\n1,2\n", encoding="utf-8")
    assert main(["import-timesheet", str(bad), "--client", "initech", "--config",
                 str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "x.csv" in err


def test_a_mixed_agency_syncs_jira_and_linear_with_one_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_LINEAR_KEY", KEY)
    monkeypatch.setenv("TEST_JIRA_TOKEN", jira_data.TOKEN)
    with JiraEmulator(jira_data.build(8), token=jira_data.TOKEN) as jira, \
            LinearEmulator(build(7), api_key=KEY) as linear:
        cfg = jira_data.write_config(tmp_path, jira.url)
        (tmp_path / "l").mkdir()
        linear_cfg = write_config(tmp_path / "l", linear.endpoint)
        linear_part = linear_cfg.read_text().split("[trackers.agency-linear]", 1)[1]
        cfg.write_text(cfg.read_text() + "\n[trackers.agency-linear]" + linear_part)
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
    capsys.readouterr()
    shapes = []
    for client in ("acme", "initech"):
        assert main(["tickets", "--client", client, "--format", "json", "--config",
                     str(cfg)]) == 0
        items = json.loads(capsys.readouterr().out)
        assert items and {t["source"] for t in items} == {"jira" if client == "acme"
                                                          else "linear"}
        shapes.append({k: sorted(v) if isinstance(v, dict) else type(v).__name__
                       for k, v in items[0].items() if k in ("sla", "key", "category")})
        assert all(t["category"] != "" and set(t["sla"]) == {"response", "resolution",
                                                              "delivery"} for t in items)
    assert shapes[0] == shapes[1]


def test_sync_with_a_real_store_and_the_settings_object(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from tmabot.config import load_config

    monkeypatch.setenv("TEST_LINEAR_KEY", KEY)
    with LinearEmulator(build(20, long_history={2}), api_key=KEY) as emu:
        cfg = write_config(tmp_path, emu.endpoint)
        settings = load_config(cfg)
        store = Store(settings.agency.database_url)
        result = sync(settings, store)
        assert result.tickets_written == 20
        assert result.clients["initech"].histories_completed == 1
        assert store.pending_histories("agency-linear", ["initech"]) == []
        store.close()


def test_paging_is_exact_when_many_issues_share_one_updated_at(tmp_path: Path) -> None:
    ds = build(130)
    same = BASE + timedelta(days=3)
    for issue in ds.issues:
        issue.updated_at = same  # a bulk edit: one instant for every issue
    with LinearEmulator(ds, api_key=KEY) as emu:
        conn = _connector(emu)
        keys = [t.key for p in conn.pull("INI", None) for t in p.tickets]
        again = [t.key for p in conn.pull("INI", same) for t in p.tickets]
        conn.close()
    assert len(keys) == len(set(keys)) == 130
    assert sorted(again) == sorted(keys)


def test_emulator_pages_follow_the_cursor_whatever_the_dataset_order() -> None:
    """Workflow states are kept in the dataset's order (not sorted): pages after a cursor
    must neither repeat nor skip any."""
    import requests

    query = ("query($after: String) { workflowStates(first: 3, after: $after) "
             "{ nodes { id } pageInfo { hasNextPage endCursor } } }")
    seen: list[str] = []
    after = None
    with LinearEmulator(build(1), api_key=KEY) as emu:
        for _ in range(5):
            data = requests.post(emu.endpoint, json={"query": query,
                                                     "variables": {"after": after}},
                                 headers={"Authorization": KEY}, timeout=5).json()
            page = data["data"]["workflowStates"]
            seen += [n["id"] for n in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(STATES) and set(seen) == {s.id for s in STATES}
