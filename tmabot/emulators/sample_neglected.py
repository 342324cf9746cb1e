"""A fourth sample client, neglected: the one the demo's audit flags (S3 + S4 + S5).

A wine estate whose site the agency only fixes when it breaks: a few corrective tickets over
the last eight months, never an update, never a staging environment, never a restore test.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from tmabot.emulators.dataset import ChangeItem, JiraDataset, JiraHistory, JiraIssue, JiraProject
from tmabot.emulators.sample import SampleAgency, SampleClient

KEY = "VIN"
TITLES = ["Le formulaire de réservation de dégustation ne part plus",
          "Erreur 500 sur la page Boutique", "Images de la cuvée 2024 cassées",
          "Le lien Instagram du pied de page est mort", "Panier vide après paiement",
          "Mauvais prix affiché sur le coffret Noël"]


def add_neglected_client(agency: SampleAgency, now: datetime) -> SampleClient:
    ds: JiraDataset = agency.dataset
    ds.projects.append(JiraProject("10099", KEY, "Domaine des Vignes Hautes"))
    todo = ds.status_by_name("À faire")
    doing = ds.status_by_name("En cours")
    done = ds.status_by_name("Terminé")
    dev = ds.users[0]
    for n, title in enumerate(TITLES, start=1):
        created = now - timedelta(days=240 - 35 * n, hours=3)
        started = created + timedelta(hours=20)
        closed = started + timedelta(days=3)
        issue = JiraIssue(
            id=str(190000 + n), key=f"{KEY}-{n}", project_key=KEY, summary=title,
            issue_type="Bug", status_id=done.id, created=created, updated=closed,
            priority="High" if n % 2 else "Medium", labels=["bug"],
            description="Signalé par téléphone.", resolution_date=closed,
            assignee_id=dev.account_id, reporter_id=dev.account_id)
        issue.histories = [
            JiraHistory(f"{KEY}{n}01", started, dev.account_id,
                        [ChangeItem("status", todo.id, todo.name, doing.id, doing.name)]),
            JiraHistory(f"{KEY}{n}02", closed, dev.account_id,
                        [ChangeItem("status", doing.id, doing.name, done.id, done.name)])]
        ds.issues.append(issue)
    ds.touch()
    client = SampleClient(
        id="domaine-des-vignes", name="Domaine des Vignes Hautes", project_key=KEY,
        tier="essentiel", model="forfait", monthly_fee="190.00", hourly_rate="85.00",
        start=date(now.year - 1, 1, 1), credits=[],
        report_recipients=["contact@vignes-hautes.example"], slack_channel="C08VINH4Z2Q",
        site="vignes-hautes.example")
    agency.clients.append(client)
    return client
