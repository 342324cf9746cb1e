"""The `tmabot` command: parse, call, print. Errors are one line each, never a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.errors import TrackerError
from tmabot import logs
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
    tz = ZoneInfo(settings.agency.timezone)
    store = _store(settings)
    items = client_tickets(store, client.id, tz=tz, priorities=settings.priorities,
                           month=month, at=at)
    store.close()
    if args.format == "json":
        print(json.dumps(items, ensure_ascii=False, indent=2))
    elif args.format == "csv":
        sys.stdout.write(to_csv(items))
    else:
        print_tickets_table(items, title=f"{client.name} — {len(items)} ticket(s)"
                            + (f" — {month}" if month else ""))
    return 0


def print_tickets_table(items: Sequence[dict[str, Any]], *, title: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), title_justify="left")
    for col in ("Clé", "Titre", "Prio", "Statut", "Créé le", "Temps (h)", "Assigné à"):
        table.add_column(col, overflow="fold")
    for t in items:
        table.add_row(
            escape(t["key"]), escape(t["title"][:70]), t["priority"], escape(t["status"]),
            (t["created_at"] or "")[:16].replace("T", " "), f"{t['time_spent_hours']:.2f}",
            escape(t["assignee_email"] or "—"))
    _console().print(table)


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
    except StoreError as exc:
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
