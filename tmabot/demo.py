"""`tmabot demo`: the whole cycle on a built-in sample agency, offline, written to a folder."""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape

import tmabot.report as monthly
from connectors.uptime import uptime_for
from tmabot.audit import audit_client, escalate
from tmabot.config import load_config
from tmabot.emulators.jira import JiraEmulator
from tmabot.emulators.linear import LinearEmulator
from tmabot.emulators.sample import SampleAgency, build_sample_agency
from tmabot.emulators.sample_linear import move_to_linear
from tmabot.emulators.sample_neglected import add_neglected_client, add_well_kept_client
from tmabot.emulators.slack import SlackEmulator
from tmabot.emulators.uptimerobot import Monitor, UptimeRobotEmulator
from tmabot.months import Month
from tmabot.notify.slack import post_digest, post_report, send_nudges
from tmabot.store import Store
from tmabot.sync import sync
from tmabot.tickets import client_consumption, client_tickets, flagged, to_csv
from tmabot.timesheets import import_timesheet

TOKEN_ENV = "TMABOT_DEMO_JIRA_TOKEN"
UPTIME_KEY_ENV = "TMABOT_DEMO_UPTIMEROBOT_KEY"
LINEAR_KEY_ENV = "TMABOT_DEMO_LINEAR_KEY"
LINEAR_PROJECT = "AZR"  # the sample client the demo runs on Linear
# What the agency declares for its best-kept client (the audit checks them, with the date).
WELL_KEPT_FACTS = ("A3", "A4", "A5", "B2", "B3", "B4", "B5", "C1", "C2", "C3", "C4",
                   "D1", "D2", "D3", "D4", "E5", "E6", "E7", "E8")


INDICATOR_FR = {"response": "Prise en charge", "resolution": "Résolution",
                "delivery": "Livraison"}


def show_classification_and_sla(console: Console, name: str, items: list[dict]) -> None:
    """Per client: tickets by category, SLA states per indicator, what is at risk now."""
    from collections import Counter

    from tmabot.classify import CATEGORY_LABELS_FR
    from tmabot.cli import STATE_FR

    by_category = Counter(t["category"] for t in items)
    quotes = sum(1 for t in items if t["scope"] == "quote_required")
    parts = [f"{CATEGORY_LABELS_FR[c]} {n}" for c, n in sorted(
        by_category.items(), key=lambda kv: list(CATEGORY_LABELS_FR).index(kv[0]))]
    console.print(f"\n[bold]{escape(name)}[/] — {len(items)} tickets : {escape(', '.join(parts))}"
                  f" ; {quotes} à chiffrer (devis)")
    unclassified = [t["key"] for t in items if t["category"] == "non_classe"]
    if unclassified:
        console.print(f"  Non classés ({len(unclassified)}) : "
                      f"{escape(', '.join(unclassified[:8]))}"
                      + (" …" if len(unclassified) > 8 else ""))
    for indicator, label in INDICATOR_FR.items():
        states = Counter(t["sla"][indicator]["state"] for t in items)
        shown = [f"{STATE_FR[s]} {states[s]}" for s in
                 ("met", "breached", "at_risk", "running", "not_started") if states[s]]
        console.print(f"  {label:<16} {escape(', '.join(shown)) or 'aucun objectif'}")
    by_comment = [t["key"] for t in items if t.get("first_response_by") == "comment"]
    if by_comment:
        console.print(f"  Pris en charge par un commentaire de l'agence ({len(by_comment)}) : "
                      f"{escape(', '.join(by_comment[:8]))}" + (" …" if len(by_comment) > 8
                                                                else ""))
    from tmabot.tickets import sla_disagreements

    gaps = [(t["key"], gap) for t in items for gap in sla_disagreements(t)]
    if gaps:
        name, _ind, theirs, ours = gaps[0][1]
        console.print(f"  Écarts avec Jira Service Management ({len(gaps)}) : « {escape(name)} »"
                      f" {STATE_FR.get(theirs, theirs).lower()} pour JSM, "
                      f"{STATE_FR.get(ours, ours).lower()} au contrat — "
                      f"{escape(', '.join(k for k, _g in gaps[:8]))}"
                      + (" …" if len(gaps) > 8 else ""))
    urgent = [(t, ind, t["sla"][ind]) for t in items for ind in flagged(t)]
    urgent.sort(key=lambda x: x[2]["due_at"] or "")
    for t, ind, i in urgent[:6]:
        due = (i["due_at"] or "en pause")[:16].replace("T", " ")
        console.print(f"  [{'red' if i['state'] == 'breached' else 'yellow'}]"
                      f"{STATE_FR[i['state']]}[/] {escape(t['key'])} {t['priority']} "
                      f"{INDICATOR_FR[ind].lower()} — échéance {escape(due)} — "
                      f"{escape(t['title'][:60])}")


SLACK_TOKEN_ENV = "TMABOT_DEMO_SLACK_TOKEN"
PM_CHANNEL = "C0PMAGENCE"


def _with_slack(config_path: Path, api_url: str) -> Path:
    """The demo's config plus a [slack] section pointing at the Slack emulator."""
    text = config_path.read_text(encoding="utf-8")
    if "[slack]" not in text:
        text += ("\n[slack]\n" f'bot_token_env = "{SLACK_TOKEN_ENV}"\n'
                 f"api_url = {_toml_str(api_url)}\n" f'pm_channel = "{PM_CHANNEL}"\n')
    else:
        import re

        text = re.sub(r'api_url = ".*"', f"api_url = {_toml_str(api_url)}", text)
    config_path.write_text(text, encoding="utf-8")
    return config_path


def _next_opening(settings: object, now: datetime) -> datetime:
    from tmabot.calendar import BusinessCalendar

    cal = BusinessCalendar.from_settings(settings.calendar,  # type: ignore[attr-defined]
                                         settings.agency.timezone)  # type: ignore[attr-defined]
    when = now.replace(second=0, microsecond=0)
    for _ in range(14 * 96):
        if cal.is_open(when):
            return when
        when += timedelta(minutes=15)
    return now


def render_charts(data: dict) -> dict[str, bytes]:
    from tmabot.report.charts import all_charts
    from tmabot.report.i18n import text_for

    return all_charts(data, text_for(data["locale"]))


def report_email(data: dict, settings: object, client: object) -> object:
    """The email `report --send` would send, kept as an .eml file (the demo has no SMTP)."""
    from tmabot.report import email_message

    return email_message(data, settings, client,
                         sender="TMA Atelier des Pentes <tma@atelier-des-pentes.fr>")[0]


def _uptime_sources(agency: SampleAgency, out: Path, month: Month,
                    ) -> tuple[Monitor, str, str]:
    """An UptimeRobot monitor for the SLA client (99.42 % last month: a 5 % credit note,
    plus a down during an announced maintenance window, not counted) and an incidents CSV
    for the forfait client."""
    tz = ZoneInfo(agency.timezone)
    first = month.start(tz)
    watched = month.next().start(tz).timestamp() - first.timestamp() - 7200  # minus the window
    second = round(0.0058 * watched) - 10_800  # 0.58 % down in all: 99.42 %
    monitor = Monitor("778899", "Azur Évasion — réservation", "https://azur-evasion.example",
                      [(first + timedelta(days=9, hours=14),
                        first + timedelta(days=9, hours=14, seconds=10_800),
                        "Erreur 502 sur l'API de réservation"),
                       (first + timedelta(days=20, hours=3),
                        first + timedelta(days=20, hours=3, seconds=second),
                        "Timeout de la base de données"),
                       (first + timedelta(hours=23, minutes=10),
                        first + timedelta(hours=23, minutes=50), "Maintenance")])
    forfait = next(c for c in agency.clients if c.model == "forfait")
    start = (first + timedelta(days=19, hours=14)).replace(tzinfo=None)
    (out / f"uptime-{forfait.id}.csv").write_text(
        "start,end,reason\n"
        f"{start.isoformat()},{(start + timedelta(minutes=18)).isoformat()},"
        "Hébergeur : redémarrage du serveur\n", encoding="utf-8")
    return monitor, forfait.id, "ur-" + secrets.token_urlsafe(16)


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def demo_config(agency: SampleAgency, jira_url: str, linear_url: str | None = None,
                linear_projects: tuple[str, ...] = (),
                uptime: dict[str, list[str]] | None = None,
                facts: dict[str, dict[str, str]] | None = None) -> str:
    """The tmabot.toml an agency like the sample one would write (Jira, plus Linear for
    the clients whose project is in `linear_projects`)."""
    lines = [
        "# Written by `tmabot demo`: the sample agency on the built-in Jira and Linear "
        "emulators.",
        "[agency]",
        f"name = {_toml_str(agency.name)}",
        f"timezone = {_toml_str(agency.timezone)}",
        'locale = "fr"',
        'database_url = "sqlite:///tmabot.db"',
        "",
        "[sla]",
        f"pause_statuses = {json.dumps(agency.pause_statuses, ensure_ascii=False)}",
        f"staging_statuses = {json.dumps(agency.staging_statuses, ensure_ascii=False)}",
        "response_on_comment = true  # an agency comment answers a ticket too",
        f"agency_domains = [{_toml_str(agency.email_domain)}]",
        "",
        "[trackers.demo-jira]",
        'kind = "jira"',
        f"url = {_toml_str(jira_url)}",
        'deployment = "cloud"',
        'email = "bot@agency.example"',
        f'token_env = "{TOKEN_ENV}"',
        "service_desk_sla = true  # read Jira Service Management's own SLA fields too",
    ]
    if linear_url:
        lines += ["", "[trackers.demo-linear]", 'kind = "linear"',
                  f"url = {_toml_str(linear_url)}", f'token_env = "{LINEAR_KEY_ENV}"']
    for c in agency.clients:
        lines += [
            "",
            "[[clients]]",
            f"id = {_toml_str(c.id)}",
            f"name = {_toml_str(c.name)}",
            "tracker = " + ('"demo-linear"' if c.project_key in linear_projects
                            else '"demo-jira"'),
            f"projects = [{_toml_str(c.project_key)}]",
            f"slack_channel = {_toml_str(c.slack_channel)}",
            f"report_recipients = {json.dumps(c.report_recipients)}",
            "",
            "[clients.contract]",
            f"model = {_toml_str(c.model)}",
            f"tier = {_toml_str(c.tier)}",
            f"start = {c.start.isoformat()}",
            f"monthly_fee = {_toml_str(c.monthly_fee)}",
            f"hourly_rate = {_toml_str(c.hourly_rate)}",
        ]
        if c.model == "credit_temps" and c.credits:
            credits = ", ".join(f"{{ date = {d.isoformat()}, hours = {h:g} }}"
                                for d, h in c.credits)
            lines.append(f"credits = [ {credits} ]")
        if c.model == "sla":
            lines += ["uptime_credits = [ { below = 99.5, percent = 5 }, "
                      "{ below = 99.0, percent = 10 } ]",
                      "resolution_credit = { percent_per_hour = 2, max_percent = 20 }"]
        lines += (uptime or {}).get(c.id, [])
        declared = (facts or {}).get(c.id)
        if declared:
            lines += ["", "[clients.facts]"] + [f"{k} = {v}" for k, v in declared.items()]
    return "\n".join(lines) + "\n"


def run_demo(out: Path, *, quiet: bool = False, now: datetime | None = None) -> int:
    console = Console(highlight=False, quiet=quiet)
    began = time.perf_counter()
    now = now or datetime.now(UTC)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("tmabot.db*"):
        old.unlink()  # the demo's own database: start fresh each time

    console.rule("[bold]tmabot demo")
    agency = build_sample_agency(now)
    neglected = add_neglected_client(agency, now)
    kept = add_well_kept_client(agency, now)
    on_linear = next(c for c in agency.clients if c.project_key == LINEAR_PROJECT)
    well_kept = kept.id
    linear_sample = move_to_linear(agency.dataset, LINEAR_PROJECT, client_name=on_linear.name,
                                   org_name=agency.name, url_key="atelier-des-pentes")
    n_issues = len(agency.dataset.issues)
    console.print(f"Agence « {escape(agency.name)} » : {len(agency.clients)} clients, "
                  f"{n_issues} tickets Jira et {linear_sample.issues} tickets Linear "
                  f"({escape(on_linear.name)}) sur 6 mois (émulateurs locaux, hors ligne).")
    token = secrets.token_urlsafe(24)
    os.environ[TOKEN_ENV] = token
    linear_key = "lin_api_" + secrets.token_urlsafe(24)
    os.environ[LINEAR_KEY_ENV] = linear_key
    config_path = out / "tmabot.toml"
    last_month = Month.of(now.astimezone(ZoneInfo(agency.timezone))).previous()
    monitor, csv_client, robot_key = _uptime_sources(agency, out, last_month)
    os.environ[UPTIME_KEY_ENV] = robot_key
    with JiraEmulator(agency.dataset, flavour="cloud", token=token) as jira, \
            LinearEmulator(linear_sample.dataset, api_key=linear_key) as linear, \
            UptimeRobotEmulator([monitor], api_key=robot_key) as robot:
        uptime = {
            on_linear.id: ["", "[clients.uptime]", 'kind = "uptimerobot"',
                           f'api_key_env = "{UPTIME_KEY_ENV}"', f'monitor_id = "{monitor.id}"',
                           f"url = {_toml_str(robot.base_url)}",
                           "maintenance_windows = [ { start = "
                           f"{last_month.first_day().isoformat()}T23:00:00, end = "
                           f"{last_month.first_day().replace(day=2).isoformat()}T01:00:00, "
                           'reason = "Migration PHP 8.3 annoncée" } ]'],
            csv_client: ["", "[clients.uptime]", 'kind = "csv"',
                         f'path = "uptime-{csv_client}.csv"'],
            kept.id: ["", "[clients.uptime]", 'kind = "csv"', f'path = "uptime-{kept.id}.csv"'],
        }
        (out / f"uptime-{kept.id}.csv").write_text("start,end,reason\n", encoding="utf-8")
        checked = (now - timedelta(days=40)).date().isoformat()
        config_path.write_text(demo_config(
            agency, jira.url, linear.endpoint, (LINEAR_PROJECT,), uptime,
            {well_kept: {k: checked for k in WELL_KEPT_FACTS}}), encoding="utf-8")
        settings = load_config(config_path)
        store = Store(settings.agency.database_url)
        tz = ZoneInfo(settings.agency.timezone)

        console.rule("1. Synchronisation complète")
        result = sync(settings, store)
        for c in result.clients.values():
            console.print(f"  {c.client_id:<22} {c.tickets_written:>4} tickets, "
                          f"{c.histories_completed} historiques complétés, "
                          f"{c.worklogs_completed} worklogs complétés")
        first_requests = jira.count()
        console.print(f"  {first_requests} requêtes HTTP à Jira, {linear.count()} requêtes "
                      f"GraphQL à Linear.")
        toggl = out / f"toggl-{on_linear.id}.csv"
        toggl.write_text(linear_sample.toggl_csv, encoding="utf-8")
        report = import_timesheet(store, on_linear.id, toggl, tz=agency.timezone)
        console.print(f"  Linear n'a pas de worklogs : relevé Toggl {toggl.name} importé "
                      f"({report.format}) : {report.imported} entrées, "
                      f"{report.seconds / 3600:.1f} h ; réimport : "
                      f"{import_timesheet(store, on_linear.id, toggl, tz=agency.timezone).imported}"
                      " nouvelle entrée.")

        console.rule("2. Synchronisation incrémentale après une modification")
        issue = agency.dataset.issues[-1]
        dev = agency.dataset.users[0]
        agency.dataset.add_worklog(issue.key, dev.account_id, now - timedelta(minutes=30),
                                   1800, "Analyse complémentaire")
        moved = linear_sample.dataset.issues[-1]
        done = next(s for s in linear_sample.dataset.states if s.type == "completed")
        if moved.state_id != done.id:
            linear_sample.dataset.move(moved.id, done.id, now - timedelta(minutes=5))
        jira.reset_log()
        linear.reset_log()
        result = sync(settings, store)
        changed = sum(c.tickets_written for c in result.clients.values())
        console.print(f"  {changed} ticket(s) réécrit(s) ({escape(issue.key)} : nouveau "
                      f"worklog ; {escape(moved.identifier)} : passé à « {escape(done.name)} » "
                      f"dans Linear), {jira.count()} requêtes Jira, {linear.count()} Linear.")

        console.rule("3. Tickets par client")
        month = Month(now.astimezone(tz).year, now.astimezone(tz).month)
        for client in settings.clients:
            items = client_tickets(store, settings, client)
            (out / f"tickets-{client.id}.json").write_text(
                json.dumps(items, ensure_ascii=False, indent=2), encoding="utf-8")
            (out / f"tickets-{client.id}.csv").write_text(to_csv(items), encoding="utf-8")
            recent = client_tickets(store, settings, client, month=month)
            hours = sum(t["time_spent_hours"] for t in items)
            console.print(f"\n[bold]{escape(client.name)}[/] — {len(items)} tickets, "
                          f"{hours:.1f} h saisies ; {len(recent)} ce mois-ci ({month}) :")
            if not quiet:
                from tmabot.cli import print_tickets_table

                print_tickets_table(recent[-12:], title=f"{client.name} — {month} "
                                    f"(12 derniers)")

        console.rule("4. Classification et SLA")
        for client in settings.clients:
            items = client_tickets(store, settings, client)
            show_classification_and_sla(console, client.name, items)

        console.rule(f"5. Consommation des forfaits — {last_month}")
        start, end = last_month.bounds(tz)
        for client in settings.clients:
            up = uptime_for(settings, client, start, end) if client.uptime else None
            c = client_consumption(store, settings, client, last_month, at=now, uptime=up)
            (out / f"consumption-{client.id}-{last_month}.json").write_text(
                json.dumps(c.as_json(), ensure_ascii=False, indent=2), encoding="utf-8")
            if not quiet:
                from tmabot.cli import print_consumption

                print_consumption(client.name, c)
        console.print(f"  {robot.count()} requête(s) à l'émulateur UptimeRobot.")

        console.rule(f"6. Rapports mensuels — {last_month}")
        reports = out / "rapports"
        for client in settings.clients:
            data = monthly.build(store, settings, client, last_month, at=now)
            written = monthly.write(data, settings, monthly.FORMATS, reports)
            eml = reports / f"{client.id}-{last_month}.eml"
            eml.write_bytes(report_email(data, settings, client).as_bytes())
            console.print(f"  {escape(client.name)} : "
                          + ", ".join(p.name for p in written) + f", {eml.name}")
            for line in data["summary"]:
                console.print(f"    {escape(line)}")

        console.rule("7. Slack : rappels SLA, digest, publication des rapports")
        os.environ[SLACK_TOKEN_ENV] = "xoxb-demo-" + secrets.token_hex(8)
        with SlackEmulator(token=os.environ[SLACK_TOKEN_ENV],
                           channels={c.slack_channel for c in settings.clients
                                     if c.slack_channel} | {PM_CHANNEL},
                           users={u.email: f"U{n:07d}" for n, u in
                                  enumerate(agency.dataset.users, start=1) if u.email}
                           ) as slack_api:
            slack_settings = load_config(_with_slack(config_path, slack_api.api_url))
            run = send_nudges(slack_settings, store, now=now)
            console.print(f"  {len(run.posted)} rappel(s) posté(s), {len(run.waiting)} en "
                          "attente des heures ouvrées.")
            if run.waiting:  # show what the first run inside business hours posts
                opening = _next_opening(slack_settings, now)
                later = send_nudges(slack_settings, store, now=opening)
                console.print(f"  À l'ouverture ({opening.astimezone(tz):%d/%m %H:%M}) : "
                              f"{len(later.posted)} rappel(s) posté(s).")
            again = send_nudges(slack_settings, store, now=now)
            console.print(f"  Second passage : {len(again.posted)} nouveau rappel "
                          f"({again.already} déjà envoyés).")
            console.print("  " + post_digest(slack_settings, store, now=now))
            for client in slack_settings.clients:
                data = monthly.build(store, slack_settings, client, last_month, at=now)
                gauge = render_charts(data)["gauge"]
                posted = post_report(slack_settings, store, client, data, gauge)
                if posted:
                    console.print("  " + escape(posted))
            console.rule("8. Audit de maintenance (28 points, 10 signaux)")
            for client in slack_settings.clients:
                result = audit_client(store, slack_settings, client, now=now)
                active = [s["id"] for s in result["signals"] if s["active"]]
                oks = sum(1 for p in result["checklist"] if p["status"] == "ok")
                verdict = "suffisante" if result["verdict"] == "sufficient" else "insuffisante"
                console.print(f"  {escape(client.name)} : maintenance {verdict}, {oks}/28 "
                              f"points ok, signaux actifs : {', '.join(active) or 'aucun'}"
                              + (" — [bold red]AUDIT IMMÉDIAT (S3 + S4 + S5)[/]"
                                 if result["three_criticals"] else ""))
                (out / f"audit-{client.id}.json").write_text(
                    json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
                escalated = escalate(store, slack_settings, client, result, now=now)
                if escalated:
                    console.print(f"    {escape(escalated)}")
            if not quiet:
                from tmabot.cli import print_audit

                for client in (slack_settings.client(well_kept), slack_settings.client(
                        neglected.id)):
                    print_audit(client.name, audit_client(store, slack_settings, client,
                                                          now=now))
            written = slack_api.write_transcript(out / "slack")
            console.print(f"  {len(slack_api.messages)} message(s) ; fil de chaque canal "
                          f"dans {escape(str(out / 'slack'))} ({len(written)} fichiers).")
        store.close()
    console.rule()
    console.print(f"Fichiers écrits dans {escape(str(out))} : tmabot.toml, tmabot.db, "
                  f"tickets-<client>.json/.csv, toggl-{on_linear.id}.csv, "
                  f"consumption-*.json, rapports/ (HTML, PDF, Markdown, JSON, .eml), "
                  f"slack/ (messages par canal, .txt et .html)")
    console.print(f"Terminé en {time.perf_counter() - began:.1f} s.")
    return 0
