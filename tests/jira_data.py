"""Small hand-built Jira datasets and config files for the sync tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tmabot.emulators.dataset import (
    DONE,
    INDETERMINATE,
    NEW,
    ChangeItem,
    JiraDataset,
    JiraHistory,
    JiraIssue,
    JiraProject,
    JiraStatus,
    JiraUser,
    JiraWorklog,
)

BASE = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
TOKEN = "tok-3f9a-very-secret"
STATUSES = [
    JiraStatus("1", "À faire", NEW),
    JiraStatus("2", "Backlog", NEW),
    JiraStatus("3", "En cours", INDETERMINATE),
    JiraStatus("4", "En attente client", INDETERMINATE),
    JiraStatus("5", "Recette", INDETERMINATE),
    JiraStatus("6", "Terminé", DONE),
    JiraStatus("7", "Ancien statut QA", INDETERMINATE),  # no current issue uses it
]
CYCLE = ["3", "4", "3", "5", "6", "3", "5", "6"]


def build(n_issues: int = 12, *, projects: tuple[str, ...] = ("ACME",),
          long_history: set[int] = frozenset(), many_worklogs: set[int] = frozenset(),
          histories: int = 4, worklogs: int = 2) -> JiraDataset:
    """Issues numbered 1..n spread over projects; some with long histories/many worklogs."""
    ds = JiraDataset(statuses=list(STATUSES), user_time_zone="Europe/Paris")
    ds.projects = [JiraProject(str(10000 + i), p, f"Projet {p}") for i, p in enumerate(projects)]
    ds.users = [
        JiraUser("acc-lea", "lea", "Léa Martin", "lea@agence.fr"),
        JiraUser("acc-hugo", "hugo", "Hugo Petit", "hugo@agence.fr"),
        JiraUser("acc-priv", "priv", "Camille Privée", "camille@agence.fr", email_visible=False),
    ]
    counters = dict.fromkeys(projects, 0)
    for n in range(1, n_issues + 1):
        project = projects[(n - 1) % len(projects)]
        counters[project] += 1
        created = BASE + timedelta(hours=3 * n)
        issue = JiraIssue(
            id=str(20000 + n), key=f"{project}-{counters[project]}", project_key=project,
            summary=f"Ticket {n} : formulaire « contact » cassé", issue_type="Bug",
            status_id="1", created=created, updated=created, priority="High",
            labels=["bug"], description=f"Description {n}",
            assignee_id="acc-lea" if n % 3 else "acc-priv", reporter_id="acc-hugo")
        n_hist = 50 if n in long_history else histories
        status = "1"
        at = created
        for h in range(n_hist):
            to = CYCLE[h % len(CYCLE)] if n % 5 else ("7" if h == 0 else CYCLE[h % len(CYCLE)])
            at = at + timedelta(minutes=20)
            issue.histories.append(JiraHistory(
                id=str(300000 + n * 100 + h), created=at, author_id="acc-lea",
                items=[ChangeItem("status", status, ds.status(status).name, to,
                                  ds.status(to).name)]))
            status = to
        issue.status_id = status
        issue.resolution_date = at if ds.status(status).category == DONE else None
        n_wl = 25 if n in many_worklogs else worklogs
        for w in range(n_wl):
            started = created + timedelta(minutes=30 + 15 * w)
            issue.worklogs.append(JiraWorklog(
                id=str(500000 + n * 100 + w), issue_id=issue.id,
                author_id=["acc-lea", "acc-hugo", "acc-priv"][w % 3], started=started,
                time_spent_seconds=900 * (1 + w % 4), comment="Correction",
                created=started, updated=started))
        issue.updated = max([at] + [w.updated or w.started for w in issue.worklogs])
        ds.issues.append(issue)
    return ds


def write_config(tmp: Path, url: str, *, deployment: str = "cloud",
                 projects: tuple[str, ...] = ("ACME",), db: str | None = None,
                 token_env: str = "TEST_JIRA_TOKEN") -> Path:
    path = tmp / "tmabot.toml"
    proj = ", ".join(f'"{p}"' for p in projects)
    path.write_text(f"""
[agency]
name = "Agence Test"
timezone = "Europe/Paris"
database_url = "{db or 'sqlite:///' + str(tmp / 'tmabot.db')}"

[trackers.agency-jira]
kind = "jira"
url = "{url}"
deployment = "{deployment}"
{'email = "bot@agency.example"' if deployment == 'cloud' else ''}
token_env = "{token_env}"
max_retries = 4

[[clients]]
id = "acme"
name = "ACME SAS"
tracker = "agency-jira"
projects = [{proj}]

[clients.contract]
model = "forfait"
tier = "business"
start = "2026-01-01"
monthly_fee = "900.00"
hourly_rate = "95.00"
""", encoding="utf-8")
    return path


def tickets_by_key(cfg: Path, capsys: Any, *extra: str, client: str = "acme"
                   ) -> dict[str, dict[str, Any]]:
    """`tmabot tickets --format json` for a client, by key (what was printed before, e.g.
    by a sync, is set aside first)."""
    from tmabot.cli import main

    capsys.readouterr()
    assert main(["tickets", "--client", client, "--format", "json", "--config", str(cfg),
                 *extra]) == 0
    return {t["key"]: t for t in json.loads(capsys.readouterr().out)}
