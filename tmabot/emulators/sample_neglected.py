"""A fourth sample client, neglected: the one the demo's audit flags (S3 + S4 + S5).

A wine estate whose site the agency only fixes when it breaks: a few corrective tickets over
the last eight months, never an update, never a staging environment, never a restore test.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from tmabot.emulators.dataset import (
    ChangeItem,
    JiraComment,
    JiraDataset,
    JiraHistory,
    JiraIssue,
    JiraProject,
    JiraWorklog,
    jsm_completed_sla,
)
from tmabot.emulators.sample import AGENCY_DOMAIN, SampleAgency, SampleClient

KEY = "VIN"
TITLES = ["Le formulaire de réservation de dégustation ne part plus",
          "Erreur 500 sur la page Boutique", "Images de la cuvée 2024 cassées",
          "Le lien Instagram du pied de page est mort", "Panier vide après paiement",
          "Mauvais prix affiché sur le coffret Noël"]


def _closed_issue(ds: JiraDataset, project: str, n: int, issue_id: int, title: str,
                  issue_type: str, label: str, priority: str, created: datetime,
                  path: list[tuple[datetime, str]], description: str) -> JiraIssue:
    """A resolved issue walked through `path` ([(when, status name)], from "À faire")."""
    dev = ds.users[0]
    issue = JiraIssue(
        id=str(issue_id), key=f"{project}-{n}", project_key=project, summary=title,
        issue_type=issue_type, status_id=ds.status_by_name(path[-1][1]).id, created=created,
        updated=path[-1][0], priority=priority, labels=[label],
        description=description,
        resolution_date=path[-1][0], assignee_id=dev.account_id, reporter_id=dev.account_id)
    previous = ds.status_by_name("À faire")
    for step, (when, name) in enumerate(path, start=1):
        to = ds.status_by_name(name)
        issue.histories.append(JiraHistory(
            f"{project}{n}{step:02d}", when, dev.account_id,
            [ChangeItem("status", previous.id, previous.name, to.id, to.name)]))
        previous = to
    ds.issues.append(issue)
    return issue


def add_neglected_client(agency: SampleAgency, now: datetime) -> SampleClient:
    ds: JiraDataset = agency.dataset
    ds.projects.append(JiraProject("10099", KEY, "Domaine des Vignes Hautes"))
    for n, title in enumerate(TITLES, start=1):
        created = now - timedelta(days=240 - 35 * n, hours=3)
        started = created + timedelta(hours=20)
        _closed_issue(ds, KEY, n, 190000 + n, title, "Bug", "bug",
                      "High" if n % 2 else "Medium", created,
                      [(started, "En cours"), (started + timedelta(days=3), "Terminé")],
                      "Signalé par téléphone.")
    ds.touch()
    client = SampleClient(
        id="domaine-des-vignes", name="Domaine des Vignes Hautes", project_key=KEY,
        tier="essentiel", model="forfait", monthly_fee="190.00", hourly_rate="85.00",
        start=date(now.year - 1, 1, 1), credits=[],
        report_recipients=["contact@vignes-hautes.example"], slack_channel="C08VINH4Z2Q",
        site="vignes-hautes.example")
    agency.clients.append(client)
    return client


WELL_KEPT_KEY = "CAB"
JSM_FIRST_RESPONSE = "customfield_10030"  # the JSM SLA field of the sample site
WELL_KEPT_TICKETS = [  # (days ago created, hours to resolve, category-ish title, type, label)
    (150, 30, "Mise à jour WordPress 6.5 → 6.6", "Task", "maj"),
    (120, 20, "Correctif CVE-2026-1187 (plugin de formulaires)", "Task", "securite"),
    (95, 26, "Audit npm audit trimestriel", "Task", "securite"),
    (88, 24, "Mise à jour des extensions (octobre)", "Task", "maj"),
    (60, 28, "Mise à jour WordPress 6.6 → 6.7", "Task", "maj"),
    (45, 6, "Test de restauration de la sauvegarde", "Task", "sauvegarde"),
    (38, 30, "Audit WPScan mensuel", "Task", "securite"),
    (30, 20, "Patch de sécurité PHP 8.3.14", "Task", "securite"),
    (21, 26, "Formulaire de contact : champ téléphone obligatoire", "Bug", "bug"),
    (12, 22, "Mise à jour des extensions (novembre)", "Task", "maj"),
]


def add_well_kept_client(agency: SampleAgency, now: datetime) -> SampleClient:
    """A fifth client maintained by the book: monthly updates through staging, security
    fixes within 72 h, a restore test last month; the audit finds it sufficient."""
    ds: JiraDataset = agency.dataset
    ds.projects.append(JiraProject("10098", WELL_KEPT_KEY, "Cabinet Martin Avocats"))
    # The agency answers its bugs by a comment within minutes, before anyone moves the
    # ticket (`[sla] response_on_comment`); the demo shows the response it earns.
    writer = next(u for u in ds.users if u.email_visible and u.email
                  and u.email.endswith("@" + AGENCY_DOMAIN))
    for n, (days, hours, title, kind, label) in enumerate(WELL_KEPT_TICKETS, start=1):
        created = now - timedelta(days=days, hours=2)
        started = created + timedelta(hours=1)
        issue = _closed_issue(
            ds, WELL_KEPT_KEY, n, 180000 + n, title, kind, label, "Medium", created,
            [(started, "En cours"), (started + timedelta(hours=hours / 2), "Recette"),
             (started + timedelta(hours=hours), "Terminé")], "Planifié au calendrier.")
        # The work logged on it: 45 min for an update, 1 h 30 for security work, 1 h else.
        minutes = {"maj": 45, "securite": 90}.get(label, 60)
        issue.worklogs.append(JiraWorklog(
            str(186000 + n), issue.id, writer.account_id, started + timedelta(minutes=30),
            minutes * 60, "Intervention planifiée", created=started + timedelta(hours=1),
            updated=started + timedelta(hours=1)))
        answered = started
        if kind == "Bug":
            answered = created + timedelta(minutes=12)
            issue.comments.append(JiraComment(
                str(185000 + n), issue.id, writer.account_id, answered,
                "Bien reçu : nous regardons ce matin et revenons vers vous."))
        # The client's Jira Service Management portal runs its own SLA, set up with a 30-min
        # first-response goal on a 24/7 calendar — stricter than the contract (P2: 24 bh).
        issue.sla[JSM_FIRST_RESPONSE] = jsm_completed_sla(
            "1", "Time to first response", goal=timedelta(minutes=30), start=created,
            stop=answered)
    ds.sla_fields.setdefault(JSM_FIRST_RESPONSE, "Time to first response")
    ds.touch()
    client = SampleClient(
        id="cabinet-martin", name="Cabinet Martin Avocats", project_key=WELL_KEPT_KEY,
        tier="business", model="forfait", monthly_fee="490.00", hourly_rate="95.00",
        start=date(now.year - 1, 6, 1), credits=[],
        report_recipients=["secretariat@cabinet-martin.example"],
        slack_channel="C09CABM7X1R", site="cabinet-martin.example")
    agency.clients.append(client)
    return client
