"""The sample agency and the bulk dataset: deterministic, realistic and self-consistent."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest

from tmabot.emulators.dataset import DONE, NEW, JiraDataset, JiraIssue
from tmabot.emulators.sample import (
    LEGACY_PRIORITIES,
    MODERN_PRIORITIES,
    RECETTE_OLD_NAME,
    S_RECETTE,
    SampleAgency,
    build_bulk_dataset,
    build_sample_agency,
)

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 15, 10, 30, tzinfo=UTC)  # a Sunday, after the DST-free winter
REPO = Path(__file__).resolve().parents[1]


def fingerprint(agency: SampleAgency) -> str:
    """A stable serialisation of everything the agency carries."""
    ds = agency.dataset
    payload = {
        "agency": [agency.name, agency.timezone, agency.now],
        "clients": [asdict(c) for c in agency.clients],
        "projects": [asdict(p) for p in ds.projects],
        "statuses": [asdict(s) for s in ds.statuses],
        "users": [asdict(u) for u in ds.users],
        "priorities": ds.priorities,
        "issues": [asdict(i) for i in ds.issues],
        "next_id": ds.next_id,
    }
    text = json.dumps(payload, default=str, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def agency() -> SampleAgency:
    return build_sample_agency(NOW)


def status_moves(issue: JiraIssue) -> list[tuple[datetime, str, str]]:
    return [(h.created, i.from_id or "", i.to_id or "")
            for h in issue.histories for i in h.items if i.field == "status"]


def expected_resolution(ds: JiraDataset, issue: JiraIssue) -> datetime | None:
    cat = {s.id: s.category for s in ds.statuses}
    if cat[issue.status_id] != DONE:
        return None
    entries = [at for at, frm, to in status_moves(issue) if cat[to] == DONE and cat[frm] != DONE]
    return entries[-1] if entries else None


# -- determinism -------------------------------------------------------------------------
def test_same_seed_and_now_give_the_same_agency(agency: SampleAgency) -> None:
    assert fingerprint(build_sample_agency(NOW)) == fingerprint(agency)
    other = build_sample_agency(NOW, seed=7).dataset.issues
    assert [(i.summary, i.created) for i in other] != [
        (i.summary, i.created) for i in agency.dataset.issues]


def test_does_not_depend_on_hash_seed(agency: SampleAgency) -> None:
    code = ("from datetime import datetime, UTC; import tests.test_sample as t; "
            "print(t.fingerprint(t.build_sample_agency(t.NOW)))")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.strip()
    assert out == fingerprint(agency)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError):
        build_sample_agency(datetime(2026, 3, 15, 10, 30))


# -- clients, users, projects ---------------------------------------------------------------
def test_three_clients_with_different_tiers_and_models(agency: SampleAgency) -> None:
    clients = agency.clients
    assert len(clients) == 3
    assert {c.tier for c in clients} == {"essentiel", "business", "critique"}
    assert {c.model for c in clients} == {"forfait", "credit_temps", "sla"}
    assert {p.key for p in agency.dataset.projects} == {c.project_key for c in clients}
    assert any(re.search(r"[éèêàçÉ]", c.name) for c in clients)
    for c in clients:
        assert re.fullmatch(r"[a-z0-9-]+", c.id)
        assert re.fullmatch(r"\d+\.\d\d", c.monthly_fee) and re.fullmatch(r"\d+\.\d\d",
                                                                           c.hourly_rate)
        assert re.fullmatch(r"C[A-Z0-9]{8,}", c.slack_channel)
        assert c.report_recipients and all(r.endswith("@" + c.email_domain)
                                           for r in c.report_recipients)
        assert c.site and c.start <= agency.now.date()
        assert bool(c.credits) == (c.model == "credit_temps")
    assert agency.timezone == "Europe/Paris" and agency.dataset.user_time_zone == "Europe/Paris"


def test_users(agency: SampleAgency) -> None:
    ds = agency.dataset
    staff = [u for u in ds.users if u.email and u.email.endswith("@" + agency.email_domain)]
    assert 4 <= len(staff) <= 6
    assert [u.email_visible for u in staff].count(False) == 1
    for client in agency.clients:
        reporters = {i.reporter_id for i in ds.issues if i.project_key == client.project_key}
        emails = {u.email for u in ds.users if u.account_id in reporters}
        assert any(e and e.endswith("@" + client.email_domain) for e in emails)


def test_credit_balance_is_sane(agency: SampleAgency) -> None:
    (client,) = [c for c in agency.clients if c.model == "credit_temps"]
    assert client.credits[0][0] == client.start
    assert all(client.start <= day <= agency.now.date() and hours > 0
               for day, hours in client.credits)
    used = sum(wl.time_spent_seconds for i in agency.dataset.issues
               if i.project_key == client.project_key
               and agency.categories[i.key] != "hors_perimetre" for wl in i.worklogs) / 3600
    assert 0 < sum(h for _, h in client.credits) - used < 45


# -- tickets -----------------------------------------------------------------------------
def test_six_months_of_tickets_per_client(agency: SampleAgency) -> None:
    ds = agency.dataset
    first = datetime(2025, 9, 1, tzinfo=PARIS)
    assert min(i.created for i in ds.issues) >= first
    assert min(i.created for i in ds.issues) < first + timedelta(days=3)
    assert max(i.created for i in ds.issues) <= NOW
    per_month = Counter((i.project_key, i.created.astimezone(PARIS).strftime("%Y-%m"))
                        for i in ds.issues)
    for client in agency.clients:
        for month in ["2025-09", "2025-10", "2025-11", "2025-12", "2026-01", "2026-02"]:
            assert 10 <= per_month[client.project_key, month] <= 50, (client.id, month)
    volume = {c.tier: sum(i.project_key == c.project_key for i in ds.issues)
              for c in agency.clients}
    assert volume["essentiel"] < volume["business"] < volume["critique"]


def test_creation_times_look_like_office_life(agency: SampleAgency) -> None:
    local = [i.created.astimezone(PARIS) for i in agency.dataset.issues]
    office = [t for t in local if t.weekday() < 5 and 9 <= t.hour < 18]
    assert len(office) / len(local) > 0.7
    assert any(t.weekday() >= 5 for t in local)
    assert any(t.hour >= 19 for t in local)
    french = holidays.France(years=[2025, 2026])
    assert any(t.date() in french for t in local)


def test_french_titles_for_every_category(agency: SampleAgency) -> None:
    titles: dict[str, list[str]] = defaultdict(list)
    for issue in agency.dataset.issues:
        for label in issue.labels or ["-"]:
            titles[label].append(issue.summary)
    expected = {
        "bug": r"Erreur|ne s'affiche|n'envoie|cassé|bloqué",
        "maj": r"^Mise à jour|^Passage PHP|^Mises à jour",
        "securite": r"faille|CVE|[Aa]udit|[Rr]evue des accès|WPScan",
        "supervision": r"^Alerte|logs|Lighthouse|Sentry|uptime",
        "run": r"^(Ajouter|Modifier|Changer|Remplacer|Mettre à jour|Afficher)",
        "devis": r"Nouvelle page|Refonte|Intégration|Création|Module|Paiement|Connecteur|Version",
        "sauvegarde": r"restauration|Restore",
    }
    for label, pattern in expected.items():
        assert sum(bool(re.search(pattern, t)) for t in titles[label]) >= 3, label
    all_titles = {i.summary for i in agency.dataset.issues}
    assert any(t.startswith("Test de restauration") for t in all_titles)
    assert any("é" in t or "è" in t or "à" in t for t in all_titles)
    assert set(agency.categories) == {i.key for i in agency.dataset.issues}
    assert set(agency.categories.values()) == {
        "correctif", "preventif", "securite", "supervision", "evolutif_run", "hors_perimetre",
        None}
    # Tickets a rule engine cannot classify: no label, no component, plain Task.
    bare = [i for i in agency.dataset.issues if not i.labels and not i.components
            and i.issue_type == "Task" and not i.parent_key]
    assert len(bare) >= 10


def test_issue_types_priorities_and_components(agency: SampleAgency) -> None:
    ds = agency.dataset
    types = Counter(i.issue_type for i in ds.issues)
    assert {"Bug", "Incident", "Task", "Story", "Sub-task", "Epic"} <= set(types)
    by_key = {i.key: i for i in ds.issues}
    for issue in ds.issues:
        if issue.parent_key:
            parent = by_key[issue.parent_key]
            assert parent.project_key == issue.project_key and parent.created <= issue.created
        assert (issue.issue_type == "Sub-task") <= bool(issue.parent_key)
        assert issue.priority is None or issue.priority in ds.priorities
    legacy = {c.project_key for c in agency.clients if c.tier == "business"}
    for issue in ds.issues:
        if issue.priority:
            scheme = LEGACY_PRIORITIES if issue.project_key in legacy else MODERN_PRIORITIES
            assert issue.priority in scheme
    assert 0 < sum(i.priority is None for i in ds.issues) < 0.1 * len(ds.issues)
    assert sum(bool(i.components) for i in ds.issues) > 20


def test_keys_ids_and_timestamps(agency: SampleAgency) -> None:
    ds = agency.dataset
    for project in ds.projects:
        issues = [i for i in ds.issues if i.project_key == project.key]
        assert [i.key for i in issues] == [f"{project.key}-{n}" for n in range(1, len(issues) + 1)]
        assert [i.created for i in issues] == sorted(i.created for i in issues)
    ids = [i.id for i in ds.issues] + [h.id for i in ds.issues for h in i.histories] + [
        w.id for i in ds.issues for w in i.worklogs] + [p.id for p in ds.projects]
    assert len(ids) == len(set(ids)) and all(int(x) <= ds.next_id for x in ids)
    for issue in ds.issues:
        stamps = [issue.created, issue.updated, *(h.created for h in issue.histories),
                  *(w.started for w in issue.worklogs)]
        assert all(t.tzinfo is not None and t.microsecond == 0 for t in stamps)


# -- workflow ----------------------------------------------------------------------------
def test_statuses() -> None:
    ds = build_sample_agency(NOW).dataset
    table = {s.name: s.category for s in ds.statuses}
    assert table["À faire"] == table["Backlog"] == NEW
    assert table["En cours"] == table["En attente client"] == table["Recette"] == "indeterminate"
    assert table["Terminé"] == table["Annulé"] == DONE
    assert table["Rouvert"] in (NEW, "indeterminate")


def test_histories_are_consistent(agency: SampleAgency) -> None:
    check_consistency(agency)


@pytest.mark.parametrize(("now", "seed"), [
    (datetime(2026, 4, 6, 23, 30, tzinfo=PARIS), 2026),  # night of Easter Monday, after DST
    (datetime(2025, 7, 1, 6, 0, tzinfo=UTC), 11),  # the first day of a month, early
])
def test_consistent_for_other_dates_and_seeds(now: datetime, seed: int) -> None:
    agency = build_sample_agency(now, seed=seed)
    check_consistency(agency)
    assert len(agency.clients) == 3 and len(agency.dataset.issues) > 400


def check_consistency(agency: SampleAgency) -> None:
    ds, now = agency.dataset, agency.now
    names = {s.id: s.name for s in ds.statuses}
    for issue in ds.issues:
        times = [h.created for h in issue.histories]
        assert times == sorted(times) and len(set(times)) == len(times), issue.key
        assert all(issue.created <= t <= now for t in times)
        moves = status_moves(issue)
        current = moves[0][1] if moves else issue.status_id
        for _, frm, to in moves:
            assert frm == current and to != frm, issue.key
            current = to
        assert current == issue.status_id, issue.key
        for h in issue.histories:
            for item in h.items:
                if item.field == "status":
                    assert item.to_string in (names[item.to_id or ""], RECETTE_OLD_NAME)
                    assert h.author_id is not None
        assert issue.resolution_date == expected_resolution(ds, issue), issue.key
        assignees = [i.to_id for h in issue.histories for i in h.items if i.field == "assignee"]
        if assignees:
            assert issue.assignee_id == assignees[-1]
        priorities = [i.to_string for h in issue.histories for i in h.items
                      if i.field == "priority"]
        if priorities:
            assert issue.priority == priorities[-1]
        last = max([issue.created, *times, *(w.updated or w.started for w in issue.worklogs)])
        assert issue.updated == last, issue.key
        for wl in issue.worklogs:
            assert issue.created <= wl.started
            assert wl.started + timedelta(seconds=wl.time_spent_seconds) <= now


def test_workflow_paths(agency: SampleAgency) -> None:
    ds = agency.dataset
    names = {s.id: s.name for s in ds.statuses}
    visited = Counter(names[to] for i in ds.issues for _, _, to in status_moves(i))
    for name in ["En cours", "En attente client", "Recette", "In staging", "Terminé", "Annulé",
                 "Rouvert", "À faire"]:
        assert visited[name] >= 3, name
    paths = [[names[to] for _, _, to in status_moves(i)] for i in ds.issues]
    reopened = [p for p in paths if "Rouvert" in p and "Terminé" in p[p.index("Rouvert"):]]
    assert len(reopened) >= 3
    assert any(i.histories and status_moves(i)[0][1] == "10001"
               and status_moves(i)[0][2] == "10000" for i in ds.issues)  # Backlog → À faire
    assert any(status_moves(i) and names[status_moves(i)[0][1]] == "En cours"
               for i in ds.issues)  # created directly in progress
    assert any(["Terminé", "Annulé"] == p[-2:] for p in paths)
    # The staging status was renamed: old changelog entries carry its old name.
    strings = {it.to_string for i in ds.issues for h in i.histories for it in h.items
               if it.field == "status" and it.to_id == S_RECETTE}
    assert strings == {"Recette", RECETTE_OLD_NAME}
    fields = Counter(it.field for i in ds.issues for h in i.histories for it in h.items)
    assert fields["assignee"] > 50 and fields["priority"] >= 5
    assert any(all(it.field != "status" for it in h.items)
               for i in ds.issues for h in i.histories)


def test_open_urgent_tickets_near_now(agency: SampleAgency) -> None:
    ds = agency.dataset
    cat = {s.id: s.category for s in ds.statuses}
    urgent = {"Highest", "High", "Blocker", "Critical"}
    hot = [i for i in ds.issues if i.priority in urgent and cat[i.status_id] != DONE
           and NOW - i.created < timedelta(days=4)]
    assert len(hot) >= 5
    assert {i.project_key for i in hot} == {c.project_key for c in agency.clients}
    assert any(cat[i.status_id] == NEW for i in hot)  # not answered yet
    assert any(ds.status(i.status_id).name == "En attente client" for i in hot)
    # P0 incidents of the 24/7 client are answered within hours.
    (critique,) = [c.project_key for c in agency.clients if c.tier == "critique"]
    p0 = [i for i in ds.issues if i.project_key == critique and i.priority == "Highest"
          and status_moves(i) and cat[status_moves(i)[0][1]] == NEW]
    delays = sorted(status_moves(i)[0][0] - i.created for i in p0)
    assert delays and delays[len(delays) // 2] < timedelta(hours=1)


# -- worklogs ---------------------------------------------------------------------------
def test_worklogs(agency: SampleAgency) -> None:
    ds = agency.dataset
    staff = {u.account_id for u in ds.users if u.email and u.email.endswith(agency.email_domain)}
    hidden = {u.account_id for u in ds.users if u.account_id in staff and not u.email_visible}
    authors: Counter[str] = Counter()
    per_day: Counter[tuple[str, date]] = Counter()
    for issue in ds.issues:
        total = 0
        for wl in issue.worklogs:
            assert wl.issue_id == issue.id and wl.author_id in staff
            assert 900 <= wl.time_spent_seconds <= 4 * 3600
            assert wl.time_spent_seconds % 900 == 0
            end = wl.started + timedelta(seconds=wl.time_spent_seconds)
            assert issue.created <= wl.started and end <= NOW
            assert wl.created is not None and end <= wl.created <= NOW
            authors[wl.author_id] += 1
            per_day[wl.author_id, wl.started.astimezone(PARIS).date()] += wl.time_spent_seconds
            total += wl.time_spent_seconds
        assert total <= 60 * 3600, issue.key
        logged = [w.created or w.started for w in issue.worklogs]
        assert logged == sorted(logged)
    assert len(authors) >= 4 and hidden & set(authors)
    assert max(per_day.values()) <= 8 * 3600
    assert sum(bool(i.worklogs) for i in ds.issues) > 0.7 * len(ds.issues)


# -- bulk ------------------------------------------------------------------------------------
def check_bulk(ds: JiraDataset, n: int, now: datetime) -> None:
    assert len(ds.issues) == n
    for issue in ds.issues:
        moves = status_moves(issue)
        current = moves[0][1] if moves else issue.status_id
        for _, frm, to in moves:
            assert frm == current
            current = to
        assert current == issue.status_id
        assert issue.resolution_date == expected_resolution(ds, issue)
        times = [h.created for h in issue.histories]
        assert times == sorted(times) and all(issue.created <= t <= now for t in times)
        assert all(w.started >= issue.created and (w.created or now) <= now
                   for w in issue.worklogs)


def test_bulk_dataset_sizes_and_ratios() -> None:
    now = datetime(2026, 3, 15, 10, 30, tzinfo=UTC)
    ds = build_bulk_dataset(2000, now=now, projects=["A1", "B2", "C3"], seed=3)
    check_bulk(ds, 2000, now)
    assert {i.project_key for i in ds.issues} == {"A1", "B2", "C3"}
    for key in ["A1", "B2", "C3"]:
        nums = [int(i.key.split("-")[1]) for i in ds.issues if i.project_key == key]
        assert nums == list(range(1, len(nums) + 1))
    hist = [len(i.histories) for i in ds.issues]
    wls = [len(i.worklogs) for i in ds.issues]
    assert abs(sum(hist) / 2000 - 8) < 0.5 and abs(sum(wls) / 2000 - 3) < 0.3
    assert sum(h > 40 for h in hist) == 40 and all(45 <= h <= 60 for h in hist if h > 40)
    assert sum(w > 20 for w in wls) == 40 and all(22 <= w <= 35 for w in wls if w > 20)
    assert min(i.created for i in ds.issues) >= now - timedelta(days=366)
    cat = {s.id: s.category for s in ds.statuses}
    assert sum(cat[i.status_id] == DONE for i in ds.issues) > 0.7 * 2000
    same = build_bulk_dataset(2000, now=now, projects=["A1", "B2", "C3"], seed=3)
    assert [asdict(i) for i in same.issues[:50]] == [asdict(i) for i in ds.issues[:50]]


def test_bulk_dataset_parameters() -> None:
    ds = build_bulk_dataset(500, now=NOW, transitions_per_issue=3, worklogs_per_issue=1,
                            changelog_over_cap_ratio=0.1, worklog_over_cap_ratio=0.0,
                            inline_changelog_cap=10, inline_worklog_cap=5)
    check_bulk(ds, 500, NOW)
    hist = [len(i.histories) for i in ds.issues]
    assert sum(h > 10 for h in hist) == 50
    assert all(len(i.worklogs) <= 5 for i in ds.issues)


def test_bulk_dataset_builds_20000_issues_quickly() -> None:
    start = time.perf_counter()
    ds = build_bulk_dataset(20_000, now=NOW)
    assert time.perf_counter() - start < 15
    assert len(ds.issues) == 20_000
    assert sum(len(i.histories) for i in ds.issues) > 140_000
