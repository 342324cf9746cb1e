"""The `tmabot` command: parse, call, print. Errors are one line each, never a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.errors import TrackerError
from tmabot import logs
from tmabot.audit import STATUS_FR as audit_status_fr
from tmabot.notify import EmailError, SlackError
from tmabot.store import Store, StoreError

log = logging.getLogger("tmabot")


class UsageError(Exception):
    """Bad command-line input (exit 2)."""


# -- helpers -----------------------------------------------------------------------
def _settings(args: argparse.Namespace) -> Any:
    from tmabot.config import load_config, resolve_config_path

    settings = load_config(resolve_config_path(getattr(args, "config", None)))
    logs.register_secrets(settings.secret_values())
    return settings


def _store(settings: Any) -> Store:
    return Store(settings.agency.database_url)


def _parse_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r}: expected an ISO 8601 instant, "
                         "e.g. 2026-10-31T18:00:00+01:00") from None
    if value.tzinfo is None:
        raise UsageError(f"--at {text!r}: give the UTC offset, e.g. 2026-10-31T18:00:00+01:00")
    return value.astimezone(UTC)


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=False, highlight=False, soft_wrap=False)


# -- commands -----------------------------------------------------------------------
def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    problems: list[str] = []
    worst = 0
    if args.online:
        from tmabot.sync import connector_for

        for name in settings.trackers:
            clients = [c for c in settings.clients if c.tracker == name]
            try:
                connector = connector_for(settings, name)
                try:
                    connector.probe()
                    for client in clients:
                        for project in client.projects:
                            connector.check_project(project)
                finally:
                    connector.close()
                print(f"{name}: reachable, credentials accepted, "
                      f"{sum(len(c.projects) for c in clients)} project(s) visible")
            except TrackerError as exc:
                problems.append(str(exc))
                worst = max(worst, exc.exit_code)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return worst
    src = getattr(settings, "source_path", None)
    where = f"{src}: " if src else ""
    print(f"{where}ok ({len(settings.clients)} client(s), {len(settings.trackers)} tracker(s))")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _store(settings)
    print(f"database at revision {store.current_revision()}")
    store.close()
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from tmabot.sync import sync

    settings = _settings(args)
    if args.client:
        settings.client(args.client)  # unknown client: a config error before any request
    store = _store(settings)
    quiet = args.quiet or not sys.stderr.isatty()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed} tickets"), TimeElapsedColumn(),
                  disable=quiet, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def progress(client_id: str, phase: str, n: int) -> None:
            if not client_id:
                return
            if client_id not in tasks:
                tasks[client_id] = bar.add_task(client_id, total=None)
            bar.update(tasks[client_id], completed=n, description=f"{client_id} ({phase})")

        result = sync(settings, store, client_ids=[args.client] if args.client else None,
                      full=args.full, reconcile=args.reconcile, progress=progress)
    store.close()
    for c in result.clients.values():
        extra = []
        if c.histories_completed:
            extra.append(f"{c.histories_completed} histories completed")
        if c.worklogs_completed:
            extra.append(f"{c.worklogs_completed} worklog sets completed")
        if c.dropped:
            extra.append(f"{c.dropped} removed (deleted or moved)")
        tail = f", {', '.join(extra)}" if extra else ""
        print(f"{c.client_id}: {c.tickets_seen} tickets read, {c.tickets_written} written"
              f"{tail} ({c.seconds:.1f} s)")
    return 0


def cmd_tickets(args: argparse.Namespace) -> int:
    from tmabot.tickets import Month, client_tickets, to_csv

    settings = _settings(args)
    client = settings.client(args.client)
    try:
        month = Month.parse(args.month) if args.month else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    at = _parse_at(args.at)
    store = _store(settings)
    items = client_tickets(store, settings, client, month=month, at=at, explain=args.explain)
    store.close()
    if args.format == "json":
        print(json.dumps(items, ensure_ascii=False, indent=2))
    elif args.format == "csv":
        sys.stdout.write(to_csv(items))
    else:
        print_tickets_table(items, title=f"{client.name} — {len(items)} ticket(s)"
                            + (f" — {month}" if month else ""))
        if args.explain:
            print_explanations(items)
    return 0


STATE_FR = {"met": "respecté", "breached": "dépassé", "at_risk": "à risque",
            "running": "en cours", "not_started": "pas démarré", "none": "—"}
STATE_STYLE = {"breached": "bold red", "at_risk": "yellow", "met": "green"}


def _fr(value: float, digits: int = 1) -> str:
    """A number the French way in tables: decimal comma, no trailing ",0" for whole ones."""
    if digits == 0 and float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.{digits or 1}f}".replace(".", ",")


def _state_cell(ind: dict[str, Any]) -> str:
    from rich.markup import escape

    state = ind["state"]
    if state == "none":
        return "—"
    text = STATE_FR[state]
    if ind["target_hours"] is not None and state != "not_started":
        text += f" {_fr(ind['elapsed_hours'])}/{_fr(ind['target_hours'], 0)} h"
    style = STATE_STYLE.get(state)
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def print_tickets_table(items: Sequence[dict[str, Any]], *, title: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    from tmabot.classify import CATEGORY_LABELS_FR

    table = Table(title=escape(title), title_justify="left")
    table.add_column("Clé", no_wrap=True)
    table.add_column("Titre", overflow="fold", min_width=12)
    for col in ("Catégorie", "Prio", "Statut", "Prise en charge", "Résolution", "Livraison",
                "Temps (h)"):
        table.add_column(col, overflow="fold")
    for t in items:
        category = CATEGORY_LABELS_FR.get(t["category"], t["category"])
        if t["scope"] == "quote_required":
            category += " (devis)"
        table.add_row(
            escape(t["key"]), escape(t["title"][:60]), escape(category), t["priority"],
            escape(t["status"]), _state_cell(t["sla"]["response"]),
            _state_cell(t["sla"]["resolution"]), _state_cell(t["sla"]["delivery"]),
            _fr(t["time_spent_hours"], 2))
    _console().print(table)


def print_explanations(items: Sequence[dict[str, Any]]) -> None:
    from rich.markup import escape

    console = _console()
    for t in items:
        console.print(f"\n[bold]{escape(t['key'])}[/] {escape(t['title'][:80])} → "
                      f"[bold]{escape(t['category'])}[/] ({escape(str(t['category_rule']))})")
        for step in t.get("classification_trace", []):
            mark = "[green]✔[/]" if step["matched"] else "·"
            console.print(f"  {mark} {escape(step['rule'])} [{escape(step['category'])}]: "
                          f"{escape(step['why'])}")
        if not t.get("classification_trace") or not t["classification_trace"][-1]["matched"]:
            console.print("  [yellow]aucune règle ne correspond : non classé[/]")


def cmd_classify(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from tmabot.tickets import client_tickets

    settings = _settings(args)
    clients = [settings.client(args.client)] if args.client else list(settings.clients)
    store = _store(settings)
    found: list[tuple[str, dict[str, Any]]] = []
    for client in clients:
        for t in client_tickets(store, settings, client, at=_parse_at(args.at)):
            if t["category"] == "non_classe":
                found.append((client.id, t))
    store.close()
    if args.format == "json":
        print(json.dumps([{"client": c, "key": t["key"], "title": t["title"],
                           "issue_type": t["issue_type"], "labels": t["labels"],
                           "url": t["url"]} for c, t in found], ensure_ascii=False, indent=2))
        return 0
    console = _console()
    if not found:
        console.print("Tous les tickets sont classés.")
        return 0
    console.print(f"{len(found)} ticket(s) non classé(s) — ajoutez une règle "
                  f"[[classification.rules]] ou un label :")
    for client_id, t in found:
        labels = ", ".join(t["labels"]) or "aucun label"
        console.print(f"  {escape(client_id)}  {escape(t['key'])}  {escape(t['title'][:70])}"
                      f"  ({escape(t['issue_type'] or '?')} ; {escape(labels)})")
    return 0


def cmd_sla(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from tmabot.tickets import client_tickets

    settings = _settings(args)
    client = settings.client(args.client)
    store = _store(settings)
    items = client_tickets(store, settings, client, at=_parse_at(args.at))
    store.close()
    wanted = ("at_risk", "breached") if args.at_risk else ("running", "at_risk", "breached")
    rows = [(t, name, ind) for t in items for name, ind in t["sla"].items()
            if ind["state"] in wanted and ind["stopped_at"] is None]
    rank = {"breached": 0, "at_risk": 1, "running": 2}
    rows.sort(key=lambda r: (rank.get(r[2]["state"], 3), r[2]["due_at"] or "9999"))
    if args.format == "json":
        print(json.dumps([{"key": t["key"], "title": t["title"], "priority": t["priority"],
                           "indicator": name, **ind} for t, name, ind in rows],
                         ensure_ascii=False, indent=2))
        return 0
    names = {"response": "prise en charge", "resolution": "résolution",
             "delivery": "livraison"}
    table = Table(title=escape(f"{client.name} — indicateurs SLA en cours"
                               + (" (à risque ou dépassés)" if args.at_risk else "")),
                  title_justify="left")
    table.add_column("Clé", no_wrap=True)
    for col in ("Titre", "Prio", "Indicateur", "État", "Échéance", "Assigné à"):
        table.add_column(col, overflow="fold")
    for t, name, ind in rows:
        due = (ind["due_at"] or "en pause")[:16].replace("T", " ")
        table.add_row(escape(t["key"]), escape(t["title"][:50]), t["priority"],
                      names[name], _state_cell(ind), escape(due),
                      escape(t["assignee_email"] or "—"))
    _console().print(table)
    if not rows:
        _console().print("Aucun indicateur en cours.")
    return 0


def cmd_consumption(args: argparse.Namespace) -> int:
    from connectors.uptime import uptime_for
    from tmabot.months import Month
    from tmabot.tickets import client_consumption

    settings = _settings(args)
    client = settings.client(args.client)
    at = _parse_at(args.at)
    tz = ZoneInfo(settings.agency.timezone)
    now = at or datetime.now(UTC)
    try:
        month = Month.parse(args.month) if args.month else Month.of(now.astimezone(tz))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    months = [month]
    if args.history:
        for _ in range(11):
            months.insert(0, months[0].previous())
    store = _store(settings)
    results = []
    try:
        for m in months:
            start, end = m.bounds(tz)
            uptime = uptime_for(settings, client, start, end) if client.uptime else None
            results.append(client_consumption(store, settings, client, m, at=at,
                                              uptime=uptime))
    finally:
        store.close()
    if args.format == "json":
        data = [r.as_json() for r in results]
        print(json.dumps(data if args.history else data[0], ensure_ascii=False, indent=2))
        return 0
    if args.history:
        print_consumption_history(client.name, results)
    else:
        print_consumption(client.name, results[0])
    return 0


def _eur(value: Any) -> str:
    from babel.numbers import format_currency

    return str(format_currency(value, "EUR", locale="fr_FR"))


def print_consumption(name: str, c: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    model = {"forfait": "forfait mensuel", "credit_temps": "crédit d'heures",
             "sla": "contrat SLA"}[c.model]
    table = Table(title=escape(f"{name} — consommation {c.month} ({model})"),
                  title_justify="left", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    quota = "illimité" if c.tickets_included is None else str(c.tickets_included)
    table.add_row("Tickets correctifs", f"{c.tickets_used} / {quota}")
    if c.model != "credit_temps":
        table.add_row("Heures Run", f"{_fr(c.run_hours_used, 2)} / "
                                    f"{_fr(c.run_hours_included, 2)} h")
    table.add_row("Heures consommées", f"{_fr(c.hours_used, 2)} h")
    if c.hours_balance is not None:
        table.add_row("Solde au 1er du mois suivant", f"{_fr(c.hours_balance, 2)} h")
        proj = c.details.get("projection") or {}
        if proj.get("runs_out"):
            table.add_row("Épuisement prévu", f"{proj['runs_out']} (rythme "
                                              f"{_fr(proj['monthly_pace_hours'], 1)} h/mois)")
        if c.details.get("low_balance"):
            table.add_row("Alerte", "[yellow]solde bas : prévoir un rechargement[/]")
    table.add_row("Hors forfait à facturer", f"{_fr(c.overage_hours, 2)} h — "
                                             f"{_eur(c.overage_amount)}")
    if c.uptime_percent is not None:
        table.add_row("Disponibilité", f"{_fr(c.uptime_percent, 2)} %")
    for note in c.credit_notes:
        table.add_row("Avoir", f"{_eur(note['amount'])} — {escape(note['reason'])}")
    for t in c.details.get("tickets_to_quote", []):
        table.add_row("À chiffrer", f"{escape(t['key'])} {escape(t['title'][:50])} "
                                    f"({_fr(t['hours'], 2)} h)")
    for t in c.details.get("unclassified", []):
        table.add_row("Non classé", f"{escape(t['key'])} {escape(t['title'][:50])} "
                                    f"({_fr(t['hours'], 2)} h, non décompté)")
    _console().print(table)


def print_consumption_history(name: str, results: Sequence[Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"{name} — 12 derniers mois"), title_justify="left")
    for col in ("Mois", "Tickets", "Run (h)", "Heures", "Solde (h)", "Hors forfait",
                "Avoirs"):
        table.add_column(col, justify="right")
    for c in results:
        quota = "∞" if c.tickets_included is None else str(c.tickets_included)
        credits = sum((n["amount"] for n in c.credit_notes), start=Decimal("0"))
        table.add_row(c.month, f"{c.tickets_used}/{quota}", _fr(c.run_hours_used, 2),
                      _fr(c.hours_used, 2),
                      "—" if c.hours_balance is None else _fr(c.hours_balance, 2),
                      _eur(c.overage_amount), _eur(credits) if credits else "—")
    _console().print(table)


def cmd_report(args: argparse.Namespace) -> int:
    from tmabot import report
    from tmabot.months import Month

    settings = _settings(args)
    client = settings.client(args.client)
    try:
        month = Month.parse(args.month)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    formats = tuple(f.strip() for f in (args.format or ",".join(settings.report.formats))
                    .split(",") if f.strip())
    unknown = [f for f in formats if f not in report.FORMATS]
    if unknown or not formats:
        raise UsageError(f"--format: {', '.join(unknown) or 'nothing'} is not one of "
                         f"{', '.join(report.FORMATS)}")
    if args.send or args.resend:
        if settings.email is None:
            raise UsageError("report --send needs an [email] section in the config")
        if not client.report_recipients:
            raise UsageError(f"clients: {client.id} has no report_recipients to email")
    store = _store(settings)
    try:
        data = report.build(store, settings, client, month, at=_parse_at(args.at))
        try:
            written = report.write(data, settings, formats, Path(args.out))
        except OSError as exc:  # not a folder, read-only...: the user's to fix
            raise UsageError(f"--out {args.out}: {exc.strerror or exc}") from None
        for path in written:
            print(path)
        if args.send or args.resend:
            outcome = report.send(store, settings, client, data, resend=args.resend)
            print(outcome.message)
    finally:
        store.close()
    return 0


def _needs_slack(settings: Any, command: str) -> None:
    if settings.slack is None:
        raise UsageError(f"{command} needs a [slack] section in the config")


def cmd_nudge(args: argparse.Namespace) -> int:
    from tmabot.notify.slack import send_nudges

    settings = _settings(args)
    if not args.dry_run:
        _needs_slack(settings, "nudge")
    store = _store(settings)
    try:
        run = send_nudges(settings, store, now=_parse_at(args.at), dry_run=args.dry_run)
    finally:
        store.close()
    verb = "à poster" if args.dry_run else "posté(s)"
    for n in run.posted:
        print(f"{n.client_id} {n.key} {n.priority} {n.indicator} {n.level}: {verb}")
    for n in run.waiting:
        print(f"{n.client_id} {n.key} {n.priority} {n.indicator} {n.level}: hors heures "
              "ouvrées, au prochain passage")
    print(f"{len(run.posted)} rappel(s) {verb}, {run.already} déjà envoyé(s), "
          f"{len(run.waiting)} en attente des heures ouvrées.")
    for problem in run.failed:
        print(f"tmabot: {problem}", file=sys.stderr)
    return 1 if run.failed else 0


def cmd_digest(args: argparse.Namespace) -> int:
    from tmabot.notify.slack import post_digest

    settings = _settings(args)
    _needs_slack(settings, "digest")
    store = _store(settings)
    try:
        print(post_digest(settings, store, now=_parse_at(args.at), weekly=args.weekly))
    finally:
        store.close()
    return 0


def cmd_slack_serve(args: argparse.Namespace) -> int:
    from tmabot.notify.slack_app import serve

    settings = _settings(args)
    _needs_slack(settings, "slack serve")
    if not settings.slack.signing_secret_env and not settings.slack.app_token_env:
        raise UsageError("slack serve needs [slack] signing_secret_env (HTTP) or "
                         "app_token_env (Socket Mode)")
    serve(settings, lambda: _store(settings), host=args.host, port=args.port)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from tmabot.scheduler import run_loop
    from tmabot.server import HttpSide, Metrics

    settings = _settings(args)
    metrics = Metrics()
    http = None
    if args.http_port is not None:
        _store(settings).close()  # migrations first, once
        http = HttpSide(settings, lambda: Store(settings.agency.database_url, migrate=False),
                        metrics, host=args.http_host, port=args.http_port).start()
        print(f"http://{args.http_host}:{http.port}/healthz", flush=True)
    try:
        return run_loop(settings, lambda: _store(settings), once=args.once,
                        at=_parse_at(args.at), tick_seconds=args.tick_seconds,
                        metrics=metrics, http=http, simulate_minutes=args.simulate_minutes,
                        max_ticks=args.max_ticks)
    finally:
        if http is not None:
            http.stop()


def cmd_audit(args: argparse.Namespace) -> int:
    from tmabot.audit import audit_client, escalate

    settings = _settings(args)
    client = settings.client(args.client)
    store = _store(settings)
    try:
        result = audit_client(store, settings, client, now=_parse_at(args.at))
        if args.format == "json":
            print(json.dumps(result, ensure_ascii=False, indent=2))
        elif args.format == "html":
            print(audit_html(client.name, result))
        else:
            print_audit(client.name, result)
        sys.stdout.flush()  # the audit is shown even if the escalation below fails
        escalated = escalate(store, settings, client, result, now=_parse_at(args.at))
    finally:
        store.close()
    if escalated:
        print(escalated, file=sys.stderr)
    return 0


STATUS_AUDIT_FR = {status: f"[{style}]{audit_status_fr[status]}[/]" for status, style in (
    ("ok", "green"), ("ko", "bold red"), ("due", "yellow"), ("unknown", "dim"))}


def print_audit(name: str, result: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    verdict = "suffisante" if result["verdict"] == "sufficient" else "insuffisante"
    console.print(f"[bold]{escape(name)}[/] — maintenance {verdict}"
                  + (" — [bold red]AUDIT IMMÉDIAT (S3 + S4 + S5)[/]"
                     if result["three_criticals"] else ""))
    signals = Table(title="Signaux d'alerte", title_justify="left")
    for col in ("", "Signal", "Niveau", "Raison"):
        signals.add_column(col, overflow="fold")
    for s in result["signals"]:
        signals.add_row("[red]●[/]" if s["active"] else "[green]○[/]", escape(s["label"]),
                        s["level"], escape(s["reason"]))
    console.print(signals)
    table = Table(title="Checklist (28 points)", title_justify="left")
    for col in ("Id", "Point", "Prio", "État", "Preuve", "Échéance"):
        table.add_column(col, overflow="fold")
    for p in result["checklist"]:
        table.add_row(p["id"], escape(p["label"]), p["priority"], STATUS_AUDIT_FR[p["status"]],
                      escape(p["evidence"]), p["due"] or "")
    console.print(table)
    d = result["debt"]
    console.print(f"Dette 1-5-15 : {d['weighted_total']} (" + ", ".join(
        f"{k} : {v['tickets']} ticket(s)" for k, v in d["bands"].items()) + ")")


def audit_html(name: str, result: dict[str, Any]) -> str:
    from markupsafe import escape

    rows = "".join(f"<tr><td>{escape(p['id'])}</td><td>{escape(p['label'])}</td>"
                   f"<td>{escape(p['priority'])}</td><td>{escape(p['status'])}</td>"
                   f"<td>{escape(p['evidence'])}</td><td>{escape(p['due'] or '')}</td></tr>"
                   for p in result["checklist"])
    sigs = "".join(f"<li>{'●' if s['active'] else '○'} {escape(s['id'])} "
                   f"{escape(s['label'])} — {escape(s['reason'])}</li>"
                   for s in result["signals"])
    return (f"<!DOCTYPE html><meta charset='utf-8'><title>Audit — {escape(name)}</title>"
            f"<h1>Audit de maintenance — {escape(name)}</h1><p>Verdict : "
            f"{escape(result['verdict'])}</p><h2>Signaux</h2><ul>{sigs}</ul>"
            f"<h2>Checklist</h2><table border='1'><tr><th>Id</th><th>Point</th><th>Prio</th>"
            f"<th>État</th><th>Preuve</th><th>Échéance</th></tr>{rows}</table>")


def cmd_import_timesheet(args: argparse.Namespace) -> int:
    from tmabot.timesheets import TimesheetError, import_timesheet

    settings = _settings(args)
    client = settings.client(args.client)
    path = Path(args.file)
    store = _store(settings)
    try:
        report = import_timesheet(store, client.id, path, tz=settings.agency.timezone)
    except TimesheetError as exc:
        raise UsageError(f"{path}: {exc}") from None
    finally:
        store.close()
    hours = _fr(report.seconds / 3600, 2)
    print(f"{path.name} ({report.format}) : {report.imported} entrée(s) importée(s) pour "
          f"{client.id} ({hours} h), {report.already} déjà importée(s).")
    for key, count in sorted(report.unknown.items()):
        print(f"tmabot: {path.name}: {key}: not a ticket of {client.id} ({count} row(s) "
              "left out: sync first, or check the key)", file=sys.stderr)
    for problem in report.problems:
        print(f"tmabot: {path.name}: {problem}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tmabot.demo import run_demo

    return run_demo(Path(args.out), quiet=args.quiet)


# -- parser --------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, *, top: bool) -> None:
    # Given before or after the command name: the subcommand's copy must not reset it.
    default = None if top else argparse.SUPPRESS
    p.add_argument("--config", metavar="PATH", default=default,
                   help="config file (default: $TMABOT_CONFIG, else ./tmabot.toml)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                   default="warning" if top else argparse.SUPPRESS, help="log verbosity")
    p.add_argument("--log-format", choices=["text", "json"],
                   default="text" if top else argparse.SUPPRESS,
                   help="log lines as text or one JSON object per line (stderr)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tmabot", description="Application-maintenance (TMA) bot for web agencies.")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str,
            ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p, top=False)
        p.set_defaults(func=func)
        return p

    p = add("check-config", cmd_check_config,
            "validate the config and the environment variables it names")
    p.add_argument("--online", action="store_true",
                   help="also check that each tracker answers and the credentials work")

    p = add("sync", cmd_sync,
            "pull tickets, status history and time logged from the trackers into the store")
    p.add_argument("--client", metavar="ID", help="only this client")
    p.add_argument("--full", action="store_true",
                   help="re-read everything instead of what changed since the last sync")
    p.add_argument("--reconcile", action="store_true",
                   help="also drop tickets deleted or moved out of the client's projects")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add("tickets", cmd_tickets, "list a client's normalized tickets")
    p.add_argument("--client", metavar="ID", required=True)
    p.add_argument("--month", metavar="YYYY-MM",
                   help="only tickets created, resolved or worked on in that month")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--at", metavar="ISO8601", help="evaluate as of that instant")
    p.add_argument("--explain", action="store_true",
                   help="show, per ticket, the classification rules tried and why the "
                        "winner matched")

    p = add("run", cmd_run, "the scheduler: every job when it is due, until stopped")
    p.add_argument("--once", action="store_true",
                   help="run what is due now (catching up) and exit: what cron calls")
    p.add_argument("--at", metavar="ISO8601", help="act as if it were that instant")
    p.add_argument("--http-host", default="127.0.0.1")
    p.add_argument("--http-port", type=int, default=None,
                   help="serve /healthz, /metrics and the webhooks on this port (0: any)")
    p.add_argument("--tick-seconds", type=float, default=30.0, help=argparse.SUPPRESS)
    # Accelerated time, for tests and benchmarks: each tick advances --at by N minutes.
    p.add_argument("--simulate-minutes", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--max-ticks", type=int, default=None, help=argparse.SUPPRESS)

    p = add("audit", cmd_audit, "warning signals and the 28-point maintenance checklist")
    p.add_argument("--client", metavar="ID", required=True)
    p.add_argument("--format", choices=["table", "json", "html"], default="table")
    p.add_argument("--at", metavar="ISO8601", help="evaluate as of that instant")

    p = add("nudge", cmd_nudge, "post reminders for SLA indicators at risk or breached")
    p.add_argument("--dry-run", action="store_true", help="list what would be posted")
    p.add_argument("--at", metavar="ISO8601", help="evaluate as of that instant")

    p = add("digest", cmd_digest, "post the PM digest to [slack] pm_channel")
    p.add_argument("--weekly", action="store_true", help="the weekly variant")
    p.add_argument("--at", metavar="ISO8601", help="evaluate as of that instant")

    slack = sub.add_parser("slack", help="the Slack app", description="the Slack app")
    _common(slack, top=False)
    slack_sub = slack.add_subparsers(dest="slack_command", metavar="ACTION", required=True)
    sv = slack_sub.add_parser("serve", help="serve /tma and the nudge buttons",
                              description="serve /tma and the nudge buttons at /slack/events")
    _common(sv, top=False)
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=3000)
    sv.set_defaults(func=cmd_slack_serve)

    p = add("report", cmd_report, "a client's monthly report (HTML, PDF, Markdown, JSON)")
    p.add_argument("--client", metavar="ID", required=True)
    p.add_argument("--month", metavar="YYYY-MM", required=True)
    p.add_argument("--format", metavar="FORMATS",
                   help="comma-separated: html,pdf,md,json (default: [report] formats)")
    p.add_argument("--out", metavar="DIR", default=".", help="where to write the files")
    p.add_argument("--send", action="store_true",
                   help="email it to the client's report_recipients, once per month")
    p.add_argument("--resend", action="store_true", help="email it again even if sent")
    p.add_argument("--at", metavar="ISO8601", help="evaluate as of that instant")

    p = add("consumption", cmd_consumption, "what a client's plan consumed in a month")
    p.add_argument("--client", metavar="ID", required=True)
    p.add_argument("--month", metavar="YYYY-MM", help="default: the current month")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--at", metavar="ISO8601", help="evaluate as of that instant")
    p.add_argument("--history", action="store_true",
                   help="the 12 months up to --month, one line each")

    p = add("import-timesheet", cmd_import_timesheet,
            "load time entries from a Toggl Track, Clockify, Harvest or generic CSV export")
    p.add_argument("file", metavar="FILE", help="the CSV export (format detected from its header)")
    p.add_argument("--client", metavar="ID", required=True,
                   help="the client whose tickets the entries belong to")

    p = add("classify", cmd_classify, "check the classification of the clients' tickets")
    p.add_argument("--check", action="store_true",
                   help="list the tickets no rule classifies (the default action)")
    p.add_argument("--client", metavar="ID", help="only this client")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--at", metavar="ISO8601", help="evaluate as of that instant")

    p = add("sla", cmd_sla, "a client's running SLA indicators, most urgent first")
    p.add_argument("--client", metavar="ID", required=True)
    p.add_argument("--at-risk", action="store_true", help="only at-risk and breached ones")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--at", metavar="ISO8601", help="evaluate as of that instant")

    db = sub.add_parser("db", help="database maintenance", description="database maintenance")
    _common(db, top=False)
    dbsub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dbsub.add_parser("upgrade", help="apply pending migrations (also done on start)",
                          description="apply pending migrations (also done on start)")
    _common(up, top=False)
    up.set_defaults(func=cmd_db_upgrade)

    p = add("demo", cmd_demo, "run the whole cycle on built-in sample trackers, offline")
    p.add_argument("--out", metavar="DIR", default="tmabot-demo",
                   help="where to write the demo's config, database and outputs")
    p.add_argument("--quiet", action="store_true", help="less output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup_logging(args.log_level, args.log_format)
    from tmabot.config import ConfigError

    try:
        return int(args.func(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(logs.redact(problem), file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"tmabot: {exc}", file=sys.stderr)
        return 2
    except TrackerError as exc:
        print(f"tmabot: {logs.redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except (StoreError, EmailError, SlackError) as exc:  # run-time failures: exit 1
        print(f"tmabot: {logs.redact(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tmabot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
