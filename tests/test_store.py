"""The store on SQLite and PostgreSQL: migrations, upserts without duplicates, replacement."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.base import (
    Page,
    TicketRecord,
    TrackerFacts,
    TransitionRecord,
    WorklogRecord,
    WorklogSet,
)
from tmabot.store import Store, StoreError

T0 = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)


def ticket(issue_id: str, *, updated: datetime = T0, **kw: object) -> TicketRecord:
    base = TicketRecord(
        issue_id=issue_id, key=f"ACME-{issue_id}", project="ACME",
        url=f"https://x/browse/ACME-{issue_id}", title="Formulaire cassé", description="",
        issue_type="Bug", labels=("bug",), components=(), parent_key=None,
        tracker_priority="High", status="En cours", status_id="3", status_category="in_progress",
        created_at=T0, updated_at=updated, resolved_at=None, assignee_email=None,
        assignee_name=None, reporter_email=None, estimate_hours=None)
    return replace(base, **kw)  # type: ignore[arg-type]


def tr(issue_id: str, hid: str, minutes: int, to: str = "in_progress") -> TransitionRecord:
    return TransitionRecord(issue_id, hid, 0, T0 + timedelta(minutes=minutes), "dev@a.fr",
                            "1", "À faire", "todo", "3", "En cours", to)


def wl(wid: str, issue_id: str, seconds: int = 3600) -> WorklogRecord:
    return WorklogRecord(wid, issue_id, "u1", "dev@a.fr", "Dev", T0, seconds, "", T0)


def page(*tickets: TicketRecord, hist: dict[str, list[TransitionRecord]] | None = None,
         logs: dict[str, list[WorklogRecord]] | None = None) -> Page:
    return Page(tickets=list(tickets), transitions=hist or {}, worklogs=logs or {})


def write(store: Store, p: Page, cursor: datetime | None = T0) -> int:
    return store.write_page("jira1", "acme", "jira", p, project="ACME", cursor_at=cursor,
                            run_at=T0)


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url)
    yield s
    s.close()


def test_migrations_apply_once_and_are_idempotent(db_url: str) -> None:
    s = Store(db_url)
    assert s.current_revision() == "0006"
    s.upgrade()  # again: nothing to do, no error
    assert s.counts() == {"tickets": 0, "transitions": 0, "worklogs": 0}
    s.close()


def test_a_store_at_0001_upgrades_to_0002_keeping_its_data(db_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from tmabot.store import MIGRATIONS

    s = Store(db_url)
    write(s, page(ticket("1"), hist={"1": [tr("1", "10", 5)]}, logs={"1": [wl("100", "1")]}))
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with s.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert s.current_revision() == "0001"
    s.close()
    again = Store(db_url)  # migrations run on start
    assert again.current_revision() == "0006"
    assert again.counts() == {"tickets": 1, "transitions": 1, "worklogs": 1}
    row = again.client_tickets("acme")[0]
    assert row["status_type"] is None and row["extra"] is None
    assert again.client_time_entries("acme") == []
    again.close()


def test_upsert_never_duplicates(store: Store) -> None:
    p = page(ticket("1"), ticket("2"), hist={"1": [tr("1", "10", 5)], "2": []},
             logs={"1": [wl("100", "1")], "2": []})
    for _ in range(3):
        write(store, p)
    assert store.counts() == {"tickets": 2, "transitions": 1, "worklogs": 1}
    write(store, page(ticket("1", title="Nouveau titre", updated=T0 + timedelta(hours=1)),
                      hist={"1": [tr("1", "10", 5)]}, logs={"1": [wl("100", "1")]}))
    rows = {r["issue_id"]: r for r in store.client_tickets("acme")}
    assert rows["1"]["title"] == "Nouveau titre"
    assert store.counts()["tickets"] == 2


def test_datetimes_round_trip_as_aware_utc(store: Store) -> None:
    paris = timezone(timedelta(hours=2))
    write(store, page(ticket("1", created_at=datetime(2026, 10, 5, 10, 0, tzinfo=paris))))
    row = store.client_tickets("acme")[0]
    assert row["created_at"] == datetime(2026, 10, 5, 8, 0, tzinfo=UTC)
    assert row["created_at"].tzinfo is not None


def test_history_and_worklogs_are_replaced_per_issue(store: Store) -> None:
    write(store, page(ticket("1"), hist={"1": [tr("1", "10", 5), tr("1", "11", 9)]},
                      logs={"1": [wl("100", "1"), wl("101", "1")]}))
    # The tracker now has one history entry less and a worklog deleted.
    write(store, page(ticket("1", updated=T0 + timedelta(hours=1)),
                      hist={"1": [tr("1", "10", 5)]}, logs={"1": [wl("101", "1", 1800)]}))
    assert [t["history_id"] for t in store.client_transitions("acme")] == ["10"]
    assert [(w["worklog_id"], w["seconds"]) for w in store.client_worklogs("acme")] == [
        ("101", 1800)]


def test_pending_completion_flags_and_worklog_sets_with_kept_ids(store: Store) -> None:
    t = ticket("1", history_complete=False, worklogs_complete=False, worklog_total=3)
    p = Page(tickets=[t], partial_transitions={"1": [tr("1", "11", 9)]})
    write(store, p)
    assert store.pending_histories("jira1", ["acme"]) == ["1"]
    assert store.pending_worklogs("jira1", ["acme"]) == {"1": 3}
    store.write_histories("jira1", {"1": [tr("1", "10", 5), tr("1", "11", 9)]})
    assert store.pending_histories("jira1", ["acme"]) == []
    assert len(store.client_transitions("acme")) == 2
    store.write_worklog_sets("jira1", {"1": WorklogSet("1", [wl("100", "1"), wl("101", "1"),
                                                             wl("102", "1")])})
    # A later bulk pass: 100 unchanged (kept), 101 deleted in Jira, 103 new.
    store.write_worklog_sets("jira1", {"1": WorklogSet("1", [wl("103", "1")],
                                                       frozenset({"100", "102"}))})
    assert sorted(w["worklog_id"] for w in store.client_worklogs("acme")) == [
        "100", "102", "103"]
    assert store.pending_worklogs("jira1", ["acme"]) == {}
    assert store.known_worklogs("jira1")["103"] == ("1", T0)


def test_unchanged_ids_skip_overlap_rereads(store: Store) -> None:
    write(store, page(ticket("1"), hist={"1": []}, logs={"1": []}))
    same = store.unchanged_ids("jira1", "acme", page(ticket("1"), ticket("2")))
    assert same == {"1"}
    assert store.unchanged_ids("jira1", "acme", page(ticket("1", updated=T0 + timedelta(1)))) \
        == set()
    assert store.unchanged_ids("jira1", "other-client", page(ticket("1"))) == set()


def test_cursor_and_tracker_facts(store: Store) -> None:
    assert store.cursor("jira1", "ACME") is None
    write(store, page(ticket("1")), cursor=T0)
    assert store.cursor("jira1", "ACME") == T0
    store.finish_project("jira1", "ACME", "acme", T0 + timedelta(hours=1), T0, True)
    assert store.cursor("jira1", "ACME") == T0 + timedelta(hours=1)
    facts = TrackerFacts("cloud", "1001.0.0", "Europe/Paris", {"1": ("À faire", "todo")})
    store.save_tracker_facts("jira1", facts, checked_at=T0)
    got, checked = store.tracker_facts("jira1")  # type: ignore[misc]
    assert got == facts and checked == T0
    store.save_statuses("jira1", {"1": ("À faire", "todo"), "9": ("Ancien", "done")})
    assert store.tracker_facts("jira1")[0].status_categories["9"] == ("Ancien", "done")  # type: ignore[index]


def test_drop_missing_removes_ticket_with_its_rows(store: Store) -> None:
    write(store, page(ticket("1"), ticket("2"), hist={"1": [tr("1", "10", 1)],
                                                      "2": [tr("2", "20", 1)]},
                      logs={"1": [wl("100", "1")], "2": [wl("200", "2")]}))
    assert store.drop_missing("jira1", "ACME", "acme", {"1"}) == ["2"]
    assert store.counts() == {"tickets": 1, "transitions": 1, "worklogs": 1}


def test_dump_leaves_out_wall_clock_columns(db_url: str) -> None:
    a = Store(db_url)
    write(a, page(ticket("1"), ticket("2"), hist={"1": [tr("1", "10", 1)], "2": []}))
    first = a.dump()
    a.close()
    assert first["tickets"] and first["transitions"]
    # tracker, project, client_id, cursor_at, with_comments: not last_run_at, last_full_at
    assert ("sync_cursors" in first) and all(len(r) == 5 for r in first["sync_cursors"])


def test_bad_database_url_is_one_line() -> None:
    with pytest.raises(StoreError) as info:
        Store("nosuchdb://x")
    assert "\n" not in str(info.value)
    with pytest.raises(StoreError, match="not reachable") as info2:
        Store("postgresql+psycopg://nobody:s3cr3tpw@127.0.0.1:1/none?connect_timeout=2")
    assert "s3cr3tpw" not in str(info2.value)
