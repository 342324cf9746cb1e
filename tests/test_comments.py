"""`[sla] response_on_comment`: an agency comment answers a ticket (DOMAIN.md §2).

Through the Jira and Linear emulators: comments are read only when the option is on, a
project synced before it was on is read again, comments cut from the inline page are read
per issue, and only public comments by the agency's domains count, whichever comes first.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests import linear_data
from tests.jira_data import STATUSES, TOKEN, tickets_by_key, write_config
from tmabot.cli import main
from tmabot.emulators.dataset import (
    ChangeItem,
    JiraDataset,
    JiraHistory,
    JiraIssue,
    JiraProject,
    JiraUser,
)
from tmabot.emulators.jira import JiraEmulator
from tmabot.emulators.linear import LinearEmulator, LinearIssue, LinearUser
from tmabot.tickets import first_agency_comments

PARIS = ZoneInfo("Europe/Paris")
MON = datetime(2026, 11, 16, 9, 0, tzinfo=PARIS)
ON = '\n[sla]\nresponse_on_comment = true\nagency_domains = ["agence.fr"]\n'
M = timedelta(minutes=1)


def _issue(ds: JiraDataset, n: int, *, moved_after: timedelta) -> JiraIssue:
    """A P1 bug created Monday 09:00, taken into "En cours" `moved_after` later."""
    issue = JiraIssue(id=str(30000 + n), key=f"ACME-{n}", project_key="ACME",
                      summary=f"Panier vide {n}", issue_type="Bug", status_id="1",
                      created=MON, updated=MON, priority="High", assignee_id="acc-lea",
                      reporter_id="acc-paul")
    issue.histories.append(JiraHistory(str(400000 + n), MON + moved_after, "acc-lea", [
        ChangeItem("status", "1", "À faire", "3", "En cours")]))
    issue.status_id, issue.updated = "3", MON + moved_after
    ds.issues.append(issue)
    return issue


def _jira() -> JiraDataset:
    ds = JiraDataset(statuses=list(STATUSES), user_time_zone="Europe/Paris")
    ds.projects = [JiraProject("10000", "ACME", "Projet ACME")]
    ds.users = [JiraUser("acc-lea", "lea", "Léa Martin", "lea@agence.fr"),
                JiraUser("acc-sub", "sub", "Sam Sud", "sam@lyon.agence.fr"),
                JiraUser("acc-paul", "paul", "Paul Client", "paul@acme.example"),
                JiraUser("acc-fake", "fake", "Faux", "x@fauxagence.fr")]
    one = _issue(ds, 1, moved_after=timedelta(hours=2))
    ds.add_comment(one.key, "acc-paul", "Toujours cassé ?", MON + 10 * M)  # the client
    ds.add_comment(one.key, "acc-fake", "Bonjour", MON + 15 * M)  # a look-alike domain
    ds.add_comment(one.key, "acc-lea", "Note interne", MON + 20 * M, visibility="Developers")
    ds.add_comment(one.key, "acc-lea", "Nous regardons", MON + 30 * M)  # the response
    two = _issue(ds, 2, moved_after=timedelta(hours=3))
    for k in range(55):  # more than fit inline: the rest is read per issue
        ds.add_comment(two.key, "acc-paul", f"Relance {k}", MON + k * M)
    ds.add_comment(two.key, "acc-sub", "Pris en charge", MON + 90 * M)  # a subdomain
    _issue(ds, 3, moved_after=timedelta(hours=1))  # no comment: the move answers
    four = _issue(ds, 4, moved_after=timedelta(minutes=45))
    ds.add_comment(four.key, "acc-lea", "Vu", MON + 50 * M)  # after the move: the move counts
    _issue(ds, 5, moved_after=timedelta(hours=1))  # deleted in Jira after the first sync
    return ds


def _tickets(cfg: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    return tickets_by_key(cfg, capsys, "--at", "2026-11-16T15:00:00+01:00")


def test_jira_agency_comment_answers_the_ticket(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch,
                                                db_url: str) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    with JiraEmulator(_jira(), token=TOKEN) as emu:
        cfg = write_config(tmp_path, emu.url, db=db_url)  # SQLite and PostgreSQL
        base = cfg.read_text(encoding="utf-8")
        # Off (the default): comments are not even asked for; the move answers.
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        assert all("comment" not in (r.body or b"").decode() for r in emu.requests
                   if r.path.endswith("/search/jql"))
        off = _tickets(cfg, capsys)
        assert off["ACME-1"]["first_response_at"] == "2026-11-16T11:00:00+01:00"
        assert off["ACME-1"]["sla"]["response"]["elapsed_hours"] == 2.0
        assert off["ACME-1"]["first_response_by"] == "status"

        # On: the project synced without comments is read again, whatever the cursor says.
        emu.dataset.delete_issue("ACME-5")  # still in the store: it must not make every
        cfg.write_text(base + ON, encoding="utf-8")  # later sync read the project again
        emu.reset_log()
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        searches = [r for r in emu.requests if r.path.endswith("/search/jql")]
        body = json.loads(searches[0].body)
        assert "comment" in body["fields"] and "updated >=" not in body["jql"]
        # ACME-2's 56 comments do not fit in the inline 50: read per issue, oldest first.
        per_issue = [r for r in emu.requests if r.path.endswith("/comment")]
        assert [r.path for r in per_issue] == ["/rest/api/3/issue/30002/comment"]
        assert per_issue[0].param("orderBy") == "created"
        on = _tickets(cfg, capsys)
        one = on["ACME-1"]  # the client, a look-alike domain and an internal note do not count
        assert one["first_response_at"] == "2026-11-16T09:30:00+01:00"
        assert one["first_response_by"] == "comment"
        assert one["sla"]["response"]["elapsed_hours"] == 0.5
        assert one["sla"]["response"]["state"] == "met"
        assert one["sla"]["resolution"]["elapsed_hours"] == 4.5  # 09:30 → 15:00, lunch out
        assert on["ACME-2"]["first_response_at"] == "2026-11-16T10:30:00+01:00"  # subdomain
        assert on["ACME-3"]["first_response_at"] == "2026-11-16T10:00:00+01:00"
        assert on["ACME-4"]["first_response_at"] == "2026-11-16T09:45:00+01:00"  # move first
        assert [on[f"ACME-{n}"]["first_response_by"] for n in (2, 3, 4)] == [
            "comment", "status", "status"]

        # Next incremental sync: nothing to read again.
        emu.reset_log()
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        searches = [r for r in emu.requests if r.path.endswith("/search/jql")]
        assert len(searches) == 1 and "updated >=" in json.loads(searches[0].body)["jql"]
        assert not [r for r in emu.requests if r.path.endswith("/comment")]

        # A comment posted later: the issue's `updated` moves, the incremental sync sees it.
        emu.dataset.add_comment("ACME-3", "acc-lea", "On s'en occupe", MON + 5 * M)
        emu.dataset.issue("ACME-3").updated = datetime.now(UTC)  # type: ignore[union-attr]
        emu.dataset.touch()
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        assert _tickets(cfg, capsys)["ACME-3"]["first_response_at"] == (
            "2026-11-16T09:05:00+01:00")


def test_first_agency_comments_rules() -> None:
    now = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)

    def at(h: int) -> str:
        return datetime(2026, 11, 16, h, 0, tzinfo=UTC).isoformat()

    rows = [
        {"comments": [[at(9), "paul@acme.example", True], [at(10), "LEA@Agence.FR", True]]},
        {"comments": [[at(9), "lea@agence.fr", False], [at(11), "x@lyon.agence.fr", True]]},
        {"comments": [[at(9), "x@fauxagence.fr", True], [at(10), None, True]]},
        {"comments": [[at(13), "lea@agence.fr", True]]},  # after `now`: not yet
        {"comments": None},  # never read
    ]
    got = first_agency_comments(rows, ("agence.fr",), now)
    assert got[0] == datetime(2026, 11, 16, 10, tzinfo=UTC).timestamp()
    assert got[1] == datetime(2026, 11, 16, 11, tzinfo=UTC).timestamp()
    assert all(v != v for v in got[2:])  # NaN


def test_linear_agency_comment_answers_and_long_threads_are_completed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LINEAR_KEY", linear_data.KEY)
    ds = linear_data.build(3)
    ds.users.append(LinearUser("u-client", "Client", "dsi@initech.example"))
    one, two = ds.issues[0], ds.issues[1]
    ds.comment(one.id, "u-client", one.created_at + 5 * M)
    ds.comment(one.id, "u-lea", one.created_at + 10 * M)  # before the first move (+20 min)
    ds.comment(one.id, None, one.created_at + 2 * M)  # an integration: no user
    for k in range(11):
        ds.comment(two.id, "u-client", two.created_at + k * M)
    ds.comment(two.id, "u-lea", two.created_at + 15 * M)  # the 12th: beyond the inline 5
    last = max(i.updated_at for i in ds.issues)
    fresh = LinearIssue(id="issue-09999", identifier="INI-99", team_key="INI",
                        title="Nouveau : lien mort", state_id="st-todo",
                        created_at=last + 60 * M, updated_at=last + 60 * M, priority=2)
    ds.issues.append(fresh)  # nobody has touched it yet
    with LinearEmulator(ds, api_key=linear_data.KEY) as emu:
        cfg = linear_data.write_config(tmp_path, emu.url + "/graphql")
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        assert all((json.loads(r.body).get("variables") or {}).get("withComments") in (None, False)
                   for r in emu.requests if r.body)
        cfg.write_text(cfg.read_text(encoding="utf-8").replace(
            "[sla]\n", '[sla]\nresponse_on_comment = true\nagency_domains = ["agence.fr"]\n'),
            encoding="utf-8")
        emu.reset_log()
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        names = [json.loads(r.body).get("operationName") or json.loads(r.body)["query"]
                 for r in emu.requests if r.body]
        assert sum("TmabotIssueComments" in n for n in names) == 1
        # Next incremental sync: one question about recent comments, nothing read again.
        emu.reset_log()
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        bodies = [json.loads(r.body) for r in emu.requests if r.body]
        assert sum("TmabotRecentComments" in b["query"] for b in bodies) == 1
        assert not any("TmabotIssueComments" in b["query"] for b in bodies)
        # A comment later on an issue whose updatedAt does not move: still seen.
        before = fresh.updated_at
        ds.comment(fresh.id, "u-lea", fresh.created_at + 5 * M)
        assert fresh.updated_at == before
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        capsys.readouterr()
        assert main(["tickets", "--client", "initech", "--format", "json", "--config",
                     str(cfg)]) == 0
        items = {t["key"]: t for t in json.loads(capsys.readouterr().out)}

    def local(dt: datetime) -> str:
        return dt.astimezone(PARIS).isoformat()

    assert items[one.identifier]["first_response_at"] == local(one.created_at + 10 * M)
    assert items[two.identifier]["first_response_at"] == local(two.created_at + 15 * M)
    three = ds.issues[2]  # no comment: its first move out of *new* (+20 min)
    assert items[three.identifier]["first_response_at"] == local(three.created_at + 20 * M)
    # Commented 5 minutes in, after the syncs that read it untouched.
    assert items[fresh.identifier]["first_response_at"] == local(fresh.created_at + 5 * M)
    assert items[fresh.identifier]["first_response_by"] == "comment"
