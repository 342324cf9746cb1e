"""`tmabot tickets`, `sla` and `classify` end to end: Jira emulator → sync → store → JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.jira_data import STATUSES, TOKEN, tickets_by_key, write_config
from tmabot.cli import main
from tmabot.emulators.dataset import (
    ChangeItem,
    JiraDataset,
    JiraHistory,
    JiraIssue,
    JiraProject,
    JiraUser,
    JiraWorklog,
)
from tmabot.emulators.jira import JiraEmulator

PARIS = ZoneInfo("Europe/Paris")
MON = datetime(2026, 11, 16, 9, 0, tzinfo=PARIS)
INTERFACE_KEYS = {"key", "source", "url", "title", "category", "category_rule", "scope",
                  "priority", "tracker_priority", "status", "status_category", "created_at",
                  "first_response_at", "resolved_at", "time_spent_hours", "assignee_email",
                  "sla"}
SLA_KEYS = {"clock", "target_hours", "elapsed_hours", "state", "due_at"}


def _issue(ds: JiraDataset, n: int, summary: str, priority: str | None, issue_type: str,
           moves: list[tuple[timedelta, str]], labels: list[str] | None = None) -> JiraIssue:
    created = MON
    issue = JiraIssue(id=str(30000 + n), key=f"ACME-{n}", project_key="ACME", summary=summary,
                      issue_type=issue_type, status_id="1", created=created, updated=created,
                      priority=priority, labels=labels or [], description="",
                      assignee_id="acc-lea", reporter_id="acc-lea")
    status = "1"
    for h, (delta, to) in enumerate(moves):
        at = created + delta
        issue.histories.append(JiraHistory(
            id=str(400000 + n * 100 + h), created=at, author_id="acc-lea",
            items=[ChangeItem("status", status, ds.status(status).name, to,
                              ds.status(to).name)]))
        status = to
        issue.updated = at
    issue.status_id = status
    if ds.status(status).category == "done":
        issue.resolution_date = issue.updated
    ds.issues.append(issue)
    return issue


@pytest.fixture
def synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    ds = JiraDataset(statuses=list(STATUSES), user_time_zone="Europe/Paris")
    ds.projects = [JiraProject("10000", "ACME", "Projet ACME")]
    ds.users = [JiraUser("acc-lea", "lea", "Léa Martin", "lea@agence.fr")]
    h = timedelta(hours=1)
    one = _issue(ds, 1, "Formulaire de contact cassé", "High", "Bug",
                 [(h, "3"), (25 * h, "5"), (27 * h, "6")])
    one.worklogs.append(JiraWorklog(id="900001", issue_id=one.id, author_id="acc-lea",
                                    started=MON + 2 * h, time_spent_seconds=5400,
                                    comment="Correctif", created=MON + 2 * h,
                                    updated=MON + 2 * h))
    _issue(ds, 2, "Site indisponible", "Highest", "Incident", [])
    _issue(ds, 3, "Question sur la facture", None, "Task", [])
    _issue(ds, 4, "Mise à jour des plugins", "Medium", "Task", [(h, "3"), (2 * h, "4")])
    with JiraEmulator(ds, token=TOKEN) as emu:
        cfg = write_config(tmp_path, emu.url)
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
    return cfg


def _tickets(cfg: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, dict]:
    return tickets_by_key(cfg, capsys, *extra)


def test_tickets_json_has_the_interface_shape_and_exact_figures(
        synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = _tickets(synced, capsys, "--at", "2026-11-18T09:00:00+01:00")
    for t in items.values():
        assert INTERFACE_KEYS <= set(t)
        assert set(t["sla"]) == {"response", "resolution", "delivery"}
        for ind in t["sla"].values():
            assert SLA_KEYS <= set(ind)
    a = items["ACME-1"]
    assert (a["category"], a["category_rule"], a["scope"]) == ("correctif", "issue_type:Bug",
                                                              "included")
    assert a["priority"] == "P1" and a["tracker_priority"] == "High"
    assert a["first_response_at"] == "2026-11-16T10:00:00+01:00"
    assert a["resolved_at"] == "2026-11-17T12:00:00+01:00"
    assert a["time_spent_hours"] == 1.5
    assert a["sla"]["response"] == {
        "clock": "business", "target_hours": 8.0, "elapsed_hours": 1.0, "state": "met",
        "due_at": "2026-11-16T18:00:00+01:00", "stopped_at": "2026-11-16T10:00:00+01:00"}
    # P1: no resolution or delivery target, but the time is shown (delivery stops at Recette).
    assert a["sla"]["resolution"]["state"] == "none"
    assert a["sla"]["resolution"]["elapsed_hours"] == 10.0  # Mon 10:00 → Tue 12:00
    assert a["sla"]["delivery"]["elapsed_hours"] == 9.0  # Mon 09:00 → Tue 10:00 (Recette)
    c = items["ACME-3"]
    assert (c["priority"], c["priority_known"], c["tracker_priority"]) == ("P3", False, None)
    assert (c["category"], c["category_rule"], c["scope"]) == ("non_classe", None,
                                                              "unclassified")
    d = items["ACME-4"]  # P2 waiting for the client since Mon 11:00
    assert d["category"] == "preventif" and d["status"] == "En attente client"
    assert d["sla"]["delivery"]["state"] == "running"
    assert d["sla"]["delivery"]["due_at"] is None  # paused
    assert d["sla"]["delivery"]["elapsed_hours"] == 2.0


def test_at_moves_the_clock_and_hides_later_events(
        synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = _tickets(synced, capsys, "--at", "2026-11-16T12:30:00+01:00")
    b = items["ACME-2"]  # Highest → P0, tier business: 4 bh to respond
    assert b["priority"] == "P0"
    assert b["sla"]["response"] == {
        "clock": "business", "target_hours": 4.0, "elapsed_hours": 3.5, "state": "at_risk",
        "due_at": "2026-11-16T14:00:00+01:00", "stopped_at": None}
    assert b["sla"]["resolution"]["state"] == "not_started"
    a = items["ACME-1"]  # not yet resolved at that instant
    assert a["resolved_at"] is None and a["status_category"] == "done"
    assert a["sla"]["delivery"]["state"] == "none"
    later = _tickets(synced, capsys, "--at", "2026-11-17T09:00:00+01:00")
    assert later["ACME-2"]["sla"]["response"]["state"] == "breached"


def test_sla_command_lists_running_indicators_most_urgent_first(
        synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sla", "--client", "acme", "--at-risk", "--format", "json", "--config",
                 str(synced), "--at", "2026-11-17T09:00:00+01:00"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["key"], r["indicator"], r["state"]) for r in rows] == [
        ("ACME-2", "response", "breached")]
    assert main(["sla", "--client", "acme", "--config", str(synced),
                 "--at", "2026-11-17T09:00:00+01:00"]) == 0
    out = capsys.readouterr().out
    assert "ACME-2" in out and "dépassé" in out and "en pause" in out  # ACME-4 delivery


def test_classify_check_and_explain(synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "--check", "--format", "json", "--config", str(synced)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["client"], r["key"]) for r in rows] == [("acme", "ACME-3")]
    assert main(["classify", "--check", "--config", str(synced)]) == 0
    assert "1 ticket(s) non classé(s)" in capsys.readouterr().out
    assert main(["tickets", "--client", "acme", "--explain", "--config", str(synced)]) == 0
    out = capsys.readouterr().out
    assert "builtin:correctif:issue_types" in out and "✔" in out
    assert "aucune règle ne correspond" in out  # ACME-3
    items = _tickets(synced, capsys, "--explain")
    trace = items["ACME-4"]["classification_trace"]
    assert trace[-1]["matched"] and trace[-1]["rule"] == "builtin:preventif:title"


def test_client_sla_overrides_from_config(synced: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    text = synced.read_text()
    synced.write_text(text + '''
[clients.sla]
at_risk_ratio = 0.5
P0 = { response = "1d", resolution = false, clock = "business" }
P1 = { response = 2 }
''')
    items = _tickets(synced, capsys, "--at", "2026-11-16T12:30:00+01:00")
    b = items["ACME-2"]["sla"]
    assert (b["response"]["target_hours"], b["response"]["state"]) == (8.0, "running")
    assert b["resolution"]["state"] == "none"
    assert items["ACME-1"]["sla"]["response"]["target_hours"] == 2.0
    synced.write_text(text + '\n[clients.sla]\nP1 = { response = "soon" }\n')
    assert main(["tickets", "--client", "acme", "--config", str(synced)]) == 2
    err = capsys.readouterr().err
    assert "clients[0].sla.P1.response" in err and len(err.strip().splitlines()) == 1
