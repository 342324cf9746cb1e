"""Jira Service Management's own SLA figures, read with the tickets and compared with ours.

JSM keeps each SLA in a custom field (schema `com.atlassian.servicedesk:sd-sla-field`,
value SlaInformation: completedCycles, ongoingCycle). With `service_desk_sla = true` the
connector finds those fields through /field and asks for them in the search: no request
per issue.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
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
    jsm_completed_sla,
    jsm_date,
    jsm_duration,
)
from tmabot.emulators.jira import JiraEmulator
from tmabot.tickets import sla_disagreements

PARIS = ZoneInfo("Europe/Paris")
MON = datetime(2026, 11, 16, 9, 0, tzinfo=PARIS)
FIRST, RESOLUTION = "customfield_10030", "customfield_10031"
H = timedelta(hours=1)


def _sla(name: str, *, goal: timedelta, start: datetime, stop: datetime | None = None
         ) -> dict[str, Any]:
    """An SlaInformation value: one completed cycle (with `stop`) or one ongoing cycle."""
    if stop is not None:
        return jsm_completed_sla("1", name, goal=goal, start=start, stop=stop)
    ongoing = {"startTime": jsm_date(start), "breachTime": jsm_date(start + goal),
               "breached": False, "paused": False, "withinCalendarHours": True,
               "goalDuration": jsm_duration(goal), "elapsedTime": jsm_duration(H),
               "remainingTime": jsm_duration(goal - H)}
    return {"id": "2", "name": name, "completedCycles": [], "ongoingCycle": ongoing,
            "_links": {"self": "https://x.example/rest/servicedeskapi/request/1/sla/2"}}


def _dataset() -> JiraDataset:
    ds = JiraDataset(statuses=list(STATUSES), user_time_zone="Europe/Paris",
                     sla_fields={FIRST: "Time to first response",
                                 RESOLUTION: "Time to resolution"})
    ds.projects = [JiraProject("10000", "ACME", "Portail ACME")]
    ds.users = [JiraUser("acc-lea", "lea", "Léa Martin", "lea@agence.fr")]
    # ACME-1 (P1): taken at 11:00. Our business clock: 2 of 8 h, met. JSM's own goal for
    # it is 1 h: breached there.
    one = JiraIssue(id="30001", key="ACME-1", project_key="ACME", summary="Panier vide",
                    issue_type="Bug", status_id="3", created=MON, updated=MON + 2 * H,
                    priority="High", assignee_id="acc-lea")
    one.histories.append(JiraHistory("400001", MON + 2 * H, "acc-lea", [
        ChangeItem("status", "1", "À faire", "3", "En cours")]))
    one.sla = {FIRST: _sla("Time to first response", goal=H, start=MON, stop=MON + 2 * H),
               RESOLUTION: _sla("Time to resolution", goal=H, start=MON)}
    # ACME-2: no SLA applies to it in JSM (its fields are empty).
    two = JiraIssue(id="30002", key="ACME-2", project_key="ACME", summary="Question",
                    issue_type="Task", status_id="1", created=MON, updated=MON,
                    priority="Low")
    ds.issues += [one, two]
    return ds


def _tickets(cfg: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    return tickets_by_key(cfg, capsys, "--at", "2026-11-16T15:00:00+01:00")


def test_jsm_sla_fields_are_read_with_the_search_and_compared(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    with JiraEmulator(_dataset(), token=TOKEN) as emu:
        cfg = write_config(tmp_path, emu.url)
        base = cfg.read_text(encoding="utf-8")
        # Off (the default): neither /field nor the custom fields are asked for.
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        assert emu.count("GET", "/rest/api/3/field") == 0
        assert not any("customfield" in (r.body or b"").decode() for r in emu.requests)
        assert _tickets(cfg, capsys)["ACME-1"]["tracker_sla"] is None

        cfg.write_text(base.replace('max_retries = 4', 'max_retries = 4\nservice_desk_sla = true'),
                       encoding="utf-8")
        emu.reset_log()
        assert main(["sync", "--config", str(cfg), "--quiet", "--full"]) == 0
        assert emu.count("GET", "/rest/api/3/field") == 1
        searches = [json.loads(r.body) for r in emu.requests if r.path.endswith("/search/jql")]
        assert {FIRST, RESOLUTION} <= set(searches[0]["fields"])
        assert not [r.path for r in emu.requests  # nothing per issue
                    if "/issue/" in r.path or "servicedeskapi" in r.path]
        items = _tickets(cfg, capsys)
    one = items["ACME-1"]["tracker_sla"]
    assert one["Time to first response"] == {
        "state": "breached", "goal_hours": 1.0, "elapsed_hours": 2.0, "remaining_hours": -1.0,
        "started_at": "2026-11-16T08:00:00+00:00", "stopped_at": "2026-11-16T10:00:00+00:00",
        "breach_at": "2026-11-16T09:00:00+00:00", "cycles": 1}
    # Running when synced, breach instant (10:00) passed by --at 15:00: breached.
    assert one["Time to resolution"]["state"] == "breached"
    assert items["ACME-2"]["tracker_sla"] == {}
    assert sla_disagreements(items["ACME-1"]) == [
        ("Time to first response", "response", "breached", "met")]
    assert items["ACME-1"]["sla"]["response"]["state"] == "met"


def test_service_desk_sla_is_for_jira_only(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "tmabot.toml"
    cfg.write_text("""
[agency]
name = "Agence"
timezone = "Europe/Paris"

[trackers.agency-linear]
kind = "linear"
token_env = "TEST_LINEAR_KEY"
service_desk_sla = true

[[clients]]
id = "acme"
name = "ACME"
tracker = "agency-linear"
projects = ["ACM"]

[clients.contract]
model = "forfait"
tier = "business"
start = "2026-01-01"
""", encoding="utf-8")
    assert main(["check-config", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("trackers.agency-linear.service_desk_sla" in line and "only for kind" in line
               for line in err)


def test_emulator_lists_and_renders_jsm_sla_fields() -> None:
    import requests

    with JiraEmulator(_dataset(), token=TOKEN) as emu:
        s = requests.Session()
        s.auth = ("bot@agency.example", TOKEN)
        fields = {f["id"]: f for f in s.get(f"{emu.url}/rest/api/3/field").json()}
        assert fields[FIRST]["custom"] is True
        assert fields[FIRST]["schema"]["custom"] == "com.atlassian.servicedesk:sd-sla-field"
        assert fields[FIRST]["name"] == "Time to first response"
        everything = s.get(f"{emu.url}/rest/api/3/issue/ACME-1").json()["fields"]
        assert everything[FIRST]["completedCycles"][0]["breached"] is True
        assert everything[RESOLUTION]["ongoingCycle"]["paused"] is False
        named = s.post(f"{emu.url}/rest/api/3/search/jql",
                       json={"jql": "project = ACME", "fields": ["summary", "-" + FIRST]}
                       ).json()["issues"]
        assert all(FIRST not in i["fields"] for i in named)
        empty = s.get(f"{emu.url}/rest/api/3/issue/ACME-2", params={"fields": FIRST}).json()
        assert empty["fields"] == {FIRST: None}
