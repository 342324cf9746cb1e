"""Hand-built Linear datasets and configs for the Linear tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tmabot.emulators.linear import (
    LinearDataset,
    LinearHistory,
    LinearIssue,
    LinearState,
    LinearTeam,
    LinearUser,
)

BASE = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
KEY = "lin_api_test_5f2c-very-secret"
STATES = [
    LinearState("st-triage", "Triage", "triage", "INI"),
    LinearState("st-todo", "Todo", "unstarted", "INI"),
    LinearState("st-progress", "In Progress", "started", "INI"),
    LinearState("st-wait", "En attente client", "started", "INI"),
    LinearState("st-review", "Recette", "started", "INI"),
    LinearState("st-done", "Done", "completed", "INI"),
    LinearState("st-canceled", "Canceled", "canceled", "INI"),
]
CYCLE = ["st-progress", "st-wait", "st-progress", "st-review", "st-done"]


def build(n: int = 12, *, teams: tuple[str, ...] = ("INI",), long_history: set[int] = frozenset(),
          histories: int = 3) -> LinearDataset:
    """Issues 1..n spread over the teams, created every 3 h from BASE, each moved through
    `histories` states (long ones through 40, with non-state entries in between)."""
    ds = LinearDataset(org_name="Agence Test", url_key="agence-test")
    ds.teams = [LinearTeam(f"team-{k}", k, f"Équipe {k}") for k in teams]
    ds.states = [LinearState(f"{s.id}-{k}" if k != "INI" else s.id, s.name, s.type, k)
                 for k in teams for s in STATES]
    ds.users = [LinearUser("u-bot", "Bot Agence", "bot@agence.fr"),
                LinearUser("u-lea", "Léa Martin", "lea@agence.fr")]
    counters = dict.fromkeys(teams, 0)
    for i in range(1, n + 1):
        team = teams[(i - 1) % len(teams)]
        counters[team] += 1

        def sid(state: str, team: str = team) -> str:
            return state if team == "INI" else f"{state}-{team}"

        created = BASE + timedelta(hours=3 * i)
        issue = LinearIssue(
            id=f"issue-{i:05d}", identifier=f"{team}-{counters[team]}", team_key=team,
            title=f"Formulaire de contact cassé #{i}", state_id=sid("st-todo"),
            created_at=created, updated_at=created, description=f"Description {i}",
            priority=[1, 2, 3, 4, 0][i % 5], estimate=[1, 2, 3, None][i % 4],
            assignee_id="u-lea" if i % 3 else None, creator_id="u-bot",
            labels=["Bug"] if i % 2 else ["Maintenance", "Client"],
            project="TMA 2026", cycle=(42, "Cycle 42") if i % 2 else None,
            sla_type="all" if i % 5 == 1 else None,
            sla_started_at=created if i % 5 == 1 else None,
            sla_breaches_at=created + timedelta(hours=24) if i % 5 == 1 else None)
        ds.issues.append(issue)
        steps = 40 if i in long_history else histories
        at = created
        for h in range(steps):
            at += timedelta(minutes=20)
            if h % 3 == 2 and i in long_history:  # a label change: not a state change
                issue.history.append(LinearHistory(f"{issue.id}-x{h}", at, "u-lea"))
                continue
            ds.move(issue.id, sid(CYCLE[h % len(CYCLE)]), at, "u-lea")
    return ds


def write_config(tmp: Path, url: str, *, teams: tuple[str, ...] = ("INI",),
                 db: str | None = None, extra: str = "") -> Path:
    path = tmp / "tmabot.toml"
    proj = ", ".join(f'"{t}"' for t in teams)
    path.write_text(f"""
[agency]
name = "Agence Test"
timezone = "Europe/Paris"
database_url = "{db or 'sqlite:///' + str(tmp / 'tmabot.db')}"

[sla]
pause_statuses = ["En attente client"]
staging_statuses = ["Recette"]

[trackers.agency-linear]
kind = "linear"
url = "{url}"
token_env = "TEST_LINEAR_KEY"
max_retries = 4

[[clients]]
id = "initech"
name = "Initech"
tracker = "agency-linear"
projects = [{proj}]

[clients.contract]
model = "sla"
tier = "critique"
start = "2026-01-01"
monthly_fee = "2400.00"
hourly_rate = "110.00"
{extra}""", encoding="utf-8")
    return path
