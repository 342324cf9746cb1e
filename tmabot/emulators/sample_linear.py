"""Move one client of the sample agency from Jira to Linear, as an agency running both would.

The client's issues leave the Jira dataset and become Linear issues of a team with the same
key: statuses become workflow states (by category; a canceled status stays `canceled`),
Jira priorities become Linear's 0–4, status changes become history entries. Linear has no
worklogs, so the client's time becomes a Toggl Track "Detailed report" CSV export whose
descriptions carry the issue keys — what the agency's developers would have tracked.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from tmabot.emulators.dataset import DONE, NEW, JiraDataset
from tmabot.emulators.linear import (
    LinearDataset,
    LinearHistory,
    LinearIssue,
    LinearState,
    LinearTeam,
    LinearUser,
)

# Jira priority names (both schemes) → Linear priority (0 none, 1 urgent … 4 low).
PRIORITY = {"Highest": 1, "Blocker": 1, "High": 2, "Critical": 2, "Medium": 3, "Major": 3,
            "Low": 4, "Lowest": 4, "Minor": 4, "Trivial": 4}
CANCELED_NAMES = ("annul", "abandon", "cancel", "rejet", "won't")
TOGGL_HEADER = ["User", "Email", "Client", "Project", "Task", "Description", "Billable",
                "Start date", "Start time", "End date", "End time", "Duration", "Tags",
                "Amount ()"]


@dataclass
class LinearSample:
    dataset: LinearDataset
    toggl_csv: str  # the client's time, as a Toggl Track export
    issues: int
    entries: int


def _state_type(name: str, category: str) -> str:
    if category == DONE:
        return "canceled" if any(w in name.lower() for w in CANCELED_NAMES) else "completed"
    if category == NEW:
        return "backlog" if "backlog" in name.lower() else "unstarted"
    return "started"


def move_to_linear(jira: JiraDataset, project_key: str, *, client_name: str,
                   timezone: str = "Europe/Paris", org_name: str = "Agence",
                   url_key: str = "agence") -> LinearSample:
    """Take `project_key`'s issues out of `jira` and return them as a Linear team."""
    tz = ZoneInfo(timezone)
    mine = [i for i in jira.issues if i.project_key == project_key]
    ds = LinearDataset(org_name=org_name, url_key=url_key)
    ds.teams = [LinearTeam(f"team-{project_key.lower()}", project_key, client_name)]
    ds.states = [LinearState(f"state-{s.id}", s.name, _state_type(s.name, s.category),
                             project_key, float(n)) for n, s in enumerate(jira.statuses)]
    ds.users = [LinearUser(f"user-{u.account_id}", u.display_name, u.email or
                           f"{u.name}@example.invalid") for u in jira.users]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TOGGL_HEADER)
    users = {u.account_id: u for u in jira.users}
    entries = 0
    for i in mine:
        history: list[LinearHistory] = []
        for h in i.histories:
            for n, item in enumerate(h.items):
                if item.field != "status":
                    continue
                history.append(LinearHistory(
                    f"hist-{h.id}-{n}", h.created,
                    f"user-{h.author_id}" if h.author_id else None,
                    f"state-{item.from_id}" if item.from_id else None,
                    f"state-{item.to_id}" if item.to_id else None))
        state = jira.status(i.status_id)
        kind = _state_type(state.name, state.category)
        resolved = i.resolution_date if state.category == DONE else None
        started = next((h.created_at for h in history
                        if ds.state(h.to_state_id or "").type == "started"), None)
        ds.issues.append(LinearIssue(
            id=f"lin-{i.id}", identifier=i.key, team_key=project_key, title=i.summary,
            state_id=f"state-{i.status_id}", created_at=i.created, updated_at=i.updated,
            description=i.description, priority=PRIORITY.get(i.priority or "", 0),
            assignee_id=f"user-{i.assignee_id}" if i.assignee_id else None,
            creator_id=f"user-{i.reporter_id}" if i.reporter_id else None,
            labels=list(i.labels), project="TMA", parent_identifier=i.parent_key,
            started_at=started, completed_at=resolved if kind == "completed" else None,
            canceled_at=resolved if kind == "canceled" else None, history=history))
        for w in i.worklogs:
            user = users.get(w.author_id)
            start = w.started.astimezone(tz)
            end = start + timedelta(seconds=w.time_spent_seconds)
            secs = w.time_spent_seconds
            writer.writerow([
                user.display_name if user else "?", (user.email or "") if user else "",
                client_name, "TMA", "", f"{i.key} {w.comment or i.summary}".strip(), "Yes",
                start.strftime("%Y-%m-%d"), start.strftime("%H:%M:%S"),
                end.strftime("%Y-%m-%d"), end.strftime("%H:%M:%S"),
                f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}", "", ""])
            entries += 1
    jira.issues = [i for i in jira.issues if i.project_key != project_key]
    jira.projects = [p for p in jira.projects if p.key != project_key]
    jira.touch()
    return LinearSample(ds, out.getvalue(), len(mine), entries)
