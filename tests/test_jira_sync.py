"""Integration: the real `jira` client, our connector and sync, against the Jira emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.errors import TrackerConfigError, TrackerError
from connectors.jira import JiraConnector
from connectors.retry import RetryPolicy
from tests.jira_data import TOKEN, build, write_config
from tmabot.cli import main
from tmabot.emulators.jira import JiraEmulator
from tmabot.store import Store
from tmabot.sync import sync_tracker

REPO = Path(__file__).resolve().parents[1]


class Client:
    def __init__(self, projects: tuple[str, ...] = ("ACME",), sync_since: object = None) -> None:
        self.id = "acme"
        self.tracker = "agency-jira"
        self.projects = projects
        self.sync_since = sync_since


def connector(emu: JiraEmulator, deployment: str = "cloud", **kw: object) -> JiraConnector:
    return JiraConnector(
        "agency-jira", emu.url, deployment, token=TOKEN, email="bot@agency.example",
        timeout=5, retry=RetryPolicy(max_attempts=10, base_delay=0.01, max_delay=0.05, jitter=0.01),
        **kw)  # type: ignore[arg-type]


def run_sync(emu: JiraEmulator, store: Store, *, deployment: str = "cloud",
             projects: tuple[str, ...] = ("ACME",), **kw: object) -> object:
    conn = connector(emu, deployment)
    try:
        return sync_tracker(conn, store, [Client(projects)], **kw)  # type: ignore[arg-type]
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'tmabot.db'}")
    yield s
    s.close()


def expected_worklogs(emu: JiraEmulator) -> set[tuple[str, str, int]]:
    return {(w.issue_id, w.id, w.time_spent_seconds)
            for i in emu.dataset.issues for w in i.worklogs}


def stored_worklogs(store: Store) -> set[tuple[str, str, int]]:
    return {(w["issue_id"], w["worklog_id"], w["seconds"]) for w in store.client_worklogs("acme")}


def status_histories(emu: JiraEmulator) -> dict[str, list[str]]:
    return {i.id: [h.id for h in i.histories] for i in emu.dataset.issues}


def stored_histories(store: Store) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in store.client_transitions("acme"):
        out.setdefault(t["issue_id"], []).append(t["history_id"])
    return out


def never_called_removed_search(emu: JiraEmulator) -> bool:
    return not any(r.path.rstrip("/").endswith(("/rest/api/2/search", "/rest/api/3/search"))
                   for r in emu.requests)


def test_multi_page_search_reads_every_issue(store: Store) -> None:
    with JiraEmulator(build(230), token=TOKEN, max_results_cap=50) as emu:
        result = run_sync(emu, store)
        pages = emu.count("POST", "/rest/api/3/search/jql")
        assert pages == 5  # 230 issues by 50
        assert result.tickets_written == 230  # type: ignore[attr-defined]
        assert store.counts()["tickets"] == 230
        assert never_called_removed_search(emu)
        bodies = [r.json() for r in emu.requests if r.path.endswith("/search/jql")]
        assert "nextPageToken" not in bodies[0] and all("nextPageToken" in b for b in bodies[1:])
        assert bodies[0]["jql"] == 'project = "ACME" ORDER BY updated ASC, key ASC'


@pytest.mark.parametrize("epoch_ms", [False, True])
def test_truncated_changelog_and_worklogs_are_completed(store: Store, epoch_ms: bool) -> None:
    ds = build(30, long_history={3, 7, 11}, many_worklogs={4, 7})
    with JiraEmulator(ds, token=TOKEN, bulkfetch_epoch_ms=epoch_ms) as emu:
        result = run_sync(emu, store)
        assert stored_histories(store) == {k: v for k, v in status_histories(emu).items() if v}
        assert stored_worklogs(store) == expected_worklogs(emu)
        assert emu.count("POST", "/rest/api/3/changelog/bulkfetch") == 1  # one batch for 3
        assert emu.count("GET", "/rest/api/3/issue/") == 2  # worklogs of the two issues
        stats = result.clients["acme"]  # type: ignore[attr-defined]
        assert (stats.histories_completed, stats.worklogs_completed) == (3, 2)
        assert store.pending_histories("agency-jira", ["acme"]) == []


def test_bulkfetch_pages_split_inside_one_issue(store: Store) -> None:
    ds = build(6, long_history={1, 2, 3, 4, 5, 6})
    with JiraEmulator(ds, token=TOKEN, inline_changelog_cap=10) as emu:
        import connectors.jira as cj

        old = cj.CHANGELOG_PAGE
        cj.CHANGELOG_PAGE = 70  # 6 x 50 histories over pages of 70: issues straddle pages
        try:
            run_sync(emu, store)
        finally:
            cj.CHANGELOG_PAGE = old
        assert emu.count("POST", "/rest/api/3/changelog/bulkfetch") == 5
        assert stored_histories(store) == status_histories(emu)


def test_historical_status_ids_map_to_categories(store: Store) -> None:
    with JiraEmulator(build(10), token=TOKEN) as emu:
        run_sync(emu, store)
        rows = [t for t in store.client_transitions("acme") if t["to_status_id"] == "7"]
        assert rows and all(t["to_category"] == "in_progress" for t in rows)
        assert all(t["from_category"] and t["to_category"]
                   for t in store.client_transitions("acme"))
        assert emu.count("GET", "/rest/api/3/status") == 1


def test_data_center_flavour_completes_per_issue(store: Store) -> None:
    ds = build(40, long_history={5}, many_worklogs={6})
    with JiraEmulator(ds, flavour="server", token=TOKEN, max_results_cap=15,
                      inline_changelog_cap=20) as emu:
        run_sync(emu, store, deployment="server")
        assert emu.count("GET", "/rest/api/2/search") == 3
        assert stored_histories(store) == {k: v for k, v in status_histories(emu).items() if v}
        assert stored_worklogs(store) == expected_worklogs(emu)
        assert emu.count(path_prefix="/rest/api/3") == 0


def test_incremental_picks_up_exactly_the_changes(store: Store) -> None:
    ds = build(25, many_worklogs={9})
    with JiraEmulator(ds, token=TOKEN) as emu:
        run_sync(emu, store, now=datetime.now(UTC))
        before = store.dump()
        now = datetime.now(UTC)
        ds.edit_issue("ACME-2", at=now, summary="Titre corrigé")
        ds.add_worklog("ACME-5", "acc-hugo", now - timedelta(hours=1), 1800, "Suite", at=now)
        victim = ds.issue("ACME-9").worklogs[3]  # type: ignore[union-attr]
        ds.delete_worklog(victim.id, at=now)
        emu.reset_log()
        result = run_sync(emu, store)
        assert result.tickets_written == 3  # type: ignore[attr-defined]
        assert stored_worklogs(store) == expected_worklogs(emu)
        titles = {t["key"]: t["title"] for t in store.client_tickets("acme")}
        assert titles["ACME-2"] == "Titre corrigé"
        after = store.dump()
        changed = {"20002", "20005", "20009"}
        # Nothing else moved: every other ticket row is byte-for-byte what it was.
        assert [r for r in before["tickets"] if r[1] not in changed] == [
            r for r in after["tickets"] if r[1] not in changed]
        assert emu.count("GET", "/rest/api/3/serverInfo") == 0  # cached facts


def test_incremental_with_no_change_costs_one_request_per_project(store: Store) -> None:
    # The newest issues are re-read in the overlap window: truncated ones must not be
    # completed again when nothing changed.
    ds = build(40, projects=("ACME", "BETA"), long_history={39, 40}, many_worklogs={39, 40})
    with JiraEmulator(ds, token=TOKEN) as emu:
        run_sync(emu, store, projects=("ACME", "BETA"))
        emu.reset_log()
        result = run_sync(emu, store, projects=("ACME", "BETA"))
        assert emu.count() == 2
        assert result.tickets_written == 0  # type: ignore[attr-defined]


def test_jql_date_is_in_the_users_zone_with_overlap(store: Store) -> None:
    ds = build(3)
    ds.user_time_zone = "America/New_York"
    with JiraEmulator(ds, token=TOKEN) as emu:
        run_sync(emu, store)
        emu.reset_log()
        run_sync(emu, store)
        jql = emu.requests[0].json()["jql"]
        cursor = max(i.updated for i in ds.issues) - timedelta(minutes=10)
        from zoneinfo import ZoneInfo

        local = cursor.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M")
        assert f'updated >= "{local}"' in jql


def test_storms_of_429_and_503_are_survived(store: Store) -> None:
    with JiraEmulator(build(120, long_history={2}), token=TOKEN, max_results_cap=50) as emu:
        emu.inject(r"/search/jql$", status=429, headers={"Retry-After": "0"}, times=3)
        emu.inject(r"/search/jql$", status=503, times=2)
        emu.inject(r"/changelog/bulkfetch$", status=503, times=2)
        emu.inject(r"/search/jql$", malformed=True, times=1)
        emu.inject(r"/search/jql$", drop=True, times=1)
        run_sync(emu, store)
        assert store.counts()["tickets"] == 120
        assert stored_histories(store) == {k: v for k, v in status_histories(emu).items() if v}
        faulted = [r for r in emu.requests if r.faulted]
        assert len(faulted) == 9


def test_timeouts_are_retried(store: Store) -> None:
    with JiraEmulator(build(5), token=TOKEN) as emu:
        emu.inject(r"/search/jql$", delay=1.5, times=1)
        conn = JiraConnector("agency-jira", emu.url, "cloud", token=TOKEN,
                             email="bot@agency.example", timeout=0.5,
                             retry=RetryPolicy(base_delay=0.01))
        try:
            sync_tracker(conn, store, [Client()])  # type: ignore[list-item]
        finally:
            conn.close()
        assert store.counts()["tickets"] == 5


def test_persistent_failure_is_a_clear_error(store: Store) -> None:
    with JiraEmulator(build(5), token=TOKEN) as emu:
        emu.inject(r"/search/jql$", status=503, times=100)
        with pytest.raises(TrackerError, match=r"agency-jira: search: still failing after 10"):
            run_sync(emu, store)
        assert store.counts()["tickets"] == 0


def test_bad_jql_is_reported_with_jiras_message(store: Store) -> None:
    with JiraEmulator(build(5), token=TOKEN) as emu:
        with pytest.raises(TrackerError) as info:
            run_sync(emu, store, projects=("NOPE",))
        assert "NOPE" in str(info.value) and "does not exist" in str(info.value)
        assert store.counts()["tickets"] == 0


def test_deployment_mismatch_is_a_config_error(store: Store) -> None:
    with JiraEmulator(build(2), flavour="server", token=TOKEN) as emu:
        with pytest.raises(TrackerConfigError, match='deployment = "cloud"'):
            run_sync(emu, store, deployment="cloud")


def test_full_sync_and_reconcile_drop_deleted_issues(store: Store) -> None:
    ds = build(10)
    with JiraEmulator(ds, token=TOKEN) as emu:
        run_sync(emu, store)
        ds.delete_issue("ACME-3")
        run_sync(emu, store)  # incremental cannot see a deletion
        assert store.counts()["tickets"] == 10
        run_sync(emu, store, reconcile=True)
        assert store.counts()["tickets"] == 9
        ds.delete_issue("ACME-4")
        result = run_sync(emu, store, full=True)
        assert store.counts()["tickets"] == 8
        assert result.clients["acme"].dropped == 1  # type: ignore[attr-defined]
        assert all(w["issue_id"] not in ("20003", "20004") for w in store.client_worklogs("acme"))


def test_moved_issue_follows_its_new_project(store: Store) -> None:
    ds = build(6, projects=("ACME", "BETA"))
    with JiraEmulator(ds, token=TOKEN) as emu:
        run_sync(emu, store, projects=("ACME", "BETA"))
        issue = ds.issue("ACME-1")
        assert issue is not None
        ds.edit_issue("ACME-1", at=datetime.now(UTC), key="BETA-99", project_key="BETA")
        run_sync(emu, store, projects=("ACME", "BETA"))
        keys = {t["issue_id"]: t["key"] for t in store.client_tickets("acme")}
        assert keys[issue.id] == "BETA-99" and len(keys) == 6


# -- through the command line ---------------------------------------------------------
def test_cli_sync_then_tickets_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    with JiraEmulator(build(8, many_worklogs={2}), token=TOKEN) as emu:
        cfg = write_config(tmp_path, emu.url)
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        assert main(["--config", str(cfg), "tickets", "--client", "acme", "--format",
                     "json"]) == 0
    out = capsys.readouterr().out
    items = json.loads(out[out.index("["):])
    assert len(items) == 8
    first = items[0]
    assert first["key"] == "ACME-1" and first["source"] == "jira"
    assert first["url"].endswith("/browse/ACME-1")
    assert first["priority"] == "P1" and first["tracker_priority"] == "High"
    assert first["created_at"].endswith("+02:00")  # agency zone, September
    by_key = {i["key"]: i for i in items}
    assert by_key["ACME-2"]["time_spent_hours"] == pytest.approx(
        sum(900 * (1 + w % 4) for w in range(25)) / 3600, abs=0.01)
    assert by_key["ACME-3"]["assignee_email"] is None  # hidden by the user's privacy


def test_cli_wrong_token_exits_2_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", "wrong-token-value")
    with JiraEmulator(build(3), token=TOKEN) as emu:
        cfg = write_config(tmp_path, emu.url)
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "agency-jira" in err and "authentication failed" in err
    assert "wrong-token-value" not in err


def test_cli_check_config_online(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    with JiraEmulator(build(3), token=TOKEN) as emu:
        cfg = write_config(tmp_path, emu.url, projects=("ACME", "GHOST"))
        assert main(["check-config", "--config", str(cfg)]) == 0
        assert main(["check-config", "--online", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "GHOST" in err and len(err.strip().splitlines()) == 1


def test_cli_missing_token_env_is_a_config_error(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TEST_JIRA_TOKEN", raising=False)
    cfg = write_config(tmp_path, "http://127.0.0.1:9")
    assert main(["sync", "--config", str(cfg)]) == 2
    assert "TEST_JIRA_TOKEN" in capsys.readouterr().err


# -- crash safety ---------------------------------------------------------------------
def _sync_subprocess(cfg: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, TEST_JIRA_TOKEN=TOKEN, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "tmabot", "sync", "--config", str(cfg),
                             "--quiet"], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


@pytest.mark.parametrize("kill_after,path", [
    (2, "/search/jql"), (5, "/search/jql"), (1, "/changelog/bulkfetch"), (1, "/worklog"),
])
def test_sigkilled_sync_rerun_equals_uninterrupted(tmp_path: Path, kill_after: int,
                                                   path: str) -> None:
    ds = build(160, long_history={7, 40, 90, 150}, many_worklogs={8, 41, 91, 151})
    with JiraEmulator(ds, token=TOKEN, max_results_cap=20) as emu:
        # Slow every answer a little so the kill lands in the middle of the work.
        emu.inject(r"/rest/api/3/(search/jql|changelog|issue)", delay=0.05, times=10_000)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        cfg_a = write_config(tmp_path / "a", emu.url)
        proc = _sync_subprocess(cfg_a)
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if sum(1 for r in emu.requests if path in r.path) >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait(30)
        assert proc.returncode == -signal.SIGKILL, "the sync finished before it was killed"
        rerun = _sync_subprocess(cfg_a)
        assert rerun.wait(120) == 0, rerun.stderr.read() if rerun.stderr else ""
        cfg_b = write_config(tmp_path / "b", emu.url)
        clean = _sync_subprocess(cfg_b)
        assert clean.wait(120) == 0
        for p in (proc, rerun, clean):
            if p.stderr:
                p.stderr.close()
    a = Store(f"sqlite:///{tmp_path / 'a' / 'tmabot.db'}")
    b = Store(f"sqlite:///{tmp_path / 'b' / 'tmabot.db'}")
    try:
        dump_a, dump_b = a.dump(), b.dump()
        assert dump_a["tickets"] and dump_a["transitions"] and dump_a["worklogs"]
        for table in dump_b:
            assert dump_a[table] == dump_b[table], table
    finally:
        a.close()
        b.close()
